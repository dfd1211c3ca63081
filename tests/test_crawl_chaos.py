"""The crawler against a hostile or broken upstream (tests/chaos_upstream.py), over real HTTP.

Transient misbehaviour ends in the right rows; everything else in one UpstreamError whose
message is one line, with time and memory bounded by CrawlLimits.
"""

import os
import tracemalloc
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from chaos_upstream import (
    ChaosUpstream,
    cut_unframed,
    deep,
    deep_item,
    gzip_bomb,
    hang_up,
    honest,
    http_date_in,
    huge,
    minting,
    redirect,
    retry_after,
    spliced,
    stall,
    status,
    trickle,
    truncated,
)
from factories import item
from fakeclock import FakeClock, ticking_client

from mirror import pipeline, registry
from mirror.errors import MirrorError, UpstreamError
from mirror.models import Unparsed
from mirror.registry import CrawlLimits, MiB
from mirror.settings import Settings
from mirror.store import open_store

ENTRIES = [item("io.github.chaos/s", f"1.0.{i:03d}") for i in range(150)]
KEYS = [("io.github.chaos/s", f"1.0.{i:03d}") for i in range(150)]


def crawl(up, limits=registry.DEFAULT_LIMITS, sleeps=None, clock=None):
    """The crawl's keys; on `clock` (a FakeClock) when given, whose reads of a trickle take its interval."""
    sleep = (sleeps if sleeps is not None else []).append
    with registry.make_client(timeout=5) if clock is None else ticking_client(clock) as client:
        budget = None if clock is None else registry.Budget.start(limits, sleep, clock)
        pages = list(registry.iter_pages(client, up.url, limits=limits, sleep=sleep, budget=budget))
    return [(entry["server"]["name"], entry["server"]["version"]) for page in pages for entry in page.items]


def crawl_fails(up, limits=registry.DEFAULT_LIMITS, sleeps=None, clock=None) -> str:
    with pytest.raises(UpstreamError) as caught:
        crawl(up, limits, sleeps, clock)
    message = str(caught.value)
    assert "\n" not in message and "(" in message  # one line, with a hint
    return message


@pytest.fixture
def up():
    with ChaosUpstream(ENTRIES) as chaos:
        yield chaos


def test_429_with_retry_after_seconds_waits_as_told(up):
    up.faults = [retry_after("2"), honest, retry_after("1", code=503)]
    sleeps = []
    assert crawl(up, sleeps=sleeps) == KEYS
    assert sleeps == [2.0, 1.0]


def test_429_with_retry_after_as_an_http_date(up):
    up.faults = [retry_after(http_date_in(3))]
    sleeps = []
    assert crawl(up, sleeps=sleeps) == KEYS
    assert len(sleeps) == 1 and 1.0 < sleeps[0] <= 3.0  # the date has whole seconds


def test_retry_after_is_capped(up):
    up.faults = [retry_after("600")]
    sleeps = []
    assert crawl(up, CrawlLimits(retry_after_cap=5), sleeps) == KEYS
    assert sleeps == [5.0]


def test_retry_after_beyond_the_deadline_ends_the_crawl_without_waiting(up):
    up.fault = retry_after("3600")
    sleeps = []
    message = crawl_fails(up, CrawlLimits(deadline=60), sleeps)
    assert message.startswith("upstream asked to wait 3600 s (Retry-After) for ")
    assert "past the crawl's 60 s deadline" in message
    assert sleeps == [] and len(up.requests) == 1


def test_a_burst_of_5xx_is_retried_with_jittered_backoff(up):
    up.faults = [honest, status(500), status(502), status(503), status(408)]
    sleeps = []
    with pytest.raises(UpstreamError, match="HTTP 408 for .*gave up after 4 attempts"):
        crawl(up, sleeps=sleeps)
    up.faults = [honest, status(500), status(502), status(503)]
    sleeps = []
    assert crawl(up, sleeps=sleeps) == KEYS
    assert len(sleeps) == 3 and all(0 <= s <= ceiling for s, ceiling in zip(sleeps, (0.5, 1.0, 2.0), strict=True))


def test_5xx_that_outlast_the_retries_fail_in_one_line(up):
    up.fault = status(500)
    message = crawl_fails(up)
    assert message.startswith("upstream answered HTTP 500 for ") and "gave up after 4 attempts" in message
    assert len(up.requests) == 4


@pytest.mark.parametrize("fault", [truncated(), cut_unframed(), hang_up(reset=True), hang_up(reset=False)],
                         ids=["short-of-content-length", "cut-json", "reset", "closed"])
def test_one_cut_or_dropped_response_is_retried(up, fault):
    up.faults = [honest, fault]
    sleeps = []
    assert crawl(up, sleeps=sleeps) == KEYS
    assert len(sleeps) == 1 and len(up.requests) == 3


def test_truncation_every_time_fails_in_one_line(up):
    up.fault = truncated()
    message = crawl_fails(up)
    assert message.startswith("upstream cut the response short: ") and "gave up after 4 attempts" in message


def test_a_timeout_is_retried(up):
    up.faults = [stall()]
    sleeps = []
    assert crawl(up, CrawlLimits(request_timeout=0.3), sleeps) == KEYS
    assert len(sleeps) == 1


def test_a_trickled_body_stops_at_the_deadline(up):
    up.faults = [honest]
    up.fault = trickle(interval=0.5, wait=0.01)
    clock = FakeClock()
    began = clock()
    message = crawl_fails(up, CrawlLimits(deadline=1.5), clock=clock)
    assert message.startswith("crawl passed its 1.5 s deadline after 1 pages: ")
    assert clock() - began == 1.5  # the read that reached the deadline was the last


def test_a_trickled_response_is_cut_at_the_response_deadline_and_retried(up):
    up.faults = [honest, trickle(interval=0.1, wait=0.01)]  # the second page trickles once, then is honest
    sleeps = []
    assert crawl(up, CrawlLimits(response_deadline=0.5), sleeps, FakeClock()) == KEYS
    assert len(sleeps) == 1 and len(up.requests) == 3
    assert up.requests[1] == up.requests[2]  # the same page asked again


def test_a_trickle_that_outlasts_the_retries_fails_in_one_line(up):
    up.faults = [honest]
    up.fault = trickle(interval=0.1, wait=0.01)
    sleeps = []
    message = crawl_fails(up, CrawlLimits(response_deadline=0.4), sleeps, FakeClock())
    assert message.startswith("upstream took more than 0.4 s to send one response: ")
    assert "raise --response-deadline" in message and "gave up after 4 attempts" in message
    assert len(up.requests) == 5 and len(set(up.requests[1:])) == 1 and len(sleeps) == 3


def test_a_stalled_body_stops_at_the_deadline(up):
    """A real socket's wait: the read timeout is clamped to the deadline (see
    tests/test_registry.py for the clamp on a fake clock), so the stall ends in the deadline's
    error, not the 5 s timeout's, and the stall's 30 s are never waited."""
    up.fault = stall()
    message = crawl_fails(up, CrawlLimits(deadline=1.0))
    assert message.startswith("crawl passed its 1 s deadline after 0 pages: ")


def test_endless_cursors_over_the_same_rows_stop_after_three_stale_pages(up):
    up.fault = minting(lambda n: ENTRIES[:100])
    message = crawl_fails(up)
    assert message.startswith("upstream sent 3 pages in a row with no new rows but a nextCursor: ")
    assert len(up.requests) == 4


def test_endless_empty_pages_with_cursors_stop(up):
    up.fault = minting(lambda n: [])
    assert "3 pages in a row with no new rows" in crawl_fails(up)
    assert len(up.requests) == 3


def test_cursors_minted_for_a_row_or_two_each_stop_within_the_page_bound(up):
    up.fault = minting(lambda n: [item(f"io.github.mint/s{n}", "1.0.0")])
    message = crawl_fails(up)
    assert message.startswith("upstream keeps minting cursors: 11 pages for 11 rows")  # 11 >= 11 // 10 + 10
    assert len(up.requests) == 11


def test_more_rows_than_the_crawl_allows(up):
    assert "upstream sent more than 120 rows in 2 pages: " in crawl_fails(up, CrawlLimits(max_rows=120))


def test_an_overlong_cursor_is_refused(up):
    body = orjson.dumps({"servers": ENTRIES[:1], "metadata": {"nextCursor": "x" * 3000}})
    up.fault = status(200, body, {"Content-Type": "application/json"})
    assert "upstream sent a nextCursor of 3000 characters" in crawl_fails(up)


def measured(up, limits=registry.DEFAULT_LIMITS):
    """The crawl's error and the peak memory Python allocated for it (the client's TLS setup aside)."""
    with registry.make_client(timeout=5) as client:
        tracemalloc.start()
        try:
            with pytest.raises(UpstreamError) as caught:
                list(registry.iter_pages(client, up.url, limits=limits))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "\n" not in str(caught.value)
    return str(caught.value), peak


def test_a_50_mb_body_that_announces_itself_is_refused_unread(up):
    up.fault = huge(50_000_000)
    message, peak = measured(up)
    assert message.startswith("upstream announced 50000000 bytes, more than 32 MiB, for ")
    assert peak < 1 * MiB and up.body_bytes < 20 * MiB  # at most what the sockets buffered


def test_a_50_mb_body_without_a_length_stops_at_the_byte_cap(up):
    up.fault = huge(50_000_000, content_length=False)
    message, peak = measured(up)
    assert message.startswith("upstream sent more than 32 MiB for ")
    assert peak < 38 * MiB  # the cap, bytearray's spare eighth, a network chunk
    # asked again at limit 10 and 1 (a page over the cap may be large rows), each read stopped short
    assert len(up.requests) == 3 and up.body_bytes < 3 * 50_000_000


def test_a_gzip_bomb_stops_at_the_byte_cap_counting_decoded_bytes(up):
    up.fault = gzip_bomb(64 * MiB)
    message, peak = measured(up, CrawlLimits(max_response_bytes=4 * MiB))
    assert message.startswith("upstream sent more than 4 MiB for ")
    assert peak < 6 * MiB and up.body_bytes < 1 * MiB  # the cap, its spare eighth, an inflate step


def test_an_encoding_it_did_not_ask_for_is_refused(up):
    up.fault = status(200, b"\x00" * 10, {"Content-Encoding": "br"})
    assert "upstream sent Content-Encoding 'br' for " in crawl_fails(up)


@pytest.mark.parametrize("code", [301, 302])
def test_a_redirect_is_an_error_naming_the_location(up, code):
    up.fault = redirect(code, "https://elsewhere.example/v0.1/servers?limit=100")
    message = crawl_fails(up)
    assert message.startswith(f"upstream answered HTTP {code} redirect to https://elsewhere.example/v0.1/servers?")
    assert len(up.requests) == 1


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_a_page_with_too_deep_metadata_is_one_clear_error(up, depth):
    up.fault = deep(depth, in_metadata=True)
    assert crawl_fails(up).startswith("upstream page nests JSON deeper than 1024 levels: ")


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_an_item_too_deep_for_the_parser_is_one_unparsed_item(up, depth):
    up.fault = deep(depth)
    with registry.make_client(timeout=5) as client:
        [page] = list(registry.iter_pages(client, up.url))
    assert page.items == [Unparsed("entry nests JSON deeper than the parser's 1024 levels", 2 * depth)]


@pytest.mark.parametrize("depth", [5000, 100_000])
def test_a_row_too_deep_for_the_parser_is_one_rejected_row_and_the_build_goes_on(tmp_path, depth):
    with ChaosUpstream(ENTRIES) as up:
        up.fault = spliced(deep_item(depth), deep_item(depth, name="io.github.chaos/z-deep", version="1.0.0"))
        settings = Settings(upstream=up.url, db=tmp_path / "m.duckdb", out=tmp_path / "site",
                            base_url="http://mirror.test")
        result = pipeline.build(settings)
    assert [(r.name, r.version, r.reason) for r in result.crawl.rejected] == [
        ("io.github.chaos/deep", "6.6.6", "entry nests JSON deeper than the parser's 1024 levels"),
        ("io.github.chaos/z-deep", "1.0.0", "entry nests JSON deeper than the parser's 1024 levels")]
    assert orjson.loads(result.crawl.rejected[0].doc) == {"mcp-mirror": f"entry of {len(deep_item(depth))} bytes "
                                                                        "could not be parsed"}
    with open_store(settings.db, create=False) as store:
        assert [r.key for r in store.load_rows(result.crawl.snapshot.id)] == KEYS
    versions = settings.out / "v0.1" / "servers" / "io.github.chaos" / "s" / "versions"
    assert all((versions / version / "index.json").is_file() for _, version in KEYS)
    assert not (settings.out / "v0.1" / "servers" / "io.github.chaos" / "deep").exists()


def test_a_page_just_within_the_depth_bound_is_read(up):
    up.fault = deep(1000)  # the page, its servers list, then 1000 levels (admission rejects the entry)
    with registry.make_client(timeout=5) as client:
        pages = list(registry.iter_pages(client, up.url))
    assert len(pages) == 1 and len(pages[0].items) == 1


def test_the_crawler_only_ever_requests_list_pages_on_the_upstream(up):
    bait = up.url + "/evil"
    up.registry.entries = [
        item("io.github.bait/s", f"1.0.{i:03d}", websiteUrl=f"{bait}/site", repository={"url": f"{bait}/repo"},
             icons=[{"src": f"{bait}/icon.png"}], remotes=[{"type": "streamable-http", "url": f"{bait}/mcp"}])
        for i in range(120)
    ]
    assert len(crawl(up)) == 120
    assert len(up.requests) == 2 and all(target.startswith("/v0.1/servers?") for target in up.requests)


# -- the whole pipeline: a failed crawl changes nothing that is served --------------------


def _site_bytes(out):
    tree = out.resolve()
    return os.readlink(out), {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fault", [
    status(500), status(503), huge(), huge(content_length=False), redirect(302, "https://elsewhere.example/"),
    truncated(), deep(2000, in_metadata=True), minting(lambda n: ENTRIES[:5]), trickle(interval=0.3, wait=0.01),
], ids=["500s", "503s", "50MB", "50MB-unframed", "redirect", "truncated", "deep", "minting", "trickle"])
def test_a_failed_build_leaves_the_previous_snapshot_and_site_byte_identical(tmp_path, fault):
    with ChaosUpstream(ENTRIES) as up:
        settings = Settings(upstream=up.url, db=tmp_path / "m.duckdb", out=tmp_path / "site",
                            base_url="http://mirror.test", deadline=2.0)
        pipeline.build(settings)
        before = _site_bytes(settings.out)
        up.fault = fault
        clock = FakeClock()  # the crawl's deadline on it: a trickle's reads take its interval
        with pytest.raises(MirrorError) as caught, ticking_client(clock, settings.timeout) as client:
            pipeline.build(settings, client=client, sleep=lambda seconds: None, monotonic=clock)
    assert "\n" not in str(caught.value)
    assert _site_bytes(settings.out) == before
    with open_store(settings.db, create=False) as store:
        assert [s.outcome for s in store.list_snapshots()] == ["ok", "failed"]
        assert store.latest_ok_snapshot().id == 1


def test_a_trickled_build_fails_at_the_response_deadline_leaving_everything_as_it_was(tmp_path):
    with ChaosUpstream(ENTRIES) as up:
        settings = Settings(upstream=up.url, db=tmp_path / "m.duckdb", out=tmp_path / "site",
                            base_url="http://mirror.test", response_deadline=0.4)
        pipeline.build(settings)
        before = _site_bytes(settings.out)
        asked = len(up.requests)
        up.fault = trickle(interval=0.1, wait=0.01)
        clock = FakeClock()
        with pytest.raises(MirrorError) as caught, ticking_client(clock, settings.timeout) as client:
            pipeline.build(settings, client=client, sleep=lambda seconds: None, monotonic=clock)
        trickled = up.requests[asked:]
    message = str(caught.value)
    assert "\n" not in message and message.startswith("upstream took more than 0.4 s to send one response: ")
    assert "gave up after 4 attempts" in message
    assert len(trickled) == 4 and len(set(trickled)) == 1  # the first request of the crawl, four times
    assert _site_bytes(settings.out) == before
    with open_store(settings.db, create=False) as store:
        assert [s.outcome for s in store.list_snapshots()] == ["ok", "failed"]
        assert store.latest_ok_snapshot().id == 1


def _limits(up):
    return [parse_qs(urlsplit(target).query)["limit"][0] for target in up.requests]


def test_a_page_over_the_cap_is_read_again_in_smaller_pages():
    entries = [item("io.github.big/s", f"1.0.{i:03d}", description="x" * 2000) for i in range(150)]
    with ChaosUpstream(entries) as up:
        keys = crawl(up, CrawlLimits(max_response_bytes=100_000))
    assert keys == [("io.github.big/s", f"1.0.{i:03d}") for i in range(150)]
    # 100 rows are ~250 kB: ten pages of 10, then the rest asked for at 100 again, and at 10
    assert _limits(up) == ["100"] + ["10"] * 10 + ["100"] + ["10"] * 6  # the last page of 10 is full


def test_one_row_over_the_cap_alone_is_one_clear_error():
    entries = [item("io.github.big/s", f"1.0.{i:03d}") for i in range(30)]
    entries[12]["server"]["description"] = "x" * 200_000
    with ChaosUpstream(entries) as up:
        message = crawl_fails(up, CrawlLimits(max_response_bytes=100_000))
    assert message.startswith("upstream announced ") and "limit=1" in message
    assert "one row alone is over the cap" in message
    assert _limits(up) == ["100", "10", "10", "1", "1", "1"]  # rows 0-9, then 10, 11, and 12 alone
