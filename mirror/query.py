"""Every list query, answered from the rows index in the tree, as upstream answers it.

A host that can run code (`serve`, nginx through njs, Caddy through `serve`, the Netlify and
Cloudflare Pages functions) answers GET /v0.1/servers from one compact document, the rows
index, and then splices in each row's own version document, so no page chains are needed
and the answer is upstream's for every query: exactly `limit` rows (a page is short only at
the end), rows in (name, version) code-point order (PostgreSQL's C collation), upstream's
keyset cursors `name:version` (a cursor without a colon is a bare name), `nextCursor`
whenever a page is full. `search` is a case-insensitive substring of the name, taken
literally; `updated_since` keeps rows updated strictly after it and implies deleted rows.
See shared/reference/upstream.md §2.1 and §3.

Pure: no I/O. `serve` reads the files.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from mirror import paths

FORMAT = "mcp-mirror-rows/1"
LATEST, DELETED = 1, 2  # flag bits of a row in the index
MAX_NAME_CHARS = 200  # upstream's longest name: a longer search matches nothing
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# re.ASCII: Go reads ASCII digits only, where Python's \d would take any script's
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.ASCII)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class ListQuery:
    """A validated GET /v0.1/servers that only computing hosts can answer."""

    limit: int = paths.DEFAULT_PAGE_SIZE
    cursor: str | None = None  # upstream's: `name:version` of the last row seen, or a bare name
    search: str | None = None
    version: str | None = None  # "latest" or an exact version
    since: int | None = None  # microseconds since the epoch; rows updated strictly after
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class IndexRow:
    name: str
    version: str
    updated: int | None  # microseconds since the epoch; None when upstream gave no updatedAt
    flags: int

    @property
    def latest(self) -> bool:
        return bool(self.flags & LATEST)

    @property
    def deleted(self) -> bool:
        return bool(self.flags & DELETED)


@dataclass(frozen=True)
class Selection:
    rows: list[IndexRow]
    next_cursor: str | None


def parse_rfc3339(text: str) -> int | None:
    """Go's `time.Parse(time.RFC3339, …)` as microseconds since the epoch (a fraction is
    truncated to microseconds, as PostgreSQL stores it); None when it is no such time."""
    match = _RFC3339.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 24 or minutes > 59:  # Go's own bounds; +24:00 is a time it accepts
            return None
        offset = (-1 if zone[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)
        when -= offset  # past year 1 or 9999: OverflowError, a time no row can have
    except (ValueError, OverflowError):
        return None
    return (when - _EPOCH) // timedelta(microseconds=1)


def search_matcher(term: str) -> Callable[[str], bool]:
    """Upstream's `search` as a function of the name: `ILIKE '%' || term || '%'` with `\\`, `%`
    and `_` in the term escaped (registry #1227, April 2026), so a case-insensitive
    substring, taken literally. Case folds ASCII only, as PostgreSQL does under the C locale."""
    needle = term.translate(_ASCII_LOWER)
    if len(needle) > MAX_NAME_CHARS:  # no name is that long
        return lambda name: False
    return lambda name: needle in name.translate(_ASCII_LOWER)


def list_document(items: Iterable[bytes], *, next_cursor: str | None = None) -> bytes:
    """A v0.1 ServerList; items are spliced in as bytes so they stay exactly as stored."""
    items = list(items)
    metadata: dict[str, str | int] = {"nextCursor": next_cursor} if next_cursor else {}
    metadata["count"] = len(items)
    return b'{"servers":[' + b",".join(items) + b'],"metadata":' + orjson.dumps(metadata) + b"}"


# -- the index document ------------------------------------------------------------


def index_server(name: str, versions: Iterable[tuple[str, str | None, bool, bool]]) -> bytes:
    """One server's entry of the index: `[name, [[version, updated, flags], ...]]`, from
    (version, updatedAt, isLatest, deleted) in version order."""
    return orjson.dumps([name, [
        [version, parse_rfc3339(updated) if updated else None, (LATEST if latest else 0) | (DELETED if deleted else 0)]
        for version, updated, latest, deleted in versions]])


def index_document(servers: bytes, *, index: str, deleted_views: bool) -> bytes:
    """The rows index, from its servers' entries already comma-joined. `documents` names the
    file, inside each version's directory, that holds a row's served document, so an engine
    needs to know nothing of host profiles."""
    documents = {"visible": index, "deleted": paths.DELETED_VIEW if deleted_views else None}
    return (b'{"format":' + orjson.dumps(FORMAT) + b',"documents":' + orjson.dumps(documents) + b',"servers":['
            + servers + b"]}")


class RowIndex:
    """The rows index, loaded for answering many queries."""

    def __init__(self, rows: list[IndexRow], *, visible_document: str, deleted_document: str | None) -> None:
        self.rows = rows
        self.visible_document, self.deleted_document = visible_document, deleted_document
        self._names = [row.name for row in rows]
        self._keys = [(row.name, row.version) for row in rows]
        # server groups, for skipping a whole server a search rules out
        self._groups: list[tuple[str, int, int]] = []
        for position, row in enumerate(rows):
            if self._groups and self._groups[-1][0] == row.name:
                name, start, _ = self._groups[-1]
                self._groups[-1] = (name, start, position + 1)
            else:
                self._groups.append((row.name, position, position + 1))
        self._group_starts = [start for _, start, _ in self._groups]
        dated = sorted((row.updated, position) for position, row in enumerate(rows) if row.updated is not None)
        self._updates = [updated for updated, _ in dated]
        self._by_update = [position for _, position in dated]
        self._by_version: dict[str, list[int]] = {}
        for position, row in enumerate(rows):
            self._by_version.setdefault(row.version, []).append(position)
        self._latest = [position for position, row in enumerate(rows) if row.latest]

    @classmethod
    def from_bytes(cls, data: bytes) -> RowIndex:
        document = orjson.loads(data)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} rows index")
        rows = [IndexRow(name, version, updated, flags)
                for name, versions in document["servers"] for version, updated, flags in versions]
        documents = document["documents"]
        return cls(rows, visible_document=documents["visible"], deleted_document=documents["deleted"])

    def document_file(self, row: IndexRow) -> str | None:
        """The tree file holding the row's served document."""
        name = self.deleted_document if row.deleted else self.visible_document
        return paths.view_file(paths.version_dir(row.name, row.version), index=name) if name else None

    def select(self, query: ListQuery) -> Selection:
        start = self._start(query.cursor)
        matcher = search_matcher(query.search) if query.search else None
        chosen: list[IndexRow] = []
        for position in self._candidates(query, start, matcher):
            row = self.rows[position]
            if row.deleted and not query.include_deleted:
                continue
            if query.version == "latest" and not row.latest:
                continue
            if query.version not in (None, "latest") and row.version != query.version:
                continue
            if query.since is not None and (row.updated is None or row.updated <= query.since):
                continue
            if matcher is not None and not matcher(row.name):
                continue
            chosen.append(row)
            if len(chosen) >= query.limit:
                break
        last = chosen[-1] if chosen and len(chosen) >= query.limit else None
        return Selection(chosen, f"{last.name}:{last.version}" if last else None)

    def _start(self, cursor: str | None) -> int:
        """The first position after the cursor: keyset on (name, version), or on the name
        alone for a cursor without a colon, as upstream parses it."""
        if not cursor:
            return 0
        name, colon, version = cursor.partition(":")
        if colon:
            return bisect_right(self._keys, (name, version))
        return bisect_right(self._names, name)

    def _candidates(self, query: ListQuery, start: int, matcher: Callable[[str], bool] | None) -> Iterator[int]:
        """Positions from `start` on, in order, narrowed by the most selective filter the
        index has a list for; `select` checks every filter on each anyway."""
        narrowed: list[int] | None = None
        if query.since is not None:
            narrowed = sorted(position for position in self._by_update[bisect_right(self._updates, query.since):]
                              if position >= start)
        if query.version == "latest":
            narrowed = narrowed if narrowed is not None and len(narrowed) < len(self._latest) else self._latest
        elif query.version is not None:
            exact = self._by_version.get(query.version, [])
            narrowed = narrowed if narrowed is not None and len(narrowed) < len(exact) else exact
        if narrowed is not None:
            yield from narrowed[bisect_right(narrowed, start - 1):]
            return
        if matcher is None:
            yield from range(start, len(self.rows))
            return
        group = max(bisect_right(self._group_starts, start) - 1, 0)
        for name, first, end in self._groups[group:]:
            if matcher(name):
                yield from range(max(first, start), end)
