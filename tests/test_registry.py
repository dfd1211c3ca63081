"""The crawler against the fixture upstream over real HTTP."""

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from factories import item

from mirror import registry
from mirror.errors import UpstreamError
from mirror.fake_upstream import FakeUpstream


def crawl_all(upstream_url, sleeps=None):
    with registry.make_client(timeout=5) as client:
        pages = list(registry.iter_pages(client, upstream_url, sleep=(sleeps if sleeps is not None else []).append))
    return pages


def test_cursors_are_sent_back_exactly_even_with_plus_and_slash():
    # 100 rows, the 100th of which has a build-metadata version, so the cursor is "name:1.0.0+b.99"
    entries = [item("io.github.p/s", f"1.0.{i:03d}") for i in range(99)] + [item("io.github.p/t", "1.0.0+b.99")]
    entries.append(item("io.github.z/last", "2.0.0"))
    with FakeUpstream(entries) as upstream:
        pages = crawl_all(upstream.url)
        sent = [parse_qs(urlsplit(target).query) for target in upstream.registry.requests]
    assert [len(p.items) for p in pages] == [100, 1]
    assert pages[0].next_cursor == "io.github.p/t:1.0.0+b.99"
    assert sent[1]["cursor"] == ["io.github.p/t:1.0.0+b.99"]  # decoded server-side to the same string
    assert "cursor=io.github.p%2Ft%3A1.0.0%2Bb.99" in upstream.registry.requests[1]
    assert all(q["limit"] == ["100"] and q["include_deleted"] == ["true"] for q in sent)


def test_a_full_last_page_is_followed_by_an_empty_one():
    entries = [item("io.github.p/s", f"1.0.{i:03d}") for i in range(200)]
    with FakeUpstream(entries) as upstream:
        pages = crawl_all(upstream.url)
    assert [len(p.items) for p in pages] == [100, 100, 0]
    assert pages[-1].next_cursor is None


def test_an_upstream_with_a_path_prefix():
    with FakeUpstream([item("io.github.p/s", "1.0.0")], prefix="/registry/api") as upstream:
        assert upstream.url.endswith("/registry/api")
        assert len(crawl_all(upstream.url)[0].items) == 1


def test_transient_errors_are_retried_with_backoff():
    with FakeUpstream([item("io.github.p/s", "1.0.0")]) as upstream:
        upstream.registry.fail_next = [(503, b"busy", "text/plain"), (429, b"slow down", "text/plain")]
        sleeps = []
        pages = crawl_all(upstream.url, sleeps)
    assert len(pages[0].items) == 1
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_honoured_and_capped():
    assert registry._backoff(0, "7") == 7.0
    assert registry._backoff(0, "100000") == 120.0
    assert registry._backoff(10, None) == 30.0


def test_a_repeated_cursor_stops_the_crawl():
    def loop(request):
        return httpx.Response(200, json={"servers": [], "metadata": {"nextCursor": "same"}})

    with httpx.Client(transport=httpx.MockTransport(loop)) as client, pytest.raises(UpstreamError, match="repeated"):
        list(registry.iter_pages(client, "http://up.example"))


def test_redirects_are_not_followed():
    with FakeUpstream([item("io.github.p/s", "1.0.0")]) as upstream, registry.make_client() as client, \
            pytest.raises(UpstreamError, match="HTTP 308"):
        registry.fetch_servers_page(client, upstream.url + "/v0.1/servers/?limit=100")
