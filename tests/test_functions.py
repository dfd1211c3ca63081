"""Netlify and Cloudflare Pages answer every API path in a function built from the query engine
nginx runs (templates/hosts/mcp-query.js): run each in its host's own local runtime on the tree
its profile renders, and check it answers the list as the fixture upstream does and every other
API path as `mcp-mirror serve` does on the same tree.

- Cloudflare Pages: `wrangler pages dev` (workerd) on the tree, as `wrangler pages deploy`
  uploads it: `_worker.js` in advanced mode, `_routes.json`, `_redirects` and `_headers`.
- Netlify: `netlify dev --offline` (Netlify's functions runtime and redirect engine) on the
  tree as `netlify deploy --dir TREE --functions TREE/.mcp-mirror/netlify-functions` deploys
  it; edge functions are off (their runtime is Deno, downloaded at start; the tree has none).

Both are pinned by tests/functions/package-lock.json (`make install`). One runtime process per
(host, base), started once for the module. The tree is the deploy's root: with a path prefix
in the base URL, the clients ask `{prefix}/v0.1/...` and the functions' own paths answer there
(`_redirects` maps the rest of the prefix to the tree), as a Pages or Netlify site serving the
mirror under a prefix would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import orjson
import pytest
from conftest import free_port, serving
from test_conformance import (  # noqa: F401  (upstreams: a fixture, used by name)
    BASES,
    DETAIL_PATHS,
    EDGE_PATHS,
    ERROR_PATHS,
    VERSIONS_PATHS,
    assert_cors,
    upstreams,
)
from test_conformance_queries import BAD_QUERIES, QUERIES, WALKS

from mirror import hosts, paths, pipeline
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings

MODULES = Path(os.environ.get("MCP_MIRROR_FUNCTIONS", Path(sys.prefix) / "functions")) / "node_modules"
COMPATIBILITY_DATE = "2026-04-01"  # the pinned workerd (2026-04-26) refuses dates after its own
START_SECONDS = 90
PROBLEM = "application/problem+json"
PLUS_VERSION = ("com.example.weather/Forecast-API", "1.0.0+build.7")  # %2F in the name, %2B in the version


def runtime(binary: str) -> list[str]:
    """node and the runtime's CLI, or a clear failure (a skip only when asked for), as
    tests/test_vscode_gallery.py does."""
    node = shutil.which("node")
    if not node:
        if os.environ.get("MCP_MIRROR_SKIP_NODE") == "1":
            pytest.skip("node is not installed and MCP_MIRROR_SKIP_NODE=1")
        pytest.fail("node is not installed: `apt-get install nodejs npm`, then `make install`, "
                    "or set MCP_MIRROR_SKIP_NODE=1 to skip the Netlify and Cloudflare Pages function tests",
                    pytrace=False)
    cli = MODULES / ".bin" / binary
    if not cli.exists():
        pytest.fail(f"{binary} is not installed in {MODULES}: run `make install` (it needs npm; "
                    "tests/functions/package-lock.json pins it)", pytrace=False)
    return [node, str(cli.resolve())]


@dataclass(frozen=True)
class Deployed:
    host: str  # a profile of mirror.hosts: netlify or cloudflare-pages
    base: str  # a key of BASES
    origin: str
    client: httpx.Client  # based at the registry URL a client is configured with
    tree: Path


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """The sample crawled once per base URL and rendered for each host."""
    tmp = tmp_path_factory.mktemp("trees")
    out = {}
    with FakeUpstream() as upstream:
        for host in RUNTIMES:
            for base, url in BASES.items():
                settings = Settings(upstream=upstream.url, db=tmp / f"{host}-{base}.duckdb", out=tmp / f"{host}-{base}",
                                    base_url=url, profile=host)
                pipeline.build(settings)
                out[host, base] = settings.out.resolve()
    return out


def stop(process: subprocess.Popen) -> None:
    """Its whole process group: both CLIs start helpers (workerd, a functions server)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], origin: str, ready: str) -> Iterator[None]:
    """`command` in its own process group until `ready` (a path on `origin`) answers 200."""
    log = cwd / "runtime.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[1]} exited {process.returncode}:\n{log.read_text()[-4000:]}", pytrace=False)
            try:
                if httpx.get(origin + ready, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{command[1]} did not answer {ready} in {START_SECONDS} s:\n{log.read_text()[-4000:]}",
                            pytrace=False)
            time.sleep(0.2)
        yield
    finally:
        stop(process)


@contextmanager
def run_wrangler(tree: Path, prefix: str, tmp: Path) -> Iterator[str]:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    command = [*runtime("wrangler"), "pages", "dev", str(tree), "--ip", "127.0.0.1", "--port", str(port),
               "--inspector-port", str(free_port()), "--compatibility-date", COMPATIBILITY_DATE,
               "--log-level", "warn", "--show-interactive-dev-session=false"]
    # wrangler keeps its state and logs under the working directory and HOME: both are `tmp`
    env = {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"), "WRANGLER_SEND_METRICS": "false", "CI": "1"}
    with running(command, tmp, env, origin, f"{prefix}/v0.1/servers?limit=1"):
        yield origin


@contextmanager
def run_netlify(tree: Path, prefix: str, tmp: Path) -> Iterator[str]:
    # netlify dev writes .netlify/ and .gitignore into the site: it runs on a copy
    site = tmp / "site"
    shutil.copytree(tree, site)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    (tmp / "netlify.toml").write_text(
        f'[build]\npublish = "site"\n\n[functions]\ndirectory = "site/{hosts.NETLIFY_FUNCTIONS}"\n\n'
        f'[dev]\nframework = "#static"\nport = {port}\nstaticServerPort = {free_port()}\n'
        f"functionsPort = {free_port()}\nautoLaunch = false\n")
    command = [*runtime("netlify"), "dev", "--offline", "--internal-disable-edge-functions", "--no-open",
               "--skip-gitignore"]
    env = {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"), "BROWSER": "none", "CI": "1",
           "NETLIFY_TELEMETRY_DISABLED": "1"}
    with running(command, tmp, env, origin, f"{prefix}/v0.1/servers?limit=1"):
        yield origin


RUNTIMES = {"cloudflare-pages": run_wrangler, "netlify": run_netlify}


@pytest.fixture(scope="module", params=[(host, base) for host in RUNTIMES for base in BASES],
                ids=lambda param: "-".join(param))
def deployed(request, trees, tmp_path_factory) -> Iterator[Deployed]:
    host, base = request.param
    prefix = paths.base_path(BASES[base])
    tmp = tmp_path_factory.mktemp(f"{host}-{base}")
    with RUNTIMES[host](trees[host, base], prefix, tmp) as origin, \
            httpx.Client(base_url=origin + prefix, timeout=20) as client:
        yield Deployed(host, base, origin, client, trees[host, base])


def answer(response: httpx.Response) -> tuple[int, str, bytes]:
    return response.status_code, response.headers.get("content-type", ""), response.content


def compare(deployed: Deployed, upstream: httpx.Client, url: str) -> str | None:
    got, expected = deployed.client.get(url), upstream.get(url)
    if answer(got) != answer(expected):
        return f"{url}: {answer(got)[:2]} {got.content[:200]!r} != {answer(expected)[:2]} {expected.content[:200]!r}"
    return None


def walk(deployed: Deployed, upstream: httpx.Client, query: str) -> list[str]:
    """Every page of a walk, following upstream's cursors; the mismatches."""
    url, pages = f"/v0.1/servers?{query}", 0
    while True:
        if (mismatch := compare(deployed, upstream, url)) is not None:
            return [mismatch]
        pages += 1
        cursor = upstream.get(url).json()["metadata"].get("nextCursor")
        if not cursor:
            return []
        url = f"/v0.1/servers?{query}&cursor={quote(cursor, safe='')}"


def all_of(jobs) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return [line for lines in pool.map(lambda job: job(), jobs) for line in lines]


# MCP_MIRROR_FULL_FUNCTIONS=1 runs every walk and path on netlify dev too (several minutes more).
FULL = os.environ.get("MCP_MIRROR_FULL_FUNCTIONS") == "1"


def walks(host: str) -> list[str]:
    """Every walk on Pages; on netlify dev, whose function calls take a tenth of a second or
    more, the walks of 30 rows a page and up (every filter still walked to its end)."""
    if host == "cloudflare-pages" or FULL:
        return WALKS
    return [query for query in WALKS if int(query[6:].split("&")[0]) >= 30]


def test_every_walk_is_upstreams_page_by_page(deployed, upstreams):  # noqa: F811
    upstream = upstreams[deployed.base]
    assert all_of([lambda query=query: walk(deployed, upstream, query) for query in walks(deployed.host)]) == []


def test_computed_and_bad_queries_are_upstreams(deployed, upstreams):  # noqa: F811
    upstream = upstreams[deployed.base]
    urls = [f"/v0.1/servers?{query}" for query in [*QUERIES, *BAD_QUERIES, "include_deleted=true"]]
    urls += ["/v0/servers?version=latest&limit=100", "/v0/servers?search=git", "/v0/servers?limit=abc"]
    assert all_of([lambda url=url: [m] if (m := compare(deployed, upstream, url)) else [] for url in urls]) == []


def test_list_answers_carry_cors_and_the_api_headers(deployed):
    for url in ("/v0.1/servers", "/v0/servers?limit=3", "/v0.1/servers?search=git", "/v0.1/servers?limit=0",
                "/v0.1/servers?updated_since=yesterday"):
        response = deployed.client.get(url)
        assert_cors(response)
        assert response.headers.get("x-content-type-options") == "nosniff", url
        assert response.headers.get("cache-control") == hosts.API_CACHE_CONTROL, url


@pytest.mark.parametrize("api", ["v0.1", "v0"])
def test_preflight_and_head_on_the_list(deployed, api):
    preflight = deployed.client.options(f"/{api}/servers?limit=5", headers={
        "Origin": "vscode-file://vscode-app", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert_cors(preflight)
    assert preflight.headers.get("access-control-max-age") == hosts.PREFLIGHT_MAX_AGE
    head, get = deployed.client.head(f"/{api}/servers?limit=5"), deployed.client.get(f"/{api}/servers?limit=5")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert_cors(head)
    for method in ("POST", "PUT", "DELETE"):
        refused = deployed.client.request(method, f"/{api}/servers")
        assert (refused.status_code, refused.headers["content-type"]) == (405, PROBLEM), method


@pytest.mark.parametrize("api", ["v0.1", "v0"])
def test_encoded_slash_and_plus_in_a_version_path(deployed, upstreams, api):  # noqa: F811
    name, version = PLUS_VERSION
    encoded = quote(name, safe="")
    for url in (f"/{api}/servers/{encoded}/versions/{quote(version, safe='')}", f"/{api}/servers/{encoded}/versions",
                f"/{api}/servers/{encoded}/versions/latest"):
        got, expected = deployed.client.get(url), upstreams[deployed.base].get(url)
        assert got.status_code == expected.status_code == 200, url
        assert got.json() == expected.json(), url
        assert_cors(got)


def test_unknown_servers_are_problem_404s(deployed):
    for url in ("/v0.1/servers/io.github.nobody%2Fnothing/versions", "/v0/servers/io.github.nobody/nothing/versions",
                "/v0.1/servers/io.github.nobody%2Fnothing/versions/latest"):
        response = deployed.client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == PROBLEM, (url, response.headers["content-type"])
        assert response.json() == paths.problem_body("server-not-found"), url
        assert_cors(response)


def v0(path: str) -> str:
    return "/v0" + path.removeprefix("/v0.1")


# Every non-list API path of tests/test_conformance.py, under both prefixes, and a few that
# serve refuses or routes with care (dot segments, NUL, a bad include_deleted, the host's files).
API_PATHS = [path for path in VERSIONS_PATHS + DETAIL_PATHS + ERROR_PATHS + EDGE_PATHS
             if not path.startswith("/v0.1/servers?")]
API_PATHS = API_PATHS + [v0(path) for path in API_PATHS] + [
    "/v0.1", "/v0/", "/v0.1/health", "/v0/x/mcp-mirror/state", "/v0.1/x/mcp-mirror/nope",
    "/v0.1/servers/io.github.nobody%2Fnothing/versions?include_deleted=maybe",
    DETAIL_PATHS[0].partition("?")[0] + "?INCLUDE_DELETED=1", VERSIONS_PATHS[0].partition("?")[0] + "?include_deleted=",
    "/v0.1/servers/%00/versions", "/v0.1/servers/%ff/versions", "/v0.1/servers/..%2F..%2F..%2Fetc",
    "/v0.1/servers/a%2F..%2F..%2F_problems/bad-limit.json", "/v0.1/..%2F.mcp-mirror/mcp-query.js",
]


def api_paths(host: str) -> list[str]:
    """All of them on Pages; on netlify dev, whose function calls take a tenth of a second or
    more, every sixth and the extras (each kind of path is still there), but a path that is no
    UTF-8: netlify dev answers it 400 with an HTML page of its own before any function runs."""
    if host == "cloudflare-pages":
        return API_PATHS
    return [path for path in (API_PATHS if FULL else API_PATHS[::6] + API_PATHS[-13:]) if "%ff" not in path]


def test_api_paths_answer_what_serve_answers(deployed):
    """Status, Content-Type and body, as `mcp-mirror serve` answers on the same tree."""
    with serving(deployed.tree) as server, \
            httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}{deployed.client.base_url.path.rstrip('/')}",
                         timeout=20) as serve:
        def check(url: str) -> list[str]:
            got, expected = deployed.client.get(url), serve.get(url)
            if answer(got) == answer(expected):
                return []
            return [f"{url}: {answer(got)[:2]} {got.content[:160]!r} != {answer(expected)[:2]} "
                    f"{expected.content[:160]!r}"]
        assert all_of([lambda url=url: check(url) for url in dict.fromkeys(api_paths(deployed.host))]) == []


def test_api_paths_carry_cors_head_and_preflight(deployed):
    url = VERSIONS_PATHS[0]
    for path in (url, v0(url), "/v0.1/servers/io.github.nobody%2Fnothing/versions", "/v0.1/nope"):
        response = deployed.client.get(path)
        assert_cors(response)
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert response.headers.get("cache-control") == hosts.API_CACHE_CONTROL, path
        head = deployed.client.head(path)
        assert (head.status_code, head.content, head.headers["content-type"]) == (
            response.status_code, b"", response.headers["content-type"]), path
    preflight = deployed.client.options(url, headers={"Origin": "vscode-file://vscode-app",
                                                      "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert_cors(preflight)


def test_the_function_answers_only_under_the_base(deployed):
    """With a prefix, the list at the origin's root is no API (the tree's own files there are
    what the function reads); nor are the function's sources ever served."""
    if deployed.base == "prefix":
        response = httpx.get(deployed.origin + "/v0.1/servers?limit=1")
        assert response.status_code == 404
    for path in (f"/{hosts.NETLIFY_FUNCTIONS}/mcp-query.mjs", "/.mcp-mirror/"):
        assert deployed.client.get(path).status_code == 404, path


def test_routes_json_sends_the_api_to_the_worker(trees):
    for base, url in BASES.items():
        prefix = paths.base_path(url)
        routes = orjson.loads((trees["cloudflare-pages", base] / "_routes.json").read_bytes())
        assert routes == {"version": 1, "include": [f"{prefix}/v0.1", f"{prefix}/v0.1/*", f"{prefix}/v0",
                                                    f"{prefix}/v0/*"], "exclude": []}


def test_discovery_documents_and_cards_answer_without_a_redirect(deployed):
    """ARD's documents and the Server Cards they link to (at the URLs they give) are the
    deploy's static files: each answers 200 itself (importers refuse a 3xx), the cards as
    their own media type from `_headers`, with the API's CORS and cache headers
    (tests/test_ard.py checks what they hold)."""
    base_url = BASES[deployed.base]
    catalog = orjson.loads((deployed.tree / paths.ARD_FILE).read_bytes())
    cards = [entry["url"] for entry in catalog["entries"] if entry["type"] == hosts.SERVER_CARD]
    assert any("+" in url for url in cards)  # a version with build metadata, spelt as it is
    for url in [f"{base_url}/{paths.ARD_FILE}", f"{base_url}/{paths.AI_CATALOG_FILE}", *cards]:
        path = url[len(base_url):]
        response = deployed.client.get(path)
        assert response.status_code == 200, (url, response.status_code, response.headers)
        assert response.content == (deployed.tree / unquote(path.lstrip("/"))).read_bytes(), url
        expected = hosts.SERVER_CARD if url in cards else hosts.JSON
        if deployed.host == "netlify":
            # netlify dev's static server keeps its own Content-Type and Cache-Control, where
            # Netlify's CDN applies `_headers` to both (docs.netlify.com/manage/routing/headers)
            expected, cache = hosts.JSON, response.headers.get("cache-control")
        else:
            cache = hosts.API_CACHE_CONTROL
        assert response.headers["content-type"].split(";")[0] == expected, url
        assert response.headers.get("cache-control") == cache, url
        assert_cors(response)
