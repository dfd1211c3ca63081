"""The JavaScript query engine (templates/hosts/mcp-query.js), run in node over a rendered
tree, answers every list query with the bytes `mcp-mirror serve` answers: status,
Content-Type and body. The same engine runs in njs (nginx) and in edge functions."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from conftest import serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conformance_queries import BAD_QUERIES
from test_conformance_queries import QUERIES as CONFORMANCE_QUERIES
from test_query import NAMES, QUERIES

from mirror import hosts, paths, pipeline
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# Spellings only a raw query string has: encodings, `+`, no `=`, case, repeats, bad bytes.
RAW_QUERIES = [
    "", "limit=5", "limit=50&version=latest&cursor=30-30", "cursor=30-1", "include_deleted=true&limit=100",
    "updated_since=2025-01-01T00:00:00Z", "updated_since=2025-01-01T00:00:00+02:00",
    "updated_since=2025-01-01T00%3A00%3A00%2B02%3A00", "search=git+hub", "search=io%2egithub", "search",
    "search&limit=3", "SEARCH=git", "Search=a&search=b", "search=&version=1.0.0", "version=lat%65st&limit=1",
    "limit=%35", "limit=+5", "limit=%2B5", "search=%zz", "search=%", "search=%E9", "search=%ED%A0%80",
    "search=%F0%9F%98%80", "search=%C3", "__proto__=x&search=git", "constructor=1&search=a",
    "search=a&&limit=2", "&&", "=x", "search=a=b", "cursor=" + quote(NAMES[2], safe="") + "%3A&limit=2",
    "updated_since=0001-01-01T00:00:00%2B01:00", "updated_since=9999-12-31T23:59:59-01:00",
    "updated_since=9999-12-31T23:59:59.999999Z", "updated_since=0001-01-01T00:00:00Z",
    "updated_since=2025-09-01T00:00:00%2B24:00", "updated_since=2025-09-01T00:00:00%2B25:00",
    "updated_since=2025-09-01T00:00:00t", "updated_since=%D9%A2025-09-01T00:00:00Z",
    "updated_since=202%D9%A3-09-01T00:00:00Z", "updated_since=2024-02-29T00:00:00Z",
    "updated_since=2025-02-29T00:00:00Z", "updated_since=2025-09-01T00:00:60Z",
    "updated_since=2025-09-01T00:00:00.Z", "updated_since=2025-09-01T00:00:00.1234567890123Z",
    "version=1.0.0&include_deleted=T", "version=1.0.0&include_deleted=yes", "limit=100&cursor=zzz&search=%25",
]
ALL_QUERIES = list(dict.fromkeys(
    [urlencode(params) for params in QUERIES] + CONFORMANCE_QUERIES + BAD_QUERIES + RAW_QUERIES))

HARNESS = r"""
const fs = require('fs');
const readline = require('readline');
import(process.argv[1]).then(({default: engine}) => {
  const root = process.argv[2];
  const read = (rel) => { try { return fs.readFileSync(root + '/' + rel, 'utf8'); } catch (e) { return null; } };
  readline.createInterface({input: process.stdin}).on('line', (line) => {
    const answer = engine.answerWith(JSON.parse(line), read);
    process.stdout.write(JSON.stringify({status: answer.status, type: answer.type,
                                         body: Buffer.from(answer.body, 'utf8').toString('base64')}) + '\n');
  });
});
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("query-js")
    with FakeUpstream() as upstream:
        config = Settings(upstream=upstream.url, db=tmp / "m.duckdb", out=tmp / "site", base_url="http://127.0.0.1")
        pipeline.build(config)
    return config.out


class Engine:
    def __init__(self, tree: Path, tmp: Path) -> None:
        module = tmp / "mcp-query.mjs"
        shutil.copyfile(tree / paths.QUERY_ENGINE_FILE, module)
        self.process = subprocess.Popen(["node", "-e", HARNESS, str(module), str(tree.resolve())], text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def answer(self, raw_query: str) -> tuple[int, str, bytes]:
        self.process.stdin.write(json.dumps(raw_query) + "\n")
        self.process.stdin.flush()
        got = json.loads(self.process.stdout.readline())
        return got["status"], got["type"], base64.b64decode(got["body"])


@pytest.fixture(scope="module")
def engine(tree, tmp_path_factory) -> Iterator[Engine]:
    running = Engine(tree, tmp_path_factory.mktemp("engine"))
    try:
        yield running
    finally:
        running.process.stdin.close()
        running.process.wait(timeout=10)
        running.process.stdout.close()


@pytest.fixture(scope="module")
def serve(tree) -> Iterator[http.client.HTTPConnection]:
    with serving(tree) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        yield connection
        connection.close()


def served(connection: http.client.HTTPConnection, raw_query: str) -> tuple[int, str, bytes]:
    connection.request("GET", "/v0.1/servers" + ("?" + raw_query if raw_query else ""))
    response = connection.getresponse()
    body = response.read()
    if response.getheader("Connection", "").lower() == "close":
        connection.close()
    return response.status, response.getheader("Content-Type"), body


def test_the_tree_ships_the_engine_it_was_rendered_with(tree):
    assert (tree / paths.QUERY_ENGINE_FILE).read_bytes() == hosts.query_engine(
        hosts.get_profile("nginx"), base_url="http://127.0.0.1")


@pytest.mark.parametrize("raw_query", ALL_QUERIES, ids=lambda query: query[:60])
def test_the_engine_answers_serves_bytes(engine, serve, raw_query):
    assert engine.answer(raw_query) == served(serve, raw_query)


def test_a_search_pages_like_serve(engine, serve):
    query, pages = "search=io&limit=3", 0
    while True:
        expected = served(serve, query)
        assert engine.answer(query) == expected
        pages += 1
        cursor = json.loads(expected[2])["metadata"].get("nextCursor")
        if not cursor:
            break
        query = f"search=io&limit=3&cursor={quote(cursor, safe='')}"
    assert pages > 3


# Near-RFC 3339 text: ASCII and other scripts' digits, either case of T and Z, any offset.
DIGIT = st.sampled_from("0123456789") | st.sampled_from("٣۵०")
TIMES = st.one_of(
    st.builds("{:04d}-{:02d}-{:02d}{}{:02d}:{:02d}:{:02d}{}{}".format,
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.sampled_from("Tt"),
              st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
              st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".000000001"]),
              st.sampled_from(["Z", "z", "+00:00", "-00:00", "+24:00", "-24:00", "+25:00", "+05:60", "-11:59"])),
    st.lists(DIGIT | st.sampled_from("-:T.Z+"), max_size=30).map("".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(since=TIMES, extra=st.sampled_from(["", "&limit=4", "&include_deleted=false", "&version=latest"]))
def test_updated_since_parses_like_serve(engine, serve, since, extra):
    raw_query = "updated_since=" + quote(since, safe="") + extra
    assert engine.answer(raw_query) == served(serve, raw_query)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term=st.text(alphabet=st.sampled_from("abgitoAGIO.-/_%\\ é😀K+&=") | st.characters(blacklist_categories=("Cs",)),
                     max_size=12),
       extra=st.sampled_from(["", "&limit=2", "&include_deleted=true", "&version=latest"]))
def test_searches_match_like_serve(engine, serve, term, extra):
    raw_query = "search=" + quote(term, safe="") + extra
    assert engine.answer(raw_query) == served(serve, raw_query)
