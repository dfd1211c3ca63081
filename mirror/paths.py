"""The one place that maps server names and versions to URLs and to files in the tree.

Every API URL path P answers with the file `P/index.json` (or `P/include-deleted.json`
for `?include_deleted=true`), so a list such as `/versions` and its children
`/versions/1.0.0` never clash, and nothing else in the tree is reachable by API URLs.
The name's single `/` becomes a directory level: hosts decode `%2F` before lookup.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

API = "v0.1"
DEFAULT_VIEW = "index.json"
DELETED_VIEW = "include-deleted.json"
PAGES = "_pages"  # namespaces cannot contain "_", so this never clashes with a server
EXTENSION = ("x", "mcp-mirror")  # upstream's convention for non-core endpoints: /v0.1/x/<ns>/...

# Stricter than the schema's pattern, like upstream's validator: no leading or trailing
# dots or dashes, so no `.`/`..` segments and no hidden files.
_NAMESPACE = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
_SHORT_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
NAME_RE = re.compile(rf"({_NAMESPACE})/({_SHORT_NAME})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CURSOR_RE = re.compile(r"[0-9]{1,10}")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be mirrored, or None."""
    if not 3 <= len(name) <= 200:
        return "name must be 3 to 200 characters"
    if not NAME_RE.fullmatch(name):
        return "name must look like namespace/server (letters, digits, '.', '-', and '_' after the slash)"
    return None


def version_problem(version: str) -> str | None:
    """Why `version` cannot be a path segment, or None. Anything else is kept verbatim."""
    if not version:
        return "version is empty"
    if len(version) > 255 or len(version.encode()) > 255:
        return "version is longer than 255 bytes"
    if version == "latest":
        return "version 'latest' is reserved"
    if version in (".", "..") or "/" in version or "\\" in version:
        return "version contains a path separator or is a dot segment"
    if _CONTROL.search(version):
        return "version contains control characters"
    return None


def api_dir(*parts: str) -> PurePosixPath:
    return PurePosixPath(API, *parts)


def view_file(directory: PurePosixPath, include_deleted: bool = False) -> PurePosixPath:
    return directory / (DELETED_VIEW if include_deleted else DEFAULT_VIEW)


def servers_dir() -> PurePosixPath:
    return api_dir("servers")


def server_dir(name: str) -> PurePosixPath:
    namespace, short = name.split("/", 1)
    return api_dir("servers", namespace, short)


def versions_dir(name: str) -> PurePosixPath:
    return server_dir(name) / "versions"


def version_dir(name: str, version: str) -> PurePosixPath:
    return versions_dir(name) / version


def latest_dir(name: str) -> PurePosixPath:
    return versions_dir(name) / "latest"


def page_file(chain: str, size: int, cursor: str) -> PurePosixPath:
    return api_dir("servers", PAGES, chain, str(size), f"{cursor}.json")


def extension_dir(*parts: str) -> PurePosixPath:
    return api_dir(*EXTENSION, *parts)


def state_file() -> PurePosixPath:
    return view_file(extension_dir("state"))


def base_path(base_url: str) -> str:
    """The URL path the tree is served under: '' for a root, '/prefix' otherwise."""
    return urlsplit(base_url).path.rstrip("/")


def server_url(base_url: str, name: str, version: str | None = None) -> str:
    """The v0.1 URL of a server's versions list, or of one version, encoded as clients do."""
    url = f"{base_url.rstrip('/')}/{API}/servers/{quote(name, safe='')}/versions"
    return url if version is None else f"{url}/{quote(version, safe='')}"
