"""The HTML catalog as a person meets it, in a real headless Chromium (Debian's chromium and
chromedriver through Selenium): the bundled sample with a few hostile entries, crawled twice
(so there are changes), served by `mcp-mirror serve` under a base path, and the static
profile's tree from a plain file server.

Without Chromium these tests fail and say what to install; MCP_MIRROR_SKIP_BROWSER=1 skips
them. Screenshots of the home page and a server page at 1280 and 390 px are written to
test-output/screenshots/ (their paths are printed).
"""

from __future__ import annotations

import copy
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from conftest import serving
from hostile import SCRIPT, hostile_corpus, servable
from test_browser import CHROMEDRIVER, CHROMIUM, PAGES, Browser, _QuietFiles, webdriver

from mirror import paths, pipeline
from mirror.fake_upstream import FakeUpstream, load_sample
from mirror.models import OFFICIAL
from mirror.settings import Settings

SKIPPED = os.environ.get("MCP_MIRROR_SKIP_BROWSER") == "1"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(SKIPPED, reason="MCP_MIRROR_SKIP_BROWSER=1")]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
BASE_PATH = "/mcp"
HOSTILE = {case.id: case for case in hostile_corpus(bulk_versions=1)}
HOSTILE_IDS = ("script", "bidi", "browser-markup-0", "browser-markup-5", "url-scheme-0", "large-description")
NPM_SERVER = "com.cloudflare/mcp-server-cloudflare"
DEPRECATE = "io.github.wong2/mcp-cli"  # deprecated by the second crawl, so "What changed" has it
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def _missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not installed: the catalog's browser tests need Debian's chromium and "
                "chromium-driver (`make system-deps` as root, or apt-get install chromium chromium-driver); "
                "set MCP_MIRROR_SKIP_BROWSER=1 to skip them instead")
    if webdriver is None:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


@dataclass(frozen=True)
class Catalog:
    served: str  # `mcp-mirror serve` origin + base path, nginx profile
    static: str  # the static profile's tree from a plain file server
    tree: Path


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    if (reason := _missing()) is not None:
        pytest.fail(reason, pytrace=False)
    chromium = Browser(tmp_path_factory.mktemp("catalog-chromium"))
    try:
        yield chromium
    finally:
        chromium.quit()


def _deprecated(entries: list[dict]) -> list[dict]:
    changed = copy.deepcopy(entries)
    for entry in changed:
        if entry["server"]["name"] == DEPRECATE:
            entry["_meta"][OFFICIAL].update(status="deprecated", statusMessage="Use something else",
                                            statusChangedAt="2026-06-01T00:00:00Z", updatedAt="2026-06-01T00:00:00Z")
    return changed


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Iterator[Catalog]:
    work = tmp_path_factory.mktemp("catalog")
    entries = [*load_sample(), *(servable(HOSTILE[case].item) for case in HOSTILE_IDS)]
    with FakeUpstream(entries) as upstream:
        for profile, base in (("nginx", f"http://127.0.0.1:8000{BASE_PATH}"), ("static", "http://127.0.0.1:8000")):
            settings = Settings(upstream=upstream.url, db=work / f"{profile}.duckdb", out=work / "docroot" / profile,
                                base_url=base, profile=profile)
            pipeline.build(settings)
            upstream.registry.entries = _deprecated(entries)
            pipeline.build(settings)
            upstream.registry.entries = entries
    files = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(work / "docroot")))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        with serving(work / "docroot" / "nginx") as served:
            yield Catalog(served.url, f"http://127.0.0.1:{files.server_address[1]}/static",
                          (work / "docroot" / "nginx").resolve())
    finally:
        files.shutdown()
        files.server_close()


def server_page(base: str, name: str) -> str:
    return f"{base}/{paths.catalog_server_dir(name)}/"


def wait(browser: Browser, condition, what: str, timeout: float = 5):
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(browser.driver, timeout).until(lambda driver: condition(driver))
    except Exception as exc:  # TimeoutException, with what we waited for
        raise AssertionError(f"timed out waiting for {what}") from exc


def css(browser: Browser, selector: str):
    from selenium.webdriver.common.by import By
    return browser.driver.find_elements(By.CSS_SELECTOR, selector)


def resize(browser: Browser, width: int, height: int) -> None:
    browser.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def no_sideways_scroll(browser: Browser) -> tuple[int, int]:
    return tuple(browser.driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"))


# -- what a person does ----------------------------------------------------------


def test_the_home_page_shows_counts_filters_and_servers_and_runs_no_stray_script(browser, catalog):
    visit = browser.visit(f"{catalog.served}/", PAGES)
    assert visit.problems() == []
    body = browser.driver.find_element("tag name", "body").text
    assert " servers" in body and " versions" in body and "snapshot" in body
    listed = css(browser, "#listing li.server")
    assert 1 <= len(listed) <= 50
    assert css(browser, ".filters a")  # package, transport and status filters, as plain links
    # the stylesheet and script loaded from the site itself
    font = browser.driver.execute_script("return getComputedStyle(document.body).fontFamily")
    assert "system-ui" in font


def test_typing_a_search_filters_the_list_and_says_how_many_match(browser, catalog):
    browser.visit(f"{catalog.served}/", PAGES)
    box = browser.driver.find_element("id", "search")
    box.send_keys("kubernetes")
    count = wait(browser, lambda d: d.find_element("id", "result-count").text, "a result count")
    found = css(browser, "#results li.server")
    assert found and count.startswith(f"{len(found)} server")
    assert not browser.driver.find_element("id", "listing").is_displayed()
    assert all("kubernetes" in item.text.lower() or "k8s" in item.text.lower() for item in found), [
        item.text for item in found]
    # keyboard: down to the first result, Escape back; clearing shows the whole list again
    from selenium.webdriver.common.keys import Keys
    box.send_keys(Keys.ARROW_DOWN)
    assert browser.driver.switch_to.active_element.get_attribute("href") == found[0].find_element(
        "tag name", "a").get_attribute("href")
    browser.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    box = browser.driver.switch_to.active_element
    assert box.get_attribute("id") == "search"
    box.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: d.find_element("id", "listing").is_displayed(), "the full list back")
    box.send_keys("zzz-no-such-server")
    wait(browser, lambda d: d.find_element("id", "result-count").text.startswith("0 servers"), "no match")


def test_a_search_result_opens_a_server_page_with_its_run_snippet_and_json(browser, catalog):
    browser.visit(f"{catalog.served}/", PAGES)
    browser.driver.find_element("id", "search").send_keys("cloudflare")
    wait(browser, lambda d: css(browser, "#results li.server a"), "a result")
    css(browser, "#results li.server a")[0].click()
    wait(browser, lambda d: d.current_url.endswith(f"/{paths.catalog_server_dir(NPM_SERVER)}/"), "the server page")
    snippets = [pre.text for pre in css(browser, "pre.snippet.run")]
    command = "npx --registry https://registry.npmjs.org @cloudflare/mcp-server-cloudflare@"
    assert any(text.startswith(command) for text in snippets), snippets  # what VS Code writes
    config = orjson.loads(browser.driver.find_element("id", "mcp-json").text)
    assert config["servers"][NPM_SERVER]["command"] == "npx"
    install = browser.driver.find_element("css selector", "a[data-install]").get_attribute("href")
    assert install.startswith("vscode:mcp/install?")
    history = css(browser, "table.history tbody tr")
    assert history
    css(browser, "a.json-link")[0].click()
    wait(browser, lambda d: "/v0.1/servers/" in d.current_url, "the JSON document")
    document = orjson.loads(browser.driver.find_element("tag name", "body").text)
    assert document["server"]["name"] == NPM_SERVER


def test_what_changed_lists_the_second_crawls_changes_and_links_the_server(browser, catalog):
    visit = browser.visit(f"{catalog.served}/{paths.CATALOG_CHANGES}/", PAGES)
    assert visit.problems() == []
    changes = [item.text for item in css(browser, "li.change")]
    assert changes and changes[0].startswith("Deprecated") and DEPRECATE in changes[0]
    css(browser, "li.change a")[0].click()
    wait(browser, lambda d: d.current_url.endswith(f"/{paths.catalog_server_dir(DEPRECATE)}/"), "the server page")
    assert "Use something else" in browser.driver.find_element("tag name", "body").text


@pytest.mark.parametrize("case", HOSTILE_IDS)
def test_a_hostile_entry_shows_its_text_escaped_and_runs_no_script(browser, catalog, case):
    name = HOSTILE[case].key[0]
    for width, height in WIDTHS.values():
        resize(browser, width, height)
        visit = browser.visit(server_page(catalog.served, name), PAGES, want_text=True)
        assert visit.problems() == []
        scroll, client = no_sideways_scroll(browser)
        assert scroll <= client, (case, width, scroll, client)
    if case == "script":
        assert SCRIPT in visit.text  # shown as text, every character
    if case == "bidi":
        assert "\u202e" not in visit.text and "\\u202e" in visit.text  # shown as an escape
    if case == "large-description":
        assert len(visit.text) < 20_000 and "…" in visit.text


def test_the_static_tree_works_from_a_plain_file_server_search_included(browser, catalog):
    visit = browser.visit(f"{catalog.static}/", PAGES)
    assert visit.problems() == []
    browser.driver.find_element("id", "search").send_keys("grafana")
    wait(browser, lambda d: css(browser, "#results li.server a"), "a result")
    css(browser, "#results li.server a")[0].click()
    wait(browser, lambda d: "/servers/io.github.grafana/" in d.current_url, "the server page")
    css(browser, "a.json-link")[0].click()
    wait(browser, lambda d: "/v0.1/servers/" in d.current_url, "the JSON document")
    assert orjson.loads(browser.driver.find_element("tag name", "body").text)["server"]["name"].startswith(
        "io.github.grafana/")


def test_screenshots_at_desktop_and_phone_widths_without_sideways_scrolling(browser, catalog):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for label, url in (("home", f"{catalog.served}/"), ("server", server_page(catalog.served, NPM_SERVER)),
                       ("changes", f"{catalog.served}/{paths.CATALOG_CHANGES}/")):
        for width, height in WIDTHS.values():
            resize(browser, width, height)
            visit = browser.visit(url, PAGES)
            assert visit.problems() == []
            scroll, client = no_sideways_scroll(browser)
            assert scroll <= client, (label, width, scroll, client)
            path = SCREENSHOTS / f"{label}-{width}.png"
            assert browser.driver.save_screenshot(str(path)) and path.stat().st_size > 1000
            saved.append(path)
    resize(browser, *WIDTHS["desktop"])
    print("\ncatalog screenshots:\n" + "\n".join(f"  {path}" for path in saved))
