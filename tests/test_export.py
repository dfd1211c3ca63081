"""`mcp-mirror export`: DuckDB's writers, read back with DuckDB, equal the snapshot."""

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from mirror import pipeline
from mirror.cli import cli
from mirror.store import CHANGE_COLUMNS, EXPORT_COLUMNS, open_store

READERS = {"jsonl": "read_json('{}', format = 'newline_delimited')", "parquet": "read_parquet('{}')",
           "csv": "read_csv('{}', header = true, all_varchar = true)"}


@pytest.fixture
def synced(upstream, settings):
    pipeline.build(settings)
    entry = upstream.registry.entries[3]
    upstream.registry.set_status(entry["server"]["name"], entry["server"]["version"], "deprecated", "old")
    pipeline.build(settings)
    return settings


def read_back(path, fmt):
    con = duckdb.connect()
    try:
        relation = con.sql(f"SELECT * FROM {READERS[fmt].format(path)}")
        return relation.columns, relation.fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_versions_round_trip(synced, tmp_path, fmt):
    out = tmp_path / f"v.{fmt}"
    result = CliRunner().invoke(cli, ["export", "--db", str(synced.db), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0, result.output
    with open_store(synced.db) as store:
        snapshot = store.ok_snapshot()
        rows = store.load_rows(snapshot.id)
    assert result.output == f"{len(rows)} rows (versions of snapshot {snapshot.id}) -> {out}\n"
    columns, found = read_back(out, fmt)
    assert tuple(columns) == EXPORT_COLUMNS
    assert len(found) == len(rows) == snapshot.rows
    for row, got in list(zip(rows, found, strict=True))[::17]:  # a sample, in (name, version) order
        record = dict(zip(columns, got, strict=True))
        assert (record["name"], record["version"], record["sha256"]) == (row.name, row.version, row.hash)
        assert str(record["snapshot_id"]) == str(snapshot.id)
        assert str(record["is_latest"]).lower() == str(row.is_latest).lower()
        if fmt == "jsonl":  # nested as an object: the same JSON value
            assert orjson.loads(out.read_bytes().splitlines()[found.index(got)])["document"] == row.item()
        else:  # the document's text, byte for byte
            assert record["document"].encode() == row.doc


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_changes_round_trip(synced, tmp_path, fmt):
    out = tmp_path / f"c.{fmt}"
    written = pipeline.export(synced, out, fmt=fmt, changes=True)
    with open_store(synced.db) as store:
        expected = store.load_changes(1) + store.load_changes(2)
    columns, found = read_back(out, fmt)
    assert tuple(columns) == CHANGE_COLUMNS
    assert written.rows == len(found) == len(expected)
    last = dict(zip(columns, found[-1], strict=True))
    assert (last["kind"], str(last["snapshot_id"])) == ("status_changed", "2")
    detail = last["detail"] if isinstance(last["detail"], dict) else orjson.loads(last["detail"])
    assert detail == {"from": "active", "to": "deprecated", "message": "old"}
    only = pipeline.export(synced, tmp_path / f"only.{fmt}", fmt=fmt, changes=True, snapshot_id=2)
    assert only.rows == 1


def test_the_default_file_name_and_a_missing_snapshot(synced, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "--db", str(synced.db)]).exit_code == 0
    assert (tmp_path / "versions-2.jsonl").is_file()
    missing = runner.invoke(cli, ["export", "--db", str(synced.db), "--snapshot", "9"])
    assert missing.exit_code == 1 and missing.output.startswith("mcp-mirror: error: no snapshot 9")
    assert not list(tmp_path.glob(".*.partial"))
