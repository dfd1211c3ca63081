"""The rows index and the queries it answers, against the fixture upstream's own answers."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror import query, routes
from mirror.fake_upstream import FakeRegistry, load_sample, search_matches
from mirror.models import OFFICIAL
from mirror.query import ListQuery, RowIndex, parse_rfc3339, search_matcher

SAMPLE = load_sample()


def sample_index() -> RowIndex:
    """The index of the sample as render writes it: servers in name order, versions in text order."""
    by_name: dict[str, list[tuple[str, str | None, bool, bool]]] = {}
    for entry in sorted(SAMPLE, key=lambda e: (e["server"]["name"], e["server"]["version"])):
        official = entry["_meta"][OFFICIAL]
        by_name.setdefault(entry["server"]["name"], []).append(
            (entry["server"]["version"], official.get("updatedAt"), official.get("isLatest") is True,
             official.get("status") == "deleted"))
    servers = [query.index_server(name, versions) for name, versions in by_name.items()]
    return RowIndex.from_bytes(query.index_document(b",".join(servers), index="index.json", deleted_views=True))


INDEX = sample_index()
REGISTRY = FakeRegistry(SAMPLE)


def upstream(params: dict[str, str]) -> tuple[int, object]:
    status, _, body = REGISTRY.handle("GET", "/v0.1/servers?" + urlencode(params))
    document = orjson.loads(body)
    if status != 200:
        return status, document
    return status, ([(item["server"]["name"], item["server"]["version"]) for item in document["servers"]],
                    document["metadata"].get("nextCursor"))


def mirror(params: dict[str, str]) -> tuple[int, object]:
    answer = routes.resolve("v0.1/servers", params, computes=True)
    if answer.computed is None:
        return answer.status, orjson.loads(answer.problem)
    selection = INDEX.select(answer.computed)
    return 200, ([(row.name, row.version) for row in selection.rows], selection.next_cursor)


NAMES = sorted({entry["server"]["name"] for entry in SAMPLE})
TERMS = ["git", "GIT", "io.github", "mcp-server", "%", "_", "a%b", "git_ub", "%25", "\\_", "\\", "x" * 10_000,
         "%" * 5000 + "z", "_" * 201, "(", "[a-z]+", ".*", "'; DROP TABLE servers; --", "é", "K"]
QUERIES = [
    {"search": term, **extra} for term in TERMS
    for extra in ({}, {"version": "latest"}, {"limit": "3"}, {"include_deleted": "true", "limit": "100"})
] + [
    {"updated_since": since, **extra}
    for since in ("2025-01-01T00:00:00Z", "2025-09-01T00:00:00Z", "2025-09-16T10:00:00.123456789+02:00",
                  "2030-01-01T00:00:00Z", "2025-09-01T00:00:00z", "2025-13-01T00:00:00Z", "2025-09-01",
                  "2025-09-01T00:00:00+24:00", "yesterday")
    for extra in ({}, {"limit": "7"}, {"include_deleted": "false"}, {"include_deleted": "true", "version": "latest"})
] + [
    {"version": version, **extra}
    for version in ("1.0.0", "0.1.0", "no-such-version", "LATEST", "1.0.0+build.7")
    for extra in ({}, {"include_deleted": "1"}, {"limit": "1"})
] + [
    {"cursor": cursor, **extra}
    for cursor in (f"{NAMES[3]}:", f"{NAMES[3]}:0", NAMES[3], NAMES[-1], "zzz", ":", "a:b:c", "30-0x")
    for extra in ({}, {"version": "latest", "limit": "50"}, {"search": "mcp"})
] + [
    {"search": "a", "limit": limit} for limit in ("0", "101", "05", "+5", "-1", "abc", "100", "1", "-0", "007",
                                                   "9223372036854775807", "9223372036854775808",
                                                   "-9223372036854775808", "1" * 30, "1.5", " 5")
] + [{"search": "a", "include_deleted": value} for value in ("yes", "T", "0", "")] + [
    {"limit": "abc", "include_deleted": "maybe"}, {"limit": "0", "updated_since": "yesterday"},
    {"include_deleted": "false", "updated_since": "yesterday"}]


@pytest.mark.parametrize("params", QUERIES, ids=lambda params: urlencode(params)[:60])
def test_computed_answers_equal_upstream(params):
    assert mirror(params) == upstream(params)


def test_paging_a_search_through_cursors_gets_every_match_once():
    seen, cursor = [], None
    for _ in range(100):
        params = {"search": "io", "limit": "4", **({"cursor": cursor} if cursor else {})}
        assert mirror(params) == upstream(params)
        rows, cursor = mirror(params)[1]
        seen += rows
        if not cursor:
            break
    expected = sorted((e["server"]["name"], e["server"]["version"]) for e in SAMPLE
                      if "io" in e["server"]["name"].lower() and e["_meta"][OFFICIAL]["status"] != "deleted")
    assert seen == expected


@settings(max_examples=400, deadline=None)
@given(term=st.text(alphabet="ab%_\\A.-/é", max_size=8), name=st.text(alphabet="abAB.-/_%\\É", max_size=12))
def test_search_is_upstreams_literal_substring(term, name):
    assert search_matcher(term)(name) == search_matches(term)(name)


def test_search_takes_wildcards_literally():
    assert search_matcher("a%b")("xa%by") and not search_matcher("a%b")("axxb")
    assert search_matcher("a_b")("a_b") and not search_matcher("a_b")("axb")
    assert search_matcher("GIT")("io.github.x/y") and not search_matcher("É")("é")  # ASCII folding only
    assert search_matcher("a" * 201)("a" * 200) is False


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 100), params=st.fixed_dictionaries({}, optional={
    "version": st.sampled_from(["latest", "1.0.0"]), "include_deleted": st.sampled_from(["true", "false"]),
    "search": st.sampled_from(["io", "a", "server"]), "updated_since": st.sampled_from(["2025-09-01T00:00:00Z"])}))
def test_any_walk_through_the_pages_is_upstreams(limit, params):
    """Exactly `limit` rows a page until the last, upstream's cursors, the same rows in order."""
    query = {**params, "limit": str(limit)}
    for _ in range(200):
        got = mirror(query)
        assert got == upstream(query)
        if got[0] != 200 or not got[1][1]:
            break
        query = {**query, "cursor": got[1][1]}


def test_parse_rfc3339_is_go_strict():
    assert parse_rfc3339("1970-01-01T00:00:01Z") == 1_000_000
    assert parse_rfc3339("1970-01-01T01:00:00+01:00") == 0
    assert parse_rfc3339("1970-01-01T00:00:00.0000019Z") == 1  # truncated to microseconds
    assert parse_rfc3339("1970-01-01T00:00:00+24:00") == -86_400_000_000
    for bad in ("1970-01-01", "1970-02-30T00:00:00Z", "1970-01-01T00:00:00", "1970-01-01T24:00:00Z", "",
                "1970-01-01t00:00:00Z", "1970-01-01T00:00:00z", "0000-01-01T00:00:00Z",
                "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01",  # past datetime's range: no OverflowError
                "197\u0663-01-01T00:00:00Z", "\u0661970-01-01T00:00:00Z"):  # Arabic-Indic digits: Go reads ASCII only
        assert parse_rfc3339(bad) is None, bad


def test_the_index_names_each_rows_document():
    row = next(row for row in INDEX.rows if row.deleted)
    assert INDEX.document_file(row).endswith(f"/versions/{row.version}/include-deleted.json")
    row = next(row for row in INDEX.rows if not row.deleted)
    assert INDEX.document_file(row).endswith(f"/versions/{row.version}/index.json")
    with pytest.raises(ValueError):
        RowIndex.from_bytes(b'{"format":"something-else"}')


def test_select_defaults_match_an_unfiltered_upstream_list():
    assert [(r.name, r.version) for r in INDEX.select(ListQuery(limit=100)).rows] == upstream({"limit": "100"})[1][0]
