import errno
import os
import shutil
from pathlib import Path, PurePosixPath

import orjson
import pytest
from factories import item, row, with_status

from mirror import paths
from mirror.errors import RenderError
from mirror.models import Snapshot, row_from_item
from mirror.render import plan_site, served_item, write_site

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


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_render_matches_the_golden_tree(tmp_path, request):
    out = tmp_path / "site"
    write_site(plan_site(SNAPSHOT, golden_rows(), base_url="https://mirror.example/mcp"), out)
    if request.config.getoption("--update-golden"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    assert listing(out) == listing(GOLDEN)
    for rel in listing(GOLDEN):
        assert (out / rel).read_bytes() == (GOLDEN / rel).read_bytes(), rel


def test_items_are_served_verbatim_and_lists_keep_upstream_order():
    rows = golden_rows()
    plan = plan_site(SNAPSHOT, rows, base_url="https://mirror.example")
    tool = "io.github.a/tool"
    versions = orjson.loads(plan[paths.view_file(paths.versions_dir(tool))])
    assert [s["server"]["version"] for s in versions["servers"]] == ["1.10.0", "1.9.0", "1.0.0+build.7"]
    with_deleted = orjson.loads(plan[paths.view_file(paths.versions_dir(tool), True)])
    assert with_deleted["servers"][0]["server"]["version"] == "2.0.0-beta.1"
    first_page = orjson.loads(plan[paths.page_file("default", "30-0")])
    assert [(s["server"]["name"], s["server"]["version"]) for s in first_page["servers"]] == [
        ("com.example/Mixed-Case", "1.0.0"), ("io.github.a/tool", "1.0.0+build.7"),
        ("io.github.a/tool", "1.10.0"), ("io.github.a/tool", "1.9.0")]
    assert first_page["metadata"] == {"count": 4}
    by_key = {r.key: r for r in rows}
    assert plan[paths.view_file(paths.version_dir(tool, "1.10.0"))] == by_key[(tool, "1.10.0")].doc
    assert paths.view_file(paths.version_dir(tool, "2.0.0-beta.1")) not in plan
    assert plan[paths.view_file(paths.version_dir(tool, "2.0.0-beta.1"), True)] == by_key[(tool, "2.0.0-beta.1")].doc
    assert paths.view_file(paths.versions_dir("io.github.b/gone")) not in plan
    assert paths.view_file(paths.latest_dir("io.github.b/gone")) not in plan
    assert paths.view_file(paths.latest_dir("io.github.b/gone"), True) in plan
    # the deleted view exists only where it differs from the default one
    assert paths.view_file(paths.version_dir(tool, "1.10.0"), True) not in plan
    assert paths.view_file(paths.latest_dir(tool), True) not in plan


def test_pages_chain_with_cursors_until_the_last():
    rows = [row("io.github.p/s", f"1.0.{i}", latest=i == 24) for i in range(25)]
    plan = plan_site(SNAPSHOT, rows, base_url="http://x")
    seen, cursor = [], "10-0"
    while cursor:
        page = orjson.loads(plan[paths.page_file("default", cursor)])
        seen += [s["server"]["version"] for s in page["servers"]]
        assert page["metadata"]["count"] == len(page["servers"])
        cursor = page["metadata"].get("nextCursor")
    assert seen == sorted(r.version for r in rows)
    latest = orjson.loads(plan[paths.page_file("latest", "100-0")])
    assert [s["server"]["version"] for s in latest["servers"]] == ["1.0.24"] and "nextCursor" not in latest["metadata"]


def test_an_item_without_meta_gets_an_empty_one():
    entry = item("io.github.x/y", "1.0.0")
    del entry["_meta"]
    assert orjson.loads(served_item(row_from_item(entry)))["_meta"] == {}


def test_rerender_is_byte_identical_and_touches_nothing(tmp_path):
    out = tmp_path / "site"
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="http://x")
    first = write_site(plan, out)
    assert first.written == first.files and first.removed == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for p in stamps:
        os.utime(p, ns=(1, 1))
    again = write_site(plan_site(SNAPSHOT, golden_rows(), base_url="http://x"), out)
    assert (again.written, again.removed) == (0, 0)
    assert all(p.stat().st_mtime_ns == 1 for p in stamps)


def test_files_a_previous_render_made_are_removed_when_gone(tmp_path):
    out = tmp_path / "site"
    write_site(plan_site(SNAPSHOT, golden_rows(), base_url="http://x"), out)
    (out / "keep-me.txt").write_text("not ours")
    result = write_site(plan_site(SNAPSHOT, golden_rows()[:1], base_url="http://x"), out)
    assert result.removed > 0
    assert not (out / "v0.1/servers/io.github.a").exists()
    assert (out / "keep-me.txt").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "site"
    target.write_text("precious")
    with pytest.raises(RenderError, match="is a file"):
        write_site(plan_site(SNAPSHOT, golden_rows(), base_url="http://x"), target)
    assert target.read_text() == "precious"


def test_a_symlink_inside_the_tree_is_not_followed(tmp_path):
    out, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "v0.1").mkdir(parents=True)
    (out / "v0.1" / "servers").symlink_to(elsewhere)
    with pytest.raises(RenderError, match="link"):
        write_site(plan_site(SNAPSHOT, golden_rows(), base_url="http://x"), out)
    assert list(elsewhere.iterdir()) == []


def test_hosts_that_cannot_route_queries_get_one_page_of_latest_versions():
    for host in ("static", "cloudflare-pages"):
        plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://o.github.io/repo", host=host)
        index = "index.html" if host == "static" else "index.json"
        listing_doc = orjson.loads(plan[paths.view_file(paths.servers_dir(), index=index)])
        assert [(s["server"]["name"], s["server"]["version"]) for s in listing_doc["servers"]] == [
            ("com.example/Mixed-Case", "1.0.0"), ("io.github.a/tool", "1.10.0")]
        assert listing_doc["metadata"] == {"count": 2}  # never a nextCursor the host cannot resolve
        assert not any(paths.PAGES in p.parts or p.name == paths.DELETED_VIEW for p in plan), host
        state = orjson.loads(plan[paths.view_file(paths.extension_dir("state"), index=index)])
        assert state["host"]["profile"] == host and state["host"]["queryRouting"] is False
        assert state["host"]["degradations"]


def test_the_static_profile_uses_index_html_and_ships_404_and_nojekyll():
    plan = plan_site(SNAPSHOT, golden_rows(), base_url="https://o.github.io/repo", host="static")
    assert {PurePosixPath(".nojekyll"), PurePosixPath("404.html")} <= set(plan)
    api = [p for p in plan if p.parts[0] == "v0.1"]
    assert api and all(p.name == "index.html" for p in api)
    assert paths.view_file(paths.latest_dir("io.github.a/tool"), index="index.html") in plan


def test_hosts_without_fallback_lookup_get_every_deleted_view():
    nginx = plan_site(SNAPSHOT, golden_rows(), base_url="http://x", host="nginx")
    s3 = plan_site(SNAPSHOT, golden_rows(), base_url="http://x", host="s3")
    deleted_views = {p for p in s3 if p.name == paths.DELETED_VIEW}
    assert deleted_views > {p for p in nginx if p.name == paths.DELETED_VIEW}
    # every version and list has its deleted view, since S3 cannot fall back to index.json
    assert all(p.parent / paths.DELETED_VIEW in s3 for p in s3 if p.name == "index.json" and "servers" in p.parts
               and p.parent != paths.servers_dir())
    objects = orjson.loads(s3[PurePosixPath(".mcp-mirror/objects.json")])["objects"]
    assert objects["v0.1/_problems/server-not-found.json"]["contentType"] == "application/problem+json"
    assert objects["v0.1/servers/index.json"]["contentType"] == "application/json"
    assert set(objects) == {str(p) for p in s3 if p.parts[0] != ".mcp-mirror"}


def test_in_tree_host_files():
    netlify = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example/mcp", host="netlify")
    redirects = netlify[PurePosixPath("_redirects")].decode()
    latest_pages = "/mcp/v0.1/servers  version=latest cursor=:cursor  /v0.1/servers/_pages/latest/:cursor.json  200!"
    assert latest_pages in redirects
    assert "/mcp/v0.1/servers  limit=100  /v0.1/servers/_pages/default/100-0.json  200!" in redirects
    # other version filters are refused after the version=latest rules and before the plain ones
    assert redirects.rindex("version=latest") < redirects.index("version=:v") < redirects.index(
        "\n/mcp/v0.1/servers  limit=100  ")
    assert "Access-Control-Allow-Origin: *" in netlify[PurePosixPath("_headers")].decode()
    pages = plan_site(SNAPSHOT, golden_rows(), base_url="https://m.example", host="cloudflare-pages")
    assert orjson.loads(pages[PurePosixPath("v0.1/404.html")])["status"] == 404
    assert "/v0.1/servers/:ns/:name/versions/:version  /v0.1/servers/:ns/:name/versions/:version/index.json  200" in (
        pages[PurePosixPath("_redirects")].decode())


def test_disk_full_mid_write_is_one_error_and_leaves_no_partial_files(tmp_path, monkeypatch):
    out = tmp_path / "site"
    write_site(plan_site(SNAPSHOT, golden_rows(), base_url="http://x"), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    changed = SNAPSHOT.__class__(**{**SNAPSHOT.__dict__, "id": 8, "finished_at": "2025-12-02T00:00:00Z"})
    calls = []

    def full_disk(src, dst):
        calls.append(dst)
        if len(calls) > 1:  # the first file lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    real_replace = os.replace
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(RenderError, match="No space left on device"):
        write_site(plan_site(changed, golden_rows(), base_url="http://x"), out)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert set(after) == set(before)  # no temporary files left behind, nothing removed
    assert sum(after[p] != before[p] for p in before) == 1  # only the file that was fully replaced
