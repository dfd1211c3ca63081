"""Admission: which crawled items become rows of a snapshot, and why the others do not.

Anyone can publish upstream, so every item is untrusted. One bad item is a Rejected
record (kept with its position, name, version, reason and document, so `diff` and the
rejected report show it), never an exception out of the crawl.

An item is admitted when, on its own, it validates (mirror.models), its name segments and
version are neither reserved nor unsafe as file names (mirror.paths.segment_problem), its
paths fit the length bounds, and it is at most MAX_DEPTH containers deep and MAX_DOC_BYTES
long; and then, among the items that pass, it does not collide with another one:

- names that are equal under str.casefold share a directory on case-insensitive file
  systems and buckets: the lexicographically smallest spelling (code point order, so
  `a/B` beats `a/b`) keeps the name, every version of the other spellings is rejected;
- the same for versions of one name (`1.0.0-RC1` beats `1.0.0-rc1`); exact duplicates
  keep the one with the smallest document bytes;
- a server keeps at most MAX_VERSIONS_PER_SERVER versions, the newest by publishedAt.

Winners are chosen by content, never by crawl position, so any crawl order of the same
items admits the same rows.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from mirror import paths
from mirror.models import Rejected, Row, row_from_item

MAX_DEPTH = 64  # server.json needs about 8 levels; orjson cannot write more than 254
# Every admitted document is copied into about 16 files (version, latest and list views,
# 3 page sizes x 4 page chains), so a 1 MB description would cost ~16 MB of site: rejected.
MAX_DOC_BYTES = 256 * 1024
MAX_VERSIONS_PER_SERVER = 10_000  # upstream's maxServerVersionsPerServer
MAX_REASON_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class Admission(NamedTuple):
    """Rows to store and items refused, each in crawl order; unpacks as (rows, rejected)."""

    rows: list[Row]
    rejected: list[Rejected]


class _Candidate(NamedTuple):
    position: int
    item: dict[str, Any]
    row: Row
    newest: tuple[float, str]  # computed while the item can still be rejected for it


def collect_entries(items: Iterable[Any], start: int = 0) -> Admission:
    """Validate crawled items; invalid, colliding or repeated ones become Rejected."""
    candidates: list[_Candidate] = []
    rejected: list[Rejected] = []
    for position, item in enumerate(items, start):
        try:
            row = admit_one(item)
            candidates.append(_Candidate(position, item, row, row.published_sort_key))
        except MemoryError:
            raise
        except Exception as exc:  # any failure on one item rejects that item only
            rejected.append(rejection(position, item, _reason(exc)))
    rows = []
    for candidate, reason in _settle(candidates):
        if reason is None:
            rows.append((candidate.position, candidate.row))
        else:
            rejected.append(rejection(candidate.position, candidate.item, reason))
    rows.sort(key=lambda pair: pair[0])
    rejected.sort(key=lambda rej: rej.position)
    return Admission([row for _, row in rows], rejected)


def admit_one(item: Any) -> Row:
    """The row for one item judged on its own; raises with the reason when it is refused."""
    if not isinstance(item, dict):
        raise ValueError("entry is not a JSON object")
    if json_depth(item, MAX_DEPTH) > MAX_DEPTH:
        raise ValueError(f"entry is nested more than {MAX_DEPTH} levels deep")
    row = row_from_item(item)
    if len(row.doc) > MAX_DOC_BYTES:
        raise ValueError(f"entry is {len(row.doc)} bytes, over the {MAX_DOC_BYTES}-byte bound")
    if problem := paths.path_problem(row.name, row.version):
        raise ValueError(problem)
    return row


def json_depth(value: Any, limit: int) -> int:
    """Containers on the deepest path of `value`, counting no further than limit + 1.
    Iterative, so neither a deep document nor a cyclic Python structure can overflow the stack."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _settle(candidates: list[_Candidate]) -> Iterable[tuple[_Candidate, str | None]]:
    """Each candidate with None (admitted) or why it loses to another one."""
    by_name: dict[str, list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_name[paths.fold(candidate.row.name)].append(candidate)
    for group in by_name.values():
        name = min(c.row.name for c in group)
        kept: list[_Candidate] = []
        for candidate in group:
            if candidate.row.name == name:
                kept.append(candidate)
            else:
                yield candidate, (f"name {candidate.row.name!r} collides case-insensitively with {name!r}, "
                                  "which is kept (the smallest spelling wins)")
        winners = []
        by_version: dict[str, list[_Candidate]] = defaultdict(list)
        for candidate in kept:
            by_version[paths.fold(candidate.row.version)].append(candidate)
        for same in by_version.values():
            winner = min(same, key=lambda c: (c.row.version, c.row.doc, c.position))
            winners.append(winner)
            for candidate in same:
                if candidate is winner:
                    continue
                if candidate.row.version == winner.row.version:
                    yield candidate, "duplicate of another entry with the same name and version"
                else:
                    yield candidate, (f"version {candidate.row.version!r} collides case-insensitively with "
                                      f"{winner.row.version!r}, which is kept (the smallest spelling wins)")
        newest_first = sorted(winners, key=lambda c: c.newest, reverse=True)
        for index, candidate in enumerate(newest_first):
            if index < MAX_VERSIONS_PER_SERVER:
                yield candidate, None
            else:
                yield candidate, (f"server has more than {MAX_VERSIONS_PER_SERVER} versions; "
                                  "only the newest are mirrored")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {message}{more}"
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return f"entry cannot be processed: {type(exc).__name__}: {exc}"


def rejection(position: int, item: Any, reason: str) -> Rejected:
    """A Rejected record that keeps whatever can be kept of the item."""
    # dict.get, not item.get: a subclass's own methods may be what failed
    server = dict.get(item, "server") if isinstance(item, dict) else None
    name = dict.get(server, "name") if isinstance(server, dict) else None
    version = dict.get(server, "version") if isinstance(server, dict) else None
    return Rejected(position, name if isinstance(name, str) else None,
                    version if isinstance(version, str) else None, one_line(reason), encode_any(item))


def one_line(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """Reasons are printed to terminals: control characters escaped, length bounded."""
    escaped = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode(), reason)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def encode_any(item: Any) -> bytes:
    """The item as JSON for the rejected table, even when orjson cannot write it (nested past
    its 254 levels, lone surrogates, non-JSON Python values); a placeholder when nothing can."""
    try:
        return orjson.dumps(item)
    except MemoryError:
        raise
    except Exception:  # fall back to the slower, more permissive encoder
        pass
    try:
        return json.dumps(item, ensure_ascii=True, separators=(",", ":"), default=repr).encode()
    except MemoryError:
        raise
    except Exception as exc:
        return orjson.dumps({"mcp-mirror": f"document could not be encoded: {type(exc).__name__}"})
