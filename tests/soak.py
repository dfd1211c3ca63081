"""The soak of `make bench` (`--soak N`): N hourly syncs of a changing upstream, each a
`mcp-mirror build` in its own process, some SIGKILLed at a random moment and some on a full
disk, then the served tree against a fresh full build of the final upstream.

The upstream is mirror/fake_upstream.py, seeded with the synthetic registry (tests/synthetic.py)
and driven through its writes (`publish`, `edit`, `set_status`): they move updatedAt and
isLatest as upstream does (an old latest loses its flag without a new updatedAt, so only the
server's versions list shows it), which the bench upstream's pre-rendered pages and
`change_one_percent` (descriptions and statuses, no flag moves) never exercise. Its clock is
set to one hour per round, ending an hour before now (a watermark ahead of the local clock would
make every sync full). The mirror's own `--full-every 24h` never fires within a soak of minutes,
so every 24th round passes `--full`, as an hourly deployment's daily full crawl.

A full disk is a real one when the bench may mount a tmpfs (root, as here and in CI): the
mirror's database and site live on it, and a ballast file fills it for the round. Otherwise
(`--soak-disk injected`, or no mount) a wrapper makes the mirror's `os.write` fail with ENOSPC
after a random number of writes, which reaches the site's files but not DuckDB's.

    python -m tests.bench --sizes 0 --catalog 0 --soak 20 --soak-size 1000   # a quick check
"""

from __future__ import annotations

import copy
import errno
import hashlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "https://mirror.example"
DAILY = 24  # every DAILY-th round is a full crawl, as --full-every 24h makes it hourly
TIME_FIELDS = ("publishedAt", "updatedAt", "statusChangedAt")
# (kind, weight) of one change in an hour of upstream
KINDS = (("publish", 20), ("new server", 5), ("edit", 35), ("deprecate", 12), ("delete", 12), ("restore", 16))


class SoakFailure(Exception):
    """The mirror did not hold what the soak checks."""


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:44} {value:>22}  {note}", flush=True)


# -- the upstream -------------------------------------------------------------------------


def seeded_entries(size: int, end: datetime) -> list[dict]:
    """The synthetic registry with every time moved so that the latest is a day before `end`,
    and isLatest where upstream's recalculateLatest puts it: the synthetic flag is on each
    server's last version, and a pre-release numbered above it (`31.0.0-beta.31` over `3.7.3`)
    is a state upstream's writes never make, from which a sibling's status change moves the
    flag where no sync can see it (only a full crawl does)."""
    from functools import cmp_to_key

    from synthetic import synthetic_registry

    from mirror.fake_upstream import compare_versions
    from mirror.models import OFFICIAL

    entries = synthetic_registry(size)
    servers: dict[str, list[dict]] = {}
    for entry in entries:
        servers.setdefault(entry["server"]["name"], []).append(entry)
    for group in servers.values():
        live = [e for e in group if e["_meta"][OFFICIAL]["status"] != "deleted"] or group
        best = max(live, key=cmp_to_key(compare_versions))
        for entry in group:
            entry["_meta"][OFFICIAL]["isLatest"] = entry is best
    stamps = [datetime.fromisoformat(e["_meta"][OFFICIAL][f]) for e in entries for f in TIME_FIELDS
              if f in e["_meta"][OFFICIAL]]
    shift = end - timedelta(days=1) - max(stamps)
    for entry in entries:
        official = entry["_meta"][OFFICIAL]
        for field in TIME_FIELDS:
            if field in official:
                moved = datetime.fromisoformat(official[field]) + shift
                official[field] = moved.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return entries


def documents(entries: list[dict]) -> dict[tuple[str, str], bytes]:
    return {(e["server"]["name"], e["server"]["version"]): orjson.dumps(e) for e in entries}


def an_hour_of_changes(registry, rnd: random.Random, round_: int, changes: int) -> dict[str, int]:
    """Publishes of new versions and new servers, edits, deprecations, deletions and restores,
    through the fake's own writes; returns how many of each."""
    from mirror.models import OFFICIAL

    def status(entry: dict) -> str:
        return entry["_meta"][OFFICIAL]["status"]

    def key(entry: dict) -> tuple[str, str]:
        return entry["server"]["name"], entry["server"]["version"]

    done: dict[str, int] = {}
    kinds, weights = zip(*KINDS, strict=True)
    for n in range(changes):
        kind = rnd.choices(kinds, weights)[0]
        entries = registry.entries
        if kind == "publish":
            name, _ = key(rnd.choice(entries))
            latest = [e for e in entries if e["server"]["name"] == name and e["_meta"][OFFICIAL]["isLatest"]]
            server = copy.deepcopy((latest or [e for e in entries if e["server"]["name"] == name])[0]["server"])
            # most above every version (the new latest), some a pre-release below (latest stays)
            server["version"] = f"{100 + round_}.{n}.0" if rnd.random() < 0.75 else f"0.0.{round_}-soak.{n}"
            registry.publish(server)
        elif kind == "new server":
            server = copy.deepcopy(rnd.choice(entries)["server"])
            server["name"], server["version"] = f"io.github.soak{round_}x{n}/server", "1.0.0"
            registry.publish(server)
        elif kind == "edit":
            name, version = key(rnd.choice(entries))
            registry.edit(name, version, description=f"edited in hour {round_} ({n})")
        else:
            wanted = {"deprecate": ("active",), "delete": ("active", "deprecated"),
                      "restore": ("deprecated", "deleted")}[kind]
            candidates = [e for e in rnd.sample(entries, min(len(entries), 200)) if status(e) in wanted]
            if not candidates:
                continue
            name, version = key(candidates[0])
            if kind == "deprecate":
                registry.set_status(name, version, "deprecated", f"deprecated in hour {round_}")
            else:
                registry.set_status(name, version, "deleted" if kind == "delete" else "active")
        done[kind] = done.get(kind, 0) + 1
    return done


# -- the disk -------------------------------------------------------------------------------


class Disk:
    """Where the mirror's database and site live, and how it is made full for one round."""

    def __init__(self, workdir: Path, mode: str) -> None:
        self.path = workdir / "disk"
        self.path.mkdir()
        self.mode = "injected"
        if mode == "tmpfs":
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g,mode=0700", "tmpfs", str(self.path)],
                                     capture_output=True, text=True)
            if mounted.returncode == 0:
                self.mode = "tmpfs"
            else:
                print(f"  (no tmpfs: {mounted.stderr.strip() or 'mount failed'}; ENOSPC is injected instead)")
        self.ballast = self.path / "ballast"

    def used(self) -> int:
        stat = os.statvfs(self.path)
        return (stat.f_blocks - stat.f_bfree) * stat.f_frsize

    def size_for(self, used: int) -> None:
        """Room for the mirror to grow over the soak, not the 4 GB the ballast would fill."""
        if self.mode == "tmpfs":
            size = max(used * 4, 64 << 20)
            subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def fill(self) -> None:
        """Write the ballast until the filesystem refuses a single byte more."""
        if self.mode != "tmpfs":
            return
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            chunk = 1 << 20
            while chunk:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
        finally:
            os.close(fd)

    def release(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mode == "tmpfs":
            subprocess.run(["umount", "-l", str(self.path)], check=False)


def _run_enospc(after: int, argv: list[str]) -> None:
    """`mcp-mirror ARGV` with every os.write after the first `after` failing with ENOSPC."""
    from mirror.cli import cli

    real_write, calls = os.write, [0]

    def full_disk(fd: int, data) -> int:
        calls[0] += 1
        if calls[0] > after and fd > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    os.write = full_disk
    cli.main(argv, prog_name="mcp-mirror")


# -- the served tree ------------------------------------------------------------------------


def tree_hashes(root: Path) -> dict[str, str]:
    root = root.resolve()
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def served_snapshot(out: Path) -> int:
    from mirror import paths

    return orjson.loads((out / paths.state_file()).read_bytes())["snapshot"]["id"]


def ok_snapshot(db: Path) -> int:
    from mirror.store import open_store

    with open_store(db, create=False, reading=True) as store:
        return store.ok_snapshot().id


def verified(out: Path, when: str) -> None:
    from mirror.verify import verify_tree

    report = verify_tree(out)
    if not report.ok:
        raise SoakFailure(f"{when}: the served tree does not verify: {report.problems[:3]}")


def db_bytes(db: Path) -> int:
    """The database's bytes once checkpointed (DuckDB folds its WAL in on a clean close), so
    the figure does not swing with whether the last build's WAL was folded in yet."""
    from mirror.store import open_store

    with open_store(db, create=False, reading=True):
        pass
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


# -- the soak -------------------------------------------------------------------------------


def build_argv(url: str, db: Path, out: Path, *, full: bool) -> list[str]:
    return ["build", "--upstream", url, "--db", str(db), "--out", str(out), "--base-url", BASE_URL,
            "--rate", "1000000000", *(["--full"] if full else [])]


def mirror_process(argv: list[str], *, enospc_after: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "mirror", *argv] if enospc_after is None else \
        [sys.executable, "-m", "tests.soak", "_enospc", str(enospc_after), *argv]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, what: str) -> float:
    began = time.perf_counter()
    _, err = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SoakFailure(f"{what}: exit {process.returncode}: {err.strip()[-2000:]}")
    return time.perf_counter() - began


def choose_rounds(rnd: random.Random, rounds: int, count: int, taken: set[int]) -> set[int]:
    """`count` rounds, none the last, none next to another chosen one (the round after each
    must show the recovery)."""
    chosen: set[int] = set()
    candidates = [r for r in range(2, rounds) if r % DAILY]
    rnd.shuffle(candidates)
    for r in candidates:
        if len(chosen) == count:
            break
        if not {r - 1, r, r + 1} & (chosen | taken):
            chosen.add(r)
    return chosen


def run(rounds: int, size: int, workdir: Path, *, disk_mode: str = "tmpfs", seed: int = 25) -> None:
    from trees import comparable_tree

    from mirror.fake_upstream import FakeUpstream
    from mirror.store import open_store

    rnd = random.Random(seed)
    kills = choose_rounds(rnd, rounds, max(1, rounds // 20), set())
    full_disks = choose_rounds(rnd, rounds, max(1, rounds // 40), kills)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=rounds + 1)
    entries = seeded_entries(size, start)
    changes = max(4, size // 200)
    print(f"\nsoak: {rounds} hourly syncs from {size:,} versions, about {changes} upstream changes an hour; "
          f"SIGKILL in {len(kills)}, a full disk in {len(full_disks)}; a full crawl every {DAILY}",
          flush=True)
    disk = Disk(workdir, disk_mode)
    db, out = disk.path / "m.duckdb", disk.path / "site"
    hour = [start]
    began = time.perf_counter()
    try:
        with FakeUpstream(entries) as upstream:
            registry = upstream.registry
            registry.clock = lambda: hour[0]
            first = finish(mirror_process(build_argv(upstream.url, db, out, full=True)), "the first build")
            disk.size_for(disk.used())
            first_db = db_bytes(db)
            line("soak: first full build", f"{first:.2f} s", f"{len(registry.entries):,} versions; "
                 f"database {first_db / 1e6:.1f} MB")
            docs = documents(registry.entries)
            changed_bytes = changed_docs = 0
            tally: dict[str, int] = {}
            incremental: list[float] = []
            full: list[float] = []
            killed = finished_first = 0
            disk_said = ""
            last = first
            marks = {1, rounds // 4, rounds // 2, rounds}
            for round_ in range(1, rounds + 1):
                hour[0] = start + timedelta(hours=round_)
                for kind, count in an_hour_of_changes(registry, rnd, round_, changes).items():
                    tally[kind] = tally.get(kind, 0) + count
                now_docs = documents(registry.entries)
                delta = [d for k, d in now_docs.items() if docs.get(k) != d]
                changed_docs += len(delta)
                changed_bytes += sum(map(len, delta))
                docs = now_docs
                argv = build_argv(upstream.url, db, out, full=round_ % DAILY == 0)
                if round_ in kills:
                    before = served_snapshot(out)
                    process = mirror_process(argv)
                    time.sleep(rnd.uniform(0, last * 1.2))  # start-up, crawl, save, render, swap
                    process.send_signal(signal.SIGKILL)
                    process.communicate()
                    killed += process.returncode == -signal.SIGKILL
                    finished_first += process.returncode == 0
                    verified(out, f"round {round_}, SIGKILLed")
                    if served_snapshot(out) < before:
                        raise SoakFailure(f"round {round_}: SIGKILL left an older snapshot served")
                    continue
                if round_ in full_disks:
                    served, snapshot = tree_hashes(out), ok_snapshot(db)
                    disk.fill()
                    after = rnd.randint(0, 200) if disk.mode == "injected" else None
                    process = mirror_process(argv, enospc_after=after)
                    _, err = process.communicate(timeout=1800)
                    disk.release()
                    said = err.strip().splitlines()
                    if process.returncode == 0 or len(said) != 1 or not said[0].startswith("mcp-mirror: error:"):
                        raise SoakFailure(f"round {round_}, disk full: exit {process.returncode}, expected one "
                                          f"error line, got: {err.strip()[-2000:]!r}")
                    if tree_hashes(out) != served:
                        raise SoakFailure(f"round {round_}, disk full: the served tree changed")
                    verified(out, f"round {round_}, disk full")
                    if ok_snapshot(db) != snapshot:
                        raise SoakFailure(f"round {round_}, disk full: the database's snapshot moved")
                    disk_said = said[0].replace(str(disk.path), "DISK")
                    continue
                seconds = finish(mirror_process(argv), f"round {round_}")
                (full if round_ % DAILY == 0 else incremental).append(seconds)
                if round_ - 1 in kills | full_disks:
                    verified(out, f"round {round_}, after a failed round")
                if round_ % DAILY:
                    last = seconds
                if round_ in marks:
                    size_now = db_bytes(db)
                    line(f"  database after {round_} syncs", f"{size_now / 1e6:.1f} MB",
                         f"+{(size_now - first_db) / 1e6:.1f} MB over the first; {changed_docs:,} changed documents, "
                         f"{changed_bytes / 1e6:.1f} MB; growth/changed = "
                         f"{(size_now - first_db) / max(changed_bytes, 1):.2f}")
            soaked = time.perf_counter() - began
            verified(out, "the end")
            line("  upstream changes", f"{sum(tally.values()):,}",
                 ", ".join(f"{count} {kind}" for kind, count in tally.items()))
            line("  incremental syncs (build)", f"{statistics.median(incremental):.2f} s median",
                 f"p95 {sorted(incremental)[int(len(incremental) * 0.95)]:.2f} s, max {max(incremental):.2f} s; "
                 f"median/first full build = {statistics.median(incremental) / first:.2f}")
            if full:
                line("  daily full crawls (build)", f"{statistics.median(full):.2f} s median", f"{len(full)} of them")
            line("  SIGKILLed builds", f"{len(kills)}", f"{killed} killed mid-run, {finished_first} done before the "
                 "kill; each left a verified tree, the next sync recovered")
            line("  builds on a full disk", f"{len(full_disks)}", f"({disk.mode}) each one line, the previous "
                 f"snapshot and site served and intact, the next sync recovered; it said: {disk_said[:160]}")

            fresh_db, fresh_out = workdir / "fresh.duckdb", workdir / "fresh"
            fresh = finish(mirror_process(build_argv(upstream.url, fresh_db, fresh_out, full=True)), "the fresh build")
            with open_store(db, create=False, reading=True) as store:
                rows = {(r.name, r.version): r.doc for r in store.load_rows(store.ok_snapshot().id)}
            if rows != documents(registry.entries):
                wrong = sorted(k for k in rows.keys() | docs.keys() if rows.get(k) != docs.get(k))
                raise SoakFailure(f"the soaked snapshot's rows differ from upstream's: {len(wrong)}, first {wrong[:3]}")
            synced, once = comparable_tree(out), comparable_tree(fresh_out)
            if synced != once:
                wrong = sorted(k for k in synced.keys() | once.keys() if synced.get(k) != once.get(k))
                raise SoakFailure(f"the served tree differs from a fresh full build in {len(wrong)} files: "
                                  f"{wrong[:5]}")
            line("  served tree = a fresh full build", f"{len(synced):,} files",
                 f"byte for byte but the crawl's own record (tests/trees.py); fresh build {fresh:.2f} s")
            final_db, fresh_size = db_bytes(db), db_bytes(fresh_db)
            line("  database at the end", f"{final_db / 1e6:.1f} MB",
                 f"+{(final_db - first_db) / 1e6:.1f} MB for {changed_bytes / 1e6:.1f} MB of changed documents "
                 f"(growth/changed = {(final_db - first_db) / max(changed_bytes, 1):.2f}); "
                 f"soaked/fresh = {final_db / fresh_size:.2f} (a fresh one {fresh_size / 1e6:.1f} MB)")
            line("  soak", f"{soaked / 60:.1f} min", f"{rounds} rounds, {soaked / rounds:.2f} s a round")
    finally:
        disk.release()
        disk.close()


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_enospc":
        _run_enospc(int(sys.argv[2]), sys.argv[3:])
