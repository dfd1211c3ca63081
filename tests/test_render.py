import errno
import os
import shutil
from pathlib import Path

import orjson
import pytest
from factories import item, row, with_status
from hypothesis import given, settings
from hypothesis import strategies as st
from trees import plan_site, publish_site, site

from mirror import hosts, paths
from mirror.errors import RenderError
from mirror.models import Change, Delta, Snapshot, row_from_item
from mirror.render.api import served_item
from mirror.verify import verify_tree

GOLDEN = Path(__file__).parent / "golden" / "site"
SNAPSHOT = Snapshot(id=7, started_at="2025-12-01T00:00:00Z", finished_at="2025-12-01T00:00:05.5Z",
                    upstream="https://registry.example", mode="full", outcome="ok", error=None,
                    rows=6, servers=3, rejected=0)


def golden_rows():
    rows = [
        row("com.example/Mixed-Case", "1.0.0", latest=True, published="2025-09-01T00:00:00Z"),
        row("io.github.a/tool", "1.9.0", published="2025-09-01T00:00:00Z"),
        row("io.github.a/tool", "1.10.0", latest=True, published="2025-10-01T00:00:00.25Z"),
        row_from_item(with_status(item("io.github.a/tool", "2.0.0-beta.1", published="2025-11-01T00:00:00Z"),
                                  "deleted")),
        row_from_item(with_status(item("io.github.a/tool", "1.0.0+build.7", published="2025-08-01T00:00:00Z"),
                                  "deprecated", "use 1.10.0")),
    ]
    gone = item("io.github.b/gone", "0.1.0", latest=True)
    rows.append(row_from_item(with_status(gone, "deleted")))
    return rows


def golden_deltas():
    """Snapshot 7's change feed: one status change, and a version gone since snapshot 6."""
    deprecated = next(r for r in golden_rows() if r.version == "1.0.0+build.7")
    return [Delta(SNAPSHOT, 6, [Change("status_changed", deprecated.name, deprecated.version,
                                       {"from": "active", "to": "deprecated", "message": "use 1.10.0"}),
                                Change("version_removed", "io.github.a/tool", "0.9.0")],
                  [(deprecated.name, deprecated.version, deprecated.doc), ("io.github.a/tool", "0.9.0", None)])]


def listing(root: Path) -> list[str]:
    root = root.resolve()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_render_matches_the_golden_tree(tmp_path, request):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="https://mirror.example/mcp", deltas=golden_deltas())
    if request.config.getoption("--update-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out.resolve(), GOLDEN)
    assert listing(out) == listing(GOLDEN)
    for rel in listing(GOLDEN):
        assert (out / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel


def test_entries_come_in_write_order_with_their_media_types():
    for host in hosts.PROFILES:
        entries = list(site(SNAPSHOT, golden_rows(), base_url="http://x", host=host).entries())
        kinds = [entry.kind for entry in entries]
        assert kinds == sorted(kinds), host  # documents, then lists, then pointers
        for entry in entries:
            if entry.path.startswith("v0.1/") or host != "static":
                assert entry.media_type == hosts.content_type(entry.path), (host, entry.path)


def test_items_are_served_verbatim_and_lists_keep_upstream_order():
    rows = golden_rows()
    plan = plan_site(SNAPSHOT, rows, base_url="https://mirror.example")
    tool = "io.github.a/tool"
    versions = orjson.loads(plan[paths.view_file(paths.versions_dir(tool))])
    assert [s["server"]["version"] for s in versions["servers"]] == ["1.10.0", "1.9.0", "1.0.0+build.7"]
    with_deleted = orjson.loads(plan[paths.view_file(paths.versions_dir(tool), deleted=True)])
    assert with_deleted["servers"][0]["server"]["version"] == "2.0.0-beta.1"
    assert not any(f"/{paths.PAGES}/" in path for path in plan)  # nginx computes the list endpoint
    first_page = orjson.loads(plan_site(SNAPSHOT, rows, base_url="https://mirror.example", host="s3")[
        paths.page_file("default", "30-0")])
    assert [(s["server"]["name"], s["server"]["version"]) for s in first_page["servers"]] == [
        ("com.example/Mixed-Case", "1.0.0"), ("io.github.a/tool", "1.0.0+build.7"),
        ("io.github.a/tool", "1.10.0"), ("io.github.a/tool", "1.9.0")]
    assert first_page["metadata"] == {"count": 4}
    by_key = {r.key: r for r in rows}
    assert plan[paths.view_file(paths.version_dir(tool, "1.10.0"))] == by_key[(tool, "1.10.0")].doc
    assert paths.view_file(paths.version_dir(tool, "2.0.0-beta.1")) not in plan
    assert plan[paths.view_file(paths.version_dir(tool, "2.0.0-beta.1"), deleted=True)] == by_key[
        (tool, "2.0.0-beta.1")].doc
    assert paths.view_file(paths.versions_dir("io.github.b/gone")) not in plan
    assert paths.view_file(paths.latest_dir("io.github.b/gone")) not in plan
    assert paths.view_file(paths.latest_dir("io.github.b/gone"), deleted=True) in plan
    # the deleted view exists only where it differs from the default one
    assert paths.view_file(paths.version_dir(tool, "1.10.0"), deleted=True) not in plan
    assert paths.view_file(paths.latest_dir(tool), deleted=True) not in plan


def test_pages_chain_with_cursors_until_the_last():
    rows = [row("io.github.p/s", f"1.0.{i}", latest=i == 24) for i in range(25)]
    plan = plan_site(SNAPSHOT, rows, base_url="http://x", host="s3")
    seen, cursor = [], "10-0"
    while cursor:
        page = orjson.loads(plan[paths.page_file("default", cursor)])
        seen += [s["server"]["version"] for s in page["servers"]]
        assert page["metadata"]["count"] == len(page["servers"])
        cursor = page["metadata"].get("nextCursor")
    assert seen == sorted(r.version for r in rows)
    latest = orjson.loads(plan[paths.page_file("latest", "100-0")])
    assert [s["server"]["version"] for s in latest["servers"]] == ["1.0.24"] and "nextCursor" not in latest["metadata"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["io.github.a/x", "io.github.b/y", "com.c/z"]),
                          st.integers(0, 40), st.sampled_from(["active", "deprecated", "deleted"])),
                max_size=60, unique_by=lambda t: t[:2]),
       st.randoms(use_true_random=False))
def test_every_chain_lists_each_selected_row_once_in_order_whatever_the_input_order(specs, rnd):
    rows = [row_from_item(with_status(item(name, f"1.0.{n}", latest=n % 7 == 0), status)) for name, n, status in specs]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    plan = plan_site(SNAPSHOT, rows, base_url="http://x", host="s3")
    assert plan_site(SNAPSHOT, shuffled, base_url="http://x", host="s3") == plan
    ordered = sorted(rows, key=lambda r: r.key)
    for chain, (latest_only, with_deleted) in paths.CHAINS.items():
        expected = [r.key for r in ordered
                    if (with_deleted or r.status != "deleted") and (not latest_only or r.is_latest)]
        for size in paths.PAGE_SIZES:
            seen, cursor = [], paths.cursor(size, 0)
            while cursor:
                page = orjson.loads(plan[paths.page_file(chain, cursor)])
                assert len(page["servers"]) <= size
                seen += [(s["server"]["name"], s["server"]["version"]) for s in page["servers"]]
                cursor = page["metadata"].get("nextCursor")
            assert seen == expected, (chain, size)


def test_an_item_without_meta_gets_an_empty_one():
    entry = item("io.github.x/y", "1.0.0")
    del entry["_meta"]
    assert orjson.loads(served_item(row_from_item(entry)))["_meta"] == {}


def test_republishing_the_same_snapshot_rewrites_only_the_state_document(tmp_path):
    out = tmp_path / "site"
    first = publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    assert first.written == first.files and first.removed == 0
    generation = os.readlink(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.resolve().rglob("*") if p.is_file()}
    for p in stamps:
        os.utime(p, ns=(1, 1))
    later = SNAPSHOT.__class__(**{**SNAPSHOT.__dict__, "id": 8, "finished_at": "2025-12-02T00:00:00Z"})
    again = publish_site(later, golden_rows(), out, base_url="http://x", content=SNAPSHOT)
    assert (again.written, again.removed) == (1, 0)
    assert os.readlink(out) == generation  # no new generation for an unchanged tree
    changed = [p for p in stamps if p.stat().st_mtime_ns != 1]
    assert [str(p.relative_to(out.resolve())) for p in changed] == [paths.state_file()]
    assert orjson.loads((out / paths.state_file()).read_bytes())["snapshot"]["id"] == 8
    assert verify_tree(out).ok


def test_a_change_makes_a_new_generation_that_links_unchanged_files(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    before = out.resolve()
    old_bytes = {rel: (before / rel).read_bytes() for rel in listing(out)}
    rows = golden_rows()
    rows[0] = row("com.example/Mixed-Case", "1.0.0", latest=True, published="2025-09-01T00:00:00Z",
                  description="changed")
    result = publish_site(SNAPSHOT, rows, out, base_url="http://x")
    after = out.resolve()
    assert after != before and result.generation == after.name
    assert {rel: (before / rel).read_bytes() for rel in listing(before)} == old_bytes  # the previous one, intact
    unchanged = paths.view_file(paths.version_dir("io.github.a/tool", "1.9.0"))
    assert (after / unchanged).stat().st_ino == (before / unchanged).stat().st_ino  # a hard link, same mtime
    changed = paths.view_file(paths.version_dir("com.example/Mixed-Case", "1.0.0"))
    assert b"changed" in (after / changed).read_bytes()
    assert result.written < result.files / 2
    assert verify_tree(out).ok


def test_files_a_previous_render_made_are_gone_from_the_next_generation(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    result = publish_site(SNAPSHOT, golden_rows()[:1], out, base_url="http://x")
    assert result.removed > 0
    assert not (out / "v0.1/servers/io.github.a").exists()
    assert verify_tree(out).ok


def test_generations_beyond_the_previous_one_are_pruned(tmp_path):
    out = tmp_path / "site"
    for n in range(4):
        publish_site(SNAPSHOT, golden_rows()[: n + 1], out, base_url="http://x")
    generations = sorted(p.name for p in (tmp_path / ".site.generations").iterdir() if p.name.startswith("g"))
    assert generations == ["g000003", "g000004"] and os.readlink(out).endswith("g000004")


def test_a_plain_directory_from_before_generations_is_adopted(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    plain = tmp_path / "plain"
    shutil.copytree(out.resolve(), plain)
    out.unlink()
    plain.rename(out)
    publish_site(SNAPSHOT, golden_rows()[:2], out, base_url="http://x")
    assert out.is_symlink() and verify_tree(out).ok


def test_an_output_path_that_is_a_file_or_a_foreign_directory_is_refused(tmp_path):
    target = tmp_path / "site"
    target.write_text("precious")
    with pytest.raises(RenderError, match="is a file"):
        publish_site(SNAPSHOT, golden_rows(), target, base_url="http://x")
    assert target.read_text() == "precious"
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    with pytest.raises(RenderError, match="did not make"):
        publish_site(SNAPSHOT, golden_rows(), home, base_url="http://x")
    assert (home / "notes.txt").read_text() == "mine"


def test_a_symlink_planted_in_the_tree_is_never_followed_nor_published(tmp_path):
    out, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("secret")
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    planted = out / paths.view_file(paths.version_dir("io.github.a/tool", "1.9.0"))
    planted.unlink()
    planted.symlink_to(elsewhere / "secret")
    report = verify_tree(out)
    assert any("not a regular file" in problem for problem in report.problems)
    publish_site(SNAPSHOT, golden_rows()[:5], out, base_url="http://x")
    fresh = out / paths.view_file(paths.version_dir("io.github.a/tool", "1.9.0"))
    assert not fresh.is_symlink() and b"secret" not in fresh.read_bytes()
    assert (elsewhere / "secret").read_text() == "secret" and verify_tree(out).ok


def test_disk_full_mid_publish_is_one_error_and_leaves_the_previous_generation_served(tmp_path, monkeypatch):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    before = {rel: (out / rel).read_bytes() for rel in listing(out)}
    real_write = os.write
    calls = []

    def full_disk(fd, data):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(RenderError, match="No space left on device") as caught:
        publish_site(SNAPSHOT, golden_rows()[:3], out, base_url="http://x")
    assert "\n" not in str(caught.value)
    monkeypatch.undo()
    assert {rel: (out / rel).read_bytes() for rel in listing(out)} == before
    assert not list((tmp_path / ".site.generations").glob(".staging-*"))
    assert verify_tree(out).ok
    publish_site(SNAPSHOT, golden_rows()[:3], out, base_url="http://x")  # and the next run completes
    assert verify_tree(out).ok


def test_verify_names_a_flipped_byte_a_deleted_file_and_an_extra_file(tmp_path):
    out = tmp_path / "site"
    publish_site(SNAPSHOT, golden_rows(), out, base_url="http://x")
    assert verify_tree(out).ok
    flipped = out / paths.view_file(paths.version_dir("io.github.a/tool", "1.9.0"))
    data = bytearray(flipped.read_bytes())
    data[10] ^= 1
    flipped.unlink()  # a new inode: the previous generation shares the old one
    flipped.write_bytes(bytes(data))
    deleted = out / paths.view_file(paths.versions_dir("io.github.a/tool"))
    deleted.unlink()
    (out / "v0.1" / "stray.json").write_text("{}")
    problems = verify_tree(out).problems
    assert any(p.startswith(paths.view_file(paths.version_dir("io.github.a/tool", "1.9.0"))) and "corrupt" in p
               for p in problems)
    assert any(p.startswith(paths.view_file(paths.versions_dir("io.github.a/tool"))) and "missing" in p
               for p in problems)
    assert any(p.startswith("v0.1/stray.json") and "extra" in p for p in problems)


def test_hosts_that_cannot_route_queries_get_one_page_of_latest_versions_also_at_v0():
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://o.github.io/repo", host="static")
    listing_doc = orjson.loads(plan[paths.view_file(paths.servers_dir(), index="index.html")])
    assert [(s["server"]["name"], s["server"]["version"]) for s in listing_doc["servers"]] == [
        ("com.example/Mixed-Case", "1.0.0"), ("io.github.a/tool", "1.10.0")]
    assert listing_doc["metadata"] == {"count": 2}  # never a nextCursor the host cannot resolve
    assert not any(f"/{paths.PAGES}/" in p or p.endswith("/" + paths.DELETED_VIEW) for p in plan)
    # Docker's import reads /v0/servers: the one extra file a host that cannot rewrite needs
    assert [p for p in plan if p.startswith("v0/")] == ["v0/servers/index.html"]
    assert plan["v0/servers/index.html"] == plan[paths.view_file(paths.servers_dir(), index="index.html")]
    state = orjson.loads(plan[paths.state_file("index.html")])
    assert state["host"]["profile"] == "static" and state["host"]["queryRouting"] is False
    assert state["host"]["degradations"]


@pytest.mark.parametrize("host", ["nginx", "caddy", "netlify", "cloudflare-pages"])
def test_hosts_that_compute_the_list_endpoint_carry_no_page_chains(host):
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example", host=host)
    assert not any(f"/{paths.PAGES}/" in p for p in plan)
    assert paths.view_file(paths.servers_dir()) not in plan and paths.rows_index_file() in plan
    state = orjson.loads(plan[paths.state_file()])
    assert state["host"]["computedQueries"] and state["api"] == {"pageSizes": [], "chains": []}


def test_the_static_profile_uses_index_html_and_ships_404_and_nojekyll():
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://o.github.io/repo", host="static")
    assert {".nojekyll", "404.html"} <= set(plan)
    api = [p for p in plan if p.startswith("v0.1/")]
    assert api and all(p.endswith("/index.html") for p in api)
    assert paths.view_file(paths.latest_dir("io.github.a/tool"), index="index.html") in plan


def test_hosts_without_fallback_lookup_get_every_deleted_view():
    nginx = plan_site(SNAPSHOT, golden_rows(), base_url="http://x", host="nginx")
    s3 = plan_site(SNAPSHOT, golden_rows(), base_url="http://x", host="s3")
    deleted_views = {p for p in s3 if p.endswith(paths.DELETED_VIEW)}
    assert deleted_views > {p for p in nginx if p.endswith(paths.DELETED_VIEW)}
    # every version and list has its deleted view, since S3 cannot fall back to index.json
    assert all(p.rpartition("/")[0] + "/" + paths.DELETED_VIEW in s3 for p in s3
               if p.endswith("/index.json") and p.startswith("v0.1/servers/") and p.rpartition("/")[0]
               != paths.servers_dir())
    objects = orjson.loads(s3[".mcp-mirror/objects.json"])["objects"]
    assert objects["v0.1/_problems/server-not-found.json"]["contentType"] == "application/problem+json"
    assert objects["v0.1/servers/index.json"]["contentType"] == "application/json"
    assert set(objects) == {p for p in s3 if not p.startswith(".mcp-mirror/")} - {paths.state_file()}


def test_in_tree_host_files():
    netlify = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example/mcp", host="netlify")
    redirects = netlify["_redirects"].decode()
    # every API path is the function's: no rule of _redirects names one
    assert not any("/v0" in line.split()[0] for line in redirects.splitlines() if line and not line.startswith("#"))
    assert "/mcp/*  /:splat  200" in redirects
    function = netlify[".mcp-mirror/netlify-functions/mcp-query.mjs"].decode()
    assert 'export const config = { path: ["/mcp/v0.1", "/mcp/v0.1/*", "/mcp/v0", "/mcp/v0/*"], ' in function
    assert "Access-Control-Allow-Origin: *" in netlify["_headers"].decode()
    pages = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example", host="cloudflare-pages")
    assert "v0.1/404.html" not in pages
    assert not [line for line in pages["_redirects"].decode().splitlines() if line and not line.startswith("#")]
    assert "env.ASSETS.fetch" in pages["_worker.js"].decode()
    assert orjson.loads(pages["_routes.json"])["include"] == ["/v0.1", "/v0.1/*", "/v0", "/v0/*"]
    # both functions fall back from include-deleted.json to index.json: twins only where they differ
    for plan in (netlify, pages):
        twins = [p for p in plan if p.endswith("/" + paths.DELETED_VIEW)]
        assert 0 < len(twins) < len([p for p in plan if p.startswith("v0.1/servers/") and p.endswith("/index.json")])


def test_a_new_row_moves_only_the_pages_around_it_and_old_cursors_stay_good():
    rows = [row(f"io.github.n{i:04d}/s", "1.0.0", latest=True) for i in range(1500)]
    before = plan_site(SNAPSHOT, rows, base_url="http://x", host="s3")
    after = plan_site(SNAPSHOT, [*rows, row("io.github.n0700x/s", "1.0.0", latest=True)], base_url="http://x",
                      host="s3")
    pages = [p for p in after if f"/{paths.PAGES}/" in p]
    changed = [p for p in pages if before.get(p) != after[p]]
    assert len(changed) <= len(paths.CHAINS) * len(paths.PAGE_SIZES) * 3, changed  # not every later page
    for size in paths.PAGE_SIZES:
        prefix = paths.page_file("latest", f"{size}-").removesuffix(".json")
        chain = [orjson.loads(before[p]) for p in before if p.startswith(prefix)]
        assert sum(len(page["servers"]) for page in chain) / len(chain) >= size * 0.6  # pages stay well filled
        cursors = [page["metadata"]["nextCursor"] for page in chain if "nextCursor" in page["metadata"]]
        # a client part-way through the old chain carries on in the new one
        assert sum(paths.page_file("latest", cursor) in after for cursor in cursors) >= len(cursors) - 2


def test_a_row_render_cannot_serve_is_left_out_and_reported_never_fatal():
    good = golden_rows()
    broken = row("io.github.z/broken", "1.0.0", latest=True)
    broken = broken.__class__(**{**broken.__dict__, "doc": b'{"server": not json'})
    rendered = site(SNAPSHOT, [*good, broken], base_url="http://x")
    files = {entry.path: entry.data() for entry in rendered.entries()}
    assert [(s.name, s.version) for s in rendered.skipped] == [("io.github.z/broken", "1.0.0")]
    assert not any("io.github.z/broken" in path for path in files)
    assert all(b"io.github.z/broken" not in body for body in files.values())
    assert files == {e.path: e.data() for e in site(SNAPSHOT, good, base_url="http://x").entries()}
    assert rendered.state_summary()["counts"]["skipped"] == 1


@pytest.mark.parametrize("name", sorted(hosts.PROFILES))
def test_the_host_record_is_written_and_read_by_one_type(name):
    profile = hosts.get_profile(name)
    record = orjson.loads(orjson.dumps(profile.capabilities().to_json()))
    assert hosts.Capabilities.from_json(record) == profile.capabilities()
    assert record["profile"] == name and record["indexFile"] == profile.layout.index_name


@pytest.mark.parametrize("record", [
    None, [], "x", {}, {"queryRouting": "yes", "indexFile": 3, "degradations": [1, "a"]}])
def test_a_foreign_host_record_reads_as_the_defaults(record):
    read = hosts.Capabilities.from_json(record)
    assert read.routes_queries is True and read.index_file == paths.DEFAULT_VIEW and read.computed_queries is None
    assert read.degradations == (("a",) if isinstance(record, dict) and record.get("degradations") else ())
