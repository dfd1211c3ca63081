"""Host profiles: what each kind of static host can route, the files it needs inside the
tree, and the server-side configuration to install.

The routing every profile expresses is the one `routes` defines and `serve` runs; hosts
that cannot route query strings get a degraded tree that never promises what they cannot
answer (no `nextCursor`, one list page of latest versions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from mirror import __version__, paths, query, routes
from mirror.errors import UsageError
from mirror.plan import Cache, Entry, Kind
from mirror.templating import render_template
from mirror.text import json_as_html

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
# Every document can change when upstream does (status, isLatest), so nothing in the API
# tree is immutable: clients revalidate after five minutes (ETag/Last-Modified make it cheap).
API_CACHE_CONTROL = "public, max-age=300, must-revalidate"
CACHE_CONTROL = {Cache.API: API_CACHE_CONTROL, Cache.HTML: API_CACHE_CONTROL, Cache.STATE: API_CACHE_CONTROL}
RESPONSE_HEADERS = {**CORS_HEADERS, "X-Content-Type-Options": "nosniff", "Cache-Control": API_CACHE_CONTROL}
# The catalog's pages (mirror.render.catalog) forbid inline script and every origin but their
# own, except https images (upstream icons). Pages carry it in a <meta>; hosts that set headers
# send it too, with frame-ancestors, which only a header can carry.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'")
PAGE_CSP_HEADER = f"{PAGE_CSP}; frame-ancestors 'none'"
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP_HEADER, "Referrer-Policy": "no-referrer"}
PREFLIGHT_MAX_AGE = "86400"
OBJECTS_MANIFEST = f"{paths.HOST_DIR}/objects.json"
DEFAULT_SIDECAR = "127.0.0.1:8701"  # where a host that proxies computed queries finds `mcp-mirror serve`
_UNQUOTABLE = re.compile(r'["$\\{}\x00-\x1f]')


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """The state document's host record: what a reader of a tree (serve, verify, a mirror
    following this one) may rely on. The only writer and reader of that record: a record
    from an older or foreign tree reads as the defaults where a key is missing or ill-typed."""

    profile: str
    routes_queries: bool = True
    rewrites_paths: bool = True
    headers: bool = True
    problem_404: bool = True
    index_file: str = paths.DEFAULT_VIEW
    computed_queries: str | None = None
    degradations: tuple[str, ...] = ()

    _KEYS = {"routes_queries": "queryRouting", "rewrites_paths": "pathRewrites", "headers": "headers",
             "problem_404": "problem404", "index_file": "indexFile", "computed_queries": "computedQueries"}

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"profile": self.profile}
        record.update({key: getattr(self, name) for name, key in self._KEYS.items()})
        record["degradations"] = list(self.degradations)
        return record

    @classmethod
    def from_json(cls, record: Any) -> Capabilities:
        record = record if isinstance(record, dict) else {}
        defaults = cls(profile="")
        values: dict[str, Any] = {}
        for name, key in cls._KEYS.items():
            value, default = record.get(key), getattr(defaults, name)
            if name == "computed_queries":
                values[name] = value if isinstance(value, str) else None
            elif isinstance(value, type(default)):
                values[name] = value
        degradations = record.get("degradations")
        if isinstance(degradations, list):
            values["degradations"] = tuple(d for d in degradations if isinstance(d, str))
        profile = record.get("profile")
        return cls(profile=profile if isinstance(profile, str) else "", **values)


@dataclass(frozen=True)
class Layout:
    """Where a profile's tree keeps its index views, manifest and state document."""

    index_name: str

    @property
    def manifest_path(self) -> str:
        return paths.manifest_file(self.index_name)

    @property
    def state_path(self) -> str:
        return paths.state_file(self.index_name)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A kind of static host: what it can route, the files it needs inside the tree, its
    server-side configuration and the capability record the state document carries.
    Subclasses own what differs; render asks for data, never for a host's name."""

    name: str
    description: str
    query_routing: bool  # cursor, limit, version=latest, include_deleted, updated_since
    path_rewrites: bool  # API paths answered from P/index.json without a redirect
    headers: bool  # CORS, Content-Type, nosniff, Cache-Control
    problem_404: bool  # unknown server: 404 with a problem+json body
    fallback_lookup: bool = False  # can try a second file when the first is missing (try_files)
    # How the host computes GET /v0.1/servers from the rows index (mirror.query): "njs",
    # "sidecar" (proxied to `mcp-mirror serve`), "function" (the host's functions), or None:
    # pre-rendered page chains, where search and exact versions are a 400 problem.
    computes: str | None = None
    index_name: str = paths.DEFAULT_VIEW
    config_template: str | None = None  # server-side configuration; None: everything is in the tree
    drops_dot_files: bool = False  # its deploy leaves out files and directories named `.*` (but .well-known)
    degradations: tuple[str, ...] = field(default=())

    def capabilities(self) -> Capabilities:
        return Capabilities(profile=self.name, routes_queries=self.query_routing, rewrites_paths=self.path_rewrites,
                            headers=self.headers, problem_404=self.problem_404, index_file=self.index_name,
                            computed_queries=self.computes, degradations=self.degradations)

    @property
    def layout(self) -> Layout:
        return Layout(self.index_name)

    def document(self, body: bytes) -> bytes:
        """A JSON document as this host serves it (verbatim unless the host may call it HTML)."""
        return body

    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        """The host's own files that live inside the tree (`_redirects`, `_headers`, ...)."""
        return iter(())

    def closing_entries(self, ledger: Iterable[tuple[str, str, Cache]]) -> Iterator[Entry]:
        """Files made from the list of every other entry (path, media type, cache class)."""
        return iter(())

    @property
    def every_deleted_view(self) -> bool:
        """Whether every document needs its `include-deleted.json` twin: a host that routes
        `?include_deleted=true` to it but cannot fall back to `index.json` when it is missing.
        Otherwise a twin is written only where it differs (a deleted row's document, a list
        that gains rows), which is also what the list engine reads for deleted rows."""
        return self.query_routing and not self.fallback_lookup

    @property
    def deleted_views(self) -> bool:
        """Whether documents and lists get an `include-deleted.json` view: a host that routes
        `?include_deleted=true` to a file."""
        return self.query_routing

    @property
    def deleted_views_where_different(self) -> bool:
        """Whether a deleted view is written only where it differs from the index view."""
        return not self.every_deleted_view

    @property
    def lists_computed(self) -> bool:
        """Whether GET /v0.1/servers is computed from the rows index (by njs, a sidecar or a
        function), so no list page needs rendering for it."""
        return self.computes is not None

    @property
    def problem_files(self) -> bool:
        """Whether the tree carries the problem documents the host rewrites errors to."""
        return self.path_rewrites

    @property
    def v0_list_copy(self) -> bool:
        """Whether `/v0/servers` needs its own copy of the first list page: a plain file
        server cannot answer /v0 as /v0.1 by rewriting (Docker's import asks /v0)."""
        return not self.path_rewrites

    @property
    def paged(self) -> bool:
        """Whether GET /v0.1/servers is answered from pre-rendered page chains: a host that
        routes a query to a file but cannot compute a list."""
        return self.query_routing and self.computes is None

    @property
    def needs_ledger(self) -> bool:
        return type(self).closing_entries is not Profile.closing_entries

    def config(self, *, out: Path, base_url: str, sidecar: str | None = DEFAULT_SIDECAR) -> str:
        """The server-side configuration to install, for the tree at `out`; `sidecar` is
        the address of the `mcp-mirror serve` a "sidecar" host proxies computed queries to."""
        root = Path(out).absolute()  # not resolved: `out` may be the symlink a publish swaps
        if _UNQUOTABLE.search(str(root)):
            raise UsageError(f"--out {root} has characters a generated config cannot quote (\" $ \\ {{ }})",
                             hint="move the site to a plainer path")
        parts = urlsplit(base_url)
        context = _context(self, prefix=paths.base_path(base_url), root=root,
                           site_address=f"{parts.scheme}://{parts.netloc}")
        if self.computes == "sidecar" and sidecar:
            host, colon, port = sidecar.rpartition(":")
            if not colon or not port.isdigit() or not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", host):
                raise UsageError(f"--sidecar {sidecar!r} is not HOST:PORT", hint=f"for example {DEFAULT_SIDECAR}")
            context.update(sidecar=sidecar, sidecar_host=host.strip("[]"), sidecar_port=port)
        return render_template(self.config_template or "hosts/in-tree.txt", **context)


class NginxProfile(Profile):
    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        """The query engine njs runs (`js_import`), from inside the tree it answers for."""
        yield _host_file(paths.QUERY_ENGINE_FILE, query_engine(self, base_url=base_url))


def query_engine(profile: Profile, *, base_url: str, host: str = "njs") -> bytes:
    """templates/hosts/mcp-query.js: mirror.query and routes' rules for JavaScript hosts, as
    an njs module (the list), a Netlify Function or a Cloudflare Pages worker (`host`: every
    API path)."""
    prefix = paths.base_path(base_url)
    return _text("hosts/mcp-query.js", **_context(profile, prefix=prefix, root=None), host=host,
                 function_paths=function_paths(prefix), excluded_paths=function_reads(profile))


def function_paths(prefix: str) -> list[str]:
    """What a host's function answers: every path of the API, under both prefixes."""
    return [path for api in (paths.API, paths.API_ALIAS) for path in (f"{prefix}/{api}", f"{prefix}/{api}/*")]


def function_reads(profile: Profile) -> list[str]:
    """The tree's files a function reads from the deploy's root (URLPattern `*`: any rest of a
    path): every leaf file under the API prefix, problems included."""
    leaves = dict.fromkeys((profile.index_name, paths.DELETED_VIEW))
    return [f"/{paths.API}/*/{leaf}" for leaf in leaves] + [f"/{paths.problem_file('*')}"]


class _RedirectsHost(Profile):
    """Netlify and Cloudflare Pages: the API in a function built from the query engine nginx
    runs; the base path and headers of the rest as `_redirects` and `_headers`."""

    redirects_template = "hosts/netlify_redirects"

    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        context = _context(self, prefix=paths.base_path(base_url), root=None)
        yield _host_file("_redirects", _text(self.redirects_template, **context))
        yield _host_file("_headers", _text("hosts/headers", **context))


NETLIFY_FUNCTIONS = f"{paths.HOST_DIR}/netlify-functions"  # `netlify deploy --functions` takes this directory


class NetlifyProfile(_RedirectsHost):
    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        yield from super().tree_entries(base_url=base_url)
        yield _host_file(f"{NETLIFY_FUNCTIONS}/mcp-query.mjs", query_engine(self, base_url=base_url, host="netlify"))


class CloudflarePagesProfile(_RedirectsHost):
    redirects_template = "hosts/cloudflare_redirects"

    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        yield from super().tree_entries(base_url=base_url)
        # Advanced mode: _worker.js answers what _routes.json includes, the static assets the rest.
        prefix = paths.base_path(base_url)
        yield _host_file("_worker.js", query_engine(self, base_url=base_url, host="cloudflare"))
        yield _host_file("_routes.json", orjson.dumps({"version": 1, "include": function_paths(prefix),
                                                       "exclude": []}))


class S3Profile(Profile):
    def closing_entries(self, ledger: Iterable[tuple[str, str, Cache]]) -> Iterator[Entry]:
        yield Entry(OBJECTS_MANIFEST, Kind.POINTER, JSON, objects_manifest(ledger))


class StaticProfile(Profile):
    def document(self, body: bytes) -> bytes:
        """Plain file servers send index.html as text/html, so no upstream `<` may reach
        the page as markup: `<`, `>` and `&` only occur inside JSON strings, where their
        \\u escapes are the same JSON value."""
        return json_as_html(body)

    def tree_entries(self, *, base_url: str) -> Iterator[Entry]:
        yield _host_file(".nojekyll", b"")


_NO_QUERY = (
    "query strings are ignored: /v0.1/servers answers the latest version of every server in one page "
    "with no nextCursor, whatever limit, cursor or version=latest say",
    "include_deleted and updated_since are ignored: deleted versions are never served, so a syncing "
    "client cannot see deletions; crawl with mcp-mirror instead",
    "search is ignored (a static host cannot filter); clients get the full list",
)
_FULL = {"query_routing": True, "path_rewrites": True, "headers": True, "problem_404": True}
PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        NginxProfile(name="nginx", description="nginx (generated server-block directives, njs)", **_FULL,
                     fallback_lookup=True, computes="njs", config_template="hosts/nginx.conf"),
        Profile(name="caddy", description="Caddy 2 (generated site block)", **_FULL,
                fallback_lookup=True, computes="sidecar", config_template="hosts/Caddyfile"),
        # Their functions answer every API path, trying include-deleted.json before index.json.
        NetlifyProfile(name="netlify", description="Netlify (_redirects, _headers and a Netlify Function in the tree)",
                       **_FULL, fallback_lookup=True, computes="function", drops_dot_files=True, degradations=(
                           "versions starting with '.' are left out: Netlify's deploy drops dot-files",)),
        CloudflarePagesProfile(
            name="cloudflare-pages",
            description="Cloudflare Pages (_redirects, _headers and a _worker.js in the tree)",
            **_FULL, fallback_lookup=True, computes="function"),
        S3Profile(
            name="s3", description="S3 or R2 behind CloudFront (object manifest in the tree, CloudFront Function)",
            **_FULL, config_template="hosts/cloudfront.js", degradations=(
                "headers and 404 answers need the CloudFront response-headers policy and custom error "
                "responses that `mcp-mirror host-config s3` describes",
            )),
        StaticProfile(
            name="static",
            description="any plain file server: GitHub Pages, Azure Blob static website, python -m http.server",
            query_routing=False, path_rewrites=False, headers=False, problem_404=False, index_name="index.html",
            degradations=(
                *_NO_QUERY,
                "API paths redirect once to their trailing-slash form and are served from index.html: "
                "clients must follow redirects, and Content-Type is the host's (text/html); JSON strings "
                "carry <, > and & as \\u escapes so no upstream text can become markup",
                "no CORS, cache or nosniff headers beyond what the host sends (GitHub Pages sends "
                "Access-Control-Allow-Origin: *)",
                "unknown servers answer the host's 404 page, not problem+json",
            )),
    )
}
DEFAULT_PROFILE = "nginx"


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown host profile {name!r}", hint=f"choose one of: {', '.join(PROFILES)}") from None


# -- files inside the tree -------------------------------------------------------


def _host_file(path: str, body: bytes) -> Entry:
    return Entry(path, Kind.DOCUMENT, content_type(path), body)


def objects_manifest(ledger: Iterable[tuple[str, str, Cache]]) -> bytes:
    """Object key -> Content-Type and Cache-Control, for upload tools that set metadata per key."""
    objects = {
        path: {"contentType": media_type, "cacheControl": CACHE_CONTROL[cache]}
        for path, media_type, cache in sorted(ledger)
        if not path.startswith(".mcp-mirror/")
    }
    return orjson.dumps({"generator": f"mcp-mirror {__version__}", "objects": objects},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
SERVER_CARD = "application/mcp-server-card+json"  # MCP Server Cards (experimental-ext-server-card)
YAML = "application/yaml"
ATOM = "application/atom+xml"
CSS = "text/css; charset=utf-8"
JAVASCRIPT = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"
_BY_SUFFIX = {".html": HTML, ".css": CSS, ".js": JAVASCRIPT, ".json": JSON, ".xml": "application/xml",
              ".atom": ATOM, ".yaml": YAML}


def content_type(path: str) -> str:
    """The Content-Type a host configured by this module sends for a tree path: every file
    under the API prefix is JSON (index.html ones too, on hosts that can set it)."""
    if path.startswith(f"{paths.API}/_problems/"):
        return PROBLEM_JSON
    if path.startswith(f"{paths.API}/"):
        return JSON
    if path.startswith(f"{paths.CARDS_DIR}/") and path.endswith(f"/{paths.CARD_FILE_NAME}"):
        return SERVER_CARD
    dot = path.rfind(".")
    return _BY_SUFFIX.get(path[dot:], "application/octet-stream") if dot > path.rfind("/") else (
        "application/octet-stream")


# -- configuration outside the tree ----------------------------------------------


def host_config(name: str, *, out: Path, base_url: str, sidecar: str | None = DEFAULT_SIDECAR) -> str:
    """The server-side configuration to install for a profile, for the tree at `out`."""
    return get_profile(name).config(out=out, base_url=base_url, sidecar=sidecar)


def _escapable(text: str) -> str:
    """A regex for `text` in a raw query string, any character of it sent %-encoded: a client
    may encode a parameter's name or value, and serve and upstream's Go parser decode both."""
    def one(char: str) -> str:
        code = f"{ord(char):02X}"
        hex_ = "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in code)
        return f"(?:{re.escape(char)}|%{hex_})"
    return "".join(one(char) for char in text)


def _context(profile: Profile, *, prefix: str, root: Path | None, site_address: str = "") -> dict[str, Any]:
    return {
        "version": __version__,
        "site_address": site_address,
        "profile": profile,
        "prefix": prefix,
        "root": str(root) if root else None,
        "headers": RESPONSE_HEADERS,
        "page_headers": PAGE_HEADERS,
        "nginx_headers": _nginx_headers,
        "preflight_max_age": PREFLIGHT_MAX_AGE,
        "default_size": paths.DEFAULT_PAGE_SIZE,
        "true_values": sorted(routes.TRUE),
        "false_values": sorted(routes.FALSE),
        "escapable": {text: _escapable(text) for text in ("include_deleted", *routes.TRUE, *routes.FALSE)},
        "problems": {slug: orjson.dumps(paths.problem_body(slug)).decode() for slug in paths.PROBLEMS},
        "problem_status": {slug: status for slug, (status, _, _) in paths.PROBLEMS.items()},
        "pages": paths.PAGES,
        "cursor_re": paths.CURSOR_RE.pattern,
        "limit_re": routes.LIMIT_RE.pattern,
        "rfc3339_re": routes.RFC3339_RE.pattern,
        "page_size_by_limit": {str(n): routes.page_size(n) for n in range(1, 101)},
        "chain_by_flags": {f"{'latest' if latest else ''}:{'deleted' if deleted else ''}": name
                           for name, (latest, deleted) in paths.CHAINS.items()},
        "deleted_view": paths.DELETED_VIEW,
        "index_view": paths.DEFAULT_VIEW,
        "sidecar": None,
        "cards_dir": paths.CARDS_DIR,
        "discovery_paths": [paths.ARD_FILE, paths.AI_CATALOG_FILE, f"{paths.ARD_DIR}/*"],
        "card_type": SERVER_CARD,
        "engine_file": paths.QUERY_ENGINE_FILE,
        "engine": {
            "prefix": prefix, "api": paths.API, "rowsFormat": query.FORMAT,
            "rowsIndexFile": paths.rows_index_file(profile.index_name), "defaultSize": paths.DEFAULT_PAGE_SIZE,
            "trueValues": sorted(routes.TRUE), "falseValues": sorted(routes.FALSE),
            "problems": {slug: {"status": status, "body": orjson.dumps(paths.problem_body(slug)).decode()}
                         for slug, (status, _, _) in paths.PROBLEMS.items()},
            "problemType": PROBLEM_JSON, "jsonType": JSON, "headers": RESPONSE_HEADERS,
            "preflightMaxAge": PREFLIGHT_MAX_AGE,
            # what routes.resolve needs for the other paths (the fetch-style hosts answer them)
            "apiAlias": paths.API_ALIAS, "hostDir": paths.HOST_DIR, "notFoundPage": paths.NOT_FOUND_PAGE,
            "landingPage": paths.LANDING_PAGE, "problemDir": paths.problem_file("-").rpartition("/")[0],
            "indexView": profile.index_name, "deletedView": paths.DELETED_VIEW, "types": _BY_SUFFIX,
            "cardsDir": paths.CARDS_DIR, "cardFile": paths.CARD_FILE_NAME, "cardType": SERVER_CARD,
        },
    }


def _nginx_headers(*, preflight: bool = False, indent: int = 4, pages: bool = False) -> str:
    extra = {"Access-Control-Max-Age": PREFLIGHT_MAX_AGE} if preflight else {}
    extra |= PAGE_HEADERS if pages else {}
    return "\n".join(f'{" " * indent}add_header {name} "{value}" always;'
                     for name, value in {**RESPONSE_HEADERS, **extra}.items())


def _text(template: str, **context: Any) -> bytes:
    return render_template(template, **context).encode()
