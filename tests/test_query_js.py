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
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from conftest import serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conformance_queries import BAD_QUERIES, RAW_QUERIES
from test_conformance_queries import QUERIES as CONFORMANCE_QUERIES
from test_query import QUERIES

from mirror import hosts, paths, pipeline, routes
from mirror import serve as mirror_serve
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

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


NJS_HARNESS = """
import engine from 'mcp-query.js';
import fs from 'fs';
var root = %s, queries = %s, output = %s, out = [];
function read(rel) { try { return fs.readFileSync(root + '/' + rel, 'utf8'); } catch (e) { return null; } }
queries.forEach(function (query) {
  var answer = engine.answerWith(query, read);
  out.push({status: answer.status, type: answer.type, body: Buffer.from(answer.body).toString('base64')});
});
fs.writeFileSync(output, JSON.stringify(out));  // console.log splits long lines
"""


@pytest.mark.skipif(shutil.which("njs") is None, reason="the njs shell is not installed (apt-get install njs)")
def test_the_engine_runs_in_njs_as_nginx_runs_it(tree, serve, tmp_path):
    """njs 0.7 is not node: no classes, no Array.from; the engine sticks to what both run."""
    shutil.copyfile(tree / paths.QUERY_ENGINE_FILE, tmp_path / "mcp-query.js")
    queries = ALL_QUERIES[::7]
    script = tmp_path / "run.js"
    output = tmp_path / "answers.json"
    script.write_text(NJS_HARNESS % (json.dumps(str(tree.resolve())), json.dumps(queries), json.dumps(str(output))))
    subprocess.run(["njs", "-p", str(tmp_path), str(script)], capture_output=True, text=True, check=True)
    for query, got in zip(queries, json.loads(output.read_text()), strict=True):
        assert (got["status"], got["type"], base64.b64decode(got["body"])) == served(serve, query), query


# -- the other API paths: the fetch-style hosts' functions route them as serve does -----

PATH_HARNESS = r"""
import(process.argv[1]).then(({default: engine}) => {
  const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(cases.map(([raw, query]) => {
    const path = engine.decodePath(raw);
    return path === null ? null : engine.resolvePath(path, engine.parseQuery(query));
  })));
});
"""
RAW_PATHS = [
    "/", "/index.html", "/v0.1", "/v0.1/", "/v0", "/v0.1/servers", "/v0.1/servers/", "/v0/servers",
    "/v0.1/servers/io.github.x%2Fy/versions", "/v0.1/servers/io.github.x/y/versions/latest",
    "/v0/servers/io.github.x%2fy/versions/1.0.0%2Bbuild.7", "/v0.1/servers/com.example/A/versions/1.0.0+b",
    "/v0.1/health", "/v0/version", "/v0.1/x/mcp-mirror/state", "/v0.1/x/mcp-mirror/changes/base/ab",
    "/v0.1/nope", "/v0.1/_problems/server-not-found.json", "/v0.1/servers/a/b/c/d/e",
    "/v0.1/servers/%2e%2e/%2E%2E/x", "/v0.1/servers/..%2F..%2Findex.html", "/v0.1/..%2F.mcp-mirror/mcp-query.js",
    "/v0.1/%2e%2e/%2e%2e/etc", "/.mcp-mirror/", "/v0.1/servers/%00/versions", "/v0.1/servers/%zz",
    "/v0.1/servers/%ff/versions", "/v0.1/servers/%ed%a0%80", "/v0.1/servers/%c3%a9/versions",
    "/v0.1/servers/%e2%80%ae/versions", "/v0.1/servers/%0A/versions", "/v0.1/servers/a%7F",
    "/v0.1/./servers/./x%2Fy/versions/", "/V0.1/servers/x/y/versions", "/assets/catalog.css",
]
PATH_QUERIES = ["", "include_deleted=true", "include_deleted=TRUE", "INCLUDE_DELETED=1", "include_deleted=0",
                "include_deleted=maybe", "include_deleted=", "include_deleted=true&include_deleted=maybe",
                "include_deleted=%74rue", "limit=abc&search=x"]


def test_api_paths_resolve_as_serve_resolves_them(tree):
    """decodePath and resolvePath (what the Netlify Function and Pages' _worker.js answer
    every API path with) against serve's normalize and routes.resolve."""
    cases = [[raw, query] for raw in RAW_PATHS for query in PATH_QUERIES]
    done = subprocess.run(["node", "-e", PATH_HARNESS, str((tree / paths.QUERY_ENGINE_FILE).resolve())],
                          input=json.dumps(cases), capture_output=True, text=True, check=True)
    for (raw, query), got in zip(cases, json.loads(done.stdout), strict=True):
        try:
            path = None if mirror_serve._BAD_TARGET.search(raw) else mirror_serve.normalize(raw)
        except UnicodeDecodeError:
            path = None
        if path is None:
            assert got is None, (raw, query)
            continue
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, value)  # names are case-sensitive, as serve reads them
        expected = routes.resolve(path, params, computes=True)
        if expected.computed is not None or expected.problem is not None:
            assert got == {"list": True}, (raw, query)
        else:
            assert got == {"status": expected.status, "files": list(expected.files), "fallback": expected.fallback,
                           "fallbackStatus": expected.fallback_status}, (raw, query)


def test_content_types_are_the_hosts(tmp_path):
    rels = ["v0.1/servers/a/b/versions/index.json", "v0.1/_problems/bad-limit.json", "index.html", "404.html",
            "assets/catalog.css", "assets/catalog.js", "feed.atom", "openapi.yaml", "sitemap.xml", "a/b", "a.b/c",
            "v0.1/x/mcp-mirror/state/index.json", ".well-known/ai-catalog.json",
            ".well-known/ard.json", "ard/2.json", "cards/a.b/c/1.0.0/server-card.json",
            "cards/a.b/c/1.0.0/other.json", "v0.1/cards/a/b/server-card.json"]
    module = tmp_path / "engine.mjs"
    module.write_bytes(hosts.query_engine(hosts.get_profile("nginx"), base_url="http://x"))
    script = ("import(process.argv[1]).then(({default: e}) => process.stdout.write(JSON.stringify("
              f"{json.dumps(rels)}.map(e.contentType))));")
    done = subprocess.run(["node", "-e", script, str(module)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [hosts.content_type(rel) for rel in rels]
