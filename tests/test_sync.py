"""Incremental sync against the fixture upstream over HTTP: the rows it fetches, the snapshot
it reaches (equal to a full crawl's), isLatest, removals, and the inputs that force a full crawl."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from factories import item
from trees import comparable_tree

from mirror import pipeline
from mirror.fake_upstream import FakeUpstream
from mirror.models import OFFICIAL
from mirror.settings import Settings
from mirror.store import open_store

BASE = datetime(2025, 1, 1, tzinfo=UTC)


def registry_of(servers: int) -> list[dict]:
    """`servers` servers of one version each, published an hour apart (so few share a watermark)."""
    entries = []
    for i in range(servers):
        when = (BASE + timedelta(hours=i)).isoformat().replace("+00:00", "Z")
        entries.append(item(f"io.github.sync/s{i:04d}", "1.0.0", latest=True, published=when))
    return entries


def settings_for(upstream, tmp_path, name: str, **extra) -> Settings:
    return Settings(upstream=upstream.url, db=tmp_path / f"{name}.duckdb", out=tmp_path / name,
                    base_url="http://mirror.test", **extra)


def sent(upstream, since: int = 0) -> list[dict]:
    return [parse_qs(urlsplit(target).query) for target in upstream.registry.requests[since:]]


def full_copy(upstream, tmp_path, name: str = "full") -> dict[str, bytes]:
    """The tree one full crawl of the upstream as it is now renders."""
    settings = settings_for(upstream, tmp_path, name)
    pipeline.build(settings, full=True)
    return comparable_tree(settings.out)


def latest_of(settings: Settings, name: str) -> str:
    path = settings.out / "v0.1" / "servers" / name / "versions" / "latest"
    view = path / "index.json" if (path / "index.json").exists() else path / "include-deleted.json"
    return orjson.loads(view.read_bytes())["server"]["version"]


def test_an_incremental_run_fetches_about_n_over_limit_pages_and_equals_a_full_crawl(tmp_path):
    with FakeUpstream(registry_of(500)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        first = pipeline.build(settings)
        # is it another mcp-mirror (its change feed and state document: 404), then 5 pages and an empty one,
        # then the rows updated while it ran (none)
        assert (first.crawl.snapshot.mode, first.crawl.snapshot.requests) == ("full", 9)
        registry = upstream.registry
        changes = 150
        for i in range(0, changes, 3):  # a new version (moves isLatest), an edit and a deprecation
            registry.publish({**item(f"io.github.sync/s{i:04d}", "1.1.0")["server"]})
            registry.edit(f"io.github.sync/s{i + 1:04d}", "1.0.0", description="edited")
            registry.set_status(f"io.github.sync/s{i + 2:04d}", "1.0.0", "deprecated", "use s0000")
        before = len(registry.requests)
        second = pipeline.build(settings)
        snapshot = second.crawl.snapshot
        assert snapshot.mode == "incremental"
        assert snapshot.requests == len(registry.requests) - before == changes // 100 + 1  # 150 rows: 2 pages
        assert all("updated_since" in query for query in sent(upstream, before))
        assert second.crawl.refetched == []  # every returned latest settles its server
        assert (snapshot.rows, snapshot.servers) == (550, 500)
        assert second.crawl.change_counts == {"version_added": 50, "latest_changed": 50, "version_updated": 50,
                                              "status_changed": 50}
        assert latest_of(settings, "io.github.sync/s0000") == "1.1.0"
        assert comparable_tree(settings.out) == full_copy(upstream, tmp_path)


def test_unchanged_rows_are_stored_once(tmp_path):
    with FakeUpstream(registry_of(120)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        pipeline.crawl(settings)
        upstream.registry.edit("io.github.sync/s0007", "1.0.0", description="edited")
        pipeline.crawl(settings)
        pipeline.crawl(settings)
        with open_store(settings.db) as store:
            counts = store.table_counts()
            assert [s.mode for s in store.list_snapshots()] == ["full", "incremental", "incremental"]
            assert len(store.load_rows(3)) == 120
    assert (counts["versions"], counts["documents"]) == (121, 121)  # one more row for the one edit


@pytest.mark.parametrize("change", ["delete-latest", "delete-all", "restore", "publish-lower", "publish-prerelease"])
def test_latest_answers_equal_upstreams_after_each_kind_of_change(tmp_path, change):
    name = "io.github.sync/multi"
    entries = registry_of(30) + [item(name, v, latest=(v == "2.0.0"), published=f"2025-06-0{i + 1}T00:00:00Z")
                                 for i, v in enumerate(["1.0.0", "1.5.0", "2.0.0"])]
    with FakeUpstream(entries) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        pipeline.build(settings)
        registry = upstream.registry
        if change == "delete-latest":  # latest moves to 1.5.0, whose updatedAt upstream leaves alone
            registry.set_status(name, "2.0.0", "deleted")
        elif change == "delete-all":
            for version in ("1.0.0", "1.5.0", "2.0.0"):
                registry.set_status(name, version, "deleted")
        elif change == "restore":
            registry.set_status(name, "2.0.0", "deleted")
            pipeline.build(settings)
            registry.set_status(name, "2.0.0", "active")  # latest moves back: 1.5.0 loses it silently
        elif change == "publish-lower":
            registry.publish(item(name, "1.9.0")["server"])
        else:
            registry.publish(item(name, "3.0.0-rc.1")["server"])
        result = pipeline.build(settings)
        assert result.crawl.snapshot.mode == "incremental"
        upstream_latest = registry.handle("GET", f"/v0.1/servers/{name.replace('/', '%2F')}/versions/latest"
                                                 "?include_deleted=true")
        expected = orjson.loads(upstream_latest[2])["server"]["version"]
        assert latest_of(settings, name) == expected
        # refetched exactly when the rows cannot say where the flag went
        assert result.crawl.refetched == ([name] if change == "delete-latest" else [])
        assert comparable_tree(settings.out) == full_copy(upstream, tmp_path)


def test_removals_are_found_by_the_periodic_full_crawl(tmp_path):
    now = [datetime.now(UTC)]
    with FakeUpstream(registry_of(40)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror", full_every="24h")
        pipeline.crawl(settings, clock=lambda: now[0])
        upstream.registry.remove("io.github.sync/s0003", "1.0.0")
        now[0] += timedelta(hours=1)
        hourly = pipeline.crawl(settings, clock=lambda: now[0])
        assert hourly.snapshot.mode == "incremental" and hourly.snapshot.rows == 40  # cannot see it
        now[0] += timedelta(hours=23, minutes=1)
        daily = pipeline.crawl(settings, clock=lambda: now[0])
    assert daily.snapshot.mode == "full" and daily.snapshot.rows == 39
    assert daily.plan.reason.startswith("the last full crawl (snapshot 1) is 24.0 h old")
    assert daily.change_counts == {"server_removed": 1, "version_removed": 1}


def test_a_watermark_in_the_future_is_reported_and_answered_with_a_full_crawl(tmp_path):
    entries = registry_of(20)
    entries[5]["_meta"][OFFICIAL]["updatedAt"] = "2099-01-01T00:00:00Z"
    with FakeUpstream(entries) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        pipeline.crawl(settings)
        second = pipeline.crawl(settings)
    assert second.snapshot.mode == "full"
    assert second.warnings == [second.plan.warning]
    assert second.plan.warning.startswith("watermark 2099-01-01T00:00:00Z of snapshot 1 is in the future")
    assert "\n" not in second.plan.warning


def test_a_clock_jump_is_reported_and_answered_with_a_full_crawl(tmp_path):
    now = datetime.now(UTC)
    with FakeUpstream(registry_of(20)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        pipeline.crawl(settings, clock=lambda: now)
        jumped = pipeline.crawl(settings, clock=lambda: now - timedelta(hours=3))
    assert jumped.snapshot.mode == "full"
    assert jumped.plan.warning.startswith("clock jump: the local clock (")
    assert "\n" not in jumped.plan.warning


def test_an_upstream_that_ignores_updated_since_is_reported_and_answered_with_a_full_crawl(tmp_path):
    with FakeUpstream(registry_of(250)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        pipeline.build(settings)
        upstream.registry.ignore_updated_since = True
        upstream.registry.edit("io.github.sync/s0001", "1.0.0", description="edited")
        before = len(upstream.registry.requests)
        result = pipeline.build(settings)
        queries = sent(upstream, before)
        assert comparable_tree(settings.out) == full_copy(upstream, tmp_path)
    assert result.crawl.snapshot.mode == "full"
    assert result.crawl.plan.warning.startswith("the upstream ignored updated_since=")
    # the first page tells (the pages fetched ahead of it are dropped), then a full crawl of 3 pages
    since = ["updated_since" in q for q in queries]
    assert since[0] and since.count(False) == 3 and since.count(True) <= 3
    assert 4 <= result.crawl.snapshot.requests <= len(queries)
    assert result.crawl.change_counts == {"version_updated": 1}


def test_snapshots_lists_mode_requests_and_why(tmp_path):
    from click.testing import CliRunner

    from mirror.cli import cli

    with FakeUpstream(registry_of(20)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        runner = CliRunner()
        for flags in ([], [], ["--full"]):
            done = runner.invoke(cli, ["crawl", "--upstream", upstream.url, "--db", str(settings.db), *flags])
            assert done.exit_code == 0, done.output
        listed = runner.invoke(cli, ["snapshots", "--db", str(settings.db)]).output.splitlines()
    fields = [line.split("\t") for line in listed]
    # a full crawl also asks whether the upstream is another mcp-mirror (its feed and state), and at
    # its end for the rows updated while it ran
    assert [(f[2], f[3]) for f in fields] == [("full", "4 requests"), ("incremental", "1 requests"),
                                              ("full", "4 requests")]
    assert [f[-1].split(" (")[0] for f in fields] == ["no full snapshot yet", fields[1][-1].split(" (")[0], "--full"]
    assert fields[1][-1].startswith("rows updated since ")


def test_a_full_crawl_reports_pages_out_of_those_expected(tmp_path):
    class Recorder:
        def __init__(self):
            self.messages, self.counts = [], []

        def __call__(self, message):
            self.messages.append(message)

        def count(self, done, total):
            self.counts.append((done, total))

    with FakeUpstream(registry_of(250)) as upstream:
        settings = settings_for(upstream, tmp_path, "mirror")
        first, again = Recorder(), Recorder()
        pipeline.crawl(settings, progress=first)
        pipeline.crawl(settings, full=True, progress=again)
    assert first.counts == [(1, None), (2, None), (3, None)]  # nothing to go by yet
    assert again.counts == [(1, 3), (2, 3), (3, 3)]  # the last snapshot's 250 rows: 3 pages
    assert again.messages[-1] == "crawled 3 pages, 250 rows"


def test_a_full_crawl_holds_the_rows_published_and_changed_while_it_ran(tmp_path):
    """Keyset cursors never see a row that sorts before the cursor once the crawl is past it:
    the closing updated_since request brings them in, and settles the isLatest they moved."""
    now = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    with FakeUpstream(registry_of(250)) as upstream:
        registry = upstream.registry
        registry.clock = lambda: now
        registry.publish(item("io.github.sync/s0003", "2.0.0")["server"])  # latest until deleted mid-crawl
        answer = registry.handle
        events = []

        def handle(method, target):
            query = parse_qs(urlsplit(target).query)
            if not urlsplit(target).path.endswith("/servers"):  # is it another mcp-mirror?
                return answer(method, target)
            if "cursor" in query and "updated_since" not in query and "published" not in events:  # page 2
                events.append("published")
                registry.publish(item("io.github.sync/a-early", "1.0.0")["server"])  # before the cursor
                registry.publish(item("io.github.sync/z-late", "1.0.0")["server"])  # after it
                registry.publish(item("io.github.sync/s0000", "2.0.0")["server"])  # takes isLatest from 1.0.0
                registry.edit("io.github.sync/s0001", "1.0.0", description="edited mid-crawl")
                registry.set_status("io.github.sync/s0002", "1.0.0", "deprecated")
                registry.set_status("io.github.sync/s0003", "2.0.0", "deleted")  # 1.0.0 is latest again, unbumped
            events.append("updated_since" if "updated_since" in query else "page")
            return answer(method, target)

        registry.handle = handle
        settings = settings_for(upstream, tmp_path, "mirror")
        result = pipeline.build(settings)
        asked = sent(upstream)
        registry.handle = answer
        assert comparable_tree(settings.out) == full_copy(upstream, tmp_path)
    assert events == ["page", "published", "page", "page", "updated_since"]  # then s0003's versions
    # once, from the first page's Date less 5 min
    assert [q["updated_since"] for q in asked if "updated_since" in q] == [["2026-06-01T11:55:00.000000Z"]]
    with open_store(settings.db, create=False) as store:
        rows = {row.key: row for row in store.load_rows(result.crawl.snapshot.id)}
    assert len(rows) == 254 and {("io.github.sync/a-early", "1.0.0"), ("io.github.sync/z-late", "1.0.0")} <= set(rows)
    assert [rows[("io.github.sync/s0000", v)].is_latest for v in ("1.0.0", "2.0.0")] == [False, True]
    assert orjson.loads(rows[("io.github.sync/s0001", "1.0.0")].doc)["server"]["description"] == "edited mid-crawl"
    assert rows[("io.github.sync/s0002", "1.0.0")].status == "deprecated"
    assert [rows[("io.github.sync/s0003", v)].is_latest for v in ("1.0.0", "2.0.0")] == [True, False]
    # no row the crawl or the closing request got says where s0003's flag went: fetched again
    assert result.crawl.refetched == ["io.github.sync/s0003"] and result.crawl.rejected == []


def test_a_full_crawl_of_an_upstream_that_ignores_updated_since_asks_once_and_says_so(tmp_path):
    with FakeUpstream(registry_of(150)) as upstream:
        upstream.registry.ignore_updated_since = True
        result = pipeline.crawl(settings_for(upstream, tmp_path, "mirror"))
        asked = sent(upstream)
    assert [("updated_since" in q, q.get("cursor")) for q in asked if "limit" in q] == [
        (False, None), (False, ["io.github.sync/s0099:1.0.0"]), (True, None)]  # no second crawl
    assert result.snapshot.rows == 150
    assert result.warnings == [result.plan.warning] and "ignored updated_since=" in result.warnings[0]
    assert "may wait for the next one" in result.warnings[0]
