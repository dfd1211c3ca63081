"""Versions as real upstream rows spell them (issue #24): each is mirrored and answered by
every host for the URL a client sends, or rejected with a reason naming the row.

One crawl of a fixture upstream, rendered for nginx (served by `mcp-mirror serve`, real
nginx and real Caddy) and for the static profile (served by a plain file server); the
CloudFront Function and Netlify's rule matcher are run on the same URLs.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import ThreadingHTTPServer
from pathlib import PurePosixPath
from urllib.parse import quote, unquote, urljoin

import httpx
import pytest
from factories import item
from test_cloudfront import run_function
from test_conformance import QuietFileHandler, run_caddy, run_nginx, run_serve

from mirror import hosts, paths, pipeline, publish
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings
from mirror.store import open_store

NAME = "io.github.quirky/server"
BASE = "http://127.0.0.1:8000"
PREFIX = "/some/prefix"
SCRIPT = "<script>alert(1)<img src=x onerror=alert(1)>"  # a version has no `/`: no closing tag
# Every version here is one upstream accepts (any string of at most 255 characters but
# `latest`, without `/`); the deleted ones are answered only with include_deleted.
MIRRORED = ["{{VERSION}}", "1.0.1\u00ba", "1.0 beta", "v2 (rc)", "v17.1.7-3", "2025.11.13+pr147-5d1f8b0",
            "1.0.0-RC1", "1.0.0-rc1", "LATEST", ".hidden", ".mcp-mirror", "_x", "1.0.", "con", "index.JSON",
            "1?x", "100%", "1%2F", "a\\b", "1.0\u202e-rtl\u200f", "\U0001f680-1.0.0", "%" * 255, "#" * 255, "?" * 255,
            "\\" * 255, '"' * 255, "'" * 255, "+" * 255, (SCRIPT * 6)[:255], "1+ " * 85,
            ("%#?\\\"'<script>&amp; " * 20)[:255],
            # from public dumps of the registry's list (README, Real rows)
            "mcp", "1.0.17.6", "v17.6.0-1", "1.0.0rc3", "2025.11.17.0708"]
DELETED = {"1.0 beta", "?" * 255, "%" * 255, "+" * 255, "1.0.0-rc1"}
LATEST = "v17.1.7-3"
REJECTED = {  # version: a fragment of its reason
    "latest": "reserved", "index.json": "reserved", "include-deleted.json": "reserved", "1/2": "'/'",
    "..": "dot segment", "x\x00": "U+0000", "x\x1b[2J": "U+001B", "\u202e\u200f" * 127 + "\u202e": "NAME_MAX",
    "\U0001f600" * 255: "NAME_MAX", "\u00e9" * 128: "NAME_MAX",
}
CASES = {"io.github.A/x": "1.0.0", "io.github.a/x": "1.0.0", "io.github.a/X": "1.0.0"}  # names apart in case only


def entries() -> list[dict]:
    rows = [item(NAME, version, latest=version == LATEST, status="deleted" if version in DELETED else "active",
                 published=f"2025-10-01T00:00:{n:02d}Z")
            for n, version in enumerate(MIRRORED)]
    rows += [item(NAME, version) for version in REJECTED]
    rows += [item(name, version, latest=True) for name, version in CASES.items()]
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, object]:
    """One crawl; the nginx tree (for serve, nginx and Caddy) and the static tree."""
    tmp = tmp_path_factory.mktemp("quirky")
    with FakeUpstream(entries()) as upstream:
        settings = Settings(upstream=upstream.url, db=tmp / "m.duckdb", out=tmp / "site", base_url=BASE)
        result = pipeline.build(settings)
    static = Settings(db=settings.db, out=tmp / "static" / "repo", base_url="https://owner.github.io/repo",
                      profile="static")
    pipeline.render(static)
    prefixed = Settings(db=settings.db, out=tmp / "prefixed", base_url=BASE + PREFIX)
    pipeline.render(prefixed)
    return {"tmp": tmp, "settings": settings, "result": result, "site": settings.out, "static": static.out,
            "prefixed": prefixed.out}


@pytest.fixture(scope="module")
def clients(built, tmp_path_factory) -> Iterator[dict[str, httpx.Client]]:
    """`mcp-mirror serve`, nginx and Caddy on the nginx tree; a plain file server on the static one."""
    with ExitStack() as stack:
        out = {}
        for kind, run in (("serve", run_serve), ("nginx", run_nginx), ("caddy", run_caddy)):
            origin = stack.enter_context(run(built["site"], BASE, tmp_path_factory.mktemp(kind)))
            out[kind] = stack.enter_context(httpx.Client(base_url=origin, timeout=10))
        for kind, run in (("nginx", run_nginx), ("caddy", run_caddy)):  # the tree's API under a path prefix
            origin = stack.enter_context(run(built["prefixed"], BASE + PREFIX, tmp_path_factory.mktemp(kind)))
            out[f"{kind}-prefix"] = stack.enter_context(httpx.Client(base_url=origin + PREFIX, timeout=10))
        handler = functools.partial(QuietFileHandler, directory=str(built["site"].parent / "static"))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        out["static"] = stack.enter_context(httpx.Client(
            base_url=f"http://127.0.0.1:{server.server_address[1]}/repo", timeout=10, follow_redirects=True))
        yield out


def spellings(version: str) -> list[str]:
    """The URL path segments clients send for `version`: encoded, and with a raw `+`."""
    encoded = quote(version, safe="")
    return [encoded, quote(version, safe="+")] if "+" in version else [encoded]


def versions_url(name: str) -> str:
    return f"/v0.1/servers/{quote(name, safe='')}/versions"


def version_url(name: str, segment: str) -> str:
    return f"{versions_url(name)}/{segment}"


def test_every_row_is_mirrored_or_rejected_with_a_reason_naming_it(built):
    result = built["result"]
    assert result.crawl.snapshot.rows == len(MIRRORED) + len(CASES)
    with open_store(built["settings"].db, create=False) as store:
        rejected = {r.version: r for r in store.load_rejected(result.crawl.snapshot.id)}
        stored = {(r.name, r.version) for r in store.load_rows(result.crawl.snapshot.id)}
    assert stored == {(NAME, v) for v in MIRRORED} | set(CASES.items())
    assert set(rejected) == set(REJECTED)
    for version, fragment in REJECTED.items():
        assert rejected[version].name == NAME and fragment in rejected[version].reason, version
    assert not result.render.skipped  # Linux file systems keep every spelling


def test_the_tree_holds_each_version_as_its_own_decoded_directory(built):
    site = built["site"].resolve()
    versions = site / paths.versions_dir(NAME)
    on_disk = {p.name for p in versions.iterdir() if p.is_dir()}
    assert on_disk == set(MIRRORED) | {"latest"}
    for path in site.rglob("*"):
        assert path.resolve().is_relative_to(site)
    for name in CASES:
        assert (site / paths.view_file(paths.latest_dir(name))).is_file()


@pytest.mark.parametrize("kind", ["serve", "nginx", "caddy", "nginx-prefix", "caddy-prefix"])
def test_hosts_answer_each_version_for_the_urls_clients_send(clients, kind):
    client, wrong = clients[kind], []
    for version in MIRRORED:
        for segment in spellings(version):
            url = version_url(NAME, segment)
            for query, visible in (("", version not in DELETED), ("?include_deleted=true", True)):
                answer = client.get(url + query)
                got = (answer.status_code, answer.headers["content-type"].split(";")[0],
                       answer.json().get("server", {}).get("version"))
                if got != ((200, "application/json", version) if visible else (404, "application/problem+json", None)):
                    wrong.append((url + query, got))
    for version in REJECTED.keys() - {"latest"}:  # `latest` is the pointer
        if client.get(version_url(NAME, quote(version, safe=""))).status_code not in (400, 404):
            wrong.append((version, "answered"))
    for name, version in CASES.items():
        answer = client.get(version_url(name, version))
        if answer.status_code != 200 or answer.json()["server"]["name"] != name:
            wrong.append((name, answer.status_code))
    if client.get("/.mcp-mirror/mcp-query.js").status_code != 404:  # a version `.mcp-mirror` opens nothing
        wrong.append((".mcp-mirror", "served"))
    assert not wrong, (kind, [(unquote(url)[-40:], got) for url, got in wrong])


@pytest.mark.parametrize("kind", ["serve", "nginx", "caddy"])
def test_lists_and_version_queries_include_each_version(clients, kind):
    client = clients[kind]
    listed = [s["server"]["version"] for s in client.get(versions_url(NAME)).json()["servers"]]
    assert sorted(listed) == sorted(v for v in MIRRORED if v not in DELETED), kind
    everything = client.get(versions_url(NAME) + "?include_deleted=true").json()["servers"]
    assert sorted(s["server"]["version"] for s in everything) == sorted(MIRRORED), kind
    assert client.get(version_url(NAME, "latest")).json()["server"]["version"] == LATEST
    for version in MIRRORED:
        query = f"/v0.1/servers?version={quote(version, safe='')}&include_deleted=true&limit=100"
        answer = client.get(query)
        assert answer.status_code == 200, (kind, version, answer.status_code)
        found = [(s["server"]["name"], s["server"]["version"]) for s in answer.json()["servers"]]
        assert found == [(NAME, version)], (kind, version, found)


def test_a_plain_file_server_answers_the_static_tree(built, clients):
    client = clients["static"]
    for version in MIRRORED:
        for segment in spellings(version):
            answer = client.get(version_url(NAME, segment))
            if version in DELETED:
                assert answer.status_code == 404, (version, answer.status_code)
            else:
                assert answer.status_code == 200 and answer.json()["server"]["version"] == version, version
    listed = client.get(versions_url(NAME)).json()["servers"]
    assert sorted(s["server"]["version"] for s in listed) == sorted(v for v in MIRRORED if v not in DELETED)
    for page in built["static"].resolve().rglob("*.html"):  # a plain file server sends every one as text/html
        html = page.read_text()
        assert "<img" not in html and "<script>" not in html and "\u202e" not in html, page


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_cloudfront_function_asks_s3_for_each_versions_key():
    """S3 reads a literal `+` in a key path as a space: the function must send `%2B`."""
    targets = [(version, version_url(NAME, segment)) for version in MIRRORED for segment in spellings(version)]
    requests = [{"method": "GET", "uri": uri, "query": []} for _, uri in targets]
    for (version, _), got in zip(targets, run_function("", requests), strict=True):
        assert "uri" in got, (version, got)
        assert "+" not in got["uri"] and " " not in got["uri"], (version, got["uri"])
        assert unquote(got["uri"]) == "/" + paths.view_file(paths.version_dir(NAME, version)), version


ENGINE_HARNESS = r"""
import(process.argv[1]).then(({default: engine}) => {
  const targets = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(targets.map((target) => {
    const path = engine.decodePath(new URL(target, 'https://mirror.example').pathname);
    const step = path === null ? null : engine.resolvePath(path, {});
    // the asset the Netlify Function and Pages' worker read: each segment as a client sends it
    return step && {file: step.files[0], asset: '/' + step.files[0].split('/').map(engine.segment).join('/')};
  })));
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
@pytest.mark.parametrize("host", ["netlify", "cloudflare-pages"])
def test_the_functions_route_each_version_to_its_file(host, tmp_path):
    """The engine the Netlify Function and Pages' _worker.js run (its njs build: the same core)
    routes every spelling of each version to its file, and asks the deploy for that file."""
    module = tmp_path / "engine.mjs"
    module.write_bytes(hosts.query_engine(hosts.get_profile(host), base_url=BASE))
    ns, short = NAME.split("/")
    targets = [(version, f"/v0.1/servers/{ns}/{short}/versions/{segment}") for version in MIRRORED
               for segment in spellings(version)]
    targets += [(version, version_url(NAME, segment)) for version in MIRRORED for segment in spellings(version)]
    done = subprocess.run(["node", "-e", ENGINE_HARNESS, str(module)], input=json.dumps([t for _, t in targets]),
                          capture_output=True, text=True, check=True)
    for (version, target), got in zip(targets, json.loads(done.stdout), strict=True):
        expected = paths.view_file(paths.version_dir(NAME, version))
        assert got is not None and got["file"] == expected, (version, target, got)
        assert unquote(got["asset"]) == "/" + expected, (version, got["asset"])


@pytest.mark.parametrize("kind", ["serve", "nginx"])
def test_catalog_pages_show_versions_as_text_and_link_them(built, clients, kind):
    site = built["site"].resolve()
    for page in site.rglob("*.html"):
        if str(page.relative_to(site)).startswith(f"{paths.API}/"):
            continue
        html = page.read_text()
        assert "<script>" not in html and "<img src=x" not in html, page
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert all(re.fullmatch(r'<script src="(\.\./)*assets/catalog\.js" defer>', tag) for tag in scripts), page
        assert "\u202e" not in html and "\u200f" not in html, page
    here = paths.catalog_server_dir(NAME)
    page = (site / paths.catalog_page_file(here)).read_text()
    assert "&lt;img src=x" in page
    links = sorted(set(re.findall(r'href="([^"]*v0\.1/servers/[^"]*)"', page)))
    assert len(links) > 10
    client = clients[kind]
    for href in links:
        url = urljoin(f"/{here}/", href.replace("&amp;", "&"))
        answer = client.get(url)
        assert answer.status_code == 200 and answer.json()["server"]["name"] == NAME, (kind, href, answer.status_code)
    for name in CASES:  # every link of their pages, the namespace crumb too (`io.github.a` is on `io.github.A`'s page)
        here = paths.catalog_server_dir(name)
        for href in re.findall(r'href="([^"#:]+)"', (site / paths.catalog_page_file(here)).read_text()):
            assert client.get(urljoin(f"/{here}/", href)).status_code == 200, (kind, name, href)


def test_a_case_insensitive_output_keeps_the_smallest_spelling(built, monkeypatch):
    """Where the output's file system folds case, the later spelling is skipped and named."""
    monkeypatch.setattr(publish, "folds_names", lambda directory: True)
    settings = Settings(db=built["settings"].db, out=built["tmp"] / "folded", base_url=BASE)
    result = pipeline.render(settings)
    skipped = {(s.name, s.version): s.reason for s in result.skipped}
    assert set(skipped) == {(NAME, "1.0.0-rc1"), (NAME, "LATEST"), (NAME, "index.JSON"), ("io.github.a/X", "1.0.0"),
                            ("io.github.a/x", "1.0.0")}
    assert "'1.0.0-rc1' and '1.0.0-RC1'" in skipped[NAME, "1.0.0-rc1"]
    assert "'io.github.a/x' and 'io.github.A/x'" in skipped["io.github.a/x", "1.0.0"]
    assert "'latest'" in skipped[NAME, "LATEST"]
    tree = settings.out.resolve()
    seen: dict[str, str] = {}
    for path in tree.rglob("*"):
        relative = str(PurePosixPath(path.relative_to(tree)))
        assert seen.setdefault(paths.fold(relative), relative) == relative


def test_netlify_leaves_out_what_its_deploy_would_drop(built):
    """Netlify's deploy drops files and directories named `.*`: such a version is skipped, not a 404."""
    settings = Settings(db=built["settings"].db, out=built["tmp"] / "netlify", base_url=BASE, profile="netlify")
    result = pipeline.render(settings)
    assert sorted((s.name, s.version) for s in result.skipped) == [(NAME, ".hidden"), (NAME, ".mcp-mirror")]
    assert "dot-files" in result.skipped[0].reason
    tree = settings.out.resolve()
    # only the host's own files (the function, deployed with `--functions`) and .well-known
    assert not [p for p in tree.rglob(".*") if not str(p.relative_to(tree)).startswith((".well-known", ".mcp-mirror"))]
    listed = json.loads((tree / paths.view_file(paths.versions_dir(NAME), deleted=True)).read_bytes())
    assert ".hidden" not in {s["server"]["version"] for s in listed["servers"]}


def test_the_probe_finds_this_file_system_case_sensitive_and_leaves_nothing(tmp_path):
    assert publish.folds_names(tmp_path) is False
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def upstream_of_the_mirrored() -> Iterator[httpx.Client]:
    """The fixture upstream holding the rows the mirror keeps (the rejected ones aside)."""
    kept = [entry for entry in entries() if entry["server"]["version"] not in REJECTED]
    with FakeUpstream(kept) as upstream, httpx.Client(base_url=upstream.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("kind", ["serve", "nginx", "caddy", "nginx-prefix", "caddy-prefix"])
def test_list_walks_over_quirky_versions_are_upstreams_byte_for_byte(clients, upstream_of_the_mirrored, kind):
    """Code-point order (an emoji sorts after U+E000..U+FFFF, as PostgreSQL's C collation puts
    it), cursors carrying `%`, `+`, `?`, `#` and quotes, and exact versions."""
    client, upstream = clients[kind], upstream_of_the_mirrored
    queries = [f"limit={limit}{extra}" for limit in (1, 7, 30)
               for extra in ("", "&include_deleted=true", "&version=latest", "&search=QUIRKY")]
    queries += [f"version={quote(version, safe='')}&include_deleted=true" for version in MIRRORED]
    for query in queries:
        url = f"/v0.1/servers?{query}"
        while True:
            got, expected = client.get(url), upstream.get(url)
            assert (got.status_code, got.content) == (expected.status_code, expected.content), (kind, url)
            cursor = expected.json()["metadata"].get("nextCursor")
            if not cursor:
                break
            url = f"/v0.1/servers?{query}&cursor={quote(cursor, safe='')}"
