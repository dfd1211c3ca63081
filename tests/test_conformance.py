"""Serve the rendered sample with real servers and check it the way real clients do.

One build per base URL (the root, and a path prefix), served by `mcp-mirror serve` and by
a real nginx running the config `mirror.hosts` generates. The same checks run against
every (server, base) pair, and nginx must answer exactly what `serve` answers, so the
generated config cannot drift from `mirror/routes.py`. Clients never follow redirects:
VS Code's fetch would, but httpx and most API clients do not, and a redirect on an API
path also needs CORS headers of its own.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from clients import copilot_lookup, crawl, rows, vscode_gallery, vscode_lookup
from conftest import free_port, serving
from openapi import errors

from mirror import hosts, paths
from mirror.fake_upstream import FakeUpstream, load_sample
from mirror.models import OFFICIAL

# Only the path of a base URL matters for routing, so the port need not be known yet.
BASES = {"root": "http://127.0.0.1:8000", "prefix": "http://127.0.0.1:8000/some/prefix"}

SAMPLE = load_sample()
NAMES = sorted({entry["server"]["name"] for entry in SAMPLE})
KEYS = [(entry["server"]["name"], entry["server"]["version"]) for entry in SAMPLE]
DELETED = {key for key, entry in zip(KEYS, SAMPLE, strict=True) if entry["_meta"][OFFICIAL]["status"] == "deleted"}
VISIBLE = sorted({name for name, version in KEYS if (name, version) not in DELETED})
HIDDEN = sorted(set(NAMES) - set(VISIBLE))  # every version deleted


def versions_path(name: str) -> str:
    return f"/v0.1/servers/{quote(name, safe='')}/versions"


# Every API path that answers 200, by the schema its body follows.
LIST_PATHS = ["/v0.1/servers" + query for query in (
    "", "?limit=1", "?limit=10", "?limit=50&version=latest", "?version=latest&limit=100",
    "?include_deleted=true&limit=100", "?include_deleted=true&version=latest", "?updated_since=2025-01-01T00:00:00Z",
)]
VERSIONS_PATHS = [versions_path(name) + query for name in NAMES
                  for query in ("?include_deleted=true", *([""] if name in VISIBLE else []))]
DETAIL_PATHS = [versions_path(name) + "/latest" + query for name in NAMES
                for query in ("?include_deleted=true", *([""] if name in VISIBLE else []))] + [
    f"{versions_path(name)}/{quote(version, safe='')}" + ("?include_deleted=true" if (name, version) in DELETED else "")
    for name, version in KEYS]
ERROR_PATHS = [
    "/v0.1/servers?limit=0", "/v0.1/servers?limit=101", "/v0.1/servers?limit=abc",
    "/v0.1/servers?updated_since=yesterday", "/v0.1/servers?include_deleted=maybe",
    "/v0.1/servers/io.github.nobody%2Fnothing/versions", "/v0.1/servers/io.github.nobody%2Fnothing/versions/latest",
    versions_path(NAMES[0]) + "/99.99.99", versions_path(HIDDEN[0]), versions_path(HIDDEN[0]) + "/latest",
    "/v0.1/nope",
]
# Spellings a host might answer with a redirect: a trailing slash, an empty cursor.
EDGE_PATHS = ["/v0.1/servers/", versions_path(VISIBLE[0]) + "/", "/v0.1/servers?limit=50&version=latest&cursor=",
              # parameter names are case-sensitive, as upstream's: these are unknown parameters
              versions_path(HIDDEN[0]) + "?INCLUDE_DELETED=true", versions_path(VISIBLE[0]) + "?Include_deleted=maybe"]
# The servers that compute the list queries no page holds (test_conformance_queries.py);
# the others answer a 400 problem for search and exact versions, and updated_since with a superset.
COMPUTING = {"serve", "nginx", "caddy"}
COMPUTED = {"/v0.1/servers?updated_since=2025-01-01T00:00:00Z"}
JSON_TYPE = re.compile(r"application/json(;\s*charset=utf-8)?", re.IGNORECASE)


@dataclass(frozen=True)
class Host:
    origin: str  # scheme://host:port, for paths outside the base
    client: httpx.Client  # its base_url is the registry URL a client is configured with
    kind: str = "serve"  # which server answers: a key of SERVERS
    base: str = "root"  # which of BASES it serves under


@pytest.fixture(scope="module")
def sites(sample_tree) -> dict[str, Path]:
    """The sample rendered once per base URL (the session's trees: served, never changed)."""
    return {base: sample_tree("nginx", url).out for base, url in BASES.items()}


@contextmanager
def run_serve(site: Path, base_url: str, tmp: Path) -> Iterator[str]:
    with serving(site) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def server_binary(name: str) -> str:
    """The web server's binary; a clear failure when missing, a skip only when asked for."""
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)),
                                       None)
    if found:
        return found
    if os.environ.get(f"MCP_MIRROR_SKIP_{name.upper()}") == "1":
        pytest.skip(f"{name} is not installed and MCP_MIRROR_SKIP_{name.upper()}=1")
    pytest.fail(f"{name} is not installed: run `make system-deps` as root (or `apt-get install {name}`), "
                f"or set MCP_MIRROR_SKIP_{name.upper()}=1 to skip the {name} conformance tests", pytrace=False)


def nginx_conf(tmp: Path, port: int, directives: str) -> str:
    """A self-contained nginx.conf: every path under `tmp`; workers run as root when the
    tests do, because pytest's tmp dirs are private to their owner."""
    user = "user root;\n" if os.getuid() == 0 else ""
    temp_paths = "\n".join(f"    {kind}_temp_path {tmp}/{name};" for kind, name in (
        ("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fcgi"), ("uwsgi", "uwsgi"), ("scgi", "scgi")))
    return (f"{load_njs()}daemon off;\nmaster_process on;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log;\n{user}events {{}}\n"
            f"http {{\n    access_log {tmp}/access.log;\n{temp_paths}\n"
            f"    server {{\n        listen 127.0.0.1:{port};\n        server_name localhost;\n"
            f"{directives}\n    }}\n}}\n")


NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")  # Debian's libnginx-mod-http-js


def load_njs() -> str:
    """The generated directives compute list queries with njs, which nginx loads at the top level."""
    if NJS_MODULE.is_file():
        return f"load_module {NJS_MODULE};\n"
    if os.environ.get("MCP_MIRROR_SKIP_NGINX") == "1":
        pytest.skip("njs is not installed and MCP_MIRROR_SKIP_NGINX=1")
    pytest.fail(f"{NJS_MODULE} is missing: run `make system-deps` as root (or `apt-get install libnginx-mod-http-js`)",
                pytrace=False)


@contextmanager
def run_nginx(site: Path, base_url: str, tmp: Path) -> Iterator[str]:
    """Real nginx with the generated config for `site`, on a free port."""
    with nginx_serving(hosts.host_config("nginx", out=site, base_url=base_url), tmp) as origin:
        yield origin


@contextmanager
def nginx_serving(directives: str, tmp: Path) -> Iterator[str]:
    """Real nginx running `directives` inside a server block, on a free port; a config
    `nginx -t` rejects fails the test with nginx's own words."""
    binary = server_binary("nginx")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(nginx_conf(tmp, port, directives))
    command = [binary, "-p", f"{tmp}/", "-e", str(tmp / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if checked.returncode:
        pytest.fail(f"nginx -t rejects the generated config:\n{checked.stderr}\n{conf.read_text()}", pytrace=False)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, tmp / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    error_log = log.read_text() if log.exists() else ""
    pytest.fail(f"the server did not accept connections on port {port}:\n{error_log[-3000:]}", pytrace=False)


@contextmanager
def run_caddy(site: Path, base_url: str, tmp: Path) -> Iterator[str]:
    """Real Caddy with the generated site block, on a free port, and `mcp-mirror serve` as
    its query sidecar; its admin API is off so several can run at once, and its state stays
    under `tmp`."""
    binary = server_binary("caddy")
    with serving(site) as sidecar, _caddy(binary, site, base_url, tmp,
                                          sidecar=f"127.0.0.1:{sidecar.server_address[1]}") as origin:
        yield origin


@contextmanager
def _caddy(binary: str, site: Path, base_url: str, tmp: Path, *, sidecar: str) -> Iterator[str]:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    config = tmp / "Caddyfile"
    site_block = hosts.host_config("caddy", out=site, base_url=origin + paths.base_path(base_url), sidecar=sidecar)
    config.write_text("{\n\tadmin off\n\tauto_https off\n}\n\n" + site_block)
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config")}
    checked = subprocess.run([binary, "validate", "--config", str(config), "--adapter", "caddyfile"],
                             capture_output=True, text=True, env=env)
    if checked.returncode:
        pytest.fail(f"caddy rejects the generated config:\n{checked.stderr[-3000:]}\n{config.read_text()}",
                    pytrace=False)
    log = tmp / "caddy.log"
    with log.open("w") as output:
        process = subprocess.Popen([binary, "run", "--config", str(config), "--adapter", "caddyfile"],
                                   stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, process, log)
        yield origin
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


SERVERS: dict[str, Callable] = {"serve": run_serve, "nginx": run_nginx, "caddy": run_caddy}


@pytest.fixture(scope="module")
def start(sites, tmp_path_factory) -> Iterator[Callable[[str, str], Host]]:
    """start(kind, base) -> Host; each server starts on first use and stops with the module."""
    started: dict[tuple[str, str], Host] = {}
    with ExitStack() as stack:
        def get(kind: str, base: str) -> Host:
            if (kind, base) not in started:
                tmp = tmp_path_factory.mktemp(f"{kind}-{base}")
                origin = stack.enter_context(SERVERS[kind](sites[base], BASES[base], tmp))
                client = stack.enter_context(httpx.Client(base_url=origin + paths.base_path(BASES[base]), timeout=10))
                started[kind, base] = Host(origin, client, kind, base)
            return started[kind, base]
        yield get


@pytest.fixture(scope="module", params=[
    pytest.param((kind, base), id=f"{kind}-{base}", marks=[getattr(pytest.mark, kind)] if kind != "serve" else [])
    for kind in SERVERS for base in BASES])
def host(request, start) -> Host:
    return start(*request.param)


def assert_problem(response: httpx.Response, status: int) -> None:
    """An RFC 9457 problem: never a redirect, a 403, a 200 or an HTML page."""
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code == status, (where, response.status_code, response.text[:200])
    assert response.headers["content-type"].split(";")[0] == "application/problem+json", where
    body = response.json()
    assert body["status"] == status and isinstance(body["title"], str) and isinstance(body["detail"], str), where


def assert_cors(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url}"
    headers = response.headers
    assert headers.get("access-control-allow-origin") == "*", where
    methods = {m.strip().upper() for m in headers.get("access-control-allow-methods", "").split(",")}
    assert {"GET", "OPTIONS"} <= methods, where
    allowed = {h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")}
    assert {"authorization", "content-type"} <= allowed, where


# -- VS Code and Copilot ---------------------------------------------------------------


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, httpx.Client]]:
    """The fixture upstream at each base path, so that both answer the same paths."""
    with FakeUpstream() as root, FakeUpstream(prefix="/some/prefix") as prefixed, \
            httpx.Client(base_url=root.url, timeout=10) as a, httpx.Client(base_url=prefixed.url, timeout=10) as b:
        yield {"root": a, "prefix": b}


def test_vscode_gallery_lists_every_visible_server_once_as_from_upstream(host, upstreams):
    gallery = vscode_gallery(host.client)
    assert gallery.skipped == []
    names = [item["server"]["name"] for item in gallery.items]
    assert sorted(names) == VISIBLE
    expected = vscode_gallery(upstreams[host.base])
    assert (gallery.urls, gallery.items) == (expected.urls, expected.items)


def test_vscode_and_copilot_find_every_visible_server(host):
    for lookup in (vscode_lookup, copilot_lookup):
        for name in VISIBLE:
            response = lookup(host.client, name)
            assert response.status_code == 200, (lookup.__name__, name, response.status_code)
            assert JSON_TYPE.fullmatch(response.headers["content-type"])
            assert response.json()["server"]["name"] == name
        for name in HIDDEN:
            assert_problem(lookup(host.client, name), 404)


def test_unknown_servers_and_versions_are_problem_404s(host):
    for name in ("io.github.nobody/nothing", "io.github.nobody/" + NAMES[0].split("/")[1]):
        assert_problem(copilot_lookup(host.client, name), 404)
    assert_problem(host.client.get("/v0.1/servers/io.github.nobody%2Fnothing/versions"), 404)
    assert_problem(host.client.get(versions_path(NAMES[0]) + "/99.99.99"), 404)
    assert_problem(host.client.get("/v0.1/nope"), 404)


# -- HTTP: CORS, headers, redirects, HEAD ----------------------------------------------


def test_cors_on_gets_and_preflights(host):
    for path in ("/v0.1/servers?limit=50&version=latest", versions_path(VISIBLE[0]) + "/latest",
                 "/v0.1/servers/io.github.nobody%2Fnothing/versions/latest"):
        assert_cors(host.client.get(path))
        preflight = host.client.options(path, headers={
            "Origin": "vscode-file://vscode-app", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert preflight.is_success, (path, preflight.status_code)
        assert_cors(preflight)


def test_api_answers_are_json_nosniff_cacheable_and_never_redirect(host):
    for path in LIST_PATHS + VERSIONS_PATHS + DETAIL_PATHS:
        response = host.client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.headers.get("location"))
        assert JSON_TYPE.fullmatch(response.headers["content-type"]), (path, response.headers["content-type"])
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert "cache-control" in response.headers, path
    for path in ERROR_PATHS:
        response = host.client.get(path)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.headers.get("location"))
        assert response.headers.get("x-content-type-options") == "nosniff", path
    for path in EDGE_PATHS:
        response = host.client.get(path)
        assert not response.is_redirect, (path, response.status_code, response.headers.get("location"))


def test_head_answers_headers_without_a_body(host):
    for path in ("/v0.1/servers", versions_path(VISIBLE[0]) + "/latest"):
        response = host.client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert JSON_TYPE.fullmatch(response.headers["content-type"])


def test_unknown_paths_outside_the_api_are_404(host):
    base = str(host.client.base_url).rstrip("/")
    outside = {base + "/nope", host.origin + "/nope"}
    if base != host.origin:  # the API lives under the prefix only
        outside |= {host.origin + "/v0.1/servers", host.origin + "/v0.1/servers?limit=1"}
    for url in outside:
        assert host.client.get(url).status_code == 404, url


def test_catalog_pages_are_html_with_the_content_security_policy(host):
    """The HTML catalog answers with its pages, assets and feed typed by suffix, and every page
    carries the CSP header; a missing page is the catalog's 404 page with status 404."""
    name = VISIBLE[0]
    for path, media in (("/", "text/html"), (f"/servers/{name}/", "text/html"), ("/changes/", "text/html"),
                        ("/assets/catalog.css", "text/css"), ("/assets/catalog.js", "text/javascript"),
                        ("/assets/search.json", "application/json"), ("/feed.atom", "application/atom+xml")):
        response = host.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["content-type"].split(";")[0] == media, (path, response.headers["content-type"])
        if media == "text/html":
            assert response.headers.get("content-security-policy") == hosts.PAGE_CSP_HEADER, path
            assert 'http-equiv="Content-Security-Policy"' in response.text and "<script src=" in response.text
    missing = host.client.get("/servers/no.such/server/")
    assert missing.status_code == 404 and "Not found" in missing.text


# -- bodies ----------------------------------------------------------------------------


def test_every_answer_follows_the_openapi_schema(host):
    for path in LIST_PATHS:
        query = path.partition("?")[2]
        for body in crawl(host.client, query):
            assert errors("ServerList", body) == [], path
    for path in VERSIONS_PATHS:
        assert errors("ServerList", host.client.get(path).json()) == [], path
    for path in DETAIL_PATHS:
        assert errors("ServerResponse", host.client.get(path).json()) == [], path


def test_encoded_names_and_versions_resolve(host):
    forecast = "/v0.1/servers/com.example.weather%2FForecast-API/versions/"
    cases = {
        forecast + "1.0.0%2Bbuild.7": ("com.example.weather/Forecast-API", "1.0.0+build.7"),
        forecast + "1.0.0+build.7": ("com.example.weather/Forecast-API", "1.0.0+build.7"),
        forecast + "2.0.0%2B20250101": ("com.example.weather/Forecast-API", "2.0.0+20250101"),
        forecast + "2.0.0+20250101": ("com.example.weather/Forecast-API", "2.0.0+20250101"),
        forecast.replace("%2F", "%2f") + "2.0.0%2b20250101": ("com.example.weather/Forecast-API", "2.0.0+20250101"),
        "/v0.1/servers/io.github.OtherVibes%2Fmcp-as-a-judge/versions/latest":
            ("io.github.OtherVibes/mcp-as-a-judge", "0.2.1"),
        "/v0.1/servers/ai.smithery%2Fx.y_z/versions/latest": ("ai.smithery/x.y_z", "0.1.1"),
        "/v0.1/servers/io.github.CSharpDev-Tools%2FSql.Server.Mcp/versions/0.9.0":
            ("io.github.CSharpDev-Tools/Sql.Server.Mcp", "0.9.0"),
    }
    for path, (name, version) in cases.items():
        response = host.client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        server = response.json()["server"]
        assert (server["name"], server["version"]) == (name, version), path


# -- query semantics (hosts with query routing) ----------------------------------------


def test_bad_limits_are_422(host):
    for limit in ("0", "101", "abc"):
        assert_problem(host.client.get(f"/v0.1/servers?limit={limit}"), 422)


def test_include_deleted_adds_the_deleted_rows(host):
    default = rows(crawl(host.client, "limit=100"))
    everything = rows(crawl(host.client, "limit=100&include_deleted=true"))
    assert len(everything) == len(SAMPLE) > len(default) == len(SAMPLE) - len(DELETED)
    assert set(everything) >= DELETED and not DELETED & set(default)


def test_version_latest_has_one_row_per_visible_server(host):
    names = [name for name, _ in rows(crawl(host.client, "version=latest&limit=100"))]
    assert len(names) == len(set(names)) and sorted(names) == VISIBLE


@pytest.mark.parametrize("query", ["", "version=latest", "include_deleted=true"])
def test_page_sizes_give_the_same_rows_in_the_same_order(host, query):
    expected = rows(crawl(host.client, "&".join(filter(None, [query, "limit=100"]))))
    assert expected
    for limit in (10, 30, 50, 100):
        bodies = crawl(host.client, "&".join(filter(None, [query, f"limit={limit}"])))
        assert rows(bodies) == expected, limit
        assert all(body["metadata"]["count"] == len(body["servers"]) <= limit for body in bodies), limit


def test_any_cursor_is_upstreams_keyset(host, upstreams):
    """A cursor naming no row (an older mirror's page token too) is a position in (name,
    version) order, as upstream reads it: the rows after it."""
    for cursor in ("30-1", "10-9999999999", "zzz", NAMES[4], f"{NAMES[4]}:0"):
        response = host.client.get("/v0.1/servers", params={"cursor": cursor})
        assert response.content == upstreams[host.base].get("/v0.1/servers", params={"cursor": cursor}).content


def test_updated_since_answers_with_deleted_rows(host):
    assert set(rows(crawl(host.client, "updated_since=2025-01-01T00:00:00Z&limit=100"))) >= DELETED


# -- nginx and Caddy answer what serve answers -----------------------------------------


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
@pytest.mark.parametrize("base", BASES)
def test_web_servers_answer_exactly_what_serve_answers(start, kind, base):
    server, serve = start(kind, base), start("serve", base)
    for path in LIST_PATHS + VERSIONS_PATHS + DETAIL_PATHS + ERROR_PATHS + EDGE_PATHS:
        if path in COMPUTED and kind not in COMPUTING:
            continue
        got, expected = server.client.get(path), serve.client.get(path)
        assert answer(got) == answer(expected), path


def answer(response: httpx.Response) -> tuple[int, object]:
    """Status and parsed body; the start of the text where the body is not JSON."""
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:300]


# NUL, C0 controls, DEL, C1 NEL and a bidi override in a server name or version, percent-encoded.
CONTROL = ("%00", "%01", "%0A", "%0d", "%1b", "%7F", "%c2%85", "%e2%80%ae")
CONTROL_PATHS = [path for c in CONTROL for path in (
    f"/v0.1/servers{c}", f"/v0.1/servers/{c}/versions", f"/v0.1/servers/io.github.x%2F{c}/versions/latest",
    f"{versions_path(VISIBLE[0])}/{c}", f"{versions_path(VISIBLE[0])}/1.0.0{c}")]


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
@pytest.mark.parametrize("base", BASES)
def test_control_characters_in_paths_answer_what_serve_answers(start, kind, base):
    server, serve = start(kind, base), start("serve", base)
    for path in CONTROL_PATHS:
        expected = answer(serve.client.get(path))
        assert expected[0] in (400, 404), path
        assert answer(server.client.get(path)) == expected, path
    # Raw, as only attackers send them: refused before any routing (Caddy's body is Go's own).
    for raw in ("\x01", "\x1b[31m", "\x7f", "%zz"):
        target = f"{paths.base_path(BASES[base])}/v0.1/servers/{raw}/versions"
        assert raw_status(server.origin, target) == raw_status(serve.origin, target) == 400, repr(raw)


def raw_status(origin: str, target: str) -> int:
    """The status for a request line sent as is, which no HTTP client would do."""
    host, port = origin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        return int(sock.recv(65536).split()[1])


# -- the static profile on a plain file server -----------------------------------------


@pytest.fixture(scope="module")
def static_host(sample_tree, tmp_path_factory) -> Iterator[str]:
    """`render --host static` published under /repo/ of a plain file server (as a GitHub
    Pages project site is): no rewrites, no headers, directories redirect to a slash."""
    docroot = tmp_path_factory.mktemp("static")
    (docroot / "repo").symlink_to(sample_tree("static", "https://owner.github.io/repo").out.resolve())
    handler = functools.partial(QuietFileHandler, directory=str(docroot))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo"
    finally:
        server.shutdown()
        server.server_close()


class QuietFileHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def test_static_profile_on_a_plain_file_server(static_host):
    """What the static profile promises: clients that follow the trailing-slash redirect get
    one page of the latest versions, every server's versions, latest and version documents,
    bodies that follow the schema, and a 404 for unknown servers."""
    with httpx.Client(base_url=static_host, follow_redirects=True, timeout=10) as client:
        gallery = vscode_gallery(client)
        assert gallery.skipped == [] and len(gallery.urls) == 2  # probe + one page: no cursor to follow
        assert sorted(item["server"]["name"] for item in gallery.items) == VISIBLE
        first = client.get("/v0.1/servers?limit=50&version=latest").json()
        assert "nextCursor" not in first["metadata"] and errors("ServerList", first) == []
        docker = client.get("/v0/servers?version=latest&limit=100")  # Docker's community-registry import
        assert docker.status_code == 200 and docker.json() == first
        for name in VISIBLE:
            latest = vscode_lookup(client, name)
            assert latest.status_code == 200 and latest.json()["server"]["name"] == name
            assert errors("ServerResponse", latest.json()) == []
            assert errors("ServerList", client.get(versions_path(name)).json()) == []
        for name, version in KEYS:
            response = client.get(f"{versions_path(name)}/{quote(version, safe='')}")
            assert response.status_code == (404 if (name, version) in DELETED else 200), (name, version)
        for name in HIDDEN:
            assert vscode_lookup(client, name).status_code == 404
        assert copilot_lookup(client, "io.github.nobody/nothing").status_code == 404
    with httpx.Client(base_url=static_host, timeout=10) as client:
        hop = client.get("/v0.1/servers")
        assert hop.status_code == 301 and hop.headers["location"].endswith("/v0.1/servers/")
