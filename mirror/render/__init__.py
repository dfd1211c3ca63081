"""Render a snapshot as a stream of entries: the tree, never held in memory whole.

`Site.entries` composes the producers in write order: the v0.1 API documents and the
Server Cards minted beside them (`render.api`, `render.cards`), the host's own files
(`hosts`), the allowlists (`render.governance`), the HTML catalog (`render.catalog`:
assets, server pages, what changed, lists), the ARD catalogs (`render.ard`), then the state
document, which the publisher seals with the manifest's digest. Same snapshot, same entries,
same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from mirror import __version__, paths, policy
from mirror.governance import FORMATS as GOVERNANCE_FORMATS
from mirror.hosts import JSON, Profile
from mirror.models import DatedChange, Row, Snapshot
from mirror.plan import Cache, Entry, Kind, digest
from mirror.render import api, ard, cards, catalog, governance
from mirror.render.api import ApiProducer, Skipped
from mirror.render.feeds import DeltaSource, FeedProducer

# Bumped whenever the same rows would render to different bytes, so a publisher never
# trusts an entry's `source` from an older renderer.
FORMAT = 5

RowSource = Callable[[], Iterable[Row]]
ChangeSource = Callable[[], Iterable[DatedChange]]  # newest first, at most catalog.CHANGES_SHOWN
DecidedSource = Callable[[], Iterable[policy.Decided]]


def row_source(rows: Iterable[Row]) -> RowSource:
    """A re-iterable, sorted row source from an in-memory sequence (tests, small trees)."""
    ordered = sorted(rows, key=lambda row: row.key)
    return lambda: ordered


@dataclass(frozen=True)
class Sealed:
    """What the state document says of the published tree."""

    manifest_path: str
    manifest_sha256: str
    files: int
    bytes: int


class Site:
    """One snapshot rendered for one host profile and base URL."""

    def __init__(self, snapshot: Snapshot, rows: RowSource, *, base_url: str, profile: Profile,
                 content: Snapshot | None = None, deltas: DeltaSource | None = None,
                 changes: ChangeSource | None = None, fingerprint: str | None = None,
                 decided: DecidedSource | None = None) -> None:
        self.snapshot = snapshot
        self.content = content or snapshot  # the snapshot whose data this is (last change)
        # the change feeds, when the store's history is at hand (mirror.render.feeds)
        self._feeds = FeedProducer(profile, self.content, deltas) if deltas is not None else None
        self.rows = rows
        self.changes = changes or (lambda: ())
        # every row with the policy's decision, excluded ones too: the allowlists' deny entries
        self._curated = decided is not None
        self.decided = decided or (lambda: policy.decide_servers(self.rows(), policy.EVERYTHING))
        self._fingerprint = fingerprint
        self.base_url = base_url
        self.profile = profile
        self.context = digest(__version__, str(FORMAT), profile.name, base_url)
        # Same renderer, same rows (`fingerprint`: a digest of every row's key and document
        # hash, from the store) and same content snapshot: every file but the state document
        # is the same bytes. "" when the rows' fingerprint is not known.
        self.content_key = digest(self.context, str(self.content.id), fingerprint) if fingerprint else ""
        self._api = ApiProducer(profile)
        self.folding = False  # set where the output's file system folds case (LocalTarget.folds_names)

    def entries(self) -> Iterator[Entry]:
        """Every file but the state document, in write order."""
        stream = self._entries()
        if not self.profile.needs_ledger:
            yield from stream
            return
        ledger: list[tuple[str, str, Cache]] = []
        for entry in stream:
            ledger.append((entry.path, entry.media_type, entry.cache))
            yield entry
        yield from self.profile.closing_entries(ledger)

    def _entries(self) -> Iterator[Entry]:
        # counts and pointers afresh each pass; Server Cards beside the documents they derive from
        self._api = ApiProducer(self.profile, folding=self.folding,
                                cards=cards.CardMinter(self.profile))
        pages = catalog.CatalogProducer(base_url=self.base_url, index_name=self.profile.index_name,
                                        skip=lambda row: row.key in self._api._skip)
        yield from self._api.documents(self.rows())
        yield from api.probe_documents(self.content, profile=self.profile, base_url=self.base_url)
        yield from self.profile.tree_entries(base_url=self.base_url)
        yield from governance.entries(self._decided, profile=self.profile,
                                      rows_digest=None if self._curated else self._fingerprint)
        yield from pages.assets()
        yield pages.not_found_page(self.state_summary())
        yield self._api.rows_index()
        known = {summary.name for summary in self._api.summaries}
        yield from pages.server_pages(self.rows(), known=known)
        yield from pages.change_pages(self.changes(), known=known)
        yield pages.feed(itertools.islice(self.changes(), catalog.FEED_ENTRIES), known=known,
                         updated=self.content.finished_at or self.content.started_at)
        yield pages.search_index(self._api.summaries)
        yield from ard.catalog(self._api.summaries, base_url=self.base_url, profile=self.profile)
        yield from self._api.lists(self.rows())
        if self._feeds is not None:
            yield from self._feeds.entries(self.rows())
        yield from self._api.pointers()
        yield from pages.list_pages(self.state_summary(), self._api.summaries)

    def _decided(self) -> Iterator[policy.Decided]:
        """The decided rows but those render left out (they are served nowhere)."""
        return (d for d in self.decided() if d.row.key not in self._api._skip)

    @property
    def skipped(self) -> list[Skipped]:
        """Rows of the snapshot that could not be rendered (each left out, never fatal)."""
        return self._api.skipped

    def manifest_path(self) -> str:
        return paths.manifest_file(self.profile.index_name)

    def document_chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """A JSON document made in pieces (the manifest), as this host must serve it."""
        for chunk in chunks:
            yield self.profile.document(chunk)

    def state_summary(self) -> dict[str, Any]:
        """The state document without what only publishing knows."""
        counts = self._api.counts
        urls = paths.Urls(self.base_url)
        return {
            "generator": f"mcp-mirror {__version__}",
            "snapshot": _snapshot_record(self.snapshot),
            "content": _snapshot_record(self.content),
            "baseUrl": self.base_url,
            "counts": {"rows": counts.rows, "servers": counts.servers,
                       **{status: counts.statuses.get(status, 0) for status in ("active", "deprecated", "deleted")},
                       **({"skipped": len(self.skipped)} if self.skipped else {})},
            "api": {"pageSizes": list(paths.PAGE_SIZES), "defaultPageSize": paths.DEFAULT_PAGE_SIZE,
                    "chains": list(paths.CHAINS)} if self.profile.paged else {"pageSizes": [], "chains": []},
            "host": self.profile.capabilities().to_json(),
            "governance": {output.name: {"path": output.tree_path, "url": urls.tree_file(output.tree_path)}
                           for output in GOVERNANCE_FORMATS.values() if output.tree_path is not None},
            **({"changes": {"path": paths.feed_index_file(self.profile.index_name),
                            "url": paths.Urls(self.base_url).feed()}} if self._feeds is not None else {}),
        }

    def state_entry(self, sealed: Sealed) -> Entry:
        """The state document, last of all: it names the manifest that lists every other file."""
        state = self.state_summary()
        state["manifest"] = {"path": sealed.manifest_path, "sha256": sealed.manifest_sha256,
                             "files": sealed.files, "bytes": sealed.bytes}
        body = orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        return Entry(paths.state_file(self.profile.index_name), Kind.STATE, JSON, self.profile.document(body),
                     cache=Cache.STATE)


    def restate(self, served: bytes, *, manifest_sha256: str) -> Entry | None:
        """The state document for this snapshot made from the one served, when that one was
        rendered from this same content (see `content_key`) and sealed by that manifest:
        only the crawl's own record differs. None when it cannot be trusted for that (or it
        reported skipped rows, whose reasons only a render can tell again)."""
        try:
            state = orjson.loads(served)  # a profile's document() keeps the JSON value
            sealed = state["manifest"]
            if (state["content"] != _snapshot_record(self.content) or state["baseUrl"] != self.base_url
                    or sealed["sha256"] != manifest_sha256 or "skipped" in state["counts"]):
                return None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        state["snapshot"] = _snapshot_record(self.snapshot)
        body = orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        return Entry(paths.state_file(self.profile.index_name), Kind.STATE, JSON, self.profile.document(body),
                     cache=Cache.STATE)


def _snapshot_record(snapshot: Snapshot) -> dict[str, Any]:
    return {"id": snapshot.id, "startedAt": snapshot.started_at, "finishedAt": snapshot.finished_at,
            "upstream": snapshot.upstream}
