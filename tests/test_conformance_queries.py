"""The list queries no file holds (search, updated_since, exact versions, upstream's own
cursors) and /v0: on every server that computes them, the answer is the fixture upstream's.

Same sites and servers as tests/test_conformance.py. Bodies of 200 answers must be equal
as JSON (same items, same order, same nextCursor, so the same paging); errors must have
upstream's status and a problem body.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml
from test_conformance import (  # noqa: F401  (fixtures)
    BASES,
    COMPUTING,
    SERVERS,
    VISIBLE,
    assert_cors,
    sites,
    start,
    upstreams,
)

OPENAPI = Path(__file__).parents[2] / "shared" / "upstream" / "openapi-v0.1.yaml"

NAME = VISIBLE[5]
QUERIES = [
    "search=git", "search=GIT&version=latest", "limit=50&version=latest&search=db", "search=io.github&limit=7",
    "search=%25", "search=_", "search=a%25b&limit=3", "search=" + "x" * 10_000, "search=" + "%25" * 2000 + "z",
    "search=.*", "search=%5Ba-z%5D%2B", "search=%27%3B%20DROP%20TABLE%20servers%3B%20--", "search=%5C", "search=%C3%A9",
    "search=server&include_deleted=true&limit=100",
    "updated_since=2025-09-01T00:00:00Z", "updated_since=2025-09-16T10:00:00.5%2B02:00&limit=5",
    "updated_since=2025-09-16T10%3A00%3A00-07%3A00", "updated_since=2025-01-01T00:00:00Z&version=latest&limit=100",
    "updated_since=2031-01-01T00:00:00Z", "updated_since=2025-09-01T00:00:00Z&include_deleted=true",
    "version=1.0.0", "version=1.0.0&include_deleted=true", "version=no-such-version", "version=1.0.0&limit=1",
    f"cursor={quote(NAME, safe='')}%3A", f"cursor={NAME}:0&version=latest&limit=50", f"cursor={NAME}",
    "cursor=zzz", "cursor=a:b:c", "search=mcp&cursor=com.", "search=mcp&limit=2&cursor=io.github.a/b:1.0.0",
    "SEARCH=git", "Limit=5", "LIMIT=abc", "Include_Deleted=maybe", "limit=5&Limit=7",  # names are case-sensitive
]
BAD_QUERIES = [
    "updated_since=yesterday", "updated_since=2025-09-01", "updated_since=2025-13-01T00:00:00Z",
    "updated_since=2025-09-01T00:00:00Z&include_deleted=false", "search=a&limit=0", "search=a&limit=101",
    "search=a&limit=abc", "search=a&include_deleted=maybe", "version=1.0.0&limit=-1", "limit=0", "limit=101",
    "limit=abc", "limit=abc&include_deleted=maybe", "limit=99999999999999999999", "include_deleted=maybe",
]

# Spellings only a raw query string has: encodings, `+`, no `=`, case, repeats, bad bytes.
RAW_QUERIES = [
    "", "limit=5", "limit=50&version=latest&cursor=30-30", "cursor=30-1", "include_deleted=true&limit=100",
    "updated_since=2025-01-01T00:00:00Z", "updated_since=2025-01-01T00:00:00+02:00",
    "updated_since=2025-01-01T00%3A00%3A00%2B02%3A00", "search=git+hub", "search=io%2egithub", "search",
    "search&limit=3", "SEARCH=git", "Search=a&search=b", "search=&version=1.0.0", "version=lat%65st&limit=1",
    "limit=%35", "limit=+5", "limit=%2B5", "search=%zz", "search=%", "search=%E9", "search=%ED%A0%80",
    "search=%F0%9F%98%80", "search=%C3", "__proto__=x&search=git", "constructor=1&search=a",
    "search=a&&limit=2", "&&", "=x", "search=a=b", "cursor=" + quote(NAME, safe="") + "%3A&limit=2",
    "updated_since=0001-01-01T00:00:00%2B01:00", "updated_since=9999-12-31T23:59:59-01:00",
    "updated_since=9999-12-31T23:59:59.999999Z", "updated_since=0001-01-01T00:00:00Z",
    "updated_since=2025-09-01T00:00:00%2B24:00", "updated_since=2025-09-01T00:00:00%2B25:00",
    "updated_since=2025-09-01T00:00:00t", "updated_since=%D9%A2025-09-01T00:00:00Z",
    "updated_since=202%D9%A3-09-01T00:00:00Z", "updated_since=2024-02-29T00:00:00Z",
    "updated_since=2025-02-29T00:00:00Z", "updated_since=2025-09-01T00:00:60Z",
    "updated_since=2025-09-01T00:00:00.Z", "updated_since=2025-09-01T00:00:00.1234567890123Z",
    "version=1.0.0&include_deleted=T", "version=1.0.0&include_deleted=yes", "limit=100&cursor=zzz&search=%25",
]


@pytest.fixture(scope="module", params=[
    pytest.param((kind, base), id=f"{kind}-{base}", marks=[getattr(pytest.mark, kind)] if kind != "serve" else [])
    for kind in sorted(COMPUTING) for base in BASES])
def pair(request, start, upstreams):  # noqa: F811  (start: the fixture imported above)
    kind, base = request.param
    return start(kind, base).client, upstreams[base]


def list_answer(client: httpx.Client, query: str) -> httpx.Response:
    return client.get(f"/v0.1/servers?{query}")


WALKS = [f"limit={limit}{extra}" for limit in (1, 7, 30, 50, 100)
         for extra in ("", "&version=latest", "&include_deleted=true", "&version=latest&include_deleted=true",
                       "&updated_since=2025-09-01T00:00:00Z", "&search=io", "&search=server&version=latest")]


@pytest.mark.parametrize("query", WALKS)
def test_every_page_of_a_walk_is_upstreams_byte_for_byte(pair, query):
    """Exactly `limit` rows a page until the last, upstream's items in its order, its
    `name:version` cursors and metadata, then the same next request."""
    mirror, upstream = pair
    url = f"/v0.1/servers?{query}"
    while True:
        got, expected = mirror.get(url), upstream.get(url)
        assert (got.status_code, got.content) == (expected.status_code, expected.content), url
        assert got.headers["content-type"] == expected.headers["content-type"]
        cursor = expected.json()["metadata"].get("nextCursor")
        if not cursor:
            break
        url = f"/v0.1/servers?{query}&cursor={quote(cursor, safe='')}"


@pytest.mark.parametrize("query", QUERIES, ids=lambda query: query[:50])
def test_computed_lists_are_upstreams(pair, query):
    mirror, upstream = pair
    got, expected = list_answer(mirror, query), list_answer(upstream, query)
    assert expected.status_code == 200
    assert got.status_code == 200, got.text[:300]
    assert got.content == expected.content
    assert got.headers["content-type"] == "application/json"
    assert_cors(got)


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_computed_queries_get_upstreams_status_and_a_problem(pair, query):
    mirror, upstream = pair
    got, expected = list_answer(mirror, query), list_answer(upstream, query)
    assert (got.status_code, got.content) == (expected.status_code, expected.content)
    assert got.headers["content-type"] == "application/problem+json"


def test_a_search_pages_through_upstream_cursors_like_upstream(pair):
    mirror, upstream = pair
    pages = 0
    query = "search=io&limit=4"
    while True:
        got, expected = list_answer(mirror, query).json(), list_answer(upstream, query).json()
        assert got == expected
        pages += 1
        cursor = got["metadata"].get("nextCursor")
        if not cursor:
            break
        query = f"search=io&limit=4&cursor={quote(cursor, safe='')}"
    assert pages > 3


def test_vscode_pages_after_a_search_without_the_search(pair):
    """VS Code drops the search text on later pages and sends upstream's cursor alone."""
    mirror, upstream = pair
    first = list_answer(mirror, "limit=5&version=latest&search=io").json()
    cursor = first["metadata"]["nextCursor"]
    query = f"limit=5&version=latest&cursor={cursor}"  # appended unencoded, as VS Code does
    assert list_answer(mirror, query).json() == list_answer(upstream, query).json()


@pytest.mark.parametrize("path", [
    "/v0/servers", "/v0/servers?limit=5&version=latest", "/v0/servers?search=git",
    f"/v0/servers/{quote(NAME, safe='')}/versions", f"/v0/servers/{quote(NAME, safe='')}/versions/latest",
    "/v0/version", "/v0/health", "/v0/servers/io.github.no%2Fsuch/versions",
])
def test_v0_answers_as_v0_1(pair, path):
    mirror, _ = pair
    got, expected = mirror.get(path), mirror.get(path.replace("/v0/", "/v0.1/", 1))
    assert (got.status_code, got.content) == (expected.status_code, expected.content)


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("base", BASES)
def test_openapi_yaml_is_upstreams_with_the_mirror_as_server(start, kind, base):  # noqa: F811
    response = start(kind, base).client.get("/openapi.yaml")
    assert response.status_code == 200
    spec = yaml.safe_load(response.text)
    upstream_spec = yaml.safe_load(OPENAPI.read_text())
    assert spec["servers"] == [{"url": BASES[base]}]
    assert {key: value for key, value in spec.items() if key != "servers"} == upstream_spec
    assert "/v0.1/servers" in spec["paths"]


@pytest.mark.parametrize("kind", ["nginx"])
@pytest.mark.parametrize("base", BASES)
def test_raw_query_strings_get_serves_bytes(start, kind, base):  # noqa: F811
    """Encodings, `+`, parameters without `=`, repeats, bad UTF-8: what serve answers, as
    nginx hands every such query string to the engine. (Caddy decides on Go's parse of the
    query, so `SEARCH=x` there is upstream's unknown parameter, not serve's `search`.)"""
    server, serve = start(kind, base).client, start("serve", base).client
    for query in RAW_QUERIES:
        got, expected = server.get(f"/v0.1/servers?{query}"), serve.get(f"/v0.1/servers?{query}")
        assert (got.status_code, got.headers["content-type"], got.content) == (
            expected.status_code, expected.headers["content-type"], expected.content), query


@pytest.mark.parametrize("kind", sorted(SERVERS))
@pytest.mark.parametrize("base", BASES)
def test_the_hosts_own_files_are_never_served(start, kind, base):  # noqa: F811
    client = start(kind, base).client
    for path in ("/.mcp-mirror/mcp-query.js", "/.mcp-mirror/", "/.mcp-mirror", "/.mcp-mirror/compute"):
        assert client.get(path).status_code == 404, path
