"""Check a published tree: against its own manifest, and as clients would read it.

`verify_tree` reports every problem and stops at none (formulae.brew.sh's
validate-build): files missing, extra, corrupt or linked; a state document that does not
name this manifest; a `nextCursor` that names no page; a list item without its own
document. `verify_url` runs VS Code's and Copilot's request sequences against a deployed
copy over HTTP.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from mirror import paths
from mirror.hosts import Capabilities
from mirror.publish import Manifest, iter_tree

MAX_PROBLEMS_SHOWN = 50


@dataclass
class Report:
    """What a verification found; `ok` when nothing."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def verify_tree(root: Path) -> Report:
    """Verify the tree at `root` (a published `--out`, or one generation directory)."""
    report = Report()
    root = Path(root)
    state_path, state = _state(root, report)
    if state is None:
        return report
    manifest_path = (state.get("manifest") or {}).get("path")
    if not isinstance(manifest_path, str) or not (root / manifest_path).is_file():
        report.add(f"{state_path}: names no manifest that exists ({manifest_path!r})")
        return report
    data = (root / manifest_path).read_bytes()
    if hashlib.sha256(data).hexdigest() != state["manifest"].get("sha256"):
        report.add(f"{manifest_path}: its sha256 is not the one {state_path} names (corrupt or from another run)")
    try:
        manifest = Manifest.from_bytes(data)
    except ValueError as exc:
        report.add(f"{manifest_path}: {exc}")
        return report
    _check_files(root, manifest, {state_path, manifest_path}, report)
    _check_links(root, manifest, report)
    counts = state.get("counts") or {}
    versions = {path.rpartition("/")[0] for path in manifest.records if _is_version_document(path)}
    routes_deleted = Capabilities.from_json(state.get("host")).routes_queries
    served = counts.get("rows", 0) - (0 if routes_deleted else counts.get("deleted", 0))
    if isinstance(served, int) and served != len(versions):
        report.add(f"{state_path}: its counts promise {served} version documents, the tree has {len(versions)}")
    return report


def _state(root: Path, report: Report) -> tuple[str, dict | None]:
    for index in (paths.DEFAULT_VIEW, "index.html"):
        path = paths.state_file(index)
        if (root / path).is_file():
            try:
                state = orjson.loads((root / path).read_bytes())
            except orjson.JSONDecodeError as exc:
                report.add(f"{path}: not JSON ({exc})")
                return path, None
            if not isinstance(state, dict):
                report.add(f"{path}: not a state document")
                return path, None
            return path, state
    report.add(f"{root}: no state document ({paths.state_file()}); is this a rendered mirror?")
    return "", None


def _check_files(root: Path, manifest: Manifest, own: set[str], report: Report) -> None:
    on_disk = {}
    for path, info in iter_tree(root):
        on_disk[path] = info
    for path, record in manifest.records.items():
        report.checked += 1
        info = on_disk.get(path)
        if info is None:
            report.add(f"{path}: missing")
        elif not stat.S_ISREG(info.st_mode):
            report.add(f"{path}: not a regular file (a symlink?)")
        elif info.st_size != record.size or hashlib.sha256((root / path).read_bytes()).hexdigest() != record.sha256:
            report.add(f"{path}: corrupt (its bytes are not the ones the manifest lists)")
    for path, info in sorted(on_disk.items()):
        if path not in manifest.records and path not in own:
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "a file"
            report.add(f"{path}: extra ({kind} the manifest does not list)")


def _check_links(root: Path, manifest: Manifest, report: Report) -> None:
    """Every nextCursor names a page; every listed item has its own document."""
    present = manifest.records
    for path in sorted(present):
        if not path.endswith((".json", ".html")) or not _is_list(path):
            continue
        try:
            document = orjson.loads((root / path).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue  # already reported as missing or corrupt
        if not isinstance(document, dict):
            continue
        cursor = (document.get("metadata") or {}).get("nextCursor")
        if cursor:
            # /v0.1/servers answers the first page of the default chain on hosts that route only paths
            chain = path.split("/")[-2] if f"/{paths.PAGES}/" in path else (
                "default" if path.rpartition("/")[0] == paths.servers_dir() else None)
            if chain is None or paths.page_file(chain, cursor) not in present:
                report.add(f"{path}: nextCursor {cursor!r} names no page of the tree")
        for item in document.get("servers") or []:
            server = item.get("server") if isinstance(item, dict) else None
            if not isinstance(server, dict):
                continue
            name, version = server.get("name"), server.get("version")
            directory = paths.version_dir(str(name), str(version))
            if not any(view in present for view in _views(directory)):
                report.add(f"{path}: lists {name} {version}, which has no document in the tree")


def _views(directory: str) -> Iterator[str]:
    yield paths.view_file(directory)
    yield paths.view_file(directory, index="index.html")
    yield paths.view_file(directory, deleted=True)


def _is_list(path: str) -> bool:
    parent = path.rpartition("/")[0]
    return f"/{paths.PAGES}/" in path or parent.endswith("/versions") or parent == paths.servers_dir()


def _is_version_document(path: str) -> bool:
    parts = path.split("/")
    return (len(parts) == 7 and parts[:2] == [paths.API, "servers"] and parts[4] == "versions"
            and parts[5] != "latest")


# -- a deployed copy, over HTTP ----------------------------------------------------


def verify_url(base_url: str, *, client: httpx.Client | None = None, max_pages: int = 1000) -> Report:
    """Run the request sequences of VS Code's gallery and Copilot's allowlist lookup."""
    report = Report()
    http = client or httpx.Client(timeout=30.0, follow_redirects=False)
    urls = paths.Urls(base_url.rstrip("/"))
    try:
        _probe(http, urls, report, max_pages=max_pages)
    except httpx.HTTPError as exc:
        report.add(f"{urls.base}: {exc or type(exc).__name__}")
    finally:
        if client is None:
            http.close()
    return report


def _get_json(http: httpx.Client, url: str, report: Report) -> dict | None:
    report.checked += 1
    response = http.get(url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        report.add(f"GET {url}: HTTP {response.status_code}, expected 200")
        return None
    if "json" not in response.headers.get("content-type", ""):
        report.add(f"GET {url}: Content-Type {response.headers.get('content-type')!r}, expected JSON")
    if response.headers.get("access-control-allow-origin") != "*":
        report.add(f"GET {url}: no Access-Control-Allow-Origin: * (browsers' clients cannot read it)")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        report.add(f"GET {url}: not JSON")
        return None
    return body if isinstance(body, dict) else None


def _probe(http: httpx.Client, urls: paths.Urls, report: Report, *, max_pages: int) -> None:
    # VS Code: the version probe, then the gallery's pages of latest versions.
    _get_json(http, urls.servers(limit="1"), report)
    names: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(max_pages):
        url = urls.servers(limit="50", version="latest", **({"cursor": cursor} if cursor else {}))
        page = _get_json(http, url, report)
        if page is None:
            return
        for item in page.get("servers") or []:
            server = item.get("server") or {}
            names.append((server.get("name"), server.get("version")))
        cursor = (page.get("metadata") or {}).get("nextCursor")
        if not cursor:
            break
    # Copilot: each server's latest version and its versions list, by name.
    for name, version in names[:200]:
        latest = _get_json(http, urls.version(str(name), "latest"), report)
        if latest is not None and (latest.get("server") or {}).get("version") != version:
            report.add(f"{name}: versions/latest is {(latest.get('server') or {}).get('version')}, "
                       f"the list says {version}")
        _get_json(http, urls.versions(str(name)), report)
    report.checked += 1
    missing = http.get(urls.versions("io.example.mcp-mirror/no-such-server"))
    if missing.status_code != 404:
        report.add(f"an unknown server answers HTTP {missing.status_code}, expected 404")
