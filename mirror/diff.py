"""What changed between two snapshots. Pure functions over Rows: no I/O.

Kinds, per server then per version:
    server_added     a name not seen before (its versions follow as version_added)
    version_added    a (name, version) not seen before
    version_updated  content changed; `paths` lists every changed JSON pointer
    status_changed   active/deprecated/deleted moved; `from`, `to`
    latest_changed   the version flagged isLatest moved; `from`, `to`
    version_removed  absent from a full crawl
    server_removed   every version absent from a full crawl
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any, get_args

from mirror.models import OFFICIAL, Change, ChangeKind, Row, latest_row

KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)  # in the order reports list them

_OFFICIAL_PTR = "/_meta/" + OFFICIAL.replace("~", "~0").replace("/", "~1")
_LATEST_PATHS = {f"{_OFFICIAL_PTR}/isLatest"}
_STATUS_PATHS = {f"{_OFFICIAL_PTR}/{key}" for key in ("status", "statusChangedAt", "statusMessage", "updatedAt")}


def diff_rows(
    old: Sequence[Row],
    new: Sequence[Row],
    *,
    full: bool = True,
    still_upstream: Collection[tuple[str | None, str | None]] = (),
) -> list[Change]:
    """Changes from `old` to `new`. Removals need a full crawl, and are not reported for
    keys in `still_upstream` (entries upstream still lists but the mirror rejected)."""
    old_by_name = _by_name(old)
    new_by_name = _by_name(new)
    changes: list[Change] = []
    for name in sorted(old_by_name.keys() | new_by_name.keys()):
        before = old_by_name.get(name, {})
        after = new_by_name.get(name, {})
        if not before:
            changes.append(Change("server_added", name, _latest_version(after.values())))
        for version in sorted(before.keys() | after.keys()):
            was, now = before.get(version), after.get(version)
            if was is None and now is not None:
                changes.append(Change("version_added", name, version))
            elif now is None and was is not None:
                if full and (name, version) not in still_upstream:
                    changes.append(Change("version_removed", name, version))
            elif was is not None and now is not None and was.hash != now.hash:
                changes.extend(_version_changes(was, now))
        if before and after:
            was_latest, now_latest = _latest_version(before.values()), _latest_version(after.values())
            if was_latest != now_latest:
                changes.append(Change("latest_changed", name, now_latest, {"from": was_latest, "to": now_latest}))
        if before and not after and full and not any(key[0] == name for key in still_upstream):
            changes.append(Change("server_removed", name, None))
    return changes


def _version_changes(was: Row, now: Row) -> list[Change]:
    after = now.item()
    paths = changed_paths(was.item(), after)
    explained = set(_LATEST_PATHS)
    changes = []
    if was.status != now.status:
        explained |= _STATUS_PATHS
        detail: dict[str, Any] = {"from": was.status, "to": now.status}
        message = (after.get("_meta") or {}).get(OFFICIAL, {}).get("statusMessage")
        if message:
            detail["message"] = message
        changes.append(Change("status_changed", now.name, now.version, detail))
    if any(path not in explained for path in paths) or (not paths and not changes):
        # An empty path list means only key order changed.
        changes.append(Change("version_updated", now.name, now.version, {"paths": paths}))
    return changes


def changed_paths(a: Any, b: Any, pointer: str = "") -> list[str]:
    """JSON Pointers (RFC 6901) of every value that differs between `a` and `b`."""
    if isinstance(a, dict) and isinstance(b, dict):
        paths: list[str] = []
        for key in list(a) + [k for k in b if k not in a]:
            child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in a or key not in b:
                paths.append(child)
            else:
                paths.extend(changed_paths(a[key], b[key], child))
        return paths
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in changed_paths(x, y, f"{pointer}/{i}")]
    if type(a) is not type(b) or a != b:
        return [pointer or "/"]
    return []


def _latest_version(rows: Iterable[Row]) -> str | None:
    row = latest_row(rows)
    return row.version if row else None


def _by_name(rows: Iterable[Row]) -> dict[str, dict[str, Row]]:
    grouped: dict[str, dict[str, Row]] = defaultdict(dict)
    for row in rows:
        grouped[row.name][row.version] = row
    return grouped


def count_by_kind(changes: Iterable[Change]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for change in changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    return counts
