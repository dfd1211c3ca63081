"""Mirror of a mirror: a second mirror follows a first one's `static` tree, served by a plain
file server, through its change feed, and converges to the same content."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from factories import item
from trees import comparable_tree

from mirror import paths, pipeline
from mirror.errors import MirrorError
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings
from mirror.store import open_store


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def chain(tmp_path):
    """The fixture upstream; mirror A of it rendered for `static`, served by http.server; mirror B of A."""
    with FakeUpstream() as upstream:
        first = Settings(upstream=upstream.url, db=tmp_path / "a.duckdb", out=tmp_path / "a", profile="static",
                         base_url="http://a.test")
        pipeline.build(first)
        handler = functools.partial(_Quiet, directory=str(first.out))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        requests = []
        original = _Quiet.send_response

        def counting(self, code, message=None):
            requests.append((self.path, code))
            original(self, code, message)

        _Quiet.send_response = counting
        second = Settings(upstream=f"http://127.0.0.1:{server.server_address[1]}", db=tmp_path / "b.duckdb",
                          out=tmp_path / "b", base_url="http://b.test")
        try:
            yield upstream, first, second, requests
        finally:
            _Quiet.send_response = original
            server.shutdown()
            server.server_close()


def rows_of(settings):
    with open_store(settings.db) as store:
        return {(r.name, r.version): r.doc for r in store.load_rows(store.ok_snapshot().id)}


def same_content(first, second, tmp_path):
    """B holds A's rows, and renders the tree A's rows render for B's host (ids and times aside)."""
    assert rows_of(second) == rows_of(first)
    again = Settings(upstream=first.upstream, db=first.db, out=tmp_path / "a-as-b", base_url=second.base_url)
    pipeline.render(again)
    assert comparable_tree(second.out) == comparable_tree(again.out)


def test_a_second_mirror_follows_a_static_tree_and_converges(chain, tmp_path):
    upstream, first, second, requests = chain
    # the static tree serves directories by redirecting to the trailing slash: the feed's index too
    result = pipeline.build(second)
    assert result.crawl.snapshot.mode == "full" and result.crawl.snapshot.source == 1
    assert ("/v0.1/x/mcp-mirror/changes", 301) in requests
    assert all(code in (200, 301) for _, code in requests)
    same_content(first, second, tmp_path)
    deleted = sum(1 for doc in rows_of(second).values() if b'"status":"deleted"' in doc)
    assert deleted > 0  # deleted rows, which no other file of a static tree holds, came through the base

    registry = upstream.registry
    entries = registry.entries
    registry.publish(item(entries[0]["server"]["name"], "99.0.0")["server"])
    registry.set_status(entries[5]["server"]["name"], entries[5]["server"]["version"], "deleted", "malware")
    registry.edit(entries[9]["server"]["name"], entries[9]["server"]["version"], description="edited")
    assert pipeline.build(first).crawl.snapshot.mode == "incremental"
    requests.clear()
    followed = pipeline.build(second)
    assert followed.crawl.snapshot.mode == "incremental"
    assert followed.crawl.plan.reason == "the upstream mirror's deltas from snapshot 1 to 2"
    assert [path for path, code in requests if code == 200] == [
        "/v0.1/x/mcp-mirror/changes/", "/v0.1/x/mcp-mirror/changes/2-0/"]
    assert followed.crawl.change_counts == {"version_added": 1, "latest_changed": 1, "status_changed": 1,
                                            "version_updated": 1}
    same_content(first, second, tmp_path)

    # a row that vanished upstream: A's periodic full crawl finds it, and its feed tells B
    registry.remove(entries[20]["server"]["name"], entries[20]["server"]["version"])
    assert pipeline.build(first, full=True).crawl.change_counts == {"version_removed": 1}
    assert pipeline.build(second).crawl.change_counts == {"version_removed": 1}
    same_content(first, second, tmp_path)

    # nothing new: one request, the feed's index
    requests.clear()
    assert pipeline.build(second).crawl.changes == 0
    assert [path for path, code in requests if code == 200] == ["/v0.1/x/mcp-mirror/changes/"]


@pytest.mark.parametrize("source, warning", [
    (0, "the upstream mirror's feed has no unbroken chain from snapshot 0 to 2"),
    (7, "the upstream mirror went back from snapshot 7 to 2; reading its base"),
])
def test_a_gap_or_a_feed_gone_back_is_reported_and_answered_with_the_base(chain, tmp_path, source, warning):
    upstream, first, second, requests = chain
    pipeline.build(second)
    registry = upstream.registry
    registry.edit(registry.entries[1]["server"]["name"], registry.entries[1]["server"]["version"], description="x")
    pipeline.build(first)
    with open_store(second.db) as store:
        store.con.execute("UPDATE snapshots SET source = ?", [source])
    result = pipeline.build(second)
    assert result.crawl.snapshot.mode == "full"
    assert result.crawl.plan.warning.startswith(warning)
    same_content(first, second, tmp_path)


def test_the_state_document_links_the_feed_and_deltas_name_their_snapshot(chain):
    upstream, first, _, _ = chain
    registry = upstream.registry
    registry.set_status(registry.entries[2]["server"]["name"], registry.entries[2]["server"]["version"],
                        "deprecated", "old")
    pipeline.build(first)
    root = first.out
    state = orjson.loads((root / paths.state_file("index.html")).read_bytes())
    assert state["changes"] == {"path": "v0.1/x/mcp-mirror/changes/index.html",
                                "url": "http://a.test/v0.1/x/mcp-mirror/changes"}
    index = orjson.loads((root / state["changes"]["path"]).read_bytes())
    assert index["snapshot"]["id"] == 2 and [d["snapshot"]["id"] for d in index["deltas"]] == [2]
    delta = orjson.loads((root / index["deltas"][0]["pages"][0] / "index.html").read_bytes())
    assert delta["previous"] == 1
    assert [(c["snapshot"], c["kind"]) for c in delta["changes"]] == [(2, "status_changed")]
    assert delta["changes"][0]["time"] == delta["snapshot"]["finishedAt"]
    assert sum(orjson.loads((root / p / "index.html").read_bytes())["metadata"]["count"]
               for p in index["base"]["pages"]) == \
        index["base"]["rows"] == 120


@pytest.mark.parametrize("pages", [["https://evil.example/v0.1/x/mcp-mirror/changes/1-0"],
                                   ["v0.1/x/mcp-mirror/changes/../../../../etc/passwd"], "not a list"])
def test_a_feed_that_names_anything_but_its_own_pages_is_refused_in_one_line(tmp_path, pages):
    root = tmp_path / "tree"
    feed = root / "v0.1" / "x" / "mcp-mirror" / "changes"
    feed.mkdir(parents=True)
    (feed / "index.html").write_bytes(orjson.dumps({"snapshot": {"id": 3}, "base": {"pages": pages}, "deltas": []}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        follower = Settings(upstream=f"http://127.0.0.1:{server.server_address[1]}", db=tmp_path / "f.duckdb")
        with pytest.raises(MirrorError, match=r"change feed is malformed \(a page is not a feed page path\)"):
            pipeline.crawl(follower)
    finally:
        server.shutdown()
        server.server_close()
    with open_store(follower.db) as store:
        assert [s.outcome for s in store.list_snapshots()] == ["failed"]


def test_a_static_tree_without_a_feed_is_refused_rather_than_mirrored_wrong(chain, tmp_path):
    _, first, second, _ = chain
    import shutil

    shutil.rmtree(first.out.resolve() / paths.feed_dir())  # as an older mcp-mirror rendered it
    with pytest.raises(MirrorError, match="without query routing and without a change feed"):
        pipeline.crawl(second)
