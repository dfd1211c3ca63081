"""Pydantic models for what the mirror relies on, plus the mirror's own records.

Upstream entries are validated with these models but stored and re-emitted as the
raw JSON document, so fields the mirror does not know survive byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mirror import paths

OFFICIAL = "io.modelcontextprotocol.registry/official"
Status = Literal["active", "deprecated", "deleted"]
ChangeKind = Literal["server_added", "version_added", "version_updated", "status_changed", "latest_changed",
                     "version_removed", "server_removed"]
CrawlMode = Literal["full", "incremental"]
Outcome = Literal["ok", "failed"]


def parse_time(value: str) -> datetime:
    """RFC 3339 as upstream writes it (variable fraction digits, `Z` or offset)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Official(_Open):
    """`_meta["io.modelcontextprotocol.registry/official"]`: the registry's bookkeeping."""

    status: Status = "active"
    statusChangedAt: str | None = None
    statusMessage: str | None = None
    publishedAt: str | None = None
    updatedAt: str | None = None
    isLatest: bool = False

    @field_validator("statusChangedAt", "publishedAt", "updatedAt")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value


class ServerDetail(_Open):
    """The `server` object (server.json). Only identity fields are checked strictly."""

    name: str
    version: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if problem := paths.name_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if problem := paths.version_problem(value):
            raise ValueError(problem)
        return value


class ServerResponse(_Open):
    """One item of a v0.1 list: `{"server": ..., "_meta": ...}`."""

    server: ServerDetail
    meta: dict[str, Any] | None = Field(default=None, alias="_meta")

    @field_validator("meta")
    @classmethod
    def _official(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and OFFICIAL in value:
            Official.model_validate(value[OFFICIAL])
        return value

    @property
    def official(self) -> Official:
        return Official.model_validate((self.meta or {}).get(OFFICIAL) or {})


class ListMetadata(_Open):
    nextCursor: str | None = None
    count: int | None = None


class ServerListPage(BaseModel):
    """A list page as received: items stay raw so one bad entry cannot sink the page."""

    model_config = ConfigDict(extra="allow")

    servers: list[Any]
    metadata: ListMetadata


@dataclass(frozen=True)
class Unparsed:
    """A list item the JSON parser cannot read even alone (nested past orjson's 1024 levels,
    text that is not JSON): kept in its page so admission rejects it, and only it, with
    `reason`. `name` and `version` are what a cheap scan of its bytes found."""

    reason: str
    size: int
    name: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class Row:
    """One (name, version) of a snapshot; `doc` is the upstream item, compact JSON."""

    name: str
    version: str
    hash: str
    status: str
    is_latest: bool
    published_at: str | None
    updated_at: str | None
    doc: bytes = field(repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.version)

    @property
    def published_sort_key(self) -> tuple[float, str]:
        when = parse_time(self.published_at).timestamp() if self.published_at else 0.0
        return (when, self.version)

    def item(self) -> dict[str, Any]:
        return orjson.loads(self.doc)


@dataclass(frozen=True)
class Rejected:
    """An upstream entry that failed validation: kept with the reason, never dropped silently."""

    position: int
    name: str | None
    version: str | None
    reason: str
    doc: bytes = field(repr=False)


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    name: str
    version: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "version": self.version, **self.detail}


@dataclass(frozen=True)
class DatedChange:
    """A recorded change with the snapshot that found it and when that crawl finished.

    `number` is its place among every recorded change, 0 for the oldest, counted so that
    newest-first order (snapshot descending, each snapshot's in recorded order) is number
    descending. A change keeps its number as later crawls add theirs, which keeps pages of
    older changes the same bytes."""

    snapshot: int
    seq: int
    at: str
    change: Change
    number: int


@dataclass(frozen=True)
class CrawlRun:
    """What a crawl knows about itself; the store gives it an id when it lands."""

    started_at: str
    finished_at: str
    upstream: str
    mode: CrawlMode = "full"
    requests: int = 0  # HTTP requests sent, retries included
    watermark: str | None = None  # largest updatedAt of the snapshot's rows
    since: str | None = None  # the updated_since an incremental crawl sent
    note: str | None = None  # why a full crawl ran, or what the crawl noticed
    source: int | None = None  # the upstream mirror's feed snapshot this one equals


@dataclass(frozen=True)
class Snapshot:
    id: int
    started_at: str
    finished_at: str | None
    upstream: str
    mode: CrawlMode
    outcome: Outcome
    error: str | None
    rows: int
    servers: int
    rejected: int
    requests: int = 0
    watermark: str | None = None
    since: str | None = None
    note: str | None = None
    source: int | None = None


@dataclass(frozen=True)
class Delta:
    """What changed in one snapshot whose data changed, for the change feed: its change
    records, and each (name, version) whose document changed (None: gone from the snapshot).
    `previous` is the snapshot whose data it changes."""

    snapshot: Snapshot
    previous: int
    changes: list[Change]
    rows: list[tuple[str, str, bytes | None]]


def is_visible(row: Row) -> bool:
    """Whether a row is served without include_deleted: the one visibility rule."""
    return row.status != "deleted"


def latest_row(rows: Iterable[Row]) -> Row | None:
    """The version flagged isLatest; upstream breaks ties by newest publishedAt."""
    flagged = [row for row in rows if row.is_latest]
    return max(flagged, key=lambda row: row.published_sort_key) if flagged else None


def with_latest_flag(doc: bytes, flag: bool) -> bytes:
    """The document with official isLatest set to `flag`, every other byte as it was (orjson
    keeps key order, and upstream documents are compact JSON as orjson writes them)."""
    item = orjson.loads(doc)
    item["_meta"][OFFICIAL]["isLatest"] = flag
    return orjson.dumps(item)


def content_hash(doc: bytes) -> str:
    return hashlib.sha256(doc).hexdigest()


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


def row_from_item(item: dict[str, Any], *, doc: bytes | None = None) -> Row:
    """Validate one upstream item; raises pydantic.ValidationError when it is unusable.
    `doc` is the item already encoded, when the caller has it."""
    parsed = ServerResponse.model_validate(item)
    official = parsed.official
    doc = orjson.dumps(item) if doc is None else doc
    return Row(
        name=parsed.server.name,
        version=parsed.server.version,
        hash=content_hash(doc),
        status=official.status,
        is_latest=official.isLatest,
        published_at=official.publishedAt,
        updated_at=official.updatedAt,
        doc=doc,
    )
