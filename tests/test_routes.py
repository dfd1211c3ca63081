
import pytest

from mirror import routes
from mirror.paths import problem_file


def first(answer):
    return answer.files[0]


def test_default_list_is_the_first_page_of_the_default_chain():
    answer = routes.resolve("/v0.1/servers", {})
    assert answer.status == 200
    assert first(answer) == "v0.1/servers/_pages/default/30-0.json"


@pytest.mark.parametrize("query, expected", [
    ({"version": "latest", "limit": "50"}, "latest/30-0"),
    ({"limit": "100", "cursor": "100-200"}, "default/100-200"),
    ({"limit": "10", "cursor": "100-200"}, "default/100-200"),  # the cursor names its page
    ({"include_deleted": "true", "limit": "10"}, "include-deleted/10-0"),
    ({"include_deleted": "true", "version": "latest"}, "latest-include-deleted/30-0"),
    ({"updated_since": "2025-01-01T00:00:00Z"}, "include-deleted/30-0"),
    ({"limit": "5", "search": ""}, "default/1-0"),
    ({"limit": "1"}, "default/1-0"),
])
def test_query_selects_chain_size_and_page(query, expected):
    assert first(routes.resolve("/v0.1/servers", query)) == f"v0.1/servers/_pages/{expected}.json"


def test_an_unknown_cursor_is_a_bad_request():
    answer = routes.resolve("/v0.1/servers", {"cursor": "30-999"})
    assert (answer.fallback_status, answer.fallback) == (400, problem_file("bad-cursor"))


@pytest.mark.parametrize("query, status, slug", [
    ({"limit": "0"}, 422, "bad-limit"),
    ({"limit": "101"}, 422, "bad-limit"),
    ({"limit": "abc"}, 422, "bad-limit"),
    ({"cursor": "../x"}, 400, "bad-cursor"),
    ({"cursor": "30"}, 400, "bad-cursor"),
    ({"search": "time"}, 400, "search-unsupported"),
    ({"version": "1.0.0"}, 400, "version-filter-unsupported"),
    ({"updated_since": "yesterday"}, 400, "bad-updated-since"),
    ({"updated_since": "2025-01-01T00:00:00Z", "include_deleted": "false"}, 400, "updated-since-without-deleted"),
    ({"include_deleted": "maybe"}, 422, "bad-include-deleted"),
])
def test_bad_queries_answer_a_problem(query, status, slug):
    answer = routes.resolve("/v0.1/servers", query)
    assert (answer.status, first(answer)) == (status, problem_file(slug))


def test_api_paths_answer_their_index_file():
    answer = routes.resolve("/v0.1/servers/io.github.x/y/versions/1.0.0+b", {})
    assert first(answer) == "v0.1/servers/io.github.x/y/versions/1.0.0+b/index.json"
    assert answer.fallback == problem_file("server-not-found")
    deleted = routes.resolve("/v0.1/servers/io.github.x/y/versions", {"include_deleted": "true"})
    assert [f.rpartition("/")[2] for f in deleted.files] == ["include-deleted.json", "index.json"]
    assert routes.resolve("/v0.1/nothing", {}).fallback == problem_file("endpoint-not-found")


def test_a_tree_for_a_host_without_query_routing_is_routed_as_that_host_would():
    static = routes.resolve("/v0.1/servers/", {"limit": "5", "cursor": "zzz"}, index="index.html", routes_queries=False)
    assert (static.status, static.files) == (200, ("v0.1/servers/index.html",))
    version = routes.resolve("/v0.1/servers/a/b/versions/1.0.0", {}, index="index.html", routes_queries=False)
    assert version.files == ("v0.1/servers/a/b/versions/1.0.0/index.html",)


def test_pick_uses_the_first_existing_file_else_the_fallback():
    answer = routes.resolve("/v0.1/servers/a/b/versions", {"include_deleted": "true"})
    default_view = answer.files[-1]
    assert routes.pick(answer, {default_view}.__contains__) == (200, default_view)
    assert routes.pick(answer, set(answer.files).__contains__) == (200, answer.files[0])
    missing = routes.pick(answer, {problem_file("server-not-found")}.__contains__)
    assert missing == (404, problem_file("server-not-found"))


def test_a_page_never_holds_more_rows_than_the_limit():
    assert [routes.page_size(n) for n in (1, 9, 10, 29, 30, 99, 100)] == [1, 1, 10, 10, 30, 30, 100]
    assert all(routes.page_size(n) <= n for n in range(1, 101))


def test_a_computing_host_answers_every_list_query_from_the_rows_index():
    for query in ({}, {"cursor": "30-0"}, {"version": "latest", "limit": "7"}, {"cursor": "zzz"}):
        assert routes.resolve("/v0.1/servers", query, computes=True).computed is not None
    bad = routes.resolve("/v0/servers", {"limit": "abc", "include_deleted": "maybe"}, computes=True)
    assert bad.status == 422 and b'"location":"query.limit"' in bad.problem and b"query.include_deleted" in bad.problem


@pytest.mark.parametrize("path", ["/.mcp-mirror/mcp-query.js", "/.mcp-mirror/objects.json", "/.mcp-mirror",
                                  "/.mcp-mirror/"])
def test_the_hosts_own_files_are_never_served(path):
    answer = routes.resolve(path, {})
    assert answer.files == ()
    assert routes.pick(answer, lambda rel: True) == (404, "404.html")
