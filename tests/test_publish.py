"""The publisher: generations, locks, leftovers, and `build` killed at random moments."""

from __future__ import annotations

import copy
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from factories import row
from test_render import SNAPSHOT, golden_rows, listing
from trees import publish_site, site

from mirror import paths
from mirror.errors import RenderError
from mirror.fake_upstream import FakeUpstream, load_sample
from mirror.models import OFFICIAL
from mirror.publish import LocalTarget, Manifest, publish
from mirror.verify import verify_tree

KILLS = 24


def target_for(out: Path) -> LocalTarget:
    return LocalTarget(out, manifest_path=paths.manifest_file(), state_path=paths.state_file())


def test_a_second_publisher_is_refused_while_one_holds_the_lock(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    with target_for(out), pytest.raises(RenderError, match="another mcp-mirror is publishing"):
        publish_site(SNAPSHOT, golden_rows()[:2], out, base_url="http://x")


def test_a_staging_directory_left_by_a_killed_run_is_removed(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    leftover = tmp_path / ".site.generations" / ".staging-99999"
    (leftover / "v0.1").mkdir(parents=True)
    publish_site(SNAPSHOT, golden_rows()[:2], out, base_url="http://x")
    assert not leftover.exists() and verify_tree(out).ok


def test_an_unreadable_manifest_means_every_file_is_written_again_with_a_warning(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    manifest = out / paths.manifest_file()
    manifest.unlink()
    manifest.write_text("{not json")
    result = publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    assert result.written == result.files and result.warnings
    assert "unreadable manifest" in result.warnings[0] and verify_tree(out).ok


def test_the_manifest_lists_every_file_but_the_state_document(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x", host="s3")
    manifest = Manifest.from_bytes((out / paths.manifest_file()).read_bytes())
    assert set(listing(out)) == set(manifest.records) | {paths.manifest_file(), paths.state_file()}
    objects = orjson.loads((out / ".mcp-mirror/objects.json").read_bytes())["objects"]
    for path, record in manifest.records.items():
        if path != ".mcp-mirror/objects.json":
            assert objects[path]["contentType"] == record.media_type
    state = orjson.loads((out / paths.state_file()).read_bytes())
    assert state["manifest"]["path"] == paths.manifest_file() and len(state["manifest"]["sha256"]) == 64


def test_an_entry_whose_source_is_unchanged_is_not_even_made(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    rendered = site(SNAPSHOT, golden_rows(), base_url="http://x")
    made = []
    real = rendered.entries

    def counting():
        for entry in real():
            if callable(entry.body):
                body = entry.body
                entry = type(entry)(entry.path, entry.kind, entry.media_type,
                                    lambda body=body, path=entry.path: made.append(path) or body(),
                                    entry.cache, entry.source)
            yield entry

    rendered.entries = counting
    with target_for(out) as target:
        publish(rendered, target)
    assert made == []


def test_changing_a_row_rewrites_only_the_files_that_show_it(tmp_path):
    out = tmp_path / "site"
    rows = [row(f"io.github.n{i:02d}/s", f"1.0.{j}", latest=j == 2) for i in range(40) for j in range(3)]
    publish_site(SNAPSHOT, rows, out, base_url="http://x")
    changed = rows[:]
    changed[61] = row(changed[61].name, changed[61].version, latest=changed[61].is_latest, description="new")
    result = publish_site(SNAPSHOT, changed, out, base_url="http://x")
    # its document, its versions list, the manifest and the state document: the list
    # endpoint is computed from the rows index, which does not hold descriptions
    assert result.written == 1 + 1 + 2


# -- build killed with SIGKILL at random moments -------------------------------------


def _mutated(entries: list[dict], round_: int) -> list[dict]:
    """The sample with every tenth entry's description changed, differently each round."""
    changed = copy.deepcopy(entries)
    for entry in changed[round_ % 10 :: 10]:
        entry["server"]["description"] = f"round {round_}"
        entry["_meta"][OFFICIAL]["updatedAt"] = f"2026-01-{1 + round_ % 28:02d}T00:00:00Z"
    return changed


def _build(upstream: str, tmp: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mirror", "build", "--full", "--upstream", upstream,
                             "--db", str(tmp / "m.duckdb"), "--out", str(tmp / "site"),
                             "--base-url", "http://mirror.test"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _build_to_the_end(upstream: str, tmp: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mirror", "build", "--full", "--upstream", upstream,
                           "--db", str(tmp / "m.duckdb"), "--out", str(tmp / "site"),
                           "--base-url", "http://mirror.test"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_build_killed_at_random_moments_leaves_a_verified_tree_and_the_next_run_completes(tmp_path):
    sample = load_sample()
    big = []
    for copy_ in range(6):  # about 700 rows, so a build lasts long enough to be cut anywhere
        for entry in sample:
            renamed = copy.deepcopy(entry)
            namespace, short = renamed["server"]["name"].split("/")
            renamed["server"]["name"] = f"{namespace}/{short}-{copy_}"
            big.append(renamed)
    rnd = random.Random(1234)
    with FakeUpstream(big) as upstream:
        began = time.monotonic()
        _build_to_the_end(upstream.url, tmp_path)
        duration = time.monotonic() - began
        for round_ in range(KILLS):
            upstream.registry.entries = _mutated(big, round_)
            process = _build(upstream.url, tmp_path)
            time.sleep(rnd.uniform(0.0, duration * 1.2))  # start-up, crawl, save, render, swap
            process.send_signal(signal.SIGKILL)
            process.wait()
            report = verify_tree(tmp_path / "site")
            assert report.ok, (round_, report.problems[:5])
        upstream.registry.entries = _mutated(big, KILLS)
        _build_to_the_end(upstream.url, tmp_path)
    assert verify_tree(tmp_path / "site").ok
    state = orjson.loads((tmp_path / "site" / paths.state_file()).read_bytes())
    changed = _mutated(big, KILLS)[KILLS % 10]["server"]
    document = (tmp_path / "site" / paths.view_file(paths.version_dir(changed["name"], changed["version"])))
    assert state["counts"]["rows"] == len(big)
    assert orjson.loads(document.read_bytes())["server"]["description"] == f"round {KILLS}"
    leftovers = [p for p in (tmp_path / ".site.generations").iterdir() if p.name.startswith(".staging")]
    assert leftovers == []


def test_a_rebuild_of_unchanged_rows_makes_only_the_state_document_and_the_same_bytes(tmp_path):
    """The served tree was rendered from these very rows (same fingerprint, same content
    snapshot), so nothing is rendered at all: the rows are never even read."""
    from mirror import hosts, pipeline
    from mirror.render import Site
    from mirror.settings import Settings
    from mirror.store import open_store

    with FakeUpstream() as upstream:
        settings = Settings(upstream=upstream.url, db=tmp_path / "m.duckdb", out=tmp_path / "site",
                            base_url="http://mirror.test")
        pipeline.build(settings)
        again = pipeline.crawl(settings).snapshot
    before = {p: p.stat().st_mtime_ns for p in settings.out.rglob("*") if p.is_file()}

    def unread():
        raise AssertionError("the rows were read")

    with open_store(settings.db, create=False) as store:
        profile = hosts.get_profile(settings.profile)
        site_ = Site(again, unread, base_url=settings.base_url, profile=profile,
                     content=store.content_snapshot(again.id), fingerprint=store.fingerprint(again.id))
        with pipeline.local_target(settings, profile) as target:
            result = publish(site_, target)
    assert result.written == 1
    state = settings.out / paths.state_file()
    assert orjson.loads(state.read_bytes())["snapshot"]["id"] == again.id
    assert [p for p, mtime in before.items() if p.stat().st_mtime_ns != mtime] == [state]
    fresh = settings.model_copy(update={"out": tmp_path / "fresh"})
    pipeline.render(fresh, snapshot_id=again.id)  # a full render of the same snapshot: the same bytes
    files = sorted(p.relative_to(settings.out) for p in settings.out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(fresh.out) for p in fresh.out.rglob("*") if p.is_file())
    assert all((settings.out / p).read_bytes() == (fresh.out / p).read_bytes() for p in files)
    assert verify_tree(settings.out).ok
