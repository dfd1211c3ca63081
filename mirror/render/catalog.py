"""The HTML catalog people browse: home and list pages, a page per server, what changed
(and its Atom feed), the search index and the assets, as entries.

Templates are in templates/catalog/ (autoescaped); upstream text reaches them only cut to
explicit bounds and with control and bidi characters shown as escapes, and URLs only when
their scheme is http(s). Server pages come from the sorted row stream one server at a time;
lists and the search index come from the per-server summaries the API pass keeps. Links are
relative to each page, so the tree works under any base path and on any host.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, partial
from itertools import groupby
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

import orjson
from markupsafe import Markup

from mirror import paths, vscode
from mirror.hosts import ATOM, CSS, HTML, JAVASCRIPT, JSON, PAGE_CSP
from mirror.models import OFFICIAL, DatedChange, Row, is_visible, latest_row
from mirror.plan import Cache, Entry, Kind, digest
from mirror.render.api import PACKAGE_TYPES, ServerSummary
from mirror.templating import render_template, templates_dir
from mirror.text import clip, inert, safe_url

LIST_PAGE = 50  # servers a list page shows
NAMESPACE_PAGE = 500
CHANGES_PAGE = 100
CHANGES_SHOWN = 10_000  # the newest changes the pages show; `mcp-mirror diff` has them all
FEED_ENTRIES = 50
VERSIONS_SHOWN = 100  # of a server's history, newest first
DESCRIPTION_CHARS = 4000  # of the server page's description
FIELD_CHARS = 500  # any other text on a server page
URL_CHARS = 2000
ITEMS_SHOWN = 50  # packages, arguments, variables, remotes, headers: each list cut here
INSTALL_LINK_BYTES = 8000  # a bigger vscode: link is left out (the mcp.json entry is still shown)
MCP_JSON_CHARS = 16_000  # a bigger mcp.json entry is left out: VS Code's is never cut
SEARCH_DESCRIPTION_CHARS = 120
SEARCH_TITLE_CHARS = 80
SEARCH_IDENTIFIER_CHARS = 80
SEARCH_INDEX_VERSION = 1

CSP = PAGE_CSP  # in every page's <meta>; hosts that set headers send PAGE_CSP_HEADER too

STATUSES = ("active", "deprecated")  # deleted servers have no page
TRANSPORTS = {"stdio": "runs locally (a package)", "remote": "a remote endpoint"}
FILTERS = {"package": PACKAGE_TYPES + ("other",), "transport": tuple(TRANSPORTS), "status": STATUSES}
CHANGE_LABELS = {
    "server_added": "New server", "version_added": "New version", "version_updated": "Updated",
    "latest_changed": "Latest version", "version_removed": "Removed version", "server_removed": "Removed server",
}
_NOT_XML = re.compile("[\ufffe\uffff\ud800-\udfff]")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


# -- untrusted values ------------------------------------------------------------


def text(value: Any, bound: int = FIELD_CHARS) -> str:
    """Upstream text for display: a string or nothing, cut and made inert."""
    return clip(value, bound) if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value[:ITEMS_SHOWN] if isinstance(v, dict)] if isinstance(value, list) else []


# -- how to run a server: what VS Code writes (mirror/vscode.py) ---------------------


@dataclass(frozen=True)
class Launch:
    """How to run one package: the shell line of the command VS Code writes for it (which
    may hold `${input:…}` it asks for at launch), or a download for mcpb bundles, which VS
    Code's conversion cannot install."""

    registry: str
    command: str | None = None
    prompts: bool = False  # the command holds `${input:…}`
    download: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class VSCodeEntry:
    """What VS Code writes for a server: the package type asked for, the part of the
    server.json that answered, its mcp.json and its install link (None when too big)."""

    package_type: str
    installation: vscode.Installation
    mcp_json: str | None
    install: str | None


def launch(package: Any) -> Launch | None:
    """The run line of a package, or None for one VS Code's conversion gives no command for
    (the catalog still lists the package)."""
    if not isinstance(package, dict):
        return None
    registry, ident = package.get("registryType"), package.get("identifier")
    if not isinstance(ident, str) or not ident:
        return None
    if registry == "mcpb":
        sha = package.get("fileSha256")
        return Launch("mcpb", download=safe_url(ident, schemes=("https",)),
                      sha256=sha if isinstance(sha, str) and _HEX64.fullmatch(sha) else None)
    try:
        argv = vscode.package_configuration(package).argv
    except vscode.NotInstallable:
        return None
    if not argv:
        return None
    command = shlex.join(argv)
    return Launch(str(registry), command=command, prompts="${input:" in command)


def vscode_entry(name: str, server: Any) -> VSCodeEntry | None:
    """What VS Code writes when it installs this server from its gallery: the package type
    of `packages[0]`, else "remote". When that gives nothing VS Code can run (it throws, an
    mcpb or unknown type, a malformed shape), the first other package type, then "remote",
    that does, each exactly as VS Code's install with that type writes it; else None."""
    if not isinstance(server, dict):
        return None
    packages = server.get("packages") if isinstance(server.get("packages"), list) else []
    runs = [p.get("registryType") for p in packages if isinstance(p, dict)]
    runs = [kind for kind in runs if isinstance(kind, str) and kind in vscode.COMMANDS]
    # a type with no command never runs: at most six conversions
    kinds = [vscode.gallery_package_type(server), *runs, vscode.REMOTE]
    for kind in dict.fromkeys(k for k in kinds if isinstance(k, str)):
        try:
            installation = vscode.configuration(server, kind)
        except vscode.NotInstallable:
            continue
        return VSCodeEntry(kind, installation, mcp_json(name, installation),
                           install_link(name, installation))
    return None


def mcp_json(name: str, installation: vscode.Installation) -> str | None:
    """A ready-to-paste VS Code mcp.json: the server's entry under its registry name, as
    VS Code's gallery install names it, and the inputs it prompts for; None when too big
    (VS Code's entry is never cut)."""
    document: dict[str, Any] = {"servers": {name: installation.config}}
    if installation.inputs:
        document["inputs"] = installation.inputs
    try:
        text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        return None
    return text if len(text) <= MCP_JSON_CHARS else None


def install_link(name: str, installation: vscode.Installation) -> str | None:
    """VS Code's `vscode:mcp/install?<url-encoded JSON>` link: `{name, ...config, inputs}`,
    which its URL handler splits back into the name, the inputs and the entry. The handler
    decodes the query twice (URI.parse, then decodeURIComponent), so no `%` is left in the
    JSON: each is written `\\u0025`, the same string. None when it would be too long."""
    payload = {"name": name, **installation.config}
    if installation.inputs:
        payload["inputs"] = installation.inputs
    try:
        body = orjson.dumps(payload).replace(b"%", b"\\u0025").decode()
    except orjson.JSONEncodeError:
        return None
    link = "vscode:mcp/install?" + quote(body, safe="")
    return link if len(link) <= INSTALL_LINK_BYTES else None


# -- what a page shows -------------------------------------------------------------


def _official(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("_meta")
    official = meta.get(OFFICIAL) if isinstance(meta, dict) else None
    return official if isinstance(official, dict) else {}


def _date(value: Any) -> str:
    return value[:10] if isinstance(value, str) else ""


def _argument_view(arg: dict[str, Any]) -> dict[str, Any]:
    return {"name": text(arg.get("name") or arg.get("valueHint"), 200), "type": text(arg.get("type"), 40),
            "required": arg.get("isRequired") is True, "secret": arg.get("isSecret") is True,
            "default": text(arg.get("default")), "value": text(arg.get("value")),
            "description": text(arg.get("description"))}


def _package_view(package: dict[str, Any]) -> dict[str, Any]:
    transport = package.get("transport") if isinstance(package.get("transport"), dict) else {}
    return {
        "registry": text(package.get("registryType"), 40) or "unknown",
        "identifier": text(package.get("identifier"), 300),
        "version": text(package.get("version"), 255),
        "transport": text(transport.get("type"), 40) or "stdio",
        "transport_url": text(transport.get("url"), URL_CHARS),
        "launch": launch(package),
        "arguments": [_argument_view(a) for a in (*_dicts(package.get("runtimeArguments")),
                                                  *_dicts(package.get("packageArguments")))][:ITEMS_SHOWN],
        "env": [_argument_view(v) for v in _dicts(package.get("environmentVariables"))],
    }


def _remote_view(remote: dict[str, Any]) -> dict[str, Any]:
    return {"type": text(remote.get("type"), 40) or "remote", "url": text(remote.get("url"), URL_CHARS),
            "href": safe_url(remote.get("url")),
            "headers": [_argument_view(h) for h in _dicts(remote.get("headers"))]}


def server_view(name: str, versions: Sequence[Row], shown: Row, *, here: str, json_dir: Callable[[str], str]
                ) -> dict[str, Any]:
    """Everything a server's page shows: the shown (latest visible) version in full, and the
    history of every version, newest first."""
    item = orjson.loads(shown.doc)
    server = item.get("server") if isinstance(item.get("server"), dict) else {}
    official = _official(item)
    repository = server.get("repository") if isinstance(server.get("repository"), dict) else {}
    icon = next((safe_url(i.get("src"), schemes=("https",)) for i in _dicts(server.get("icons"))
                 if safe_url(i.get("src"), schemes=("https",))), None)
    packages = [_package_view(p) for p in _dicts(server.get("packages"))]
    remotes = [_remote_view(r) for r in _dicts(server.get("remotes"))]
    entry = vscode_entry(name, server)
    newest = sorted(versions, key=lambda row: row.published_sort_key, reverse=True)
    history = []
    for row in newest[:VERSIONS_SHOWN]:
        row_official = _official(orjson.loads(row.doc)) if row is not shown else official
        history.append({
            "version": clip(row.version, 255), "status": row.status, "latest": row.is_latest,
            "published": _date(row.published_at), "updated": _date(row.updated_at),
            "status_message": text(row_official.get("statusMessage")),
            "status_changed": _date(row_official.get("statusChangedAt")),
            "json": paths.relative_url(here, json_dir(row.version)) if is_visible(row) else None,
        })
    return {
        "name": name, "version": clip(shown.version, 255), "status": shown.status,
        "title": text(server.get("title"), 200), "description": text(server.get("description"), DESCRIPTION_CHARS),
        "status_message": text(official.get("statusMessage")),
        "published": _date(shown.published_at), "updated": _date(shown.updated_at),
        "icon": icon,
        "repository": {"url": text(repository.get("url"), URL_CHARS), "href": safe_url(repository.get("url")),
                       "source": text(repository.get("source"), 40), "subfolder": text(repository.get("subfolder"))},
        "website": {"url": text(server.get("websiteUrl"), URL_CHARS), "href": safe_url(server.get("websiteUrl"))},
        "packages": packages, "remotes": remotes,
        "vscode": None if entry is None or entry.mcp_json is None else {
            "source": _source(entry), "mcp_json": entry.mcp_json, "install": entry.install},
        "history": history, "more_versions": max(0, len(newest) - VERSIONS_SHOWN),
        "json": paths.relative_url(here, json_dir(shown.version)),
    }


def _source(entry: VSCodeEntry) -> str:
    """Which part of the server.json VS Code's entry is made from: `packages[1] (npm)`."""
    command = entry.installation.config.get("command")
    kinds = {run: kind for kind, run in vscode.COMMANDS.items()}
    return entry.installation.source + (f" ({kinds[command]})" if command in kinds else "")


def change_view(dated: DatedChange) -> dict[str, Any]:
    change = dated.change
    label = CHANGE_LABELS.get(change.kind, change.kind)
    detail = ""
    if change.kind == "status_changed":
        to = change.detail.get("to")
        label = {"deprecated": "Deprecated", "deleted": "Deleted", "active": "Restored"}.get(to, "Status changed")
        detail = f"{change.detail.get('from')} → {to}"
        if isinstance(change.detail.get("message"), str):
            detail += f": {change.detail['message']}"
    elif change.kind == "latest_changed":
        detail = f"{change.detail.get('from')} → {change.detail.get('to')}"
    elif change.kind == "version_updated":
        changed = change.detail.get("paths") or []
        detail = ", ".join(str(p) for p in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return {"label": label, "kind": change.kind, "name": change.name, "version": clip(change.version or "", 255),
            "detail": clip(detail, FIELD_CHARS), "at": dated.at, "date": _date(dated.at),
            "snapshot": dated.snapshot, "seq": dated.seq, "number": dated.number}


# -- the producer ------------------------------------------------------------------


@cache
def templates_digest() -> str:
    """Of every catalog template and asset: a changed template is a changed page."""
    root = templates_dir() / "catalog"
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            sha.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def asset(name: str) -> bytes:
    return (templates_dir() / "catalog" / "assets" / name).read_bytes()


class CatalogProducer:
    """The catalog of one snapshot for one host profile and base URL."""

    def __init__(self, *, base_url: str, index_name: str, skip: Callable[[Row], bool] = lambda row: False) -> None:
        self.base_url = base_url.rstrip("/")
        self.index_name = index_name  # of the API tree: its directories are linked with a trailing slash on static
        self.skip = skip
        self._cards: dict[str, tuple[ServerSummary, Markup]] = {}

    # -- helpers ----------------------------------------------------------------

    def _json_dir(self, name: str, version: str) -> str:
        return paths.version_dir(name, version)

    def _context(self, here: str, **values: Any) -> dict[str, Any]:
        api_slash = self.index_name == "index.html"  # plain file servers answer a directory with a slash only

        def api(target: str) -> str:
            return paths.relative_url(here, target, directory=api_slash)

        return {"url": partial(paths.relative_url, here), "file": partial(paths.relative_url, here, directory=False),
                "api": api, "paths": paths, "csp": CSP, "here": here, "base_url": self.base_url, **values}

    def _page(self, directory: str, template: str, kind: Kind, *, source: Sequence[str] | None = None,
              later: Callable[[], dict[str, Any]] = dict, **values: Any) -> Entry:
        """A page; with `source` (what its values are made of), made only when a publisher
        does not already have it, and so are the values `later` makes."""
        def body() -> bytes:
            context = self._context(directory, **values, **later())
            return render_template(f"catalog/{template}", **context).encode()
        if source is None:
            return Entry(paths.catalog_page_file(directory), kind, HTML, body(), cache=Cache.HTML)
        return Entry(paths.catalog_page_file(directory), kind, HTML, body, cache=Cache.HTML,
                     source=digest(templates_digest(), directory, template, *source))

    # -- documents --------------------------------------------------------------

    def assets(self) -> Iterator[Entry]:
        for path, media_type in ((paths.STYLESHEET, CSS), (paths.SCRIPT, JAVASCRIPT)):
            yield Entry(path, Kind.DOCUMENT, media_type, asset(path.rsplit("/", 1)[1]), cache=Cache.HTML)

    def not_found_page(self, state: dict[str, Any]) -> Entry:
        """Served at whatever URL was missing, so its links are absolute (from the base URL)
        and it loads nothing: a relative stylesheet would miss at any depth."""
        body = render_template("catalog/404.html", state=state, base_url=self.base_url, csp=CSP).encode()
        return Entry(paths.NOT_FOUND_PAGE, Kind.DOCUMENT, HTML, body, cache=Cache.HTML)

    # -- lists: a page per server -----------------------------------------------

    def server_pages(self, rows: Iterable[Row], *, known: set[str]) -> Iterator[Entry]:
        """One page per listed server (`known`: those with a visible latest version; a
        server deleted upstream has none), made as its rows arrive."""
        namespace_pages: dict[str, str] = {}  # named as list_pages names them: the first spelling of each fold
        for listed in sorted(known):
            namespace_pages.setdefault(paths.fold(listed.split("/", 1)[0]), listed.split("/", 1)[0])
        for name, group in groupby(rows, key=lambda row: row.name):
            if name not in known:
                for _ in group:
                    pass
                continue
            versions = [row for row in group if not self.skip(row)]
            shown = latest_row(row for row in versions if is_visible(row))
            if shown is None:
                continue
            directory = paths.catalog_server_dir(name)
            # the namespace's page: `io.github.a/x` links to `io.github.A`'s when both are listed
            page = namespace_pages[paths.fold(name.split("/", 1)[0])]
            source = digest(templates_digest(), directory, page, *(row.hash for row in versions))
            yield Entry(paths.catalog_page_file(directory), Kind.LIST, HTML,
                        partial(self._server_page, name, versions, shown, directory, page), cache=Cache.HTML,
                        source=source)

    def _server_page(self, name: str, versions: list[Row], shown: Row, directory: str, namespace_page: str) -> bytes:
        server = server_view(name, versions, shown, here=directory,
                             json_dir=lambda version: self._json_dir(name, version))
        api_slash = self.index_name == "index.html"
        for entry in server["history"]:
            if entry["json"] is not None and api_slash is False:
                entry["json"] = entry["json"].rstrip("/")
        if not api_slash:
            server["json"] = server["json"].rstrip("/")
        namespace = name.split("/", 1)[0]
        return render_template("catalog/server.html", **self._context(
            directory, server=server, namespace=namespace, namespace_page=namespace_page,
            title=server["title"] or name)).encode()

    # -- lists: changes, feed, search index --------------------------------------

    def change_pages(self, changes: Iterable[DatedChange], *, known: set[str]) -> Iterator[Entry]:
        """What changed, newest first: the front page shows the newest CHANGES_PAGE; older ones
        are on archive pages cut by each change's number (from the oldest), so a crawl that
        records changes remakes the front page and at most a few archive pages, never them all.
        `known` names the servers with a page."""
        front: list[dict[str, Any]] = []
        group: list[dict[str, Any]] = []
        page: int | None = None
        newest_page: int | None = None
        older_than_front: int | None = None  # the archive page the front page's "next" opens
        for dated in changes:
            view = change_view(dated)
            if len(front) < CHANGES_PAGE:
                front.append(view)
            elif older_than_front is None:
                older_than_front = dated.number // CHANGES_PAGE
            index = dated.number // CHANGES_PAGE
            if index != page:
                if group:
                    yield self._archive_page(page, group, known, newest=newest_page, older=True)
                page, group = index, []
                newest_page = index if newest_page is None else newest_page
            group.append(view)
        if group:
            yield self._archive_page(page, group, known, newest=newest_page, older=False)
        pager = {"page": 1, "prev": None,
                 "next": paths.catalog_changes_dir(older_than_front) if older_than_front is not None else None}
        yield self._page(paths.catalog_changes_dir(None), "changes.html", Kind.LIST, changes=front, known=known,
                         pager=pager, title="What changed", shown_limit=CHANGES_SHOWN)

    def _archive_page(self, index: int, changes: list[dict[str, Any]], known: set[str], *, newest: int,
                      older: bool) -> Entry:
        directory = paths.catalog_changes_dir(index)
        low, high = changes[-1]["number"] + 1, changes[0]["number"] + 1
        pager = {"page": index + 1, "label": f"Changes {low}–{high}, counted from the first crawl",
                 "prev": paths.catalog_changes_dir(index + 1 if index < newest else None),
                 "next": paths.catalog_changes_dir(index - 1) if older else None}
        source = (pager["label"], pager["prev"], str(pager["next"]),
                  *(f"{c['snapshot']}.{c['seq']}.{c['name'] in known}" for c in changes))
        return self._page(directory, "changes.html", Kind.LIST, changes=changes, known=known, pager=pager,
                          title="What changed", shown_limit=CHANGES_SHOWN, source=source)

    def feed(self, changes: Iterable[DatedChange], *, known: set[str], updated: str) -> Entry:
        """An Atom feed (RFC 4287) of the newest changes; ids are stable URNs, dates the crawls'."""
        views = [change_view(dated) for dated in changes]
        base = self.base_url
        feed_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{base}/{paths.FEED}")
        updated = views[0]["at"] if views else updated
        lines = ['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
                 f"  <id>urn:uuid:{feed_id}</id>", "  <title>MCP Registry mirror: what changed</title>",
                 f"  <updated>{_xml(updated)}</updated>",
                 f'  <link rel="self" type="application/atom+xml" href="{_xml(base)}/{paths.FEED}"/>',
                 f'  <link rel="alternate" type="text/html" href="{_xml(base)}/{paths.CATALOG_CHANGES}/"/>',
                 "  <author><name>mcp-mirror</name></author>", "  <generator>mcp-mirror</generator>"]
        for view in views:
            entry_id = uuid.uuid5(uuid.NAMESPACE_URL,
                                  f"{base}/{paths.CATALOG_CHANGES}/{view['snapshot']}/{view['seq']}")
            title = f"{view['label']}: {inert(view['name'])}" + (f" {view['version']}" if view["version"] else "")
            link = (f"{base}/{paths.catalog_server_dir(view['name'])}/" if view["name"] in known
                    else f"{base}/{paths.CATALOG_CHANGES}/")
            summary = view["detail"] or title
            lines += ["  <entry>", f"    <id>urn:uuid:{entry_id}</id>", f"    <title>{_xml(title)}</title>",
                      f"    <updated>{_xml(view['at'])}</updated>", f'    <link href="{_xml(link)}"/>',
                      f'    <category term="{_xml(view["kind"])}"/>', f"    <summary>{_xml(summary)}</summary>",
                      "  </entry>"]
        lines.append("</feed>")
        return Entry(paths.FEED, Kind.LIST, ATOM, ("\n".join(lines) + "\n").encode(),
                     cache=Cache.HTML)

    def search_index(self, summaries: Sequence[ServerSummary]) -> Entry:
        """Compact: one array per server (name, title, description, identifiers, status,
        transports), every text cut; `<`, `>`, `&` as \\u escapes wherever it is served."""
        fields = ["name", "title", "description", "packages", "status", "transports"]
        rows = [[s.name, s.title[:SEARCH_TITLE_CHARS], s.description[:SEARCH_DESCRIPTION_CHARS],
                 " ".join(i[:SEARCH_IDENTIFIER_CHARS] for i in s.identifiers), s.status,
                 ("stdio " if s.stdio else "") + ("remote" if s.remote else "")] for s in summaries]
        body = orjson.dumps({"version": SEARCH_INDEX_VERSION, "fields": fields, "servers": rows})
        body = body.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
        return Entry(paths.SEARCH_INDEX, Kind.LIST, JSON, body, cache=Cache.HTML)

    # -- pointers: home, lists, namespaces, filters -------------------------------

    def list_pages(self, state: dict[str, Any], summaries: Sequence[ServerSummary]) -> Iterator[Entry]:
        yield from self._listing(paths.HOME, summaries, state=state, title="MCP servers", home=True)
        namespaces: dict[str, list[ServerSummary]] = defaultdict(list)
        spelling: dict[str, str] = {}
        for summary in summaries:
            namespace = summary.name.split("/", 1)[0]
            key = paths.fold(namespace)  # one page per namespace on case-insensitive file systems too
            spelling.setdefault(key, namespace)
            namespaces[key].append(summary)
        ordered = sorted(namespaces, key=lambda key: spelling[key])
        for key in ordered:
            yield from self._listing(paths.catalog_namespace_dir(spelling[key]), namespaces[key], state=state,
                                     title=f"Namespace {spelling[key]}")
        table = [(spelling[key], len(namespaces[key])) for key in ordered]
        chunks = [table[i:i + NAMESPACE_PAGE] for i in range(0, len(table), NAMESPACE_PAGE)] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            directory = paths.catalog_list_dir(paths.CATALOG_NAMESPACES, number)
            pager = self._pager(paths.CATALOG_NAMESPACES, number, len(chunks))
            yield self._page(directory, "namespaces.html", Kind.POINTER, namespaces=chunk, pager=pager,
                             title="Namespaces", state=state)
        for facet, values in FILTERS.items():
            for value in values:
                chosen = [s for s in summaries if _matches(s, facet, value)]
                yield from self._listing(paths.catalog_filter_dir(facet, value), chosen, state=state,
                                         title=_filter_title(facet, value), facet=(facet, value))

    def _servers(self, summaries: Sequence[ServerSummary]) -> dict[str, Any]:
        return {"servers": [self._list_entry(summary) for summary in summaries]}

    def _list_entry(self, summary: ServerSummary) -> dict[str, Any]:
        # A server is on the home list, its namespace's and a few filters': its card is made
        # once (the pages' Jinja time was mostly remaking it), its link on each page.
        card = self._cards.get(summary.name)
        if card is None or card[0] != summary:
            card = self._cards[summary.name] = (summary, _card(summary))
        return {"directory": paths.catalog_server_dir(summary.name),
                "heading": clip(summary.title, 200) or summary.name, "card": card[1]}

    def _pager(self, directory: str, page: int, pages: int) -> dict[str, Any]:
        return {"page": page, "pages": pages,
                "prev": paths.catalog_list_dir(directory, page - 1) if page > 1 else None,
                "next": paths.catalog_list_dir(directory, page + 1) if page < pages else None}

    def _listing(self, directory: str, summaries: Sequence[ServerSummary], *, state: dict[str, Any], title: str,
                 home: bool = False, facet: tuple[str, str] | None = None) -> Iterator[Entry]:
        pages = max(1, -(-len(summaries) // LIST_PAGE))
        for page in range(1, pages + 1):
            chunk = summaries[(page - 1) * LIST_PAGE:page * LIST_PAGE]
            here = paths.catalog_list_dir(directory, page)
            # what the page shows of the state: its content, never the crawl's own record, so a
            # crawl that found nothing new leaves the page (and its source) as it was
            shown = {key: value for key, value in state.items() if key != "snapshot"}
            shown_state = orjson.dumps(shown, option=orjson.OPT_SORT_KEYS).decode() if home and page == 1 else ""
            yield self._page(here, "list.html", Kind.POINTER,
                             later=partial(self._servers, chunk),
                             total=len(summaries), pager=self._pager(directory, page, pages), title=title,
                             home=home and page == 1, state=state, facet=facet, filters=FILTERS,
                             filter_title=_filter_title,
                             source=(title, str(len(summaries)), str(page), str(pages), repr(facet), shown_state,
                                     *(repr(s) for s in chunk)))


def _matches(summary: ServerSummary, facet: str, value: str) -> bool:
    if facet == "package":
        return value in summary.package_types
    if facet == "transport":
        return summary.stdio if value == "stdio" else summary.remote
    return summary.status == value


def _filter_title(facet: str, value: str) -> str:
    if facet == "package":
        return f"{value} packages" if value != "other" else "other package types"
    if facet == "transport":
        return "stdio (local)" if value == "stdio" else "remote"
    return value


def _card(summary: ServerSummary) -> Markup:
    """A server's entry in a list but its link: the same on every list page it is on."""
    view = {"name": summary.name, "title": clip(summary.title, 200), "description": clip(summary.description, 300),
            "version": clip(summary.version, 255), "status": summary.status, "packages": summary.package_types,
            "stdio": summary.stdio, "remote": summary.remote, "updated": _date(summary.updated_at)}
    return Markup(render_template("catalog/_card.html", s=view))  # an autoescaped template's output


def _xml(value: str) -> str:
    """Text for XML 1.0: control characters shown as escapes (XML cannot carry them), then escaped."""
    return xml_escape(_NOT_XML.sub("\ufffd", inert(value)), {'"': "&quot;"})
