"""The commands as a Python API: crawl a snapshot, diff two, render one, or all three.

Each function takes Settings and returns a result object; `cli` only formats them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue
from typing import Any, TypeVar

import httpx

from mirror import hosts, paths, policy, registry, sources
from mirror.admission import Admitter, rejected_row
from mirror.diff import KINDS, diff_rows
from mirror.errors import MirrorError, RenderError
from mirror.models import Change, CrawlRun, Rejected, Row, Snapshot
from mirror.publish import LocalTarget, PublishResult, publish
from mirror.render import Site
from mirror.render.api import Skipped
from mirror.settings import Settings
from mirror.store import open_store
from mirror.verify import Report, verify_tree, verify_url

Progress = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class CrawlResult:
    snapshot: Snapshot
    change_counts: dict[str, int]  # by kind; the changes themselves are in the store (`diff`)
    rejected: list[Rejected]
    pages: int

    @property
    def changes(self) -> int:
        return sum(self.change_counts.values())


@dataclass(frozen=True)
class DiffResult:
    old: Snapshot | None
    new: Snapshot
    changes: list[Change]
    rejected: list[Rejected]


@dataclass(frozen=True)
class RenderResult:
    snapshot: Snapshot
    written: PublishResult
    skipped: list[Skipped] = field(default_factory=list)  # rows render could not serve
    curation: policy.Curation | None = None  # what --policy/--local did, when given
    collisions: list[str] = field(default_factory=list)  # names both upstream and --local have

    @property
    def warnings(self) -> list[str]:
        return [*self.written.warnings,
                *(f"left {s.name} {s.version} out of the site: {s.reason}" for s in self.skipped)]


@dataclass(frozen=True)
class BuildResult:
    crawl: CrawlResult
    render: RenderResult
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def crawl(settings: Settings, *, client: httpx.Client | None = None,
          progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> CrawlResult:
    """Fetch every row of the upstream into a new snapshot, in one transaction. Pages are
    validated and staged in the database as they arrive, so memory stays flat."""
    started = utc_now()
    with open_store(settings.db) as store:
        previous = store.latest_ok_snapshot()
        pages = rows_seen = 0
        admitter = Admitter()
        own_client = client is None
        http = client or registry.make_client(settings.timeout)
        try:
            with store.snapshot_writer() as writer:
                limits = registry.CrawlLimits(deadline=settings.deadline)
                for page in prefetched(registry.iter_pages(http, settings.upstream, sleep=sleep, limits=limits)):
                    pages += 1
                    writer.add(admitter.admit(page.items, start=rows_seen))
                    rows_seen += len(page.items)
                    if progress:
                        progress(f"crawled {pages} pages, {rows_seen} rows")
                losers = admitter.settle(writer.smallest)
                rejected = sorted(admitter.rejected + [rejected_row(position, row, losers[position])
                                                       for position, row in writer.drop(losers)],
                                  key=lambda rej: rej.position)
                still_upstream = {(r.name, r.version) for r in rejected}  # rejected is not removed
                counts: Counter[str] = Counter()
                for old_rows, new_rows in writer.changed_servers(previous.id if previous else None):
                    changes = diff_rows(old_rows, new_rows, full=True, still_upstream=still_upstream)
                    counts.update(change.kind for change in changes)
                    writer.record_changes(changes)
                snapshot = writer.commit(CrawlRun(started, utc_now(), settings.upstream), rejected=rejected)
        except MirrorError as exc:
            with contextlib.suppress(Exception):  # the crawl's error is the one to report
                store.record_failure(CrawlRun(started, utc_now(), settings.upstream), str(exc))
            raise
        finally:
            if own_client:
                http.close()
    return CrawlResult(snapshot=snapshot, change_counts=dict(counts), rejected=rejected, pages=pages)


def prefetched(pages: Iterator[T], *, depth: int = 2) -> Iterator[T]:
    """`pages`, fetched by a thread up to `depth` ahead, so the network wait of the next
    page overlaps the validation and staging of this one. Errors arrive in order."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                queue.put(("page", page))
            queue.put(("done", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put(("error", exc))

    worker = threading.Thread(target=produce, name="mcp-mirror-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        with contextlib.suppress(Empty):
            while True:
                queue.get_nowait()  # unblock a producer waiting to put


def diff(settings: Settings, *, from_id: int | None = None, to_id: int | None = None) -> DiffResult:
    """Changes between two finished snapshots; by default the latest and the one before."""
    with open_store(settings.db, create=False) as store:
        new = store.ok_snapshot(to_id)
        old = store.ok_snapshot(from_id) if from_id is not None else store.previous_ok_snapshot(new.id)
        previous = store.previous_ok_snapshot(new.id)
        if (old is None and previous is None) or (old is not None and previous is not None and old.id == previous.id):
            changes = store.load_changes(new.id)  # exactly what was recorded at crawl time
        else:
            old_rows = store.load_rows(old.id) if old else []
            rejected_keys = {(r.name, r.version) for r in store.load_rejected(new.id)}
            changes = diff_rows(old_rows, store.load_rows(new.id), still_upstream=rejected_keys)
        return DiffResult(old=old, new=new, changes=changes, rejected=store.load_rejected(new.id))


def check_output(settings: Settings) -> None:
    """Refuse a bad output before any work is done."""
    hosts.get_profile(settings.profile)
    if settings.out.exists() and not settings.out.is_dir():
        raise RenderError(f"output path {settings.out} is a file, not a directory", hint="pass another --out")


@dataclass(frozen=True)
class Curator:
    """What `--policy` and `--local` make of a snapshot's rows, read once before any work."""

    policy: policy.Policy = policy.EVERYTHING
    local: tuple[sources.LocalServer, ...] = ()
    active: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Curator:
        chosen = policy.read(settings.policy) if settings.policy is not None else policy.EVERYTHING
        local = tuple(sources.read_directory(settings.local)) if settings.local is not None else ()
        return cls(chosen, local, active=settings.policy is not None or settings.local is not None)

    def rows(self, rows: Callable[[], Any], *, snapshot_time: str) -> CuratedRows:
        return CuratedRows(self, rows, sources.local_rows(list(self.local), snapshot_time=snapshot_time))


class CuratedRows:
    """A re-iterable row source with the policy applied and the local rows merged in; the
    counts are those of the latest pass (every pass sees the same rows)."""

    def __init__(self, curator: Curator, rows: Callable[[], Any], local: list[Row]) -> None:
        self.curator, self.upstream, self.local = curator, rows, local
        self.report = policy.Curation()
        self.collisions: list[str] = []

    def __call__(self) -> Iterator[Row]:
        self.report, self.collisions = policy.Curation(), []
        rows = sources.merged(self.upstream(), self.local, prefer=self.curator.policy.prefer,
                              collisions=self.collisions)
        return policy.curate(rows, self.curator.policy, report=self.report)


def explain(settings: Settings, name: str, version: str | None = None, *,
            snapshot_id: int | None = None) -> list[tuple[Row, policy.Decision]]:
    """Each version of `name` (or just `version`) in the snapshot and --local, with the
    policy's decision on it."""
    curator = Curator.from_settings(settings)
    with open_store(settings.db, create=False) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        content = store.content_snapshot(snapshot.id)
        local = sources.local_rows(list(curator.local), snapshot_time=content.finished_at or "")
        upstream = [row for row in store.iter_rows(snapshot.id) if row.name == name]
    rows = list(sources.merged(upstream, [row for row in local if row.name == name], prefer=curator.policy.prefer))
    return [(row, curator.policy.decide(row)) for row in rows if version is None or row.version == version]


def local_target(settings: Settings) -> LocalTarget:
    """The output directory as a publish target (use it as a context manager)."""
    index = hosts.get_profile(settings.profile).index_name
    return LocalTarget(settings.out, manifest_path=paths.manifest_file(index), state_path=paths.state_file(index))


def render(settings: Settings, *, snapshot_id: int | None = None, progress: Progress | None = None) -> RenderResult:
    """Publish the static tree of a snapshot (default: the latest) at settings.out, atomically."""
    check_output(settings)
    curator = Curator.from_settings(settings)
    profile = hosts.get_profile(settings.profile)
    with open_store(settings.db, create=False) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        content = store.content_snapshot(snapshot.id)
        rows = curator.rows(lambda: store.iter_rows(snapshot.id), snapshot_time=content.finished_at or "")
        site = Site(snapshot, rows if curator.active else rows.upstream, base_url=settings.base_url,
                    profile=profile, content=content)
        with local_target(settings) as target:
            published = publish(site, target, progress=progress)
    return RenderResult(snapshot=snapshot, written=published, skipped=site.skipped,
                        curation=rows.report if curator.active else None, collisions=rows.collisions)


@dataclass(frozen=True)
class BucketResult:
    render: RenderResult
    actions: Any  # mirror.s3.Actions: what was (or, dry, would be) uploaded, deleted, deferred
    dry_run: bool


def publish_bucket(settings: Settings, url: str, *, endpoint_url: str | None = None, dry_run: bool = False,
                   grace_hours: float = 24.0, snapshot_id: int | None = None, client: Any = None,
                   log: Progress | None = None, progress: Progress | None = None) -> BucketResult:
    """Render a snapshot straight into a bucket (s3://bucket/prefix), uploading only what
    the bucket's manifest says changed; see mirror.s3 for the order that keeps it safe."""
    from datetime import timedelta

    from mirror import s3

    s3.parse_url(url)
    check_output(settings)
    curator = Curator.from_settings(settings)
    profile = hosts.get_profile(settings.profile)
    index = profile.index_name
    target = s3.S3Target(url, client=client or s3.make_client(endpoint_url=endpoint_url),
                         manifest_path=paths.manifest_file(index), state_path=paths.state_file(index),
                         grace=timedelta(hours=grace_hours), dry_run=dry_run, log=log, progress=progress)
    with open_store(settings.db, create=False) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        content = store.content_snapshot(snapshot.id)
        rows = curator.rows(lambda: store.iter_rows(snapshot.id), snapshot_time=content.finished_at or "")
        site = Site(snapshot, rows if curator.active else rows.upstream, base_url=settings.base_url,
                    profile=profile, content=content)
        published = publish(site, target, progress=progress)
    rendered = RenderResult(snapshot=snapshot, written=published, skipped=site.skipped,
                            curation=rows.report if curator.active else None, collisions=rows.collisions)
    return BucketResult(render=rendered, actions=target.actions, dry_run=dry_run)


def verify(out: Path, *, against: str | None = None) -> Report:
    """Check a published tree against its manifest, or a deployed copy over HTTP."""
    if against is not None:
        return verify_url(against)
    if not Path(out).is_dir():
        raise RenderError(f"{out} is not a directory", hint="pass the --out of a render")
    return verify_tree(Path(out))


def build(settings: Settings, *, client: httpx.Client | None = None, progress: Progress | None = None,
          sleep: Callable[[float], None] = time.sleep) -> BuildResult:
    """Crawl, diff and render; the summary is what `build` prints."""
    began = time.monotonic()
    check_output(settings)  # fail before the crawl, not after it
    Curator.from_settings(settings)  # a bad policy or local file, too
    crawled = crawl(settings, client=client, progress=progress, sleep=sleep)
    rendered = render(settings, snapshot_id=crawled.snapshot.id, progress=progress)
    seconds = time.monotonic() - began
    summary = {
        "snapshot": crawled.snapshot.id,
        "rows": crawled.snapshot.rows,
        "servers": crawled.snapshot.servers,
        "changes": {kind: crawled.change_counts[kind] for kind in KINDS if crawled.change_counts.get(kind)},
        "rejected": len(crawled.rejected),
        "files_written": rendered.written.written,
        "files_unchanged": rendered.written.unchanged,
        "files_removed": rendered.written.removed,
        "seconds": round(seconds, 2),
    }
    if rendered.curation is not None:
        summary["policy"] = {"admitted": rendered.curation.rows_admitted, "excluded": rendered.curation.rows_excluded,
                             "rules": rendered.curation.by_rule(), "collisions": rendered.collisions,
                             "relatest": [f"{name} {version}" for name, version in rendered.curation.relatested]}
    return BuildResult(crawl=crawled, render=rendered, seconds=seconds, summary=summary)
