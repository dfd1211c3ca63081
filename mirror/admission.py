"""Admission: which crawled items become rows of a snapshot, and why the others do not.

Anyone can publish upstream, so every item is untrusted. One bad item is a Rejected
record (kept with its position, name, version, reason and document, so `diff` and the
rejected report show it), never an exception out of the crawl.

An item is admitted when, on its own, it validates (mirror.models), its name and version
can be path segments every host serves (mirror.paths.segment_problem), its paths fit the
length bounds, and it is at most MAX_DEPTH containers deep and MAX_DOC_BYTES long; and then,
among the items that pass:

- exact duplicates (same name and version) keep the one with the smallest document bytes;
- a server keeps at most MAX_VERSIONS_PER_SERVER versions, the newest by publishedAt.

Spellings that differ only in case (`1.0.0-RC1` and `1.0.0-rc1`) are different rows, as
upstream keeps them: hosts, buckets and Linux file systems tell them apart. Only a render
onto a case-insensitive file system must drop one (mirror.paths.CaseFolding).

Winners are chosen by content, never by crawl position, so any crawl order of the same
items admits the same rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from mirror import paths
from mirror.models import Rejected, Row, Unparsed, json_depth, parse_time, row_from_item
from mirror.text import one_line as text_one_line

MAX_DEPTH = 64  # server.json needs about 8 levels; orjson cannot write more than 254
# Every admitted document is copied into several files (version, latest and list views, and
# on S3 4 page sizes x 4 page chains), so a 1 MB description would cost ~20 MB of site: rejected.
MAX_DOC_BYTES = 256 * 1024
MAX_VERSIONS_PER_SERVER = 10_000  # upstream's maxServerVersionsPerServer
MAX_REASON_CHARS = 500


class Admission(NamedTuple):
    """Rows to store and items refused, each in crawl order; unpacks as (rows, rejected)."""

    rows: list[Row]
    rejected: list[Rejected]


class _Candidate(NamedTuple):
    """What settling needs of an item that passed on its own: no document, so a crawl of
    any size keeps only this much per row."""

    position: int
    name: str
    version: str
    newest: tuple[float, str]  # computed while the item can still be rejected for it


Smallest = Callable[[list[int]], int]  # position of the smallest document among equal keys


class Admitter:
    """Admits a crawl page by page; collisions between pages are settled once all are in.

    `admit` returns the rows each page admits on its own (to be staged); `settle` returns
    the positions that lose a collision, with why. `smallest` picks among exact duplicates
    by document bytes, wherever the documents are kept."""

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []
        self._candidates: list[_Candidate] = []

    def admit(self, items: Iterable[Any], start: int = 0) -> list[tuple[int, Row]]:
        admitted = []
        for position, item in enumerate(items, start):
            try:
                row = admit_one(item)
            except MemoryError:
                raise
            except Exception as exc:  # any failure on one item rejects that item only
                self.rejected.append(rejection(position, item, _reason(exc)))
                continue
            self._candidates.append(_Candidate(position, row.name, row.version, row.published_sort_key))
            admitted.append((position, row))
        return admitted

    def add_known(self, rows: Iterable[tuple[int, str, str, str | None]]) -> None:
        """Rows admitted by an earlier crawl and carried into this snapshot, as
        (position, name, version, publishedAt): they take part in the collision rules
        exactly as if this crawl had fetched them."""
        for position, name, version, published in rows:
            when = parse_time(published).timestamp() if published else 0.0
            self._candidates.append(_Candidate(position, name, version, (when, version)))

    def forget(self, name: str) -> None:
        """Drop what was admitted or refused of a server that is being fetched again whole."""
        self._candidates = [c for c in self._candidates if c.name != name]
        self.rejected = [r for r in self.rejected if r.name != name]

    def forget_keys(self, keys: Iterable[tuple[str, str]]) -> None:
        """Drop what was admitted or refused of these (name, version)s: a newer answer replaces them."""
        keys = set(keys)
        self._candidates = [c for c in self._candidates if (c.name, c.version) not in keys]
        self.rejected = [r for r in self.rejected if (r.name, r.version) not in keys]

    def settle(self, smallest: Smallest) -> dict[int, str]:
        """Losing positions and their reasons."""
        losers = {c.position: reason for c, reason in _settle(self._candidates, smallest) if reason is not None}
        self._candidates = []
        return losers


def collect_entries(items: Iterable[Any], start: int = 0) -> Admission:
    """Validate crawled items held in memory; invalid, colliding or repeated ones become Rejected."""
    admitter = Admitter()
    admitted = dict(admitter.admit(items, start))
    losers = admitter.settle(lambda positions: min(positions, key=lambda p: (admitted[p].doc, p)))
    rejected = admitter.rejected
    for position, reason in losers.items():
        rejected.append(rejected_row(position, admitted[position], reason))
    rows = [row for position, row in sorted(admitted.items()) if position not in losers]
    rejected.sort(key=lambda rej: rej.position)
    return Admission(rows, rejected)


def rejected_row(position: int, row: Row, reason: str) -> Rejected:
    """A row that passed on its own but lost a collision."""
    return Rejected(position, row.name, row.version, one_line(reason), row.doc)


def admit_one(item: Any) -> Row:
    """The row for one item judged on its own; raises with the reason when it is refused."""
    if isinstance(item, Unparsed):
        raise ValueError(item.reason)
    if not isinstance(item, dict):
        raise ValueError("entry is not a JSON object")
    try:
        doc = orjson.dumps(item)
    except TypeError:  # orjson writes at most 254 levels, and no sets or huge integers
        doc = None
    # too few containers cannot nest past MAX_DEPTH: the walk is nearly always skipped
    if (doc is None or doc.count(b"[") + doc.count(b"{") > MAX_DEPTH) and json_depth(item, MAX_DEPTH) > MAX_DEPTH:
        raise ValueError(f"entry is nested more than {MAX_DEPTH} levels deep")
    row = row_from_item(item, doc=doc)  # raises for what orjson could not write
    if len(row.doc) > MAX_DOC_BYTES:
        raise ValueError(f"entry is {len(row.doc)} bytes, over the {MAX_DOC_BYTES}-byte bound")
    if problem := paths.path_problem(row.name, row.version):
        raise ValueError(problem)
    return row


def _settle(candidates: list[_Candidate], smallest: Smallest) -> Iterable[tuple[_Candidate, str | None]]:
    """Each candidate with None (admitted) or why it loses to another one."""
    by_name: dict[str, dict[str, list[_Candidate]]] = defaultdict(lambda: defaultdict(list))
    for candidate in candidates:
        by_name[candidate.name][candidate.version].append(candidate)
    for by_version in by_name.values():
        winners = []
        for same in by_version.values():
            chosen = smallest([c.position for c in same]) if len(same) > 1 else same[0].position
            winner = next(c for c in same if c.position == chosen)
            winners.append(winner)
            for candidate in same:
                if candidate is not winner:
                    yield candidate, "duplicate of another entry with the same name and version"
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
    if isinstance(item, Unparsed):  # its bytes are what no parser here reads: a note stands in for them
        note = {"mcp-mirror": f"entry of {item.size} bytes could not be parsed"}
        return Rejected(position, item.name, item.version, one_line(reason), orjson.dumps(note))
    # dict.get, not item.get: a subclass's own methods may be what failed
    server = dict.get(item, "server") if isinstance(item, dict) else None
    name = dict.get(server, "name") if isinstance(server, dict) else None
    version = dict.get(server, "version") if isinstance(server, dict) else None
    return Rejected(position, name if isinstance(name, str) else None,
                    version if isinstance(version, str) else None, one_line(reason), encode_any(item))


def one_line(reason: str, limit: int = MAX_REASON_CHARS) -> str:
    """A rejected row's reason as it is recorded and printed (mirror.text.one_line)."""
    return text_one_line(reason, limit)


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
