"""The fake upstream must behave like registry.modelcontextprotocol.io (upstream.md §2-§6),
and the bundled sample must exercise every edge case the mirror has to survive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from mirror.fake_upstream import (
    OFFICIAL,
    SAMPLE_PATH,
    FakeRegistry,
    FakeUpstream,
    load_sample,
)

SAMPLE = load_sample()
SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "upstream" / "schemas"
JUDGE = "io.github.OtherVibes/mcp-as-a-judge"
FORECAST = "com.example.weather/Forecast-API"
WALLET = "io.github.fr33-crypto/wallet-recovery-mcp"
AIRTABLE = "io.github.domdomegg/airtable-mcp-server"


def official(entry: dict) -> dict:
    return entry["_meta"][OFFICIAL]


def key(entry: dict) -> tuple[str, str]:
    return entry["server"]["name"], entry["server"]["version"]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def enc(name: str) -> str:
    return name.replace("/", "%2F")


def semver(version: str) -> tuple:
    major, minor, patch, pre = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)(?:-([\w.-]+))?(?:\+[\w.-]+)?", version).groups()
    ids = tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in pre.split(".")) if pre else ()
    return int(major), int(minor), int(patch), not pre, ids


VISIBLE = sorted(key(e) for e in SAMPLE if official(e)["status"] != "deleted")


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def client(upstream):
    with httpx.Client(base_url=upstream.url) as c:
        yield c


def crawl(client: httpx.Client, **params) -> list[dict]:
    """Follow nextCursor until it is absent; returns every page body."""
    pages, cursor = [], None
    while True:
        response = client.get("/v0.1/servers", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        pages.append(response.json())
        cursor = pages[-1]["metadata"].get("nextCursor")
        if not cursor:
            return pages


# --- list endpoint ---------------------------------------------------------------------


def test_pagination_visits_every_visible_row_once_in_text_order(client):
    pages = crawl(client, limit=7)
    rows = [key(e) for page in pages for e in page["servers"]]
    assert rows == VISIBLE
    for page in pages:
        assert page["metadata"]["count"] == len(page["servers"]) <= 7
        assert ("nextCursor" in page["metadata"]) == (len(page["servers"]) == 7)
        if "nextCursor" in page["metadata"]:
            assert page["metadata"]["nextCursor"] == "{}:{}".format(*key(page["servers"][-1]))
    # Plain string order, not semver: 1.10.0 sorts before 1.9.0.
    airtable = [v for n, v in rows if n == AIRTABLE]
    assert airtable.index("1.10.0") < airtable.index("1.9.0")


def test_default_limit_is_30(client):
    body = client.get("/v0.1/servers").json()
    assert body["metadata"]["count"] == 30
    assert body["metadata"]["nextCursor"] == "{}:{}".format(*VISIBLE[29])


def test_exact_multiple_of_limit_ends_with_an_empty_page():
    entries = [e for e in SAMPLE if official(e)["status"] != "deleted"][:14]
    with FakeUpstream(entries) as up, httpx.Client(base_url=up.url) as c:
        pages = crawl(c, limit=7)
        assert [p["metadata"]["count"] for p in pages] == [7, 7, 0]
        assert "nextCursor" in pages[1]["metadata"]
        last = c.get("/v0.1/servers", params={"limit": 7, "cursor": pages[1]["metadata"]["nextCursor"]})
        assert last.content == b'{"servers":[],"metadata":{"count":0}}'


def test_cursor_without_colon_means_names_after_it(client):
    body = client.get("/v0.1/servers", params={"cursor": AIRTABLE, "limit": 100}).json()
    assert [key(e) for e in body["servers"]] == [k for k in VISIBLE if k[0] > AIRTABLE]


def test_rows_are_served_byte_for_byte(client):
    params = {"limit": 100, "include_deleted": "true"}
    first = client.get("/v0.1/servers", params=params)
    second = client.get("/v0.1/servers", params={**params, "cursor": first.json()["metadata"]["nextCursor"]})
    bodies = [first.content, second.content]
    for entry in SAMPLE:
        assert sum(orjson.dumps(entry) in body for body in bodies) == 1


def test_include_deleted(client):
    everything = [key(e) for page in crawl(client, limit=100, include_deleted="true") for e in page["servers"]]
    assert everything == sorted(key(e) for e in SAMPLE)
    shown = [key(e) for page in crawl(client, limit=100, include_deleted="false") for e in page["servers"]]
    assert shown == VISIBLE


def test_version_latest_gives_one_live_row_per_server(client):
    rows = [e for page in crawl(client, version="latest", limit=100) for e in page["servers"]]
    names = [e["server"]["name"] for e in rows]
    assert len(names) == len(set(names))
    assert all(official(e)["isLatest"] and official(e)["status"] != "deleted" for e in rows)
    assert set(names) == {e["server"]["name"] for e in SAMPLE} - {WALLET}
    assert dict(key(e) for e in rows)[JUDGE] == "0.2.1"


def test_version_filter_is_an_exact_match(client):
    body = client.get("/v0.1/servers", params={"version": "2.0.0+20250101"}).json()
    assert [key(e) for e in body["servers"]] == [(FORECAST, "2.0.0+20250101")]
    # An unencoded "+" in a query string is a space, exactly as upstream parses it.
    assert client.get("/v0.1/servers?version=2.0.0+20250101").json()["servers"] == []


def test_search_is_case_insensitive_on_names_only(client):
    names = {
        e["server"]["name"] for e in client.get("/v0.1/servers", params={"search": "othervibes"}).json()["servers"]
    }
    assert names == {JUDGE}
    assert client.get("/v0.1/servers", params={"search": "Airtable database"}).json()["servers"] == []
    # Since registry #1227 (April 2026) upstream escapes LIKE wildcards: "_" and "%" are literal.
    assert client.get("/v0.1/servers", params={"search": "mcp_as"}).json()["servers"] == []
    names = {e["server"]["name"] for e in client.get("/v0.1/servers", params={"search": "mcp-as"}).json()["servers"]}
    assert names == {JUDGE}


def test_updated_since_is_strict_and_includes_deleted(client):
    stamps = sorted({official(e)["updatedAt"] for e in SAMPLE}, key=when)
    threshold = stamps[len(stamps) // 2]
    expected = sorted(key(e) for e in SAMPLE if when(official(e)["updatedAt"]) > when(threshold))
    rows = [key(e) for page in crawl(client, updated_since=threshold, limit=100) for e in page["servers"]]
    assert rows == expected
    assert threshold not in {official(e)["updatedAt"] for e in SAMPLE if key(e) in rows}
    # Datetimes, not strings: the same instant with an offset (sent as %2B) selects the same rows.
    moment = when(threshold).astimezone(datetime.fromisoformat("2000-01-01T00:00:00+02:00").tzinfo)
    with_offset = [
        key(e) for page in crawl(client, updated_since=moment.isoformat(), limit=100) for e in page["servers"]
    ]
    assert with_offset == expected
    early = [e for page in crawl(client, updated_since="2000-01-01T00:00:00Z", limit=100) for e in page["servers"]]
    assert len(early) == len(SAMPLE)
    assert any(official(e)["status"] == "deleted" for e in early)


def test_updated_since_with_include_deleted_false_is_rejected(client):
    response = client.get("/v0.1/servers", params={"updated_since": "2025-01-01T00:00:00Z", "include_deleted": "false"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Cannot set include_deleted=false when using updated_since")


@pytest.mark.parametrize(
    "value", ["yesterday", "2025-01-01", "2025-01-01T00:00:00", "2025-01-01 00:00:00Z", "2025-13-01T00:00:00Z"]
)
def test_bad_updated_since_is_400(client, value):
    response = client.get("/v0.1/servers", params={"updated_since": value})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "title": "Bad Request",
        "status": 400,
        "detail": "Invalid updated_since format: expected RFC3339 timestamp (e.g., 2025-08-07T13:15:04.280Z)",
    }


@pytest.mark.parametrize(
    ("value", "message", "echo"),
    [("0", "expected number >= 1", 0), ("101", "expected number <= 100", 101), ("abc", "invalid integer", "abc")],
)
def test_bad_limit_is_422(client, value, message, echo):
    response = client.get("/v0.1/servers", params={"limit": value})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "validation failed",
        "errors": [{"message": message, "location": "query.limit", "value": echo}],
    }


# --- per-server endpoints --------------------------------------------------------------


def test_versions_are_newest_published_first(client):
    body = client.get(f"/v0.1/servers/{enc(AIRTABLE)}/versions").json()
    published = [when(official(e)["publishedAt"]) for e in body["servers"]]
    assert published == sorted(published, reverse=True)
    assert body["metadata"] == {"count": 15}
    assert body["servers"][0]["server"]["version"] == "1.10.1"


def test_versions_hide_deleted_unless_asked(client):
    shown = client.get(f"/v0.1/servers/{enc(JUDGE)}/versions").json()["servers"]
    assert [e["server"]["version"] for e in shown] == ["0.2.1", "0.2.0", "0.1.0"]
    everything = client.get(f"/v0.1/servers/{enc(JUDGE)}/versions", params={"include_deleted": "true"}).json()
    assert everything["metadata"]["count"] == 4
    assert client.get(f"/v0.1/servers/{enc(WALLET)}/versions").status_code == 404
    assert client.get(f"/v0.1/servers/{enc(WALLET)}/versions", params={"include_deleted": "true"}).status_code == 200


def test_unknown_server_is_404_problem(client):
    for path in (f"/v0.1/servers/{enc('io.example/nope')}/versions", f"/v0.1/servers/{enc(JUDGE)}/versions/9.9.9"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {"title": "Not Found", "status": 404, "detail": "Server not found"}


def test_version_detail_accepts_encoded_and_raw_plus(client):
    expected = next(e for e in SAMPLE if key(e) == (FORECAST, "1.0.0+build.7"))
    for version in ("1.0.0%2Bbuild.7", "1.0.0+build.7"):
        response = client.get(f"/v0.1/servers/{enc(FORECAST)}/versions/{version}")
        assert response.status_code == 200
        assert response.content == orjson.dumps(expected)


def test_version_detail_latest_and_deleted(client):
    latest = client.get(f"/v0.1/servers/{enc(JUDGE)}/versions/latest").json()
    assert key(latest) == (JUDGE, "0.2.1") and official(latest)["isLatest"]
    assert client.get(f"/v0.1/servers/{enc(JUDGE)}/versions/0.3.0").status_code == 404
    assert (
        client.get(f"/v0.1/servers/{enc(JUDGE)}/versions/0.3.0", params={"include_deleted": "true"}).status_code == 200
    )
    assert client.get(f"/v0.1/servers/{enc(WALLET)}/versions/latest").status_code == 404
    wallet = client.get(f"/v0.1/servers/{enc(WALLET)}/versions/latest", params={"include_deleted": "true"}).json()
    assert key(wallet) == (WALLET, "1.0.1")


def test_malformed_escape_in_name_is_400(client):
    response = client.get("/v0.1/servers/io.github.x%252zfoo/versions")
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid server name encoding"


# --- routing -----------------------------------------------------------------------------


def test_unknown_path_is_404_problem(client):
    for path in ("/v0.1/nothing", "/v0.1/servers/io.github.user/raw-slash/versions", "/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {"title": "Not Found", "status": 404, "detail": "Endpoint not found"}


def test_trailing_slash_redirects_with_308(client):
    response = client.get("/v0.1/servers/?limit=5", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "/v0.1/servers?limit=5"
    assert client.get("/v0.1/servers/", params={"limit": 5}, follow_redirects=True).json()["metadata"]["count"] == 5


def test_service_endpoints(client):
    assert client.get("/v0.1/health").json() == {"status": "ok"}
    assert client.get("/v0.1/ping").json() == {"pong": True}
    assert client.get("/v0.1/version").json() == {
        "version": "fake",
        "git_commit": "0000000",
        "build_time": "2025-01-01T00:00:00Z",
    }
    assert client.post("/v0.1/publish", json={}).status_code == 405


def test_prefix():
    with FakeUpstream(prefix="/registry/") as up, httpx.Client() as c:
        assert up.url.endswith("/registry")
        assert c.get(f"{up.url}/v0.1/servers", params={"limit": 3}).json()["metadata"]["count"] == 3
        root = up.url.removesuffix("/registry")
        assert c.get(f"{root}/v0.1/servers").status_code == 404


def test_fault_injection_and_request_log():
    with FakeUpstream(SAMPLE[:3]) as up, httpx.Client(base_url=up.url) as c:
        up.registry.fail_next.extend([(503, b"upstream down", "text/plain"), (429, b"{}", "application/json")])
        first, second, third = (c.get("/v0.1/servers", params={"limit": 2}) for _ in range(3))
        assert (first.status_code, first.text, first.headers["content-type"]) == (503, "upstream down", "text/plain")
        assert second.status_code == 429
        assert third.status_code == 200
        assert up.registry.requests == ["/v0.1/servers?limit=2"] * 3
        up.registry.entries = []
        assert c.get("/v0.1/servers").json() == {"servers": [], "metadata": {"count": 0}}


def test_malformed_entries_are_served_as_they_are():
    broken = ["not an object", {"server": {"name": "io.example/no-version"}}, {"_meta": None}, *SAMPLE[:2]]
    with FakeUpstream(broken) as up, httpx.Client(base_url=up.url) as c:
        rows = [e for page in crawl(c, limit=2) for e in page["servers"]]
        assert sorted(rows, key=orjson.dumps) == sorted(broken, key=orjson.dumps)


def test_registry_without_sockets():
    registry = FakeRegistry(SAMPLE, prefix="/x")
    status, headers, body = registry.handle("GET", "/x/v0.1/servers?limit=1")
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert orjson.loads(body)["metadata"] == {"nextCursor": "{}:{}".format(*VISIBLE[0]), "count": 1}


def test_command_line_serves_until_interrupted(tmp_path):
    data = tmp_path / "two.json"
    data.write_bytes(orjson.dumps(SAMPLE[:2]))
    command = [sys.executable, "-m", "mirror.fake_upstream", "--port", "0", "--data", str(data), "--prefix", "/p"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/p", url)
            assert httpx.get(f"{url}/v0.1/servers").json()["metadata"]["count"] == 2
        finally:
            process.send_signal(2)  # SIGINT, i.e. Ctrl-C
            assert process.wait(timeout=10) == 0


# --- the bundled sample ------------------------------------------------------------------


def test_sample_file_is_the_generated_one():
    text = SAMPLE_PATH.read_text(encoding="utf-8")
    assert json.loads(text) == SAMPLE
    assert text.startswith('[\n  {\n    "server": {')


def test_sample_shape_and_size():
    names = Counter(e["server"]["name"] for e in SAMPLE)
    assert 35 <= len(names) <= 60 and 100 <= len(SAMPLE) <= 160
    assert len({key(e) for e in SAMPLE}) == len(SAMPLE)
    for entry in SAMPLE:
        assert list(entry) == ["server", "_meta"]
        assert list(entry["_meta"]) == [OFFICIAL]
        meta = official(entry)
        order = (
            ["status", "statusChangedAt"]
            + (["statusMessage"] if "statusMessage" in meta else [])
            + ["publishedAt", "updatedAt", "isLatest"]
        )
        assert list(meta) == order
        assert list(entry["server"])[:3] == ["$schema", "name", "description"]
        assert 1 <= len(entry["server"]["description"]) <= 100
        for field in ("statusChangedAt", "publishedAt", "updatedAt"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", meta[field])
            assert not re.search(r"\.\d*0Z$", meta[field]), "Go trims trailing zeros"
    fractions = {len(m.group(1)) for e in SAMPLE if (m := re.search(r"\.(\d+)Z", official(e)["publishedAt"]))}
    assert len(fractions) >= 3


def test_sample_names_and_versions():
    names = {e["server"]["name"] for e in SAMPLE}
    assert {JUDGE, FORECAST, "ai.smithery/x.y_z"} <= names
    for name in names:
        namespace, _, part = name.partition("/")
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9.-]*[a-zA-Z0-9]", namespace), name
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]", part), name
    assert any(re.search(r"\d", n) for n in names) and any("_" in n for n in names)
    versions = defaultdict(list)
    for entry in SAMPLE:
        versions[entry["server"]["name"]].append(entry["server"]["version"])
    assert max(len(v) for v in versions.values()) >= 12
    assert {"1.9.0", "1.10.0"} <= set(versions[AIRTABLE])
    assert sum(len(v) >= 3 for v in versions.values()) >= 5
    everything = {v for vs in versions.values() for v in vs}
    assert {"1.0.0+build.7", "2.0.0+20250101", "2.0.0-beta.1"} <= everything


def test_sample_statuses_and_latest():
    statuses = Counter(official(e)["status"] for e in SAMPLE)
    assert statuses["deprecated"] >= 3 and statuses["deleted"] >= 3
    assert any("statusMessage" in official(e) for e in SAMPLE if official(e)["status"] == "deprecated")
    assert any("statusMessage" not in official(e) for e in SAMPLE if official(e)["status"] == "deprecated")
    by_server = defaultdict(list)
    for entry in SAMPLE:
        by_server[entry["server"]["name"]].append(entry)
    all_deleted = [n for n, rows in by_server.items() if all(official(e)["status"] == "deleted" for e in rows)]
    assert all_deleted == [WALLET]
    middle_deleted = False
    for name, rows in by_server.items():
        rows.sort(key=lambda e: semver(e["server"]["version"]))
        live = [e for e in rows if official(e)["status"] != "deleted"] or rows
        assert [e["server"]["version"] for e in rows if official(e)["isLatest"]] == [live[-1]["server"]["version"]], (
            name
        )
        published = [when(official(e)["publishedAt"]) for e in rows]
        assert published == sorted(published) and len(set(published)) == len(published), name
        flags = [official(e)["status"] == "deleted" for e in rows]
        middle_deleted |= any(flags[1:-1]) and not flags[0] and not flags[-1]
        for entry in rows:
            meta = official(entry)
            assert when(meta["publishedAt"]) <= when(meta["statusChangedAt"]) <= when(meta["updatedAt"])
            if meta["status"] != "active":
                assert when(meta["updatedAt"]) > when(meta["publishedAt"])
    assert middle_deleted


def test_sample_packages_remotes_and_extras():
    servers = [e["server"] for e in SAMPLE]
    packages = [p for s in servers for p in s.get("packages", [])]
    kinds = Counter(p["registryType"] for p in packages)
    assert all(kinds[k] >= 2 for k in ("npm", "pypi", "oci", "nuget", "mcpb"))
    assert all(re.fullmatch(r"[a-f0-9]{64}", p["fileSha256"]) for p in packages if p["registryType"] == "mcpb")
    assert any(p.get("environmentVariables") for p in packages)
    assert any(p.get("packageArguments") for p in packages) and any(p.get("runtimeArguments") for p in packages)
    remotes = [r for s in servers for r in s.get("remotes", [])]
    assert {r["type"] for r in remotes} == {"streamable-http", "sse"}
    assert any(h.get("isSecret") and h["name"] == "Authorization" for r in remotes for h in r.get("headers", []))
    assert any(r.get("variables") for r in remotes)
    assert sum("_meta" in s for s in servers) >= 2
    assert all(
        list(s["_meta"]) == ["io.modelcontextprotocol.registry/publisher-provided"] for s in servers if "_meta" in s
    )
    assert any("x-experimental" in s for s in servers)
    schemas = Counter(s["$schema"].split("/")[-2] for s in servers)
    assert schemas.most_common(1)[0][0] == "2025-12-11" and schemas["2025-12-11"] > len(servers) * 0.8
    assert schemas["2025-09-29"] and schemas["2025-10-17"]


def test_sample_validates_against_each_rows_schema():
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMAS.is_dir():
        pytest.skip(f"upstream schemas not available at {SCHEMAS}")
    validators = {}
    for entry in SAMPLE:
        release = entry["server"]["$schema"].split("/")[-2]
        if release not in validators:
            schema = json.loads((SCHEMAS / f"{release}.server.schema.json").read_text())
            validators[release] = jsonschema.Draft7Validator(schema)
        errors = [e.message for e in validators[release].iter_errors(entry["server"])]
        assert not errors, (key(entry), errors)
