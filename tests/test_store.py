import dataclasses

import duckdb
import pytest
from factories import item, row, with_status

from mirror.errors import SchemaTooNew, SnapshotNotFound, StoreError
from mirror.models import CrawlRun, row_from_item
from mirror.store import SCHEMA_VERSION, load_migrations, open_store

NAME = "io.github.x/y"


RUN = CrawlRun(started_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:00:01Z", upstream="http://up")


def save(store, rows):
    return store.save_snapshot(RUN, rows=rows, rejected=[], changes=[])


def test_migrations_are_numbered_from_one_and_idempotent(tmp_path):
    assert sorted(load_migrations()) == list(range(1, SCHEMA_VERSION + 1))
    db = tmp_path / "m.duckdb"
    with open_store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with open_store(db) as store:
        store.migrate()
        assert store.schema_version() == SCHEMA_VERSION
        assert store.table_counts()["snapshots"] == 0


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path):
    db = tmp_path / "m.duckdb"
    with open_store(db) as store:
        save(store, [row(NAME, "1.0.0", latest=True)])
        store.con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 1])
    with pytest.raises(SchemaTooNew, match="newer than this mcp-mirror"), open_store(db):
        pass
    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM versions").fetchone() == (1,)
    con.close()


def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path):
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("hello, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot open"), open_store(bogus):
        pass
    with pytest.raises(StoreError, match="no snapshot database"), open_store(tmp_path / "missing.duckdb",
                                                                            create=False):
        pass


def test_history_grows_with_changes_not_with_crawls(tmp_path):
    first = item(NAME, "1.0.0", latest=True)
    rows = [row_from_item(first), row("io.github.x/z", "2.0.0", latest=True)]
    with open_store(tmp_path / "m.duckdb") as store:
        for _ in range(5):
            save(store, rows)
        assert store.table_counts()["versions"] == 2
        assert store.table_counts()["documents"] == 2
        changed = [row_from_item(with_status(first, "deprecated")), rows[1]]
        sid = save(store, changed).id
        assert store.table_counts()["versions"] == 3
        assert [r.status for r in store.load_rows(sid)] == ["deprecated", "active"]
        assert [r.status for r in store.load_rows(1)] == ["active", "active"]
        assert [r.doc for r in store.load_rows(3)] == [r.doc for r in rows]


def test_every_past_snapshot_is_reproducible(tmp_path):
    versions = [[row(NAME, "1.0.0", latest=True)],
                [row(NAME, "1.0.0"), row(NAME, "1.1.0", latest=True)],
                [row(NAME, "1.1.0", latest=True)],
                [row(NAME, "1.0.0"), row(NAME, "1.1.0", latest=True)]]
    with open_store(tmp_path / "m.duckdb") as store:
        ids = [save(store, rows).id for rows in versions]
        for sid, rows in zip(ids, versions, strict=True):
            assert [(r.key, r.hash) for r in store.load_rows(sid)] == [(r.key, r.hash) for r in rows]


def test_a_failed_save_leaves_the_previous_snapshot_current(tmp_path):
    with open_store(tmp_path / "m.duckdb") as store:
        good = save(store, [row(NAME, "1.0.0", latest=True)])
        broken = dataclasses.replace(row(NAME, "2.0.0"), doc=b"\xff not utf-8")
        with pytest.raises(UnicodeDecodeError):  # fails inside the transaction, after the snapshot row went in
            store.save_snapshot(RUN, rows=[row(NAME, "1.0.0"), broken], rejected=[], changes=[])
        assert store.latest_ok_snapshot().id == good.id
        assert [r.version for r in store.load_rows(good.id)] == ["1.0.0"]
        assert store.table_counts()["versions"] == 1


def test_failed_crawls_are_listed_but_never_current(tmp_path):
    with open_store(tmp_path / "m.duckdb") as store:
        good = save(store, [row(NAME, "1.0.0", latest=True)])
        store.record_failure(RUN, "upstream unreachable")
        assert [s.outcome for s in store.list_snapshots()] == ["ok", "failed"]
        assert store.ok_snapshot().id == good.id
        with pytest.raises(SnapshotNotFound, match="did not finish"):
            store.ok_snapshot(2)
        with pytest.raises(SnapshotNotFound, match="no snapshot 9"):
            store.ok_snapshot(9)


def test_changes_are_numbered_from_the_oldest_so_older_numbers_never_move(tmp_path):
    from mirror.models import Change

    def crawl(store, names):
        return store.save_snapshot(RUN, rows=[], rejected=[],
                                   changes=[Change("server_added", name, "1.0.0") for name in names]).id

    with open_store(tmp_path / "c.duckdb") as store:
        first = crawl(store, ["a/1", "a/2", "a/3"])
        before = [(c.change.name, c.number) for c in store.iter_changes(first, limit=100)]
        second = crawl(store, ["b/1", "b/2"])
        after = [(c.change.name, c.number) for c in store.iter_changes(second, limit=100)]
        newest = [(c.change.name, c.number) for c in store.iter_changes(second, limit=3)]
    # newest first: snapshot descending, each snapshot's in recorded order, which is number descending
    assert before == [("a/1", 2), ("a/2", 1), ("a/3", 0)]
    assert after == [("b/1", 4), ("b/2", 3), *before]
    assert newest == after[:3]


def test_a_failure_that_ended_the_transaction_is_the_error_reported(tmp_path):
    """DuckDB ends a transaction itself on some failures (a full disk): rolling back then
    fails too, and that must not replace the error that mattered."""
    with open_store(tmp_path / "m.duckdb") as store:
        with pytest.raises(OSError, match="No space left on device"), store.transaction():
            store.con.execute("ROLLBACK")  # the transaction is gone, as after DuckDB's own abort
            raise OSError(28, "No space left on device")
        with pytest.raises(OSError, match="No space left on device"), store.snapshot_writer():
            store.con.execute("ROLLBACK")
            raise OSError(28, "No space left on device")
