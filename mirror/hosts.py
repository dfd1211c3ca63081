"""Host profiles: what each kind of static host can route, the files it needs inside the
tree, and the server-side configuration to install.

The routing every profile expresses is the one `routes` defines and `serve` runs; hosts
that cannot route query strings get a degraded tree that never promises what they cannot
answer (no `nextCursor`, one list page of latest versions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import orjson

from mirror import __version__, paths, routes
from mirror.errors import UsageError
from mirror.templating import render_template

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
# Every document can change when upstream does (status, isLatest), so nothing in the API
# tree is immutable: clients revalidate after five minutes (ETag/Last-Modified make it cheap).
API_CACHE_CONTROL = "public, max-age=300, must-revalidate"
RESPONSE_HEADERS = {**CORS_HEADERS, "X-Content-Type-Options": "nosniff", "Cache-Control": API_CACHE_CONTROL}
PREFLIGHT_MAX_AGE = "86400"
OBJECTS_MANIFEST = PurePosixPath(".mcp-mirror", "objects.json")
_UNQUOTABLE = re.compile(r'["$\\{}\x00-\x1f]')


@dataclass(frozen=True)
class Profile:
    name: str
    hosts: str
    query_routing: bool  # cursor, limit, version=latest, include_deleted, updated_since
    path_rewrites: bool  # API paths answered from P/index.json without a redirect
    headers: bool  # CORS, Content-Type, nosniff, Cache-Control
    problem_404: bool  # unknown server: 404 with a problem+json body
    fallback_lookup: bool = False  # can try a second file when the first is missing (try_files)
    index_name: str = paths.DEFAULT_VIEW
    degradations: tuple[str, ...] = field(default=())

    def capabilities(self) -> dict[str, Any]:
        return {
            "queryRouting": self.query_routing,
            "pathRewrites": self.path_rewrites,
            "headers": self.headers,
            "problem404": self.problem_404,
            "indexFile": self.index_name,
            "degradations": list(self.degradations),
        }


_NO_QUERY = (
    "query strings are ignored: /v0.1/servers answers the latest version of every server in one page "
    "with no nextCursor, whatever limit, cursor or version=latest say",
    "include_deleted and updated_since are ignored: deleted versions are never served, so a syncing "
    "client cannot see deletions; crawl with mcp-mirror instead",
    "search is ignored (a static host cannot filter); clients get the full list",
)
PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile("nginx", "nginx (generated server-block directives)", True, True, True, True, fallback_lookup=True),
        Profile("caddy", "Caddy 2 (generated site block)", True, True, True, True, fallback_lookup=True),
        Profile("netlify", "Netlify (_redirects and _headers in the tree)", True, True, True, True, degradations=(
            "include_deleted is recognised only as include_deleted=true",
        )),
        Profile("cloudflare-pages", "Cloudflare Pages (_redirects and _headers in the tree)", False, True, True, True,
                degradations=(*_NO_QUERY, "unknown servers answer 404 with a problem body typed application/json")),
        Profile("s3", "S3 or R2 behind CloudFront (object manifest in the tree, CloudFront Function)", True, True, True,
                True, degradations=(
                    "headers and 404 answers need the CloudFront response-headers policy and custom error "
                    "responses that `mcp-mirror host-config s3` describes",
                )),
        Profile("static", "any plain file server: GitHub Pages, Azure Blob static website, python -m http.server",
                False, False, False, False, index_name="index.html", degradations=(
                    *_NO_QUERY,
                    "API paths redirect once to their trailing-slash form and are served from index.html: "
                    "clients must follow redirects, and Content-Type is the host's (text/html)",
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


def tree_files(profile: Profile, planned: Iterable[PurePosixPath], *, base_url: str) -> dict[PurePosixPath, bytes]:
    """The host's own files that live inside the tree (`_redirects`, `_headers`, ...)."""
    prefix = paths.base_path(base_url)
    context = _context(profile, prefix=prefix, root=None)
    if profile.name == "netlify":
        return {PurePosixPath("_redirects"): _text("hosts/netlify_redirects", **context),
                PurePosixPath("_headers"): _text("hosts/headers", **context)}
    if profile.name == "cloudflare-pages":
        return {PurePosixPath("_redirects"): _text("hosts/cloudflare_redirects", **context),
                PurePosixPath("_headers"): _text("hosts/headers", **context),
                paths.api_dir("404.html"): orjson.dumps(paths.problem_body("server-not-found"))}
    if profile.name == "s3":
        return {OBJECTS_MANIFEST: objects_manifest(planned)}
    if profile.name == "static":
        return {PurePosixPath(".nojekyll"): b""}
    return {}


def objects_manifest(planned: Iterable[PurePosixPath]) -> bytes:
    """Object key -> Content-Type and Cache-Control, for upload tools that set metadata per key."""
    objects = {}
    for rel in sorted(planned, key=str):
        if rel.parts[0] == ".mcp-mirror":
            continue
        objects[str(rel)] = {"contentType": content_type(rel), "cacheControl": API_CACHE_CONTROL}
    return orjson.dumps({"generator": f"mcp-mirror {__version__}", "objects": objects},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def content_type(rel: PurePosixPath) -> str:
    if rel.parent.name == "_problems":
        return "application/problem+json"
    if rel.suffix == ".json" or (rel.parts and rel.parts[0] == paths.API):
        return "application/json"
    return {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
            ".js": "text/javascript; charset=utf-8"}.get(rel.suffix, "application/octet-stream")


# -- configuration outside the tree ----------------------------------------------


def host_config(name: str, *, out: Path, base_url: str) -> str:
    """The server-side configuration to install for a profile, for the tree at `out`."""
    profile = get_profile(name)
    root = Path(out).resolve()
    if _UNQUOTABLE.search(str(root)):
        raise UsageError(f"--out {root} has characters a generated config cannot quote (\" $ \\ {{ }})",
                         hint="move the site to a plainer path")
    parts = urlsplit(base_url)
    context = _context(profile, prefix=paths.base_path(base_url), root=root,
                       site_address=f"{parts.scheme}://{parts.netloc}")
    template = {"nginx": "hosts/nginx.conf", "caddy": "hosts/Caddyfile", "s3": "hosts/cloudfront.js"}.get(name)
    if template is None:
        return render_template("hosts/in-tree.txt", **context)
    return render_template(template, **context)


def _context(profile: Profile, *, prefix: str, root: Path | None, site_address: str = "") -> dict[str, Any]:
    limits_by_size = {size: [n for n in range(1, 101) if routes.page_size(n) == size] for size in paths.PAGE_SIZES}
    return {
        "version": __version__,
        "site_address": site_address,
        "profile": profile,
        "prefix": prefix,
        "root": str(root) if root else None,
        "headers": RESPONSE_HEADERS,
        "nginx_headers": _nginx_headers,
        "preflight_max_age": PREFLIGHT_MAX_AGE,
        "chains": {name: flags for name, flags in paths.CHAINS.items()},
        "page_sizes": paths.PAGE_SIZES,
        "default_size": paths.DEFAULT_PAGE_SIZE,
        "limits_by_size": limits_by_size,
        "true_values": sorted(routes.TRUE),
        "false_values": sorted(routes.FALSE),
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
    }


def _nginx_headers(*, preflight: bool = False, indent: int = 4) -> str:
    extra = {"Access-Control-Max-Age": PREFLIGHT_MAX_AGE} if preflight else {}
    return "\n".join(f'{" " * indent}add_header {name} "{value}" always;'
                     for name, value in {**RESPONSE_HEADERS, **extra}.items())


def _text(template: str, **context: Any) -> bytes:
    return render_template(template, **context).encode()
