"""`make bench`: the pipeline at registry scale, measured as ratios against floors in one run.

For each size (default 10,000 and 100,000 versions of a deterministic synthetic registry,
tests/synthetic.py) it prints: peak RSS of crawl, render and build; crawl against a bare
httpx loop over the same pages; a full render against a floor loop that writes the same
bytes to the same paths, on disk and on tmpfs; a rebuild with no upstream change and one
after a 1% change, against the full build; the tree's amplification of the rows' bytes;
and, at the smallest size, the database after repeated 1% syncs. `--catalog N` (default
20,000; 0 skips it) measures the HTML catalog for N servers: the search index's bytes, a full
render's time and peak RSS with the catalog's share of the time, and the time from loading
the index to the first result of a search, in node running the catalog script's own filter.
`--soak N` (default 200; 0 skips it) runs N hourly syncs of a changing upstream of
`--soak-size` versions, with SIGKILLs and a full disk on a few, then compares the served tree
with a fresh full build and the database's growth with the changed documents (tests/soak.py).
Timings depend on the machine, so they are measured here and never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from synthetic import change_one_percent, synthetic_registry  # noqa: E402

TMPFS = Path("/dev/shm")
# The bench upstream is local: the crawl is measured at full speed, not at the request rate
# kept for the real registry (--rate).
UNPACED = ("--rate", "1000000000")
PROFILES = ("nginx", "caddy", "netlify", "cloudflare-pages", "s3", "static")


# -- one measured stage, in a fresh process --------------------------------------------


def stage(*argv: str) -> dict:
    """Run `mcp-mirror ARGV` in a fresh process; its seconds (around the command only) and peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-m", "tests.bench", "_stage", report.name, *argv], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(Path(report.name).read_text())


def _run_stage(report: str, argv: list[str]) -> None:
    from mirror import pipeline
    from mirror.cli import cli

    captured: dict = {}
    real_build, real_render = pipeline.build, pipeline.render

    def build(*args, **kwargs):
        result = real_build(*args, **kwargs)
        captured["written"] = result.render.written.written
        captured["files"] = result.render.written.files
        return result

    def render(*args, **kwargs):
        result = real_render(*args, **kwargs)
        captured.setdefault("written", result.written.written)
        captured.setdefault("files", result.written.files)
        return result

    pipeline.build, pipeline.render = build, render
    began = time.perf_counter()
    cli.main(argv, prog_name="mcp-mirror", standalone_mode=False)
    seconds = time.perf_counter() - began
    rss = peak_rss_mb()
    Path(report).write_text(json.dumps({"seconds": seconds, "rss_mb": rss, **captured}))


def peak_rss_mb() -> float:
    """This process's own high-water mark. Not getrusage: on Linux its ru_maxrss survives
    exec, so a child forked from the (large) bench process would report the parent's size."""
    for line_ in Path("/proc/self/status").read_text().splitlines():
        if line_.startswith("VmHWM:"):
            return int(line_.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_bare_crawl(report: str, url: str) -> None:
    """The floor for the crawl: GET every page and read its cursor, nothing else."""
    began = time.perf_counter()
    pages = rows = 0
    with httpx.Client(timeout=30) as client:
        cursor = None
        while True:
            params = {"limit": "100", "include_deleted": "true", **({"cursor": cursor} if cursor else {})}
            body = orjson.loads(client.get(f"{url}/v0.1/servers", params=params).content)
            pages += 1
            rows += len(body["servers"])
            cursor = body["metadata"].get("nextCursor")
            if not cursor:
                break
    Path(report).write_text(json.dumps({"seconds": time.perf_counter() - began, "pages": pages, "rows": rows}))


def bare_crawl(url: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        subprocess.run([sys.executable, "-m", "tests.bench", "_bare", report.name, url], cwd=ROOT, check=True)
        return json.loads(Path(report.name).read_text())


def floor_write(tree: Path, target: Path) -> float:
    """Write the same bytes to the same paths with the plainest loop there is."""
    files = []
    for directory, _, names in os.walk(tree):
        for name in names:
            path = Path(directory, name)
            files.append((str(path.relative_to(tree)), path.read_bytes()))
    made: set[str] = set()
    began = time.perf_counter()
    for rel, data in files:
        parent = rel.rpartition("/")[0]
        if parent not in made:
            os.makedirs(target / parent, exist_ok=True)
            made.add(parent)
        with open(target / rel, "wb") as handle:
            handle.write(data)
    seconds = time.perf_counter() - began
    shutil.rmtree(target)
    return seconds


def tree_size(tree: Path) -> tuple[int, int]:
    files = size = 0
    for directory, _, names in os.walk(tree):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(directory, name)).st_size
    return files, size


@contextmanager
def upstream(entries: list[dict], workdir: Path) -> Iterator[str]:
    data = workdir / "upstream.json"
    data.write_bytes(orjson.dumps(entries))
    process = subprocess.Popen([sys.executable, "-m", "tests.bench_upstream", "--data", str(data)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(timeout=30)


# -- the report --------------------------------------------------------------------------


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:44} {value:>22}  {note}")


def measure_trees(size: int, workdir: Path, profiles: tuple[str, ...] = PROFILES) -> None:
    """Only the trees per profile and the S3 keys a 1% change rewrites (`--trees-only`)."""
    entries = synthetic_registry(size)
    row_bytes = sum(len(orjson.dumps(e)) for e in entries)
    print(f"\n{size:,} versions, {len({e['server']['name'] for e in entries}):,} servers, "
          f"{row_bytes / 1e6:.1f} MB of rows")
    disk = workdir / f"disk-{size}"
    disk.mkdir()
    with upstream(entries, workdir) as url:
        stage("crawl", "--upstream", url, "--db", str(disk / "a.duckdb"), *UNPACED)
    profile_trees(disk, row_bytes, size, profiles)
    if "s3" in profiles:
        changed = len(change_one_percent(entries, round_=0))
        with upstream(entries, workdir) as url:
            s3_rewrites(url, disk, changed)


def measure(size: int, workdir: Path, *, syncs: int) -> None:
    entries = synthetic_registry(size)
    servers = len({e["server"]["name"] for e in entries})
    row_bytes = sum(len(orjson.dumps(e)) for e in entries)
    print(f"\n{size:,} versions, {servers:,} servers, {row_bytes / 1e6:.1f} MB of rows")
    disk, shm = workdir / f"disk-{size}", TMPFS / f"mcp-bench-{os.getpid()}-{size}"
    disk.mkdir()
    shm.mkdir()
    try:
        with upstream(entries, workdir) as url:
            bare = bare_crawl(url)
            crawl = stage("crawl", "--upstream", url, "--db", str(disk / "a.duckdb"), *UNPACED)
            line("crawl", f"{crawl['seconds']:.2f} s", f"{crawl['rss_mb']:.0f} MB peak RSS")
            line("  bare httpx loop over the same pages", f"{bare['seconds']:.2f} s",
                 f"{bare['pages']} pages; crawl/floor = {crawl['seconds'] / bare['seconds']:.2f} (target <= 1.2)")
            common = ("--db", str(disk / "a.duckdb"), "--base-url", "https://mirror.example")
            on_disk = best_of(3, lambda n: stage("render", *common, "--out", str(disk / f"site{n}")))
            on_shm = best_of(3, lambda n: stage("render", *common, "--out", str(shm / f"site{n}")))
            floor_disk = min(floor_write((disk / "site0").resolve(), disk / f"floor{n}") for n in range(3))
            floor_shm = min(floor_write((shm / "site0").resolve(), shm / f"floor{n}") for n in range(3))
            line("render, disk", f"{on_disk['seconds']:.2f} s",
                 f"{on_disk['rss_mb']:.0f} MB peak RSS; render/floor = {on_disk['seconds'] / floor_disk:.2f} "
                 f"(floor {floor_disk:.2f} s; both best of 3; target <= 1.5)")
            line("render, tmpfs", f"{on_shm['seconds']:.2f} s",
                 f"render/floor = {on_shm['seconds'] / floor_shm:.2f} (floor {floor_shm:.2f} s; target <= 1.5)")
            shutil.rmtree(shm)
            shm.mkdir()
            def full_build(n: int) -> dict:
                return stage("build", "--upstream", url, *UNPACED, "--db", str(disk / f"b{n}.duckdb"), "--out",
                             str(disk / f"b{n}"), "--base-url", "https://mirror.example")

            full = best_of(3, full_build)
            db, out = str(disk / "b0.duckdb"), str(disk / "b0")
            line("build (full, best of 3)", f"{full['seconds']:.2f} s",
                 f"{full['rss_mb']:.0f} MB peak RSS (target <= 400 MB); {full['files']:,} files")
            rebuild("rebuild, no upstream change", url, db, out, full, on_disk, changed=0)
        files, size_bytes = tree_size((disk / "b0").resolve())
        line("tree", f"{files:,} files, {size_bytes / 1e6:.0f} MB",
             f"{size_bytes / row_bytes:.1f}x the rows' bytes, {files / size:.2f} files per version")
        profile_trees(disk, row_bytes, size)
        changed = len(change_one_percent(entries, round_=0))
        with upstream(entries, workdir) as url:
            rebuild("rebuild after a 1% change", url, db, out, full, on_disk, changed=changed)
            s3_rewrites(url, disk, changed)
        if syncs:
            database_growth(entries, disk, syncs=syncs)
    finally:
        shutil.rmtree(shm, ignore_errors=True)


def profile_trees(disk: Path, row_bytes: int, versions: int, profiles: tuple[str, ...] = PROFILES) -> None:
    """The tree each host profile gets from the same snapshot: hosts that compute the list
    endpoint carry no page chains; S3 (behind a CloudFront Function) carries them."""
    for profile in profiles:
        out = disk / f"tree-{profile}"
        stage("render", "--db", str(disk / "a.duckdb"), "--base-url", "https://mirror.example", "--profile", profile,
              "--out", str(out))
        files, size_bytes = tree_size(out.resolve())
        line(f"  tree, {profile}", f"{files:,} files, {size_bytes / 1e6:.0f} MB",
             f"{size_bytes / row_bytes:.1f}x the rows' bytes, {files / versions:.2f} files per version")


def s3_rewrites(url: str, disk: Path, changed: int) -> None:
    """The keys a 1% upstream change rewrites in an S3 tree: each one a PUT."""
    stage("crawl", "--upstream", url, "--db", str(disk / "a.duckdb"), *UNPACED)
    render = stage("render", "--db", str(disk / "a.duckdb"), "--base-url", "https://mirror.example", "--profile",
                   "s3", "--out", str(disk / "tree-s3"))
    line("  s3 keys rewritten by a 1% change", f"{render['written']:,} PUTs",
         f"{render['written'] / changed:.1f} per changed row ({changed} rows)")


def best_of(runs: int, measure_one) -> dict:
    """The fastest of `runs` fresh renders (disk and tmpfs noise on these machines is large)."""
    return min((measure_one(n) for n in range(runs)), key=lambda result: result["seconds"])


def rebuild(label: str, url: str, db: str, out: str, full: dict, full_render: dict, *, changed: int) -> None:
    """A crawl and a render after a full build: the whole rebuild against the full build, and
    the render alone against a full render (crawls stay full until incremental sync lands)."""
    crawl = stage("crawl", "--upstream", url, "--db", db, *UNPACED)
    render = stage("render", "--db", db, "--out", out, "--base-url", "https://mirror.example")
    total = crawl["seconds"] + render["seconds"]
    per_row = f" = {render['written'] / changed:.1f} per changed row" if changed else " (target <= 1)"
    line(label, f"{total:.2f} s", f"{total / full['seconds']:.0%} of a full build; render alone "
         f"{render['seconds']:.2f} s = {render['seconds'] / full_render['seconds']:.0%} of a full render; "
         f"{render['written']} files written{per_row}; {max(crawl['rss_mb'], render['rss_mb']):.0f} MB peak RSS")


def database_growth(entries: list[dict], disk: Path, *, syncs: int) -> None:
    """The database after `syncs` crawls, each after a 1% change, against the bytes changed."""
    from bench_upstream import _Handler, _Server

    from mirror import pipeline
    from mirror.settings import Settings

    server = _Server(("127.0.0.1", 0), _Handler)
    server.load(entries)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings(upstream=f"http://127.0.0.1:{server.server_address[1]}", db=disk / "growth.duckdb",
                        rate=1e9)
    try:
        pipeline.crawl(settings)
        first = settings.db.stat().st_size
        changed_bytes = 0
        marks = {1, syncs // 4, syncs // 2, syncs}
        for round_ in range(1, syncs + 1):
            changed = change_one_percent(entries, round_=round_)
            changed_bytes += sum(len(orjson.dumps(entries[i])) for i in changed)
            server.load(entries)
            pipeline.crawl(settings)
            if round_ in marks:
                size = settings.db.stat().st_size
                line(f"database after {round_} syncs of 1% changes", f"{size / 1e6:.1f} MB",
                     f"+{(size - first) / 1e6:.1f} MB over the first snapshot's {first / 1e6:.1f} MB; "
                     f"~{changed_bytes / 1e6:.1f} MB of changed documents")
    finally:
        server.shutdown()


# -- the catalog at N servers --------------------------------------------------------------

# The catalog script's filter (templates/catalog/assets/catalog.js), as node runs it: parse the
# index, make the haystacks, then one query, timed from reading the file to the first result.
SEARCH_JS = r"""
const fs = require("fs");
const began = process.hrtime.bigint();
const data = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const f = data.fields;
const index = data.servers.map((row) => {
  const server = {};
  for (let i = 0; i < f.length; i++) server[f[i]] = row[i] || "";
  server.haystack = [server.name, server.title, server.description, server.packages].join("\n").toLowerCase();
  return server;
});
const loaded = process.hrtime.bigint();
const terms = process.argv[3].toLowerCase().split(/\s+/).filter(Boolean);
const found = index.filter((s) => terms.every((t) => s.haystack.indexOf(t) !== -1));
const done = process.hrtime.bigint();
console.log(JSON.stringify({load_ms: Number(loaded - began) / 1e6, query_ms: Number(done - loaded) / 1e6,
                            found: found.length}));
"""


def catalog_entries(servers: int) -> list[dict]:
    """The synthetic registry's first `servers` servers, each with its latest and at most two
    other versions (the catalog grows with servers; the versions are the API's cost)."""
    from collections import defaultdict
    by_name: dict[str, list[dict]] = defaultdict(list)
    for entry in synthetic_registry(servers * 8):
        by_name[entry["server"]["name"]].append(entry)
    chosen = []
    for name in sorted(by_name)[:servers]:
        group = by_name[name]
        latest = [e for e in group if e["_meta"]["io.modelcontextprotocol.registry/official"]["isLatest"]]
        others = [e for e in group if e not in latest][:2]
        chosen += latest + others
    return chosen


def _run_catalog_stage(report: str, db: str) -> None:
    """A render stream in memory (no writes), the catalog's share of it timed entry by entry."""
    from mirror import hosts
    from mirror.render import Site, catalog
    from mirror.store import open_store

    totals = {"catalog": 0.0, "api": 0.0}
    files = {"catalog": 0, "api": 0}
    size = {"catalog": 0, "api": 0}
    began = time.perf_counter()
    with open_store(db, create=False) as store:
        snapshot = store.ok_snapshot()
        site = Site(snapshot, lambda: store.iter_rows(snapshot.id), base_url="https://mirror.example",
                    profile=hosts.get_profile("nginx"), changes=lambda: store.iter_changes(
                        snapshot.id, limit=catalog.CHANGES_SHOWN))
        stream = site.entries()
        index_bytes = 0
        while True:
            mark = time.perf_counter()
            entry = next(stream, None)
            if entry is None:
                break
            data = entry.data()
            part = "api" if entry.path.startswith("v0.1/") or entry.path == "openapi.yaml" else "catalog"
            totals[part] += time.perf_counter() - mark
            files[part] += 1
            size[part] += len(data)
            if entry.path == "assets/search.json":
                index_bytes = len(data)
                Path(report).with_suffix(".index.json").write_bytes(data)
    Path(report).write_text(json.dumps({
        "seconds": time.perf_counter() - began, "rss_mb": peak_rss_mb(), "catalog_seconds": totals["catalog"],
        "api_seconds": totals["api"], "catalog_files": files["catalog"], "catalog_bytes": size["catalog"],
        "index_bytes": index_bytes}))


def measure_catalog(servers: int, workdir: Path) -> None:
    """The catalog for `servers` servers: index bytes, render time and memory, first result."""
    import gzip

    from mirror import pipeline
    from mirror.settings import Settings

    entries = catalog_entries(servers)
    print(f"\ncatalog: {servers:,} servers, {len(entries):,} versions")
    disk = workdir / f"catalog-{servers}"
    disk.mkdir()
    with upstream(entries, workdir) as url:
        pipeline.crawl(Settings(upstream=url, db=disk / "c.duckdb", rate=1e9))
    with tempfile.NamedTemporaryFile(suffix=".json", dir=disk) as report:
        subprocess.run([sys.executable, "-m", "tests.bench", "_catalog", report.name, str(disk / "c.duckdb")],
                       cwd=ROOT, check=True)
        result = json.loads(Path(report.name).read_text())
        index = Path(report.name).with_suffix(".index.json")
        gzipped = len(gzip.compress(index.read_bytes(), 6))
        line("search index", f"{result['index_bytes'] / 1e6:.2f} MB",
             f"{gzipped / 1e6:.2f} MB gzipped; {result['index_bytes'] / servers:.0f} bytes a server")
        if shutil.which("node"):
            script = disk / "search.js"
            script.write_text(SEARCH_JS)
            timings = [json.loads(subprocess.run(["node", str(script), str(index), "kubernetes"], check=True,
                                                 capture_output=True, text=True).stdout) for _ in range(3)]
            best = min(timings, key=lambda t: t["load_ms"] + t["query_ms"])
            line("  time to the first result (node)", f"{best['load_ms'] + best['query_ms']:.0f} ms",
                 f"parse and index {best['load_ms']:.0f} ms, then a query {best['query_ms']:.1f} ms "
                 f"({best['found']} found); best of 3, the network not counted")
    line("render stream in memory (API + catalog)", f"{result['seconds']:.2f} s",
         f"{result['rss_mb']:.0f} MB peak RSS; catalog {result['catalog_seconds']:.2f} s for "
         f"{result['catalog_files']:,} files, {result['catalog_bytes'] / 1e6:.0f} MB; "
         f"API {result['api_seconds']:.2f} s")
    full = stage("render", "--db", str(disk / "c.duckdb"), "--out", str(disk / "site"),
                 "--base-url", "https://mirror.example")
    line("render to disk (published)", f"{full['seconds']:.2f} s",
         f"{full['rss_mb']:.0f} MB peak RSS (target <= 400 MB); {full['files']:,} files")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_stage":
        return _run_stage(sys.argv[2], sys.argv[3:])
    if len(sys.argv) > 2 and sys.argv[1] == "_catalog":
        return _run_catalog_stage(sys.argv[2], sys.argv[3])
    if len(sys.argv) > 2 and sys.argv[1] == "_bare":
        return _run_bare_crawl(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="registry sizes in versions (default: 10000,100000)")
    parser.add_argument("--syncs", type=int, default=100, help="1%% syncs for the database growth (smallest size)")
    parser.add_argument("--catalog", type=int, default=20_000, help="servers for the catalog figures (0: skip)")
    parser.add_argument("--soak", type=int, default=200, help="hourly syncs for the soak (0: skip)")
    parser.add_argument("--soak-size", type=int, default=10_000, help="versions the soak's upstream starts with")
    parser.add_argument("--soak-disk", choices=("tmpfs", "injected"), default="tmpfs",
                        help="a full disk as a real tmpfs (needs mount; falls back) or an injected ENOSPC")
    parser.add_argument("--trees-only", action="store_true",
                        help="only the tree per host profile and the S3 keys a 1%% change rewrites")
    parser.add_argument("--profiles", default=",".join(PROFILES), help="host profiles for --trees-only")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip() and int(s)]
    print(f"mcp-mirror bench, {date.today()}, {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        for size in sizes:
            if args.trees_only:
                measure_trees(size, Path(tmp), tuple(p for p in args.profiles.split(",") if p))
            else:
                measure(size, Path(tmp), syncs=args.syncs if size == min(sizes) else 0)
        if args.catalog and not args.trees_only:
            measure_catalog(args.catalog, Path(tmp))
        if args.soak and not args.trees_only:
            import soak

            soak.run(args.soak, args.soak_size, Path(tmp), disk_mode=args.soak_disk)


if __name__ == "__main__":
    main()
