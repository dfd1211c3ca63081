"""Every page a host profile serves, opened in a real headless Chromium: no upstream byte
may run script.

The hostile corpus (tests/hostile.py) puts markup and script URLs that call alert() into
every text and URL field, and into versions. Each tree is opened the way a browser would
meet it: the static tree from a plain file server, which sends its JSON documents (named
index.html) as text/html; the other profiles from `mcp-mirror serve`, and their .html files
from the plain file server too. Three witnesses per page: a real alert dialog, a hook
(installed over CDP before any page script) that records alert/confirm/prompt/print calls,
and the browser console. The DOM is then held to what the templates write: no element,
attribute or URL scheme they cannot produce. A deliberately unescaped page proves the
witnesses see script when it runs.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import serving
from hostile import hostile_corpus, servable

from mirror import hosts, paths, pipeline
from mirror.fake_upstream import FakeUpstream
from mirror.models import OFFICIAL
from mirror.settings import Settings
from mirror.templating import templates_dir

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, UnexpectedAlertPresentException
except ImportError:  # the skip below says what to install
    webdriver = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _skip_reason() -> str | None:
    if os.environ.get("MCP_MIRROR_SKIP_BROWSER") == "1":
        return "MCP_MIRROR_SKIP_BROWSER=1"
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not installed: run `make system-deps` as root "
                "(apt-get install chromium chromium-driver), or set MCP_MIRROR_SKIP_BROWSER=1")
    if webdriver is None:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


SKIP = _skip_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

SMALL = hostile_corpus(bulk_versions=20)
ADMITTED = [case for case in SMALL if case.expect == "admitted"]
# Every admitted name -> its (version, isLatest) pairs a browser can open: deleted ones are never served.
VERSIONS: dict[str, list[tuple[str, bool]]] = defaultdict(list)
for _case in ADMITTED:
    _meta = _case.item.get("_meta", {}).get(OFFICIAL, {})
    _shown = VERSIONS[_case.key[0]]
    if _meta.get("status") != "deleted":
        _shown.append((_case.key[1], bool(_meta.get("isLatest"))))
# Servers whose JSON documents the serve-routed profiles are opened at: every profile but
# static serves the same bytes, so one opens them all and the others the first.
INJECTED = sorted({case.key[0] for case in ADMITTED if case.id.startswith(("browser-", "script", "url-scheme"))})
# publish.py writes the manifest as it is, not through StaticProfile.document: the paths it
# lists carry upstream versions, whose `&` (any character but `/` may be in one) reaches text/html raw.
RAW_AMPERSAND = {paths.manifest_file("index.html")}
SERVED_PROFILES = [name for name in hosts.PROFILES if name != "static"]

# What the browser shows for JSON (application/json): its own viewer, no page script.
JSON_VIEWER = ({"html", "head", "meta", "body", "pre", "div"}, {"name", "content", "charset", "class"})
# A JSON document parsed as HTML must stay text: no element beyond the three the parser makes.
JSON_AS_HTML: tuple[set[str], set[str]] = ({"html", "head", "body"}, set())


def _template_vocabulary() -> tuple[set[str], set[str]]:
    """Every element and attribute the HTML templates (and the catalog's script, which makes
    elements with `el(tag, ...)`, and sets class, href, dir, type and hidden) can write:
    nothing else may reach a page."""
    tags, attrs = {"html", "head", "body"}, {"class", "href", "dir", "type", "hidden"}
    for template in templates_dir().rglob("*.html"):
        for tag, rest in re.findall(r"<([a-z][a-z0-9]*)\b([^>]*)>", template.read_text()):
            tags.add(tag)
            bare = re.sub(r"\{[{%].*?[%}]\}", " ", re.sub(r'"[^"]*"', '""', rest))
            attrs.update(re.findall(r"([a-z][a-z-]*)(?:=|\s|$)", bare))
    tags.update(re.findall(r'\bel\("([a-z0-9]+)"', (templates_dir() / "catalog/assets/catalog.js").read_text()))
    return tags, attrs


PAGES = _template_vocabulary()

# Runs in every frame before any script of the page: records each call, then makes it, the
# first few times only (dismissing an alert refocuses the page: `onfocus=alert(1)` loops).
HOOK = """(() => {
  let sink = [];
  try { sink = window.top.__mirrorScriptCalls || sink; } catch (error) {}
  Object.defineProperty(window, '__mirrorScriptCalls', {value: sink});
  for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    const original = window[name];
    window[name] = function (...args) {
      sink.push(name + '(' + args.map(String).join(', ') + ')');
      return sink.length <= 3 ? original.apply(this, args) : undefined;
    };
  }
})();"""
# After one frame and a timer (autofocus and toggle handlers fire late), the DOM, held to
# the allowed elements and attributes; URLs as the browser resolves them (tabs stripped).
INSPECT = """const [tags, attrs, wantText, done] = arguments;
// VS Code's install link is the one other scheme a page may write: on the template's own
// anchor, and its payload must be a JSON object (what VS Code parses).
function installLink(el, name, value) {
  if (el.localName !== 'a' || name !== 'href' || el.getAttribute('data-install') !== 'vscode') return false;
  if (!value.startsWith('vscode:mcp/install?')) return false;
  try { return typeof JSON.parse(decodeURIComponent(value.slice(19))) === 'object'; } catch (error) { return false; }
}
requestAnimationFrame(() => setTimeout(() => {
  const findings = [];
  for (const el of document.querySelectorAll('*')) {
    const tag = el.localName;
    if (!tags.includes(tag)) findings.push('<' + tag + '> element');
    for (const attr of el.attributes) {
      if (/^on/i.test(attr.name)) findings.push(tag + '[' + attr.name + '=' + JSON.stringify(attr.value) + ']');
      else if (!attrs.includes(attr.name)) findings.push(tag + '[' + attr.name + '] attribute');
    }
    for (const name of ['href', 'src', 'action', 'formaction', 'data', 'xlink:href']) {
      const value = el.getAttribute(name);
      if (value === null) continue;
      let scheme;
      try { scheme = new URL(value, document.baseURI).protocol; } catch (error) { scheme = 'unparseable'; }
      if (scheme === 'vscode:' && installLink(el, name, value)) continue;
      if (scheme !== 'http:' && scheme !== 'https:')
        findings.push(tag + '[' + name + '] has a ' + scheme + ' URL: ' + JSON.stringify(value));
    }
  }
  // The one script a page may have: the catalog's own file, same origin, no inline text.
  for (const script of document.scripts) {
    const src = script.getAttribute('src');
    let url = null;
    try { url = src === null ? null : new URL(src, document.baseURI); } catch (error) {}
    if (!url || url.origin !== location.origin || !url.pathname.endsWith('/assets/catalog.js') || script.text.trim())
      findings.push('<script> element: ' + JSON.stringify(script.outerHTML.slice(0, 200)));
  }
  done({findings, calls: Array.from(window.__mirrorScriptCalls || []), charset: document.characterSet,
        contentType: document.contentType, text: wantText ? document.body.textContent : null});
}, 0));"""


@dataclass
class Visit:
    url: str
    alerts: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    charset: str = ""
    content_type: str = ""
    text: str | None = None

    def problems(self) -> list[str]:
        return [f"{self.url}: {kind} {what}" for kind, found in (
            ("alert dialog", self.alerts), ("script call", self.calls), ("console", self.console),
            ("DOM", self.findings)) for what in found]


class Browser:
    """One headless Chromium for the module, driven through the system chromedriver."""

    def __init__(self, profile_dir: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.set_capability("unhandledPromptBehavior", "ignore")  # dialogs stay open for us to see
        # An explicit driver path: selenium-manager never runs (and never downloads anything).
        self.driver = webdriver.Chrome(options=options,
                                       service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
        self.driver.set_page_load_timeout(10)
        self.driver.set_script_timeout(5)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})

    def visit(self, url: str, allowed: tuple[set[str], set[str]], *, want_text: bool = False) -> Visit:
        visit = Visit(url)
        self.driver.get(url)  # returns after the load event: images have loaded or failed
        visit.alerts += self._dismiss_alerts()
        for _ in range(10):
            try:
                state: dict[str, Any] = self.driver.execute_async_script(
                    INSPECT, sorted(allowed[0]), sorted(allowed[1]), want_text)
                break
            except UnexpectedAlertPresentException:
                visit.alerts += self._dismiss_alerts()
        else:
            pytest.fail(f"{url} keeps opening dialogs: {visit.alerts}")
        visit.alerts += self._dismiss_alerts()
        visit.findings, visit.calls, visit.text = state["findings"], state["calls"], state["text"]
        visit.charset, visit.content_type = state["charset"], state["contentType"]
        visit.console = [f"{entry['level']} {entry['message']}" for entry in self.driver.get_log("browser")
                         if not _favicon_miss(entry)]
        return visit

    def _dismiss_alerts(self) -> list[str]:
        texts = []
        while len(texts) < 10:
            try:
                alert = self.driver.switch_to.alert
            except NoAlertPresentException:
                break
            texts.append(alert.text)
            alert.dismiss()
        return texts

    def quit(self) -> None:
        self.driver.quit()


def _favicon_miss(entry: dict[str, Any]) -> bool:
    """Chromium asks every origin for /favicon.ico by itself; no tree has one. And a server's
    https icon lives on another host, which this machine cannot reach: its failed load is no
    script (the DOM check holds every src to http(s))."""
    if entry.get("source") != "network":
        return False
    return bool(re.match(r"https?://[^/]+/favicon\.ico - ", entry["message"])
                or re.match(r"https://(?!127\.0\.0\.1[:/])[^ ]* - Failed to load resource: net::ERR_",
                            entry["message"]))


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@dataclass(frozen=True)
class Sites:
    docroot: Path  # every tree under /<profile>/ of the plain file server
    files: str  # the plain file server (text/html for .html files, no other headers)
    served: dict[str, str]  # profile -> `mcp-mirror serve` on its tree

    def tree(self, profile: str) -> Path:
        return (self.docroot / profile).resolve()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    chromium = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield chromium
    finally:
        chromium.quit()


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> Iterator[Sites]:
    """The small hostile corpus built once per host profile, and the servers that serve the trees."""
    docroot = tmp_path_factory.mktemp("browser-sites")
    databases = tmp_path_factory.mktemp("browser-db")
    with FakeUpstream([servable(case.item) for case in SMALL]) as upstream:
        for profile in hosts.PROFILES:
            pipeline.build(Settings(upstream=upstream.url, db=databases / f"{profile}.duckdb", out=docroot / profile,
                                    base_url="http://127.0.0.1:8000", profile=profile))
    files = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(docroot)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    with ExitStack() as stack:
        stack.callback(files.server_close)
        stack.callback(files.shutdown)
        served = {profile: stack.enter_context(serving(docroot / profile)).url for profile in SERVED_PROFILES}
        yield Sites(docroot, f"http://127.0.0.1:{files.server_address[1]}", served)


PCHAR = "/:@!$&'()*+,;="


def page_url(base: str, profile: str, rel: str) -> str:
    """The URL a browser opens for tree file `rel`: a directory for index.html files, and
    path segments as a browser's address bar leaves them (RFC 3986 pchar unencoded)."""
    directory = rel[: -len("index.html")] if rel.endswith("index.html") else rel
    return f"{base}/{profile}/{quote(directory, safe=PCHAR)}"


def decoded(body: bytes, charset: str) -> str:
    """`body` as the browser decoded it (WHATWG windows-1252 maps every byte, 0x81 too)."""
    if charset == "UTF-8":
        return body.decode("utf-8")
    assert charset == "windows-1252", f"unexpected charset {charset}"
    text = body.decode("cp1252", errors="surrogateescape")
    return re.sub("[\udc80-\udcff]", lambda m: chr(ord(m.group()) - 0xDC00), text)


def server_of(rel: str) -> str | None:
    """The server name a static tree file belongs to, or None (lists, probes, pages)."""
    parts = rel.split("/")
    return "/".join(parts[2:4]) if len(parts) > 4 and parts[:2] == [paths.API, "servers"] else None


def static_files(sites: Sites) -> list[str]:
    tree = sites.tree("static")
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*.html"))


def check_static_page(browser: Browser, sites: Sites, rel: str, *, exact: bool = True) -> list[str]:
    """One file of the static tree, as a plain file server sends it (text/html); `exact`:
    the body text must be the document's bytes, so the parser took nothing as markup or entity."""
    body = (sites.tree("static") / rel).read_bytes()
    api = rel.startswith(f"{paths.API}/")
    visit = browser.visit(page_url(sites.files, "static", rel), JSON_AS_HTML if api else PAGES, want_text=api)
    problems = visit.problems()
    if visit.content_type != "text/html":
        problems.append(f"{visit.url}: served as {visit.content_type}, not the text/html this test is about")
    if api and exact and visit.text != decoded(body, visit.charset):
        problems.append(f"{visit.url}: the body text is not the document's bytes: the HTML parser took some as markup")
    return problems


# -- the positive control: the witnesses see script when it runs ------------------------------


def test_the_witnesses_see_script_on_a_deliberately_unescaped_page(browser, sites):
    """Without this, "no alert" would prove nothing."""
    control = sites.docroot / "control"
    (control / "v0.1").mkdir(parents=True)
    # The static profile's danger exactly: JSON named index.html, but with `<` left raw.
    (control / "v0.1/index.html").write_text('{"description":"<img src=x onerror=alert(1)>"}')
    (control / "index.html").write_text('<!doctype html><p>x</p><a href="java&#x09;script:alert(2)">y</a>'
                                        '<svg onload="alert(3)"></svg><script>console.error("ran")</script>'
                                        '<input autofocus onfocus="alert(4)">')
    json_page = browser.visit(page_url(sites.files, "control", "v0.1/index.html"), JSON_AS_HTML, want_text=True)
    assert json_page.alerts == ["1"] and json_page.calls == ["alert(1)"]
    assert "<img> element" in json_page.findings and 'img[onerror="alert(1)"]' in json_page.findings
    assert any("/control/v0.1/x - Failed to load resource" in line for line in json_page.console)
    assert json_page.text != decoded((control / "v0.1/index.html").read_bytes(), json_page.charset)
    page = browser.visit(page_url(sites.files, "control", "index.html"), PAGES)
    assert set(page.alerts) == {"3", "4"} and {"alert(3)", "alert(4)"} <= set(page.calls)  # 4: after load
    assert 'a[href] has a javascript: URL: "java\\tscript:alert(2)"' in page.findings
    assert {"<svg> element", 'svg[onload="alert(3)"]'} <= set(page.findings)
    assert '<script> element: "<script>console.error(\\"ran\\")</script>"' in page.findings  # inline: never allowed
    assert any('"ran"' in line for line in page.console)


# -- the static profile: every page from a plain file server, JSON documents as text/html -----


def test_static_pages_outside_the_servers_run_no_script(browser, sites):
    """The landing page, 404.html, the list, the probes and the state documents."""
    files = [rel for rel in static_files(sites) if server_of(rel) is None]
    assert {"index.html", "404.html", f"{paths.API}/servers/index.html"} <= set(files)
    problems = [problem for rel in files
                for problem in check_static_page(browser, sites, rel, exact=rel not in RAW_AMPERSAND)]
    assert not problems


@pytest.mark.parametrize("rel", sorted(RAW_AMPERSAND))
def test_static_documents_escape_every_ampersand(browser, sites, rel):
    assert check_static_page(browser, sites, rel) == []


def test_every_static_page_belongs_to_an_admitted_server_or_the_site(sites):
    """So the per-server test below opens every page of the tree."""
    assert {server_of(rel) for rel in static_files(sites)} - {None} <= set(VERSIONS)


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_static_pages_of_each_admitted_server_run_no_script(browser, sites, name):
    """versions/, versions/latest/ and every versions/<v>/ page a browser can open."""
    mine = [rel for rel in static_files(sites) if server_of(rel) == name]
    shown = VERSIONS[name]
    expected = {paths.version_dir(name, version) for version, _ in shown}
    expected |= {paths.versions_dir(name)} if shown else set()
    expected |= {paths.latest_dir(name)} if any(latest for _, latest in shown) else set()
    expected = {paths.view_file(directory, index="index.html") for directory in expected}
    assert expected <= set(mine)
    problems = [problem for rel in mine for problem in check_static_page(browser, sites, rel)]
    assert not problems


# -- the other profiles: `mcp-mirror serve`, and their .html files from a plain file server ---


@pytest.mark.parametrize("profile", SERVED_PROFILES)
def test_served_profiles_run_no_script(browser, sites, profile):
    base = sites.served[profile]
    visits = [browser.visit(f"{base}/", PAGES), browser.visit(f"{base}/{paths.API}/servers", JSON_VIEWER)]
    injected = INJECTED if profile == SERVED_PROFILES[0] else INJECTED[:1]
    visits += [browser.visit(paths.server_url(base, name, "latest"), JSON_VIEWER) for name in injected]
    assert visits[0].content_type == "text/html" and visits[1].content_type == "application/json"
    tree = sites.tree(profile)
    pages = sorted(str(p.relative_to(tree)) for p in tree.rglob("*.html"))
    assert "index.html" in pages
    for rel in pages:  # as a host that types files by their suffix would send them
        api = rel.startswith(f"{paths.API}/")
        visits.append(browser.visit(page_url(sites.files, profile, rel), JSON_AS_HTML if api else PAGES))
    problems = [problem for visit in visits for problem in visit.problems()]
    assert not problems
