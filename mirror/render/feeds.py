"""The change feeds (`/v0.1/x/mcp-mirror/changes`): static JSON pages another mirror follows.

A host without query routing cannot answer `updated_since`, so the tree says what changed
itself. The feed index names:

Pages are named by API paths (P, served from P/index.json as every API path is), so every
host profile serves them; the index lists those paths, relative to the base URL.

- `base`: every row of the snapshot, deleted ones included (no other file of a `static`
  tree holds those), as list pages `{"servers": [...]}` cut where a row's key hashes to a
  mark (content-defined, as the list chains are) and named by the rows they hold, so an
  unchanged page keeps its name and bytes;
- `deltas`: the last FEED_DEPTH snapshots whose data changed, newest first, each with the
  snapshot it follows (`previous`) and its pages. A delta page carries the change records
  (each with its snapshot's id and time) and every (name, version) whose document changed,
  with the document, or `"removed": true`.

A follower that has snapshot P applies the deltas after P oldest first; one with nothing,
further behind than the feed reaches, or ahead of it (the feed went back) reads the base.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from mirror import paths
from mirror.hosts import JSON, Profile
from mirror.models import Delta, Row, Snapshot
from mirror.plan import Entry, Kind, digest

FEED_DEPTH = 100  # deltas the index lists; a follower further behind reads the base
DELTA_ROWS = 500  # rows of one delta page
BASE_MARK = 256  # a base page ends after a row whose key hashes to a multiple of this ...
BASE_MIN, BASE_MAX = 64, 1024  # ... once it has BASE_MIN rows, and always at BASE_MAX

DeltaSource = Callable[[], list[Delta]]


def snapshot_record(snapshot: Snapshot) -> dict[str, Any]:
    return {"id": snapshot.id, "finishedAt": snapshot.finished_at, "mode": snapshot.mode}


class FeedProducer:
    """The feed of one content snapshot: its base, its deltas and the index naming them."""

    def __init__(self, profile: Profile, content: Snapshot, deltas: DeltaSource) -> None:
        self.profile = profile
        self.content = content
        self.deltas = deltas

    def entries(self, rows: Iterable[Row]) -> Iterator[Entry]:
        base: list[str] = []
        count = 0
        for page in _base_pages(rows):
            count += len(page)
            token = digest(*(row.hash for row in page))
            base.append(paths.feed_base_dir(token))
            yield Entry(self._file(paths.feed_base_dir(token)), Kind.DOCUMENT, JSON, self._body(_list_body(page)),
                        source=token)
        listed = []
        for delta in self.deltas():
            pages = [delta.rows[i : i + DELTA_ROWS] for i in range(0, len(delta.rows), DELTA_ROWS)] or [[]]
            names = [paths.feed_delta_dir(delta.snapshot.id, part) for part in range(len(pages))]
            for part, (path, chunk) in enumerate(zip(names, pages, strict=True)):
                body = self._body(_delta_body(delta, part, len(pages), chunk))
                yield Entry(self._file(path), Kind.DOCUMENT, JSON, body,
                            source=digest("delta", str(delta.snapshot.id), str(part)))
            counts: dict[str, int] = {}
            for change in delta.changes:
                counts[change.kind] = counts.get(change.kind, 0) + 1
            listed.append({"snapshot": snapshot_record(delta.snapshot), "previous": delta.previous,
                           "changes": counts, "rows": len(delta.rows), "pages": names})
        index = {
            "feed": "mcp-mirror changes",
            "snapshot": snapshot_record(self.content),
            "base": {"rows": count, "pages": base},
            "deltas": listed,
            "depth": FEED_DEPTH,
        }
        body = orjson.dumps(index, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        yield Entry(paths.feed_index_file(self.profile.index_name), Kind.LIST, JSON, self._body(body))

    def _file(self, directory: str) -> str:
        return paths.view_file(directory, index=self.profile.index_name)

    def _body(self, body: bytes) -> bytes:
        return self.profile.document(body)


def _base_pages(rows: Iterable[Row]) -> Iterator[list[Row]]:
    page: list[Row] = []
    for row in rows:
        page.append(row)
        if len(page) >= BASE_MAX or (len(page) >= BASE_MIN and _mark(row) % BASE_MARK == 0):
            yield page
            page = []
    if page:
        yield page


def _mark(row: Row) -> int:
    key = f"{row.name}\x00{row.version}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _list_body(rows: list[Row]) -> bytes:
    """A list page of the rows' documents as stored: the bytes upstream sent, not re-encoded."""
    return b'{"servers":[' + b",".join(row.doc for row in rows) + b'],"metadata":{"count":%d}}' % len(rows)


def _delta_body(delta: Delta, part: int, parts: int, rows: list[tuple[str, str, bytes | None]]) -> bytes:
    when = {"snapshot": delta.snapshot.id, "time": delta.snapshot.finished_at}
    head = {"snapshot": snapshot_record(delta.snapshot), "previous": delta.previous, "part": part, "parts": parts,
            "changes": [{**when, **change.as_dict()} for change in delta.changes] if part == 0 else []}
    items = []
    for name, version, doc in rows:
        key = orjson.dumps({"name": name, "version": version})[:-1]
        items.append(key + (b',"document":' + doc + b"}" if doc is not None else b',"removed":true}'))
    return orjson.dumps(head)[:-1] + b',"rows":[' + b",".join(items) + b"]}"
