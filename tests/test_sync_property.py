"""Property: for any sequence of upstream changes, the snapshot incremental syncs reach renders
the same tree as one full crawl of the same upstream state (trees.comparable_tree says
exactly what is left out: the feeds, the manifest and the snapshot ids and times)."""

import itertools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from factories import item
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from trees import comparable_tree

from mirror import pipeline
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings
from mirror.store import open_store

SERVERS = [f"io.github.prop/s{i}" for i in range(3)]
# semver above and below the first, a pre-release, and one that is not semver (publish time decides)
VERSIONS = ["1.0.0", "2.0.0", "0.9.0", "2.0.0-rc.1", "nightly"]
START = datetime(2025, 6, 1, tzinfo=UTC)
KINDS = ["publish", "edit", "deprecate", "delete", "restore"]

change = st.tuples(st.sampled_from(KINDS), st.integers(0, len(SERVERS) - 1), st.integers(0, len(VERSIONS) - 1))
rounds = st.lists(st.lists(change, min_size=1, max_size=6), min_size=1, max_size=4)


def apply(registry, kind: str, name: str, version: str, step: int) -> None:
    present = any(e["server"]["name"] == name and e["server"]["version"] == version for e in registry.entries)
    if not present:
        registry.publish(item(name, version, description=f"published at step {step}")["server"])
    elif kind == "edit":
        registry.edit(name, version, description=f"edited at step {step}")
    elif kind == "deprecate":
        registry.set_status(name, version, "deprecated", f"deprecated at step {step}")
    elif kind == "delete":
        registry.set_status(name, version, "deleted", "gone")
    elif kind in ("restore", "publish"):
        registry.set_status(name, version, "active")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds)
# the latest deleted (its flag moves to a row upstream does not bump), then restored
@example([[("publish", 0, 1)], [("delete", 0, 1)], [("restore", 0, 1), ("deprecate", 1, 0)]])
def test_incremental_syncs_render_what_one_full_crawl_renders(script):
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream([]) as upstream:
        root = Path(tmp)
        # upstream's clock moves 7 minutes a write, past the sync's 5-minute overlap, so each
        # incremental crawl gets only what changed since the one before, as it would hourly
        ticks = itertools.count()
        upstream.registry.clock = lambda: START + timedelta(minutes=7 * next(ticks))
        for name in SERVERS:
            upstream.registry.publish(item(name, "1.0.0")["server"])
        synced = Settings(upstream=upstream.url, db=root / "synced.duckdb", out=root / "synced",
                          base_url="http://mirror.test")
        assert pipeline.crawl(synced).snapshot.mode == "full"
        step = 0
        for batch in script:
            for kind, server, version in batch:
                step += 1
                apply(upstream.registry, kind, SERVERS[server], VERSIONS[version], step)
            snapshot = pipeline.crawl(synced).snapshot
            assert snapshot.mode == "incremental"
            # after every sync, not only the last (a later change can hide an earlier mistake),
            # the rows are the documents a full crawl would store now
            with open_store(synced.db) as store:
                assert {(r.name, r.version): r.doc for r in store.load_rows(snapshot.id)} == {
                    (e["server"]["name"], e["server"]["version"]): orjson.dumps(e) for e in upstream.registry.entries}
        pipeline.render(synced)
        once = Settings(upstream=upstream.url, db=root / "once.duckdb", out=root / "once",
                        base_url="http://mirror.test")
        pipeline.build(once)
        assert comparable_tree(synced.out) == comparable_tree(once.out)
