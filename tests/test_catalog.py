"""The catalog's pure parts: what VS Code writes for a server (its run line, mcp.json snippet and
install link, checked against VS Code's own code in node on rendered pages), the URL schemes a
page may link, what untrusted text becomes, the Atom feed and the search index, and where pages
go."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from urllib.parse import unquote

import feedparser
import orjson
import pytest
from factories import item, row
from hostile import BIDI, BROWSER_URLS, SCRIPT
from test_allowlist import SAMPLE, alone
from test_render import SNAPSHOT, golden_rows
from trees import plan_site, site
from vscode_cases import CASES, MODULES, kinds, node, runnable, vscode_answer

from mirror import hosts, paths, vscode
from mirror.models import Change, DatedChange, row_from_item
from mirror.render import catalog
from mirror.render.catalog import launch, safe_url
from mirror.templating import clip

ATOM = "{http://www.w3.org/2005/Atom}"


# -- what VS Code writes: the run line, the mcp.json snippet and the install link ----------


@pytest.mark.parametrize("package, command", [
    ({"registryType": "npm", "identifier": "@scope/pkg", "version": "1.2.3"},
     "npx @scope/pkg@1.2.3"),
    ({"registryType": "pypi", "identifier": "mcp-thing", "version": "0.4"}, "uvx mcp-thing@0.4"),
    ({"registryType": "oci", "identifier": "ghcr.io/o/img", "version": "2.0"}, "docker run -i --rm ghcr.io/o/img:2.0"),
    ({"registryType": "oci", "identifier": "docker.io/o/img:7", "version": "2.0"},
     "docker run -i --rm docker.io/o/img:7:2.0"),  # as VS Code writes it
    ({"registryType": "nuget", "identifier": "Some.Tool", "version": "1.0.0"}, "dnx Some.Tool@1.0.0 --yes"),
    ({"registryType": "npm", "identifier": "x; rm -rf ~", "version": "1"}, "npx 'x; rm -rf ~@1'"),
    ({"registryType": "npm", "identifier": "x", "registryBaseUrl": "https://r.example",
      "packageArguments": [{"type": "positional", "valueHint": "dir", "description": "where"}]},
     "npx --registry https://r.example x '${input:dir}'"),
])
def test_run_lines_are_vscodes_command(package, command):
    run = launch(package)
    assert run is not None and run.command == command
    assert run.prompts == ("${input:" in command)
    assert shlex.split(run.command) == list(vscode.package_configuration(package).argv)


def test_mcpb_is_a_download_with_its_digest_https_only():
    sha = "a" * 64
    run = launch({"registryType": "mcpb", "identifier": "https://example.com/x.mcpb", "fileSha256": sha})
    assert (run.download, run.sha256, run.command) == ("https://example.com/x.mcpb", sha, None)
    bad = launch({"registryType": "mcpb", "identifier": "javascript:alert(1)", "fileSha256": "<b>"})
    assert (bad.download, bad.sha256) == (None, None)


def test_unknown_registry_types_and_missing_identifiers_have_no_run_line():
    assert launch({"registryType": "cargo", "identifier": "x"}) is None
    assert launch({"registryType": "npm"}) is None
    assert launch({"registryType": "npm", "identifier": "x", "runtimeArguments": "-y"}) is None
    assert launch("npm:x") is None


def _link_payload(link: str) -> dict:
    """The install link's JSON, read as VS Code's handler reads it: URI.parse decodes the
    query once, then the handler decodes it again."""
    assert link.startswith("vscode:mcp/install?")
    return orjson.loads(unquote(unquote(link.removeprefix("vscode:mcp/install?"))))


def test_the_snippet_and_the_link_carry_vscodes_entry_under_the_registry_name():
    header = {"name": "Authorization", "isSecret": True, "description": "token"}
    server = {"name": "io.github.a/b", "remotes": [
        {"type": "sse", "url": "https://mcp.example.com/100%", "headers": [header]}]}
    entry = catalog.vscode_entry("io.github.a/b", server)
    config = {"type": "http", "url": "https://mcp.example.com/100%",
              "headers": {"Authorization": "${input:Authorization}"}}
    inputs = [{"id": "Authorization", "type": "promptString", "description": "token",
               "password": True}]
    assert entry.package_type == "remote"
    assert (entry.installation.config, entry.installation.inputs) == (config, inputs)
    assert orjson.loads(entry.mcp_json) == {"servers": {"io.github.a/b": config}, "inputs": inputs}
    # no % is left for the handler's second decode
    assert "%25" not in entry.install and "%5Cu0025" in entry.install
    assert _link_payload(entry.install) == {"name": "io.github.a/b", **config, "inputs": inputs}


def test_the_entry_is_for_packages0_else_the_first_type_vscode_can_run():
    npm = {"registryType": "npm", "identifier": "n"}
    remote = {"type": "streamable-http", "url": "https://r.example/mcp"}
    pypi = {"registryType": "pypi", "identifier": "p"}
    mcpb = {"registryType": "mcpb", "identifier": "https://x/a.mcpb"}
    cargo = {"registryType": "cargo", "identifier": "c"}
    for server, kind in (({"packages": [pypi, npm], "remotes": [remote]}, "pypi"),
                         ({"packages": [mcpb, npm]}, "npm"),
                         ({"packages": [cargo], "remotes": [remote]}, "remote"),
                         ({"packages": [], "remotes": [remote]}, "remote")):
        assert catalog.vscode_entry("a/b", server).package_type == kind, server
    for nothing in ({}, {"packages": [{"registryType": "mcpb", "identifier": "https://x/a.mcpb"}]},
                    {"remotes": [None]}, {"packages": "npm"}, None, [],
                    {"packages": [{"registryType": [], "identifier": "x"}, {"registryType": {}}]}):
        assert catalog.vscode_entry("a/b", nothing) is None


def test_entries_too_big_to_show_whole_are_left_out():
    arguments = [{"type": "positional", "value": "y" * 3000}] * 3
    entry = catalog.vscode_entry("a/b", {"packages": [{"registryType": "npm", "identifier": "x",
                                                        "packageArguments": arguments}]})
    assert entry.mcp_json is not None and entry.install is None  # the link is bounded
    assert len(entry.mcp_json) <= catalog.MCP_JSON_CHARS
    huge = catalog.vscode_entry("a/b", {"packages": [{"registryType": "npm", "identifier": "x",
                                                       "packageArguments": arguments * 3}]})
    assert (huge.mcp_json, huge.install) == (None, None)  # VS Code's entry whole or not at all


# -- rendered pages against VS Code's own code ---------------------------------------------

SNIPPET = re.compile(r'<pre class="snippet" id="mcp-json"><code>(.*?)</code></pre>', re.DOTALL)
INSTALL = re.compile(r'<a class="button" href="([^"]*)" data-install="vscode">')
RUN = re.compile(r'<pre class="snippet run"><code>(.*?)</code></pre>', re.DOTALL)
DOWNLOAD = re.compile(r"<p>Download: ")


def _servers() -> dict[str, dict]:
    """Every sample server and every hand-made case, each listed under a name of its own."""
    servers = {f"io.test.sample/s{n:03d}": entry["server"] for n, entry in enumerate(SAMPLE)}
    servers |= {f"io.test.case/{case}": fields for case, (fields, _, _) in CASES.items()}
    return servers


@dataclass
class Pages:
    servers: dict[str, dict]  # name -> the server.json its page shows
    html: dict[str, str]  # name -> its page
    vscode: dict[str, dict]  # key(request) -> node's answer


def _key(request: dict) -> str:
    return json.dumps(request, sort_keys=True)


@pytest.fixture(scope="module")
def pages() -> Pages:
    if not (MODULES / "@codingame" / "monaco-vscode-mcp-service-override").is_dir():
        pytest.skip(f"VS Code's code (@codingame/monaco-vscode-*) is not installed in {MODULES}:"
                    " run `make install` (it needs npm)")
    servers, rows = {}, []
    for name, server in _servers().items():
        fields = {k: v for k, v in server.items() if k not in ("name", "version", "$schema")}
        entry = item(name, "1.0.0", latest=True, **fields)
        servers[name] = entry["server"]
        rows.append(row_from_item(entry))
    plan = plan_site(SNAPSHOT, rows, base_url="http://x")
    html = {name: plan[f"{paths.catalog_server_dir(name)}/index.html"].decode() for name in servers}
    requests = [{"server": s, "type": kind} for s in servers.values() for kind in kinds(s)]
    requests += [alone(s, p) for s in servers.values() for p in s.get("packages") or []]
    requests += [{"link": unescape(link)}
                 for page in html.values() for link in INSTALL.findall(page)]
    unique = list({_key(r): r for r in requests}.values())
    helper = node()
    try:
        answers = dict(zip(map(_key, unique), helper.ask_many(unique), strict=True))
    finally:
        helper.close()
    return Pages(servers, html, answers)


def _package_blocks(page: str) -> list[str]:
    if '<h2 id="packages-title">' not in page:
        return []
    section = page.split('<h2 id="packages-title">', 1)[1].split("</section>", 1)[0]
    return section.split('<div class="package">')[1:]


@pytest.mark.parametrize("name", sorted(_servers()))
def test_a_server_page_shows_what_vscode_writes(pages, name):
    """The snippet and the install link are VS Code's own entry for the package type its
    gallery install asks for (else the first that VS Code can run), read back from the page
    (and the link through VS Code's own URL handler); each run line is VS Code's command."""
    server, page = pages.servers[name], pages.html[name]
    entry = catalog.vscode_entry(name, server)
    answers = {kind: pages.vscode[_key({"server": server, "type": kind})] for kind in kinds(server)}
    case = CASES.get(name.removeprefix("io.test.case/"))
    gallery = vscode.gallery_package_type(server)
    if case is not None:
        assert (entry.package_type if entry else None) == case[2]
        assert ("error" in answers[gallery]) == (case[1] == "throws")
    elif runnable(answers[gallery]):
        assert entry is not None and entry.package_type == gallery  # the sample: VS Code's choice
    snippets, links = SNIPPET.findall(page), INSTALL.findall(page)
    if entry is None:
        assert snippets == [] and links == [] and 'id="vscode-title"' not in page
        assert not any(runnable(a) for a in answers.values()) or case is not None
        return
    theirs = vscode_answer(answers[entry.package_type])
    assert theirs is not None and runnable(answers[entry.package_type])
    earlier = kinds(server)[:kinds(server).index(entry.package_type)]
    assert not any(runnable(answers[k]) for k in earlier)
    inputs = {"inputs": theirs["inputs"]} if theirs["inputs"] else {}
    assert orjson.loads(unescape(snippets[0])) == {"servers": {name: theirs["config"]}, **inputs}
    assert len(links) == 1
    assert pages.vscode[_key({"link": unescape(links[0])})] == {
        "handled": True, "opened": {"name": name, "config": theirs["config"], **inputs}}


@pytest.mark.parametrize("name", sorted(_servers()))
def test_each_package_runs_the_command_vscode_writes(pages, name):
    server, page = pages.servers[name], pages.html[name]
    packages = [p for p in server.get("packages") or [] if isinstance(p, dict)] if isinstance(
        server.get("packages"), list) else []
    blocks = _package_blocks(page)
    assert len(blocks) == len(packages)
    for package, block in zip(packages, blocks, strict=True):
        answer = pages.vscode[_key(alone(server, package))]
        run = RUN.findall(block)
        if package.get("registryType") == "mcpb":
            assert run == [] and DOWNLOAD.search(block)
        elif run:
            argv = [answer["config"]["command"], *answer["config"].get("args", [])]
            assert runnable(answer) and unescape(run[0]) == clip(shlex.join(argv), 4000)
        else:
            assert not runnable(answer) or launch(package) is None  # VS Code throws, or refused


@pytest.mark.parametrize("url", [*BROWSER_URLS, "vbscript:x", " https://x.example", "https://x.example/\u202e",
                                 "https://x.example/a b", "//x.example", "https:", "ftp://x.example", "", None, 5,
                                 "https://" + "a" * 3000])
def test_only_plain_http_urls_are_linked(url):
    assert safe_url(url) is None


def test_http_and_https_urls_are_linked_as_they_are():
    assert safe_url("https://github.com/a/b?x=1#y") == "https://github.com/a/b?x=1#y"
    assert safe_url("HTTP://example.com") == "HTTP://example.com"
    assert safe_url("http://example.com", schemes=("https",)) is None  # icons: https only


def _hostile_row(name: str, text: str, url: str):
    entry = item(name, "1.0.0", latest=True, description=text, title=text, websiteUrl=url,
                 repository={"url": url, "source": "github"}, icons=[{"src": url}],
                 packages=[{"registryType": "npm", "identifier": text, "version": "1.0.0",
                            "environmentVariables": [{"name": text, "description": text, "default": url}]}],
                 remotes=[{"type": "streamable-http", "url": url, "headers": [{"name": text, "value": url}]}])
    return row_from_item(entry)


def test_untrusted_text_is_escaped_urls_filtered_and_bidi_shown_as_escapes():
    rows = [_hostile_row("io.x/script", SCRIPT, "javascript:alert(1)"), _hostile_row("io.x/bidi", BIDI, "https://ok")]
    plan = plan_site(SNAPSHOT, rows, base_url="http://x")
    page = plan["servers/io.x/script/index.html"].decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "onerror=alert(1)>" not in page
    assert not re.search(r"""(href|src)="\s*javascript""", page, re.IGNORECASE)
    assert "<img" not in page  # an icon that is not https is not shown
    bidi = plan["servers/io.x/bidi/index.html"].decode()
    assert "\u202e" not in bidi and "\u2066" not in bidi and "\\u202e" in bidi
    for path, body in plan.items():
        if path.endswith(".html"):
            assert b"\xe2\x80\xae" not in body, path  # U+202E nowhere in any page
            assert b"<script>" not in body and body.count(b"<script") <= 1, path


def test_megabyte_strings_are_cut_to_explicit_bounds():
    big = row_from_item(item("io.x/big", "1.0.0", latest=True, description="d" * 300_000, title="t" * 300_000))
    plan = plan_site(SNAPSHOT, [big], base_url="http://x")
    page = plan["servers/io.x/big/index.html"]
    assert len(page) < 20_000 and "…".encode() in page
    assert len(plan[paths.LANDING_PAGE]) < 20_000
    index = orjson.loads(plan[paths.SEARCH_INDEX])
    assert index["fields"][:3] == ["name", "title", "description"]
    name, title, description = index["servers"][0][:3]
    assert (name, len(title), len(description)) == ("io.x/big", catalog.SEARCH_TITLE_CHARS,
                                                     catalog.SEARCH_DESCRIPTION_CHARS)


def test_the_search_index_has_no_raw_markup_characters():
    plan = plan_site(SNAPSHOT, [_hostile_row("io.x/script", SCRIPT, "javascript:alert(1)")], base_url="http://x")
    body = plan[paths.SEARCH_INDEX]
    assert b"<" not in body and b">" not in body and b"&" not in body
    assert orjson.loads(body)["servers"][0][1] == SCRIPT[:catalog.SEARCH_TITLE_CHARS]


def test_pages_are_at_stable_urls_and_linked_relative_to_each_page():
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example/mcp")
    assert {"index.html", "404.html", "servers/io.github.a/tool/index.html", "servers/io.github.a/index.html",
            "namespaces/index.html", "changes/index.html", "feed.atom", "filters/status/deprecated/index.html",
            "filters/transport/stdio/index.html", "filters/package/npm/index.html", paths.STYLESHEET,
            paths.SCRIPT, paths.SEARCH_INDEX} <= set(plan)
    assert "servers/io.github.b/gone/index.html" not in plan  # deleted upstream: no page
    page = plan["servers/io.github.a/tool/index.html"].decode()
    assert 'href="../../../assets/catalog.css"' in page and 'src="../../../assets/catalog.js"' in page
    assert 'href="../../../v0.1/servers/io.github.a/tool/versions/1.0.0%2Bbuild.7"' in page
    static = plan_site(SNAPSHOT, golden_rows(), base_url="https://o.github.io/r", host="static")
    assert 'href="../../../v0.1/servers/io.github.a/tool/versions/1.10.0/"' in (
        static["servers/io.github.a/tool/index.html"].decode())  # plain file servers: the directory form
    assert paths.relative_url("", "") == "./" and paths.relative_url("a/b", "") == "../../"
    assert paths.catalog_list_dir("", 2) == "_page/2" and paths.catalog_list_dir("changes", 1) == "changes"


def test_every_page_carries_the_csp_and_no_inline_script():
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="http://x")
    meta = '<meta http-equiv="Content-Security-Policy" content="{}">'.format(
        hosts.PAGE_CSP.replace("'", "&#39;"))
    for path, body in plan.items():
        if path.endswith(".html") and not path.startswith("v0.1/"):
            text = body.decode()
            assert meta in text, path
            assert re.findall(r"<script[^>]*>", text) in ([], ['<script src="' + paths.relative_url(
                path.rpartition("/")[0] if "/" in path else "", paths.SCRIPT, directory=False) + '" defer>']), path
            assert " on" not in re.sub(r">[^<]*<", "><", text).replace(" one", ""), path  # no event attributes


def _changes() -> list[DatedChange]:
    return [DatedChange(8, 0, "2025-12-02T00:00:00Z", Change("status_changed", "io.github.a/tool", "1.0.0+build.7",
                                                               {"from": "active", "to": "deprecated",
                                                                "message": "use <b>1.10.0</b>"}), 2),
            DatedChange(8, 1, "2025-12-02T00:00:00Z", Change("server_removed", "io.github.z/gone\x07", None), 1),
            DatedChange(7, 0, "2025-12-01T00:00:05.5Z", Change("server_added", "io.github.a/tool", "1.10.0"), 0)]


def _crawl_changes(snapshot: int, count: int, *, before: list[DatedChange]) -> list[DatedChange]:
    """`count` changes found by crawl `snapshot`, numbered as the store numbers them, newest first."""
    top = before[0].number + 1 if before else 0
    return [DatedChange(snapshot, n, f"2025-12-{snapshot:02d}T00:00:00Z",
                        Change("version_added", "io.github.a/tool", f"{snapshot}.{n}"), top + count - 1 - n)
            for n in range(count)] + before


def _change_pages(changes: list[DatedChange]) -> dict[str, bytes]:
    rendered = site(SNAPSHOT, golden_rows(), base_url="http://x")
    rendered.changes = lambda: changes
    return {entry.path: entry.data() for entry in rendered.entries() if entry.path.startswith("changes/")}


def _follow(files: dict[str, bytes], rel: str, page: str = "changes/index.html") -> Iterator[str]:
    while True:
        found = re.search(rf'rel="{rel}" href="([^"]+)"', files[page].decode())
        if not found:
            return
        page = posixpath.normpath(posixpath.join(posixpath.dirname(page), found.group(1))) + "/index.html"
        yield page


def test_what_changed_is_newest_first_and_paginated():
    changes = _crawl_changes(9, catalog.CHANGES_PAGE + 5, before=_changes())
    files = _change_pages(changes)
    front = files["changes/index.html"].decode()
    assert front.count('<li class="change') == catalog.CHANGES_PAGE
    assert front.index(">9.0<") < front.index(">9.1<") < front.index(">9.99<") and ">9.100<" not in front
    older = list(_follow(files, "next"))
    assert older == ["changes/_page/1/index.html"]  # the archive page of the 101st newest change
    archive = files[older[0]].decode()
    assert ">9.100<" in archive and ">9.104<" in archive and "Changes 1–100, counted from the first crawl" in archive
    assert "Deprecated" in archive and "use &lt;b&gt;1.10.0&lt;/b&gt;" in archive and "Removed server" in archive
    assert archive.index(">9.100<") < archive.index("Deprecated") < archive.index("New server")
    newer = list(_follow(files, "prev", older[0]))
    assert newer == ["changes/_page/2/index.html", "changes/index.html"]
    shown = re.findall(r'<span class="version"><bdi>([^<]+)</bdi>', files[newer[0]].decode())
    assert shown == [f"9.{n}" for n in range(8)]  # the newest archive page: numbers 100 to 107


def test_a_crawl_with_changes_leaves_older_archive_pages_as_they_were():
    changes = _crawl_changes(9, 3 * catalog.CHANGES_PAGE + 10, before=_changes())
    before = _change_pages(changes)
    after = _change_pages(_crawl_changes(10, 7, before=changes))
    remade = sorted(path for path in after if before.get(path) != after[path])
    # the front page, and the newest archive page that the new changes joined
    assert remade == ["changes/_page/4/index.html", "changes/index.html"], remade
    assert set(before) == set(after)
    assert "10.6" in after["changes/_page/4/index.html"].decode()


def test_the_atom_feed_is_well_formed_and_a_feed_reader_accepts_it():
    rendered = site(SNAPSHOT, golden_rows(), base_url="https://m.example/mcp")
    rendered.changes = _changes
    feed_bytes = next(entry.data() for entry in rendered.entries() if entry.path == paths.FEED)
    root = ET.fromstring(feed_bytes)
    assert root.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 3
    for entry in entries:
        assert all(entry.find(f"{ATOM}{tag}") is not None and entry.find(f"{ATOM}{tag}").text
                   for tag in ("id", "title", "updated")), ET.tostring(entry)
    assert len({entry.find(f"{ATOM}id").text for entry in entries}) == 3
    parsed = feedparser.parse(feed_bytes)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10" and len(parsed.entries) == 3
    assert parsed.entries[0].title.startswith("Deprecated: io.github.a/tool")
    assert parsed.entries[0].link == "https://m.example/mcp/servers/io.github.a/tool/"
    assert "\\u0007" in parsed.entries[1].title  # a control character XML cannot carry, shown as an escape
    assert parsed.feed.updated == "2025-12-02T00:00:00Z"


def test_server_pages_are_skipped_by_source_when_their_rows_did_not_change():
    a = [e for e in site(SNAPSHOT, golden_rows(), base_url="http://x").entries() if e.path.startswith("servers/")
         and e.source]
    rows = golden_rows()
    rows[0] = row("com.example/Mixed-Case", "1.0.0", latest=True, published="2025-09-01T00:00:00Z",
                  description="changed")
    b = {e.path: e.source for e in site(SNAPSHOT, rows, base_url="http://x").entries() if e.source}
    changed = {e.path for e in a if b[e.path] != e.source}
    assert changed == {"servers/com.example/Mixed-Case/index.html", "servers/com.example/index.html"}  # and its list
