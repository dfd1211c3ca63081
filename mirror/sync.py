"""Crawling: which crawl to run (plan_crawl), running it page by page into a new snapshot,
and following another mcp-mirror through its change feed.

pipeline.crawl opens the store and the HTTP client; this module does the rest, so the crawl
loop has one home apart from the other commands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from queue import Empty, Queue
from typing import Any, TypeVar

import httpx

from mirror import hosts, paths, registry
from mirror.admission import Admitter, rejected_row
from mirror.diff import diff_rows
from mirror.errors import MirrorError, UpstreamError
from mirror.models import OFFICIAL, CrawlRun, Rejected, Snapshot, Unparsed, parse_time
from mirror.settings import Settings
from mirror.store import CARRIED, CONVERGED, REFETCHED, Store

Progress = Callable[[str], None]

T = TypeVar("T")


def _count(progress: Progress | None, done: int, total: int | None) -> None:
    """Pages done out of those expected, for a progress display that draws a bar (its
    `count` method; a plain callable only gets the messages)."""
    count = getattr(progress, "count", None)
    if callable(count):
        count(done, total)


@dataclass(frozen=True)
class CrawlPlan:
    """Which crawl to run and why: `full` fetches every row (the only way to see a row vanish
    upstream), `incremental` asks for the rows updated since `since` and carries the rest over."""

    mode: str
    reason: str
    since: str | None = None
    warning: str | None = None  # something wrong that forced a full crawl, in one line


@dataclass(frozen=True)
class CrawlResult:
    snapshot: Snapshot
    change_counts: dict[str, int]  # by kind; the changes themselves are in the store (`diff`)
    rejected: list[Rejected]
    pages: int
    plan: CrawlPlan | None = None
    refetched: list[str] = field(default_factory=list)  # servers fetched again whole (isLatest)

    @property
    def changes(self) -> int:
        return sum(self.change_counts.values())

    @property
    def warnings(self) -> list[str]:
        return [self.plan.warning] if self.plan and self.plan.warning else []


def iso_time(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# updated_since is the last watermark minus this: upstream's filter is a strict `>` on
# updatedAt, and a row committed late in a transaction may carry an earlier time.
OVERLAP = timedelta(minutes=5)
# A watermark this far past the local clock is not a clock skew but a wrong clock or row.
FUTURE_TOLERANCE = timedelta(minutes=5)


def plan_crawl(previous: Snapshot | None, last_full: Snapshot | None, *, upstream: str, now: datetime,
               full: bool = False, full_every: float = 86400.0) -> CrawlPlan:
    """Full or incremental, from what the store says of the last crawls. Pure."""
    if full:
        return CrawlPlan("full", "--full")
    if previous is None or last_full is None:
        return CrawlPlan("full", "no full snapshot yet")
    if previous.upstream != upstream:
        return CrawlPlan("full", f"the upstream changed from {previous.upstream}")
    finished = _parsed(previous.finished_at)
    if finished is not None and now < finished:
        return CrawlPlan("full", "clock jump", warning=(
            f"clock jump: the local clock ({iso_time(now)}) is before the last crawl finished "
            f"({previous.finished_at}); running a full crawl"))
    watermark = _parsed(previous.watermark)
    if watermark is None:
        return CrawlPlan("full", "the last snapshot has no watermark")
    if watermark > now + FUTURE_TOLERANCE:
        return CrawlPlan("full", "watermark in the future", warning=(
            f"watermark {previous.watermark} of snapshot {previous.id} is in the future (now {iso_time(now)}): "
            "the upstream's clock or a row's updatedAt is wrong; running a full crawl"))
    started = _parsed(last_full.started_at)
    age = (now - started).total_seconds() if started else float("inf")
    if age >= full_every:
        return CrawlPlan("full", f"the last full crawl (snapshot {last_full.id}) is {_hours(age)} old "
                                 f"(--full-every {_hours(full_every)})")
    since = iso_time(watermark - OVERLAP)
    return CrawlPlan("incremental", f"rows updated since {since} (watermark {previous.watermark} minus "
                                    f"{OVERLAP.total_seconds() / 60:g} min)", since=since)


def _parsed(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds:.0f} s"


class _IgnoredSince(Exception):
    """The upstream sent rows older than the updated_since it was given: it ignores the filter."""


def crawl(store: Store, http: httpx.Client, settings: Settings, *, full: bool = False,
          progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], datetime] | None = None,
          monotonic: Callable[[], float] = time.monotonic) -> CrawlResult:
    """Plan and run one crawl into a new snapshot of `store`; a failed one is recorded as such.
    `clock` dates it; `monotonic` and `sleep` time its deadlines and pace (registry.Budget)."""
    clock = clock or (lambda: datetime.now(UTC))
    began = clock()
    started = iso_time(began)
    previous = store.latest_ok_snapshot()
    plan = plan_crawl(previous, store.last_full_snapshot(), upstream=settings.upstream, now=began, full=full,
                      full_every=settings.full_every)
    limits = registry.CrawlLimits(deadline=settings.deadline, response_deadline=settings.response_deadline,
                                  rate=settings.rate)
    budget = registry.Budget.start(limits, sleep, monotonic)

    def run(done: CrawlPlan, source: int | None = None) -> CrawlRun:
        return CrawlRun(started, iso_time(clock()), settings.upstream, mode=done.mode, requests=budget.requests,
                        since=done.since, note=done.warning or done.reason, source=source)

    try:
        # Another mcp-mirror is followed through its change feed. Whether the upstream is
        # one is asked on full crawls only (its feed, then its state: two requests), then
        # known from the snapshot's `source`.
        feed = None
        if plan.mode == "full" or (previous is not None and previous.source is not None):
            feed = registry.fetch_document(http, paths.Urls(settings.upstream).feed(), budget=budget,
                                           missing_ok=True)
        if feed is not None:
            return _follow_feed(store, plan, previous, feed, http, budget, settings, progress, run)
        if plan.mode == "full":
            _refuse_a_tree_without_feed(http, budget, settings.upstream)
        try:
            return _crawl_once(store, plan, previous, http, budget, settings, progress, run, began)
        except _IgnoredSince as exc:
            plan = CrawlPlan("full", "the upstream ignored updated_since", warning=str(exc))
            return _crawl_once(store, plan, previous, http, budget, settings, progress, run, began)
    except MirrorError as exc:
        with contextlib.suppress(Exception):  # the crawl's error is the one to report
            store.record_failure(run(plan), str(exc))
        raise


def _crawl_once(store: Store, plan: CrawlPlan, previous: Snapshot | None, http: httpx.Client,
                budget: registry.Budget, settings: Settings, progress: Progress | None,
                run: Callable[..., CrawlRun], began: datetime) -> CrawlResult:
    incremental = plan.mode == "incremental" and previous is not None
    since = _parsed(plan.since) if incremental else None
    pages = rows_seen = 0
    admitter = Admitter()
    returned: set[tuple[str, str]] = set()
    refetched: list[str] = []
    upstream_began: datetime | None = None
    with store.snapshot_writer() as writer:
        for page in prefetched(registry.iter_pages(http, settings.upstream, updated_since=plan.since if incremental
                                                   else None, budget=budget)):
            pages += 1
            if upstream_began is None:
                upstream_began = page.served_at or began
            if since is not None and (stale := _not_after(page.items, since)):
                raise _IgnoredSince(f"the upstream ignored updated_since={plan.since}: it sent {stale} updated "
                                    f"before it ({page.url}); running a full crawl")
            writer.add(admitter.admit(page.items, start=rows_seen))
            returned.update(_keys(page.items))
            rows_seen += len(page.items)
            if progress:
                progress(f"crawled {pages} pages, {rows_seen} rows")
                # a full crawl's pages are about the last snapshot's rows over the page size
                _count(progress, pages, None if incremental or previous is None
                       else max(pages, previous.rows // registry.PAGE_LIMIT + 1))
        if incremental:
            writer.carry_over(previous.id, returned)
            unsure = {r.name for r in admitter.rejected if r.name}
            settled = _settle_latest(writer, admitter, http, budget, settings, progress,
                                     writer.settle_latest({name for name, _ in returned}, unsure=unsure))
            pages += settled.pages
            refetched += settled.refetched
            returned.update(settled.keys)
            admitter.add_known(writer.carried())
        else:
            converged = _converge(writer, admitter, http, budget, settings, (upstream_began or began) - OVERLAP,
                                  progress)
            pages += converged.pages
            refetched += converged.refetched
            if converged.warning:
                plan = dataclasses.replace(plan, warning=plan.warning or converged.warning)
        losers = admitter.settle(writer.smallest)
        rejected = sorted(admitter.rejected + [rejected_row(position, row, losers[position])
                                               for position, row in writer.drop(losers)],
                          key=lambda rej: rej.position)
        rejected += carried_rejected(store, previous, returned, refetched) if incremental else []
        snapshot = _finish(writer, run(dataclasses.replace(plan, mode="incremental" if incremental else "full")),
                           previous, rejected)
    return CrawlResult(snapshot=snapshot.snapshot, change_counts=snapshot.counts, rejected=rejected, pages=pages,
                       plan=plan, refetched=refetched)


@dataclass(frozen=True)
class _Converged:
    pages: int
    refetched: list[str]
    warning: str | None = None


def _converge(writer: Any, admitter: Admitter, http: httpx.Client, budget: registry.Budget, settings: Settings,
              since: datetime, progress: Progress | None) -> _Converged:
    """After the last page of a full crawl, ask once for the rows updated since it began (in
    upstream's clock, the first page's Date, less the overlap) and let them replace what the
    crawl staged: keyset cursors never see a row published or changed before the cursor
    while the crawl ran. isLatest is settled as an incremental crawl settles it."""
    asked = iso_time(since)
    pages = 0
    names: set[str] = set()
    position = CONVERGED
    for page in registry.iter_pages(http, settings.upstream, updated_since=asked, budget=budget):
        pages += 1
        if stale := _not_after(page.items, since):
            return _Converged(pages, [], f"the upstream ignored updated_since={asked} after the full crawl: it sent "
                                         f"{stale} updated before it ({page.url}); rows published during the "
                                         "crawl may wait for the next one")
        keys = set(_keys(page.items))
        writer.discard(keys)
        admitter.forget_keys(keys)
        writer.add(admitter.admit(page.items, start=position))
        position += len(page.items)
        names.update(name for name, _ in keys)
        if progress and page.items:
            progress(f"merged {position - CONVERGED} rows updated during the crawl")
    unsure = {r.name for r in admitter.rejected if r.name and r.position >= CONVERGED}
    settled = _settle_latest(writer, admitter, http, budget, settings, progress,
                             writer.settle_latest(names, unsure=unsure, fresh_from=CONVERGED))
    return _Converged(pages + settled.pages, settled.refetched)


@dataclass(frozen=True)
class _Settled:
    pages: int
    refetched: list[str]
    keys: set[tuple[str, str]]


def _settle_latest(writer: Any, admitter: Admitter, http: httpx.Client, budget: registry.Budget,
                   settings: Settings, progress: Progress | None, names: Iterable[str]) -> _Settled:
    """Fetch each server whose isLatest the staged rows leave in doubt whole again, and let
    its versions replace what was staged: one ending for the incremental and the full crawl."""
    refetched: list[str] = []
    keys: set[tuple[str, str]] = set()
    position = REFETCHED
    for name in names:
        page = registry.fetch_versions(http, settings.upstream, name, budget=budget)
        admitter.forget(name)
        writer.replace_server(name, admitter.admit(page.items, start=position))
        keys.update(_keys(page.items))
        position += len(page.items)
        refetched.append(name)
        if progress:
            progress(f"fetched {name} again to settle isLatest")
    return _Settled(len(refetched), refetched, keys)


@dataclass(frozen=True)
class _Landed:
    snapshot: Snapshot
    counts: dict[str, int]


def carried_rejected(store: Store, previous: Snapshot, returned: set[tuple[str, str]],
                     refetched: Iterable[str] = ()) -> list[Rejected]:
    """Entries refused before and not sent again: still upstream, still refused."""
    again = set(refetched)
    return [dataclasses.replace(r, position=CARRIED + r.position) for r in store.load_rejected(previous.id)
            if (r.name, r.version) not in returned and r.name not in again]


def _finish(writer: Any, crawl_run: CrawlRun, previous: Snapshot | None, rejected: list[Rejected]) -> _Landed:
    """Diff the staged rows against the previous snapshot, record the changes and commit."""
    still_upstream = {(r.name, r.version) for r in rejected}  # rejected is not removed
    counts: Counter[str] = Counter()
    for old_rows, new_rows in writer.changed_servers(previous.id if previous else None):
        changes = diff_rows(old_rows, new_rows, full=True, still_upstream=still_upstream)
        counts.update(change.kind for change in changes)
        writer.record_changes(changes)
    return _Landed(writer.commit(crawl_run, rejected=rejected), dict(counts))


def _refuse_a_tree_without_feed(http: httpx.Client, budget: registry.Budget, upstream: str) -> None:
    """A tree an older mcp-mirror made for a host that cannot route queries has no feed, and its
    list holds the latest versions only: crawling it would make a wrong mirror, so say so."""
    state = registry.fetch_document(http, paths.Urls(upstream).state(), budget=budget, missing_ok=True)
    host = state.get("host") if isinstance(state, dict) else None
    if isinstance(host, dict) and not hosts.Capabilities.from_json(host).routes_queries:
        raise UpstreamError(f"{upstream} is an mcp-mirror tree for a host without query routing and without a "
                            "change feed: its list holds only the latest versions",
                            hint="render it again with this mcp-mirror, which adds the feed, or crawl its upstream")


@dataclass(frozen=True)
class _Feed:
    """A change feed's index as a follower needs it, checked: only feed page paths are kept."""

    current: int
    base: list[str]
    deltas: list[tuple[int, int, list[str]]]  # (snapshot, previous, pages), newest first


def _read_feed(index: dict, url: str) -> _Feed:
    def bad(why: str) -> UpstreamError:
        return UpstreamError(f"the upstream's change feed is malformed ({why}): {url}",
                             hint="is --upstream a tree made by mcp-mirror?")

    def pages(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(p, str) and paths.FEED_PAGE_RE.fullmatch(p)
                                                  for p in value):
            raise bad("a page is not a feed page path")
        return value

    snapshot, base = index.get("snapshot"), index.get("base")
    if not isinstance(snapshot, dict) or type(snapshot.get("id")) is not int or not isinstance(base, dict):
        raise bad("no snapshot id or base")
    deltas = []
    for delta in index.get("deltas") or []:
        if not isinstance(delta, dict) or not isinstance(delta.get("snapshot"), dict):
            raise bad("a delta has no snapshot")
        sid, previous = delta["snapshot"].get("id"), delta.get("previous")
        if type(sid) is not int or type(previous) is not int:
            raise bad("a delta has no snapshot id or previous")
        deltas.append((sid, previous, pages(delta.get("pages"))))
    return _Feed(snapshot["id"], pages(base.get("pages")), deltas)


def _follow_feed(store: Store, plan: CrawlPlan, previous: Snapshot | None, index: dict, http: httpx.Client,
                 budget: registry.Budget, settings: Settings, progress: Progress | None,
                 run: Callable[..., CrawlRun]) -> CrawlResult:
    """Crawl another mcp-mirror through its change feed: the deltas after the snapshot of it we
    have, oldest first, or its base (every row, deleted ones included) when there is no
    chain from ours to its current one: a first or full crawl, a gap, or a feed gone back."""
    urls = paths.Urls(settings.upstream)
    feed = _read_feed(index, urls.feed())
    chain: list[tuple[int, int, list[str]]] | None = None
    if plan.mode == "incremental" and previous is not None and previous.source is not None:
        have = previous.source
        if feed.current < have:
            plan = CrawlPlan("full", "the upstream mirror went back", warning=(
                f"the upstream mirror went back from snapshot {have} to {feed.current}; reading its base"))
        elif feed.current == have:
            chain = []
        else:
            after = sorted((d for d in feed.deltas if d[0] > have), key=lambda d: d[0])
            linked = bool(after) and after[0][1] == have and after[-1][0] == feed.current and all(
                b[1] == a[0] for a, b in zip(after, after[1:], strict=False))
            if linked:
                chain = after
            else:
                plan = CrawlPlan("full", "a gap in the upstream mirror's feed", warning=(
                    f"the upstream mirror's feed has no unbroken chain from snapshot {have} to {feed.current} "
                    f"(a gap, or older than the {len(feed.deltas)} deltas it lists); reading its base"))
    if chain is not None:
        plan = CrawlPlan("incremental", f"the upstream mirror's deltas from snapshot {previous.source} "
                                        f"to {feed.current}")
    elif plan.mode != "full":
        plan = CrawlPlan("full", "no snapshot of the upstream mirror's feed yet")
    admitter = Admitter()
    pages = rows_seen = 0
    returned: set[tuple[str, str]] = set()
    with store.snapshot_writer() as writer:
        if chain is None:
            for path in feed.base:
                page = registry.fetch_document(http, urls.tree_file(path), budget=budget)
                items = page.get("servers")
                if not isinstance(items, list):
                    raise UpstreamError(f"the upstream's feed base page has no servers list: {urls.tree_file(path)}")
                pages += 1
                writer.add(admitter.admit(items, start=rows_seen))
                rows_seen += len(items)
                if rows_seen > budget.limits.max_rows:
                    raise UpstreamError(f"the upstream mirror's feed base holds more than {budget.limits.max_rows} "
                                        f"rows: {urls.tree_file(path)}", hint="the crawl was not saved")
                if progress:
                    progress(f"read {pages} of {len(feed.base)} base pages of the upstream mirror, {rows_seen} rows")
                    _count(progress, pages, len(feed.base))
        else:
            final: dict[tuple[str, str], Any] = {}
            for _, _, delta_pages in chain:
                for path in delta_pages:
                    page = registry.fetch_document(http, urls.tree_file(path), budget=budget)
                    pages += 1
                    if len(final) > budget.limits.max_rows:
                        raise UpstreamError(f"the upstream mirror's deltas hold more than {budget.limits.max_rows} "
                                            f"rows: {urls.tree_file(path)}", hint="the crawl was not saved")
                    for record in page.get("rows") if isinstance(page.get("rows"), list) else []:
                        if isinstance(record, dict) and isinstance(record.get("name"), str) \
                                and isinstance(record.get("version"), str):
                            key = (record["name"], record["version"])
                            final[key] = None if record.get("removed") is True else record.get("document")
            returned = set(final)
            writer.add(admitter.admit([doc for doc in final.values() if doc is not None]))
            writer.carry_over(previous.id, returned)
            admitter.add_known(writer.carried())
        losers = admitter.settle(writer.smallest)
        rejected = sorted(admitter.rejected + [rejected_row(position, row, losers[position])
                                               for position, row in writer.drop(losers)],
                          key=lambda rej: rej.position)
        if chain is not None:
            rejected += carried_rejected(store, previous, returned)
        landed = _finish(writer, run(plan, source=feed.current), previous, rejected)
    return CrawlResult(snapshot=landed.snapshot, change_counts=landed.counts, rejected=rejected, pages=pages,
                       plan=plan)


def _keys(items: Iterable[Any]) -> Iterator[tuple[str, str]]:
    for item in items:
        if isinstance(item, Unparsed):  # refused, but returned: what was kept of it gives way
            if item.name is not None and item.version is not None:
                yield item.name, item.version
            continue
        server = item.get("server") if isinstance(item, dict) else None
        if isinstance(server, dict) and isinstance(server.get("name"), str) and isinstance(server.get("version"), str):
            yield server["name"], server["version"]


def _not_after(items: Iterable[Any], since: datetime) -> int:
    """How many items carry an updatedAt at or before `since` (none, from an honest upstream)."""
    count = 0
    for item in items:
        meta = item.get("_meta") if isinstance(item, dict) else None
        official = meta.get(OFFICIAL) if isinstance(meta, dict) else None
        updated = official.get("updatedAt") if isinstance(official, dict) else None
        when = _parsed(updated) if isinstance(updated, str) else None
        if when is not None and when <= since:
            count += 1
    return count


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
