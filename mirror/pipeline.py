"""The commands as a Python API: crawl a snapshot, diff two, render one, or all three.

Each function takes Settings and returns a result object; `cli` only formats them. The
work is done elsewhere: crawling in `sync`, curation in `curation`, the tree in `render`
and `publish`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from mirror import governance, hosts, paths, policy, registry, sync
from mirror.curation import Curator
from mirror.diff import KINDS, diff_rows
from mirror.errors import RenderError, UsageError
from mirror.models import Change, Rejected, Row, Snapshot
from mirror.publish import LocalTarget, Progress, PublishResult, publish, write_atomically
from mirror.render.api import Skipped
from mirror.settings import DEFAULT_BASE_URL, Settings
from mirror.store import open_store
from mirror.sync import CrawlResult
from mirror.verify import Report, verify_tree, verify_url


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


def crawl(settings: Settings, *, full: bool = False, client: httpx.Client | None = None,
          progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], datetime] | None = None,
          monotonic: Callable[[], float] = time.monotonic) -> CrawlResult:
    """Fetch the upstream into a new snapshot, in one transaction: every row (full), or the
    rows updated since the last watermark merged into the previous snapshot (incremental,
    the default once a full snapshot exists; see sync.plan_crawl). Pages are validated and
    staged in the database as they arrive, so memory stays flat. `clock` dates the snapshot;
    `monotonic` and `sleep` time the crawl's deadlines and pace (registry.Budget)."""
    with open_store(settings.db) as store, contextlib.ExitStack() as owned:
        http = client or owned.enter_context(registry.make_client(settings.timeout))
        return sync.crawl(store, http, settings, full=full, progress=progress, sleep=sleep, clock=clock,
                          monotonic=monotonic)


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


def configured_for(out: Path, *, profile: str | None, base_url: str | None) -> tuple[str, str]:
    """The profile and base URL a host's configuration is for: the tree's own, from its state
    document, when `out` holds a rendered tree (arguments that disagree are refused: a config
    for another profile or URL would serve the tree wrongly); else the arguments."""
    state = next((out / paths.state_file(index) for index in (paths.DEFAULT_VIEW, "index.html")
                  if (out / paths.state_file(index)).is_file()), None)
    if state is None:
        if profile is None:
            raise UsageError(f"{out} holds no rendered tree, so its profile is not known",
                             hint="give the PROFILE, or render first")
        return profile, base_url or DEFAULT_BASE_URL
    try:
        record = orjson.loads(state.read_bytes())
        rendered, tree_url = hosts.Capabilities.from_json(record.get("host")).profile, record["baseUrl"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RenderError(f"{state} is not a mirror state document", hint="render the site again") from exc
    if profile is not None and profile != rendered:
        raise UsageError(f"{out} was rendered for the {rendered} profile, not {profile}",
                         hint=f"drop the argument, or render again with --profile {profile}")
    if base_url is not None and base_url.rstrip("/") != str(tree_url).rstrip("/"):
        raise UsageError(f"{out} was rendered for {tree_url}, not {base_url}",
                         hint="drop --base-url, or render again with it")
    return rendered, str(tree_url)


def check_output(settings: Settings) -> hosts.Profile:
    """Refuse a bad output before any work is done; the host profile it is for."""
    profile = hosts.get_profile(settings.profile)
    if settings.out.exists() and not settings.out.is_dir():
        raise RenderError(f"output path {settings.out} is a file, not a directory", hint="pass another --out")
    return profile


def explain(settings: Settings, name: str, version: str | None = None, *,
            snapshot_id: int | None = None) -> list[tuple[Row, policy.Decision]]:
    """Each version of `name` (or just `version`) in the snapshot and --local, with the
    policy's decision on it."""
    curator = Curator.from_settings(settings)
    with open_store(settings.db, create=False) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        content = store.content_snapshot(snapshot.id)
        return curator.explain(store.iter_rows(snapshot.id), name, version, snapshot_time=content.finished_at or "")


def local_target(settings: Settings, profile: hosts.Profile) -> LocalTarget:
    """The output directory as a publish target (use it as a context manager)."""
    layout = profile.layout
    return LocalTarget(settings.out, manifest_path=layout.manifest_path, state_path=layout.state_path)


def render(settings: Settings, *, snapshot_id: int | None = None, progress: Progress | None = None,
           profile: hosts.Profile | None = None) -> RenderResult:
    """Publish the static tree of a snapshot (default: the latest) at settings.out, atomically
    (`profile`: the one `check_output` already gave, when the caller checked first)."""
    profile = profile or check_output(settings)
    curator = Curator.from_settings(settings)
    with open_store(settings.db, create=False, reading=True) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        site, rows = curator.site(store, snapshot, base_url=settings.base_url, profile=profile)
        with local_target(settings, profile) as target:
            site.folding = target.folds_names
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
                   cloudfront_distribution: str | None = None, cloudfront_client: Any = None,
                   log: Progress | None = None, progress: Progress | None = None) -> BucketResult:
    """Render a snapshot straight into a bucket (s3://bucket/prefix), uploading only what
    the bucket's manifest says changed; see mirror.s3 for the order that keeps it safe, and
    for the whole generations a CloudFront distribution in front makes atomic."""
    from datetime import timedelta

    from mirror import s3

    profile = check_output(settings)
    curator = Curator.from_settings(settings)
    bucket, _ = s3.parse_url(url)
    switch = s3.OriginSwitch(cloudfront_distribution, client=cloudfront_client or s3.make_cloudfront_client(),
                             bucket=bucket) if cloudfront_distribution else None
    target = s3.S3Target(url, client=client or s3.make_client(endpoint_url=endpoint_url),
                         manifest_path=profile.layout.manifest_path, state_path=profile.layout.state_path,
                         grace=timedelta(hours=grace_hours), dry_run=dry_run, log=log, progress=progress,
                         switch=switch)
    with open_store(settings.db, create=False, reading=True) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        site, rows = curator.site(store, snapshot, base_url=settings.base_url, profile=profile)
        published = publish(site, target, progress=progress)
    rendered = RenderResult(snapshot=snapshot, written=published, skipped=site.skipped,
                            curation=rows.report if curator.active else None, collisions=rows.collisions)
    return BucketResult(render=rendered, actions=target.actions, dry_run=dry_run)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    what: str  # "versions of snapshot N" or "changes"


def export(settings: Settings, path: Path, *, fmt: str, snapshot_id: int | None = None,
           changes: bool = False) -> ExportResult:
    """A snapshot's versions, or the change records, as JSON lines, Parquet or CSV."""
    with open_store(settings.db, create=False) as store:
        if changes:
            if snapshot_id is not None:
                store.ok_snapshot(snapshot_id)
            what = "changes" if snapshot_id is None else f"changes of snapshot {snapshot_id}"
        else:
            what = f"versions of snapshot {store.ok_snapshot(snapshot_id).id}"
        rows = store.export(path, fmt=fmt, snapshot_id=snapshot_id, changes=changes)
    return ExportResult(path=path, rows=rows, what=what)


@dataclass(frozen=True)
class GovernanceResult:
    path: Path | None  # None: not written, the caller has the bytes
    snapshot: Snapshot
    output: governance.Output


def export_governance(settings: Settings, path: Path | None, *, fmt: str, snapshot_id: int | None = None,
                      max_bytes: int | None = governance.TOOLHIVE_MAX_BYTES) -> GovernanceResult:
    """One governance file (an allowlist, ToolHive's registry file) of the curated snapshot,
    written whole or not at all."""
    curator = Curator.from_settings(settings)
    with open_store(settings.db, create=False, reading=True) as store:
        snapshot = store.ok_snapshot(snapshot_id)
        content = store.content_snapshot(snapshot.id)
        when = content.finished_at or content.started_at
        output = governance.make(
            fmt, lambda: curator.decided(store.iter_rows(snapshot.id), snapshot_time=when or ""),
            last_updated=when or "", max_bytes=max_bytes)
    try:
        if path is not None:
            write_atomically(path, output.data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", hint="pass another -o") from exc
    return GovernanceResult(path=path, snapshot=snapshot, output=output)


def verify(out: Path, *, against: str | None = None) -> Report:
    """Check a published tree against its manifest, or a deployed copy over HTTP."""
    if against is not None:
        return verify_url(against)
    if not Path(out).is_dir():
        raise RenderError(f"{out} is not a directory", hint="pass the --out of a render")
    return verify_tree(Path(out))


def build(settings: Settings, *, full: bool = False, client: httpx.Client | None = None,
          progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], datetime] | None = None,
          monotonic: Callable[[], float] = time.monotonic) -> BuildResult:
    """Crawl, diff and render; the summary is what `build` prints."""
    began = time.monotonic()
    profile = check_output(settings)  # fail before the crawl, not after it
    Curator.from_settings(settings)  # a bad policy or local file, too
    crawled = crawl(settings, full=full, client=client, progress=progress, sleep=sleep, clock=clock,
                    monotonic=monotonic)
    rendered = render(settings, snapshot_id=crawled.snapshot.id, progress=progress, profile=profile)
    seconds = time.monotonic() - began
    summary = {
        "snapshot": crawled.snapshot.id,
        "mode": crawled.snapshot.mode,
        "requests": crawled.snapshot.requests,
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
