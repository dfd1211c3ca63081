"""Curation: what `--policy` and `--local` make of a snapshot's rows.

`policy` decides on one row and `sources` reads the organization's own files; this module
puts them together with the store's rows, once, for render, publish_bucket and explain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mirror import hosts, policy, sources
from mirror.models import Row, Snapshot
from mirror.render import Site, catalog
from mirror.render.feeds import FEED_DEPTH
from mirror.settings import Settings
from mirror.store import Store


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

    def site(self, store: Store, snapshot: Snapshot, *, base_url: str,
             profile: hosts.Profile) -> tuple[Site, CuratedRows]:
        """The site of a snapshot as curated, with the store's change history. A curated site
        has no fingerprint: the policy and local files are inputs the store's rows do not show,
        and its counts per rule come from a render, so it is always rendered."""
        content = store.content_snapshot(snapshot.id)
        rows = self.rows(lambda: store.iter_rows(snapshot.id), snapshot_time=content.finished_at or "")
        site = Site(snapshot, rows if self.active else rows.upstream, base_url=base_url, profile=profile,
                    content=content, deltas=lambda: store.deltas(content.id, depth=FEED_DEPTH),
                    changes=lambda: store.iter_changes(snapshot.id, limit=catalog.CHANGES_SHOWN),
                    fingerprint=None if self.active else store.fingerprint(snapshot.id),
                    decided=rows.decided if self.active else None)
        return site, rows

    def decided(self, rows: Iterable[Row], *, snapshot_time: str) -> Iterator[policy.Decided]:
        """Every row of the snapshot and the local servers, with the policy's decision: what the
        governance outputs are made of (deny entries need the excluded rows too)."""
        local = sources.local_rows(list(self.local), snapshot_time=snapshot_time)
        return policy.decide_servers(sources.merged(rows, local, prefer=self.policy.prefer), self.policy)

    def explain(self, rows: Iterable[Row], name: str, version: str | None = None, *,
                snapshot_time: str) -> list[tuple[Row, policy.Decision]]:
        """Each version of `name` (or just `version`) in `rows` and the local servers, with the
        policy's decision on it."""
        local = sources.local_rows(list(self.local), snapshot_time=snapshot_time)
        upstream = [row for row in rows if row.name == name]
        merged = list(sources.merged(upstream, [row for row in local if row.name == name], prefer=self.policy.prefer))
        return [(row, self.policy.decide(row)) for row in merged if version is None or row.version == version]


class CuratedRows:
    """A re-iterable row source with the policy applied and the local rows merged in; the
    counts are those of the latest pass (every pass sees the same rows)."""

    def __init__(self, curator: Curator, rows: Callable[[], Any], local: list[Row]) -> None:
        self.curator, self.upstream, self.local = curator, rows, local
        self.report = policy.Curation()
        self.collisions: list[str] = []

    def decided(self) -> Iterator[policy.Decided]:
        """Every row with its decision, admitted or not (a pass of its own: the counts stay
        those of the latest render pass)."""
        rows = sources.merged(self.upstream(), self.local, prefer=self.curator.policy.prefer)
        return policy.decide_servers(rows, self.curator.policy)

    def __call__(self) -> Iterator[Row]:
        self.report, self.collisions = policy.Curation(), []
        rows = sources.merged(self.upstream(), self.local, prefer=self.curator.policy.prefer,
                              collisions=self.collisions)
        return policy.curate(rows, self.curator.policy, report=self.report)
