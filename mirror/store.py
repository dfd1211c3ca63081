"""DuckDB snapshot store: the single source of truth for diff and render.

All SQL lives here and in schema.sql. Every duckdb.Error is translated into a StoreError
that names the file and what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import orjson

from mirror import latest
from mirror.errors import SchemaTooNew, SnapshotNotFound, StoreError
from mirror.models import Change, CrawlRun, DatedChange, Delta, Rejected, Row, Snapshot, content_hash, with_latest_flag

_MIGRATION = re.compile(r"^-- migration (\d+):.*$", re.MULTILINE)
_SNAPSHOT_COLUMNS = ("id, started_at, finished_at, upstream, mode, outcome, error, rows, servers, rejected, "
                     "requests, watermark, since, note, source")
# Staging positions of rows an incremental crawl did not fetch: after any crawl position.
CARRIED = 10**12
REFETCHED = 2 * 10**12
CONVERGED = 3 * 10**12  # rows of a full crawl's closing updated_since request
Carried = tuple[int, str, str, str | None]  # position, name, version, publishedAt
_KEY_COLUMNS = "v.name, v.version, v.hash, v.status, v.is_latest, v.published_at, v.updated_at"
_ROW_COLUMNS = f"{_KEY_COLUMNS}, d.doc"


EXPORT_FORMATS = ("jsonl", "parquet", "csv")
# What `mcp-mirror export` writes (README: Keeping a mirror current), one row per version or change.
EXPORT_COLUMNS = ("snapshot_id", "name", "version", "status", "is_latest", "published_at", "updated_at", "sha256",
                  "document")
CHANGE_COLUMNS = ("snapshot_id", "snapshot_finished_at", "seq", "kind", "name", "version", "detail")


def load_migrations() -> dict[int, str]:
    """schema.sql split into its numbered sections."""
    text = resources.files("mirror").joinpath("schema.sql").read_text(encoding="utf-8")
    marks = list(_MIGRATION.finditer(text))
    return {
        int(m.group(1)): text[m.start() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, m in enumerate(marks)
    }


SCHEMA_VERSION = max(load_migrations())
# DuckDB would cache up to 80% of RAM; a mirror shares its machine, so bound it and let large
# sorts spill to disk. Its indexes must stay in memory, though, and grow with the registry, so
# the bound grows with the database file.
MIN_DUCKDB_MEMORY = 192 * 2**20
# Reading a snapshot back (render, diff, export) sorts only narrow columns and looks documents
# up a batch at a time, so it needs far less; what DuckDB is given beyond that it fills with
# cached blocks, which a render's own peak would add to.
MIN_READING_MEMORY = 64 * 2**20


def duckdb_config(path: Path, *, reading: bool = False) -> dict[str, Any]:
    size = path.stat().st_size if path.exists() else 0
    bound = max(MIN_READING_MEMORY, size) if reading else max(MIN_DUCKDB_MEMORY, 3 * size)
    limit = os.environ.get("MCP_MIRROR_DUCKDB_MEMORY") or f"{bound // 2**20}MB"
    return {"memory_limit": limit, "threads": 2, "preserve_insertion_order": False}


class Store:
    """An open snapshot database. Use `open_store()`; close it when done."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.con = con

    def close(self) -> None:
        self.con.close()

    # -- schema -----------------------------------------------------------------

    def schema_version(self) -> int:
        self.con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(found[0]) if found and found[0] is not None else 0

    def migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} has schema version {current}, newer than this mcp-mirror knows ({SCHEMA_VERSION})",
                hint="upgrade mcp-mirror, or point --db at another file",
            )
        for number, sql in sorted(load_migrations().items()):
            if number <= current:
                continue
            with self.transaction():
                for statement in _statements(sql):
                    self.con.execute(statement)
                self.con.execute("DELETE FROM schema_version")
                self.con.execute("INSERT INTO schema_version VALUES (?)", [number])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self.con.execute("COMMIT")

    def _rollback(self) -> None:
        """Roll back after a failure, which stays the error reported: DuckDB may have ended the
        transaction itself (a full disk does), and its "no transaction is active" must not
        replace "No space left on device"."""
        with suppress(duckdb.Error):
            self.con.execute("ROLLBACK")

    # -- snapshots --------------------------------------------------------------

    def next_snapshot_id(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(id), 0) + 1 FROM snapshots").fetchone()[0])

    def list_snapshots(self) -> list[Snapshot]:
        rows = self.con.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots ORDER BY id").fetchall()
        return [Snapshot(*row) for row in rows]

    def get_snapshot(self, snapshot_id: int) -> Snapshot:
        row = self.con.execute(f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE id = ?", [snapshot_id]).fetchone()
        if row is None:
            raise SnapshotNotFound(f"no snapshot {snapshot_id} in {self.path}", hint="see `mcp-mirror snapshots`")
        return Snapshot(*row)

    def latest_ok_snapshot(self) -> Snapshot | None:
        row = self.con.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return Snapshot(*row) if row else None

    def ok_snapshot(self, snapshot_id: int | None = None) -> Snapshot:
        """The given snapshot if it finished; by default the latest one that did."""
        if snapshot_id is None:
            latest = self.latest_ok_snapshot()
            if latest is None:
                raise SnapshotNotFound(f"{self.path} has no finished snapshot yet", hint="run `mcp-mirror crawl` first")
            return latest
        snapshot = self.get_snapshot(snapshot_id)
        if snapshot.outcome != "ok":
            raise SnapshotNotFound(
                f"snapshot {snapshot_id} did not finish ({snapshot.error or snapshot.outcome})",
                hint="pick another id from `mcp-mirror snapshots`",
            )
        return snapshot

    def last_full_snapshot(self) -> Snapshot | None:
        """The latest finished full crawl: the last time removals upstream could be seen."""
        row = self.con.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE outcome = 'ok' AND mode = 'full' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return Snapshot(*row) if row else None

    def previous_ok_snapshot(self, snapshot_id: int) -> Snapshot | None:
        row = self.con.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE outcome = 'ok' AND id < ? ORDER BY id DESC LIMIT 1",
            [snapshot_id],
        ).fetchone()
        return Snapshot(*row) if row else None

    def load_rows(self, snapshot_id: int) -> list[Row]:
        """Every (name, version) of a finished snapshot, in upstream list order."""
        return list(self.iter_rows(snapshot_id))

    def iter_rows(self, snapshot_id: int, *, batch: int = 2000) -> Iterator[Row]:
        """The rows of a snapshot sorted by (name, version), fetched in batches so a large
        snapshot is never held whole. Only the narrow columns are sorted; each batch's
        documents are looked up by hash afterwards, so DuckDB never sorts (and holds) every
        document. Uses its own cursors, so passes may overlap."""
        keys, docs = self.con.cursor(), self.con.cursor()
        try:
            keys.execute(
                f"""SELECT {_KEY_COLUMNS} FROM versions v
                    WHERE v.valid_from <= $id AND (v.valid_to IS NULL OR v.valid_to > $id)
                    ORDER BY v.name, v.version""",
                {"id": snapshot_id},
            )
            while found := keys.fetchmany(batch):
                by_hash = dict(docs.execute("SELECT hash, doc FROM documents WHERE hash IN (SELECT unnest($hashes))",
                                            {"hashes": list({row[2] for row in found})}).fetchall())
                for row in found:
                    yield Row(*row, doc=by_hash[row[2]].encode())
        finally:
            keys.close()
            docs.close()

    def fingerprint(self, snapshot_id: int) -> str:
        """A digest of every row of a snapshot (key and document hash), computed in the
        database without reading a document or sorting: equal fingerprints, equal rows."""
        found = self.con.execute(
            """SELECT count(*), bit_xor(md5_number(name || chr(0) || version || chr(0) || hash))
               FROM versions WHERE valid_from <= $id AND (valid_to IS NULL OR valid_to > $id)""",
            {"id": snapshot_id}).fetchone()
        return f"{found[0]}:{found[1] or 0:x}"

    def content_snapshot(self, snapshot_id: int) -> Snapshot:
        """The snapshot in which the rows of `snapshot_id` last changed: an unchanged crawl
        renders the same documents, so they name the data's snapshot, not the crawl's."""
        found = self.con.execute(
            """SELECT max(x) FROM (
                 SELECT max(valid_from) AS x FROM versions WHERE valid_from <= $id
                 UNION ALL SELECT max(valid_to) FROM versions WHERE valid_to <= $id)""",
            {"id": snapshot_id},
        ).fetchone()
        changed = found[0] if found and found[0] is not None else None
        if changed is None:
            return self.get_snapshot(snapshot_id)
        # a removal lands in the snapshot whose id closes the range; only finished ones count
        row = self.con.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE outcome = 'ok' AND id >= ? AND id <= ? "
            "ORDER BY id LIMIT 1", [changed, snapshot_id]).fetchone()
        return Snapshot(*row) if row else self.get_snapshot(snapshot_id)

    def deltas(self, snapshot_id: int, *, depth: int) -> list[Delta]:
        """What changed in each of the last `depth` snapshots up to `snapshot_id` whose data
        changed, newest first (the change feed). The first snapshot with data has no delta:
        followers start from the feed's base."""
        marks = [int(r[0]) for r in self.con.execute(
            """SELECT DISTINCT x FROM (SELECT valid_from AS x FROM versions
                                      UNION ALL SELECT valid_to FROM versions WHERE valid_to IS NOT NULL)
               WHERE x <= $id ORDER BY x DESC LIMIT $n""", {"id": int(snapshot_id), "n": depth + 1}).fetchall()]
        found = []
        for sid, previous in zip(marks, marks[1:], strict=False):
            changed = self.con.execute(
                """SELECT v.name, v.version, d.doc FROM versions v JOIN documents d USING (hash)
                   WHERE v.valid_from = $id
                   UNION ALL
                   SELECT v.name, v.version, NULL FROM versions v WHERE v.valid_to = $id AND NOT EXISTS (
                     SELECT 1 FROM versions w WHERE w.name = v.name AND w.version = v.version AND w.valid_from = $id)
                   ORDER BY 1, 2""", {"id": sid}).fetchall()
            found.append(Delta(self.get_snapshot(sid), previous, self.load_changes(sid),
                               [(name, version, doc.encode() if doc is not None else None)
                                for name, version, doc in changed]))
        return found

    def save_snapshot(self, run: CrawlRun, *, rows: Sequence[Row], rejected: Sequence[Rejected],
                      changes: Sequence[Change]) -> Snapshot:
        """Record a finished crawl in one transaction: all of it lands, or none of it."""
        with self.snapshot_writer() as writer:
            writer.add(list(enumerate(rows)))
            return writer.commit(run, rejected=rejected, changes=changes)

    @contextmanager
    def snapshot_writer(self) -> Iterator[SnapshotWriter]:
        """A snapshot filled page by page inside one transaction; it lands on `commit`, and
        nothing of it does if the block raises (or the process dies)."""
        self.con.execute("BEGIN TRANSACTION")
        writer = SnapshotWriter(self)
        try:
            yield writer
        except BaseException:
            self._rollback()
            raise
        if not writer.committed:
            self.con.execute("ROLLBACK")

    def record_failure(self, run: CrawlRun, error: str) -> None:
        """Note a crawl that did not land, so `snapshots` can show it; touches nothing else."""
        with self.transaction():
            self.con.execute(
                f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, 'failed', ?, 0, 0, 0, ?, NULL, ?, ?, NULL)",
                [self.next_snapshot_id(), run.started_at, run.finished_at, run.upstream, run.mode, error,
                 run.requests, run.since, run.note],
            )

    def load_changes(self, snapshot_id: int) -> list[Change]:
        found = self.con.execute(
            "SELECT kind, name, version, detail FROM changes WHERE snapshot_id = ? ORDER BY seq", [snapshot_id]
        ).fetchall()
        return [Change(kind, name, version, orjson.loads(detail)) for kind, name, version, detail in found]

    def iter_changes(self, snapshot_id: int, *, limit: int, batch: int = 2000) -> Iterator[DatedChange]:
        """The last `limit` changes recorded by finished crawls up to `snapshot_id`, newest
        snapshot first (each snapshot's in recorded order), numbered (DatedChange.number)
        and fetched in batches."""
        cursor = self.con.cursor()
        try:
            cursor.execute(
                """WITH numbered AS (
                       SELECT c.snapshot_id, c.seq,
                              row_number() OVER (ORDER BY c.snapshot_id, c.seq DESC) - 1 AS number
                       FROM changes c JOIN snapshots s ON s.id = c.snapshot_id
                       WHERE s.outcome = 'ok' AND c.snapshot_id <= $id),
                   newest AS (SELECT * FROM numbered ORDER BY number DESC LIMIT $limit)
                   SELECT c.snapshot_id, c.seq, coalesce(s.finished_at, s.started_at), c.kind, c.name, c.version,
                          c.detail, n.number
                   FROM newest n JOIN changes c USING (snapshot_id, seq) JOIN snapshots s ON s.id = c.snapshot_id
                   ORDER BY n.number DESC""",
                {"id": snapshot_id, "limit": limit},
            )
            while found := cursor.fetchmany(batch):
                for sid, seq, at, kind, name, version, detail, number in found:
                    yield DatedChange(sid, seq, at, Change(kind, name, version, orjson.loads(detail)), number)
        finally:
            cursor.close()

    def load_rejected(self, snapshot_id: int) -> list[Rejected]:
        found = self.con.execute(
            "SELECT seq, name, version, reason, doc FROM rejected WHERE snapshot_id = ? ORDER BY seq", [snapshot_id]
        ).fetchall()
        return [Rejected(seq, name, version, reason, doc.encode()) for seq, name, version, reason, doc in found]

    def export(self, path: Path, *, fmt: str, snapshot_id: int | None = None, changes: bool = False) -> int:
        """Write a snapshot's versions (or the change records) to `path` with DuckDB's own
        writer (COPY ... TO), atomically: a temporary file beside it, renamed when complete.
        Gives the number of rows written. The columns are EXPORT_COLUMNS / CHANGE_COLUMNS."""
        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"unknown export format {fmt!r}", hint=f"choose one of: {', '.join(EXPORT_FORMATS)}")
        as_json = fmt == "jsonl"  # JSON documents nested as objects; parquet and csv carry their text
        doc = "CAST({} AS JSON)" if as_json else "{}"
        if changes:
            where = "" if snapshot_id is None else f"AND c.snapshot_id = {int(snapshot_id)}"
            query = (f"SELECT c.snapshot_id, s.finished_at AS snapshot_finished_at, c.seq, c.kind, c.name, c.version, "
                     f"{doc.format('c.detail')} AS detail FROM changes c JOIN snapshots s ON s.id = c.snapshot_id "
                     f"WHERE s.outcome = 'ok' {where} ORDER BY c.snapshot_id, c.seq")
        else:
            sid = int(self.ok_snapshot(snapshot_id).id)
            query = (f"SELECT {sid} AS snapshot_id, v.name, v.version, v.status, v.is_latest, v.published_at, "
                     f"v.updated_at, v.hash AS sha256, {doc.format('d.doc')} AS document "
                     "FROM versions v JOIN documents d USING (hash) "
                     f"WHERE v.valid_from <= {sid} AND (v.valid_to IS NULL OR v.valid_to > {sid}) "
                     "ORDER BY v.name, v.version")
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        options = {"jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet"}[fmt]
        literal = "'" + str(partial).replace("'", "''") + "'"
        try:
            self.con.execute(f"COPY ({query}) TO {literal} ({options})")
            count = int(self.con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0])
            os.replace(partial, path)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}", hint="pass another -o") from exc
        finally:
            partial.unlink(missing_ok=True)
        return count

    def table_counts(self) -> dict[str, int]:
        return {
            table: int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("snapshots", "documents", "versions", "changes", "rejected")
        }


class SnapshotWriter:
    """Rows of the crawl in progress, staged in a temporary table so a large registry is
    never held in memory; `changes_since` diffs them against a snapshot in SQL first, so
    only rows that changed are read back into Python."""

    BATCH = 5000

    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con
        self.committed = False
        self._pending: list[tuple[int, Row]] = []
        self._sid = store.next_snapshot_id()  # one writer at a time: DuckDB locks the file
        self._changes: list[Change] = []
        self._change_seq = 0
        self.con.execute(
            # a table of the database, not a TEMP one: DuckDB can evict it to disk, and it exists
            # only inside this transaction, so a crash leaves nothing behind
            "CREATE OR REPLACE TABLE incoming (name VARCHAR, version VARCHAR, hash VARCHAR, status VARCHAR, "
            "is_latest BOOLEAN, published_at VARCHAR, updated_at VARCHAR, doc VARCHAR, position BIGINT)")

    def add(self, admitted: Sequence[tuple[int, Row]]) -> None:
        """Stage rows with their crawl positions (in batches: one insert per page is slow)."""
        self._pending.extend(admitted)
        if len(self._pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        admitted, self._pending = self._pending, []
        if not admitted:
            return
        rows = [row for _, row in admitted]
        _insert_columns(self.con, "incoming", {
            "name": [r.name for r in rows], "version": [r.version for r in rows],
            "hash": [r.hash for r in rows], "status": [r.status for r in rows],
            "is_latest": [r.is_latest for r in rows], "published_at": [r.published_at for r in rows],
            "updated_at": [r.updated_at for r in rows], "doc": [r.doc.decode() for r in rows],
            "position": [position for position, _ in admitted],
        })

    def smallest(self, positions: list[int]) -> int:
        """Of staged rows at `positions`, the one with the smallest document bytes."""
        self.flush()
        found = self.con.execute("SELECT position FROM incoming WHERE position IN (SELECT unnest($p)) "
                                 "ORDER BY doc, position LIMIT 1", {"p": positions}).fetchone()
        return int(found[0])

    def drop(self, positions: Iterable[int]) -> list[tuple[int, Row]]:
        """Take staged rows back out (they lost a collision) and return them."""
        self.flush()
        positions = list(positions)
        if not positions:
            return []
        found = self.con.execute(
            f"SELECT position, {_ROW_COLUMNS.replace('v.', '').replace('d.', '')} FROM incoming "
            "WHERE position IN (SELECT unnest($p)) ORDER BY position", {"p": positions}).fetchall()
        self.con.execute("DELETE FROM incoming WHERE position IN (SELECT unnest($p))", {"p": positions})
        return [(r[0], Row(*r[1:8], doc=r[8].encode())) for r in found]

    def changed_servers(self, snapshot_id: int | None, *, batch: int = 2000) -> Iterator[tuple[list[Row], list[Row]]]:
        """(old, new) rows of servers that differ from `snapshot_id`, a batch of servers at a
        time (so a first crawl, where every server differs, is never in memory whole); the
        document is read only where both sides have the version with different content."""
        self.flush()
        if snapshot_id is None:
            old_sql = "SELECT NULL::VARCHAR name, NULL::VARCHAR version, NULL::VARCHAR hash WHERE false"
        else:
            sid = int(snapshot_id)
            old_sql = ("SELECT name, version, hash FROM versions "
                       f"WHERE valid_from <= {sid} AND coalesce(valid_to > {sid}, true)")
        self.con.execute(f"CREATE OR REPLACE TABLE previous AS {old_sql}")
        names = [r[0] for r in self.con.execute(
            """SELECT DISTINCT coalesce(p.name, i.name) AS name FROM previous p
               FULL OUTER JOIN incoming i ON p.name = i.name AND p.version = i.version
               WHERE p.hash IS DISTINCT FROM i.hash ORDER BY name""").fetchall()]
        light = "name, version, hash, status, is_latest, published_at, updated_at"
        for start in range(0, len(names), batch):
            chunk = {"names": names[start : start + batch]}
            old = [] if snapshot_id is None else self.con.execute(
                """SELECT v.name, v.version, v.hash, v.status, v.is_latest, v.published_at, v.updated_at,
                           CASE WHEN i.hash IS NOT NULL AND i.hash <> v.hash THEN d.doc END
                    FROM versions v JOIN documents d ON d.hash = v.hash
                    LEFT JOIN incoming i ON i.name = v.name AND i.version = v.version
                    WHERE v.valid_from <= $id AND (v.valid_to IS NULL OR v.valid_to > $id)
                      AND v.name IN (SELECT unnest($names))
                    ORDER BY v.name, v.version""", {"id": snapshot_id, **chunk}).fetchall()
            new = self.con.execute(
                f"""SELECT {', '.join('i.' + c for c in light.split(', '))},
                           CASE WHEN p.hash IS NOT NULL AND p.hash <> i.hash THEN i.doc END
                    FROM incoming i LEFT JOIN previous p ON p.name = i.name AND p.version = i.version
                    WHERE i.name IN (SELECT unnest($names))
                    ORDER BY i.name, i.version""", chunk).fetchall()
            yield _rows(old), _rows(new)

    # -- incremental crawls: the rows not fetched carry over, isLatest is settled ------

    def carry_over(self, snapshot_id: int, returned: Iterable[tuple[str, str]]) -> list[Carried]:
        """Stage every row of `snapshot_id` whose (name, version) this crawl did not return, so
        the new snapshot is what a full crawl would give; returned keys (admitted or not)
        replace theirs. Gives (position, name, version, publishedAt) of the rows carried."""
        self.flush()
        keys = sorted(set(returned))
        self.con.execute("CREATE OR REPLACE TABLE returned (name VARCHAR, version VARCHAR)")
        _insert_columns(self.con, "returned", {"name": [k[0] for k in keys], "version": [k[1] for k in keys]})
        self.con.execute(
            """INSERT INTO incoming
               SELECT v.name, v.version, v.hash, v.status, v.is_latest, v.published_at, v.updated_at, d.doc,
                      $base + row_number() OVER (ORDER BY v.name, v.version)
               FROM versions v JOIN documents d USING (hash)
               WHERE v.valid_from <= $id AND (v.valid_to IS NULL OR v.valid_to > $id)
                 AND NOT EXISTS (SELECT 1 FROM returned r WHERE r.name = v.name AND r.version = v.version)""",
            {"id": int(snapshot_id), "base": CARRIED})
        return self.carried()

    def carried(self) -> list[Carried]:
        return [tuple(r) for r in self.con.execute(
            "SELECT position, name, version, published_at FROM incoming WHERE position >= $base AND position < $re "
            "ORDER BY position", {"base": CARRIED, "re": REFETCHED}).fetchall()]

    def settle_latest(self, names: Iterable[str], *, unsure: Iterable[str] = (),
                      fresh_from: int | None = None) -> list[str]:
        """Make isLatest of carried rows what upstream now says, for the servers this crawl
        returned rows of. Upstream moves the flag without bumping the other version's
        updatedAt, but it flags one version a server: where a returned row carries it,
        every carried version loses it (the document's flag is rewritten to false, the bytes
        upstream now serves). Gives the servers the rows cannot settle (no version or several
        flagged, or an entry of it refused, in `unsure`): those must be fetched again.
        With `fresh_from`, the rows at or past that position are the returned ones and every
        other staged row counts as carried (a full crawl's closing updated_since request)."""
        self.flush()
        names = sorted(set(names))
        if not names:
            return []
        flagged = self.con.execute(
            "SELECT name, position, doc FROM incoming WHERE is_latest AND name IN (SELECT unnest($n)) "
            "ORDER BY name, position", {"n": names}).fetchall()
        by_name: dict[str, list[int]] = {name: [] for name in names}
        docs: dict[int, str] = {}
        for name, position, doc in flagged:
            by_name[name].append(int(position))
            docs[int(position)] = doc
        if fresh_from is None:
            settled = latest.settle(by_name, unsure=unsure,
                                    returned=lambda position: position < CARRIED or position >= REFETCHED)
        else:
            settled = latest.settle(by_name, unsure=unsure, returned=lambda position: position >= fresh_from)
        flips: dict[str, list[Any]] = {"position": [], "doc": [], "hash": []}
        for position in settled.unflag:
            flipped = with_latest_flag(docs[position].encode(), False)
            flips["position"].append(position)
            flips["doc"].append(flipped.decode())
            flips["hash"].append(content_hash(flipped))
        if flips["position"]:
            self.con.execute("CREATE OR REPLACE TABLE flips (position BIGINT, doc VARCHAR, hash VARCHAR)")
            _insert_columns(self.con, "flips", flips)
            self.con.execute("UPDATE incoming SET is_latest = false, doc = f.doc, hash = f.hash FROM flips f "
                             "WHERE incoming.position = f.position")
            self.con.execute("DROP TABLE flips")
        return list(settled.refetch)

    def discard(self, keys: Iterable[tuple[str, str]]) -> None:
        """Unstage the rows of these (name, version)s: a newer answer for them replaces them."""
        self.flush()
        keys = sorted(set(keys))
        if not keys:
            return
        self.con.execute("CREATE OR REPLACE TABLE discarded (name VARCHAR, version VARCHAR)")
        _insert_columns(self.con, "discarded", {"name": [k[0] for k in keys], "version": [k[1] for k in keys]})
        self.con.execute("DELETE FROM incoming WHERE EXISTS (SELECT 1 FROM discarded d "
                         "WHERE d.name = incoming.name AND d.version = incoming.version)")
        self.con.execute("DROP TABLE discarded")

    def replace_server(self, name: str, admitted: Sequence[tuple[int, Row]]) -> None:
        """A server fetched again whole: its staged rows give way to what upstream sent now."""
        self.flush()
        self.con.execute("DELETE FROM incoming WHERE name = ?", [name])
        self.add(admitted)
        self.flush()

    def record_changes(self, changes: Sequence[Change]) -> None:
        """Store changes of the snapshot being written, in the order they come."""
        self._changes.extend(changes)
        if len(self._changes) >= self.BATCH:
            self._flush_changes()

    def _flush_changes(self) -> None:
        changes, self._changes = self._changes, []
        first = self._change_seq
        self._change_seq += len(changes)
        _insert_columns(self.con, "changes", {
            "snapshot_id": [self._sid] * len(changes), "seq": list(range(first, first + len(changes))),
            "kind": [c.kind for c in changes], "name": [c.name for c in changes],
            "version": [c.version for c in changes],
            "detail": [orjson.dumps(c.detail, option=orjson.OPT_SORT_KEYS).decode() for c in changes],
        })

    def commit(self, run: CrawlRun, *, rejected: Sequence[Rejected], changes: Sequence[Change] = ()) -> Snapshot:
        self.flush()
        self.record_changes(changes)
        self._flush_changes()
        con = self.con
        sid = self._sid
        rows, servers, watermark = con.execute(
            "SELECT count(*), count(DISTINCT name), arg_max(updated_at, try_cast(updated_at AS TIMESTAMPTZ)) "
            "FROM incoming").fetchone()
        con.execute(
            f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [sid, run.started_at, run.finished_at, run.upstream, run.mode, "ok", None, rows, servers, len(rejected),
             run.requests, watermark, run.since, run.note, run.source],
        )
        con.execute("INSERT INTO documents SELECT DISTINCT hash, doc FROM incoming ON CONFLICT DO NOTHING")
        con.execute(
            """UPDATE versions SET valid_to = $id
               WHERE valid_to IS NULL AND NOT EXISTS (
                 SELECT 1 FROM incoming i WHERE i.name = versions.name
                   AND i.version = versions.version AND i.hash = versions.hash)""",
            {"id": sid},
        )
        con.execute(
            """INSERT INTO versions
               SELECT i.name, i.version, i.hash, i.status, i.is_latest, i.published_at, i.updated_at, $id, NULL
               FROM incoming i WHERE NOT EXISTS (
                 SELECT 1 FROM versions v WHERE v.valid_to IS NULL AND v.name = i.name
                   AND v.version = i.version AND v.hash = i.hash)""",
            {"id": sid},
        )
        con.execute("DROP TABLE incoming")
        con.execute("DROP TABLE IF EXISTS previous")
        con.execute("DROP TABLE IF EXISTS touched")
        con.execute("DROP TABLE IF EXISTS returned")
        _insert_columns(con, "rejected", {
            "snapshot_id": [sid] * len(rejected), "seq": [r.position for r in rejected],
            "name": [r.name for r in rejected], "version": [r.version for r in rejected],
            "reason": [r.reason for r in rejected], "doc": [r.doc.decode() for r in rejected],
        })
        con.execute("COMMIT")
        self.committed = True
        return self.store.get_snapshot(sid)


def _rows(found: list[tuple]) -> list[Row]:
    return [Row(*r[:7], doc=(r[7] or "").encode()) for r in found]


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _insert_columns(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, list[Any]]) -> None:
    if not next(iter(columns.values())):
        return
    names = ", ".join(columns)
    selects = ", ".join(f"unnest(${name})" for name in columns)
    con.execute(f"INSERT INTO {table} ({names}) SELECT {selects}", columns)


@contextmanager
def open_store(path: Path | str, *, create: bool = True, reading: bool = False) -> Iterator[Store]:
    """Open (and migrate) the database at `path`, translating DuckDB's errors. `reading`:
    only to read snapshots back, with a smaller memory bound."""
    path = Path(path)
    if not create and not path.exists():
        raise StoreError(f"no snapshot database at {path}", hint="run `mcp-mirror crawl` first, or pass --db")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a database file", hint="pass a file path with --db")
    if create and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), config=duckdb_config(path, reading=reading))
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {path}: {_first_line(exc)}", hint="is another mcp-mirror using it?") from exc
    store = Store(path, con)
    try:
        store.migrate()
        yield store
    except duckdb.Error as exc:
        out_of_memory = isinstance(exc, duckdb.OutOfMemoryException)
        hint = "give DuckDB more memory, e.g. MCP_MIRROR_DUCKDB_MEMORY=1GB" if out_of_memory else None
        raise StoreError(f"database error in {path}: {_first_line(exc)}", hint=hint) from exc
    finally:
        store.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
