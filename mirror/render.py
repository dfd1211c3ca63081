"""Render a snapshot into the static tree, in two phases.

`plan_site` is pure: snapshot rows in, {relative path: bytes} out, byte-identical for the
same snapshot. `write_site` writes the plan: unchanged files are left alone (mtimes
kept, so CDN and object-store sync stay cheap), changed ones are replaced atomically,
and files a previous render made that the plan no longer has are removed.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from mirror import __version__, hosts, paths
from mirror.diff import latest_row
from mirror.errors import RenderError
from mirror.models import Row, Snapshot
from mirror.templating import render_template


@dataclass(frozen=True)
class WriteResult:
    written: int
    unchanged: int
    removed: int

    @property
    def files(self) -> int:
        return self.written + self.unchanged


# -- phase 1: plan ---------------------------------------------------------------


def plan_site(snapshot: Snapshot, rows: Sequence[Row], *, base_url: str,
              host: str = hosts.DEFAULT_PROFILE) -> dict[PurePosixPath, bytes]:
    """Every file of the tree for one snapshot, as the host profile needs it."""
    profile = hosts.get_profile(host)
    rows = sorted(rows, key=lambda row: row.key)
    items = {row.key: served_item(row) for row in rows}
    plan: dict[PurePosixPath, bytes] = {}
    index = profile.index_name
    if profile.query_routing:
        _plan_pages(plan, rows, items)
    else:
        # Nothing can resolve a cursor: one page, latest versions, which is what VS Code asks for.
        latest = [items[row.key] for row in rows if row.is_latest and row.status != "deleted"]
        plan[paths.view_file(paths.servers_dir(), index=index)] = list_document(latest)
    _plan_servers(plan, rows, items, index=index, deleted_views=profile.query_routing,
                  dedupe=profile.fallback_lookup)
    if profile.path_rewrites:
        for slug in paths.PROBLEMS:
            plan[paths.problem_file(slug)] = _json(paths.problem_body(slug))
    plan[paths.view_file(paths.api_dir("health"), index=index)] = _json({"status": "ok"})
    plan[paths.view_file(paths.api_dir("ping"), index=index)] = _json({"pong": True})
    plan[paths.view_file(paths.api_dir("version"), index=index)] = _json(
        {"version": f"mcp-mirror {__version__}", "git_commit": f"snapshot-{snapshot.id}",
         "build_time": snapshot.finished_at})
    state = mirror_state(snapshot, rows, base_url=base_url, profile=profile)
    plan[paths.view_file(paths.extension_dir("state"), index=index)] = _json(state, pretty=True)
    plan[PurePosixPath("index.html")] = render_template("index.html", state=state, rows=rows,
                                                        base_url=base_url).encode()
    if not profile.path_rewrites:
        plan[PurePosixPath("404.html")] = render_template("404.html", state=state).encode()
    plan.update(hosts.tree_files(profile, plan, base_url=base_url))
    return plan


def served_item(row: Row) -> bytes:
    """The upstream item as served: verbatim, with an empty `_meta` only where upstream
    sent none, because VS Code rejects items without one."""
    item = orjson.loads(row.doc)
    if isinstance(item.get("_meta"), dict):
        return row.doc
    item["_meta"] = {}
    return orjson.dumps(item)


def _plan_pages(plan: dict[PurePosixPath, bytes], rows: Sequence[Row], items: dict) -> None:
    for chain, (latest_only, with_deleted) in paths.CHAINS.items():
        selected = [items[row.key] for row in rows
                    if (with_deleted or row.status != "deleted") and (not latest_only or row.is_latest)]
        for size in paths.PAGE_SIZES:
            for offset in range(0, max(len(selected), 1), size):
                chunk = selected[offset : offset + size]
                more = offset + size < len(selected)
                plan[paths.page_file(chain, paths.cursor(size, offset))] = list_document(
                    chunk, next_cursor=paths.cursor(size, offset + size) if more else None)
    # For clients of hosts that route only by path, /v0.1/servers answers the first default page.
    first_page = paths.page_file("default", paths.cursor(paths.DEFAULT_PAGE_SIZE, 0))
    plan[paths.view_file(paths.servers_dir())] = plan[first_page]


def _plan_servers(plan: dict[PurePosixPath, bytes], rows: Sequence[Row], items: dict, *,
                  index: str, deleted_views: bool, dedupe: bool) -> None:
    """Per-server documents, plus `include-deleted.json` views for hosts that can route
    `include_deleted`. Hosts that can try a second file (`dedupe`) get those views only
    where they differ from the default one; the others need every one."""
    by_name: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)
    for name, versions in by_name.items():
        newest_first = sorted(versions, key=lambda row: row.published_sort_key, reverse=True)
        views = {}
        for with_deleted in (False, True):
            shown = [row for row in newest_first if with_deleted or row.status != "deleted"]
            latest = latest_row(row for row in shown if row.is_latest)
            views[with_deleted] = {
                paths.versions_dir(name): list_document([items[row.key] for row in shown]) if shown else None,
                paths.latest_dir(name): items[latest.key] if latest else None,
            }
        for directory, document in views[False].items():
            if document is not None:
                plan[paths.view_file(directory, index=index)] = document
            wanted = views[True][directory] is not None and (not dedupe or views[True][directory] != document)
            if deleted_views and wanted:
                plan[paths.view_file(directory, True)] = views[True][directory]
        for row in versions:
            directory = paths.version_dir(name, row.version)
            if row.status != "deleted":
                plan[paths.view_file(directory, index=index)] = items[row.key]
            if deleted_views and (row.status == "deleted" or not dedupe):
                plan[paths.view_file(directory, True)] = items[row.key]


def list_document(items: Iterable[bytes], *, next_cursor: str | None = None) -> bytes:
    """A v0.1 ServerList; items are spliced in as bytes so they stay exactly as stored."""
    items = list(items)
    metadata: dict[str, Any] = {"nextCursor": next_cursor} if next_cursor else {}
    metadata["count"] = len(items)
    return b'{"servers":[' + b",".join(items) + b'],"metadata":' + orjson.dumps(metadata) + b"}"


def mirror_state(snapshot: Snapshot, rows: Sequence[Row], *, base_url: str,
                 profile: hosts.Profile) -> dict[str, Any]:
    statuses = Counter(row.status for row in rows)
    return {
        "generator": f"mcp-mirror {__version__}",
        "snapshot": {"id": snapshot.id, "startedAt": snapshot.started_at,
                     "finishedAt": snapshot.finished_at, "upstream": snapshot.upstream},
        "baseUrl": base_url,
        "counts": {"rows": len(rows), "servers": len({row.name for row in rows}),
                   **{status: statuses.get(status, 0) for status in ("active", "deprecated", "deleted")}},
        "api": {"pageSizes": list(paths.PAGE_SIZES), "defaultPageSize": paths.DEFAULT_PAGE_SIZE,
                "chains": list(paths.CHAINS)} if profile.query_routing else {"pageSizes": [], "chains": []},
        "host": {"profile": profile.name, **profile.capabilities()},
    }


def _json(value: Any, *, pretty: bool = False) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE if pretty else 0)


# -- phase 2: write --------------------------------------------------------------

MANIFEST = paths.view_file(paths.extension_dir("manifest"))


def write_site(plan: dict[PurePosixPath, bytes], out: Path,
               progress: Callable[[str], None] | None = None) -> WriteResult:
    """Write the plan under `out`: leaves first, then lists, then the state document and
    manifest, so a reader never finds a list that points at a file not yet written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RenderError(f"output path {out} is a file, not a directory", hint="pass another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        writer = _Writer(out.resolve())
        previous = _read_manifest(writer.root)
        files = dict(plan)
        files[MANIFEST] = _json({"generator": f"mcp-mirror {__version__}", "files": sorted(map(str, plan))},
                                pretty=True)
        levels: dict[int, list[PurePosixPath]] = defaultdict(list)
        for rel in files:
            levels[_write_level(rel)].append(rel)
        written = done = 0
        for level in sorted(levels):
            for rel in sorted(levels[level], key=str):
                written += writer.write(rel, files[rel])
                done += 1
                if progress and done % 2000 == 0:
                    progress(f"rendered {done}/{len(files)} files")
        removed = _remove_stale(writer.root, previous - set(files))
    except OSError as exc:
        raise RenderError(f"cannot write the site under {out}: {exc.strerror or exc}",
                          hint="check free space and permissions; files already replaced are complete") from exc
    return WriteResult(written=written, unchanged=len(files) - written, removed=removed)


def _write_level(rel: PurePosixPath) -> int:
    if rel == MANIFEST:
        return 4
    if rel.name == "index.html" and len(rel.parts) == 1 or rel.parent == paths.extension_dir("state"):
        return 3
    if paths.PAGES in rel.parts or rel.parent == paths.servers_dir():
        return 2
    return 1 if rel.parent.name == "versions" else 0


class _Writer:
    """Atomic, skip-if-unchanged file writes below `root`, never through a symlink."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._checked: set[PurePosixPath] = set()
        self._temp_suffix = f".{os.getpid()}.tmp"

    def write(self, rel: PurePosixPath, data: bytes) -> bool:
        target = self._directory(rel.parent) / rel.name
        try:
            if target.read_bytes() == data:
                return False
        except FileNotFoundError:
            pass
        except IsADirectoryError as exc:
            raise RenderError(f"cannot write {rel}: a directory is in the way") from exc
        temp = target.with_name(f".{target.name}{self._temp_suffix}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return True

    def _directory(self, rel: PurePosixPath) -> Path:
        directory = self.root.joinpath(*rel.parts)
        if rel not in self._checked:
            if ".." in rel.parts or os.path.realpath(directory) != str(directory):
                raise RenderError(f"refusing to write into {rel}: it is a link or escapes {self.root}")
            directory.mkdir(parents=True, exist_ok=True)
            self._checked.add(rel)
        return directory


def _read_manifest(root: Path) -> set[PurePosixPath]:
    try:
        listed = orjson.loads(root.joinpath(*MANIFEST.parts).read_bytes()).get("files", [])
    except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
        return set()
    found = {PurePosixPath(p) for p in listed if isinstance(p, str)}
    return {p for p in found if not p.is_absolute() and ".." not in p.parts}


def _remove_stale(root: Path, stale: Iterable[PurePosixPath]) -> int:
    removed = 0
    for rel in sorted(stale, reverse=True):
        target = root.joinpath(*rel.parts)
        if target.is_file() and not target.is_symlink():
            target.unlink()
            removed += 1
            parent = target.parent
            while parent != root and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
    return removed
