"""`make bench`: the pipeline at registry scale, timed, printed as ratios against floors.

A ratio >= 1.0 means the stage beat its floor (rows per second). Not part of `make test`:
timings depend on the machine, so they are measured here and never asserted in tests.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

from mirror import pipeline
from mirror.fake_upstream import FakeUpstream, load_sample
from mirror.models import OFFICIAL
from mirror.settings import Settings

# rows per second each stage must at least reach on the 2-core reference machine
FLOORS = {"crawl": 1_000, "render": 1_000, "re-render (no change)": 2_000, "crawl+diff (1% changed)": 1_000}


def synthetic_registry(rows: int) -> list[dict]:
    """`rows` entries made from the sample, renamed so every (name, version) is distinct."""
    sample = load_sample()
    entries = []
    for i in range(rows):
        entry = copy.deepcopy(sample[i % len(sample)])
        namespace, short = entry["server"]["name"].split("/")
        entry["server"]["name"] = f"{namespace}/{short}-{i // len(sample)}"
        entries.append(entry)
    return entries


def timed(label: str, rows: int, action) -> float:
    began = time.perf_counter()
    action()
    seconds = time.perf_counter() - began
    rate = rows / seconds
    print(f"{label:28} {seconds:7.2f} s  {rate:9.0f} rows/s  ratio {rate / FLOORS[label]:5.2f}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000, help="registry size (default: about upstream's today)")
    args = parser.parse_args()
    entries = synthetic_registry(args.rows)
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(entries) as upstream:
        settings = Settings(upstream=upstream.url, db=Path(tmp) / "m.duckdb", out=Path(tmp) / "site")
        print(f"{args.rows} rows, {len({e['server']['name'] for e in entries})} servers")
        timed("crawl", args.rows, lambda: pipeline.crawl(settings))
        timed("render", args.rows, lambda: pipeline.render(settings))
        timed("re-render (no change)", args.rows, lambda: pipeline.render(settings))
        for entry in entries[:: 100]:
            entry["_meta"][OFFICIAL]["status"] = "deprecated"
        timed("crawl+diff (1% changed)", args.rows, lambda: pipeline.crawl(settings))
        files = sum(1 for p in settings.out.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in settings.out.rglob("*") if p.is_file())
        print(f"site: {files} files, {size / 1e6:.1f} MB; database: {settings.db.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
