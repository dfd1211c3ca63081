"""The one place that maps server names and versions to URLs and to files in the tree.

Every API URL path P answers with the file `P/index.json` (or `P/include-deleted.json`
for `?include_deleted=true`), so a list such as `/versions` and its children
`/versions/1.0.0` never clash, and nothing else in the tree is reachable by API URLs.
The name's single `/` becomes a directory level: hosts decode `%2F` before lookup.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

API = "v0.1"
API_ALIAS = "v0"  # upstream registers the same read API under /v0 and /v0.1
DEFAULT_VIEW = "index.json"
DELETED_VIEW = "include-deleted.json"
PAGES = "_pages"  # namespaces cannot contain "_", so this never clashes with a server
EXTENSION = ("x", "mcp-mirror")  # upstream's convention for non-core endpoints: /v0.1/x/<ns>/...

# Pre-rendered page sizes, for hosts that route a query to a page but cannot compute one (S3
# behind a CloudFront Function): `limit` picks the largest not above it, so a page never holds
# more rows than asked for.
PAGE_SIZES = (1, 10, 30, 100)
DEFAULT_PAGE_SIZE = 30
# (chain, only isLatest rows, deleted rows included); chains are what the list endpoint's
# query parameters select, so each is a pre-rendered page sequence.
CHAINS = {
    "default": (False, False),
    "latest": (True, False),
    "include-deleted": (False, True),
    "latest-include-deleted": (True, True),
}
PROBLEMS = {
    "server-not-found": (404, "Not Found", "Server not found"),
    "endpoint-not-found": (404, "Not Found", "Endpoint not found"),
    "bad-limit": (422, "Unprocessable Entity", "limit must be an integer from 1 to 100"),
    "bad-cursor": (400, "Bad Request", "Unknown cursor: use the exact metadata.nextCursor of the previous page"),
    "bad-include-deleted": (422, "Unprocessable Entity", "include_deleted must be true or false"),
    "bad-updated-since": (400, "Bad Request",
                          "Invalid updated_since format: expected RFC3339 timestamp (e.g., 2025-08-07T13:15:04.280Z)"),
    "updated-since-without-deleted": (400, "Bad Request",
                                      "Cannot set include_deleted=false when using updated_since "
                                      "(incremental sync requires deleted servers)"),
    "search-unsupported": (400, "Bad Request",
                           "This static mirror cannot search; fetch /v0.1/servers and filter by name, "
                           "or use the search of the HTML catalog"),
    "version-filter-unsupported": (400, "Bad Request",
                                   "This static mirror answers only version=latest on /v0.1/servers; "
                                   "use /v0.1/servers/{serverName}/versions/{version}"),
    "list-needs-sidecar": (503, "Service Unavailable",
                           "This host answers /v0.1/servers through `mcp-mirror serve`, which it was not "
                           "configured to reach (host-config --sidecar)"),
}
# Stricter than the schema's pattern, like upstream's validator: no leading or trailing
# dots or dashes, so no `.`/`..` segments, no hidden files, no `_` in namespaces (PAGES).
_NAMESPACE = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_SHORT_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
NAME_RE = re.compile(rf"({_NAMESPACE})/({_SHORT_NAME})")
CURSOR_RE = re.compile(r"[0-9]{1,3}-[0-9]{1,10}")  # "<page size>-<mark>": names one page file

# The mirror's leaf files: a segment spelled exactly like one would be a directory where the
# tree needs that file (`versions/index.json`, `servers/index.json`, a catalog `index.html`).
LEAF_FILES = frozenset({DEFAULT_VIEW, "index.html", DELETED_VIEW})
LATEST = "latest"  # upstream reserves exactly this version: it is the pointer `versions/latest`
MAX_SEGMENT_BYTES = 255  # NAME_MAX of common file systems (ext4, XFS, APFS, Btrfs)
MAX_PATH_BYTES = 1000  # S3 keys are <= 1024 bytes; leave room for a short prefix
_UNSERVABLE = re.compile(r"[\x00-\x1f\x7f-\x9f/\ud800-\udfff]")  # C0, DEL, C1, `/`, lone surrogates


def fold(text: str) -> str:
    """The key under which case-insensitive file systems store `text` (macOS's also ignore
    Unicode normalization: `é` and `e` + U+0301 are one name there)."""
    return unicodedata.normalize("NFC", text.casefold())


def segment_problem(segment: str) -> str | None:
    """Why `segment` (decoded, as it will be named on disk) cannot be a path segment, or None.

    This is the whole rule, for name segments and versions alike; every other string is a
    file name as it is (UTF-8) and every host answers it for its percent-encoded URL, because
    nginx, Caddy, `serve`, S3 (through the CloudFront Function) and plain file servers decode
    the path before the lookup. Refused, each because no host can serve it safely:

    - empty, `.` and `..`: no file, or a step out of the directory;
    - `/`: a directory level; C0 and C1 control characters and DEL: nginx, Caddy and `serve`
      refuse them in a path (a NUL ends a C string), and logs and terminals would run them;
    - lone surrogates: no UTF-8 file name or URL can carry them;
    - over MAX_SEGMENT_BYTES UTF-8 bytes: the file system's NAME_MAX could not create it;
    - exactly a leaf file's name (LEAF_FILES): it would be a file and a directory at once.

    A leading `_` or `.` shadows nothing (the mirror's own `_pages`, `_problems` and
    `.mcp-mirror` sit where no segment goes, and hosts never serve `.mcp-mirror/`), a
    trailing `.` and Windows device names matter only to Windows, where mcp-mirror does not
    run (fcntl, symlink swaps), and case is kept: spellings that differ only in case are
    two segments, and rendering onto a case-insensitive file system skips the later one
    (`CaseFolding`).
    """
    if not segment:
        return "is empty"
    if segment in (".", ".."):
        return f"{segment!r} is a dot segment"
    if found := _UNSERVABLE.search(segment):
        what = "'/'" if found.group() == "/" else f"U+{ord(found.group()):04X}"
        return f"has {what}, which no host serves in a path segment (a slash, control character or lone surrogate)"
    if (size := len(segment.encode("utf-8"))) > MAX_SEGMENT_BYTES:
        return f"is {size} UTF-8 bytes, over the file-system limit NAME_MAX of {MAX_SEGMENT_BYTES}"
    if segment in LEAF_FILES:
        return f"{segment!r} is reserved by the mirror (the name of a file of the tree)"
    return None


def name_problem(name: str) -> str | None:
    """Why `name` cannot be mirrored, or None. Checked on the decoded string: no `%` survives
    the pattern, so a host decoding the URL cannot turn a segment into another."""
    if not 3 <= len(name) <= 200:
        return "name must be 3 to 200 characters"
    if not NAME_RE.fullmatch(name):
        return "name must look like namespace/server (letters, digits, '.', '-', and '_' after the slash)"
    for segment in name.split("/"):
        if problem := segment_problem(segment):
            return f"name segment {problem}"
    return None


def version_problem(version: str) -> str | None:
    """Why `version` cannot be mirrored, or None: upstream's rule (any string but `latest`,
    no `/`) and `segment_problem`. Anything else is kept verbatim, case and all."""
    if version == LATEST:
        return "version 'latest' is reserved (upstream's pointer to the latest version)"
    if problem := segment_problem(version):
        return f"version {problem}"
    return None


class CaseFolding:
    """What rendering onto a case-insensitive file system (macOS's and Windows' defaults) must
    leave out: two spellings that `fold` together would be one directory there, so of the
    rows met in (name, version) order, the first spelling (the smallest, in code point order)
    keeps it and `clash` says why each later one cannot be written. Buckets and Linux file
    systems keep both, so this is used only where a probe found folding."""

    _OWN = {fold(leaf): leaf for leaf in (*LEAF_FILES, LATEST)}  # what a versions directory holds

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._name = ""
        self._versions: dict[str, str] = {}

    def clash(self, name: str, version: str) -> str | None:
        for segment in name.split("/"):
            if (own := self._OWN.get(fold(segment))) is not None and own != LATEST:
                return f"name segment {segment!r} and the mirror's own {own!r} are one name on this " \
                       "case-insensitive output file system"
        kept = self._names.setdefault(fold(name), name)
        if kept != name:
            return f"name {name!r} and {kept!r} are one directory on this case-insensitive output file " \
                   f"system; {kept!r} is kept (the smallest spelling)"
        if name != self._name:
            self._name, self._versions = name, dict(self._OWN)
        kept = self._versions.setdefault(fold(version), version)
        if kept == version:
            return None
        if self._OWN.get(fold(version)) == kept:
            return f"version {version!r} and the mirror's own {kept!r} are one name on this case-insensitive " \
                   "output file system"
        return f"versions {version!r} and {kept!r} of {name!r} are one directory on this case-insensitive output " \
               f"file system; {kept!r} is kept (the smallest spelling)"


def path_problem(name: str, version: str) -> str | None:
    """Why the longest file a (name, version) gets would be too long a path or key, or None."""
    longest = max(len(str(view_file(version_dir(name, version), index=leaf)).encode()) for leaf in LEAF_FILES)
    if longest > MAX_PATH_BYTES:
        return f"its files would have {longest}-byte paths, over the {MAX_PATH_BYTES}-byte bound"
    return None


def api_dir(*parts: str) -> str:
    """Tree paths are relative POSIX strings: cheap to build by the hundred thousand."""
    return "/".join((API, *parts))


def view_file(directory: str, *, deleted: bool = False, index: str = DEFAULT_VIEW) -> str:
    """The file answering API path `directory`; plain file servers need `index="index.html"`."""
    return f"{directory}/{DELETED_VIEW if deleted else index}"


def servers_dir(*, api: str = API) -> str:
    return f"{api}/servers"


def server_dir(name: str) -> str:
    """The name's single `/` is the directory level between namespace and server."""
    return f"{API}/servers/{name}"


def versions_dir(name: str) -> str:
    return f"{API}/servers/{name}/versions"


def version_dir(name: str, version: str) -> str:
    return f"{API}/servers/{name}/versions/{version}"


def latest_dir(name: str) -> str:
    return f"{API}/servers/{name}/versions/{LATEST}"


def cursor(size: int, mark: int) -> str:
    """The mirror's own cursor, `<page size>-<mark>`: opaque to clients, the page file's name
    to hosts. Mark 0 is a chain's first page; any other names the row a page starts at."""
    return f"{size}-{mark}"


CURSOR_MARKS = 10**10  # marks have at most 10 digits (CURSOR_RE)


def page_file(chain: str, token: str) -> str:
    return f"{API}/servers/{PAGES}/{chain}/{token}.json"


def problem_file(slug: str) -> str:
    return f"{API}/_problems/{slug}.json"


def problem(status: int, title: str, detail: str, **extra: object) -> dict[str, object]:
    """RFC 9457 problem details as upstream (Huma) writes them: the one builder of a body."""
    return {"title": title, "status": status, "detail": detail, **extra}


def problem_body(slug: str) -> dict[str, object]:
    """One of the problems every host answers with the same bytes."""
    status, title, detail = PROBLEMS[slug]
    return problem(status, title, detail)


def extension_dir(*parts: str) -> str:
    return api_dir(*EXTENSION, *parts)


def state_file(index: str = DEFAULT_VIEW) -> str:
    return view_file(extension_dir("state"), index=index)


def rows_index_file(index: str = DEFAULT_VIEW) -> str:
    """Every row's name, version, updatedAt and flags (`mirror.query`), at /v0.1/x/mcp-mirror/rows."""
    return view_file(extension_dir("rows"), index=index)


def feed_dir() -> str:
    """The change feeds: /v0.1/x/mcp-mirror/changes, for mirrors that follow this one."""
    return extension_dir("changes")


def feed_index_file(index: str = DEFAULT_VIEW) -> str:
    return view_file(feed_dir(), index=index)


def feed_delta_dir(snapshot_id: int, part: int) -> str:
    """The API path of one page of what changed in a snapshot (its file is P/index.json like
    every API path's, so every host profile serves it); a snapshot's pages never change."""
    return f"{feed_dir()}/{snapshot_id}-{part}"


def feed_base_dir(token: str) -> str:
    """One page of every row of the snapshot, named by what it holds, so unchanged pages keep their name."""
    return f"{feed_dir()}/base/{token}"


# What a follower may fetch from a feed index: only pages of a feed, never any other URL.
FEED_PAGE_RE = re.compile(r"v0\.1/x/mcp-mirror/changes/(?:base/[0-9a-f]{32}|[0-9]{1,12}-[0-9]{1,6})")


def manifest_file(index: str = DEFAULT_VIEW) -> str:
    return view_file(extension_dir("manifest"), index=index)


# The mirror's host files inside the tree (never served: every host and `serve` answer 404 under it).
HOST_DIR = ".mcp-mirror"
QUERY_ENGINE_FILE = f"{HOST_DIR}/mcp-query.js"  # the list-query engine a computing host runs (njs)

LANDING_PAGE = "index.html"
OPENAPI_FILE = "openapi.yaml"  # upstream serves its OpenAPI document at {base}/openapi.yaml
NOT_FOUND_PAGE = "404.html"
AI_CATALOG_FILE = ".well-known/ai-catalog.json"  # Agentic Resource Discovery (ARD) catalog

# Governance outputs: fixed paths an administrator or an importer fetches (README, Governance).
ARD_FILE = ".well-known/ard.json"  # ARD v0.91's discovery path; ai-catalog.json holds the same bytes
ARD_DIR = "ard"  # nested same-host catalogs, ard/<n>.json, when one document would be too big
CARDS_DIR = "cards"  # MCP Server Cards the mirror mints for versions with remotes
CARD_FILE_NAME = "server-card.json"
GOVERNANCE_DIR = "governance"
MANAGED_SETTINGS_FILE = f"{GOVERNANCE_DIR}/managed-settings.json"  # GitHub Copilot, VS Code, Claude Code lists
VSCODE_SETTINGS_FILE = f"{GOVERNANCE_DIR}/vscode-settings.json"  # chat.mcp.allowedServers/deniedServers
CLAUDE_MANAGED_MCP_FILE = f"{GOVERNANCE_DIR}/managed-mcp.json"  # Claude Code's exclusive server set
TOOLHIVE_FILE = f"{GOVERNANCE_DIR}/toolhive-registry.json"  # ToolHive's upstream-registry file


def ard_page_file(number: int) -> str:
    """A nested catalog after the root one (number >= 2)."""
    return f"{ARD_DIR}/{number}.json"


def card_file(name: str, version: str) -> str:
    """A version's Server Card: a directory per version, like the API's, so any version that
    has a version document has a card path too (no suffix can push it over a segment bound)."""
    return f"{CARDS_DIR}/{name}/{version}/{CARD_FILE_NAME}"


PATH_SUB_DELIMS = "!$&'()*+,;=:@"  # what RFC 3986's pchar allows in a path segment unencoded


def base_path(base_url: str) -> str:
    """The URL path the tree is served under: '' for a root, '/prefix' otherwise."""
    return urlsplit(base_url).path.rstrip("/")


@dataclass(frozen=True)
class Urls:
    """Every URL of a mirror (or of the upstream), bound to its base URL once (datasette's
    url_builder): nothing else spells `/v0.1/...`."""

    base: str

    def api(self, *parts: str, **query: str) -> str:
        url = "/".join((self.base.rstrip("/"), API, *parts))
        return f"{url}?{urlencode(query)}" if query else url

    def servers(self, **query: str) -> str:
        return self.api("servers", **query)

    def versions(self, name: str) -> str:
        return self.api("servers", quote(name, safe=""), "versions")

    def version(self, name: str, version: str) -> str:
        return self.api("servers", quote(name, safe=""), "versions", quote(version, safe=""))

    def state(self) -> str:
        return self.api(*EXTENSION, "state")

    def feed(self) -> str:
        return self.api(*EXTENSION, "changes")

    def card(self, name: str, version: str) -> str:
        """A version's Server Card: a static file, whose URL keeps the sub-delimiters RFC 3986
        allows in a path segment as they are (`1.0.0+build.7`): Netlify's static serving
        (netlify dev) answers 404 for `%2B`, where every host finds the literal `+`."""
        version = quote(version, safe=PATH_SUB_DELIMS)
        return f"{self.base.rstrip('/')}/{CARDS_DIR}/{name}/{version}/{CARD_FILE_NAME}"

    def tree_file(self, path: str) -> str:
        """A file of a tree made by this tool, by its path relative to the base."""
        return f"{self.base.rstrip('/')}/{path}"


def server_url(base_url: str, name: str, version: str | None = None) -> str:
    """The v0.1 URL of a server's versions list, or of one version, encoded as clients do."""
    url = f"{base_url.rstrip('/')}/{API}/servers/{quote(name, safe='')}/versions"
    return url if version is None else f"{url}/{quote(version, safe='')}"


# -- the HTML catalog ----------------------------------------------------------------
# Pages are directories answered by their index.html (every host serves that), linked with
# a trailing slash and relative to the page, so a tree works under any base path. Names and
# namespaces passed admission (letters, digits, '.', '-', '_'), so they are file names as
# they are; list pages after the first live under `_page/<n>`, which no name can spell
# (names never start with '_').
CATALOG_SERVERS = "servers"
CATALOG_CHANGES = "changes"
CATALOG_NAMESPACES = "namespaces"
CATALOG_FILTERS = "filters"
CATALOG_PAGE = "_page"
ASSETS = "assets"
STYLESHEET = f"{ASSETS}/catalog.css"
SCRIPT = f"{ASSETS}/catalog.js"
SEARCH_INDEX = f"{ASSETS}/search.json"
FEED = "feed.atom"
HOME = ""  # the catalog's home: the first page of every server, at the tree's root


def catalog_server_dir(name: str) -> str:
    """A server's page: `servers/<namespace>/<name>/`, stable across renders."""
    return f"{CATALOG_SERVERS}/{name}"


def catalog_namespace_dir(namespace: str) -> str:
    return f"{CATALOG_SERVERS}/{namespace}"


def catalog_filter_dir(facet: str, value: str) -> str:
    """`filters/<facet>/<value>/`; facets and values come from the mirror's own vocabulary."""
    return f"{CATALOG_FILTERS}/{facet}/{value}"


def catalog_list_dir(directory: str, page: int) -> str:
    """Page `page` (from 1) of the list at `directory`."""
    if page <= 1:
        return directory
    return f"{directory}/{CATALOG_PAGE}/{page}" if directory else f"{CATALOG_PAGE}/{page}"


def catalog_changes_dir(page: int | None) -> str:
    """What changed: `changes/` shows the newest; archive page `page` (from 0, the oldest
    changes) is `changes/_page/<page + 1>/`, a URL that keeps its changes."""
    return CATALOG_CHANGES if page is None else f"{CATALOG_CHANGES}/{CATALOG_PAGE}/{page + 1}"


def catalog_page_file(directory: str) -> str:
    return f"{directory}/index.html" if directory else LANDING_PAGE


_PLAIN_PATH = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*")


def relative_url(here: str, target: str, *, directory: bool = True) -> str:
    """The link from the page at directory `here` to tree path `target` (a directory,
    linked with its trailing slash, or a file), each segment percent-encoded."""
    up = "../" * (here.count("/") + 1 if here else 0)
    if _PLAIN_PATH.fullmatch(target):  # names passed admission: most targets need no quoting
        encoded = target
    else:
        encoded = "/".join(quote(segment, safe="") for segment in target.split("/")) if target else ""
    if not encoded:
        return up or "./"
    return f"{up}{encoded}/" if directory else f"{up}{encoded}"
