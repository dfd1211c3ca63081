"""The v0.1 API documents of a snapshot, as entries.

Two passes over the rows, sorted by (name, version): the first yields every version's
own document and keeps what the pointers and pages need (counts, the latest rows); the
second yields the lists (each server's versions, the page chains, streamed through one
window per chain and page size). Only one server's versions are held at a time.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby
from pathlib import Path
from typing import Any

import orjson

from mirror import __version__, paths, query
from mirror.hosts import JSON, PROBLEM_JSON, YAML, Profile
from mirror.models import Row, Snapshot, is_visible, latest_row
from mirror.plan import Entry, Kind, digest
from mirror.query import list_document

# A row in a list: its content hash (for the list's source), the row (its served bytes are
# made only for a list the publisher does not have yet), and a number drawn from its (name,
# version) alone, which decides where pages of a chain may break.
Listed = tuple[str, Row, int]
SUMMARY_CHARS = 300  # of a description on the landing page: a 10 MB one must not make a 10 MB page


@dataclass
class Counts:
    rows: int = 0
    servers: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Skipped:
    """A stored row render could not serve, and why."""

    name: str
    version: str
    reason: str


PACKAGE_TYPES = ("npm", "pypi", "oci", "nuget", "mcpb")  # the registry types the catalog names; others: "other"
TITLE_CHARS = 200
IDENTIFIER_CHARS = 200
IDENTIFIERS = 5  # package identifiers a summary keeps


@dataclass(frozen=True)
class ServerSummary:
    """What lists and the search index show of a server: its latest visible version, every
    text field cut to an explicit bound (one megabyte string must not make a megabyte list)."""

    name: str
    version: str
    status: str
    description: str
    title: str = ""
    package_types: tuple[str, ...] = ()  # of PACKAGE_TYPES, or "other"
    identifiers: tuple[str, ...] = ()
    stdio: bool = False  # has a package (run locally)
    remote: bool = False  # has a remote endpoint
    updated_at: str = ""
    # the mirror minted a Server Card for this version (render.cards); out of the repr that
    # digests what a catalog page shows, which it does not change
    card: bool = field(default=False, repr=False)


def _text(value: Any, bound: int) -> str:
    return value[:bound] if isinstance(value, str) else ""


def summarize(row: Row, item: Any, *, card: bool = False) -> ServerSummary:
    """The summary of a server's shown version from its parsed upstream item (any shape)."""
    server = item.get("server") if isinstance(item, dict) else None
    server = server if isinstance(server, dict) else {}
    packages = [p for p in server.get("packages") or () if isinstance(p, dict)] if isinstance(
        server.get("packages"), list) else []
    remotes = server.get("remotes") if isinstance(server.get("remotes"), list) else []
    types = sorted({p.get("registryType") if p.get("registryType") in PACKAGE_TYPES else "other" for p in packages})
    identifiers = tuple(_text(p.get("identifier"), IDENTIFIER_CHARS) for p in packages[:IDENTIFIERS]
                        if isinstance(p.get("identifier"), str))
    return ServerSummary(row.name, row.version, row.status, _text(server.get("description"), SUMMARY_CHARS),
                         title=_text(server.get("title"), TITLE_CHARS), package_types=tuple(types),
                         identifiers=identifiers, stdio=bool(packages), remote=bool(remotes),
                         updated_at=row.updated_at or row.published_at or "", card=card)


def served_item(row: Row) -> bytes:
    """The upstream item as served: verbatim, with an empty `_meta` only where upstream
    sent none, because VS Code rejects items without one."""
    return _served(row.doc)


@lru_cache(maxsize=8192)  # a row sits in a dozen pages and lists, all close together in the stream
def _served(doc: bytes) -> bytes:
    item = orjson.loads(doc)
    if isinstance(item.get("_meta"), dict):
        return doc
    item["_meta"] = {}
    return orjson.dumps(item)


class ApiProducer:
    def __init__(self, profile: Profile, *, folding: bool = False,
                 cards: Callable[[Row], Entry | None] | None = None) -> None:
        self.profile = profile
        self._cards = cards  # a visible row's Server Card entry, if it gets one (render.cards)
        # on a case-insensitive output, the later of two spellings that fold together is skipped
        self._folding = paths.CaseFolding() if folding else None
        self.counts = Counts()
        self.summaries: list[ServerSummary] = []
        self._latest: list[tuple[str, Row | None, Row | None]] = []  # name, default view, deleted view
        self._first_page: Entry | None = None
        # The rows index's server entries, comma-joined as they come: one buffer, because each
        # small bytes object orjson returns keeps kilobytes of allocation behind it.
        self._index = bytearray()
        self.skipped: list[Skipped] = []
        self._skip: set[tuple[str, str]] = set()

    def _item(self, row: Row) -> bytes:
        return self.profile.document(served_item(row))

    def _renderable(self, row: Row) -> bool:
        """Whether the row can be served (and, on a case-insensitive output, written beside
        the rows before it); one that cannot is left out everywhere and reported, so it never
        stops a build (admission already refuses what it knows)."""
        try:
            self._item(row)
        except Exception as exc:  # noqa: BLE001 (any failure on one row skips that row only)
            self.skipped.append(Skipped(row.name, row.version, f"{type(exc).__name__}: {exc}"[:300]))
            self._skip.add(row.key)
            return False
        if (why := self._unwritable(row)) is not None:
            self.skipped.append(Skipped(row.name, row.version, why))
            self._skip.add(row.key)
            return False
        return True

    def _unwritable(self, row: Row) -> str | None:
        """Why this output cannot hold a row that every host could serve, or None."""
        if self.profile.drops_dot_files and row.version.startswith("."):
            return f"version {row.version!r} starts with '.': the {self.profile.name} deploy leaves out dot-files"
        return self._folding.clash(row.name, row.version) if self._folding is not None else None

    def _doc(self, path: str, row: Row, kind: Kind = Kind.DOCUMENT) -> Entry:
        return Entry(path, kind, JSON, lambda: self._item(row), source=row.hash)

    # -- pass 1 -------------------------------------------------------------------

    def documents(self, rows: Iterable[Row]) -> Iterator[Entry]:
        """Every version's document (and its include-deleted view where the host routes it),
        and the Server Card of each visible one that gets a card."""
        profile, index = self.profile, self.profile.index_name
        deleted_views, dedupe = profile.deleted_views, profile.deleted_views_where_different
        counts = self.counts
        for name, group in groupby(rows, key=lambda row: row.name):
            versions = [row for row in group if self._renderable(row)]
            if not versions:
                continue
            counts.servers += 1
            carded: set[str] = set()
            for row in versions:
                counts.rows += 1
                counts.statuses[row.status] += 1
                directory = paths.version_dir(name, row.version)
                visible = is_visible(row)
                if visible:
                    yield self._doc(paths.view_file(directory, index=index), row)
                    if self._cards is not None and (card := self._cards(row)) is not None:
                        carded.add(row.version)
                        yield card
                if deleted_views and (not visible or not dedupe):
                    yield self._doc(paths.view_file(directory, deleted=True), row)
            if self._index:
                self._index += b","
            self._index += query.index_server(name, (
                (row.version, row.updated_at, row.is_latest, not is_visible(row)) for row in versions))
            shown = latest_row(row for row in versions if is_visible(row))
            with_deleted = latest_row(versions)
            self._latest.append((name, shown, with_deleted))
            if shown is not None:
                self.summaries.append(summarize(shown, orjson.loads(shown.doc),
                                                card=shown.version in carded))

    # -- pass 2 -------------------------------------------------------------------

    def lists(self, rows: Iterable[Row]) -> Iterator[Entry]:
        """Each server's versions list, and what answers GET /v0.1/servers where the host
        cannot compute it from the rows index: the page chains, or one page for hosts that
        cannot route a cursor. Each row's served bytes are made once, for all its lists."""
        profile, index = self.profile, self.profile.index_name
        deleted_views, dedupe = profile.deleted_views, profile.deleted_views_where_different
        paged = not profile.lists_computed
        chains = _Chains(self) if profile.paged else None
        single: list[Listed] = []
        for name, group in groupby(rows, key=lambda row: row.name):
            versions = [row for row in group if row.key not in self._skip]
            if not versions:
                continue
            listed = {id(row): (row.hash, row, _key_mark(row)) for row in versions}
            if chains is not None:
                yield from chains.feed(versions, listed)
            elif paged:
                single.extend(listed[id(row)] for row in versions if row.is_latest and is_visible(row))
            newest_first = sorted(versions, key=lambda row: row.published_sort_key, reverse=True)
            default = [listed[id(row)] for row in newest_first if is_visible(row)]
            directory = paths.versions_dir(name)
            if default:
                yield self._list(paths.view_file(directory, index=index), default)
            if deleted_views and (not dedupe or len(default) != len(newest_first)):
                yield self._list(paths.view_file(directory, deleted=True), [listed[id(row)] for row in newest_first])
        if chains is not None:
            yield from chains.finish()
        elif paged:
            # Nothing can resolve a cursor: one page, latest versions, which is what VS Code asks for.
            page = self._list(paths.view_file(paths.servers_dir(), index=index), single, kind=Kind.POINTER)
            yield page
            if profile.v0_list_copy:
                # Docker's import asks /v0/servers, and a plain file server cannot rewrite: the same bytes there.
                yield Entry(paths.view_file(paths.servers_dir(api=paths.API_ALIAS), index=index), Kind.POINTER, JSON,
                            page.body, source=page.source)

    def _list(self, path: str, items: list[Listed], *, next_cursor: str | None = None,
              kind: Kind = Kind.LIST) -> Entry:
        source = digest(next_cursor or "", *(listed[0] for listed in items))
        return Entry(path, kind, JSON, lambda: list_document((self._item(listed[1]) for listed in items),
                                                             next_cursor=next_cursor), source=source)

    def rows_index(self) -> Entry:
        """The rows index (`mirror.query`): what hosts that compute answer search,
        updated_since and exact versions from. It names documents, so it is a list."""
        body = self.profile.document(query.index_document(bytes(self._index), index=self.profile.index_name,
                                                          deleted_views=self.profile.deleted_views))
        return Entry(paths.rows_index_file(self.profile.index_name), Kind.LIST, JSON, body)

    # -- pointers -----------------------------------------------------------------

    def pointers(self) -> Iterator[Entry]:
        """`versions/latest` of every server, and the first page for path-only clients."""
        index, deleted_views = self.profile.index_name, self.profile.deleted_views
        dedupe = self.profile.deleted_views_where_different
        for name, shown, with_deleted in self._latest:
            directory = paths.latest_dir(name)
            if shown is not None:
                yield self._doc(paths.view_file(directory, index=index), shown, Kind.POINTER)
            if deleted_views and with_deleted is not None and (not dedupe or with_deleted is not shown):
                yield self._doc(paths.view_file(directory, deleted=True), with_deleted, Kind.POINTER)
        if self._first_page is not None:
            yield self._first_page


class _Chains:
    """Every page chain at every page size, fed one server at a time. A page is yielded as
    soon as the row after it is seen (it then knows its nextCursor)."""

    def __init__(self, producer: ApiProducer) -> None:
        self.producer = producer
        self.windows = {(chain, size): _Window(chain, size, latest_only=latest_only, with_deleted=with_deleted)
                        for chain, (latest_only, with_deleted) in paths.CHAINS.items() for size in paths.PAGE_SIZES}
        # which windows take a row, by (visible, latest): decided once, not per row and window
        self.wanting = {(visible, latest): [w for w in self.windows.values() if w.wants(visible, latest)]
                        for visible in (False, True) for latest in (False, True)}

    def feed(self, versions: list[Row], listed: dict[int, Listed]) -> Iterator[Entry]:
        by_window: dict[_Window, list[Listed]] = {}
        for row in versions:
            for window in self.wanting[(is_visible(row), row.is_latest)]:
                by_window.setdefault(window, []).append(listed[id(row)])
        for window in self.windows.values():  # pages in a fixed order, whatever the rows
            for item in by_window.get(window, ()):
                if (page := window.push(item)) is not None:
                    yield self._page(window, *page)

    def finish(self) -> Iterator[Entry]:
        for window in self.windows.values():
            yield self._page(window, *window.close())

    def _page(self, window: _Window, mark: int, rows: list[Listed], following: int | None) -> Entry:
        token = paths.cursor(window.size, mark)
        next_cursor = paths.cursor(window.size, following) if following is not None else None
        entry = self.producer._list(paths.page_file(window.chain, token), rows, next_cursor=next_cursor)
        if window.chain == "default" and window.size == paths.DEFAULT_PAGE_SIZE and mark == 0:
            # For clients of hosts that route only by path, /v0.1/servers answers the first default page.
            self.producer._first_page = Entry(paths.view_file(paths.servers_dir()), Kind.POINTER, JSON,
                                              entry.body, source=entry.source)
        return entry


def _key_mark(row: Row) -> int:
    digest_ = hashlib.blake2b(f"{row.name}\x00{row.version}".encode(), digest_size=8).digest()
    return int.from_bytes(digest_, "big")


class _Window:
    """One page chain at one page size. Pages break where the rows themselves say (content-
    defined, like rsync's chunks): after at least half a page, at a row whose key mark is a
    multiple of `size // 2`, and always at `size`. So a row added, removed or hidden moves
    the pages around it only, not every page after it, and a cursor names the row its page
    starts at: one a client holds stays good across renders while that row is there."""

    def __init__(self, chain: str, size: int, *, latest_only: bool, with_deleted: bool) -> None:
        self.chain, self.size = chain, size
        self.latest_only, self.with_deleted = latest_only, with_deleted
        self.modulus = max(size // 2, 2)
        self.mark = 0  # the first page of a chain is always `<size>-0`
        self.marks = {0}
        self.rows: list[Listed] = []

    def wants(self, visible: bool, latest: bool) -> bool:
        return (self.with_deleted or visible) and (not self.latest_only or latest)

    def push(self, row: Listed) -> tuple[int, list[Listed], int] | None:
        """Add a row; the page before it is returned when the row starts a new one."""
        count, key = len(self.rows), row[2]
        natural = count >= self.size // 2 and key % self.modulus == 0
        mark = key % paths.CURSOR_MARKS or 1
        if count and (count == self.size or (natural and mark not in self.marks)):
            while mark in self.marks:  # a forced break on a mark already taken: the next free one
                mark = mark % (paths.CURSOR_MARKS - 1) + 1
            page = (self.mark, self.rows, mark)
            self.mark, self.rows = mark, []
            self.marks.add(mark)
            self.rows.append(row)
            return page
        self.rows.append(row)
        return None

    def close(self) -> tuple[int, list[Listed], int | None]:
        return self.mark, self.rows, None


OPENAPI = Path(__file__).parent.parent / "data" / "openapi-v0.1.yaml"  # shared/upstream's, verbatim


def openapi_document(base_url: str) -> bytes:
    """The v0.1 OpenAPI document, as upstream serves it at /openapi.yaml, with a `servers`
    entry naming this mirror (inserted before `tags:`; the rest stays byte for byte)."""
    spec = OPENAPI.read_bytes()
    servers = b"servers:\n  - url: " + orjson.dumps(base_url.rstrip("/")) + b"\n\n"
    at = spec.find(b"\ntags:")
    return spec[:at + 1] + servers + spec[at + 1:] if at >= 0 else spec + b"\n" + servers


def probe_documents(content: Snapshot, *, profile: Profile, base_url: str) -> Iterator[Entry]:
    """Problems (on hosts that rewrite to them) and the fixed documents clients probe."""
    index = profile.index_name
    yield Entry(paths.OPENAPI_FILE, Kind.DOCUMENT, YAML, openapi_document(base_url))
    if profile.problem_files:
        for slug in paths.PROBLEMS:
            yield Entry(paths.problem_file(slug), Kind.DOCUMENT, PROBLEM_JSON, _json(paths.problem_body(slug)))
    for directory, value in (
        (paths.api_dir("health"), {"status": "ok"}),
        (paths.api_dir("ping"), {"pong": True}),
        # The data's own snapshot, not the last crawl's: an unchanged upstream changes nothing here.
        (paths.api_dir("version"), {"version": f"mcp-mirror {__version__}", "git_commit": f"snapshot-{content.id}",
                                    "build_time": content.finished_at}),
    ):
        yield Entry(paths.view_file(directory, index=index), Kind.DOCUMENT, JSON, profile.document(_json(value)))


def _json(value: Any) -> bytes:
    return orjson.dumps(value)
