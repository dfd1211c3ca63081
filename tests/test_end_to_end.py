"""Crawl the fixture upstream over HTTP, render, serve, and compare every answer with upstream's."""

from urllib.parse import quote

import httpx
import orjson
import pytest
from conftest import serving

from mirror import pipeline
from mirror.fake_upstream import FakeUpstream, load_sample
from mirror.models import OFFICIAL
from mirror.settings import Settings

SAMPLE = load_sample()
NAMES = sorted({entry["server"]["name"] for entry in SAMPLE})


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """One build of the sample, served; yields (upstream client, mirror client, build result)."""
    tmp = tmp_path_factory.mktemp("e2e")
    with FakeUpstream() as upstream:
        settings = Settings(upstream=upstream.url, db=tmp / "m.duckdb", out=tmp / "site", base_url="http://mirror.test")
        result = pipeline.build(settings)
        with serving(settings.out) as server, httpx.Client(base_url=upstream.url) as up, \
                httpx.Client(base_url=server.url) as mirror:
            yield up, mirror, result, settings


def get_json(client, url, status=200, *, ours=True):
    response = client.get(url)
    assert response.status_code == status, (url, response.text[:200])
    if not ours:
        return response.json()
    if status == 200:
        assert response.headers["content-type"] == "application/json"
    else:
        assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["access-control-allow-origin"] == "*"
    return response.json()


def paginate(client, query, *, ours=True):
    items, cursor, pages = [], None, 0
    while True:
        body = get_json(client, "/v0.1/servers?" + query + (f"&cursor={quote(cursor, safe='')}" if cursor else ""),
                        ours=ours)
        assert body["metadata"]["count"] == len(body["servers"])
        items += body["servers"]
        pages += 1
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            return items, pages


def test_build_counts_every_row(mirrored):
    _, _, result, _ = mirrored
    assert result.summary["rows"] == len(SAMPLE)
    assert result.summary["servers"] == len(NAMES)
    assert result.summary["rejected"] == 0
    assert result.summary["changes"]["server_added"] == len(NAMES)


@pytest.mark.parametrize("entry", SAMPLE, ids=lambda e: f"{e['server']['name']}@{e['server']['version']}")
def test_every_version_answers_the_upstream_object(mirrored, entry):
    _, mirror, _, _ = mirrored
    name, version = entry["server"]["name"], entry["server"]["version"]
    url = f"/v0.1/servers/{quote(name, safe='')}/versions/{quote(version, safe='')}"
    deleted = entry["_meta"][OFFICIAL]["status"] == "deleted"
    if deleted:
        assert get_json(mirror, url, 404)["detail"] == "Server not found"
    else:
        response = mirror.get(url)
        assert response.content == orjson.dumps(entry)  # verbatim: same keys, same order
    assert get_json(mirror, url + "?include_deleted=true") == entry
    if "+" in version:  # raw `+` works as well as %2B
        raw = f"/v0.1/servers/{quote(name, safe='')}/versions/{version}?include_deleted=true"
        assert mirror.get(raw).json() == entry


@pytest.mark.parametrize("name", NAMES)
def test_per_server_answers_match_upstream(mirrored, name):
    up, mirror, _, _ = mirrored
    base = f"/v0.1/servers/{quote(name, safe='')}/versions"
    for suffix in ("", "?include_deleted=true", "/latest", "/latest?include_deleted=true"):
        expected = up.get(base + suffix)
        got = mirror.get(base + suffix)
        assert got.status_code == expected.status_code, (name, suffix)
        assert got.json() == expected.json(), (name, suffix)


@pytest.mark.parametrize("query", [
    "limit=100", "limit=30", "limit=10", "limit=50&version=latest", "version=latest",
    "include_deleted=true&limit=100", "include_deleted=true&version=latest", "",
])
def test_lists_paginate_to_the_same_rows_in_the_same_order(mirrored, query):
    up, mirror, _, _ = mirrored
    expected, _ = paginate(up, query or "limit=30", ours=False)
    got, pages = paginate(mirror, query)
    assert got == expected
    limit = int(dict(p.split("=") for p in query.split("&") if p).get("limit", 30))
    assert pages >= len(got) // limit


def test_deleted_rows_are_hidden_by_default(mirrored):
    _, mirror, _, _ = mirrored
    shown, _ = paginate(mirror, "limit=100")
    assert all(item["_meta"][OFFICIAL]["status"] != "deleted" for item in shown)
    everything, _ = paginate(mirror, "limit=100&include_deleted=true")
    assert len(everything) == len(SAMPLE) > len(shown)
    gone = {e["server"]["name"] for e in SAMPLE} - {e["server"]["name"] for e in shown}
    for name in gone:  # every version deleted: the server is not found
        assert get_json(mirror, f"/v0.1/servers/{quote(name, safe='')}/versions", 404)["status"] == 404


def test_latest_list_has_one_row_per_visible_server(mirrored):
    _, mirror, _, _ = mirrored
    latest, _ = paginate(mirror, "version=latest&limit=100")
    names = [item["server"]["name"] for item in latest]
    assert len(names) == len(set(names))
    assert all(item["_meta"][OFFICIAL]["isLatest"] for item in latest)


def test_unknown_servers_and_versions_are_problem_404s(mirrored):
    _, mirror, _, _ = mirrored
    assert get_json(mirror, "/v0.1/servers/io.github.nobody%2Fnothing/versions/latest", 404)["title"] == "Not Found"
    assert get_json(mirror, f"/v0.1/servers/{quote(NAMES[0], safe='')}/versions/99.99.99", 404)["status"] == 404
    assert get_json(mirror, "/v0.1/nothing-here", 404)["detail"] == "Endpoint not found"


def test_bad_list_queries_answer_like_upstream(mirrored):
    up, mirror, _, _ = mirrored
    for query in ("limit=0", "limit=101", "limit=abc"):
        assert mirror.get(f"/v0.1/servers?{query}").status_code == up.get(f"/v0.1/servers?{query}").status_code == 422
    assert mirror.get("/v0.1/servers?updated_since=nope").status_code == 400


def test_health_ping_version_and_state(mirrored):
    _, mirror, result, settings = mirrored
    assert get_json(mirror, "/v0.1/health") == {"status": "ok"}
    assert get_json(mirror, "/v0.1/ping") == {"pong": True}
    assert get_json(mirror, "/v0.1/version")["version"].startswith("mcp-mirror ")
    state = get_json(mirror, "/v0.1/x/mcp-mirror/state")
    assert state["snapshot"]["id"] == result.crawl.snapshot.id
    assert state["snapshot"]["upstream"] == settings.upstream
    assert state["counts"]["rows"] == len(SAMPLE)
    assert state["counts"]["deleted"] == sum(e["_meta"][OFFICIAL]["status"] == "deleted" for e in SAMPLE)


def test_head_and_options(mirrored):
    _, mirror, _, _ = mirrored
    head = mirror.head("/v0.1/servers")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    options = mirror.options("/v0.1/servers")
    assert options.status_code == 204
    assert options.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"


def test_rerendering_the_same_snapshot_is_byte_identical(mirrored, tmp_path):
    _, _, result, settings = mirrored
    again = settings.model_copy(update={"out": tmp_path / "again"})
    pipeline.render(again, snapshot_id=result.crawl.snapshot.id)
    first = sorted(p.relative_to(settings.out) for p in settings.out.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again.out) for p in again.out.rglob("*") if p.is_file())
    assert first == second
    assert all((settings.out / p).read_bytes() == (again.out / p).read_bytes() for p in first)
    assert pipeline.render(settings).written.written == 0


def test_a_path_prefix_from_base_url_is_served(tmp_path, upstream):
    settings = Settings(upstream=upstream.url, db=tmp_path / "m.duckdb", out=tmp_path / "site",
                        base_url="https://example.org/some/prefix")
    pipeline.build(settings)
    with serving(settings.out) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}") as c:
        assert server.url.endswith("/some/prefix")
        assert c.get("/some/prefix/v0.1/servers?limit=1").status_code == 200
        assert c.get(f"/some/prefix/v0.1/servers/{quote(NAMES[0], safe='')}/versions").status_code == 200
        assert c.get("/v0.1/servers").status_code == 404


def test_a_mirror_can_crawl_another_mirror(mirrored, tmp_path):
    _, mirror, _, _ = mirrored
    downstream = Settings(upstream=str(mirror.base_url).rstrip("/"), db=tmp_path / "d.duckdb", out=tmp_path / "d")
    result = pipeline.build(downstream)
    assert result.summary["rows"] == len(SAMPLE)
    assert result.summary["rejected"] == 0
