"""The crawler against the fixture upstream over real HTTP (the hostile upstream: test_crawl_chaos.py)."""

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from factories import item
from fakeclock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from mirror import registry
from mirror.admission import collect_entries
from mirror.errors import UpstreamError, UsageError
from mirror.fake_upstream import FakeUpstream
from mirror.models import Unparsed


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
    assert len(sleeps) == 2  # full jitter: uniform(0, 0.5 * 2**n)
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


def test_retry_after_in_both_forms():
    now = datetime(2025, 11, 1, 12, 0, 0, tzinfo=UTC)
    assert registry.retry_after_seconds("7", now=now) == 7.0
    assert registry.retry_after_seconds(" 120 ", now=now) == 120.0
    assert registry.retry_after_seconds("Sat, 01 Nov 2025 12:00:30 GMT", now=now) == 30.0
    assert registry.retry_after_seconds("Sat, 01 Nov 2025 11:00:00 GMT", now=now) == 0.0  # already past
    assert registry.retry_after_seconds("Sat, 01 Nov 2025 12:01:00 -0000", now=now) == 60.0
    for junk in (None, "", "soon", "-5", "1.5", "\u00b2"):
        assert registry.retry_after_seconds(junk, now=now) is None, junk


def test_plain_http_is_refused_except_to_loopback():
    for ok in ("https://registry.example", "http://127.0.0.1:8765", "http://127.1.2.3/x", "http://[::1]:80",
               "http://localhost:9/api"):
        registry.check_upstream_url(ok)
    for bad in ("http://example.org", "http://10.0.0.1", "http://localhost.example.org", "ftp://127.0.0.1"):
        with pytest.raises(UsageError, match="is not https") as caught:
            registry.check_upstream_url(bad)
        assert "use an https://" in str(caught.value)


def test_a_plain_http_upstream_is_refused_before_any_request():
    asked = []

    def record(request):
        asked.append(request.url)
        return httpx.Response(200, json={"servers": [], "metadata": {}})

    with httpx.Client(transport=httpx.MockTransport(record)) as client, pytest.raises(UsageError, match="https"):
        list(registry.iter_pages(client, "http://example.org"))
    assert asked == []


def test_a_repeated_cursor_stops_the_crawl():
    def loop(request):
        return httpx.Response(200, json={"servers": [], "metadata": {"nextCursor": "same"}})

    with httpx.Client(transport=httpx.MockTransport(loop)) as client, pytest.raises(UpstreamError, match="repeated"):
        list(registry.iter_pages(client, "https://up.example"))


def test_redirects_are_not_followed():
    with FakeUpstream([item("io.github.p/s", "1.0.0")]) as upstream, registry.make_client() as client, \
            pytest.raises(UpstreamError, match="HTTP 308 redirect to /v0.1/servers\\?limit=100 for"):
        registry.fetch_servers_page(client, upstream.url + "/v0.1/servers/?limit=100")
    assert upstream.registry.requests == ["/v0.1/servers/?limit=100"]


def test_every_request_names_the_project_and_its_url():
    from mirror import __url__, __version__

    with FakeUpstream([item("io.github.p/s", "1.0.0")]) as upstream:
        crawl_all(upstream.url)
        agents = upstream.registry.user_agents
    assert agents == [f"mcp-mirror/{__version__} (+{__url__}; static mirror of the MCP Registry)"]


def test_requests_keep_to_the_rate_after_a_burst():
    entries = [item("io.github.p/s", f"1.0.{i:03d}") for i in range(50)]
    sleeps = []
    limits = registry.CrawlLimits(rate=60, burst=2, min_rows_per_page=1)
    with FakeUpstream(entries) as upstream, registry.make_client(timeout=5) as client:
        budget = registry.Budget.start(limits, sleeps.append)
        pages = [p for p in registry.iter_pages(client, upstream.url, budget=budget)]
        assert len(upstream.registry.requests) == 1
    assert len(pages) == 1 and budget.requests == 1 and sleeps == []  # inside the burst: no wait

    clock = FakeClock()
    sent = []

    def request(request):  # each request takes a quarter of a second on the crawl's clock
        sent.append(clock() - began)
        clock.advance(0.25)

    with FakeUpstream(entries) as upstream, registry.make_client(timeout=5) as client:
        client.event_hooks = {"request": [request]}
        budget = registry.Budget.start(limits, clock.sleep, clock)
        began = clock()
        for i in range(5):
            registry.fetch_versions(client, upstream.url, f"io.github.p/s{i}", budget=budget)
    assert budget.requests == 5
    # one request a second after the two of the burst, however long each request itself took
    # (a slow request makes the next wait shorter, never the rate higher)
    assert sent == [0.0, 0.25, 1.0, 2.0, 3.0]
    assert clock.sleeps == [0.5, 0.75, 0.75]


def test_a_request_waits_no_longer_than_the_crawl_has_left():
    clock = FakeClock()
    budget = registry.Budget.start(registry.CrawlLimits(deadline=10, response_deadline=4), clock.sleep, clock)
    with registry.make_client(timeout=5) as client:
        assert budget.timeout(client).read == 4  # the response deadline, under the client's 5 s
        clock.advance(7.5)
        assert budget.timeout(client) == httpx.Timeout(2.5)  # every timeout, clamped to the 2.5 s left
        budget.check("u")
        clock.advance(2.5)
        with pytest.raises(UpstreamError, match="crawl passed its 10 s deadline after 0 pages: u"):
            budget.check("u")


def test_a_wait_for_the_rate_past_the_deadline_ends_the_crawl_without_waiting():
    clock = FakeClock()
    budget = registry.Budget.start(registry.CrawlLimits(rate=6, burst=1, deadline=5), clock.sleep, clock)
    budget.pace("u")  # the burst
    with pytest.raises(UpstreamError, match="crawl would pass its 5 s deadline after 0 pages keeping to 6 "
                                            "requests a minute: u"):
        budget.pace("u")  # the next would go out in 10 s
    assert clock.sleeps == []


def test_a_server_with_no_versions_left_is_an_empty_page():
    with FakeUpstream([item("io.github.p/s", "1.0.0")]) as upstream, registry.make_client(timeout=5) as client:
        budget = registry.Budget.start(registry.DEFAULT_LIMITS)
        assert [i["server"]["version"] for i in registry.fetch_versions(client, upstream.url, "io.github.p/s",
                                                                        budget=budget).items] == ["1.0.0"]
        assert registry.fetch_versions(client, upstream.url, "io.github.p/gone", budget=budget).items == []
        assert upstream.registry.requests[-1] == "/v0.1/servers/io.github.p%2Fgone/versions?include_deleted=true"


# -- a page read an item at a time when the parser refuses it whole ------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
    | st.sampled_from(['"', "\\", "[", "]", "{", "}", ",", '\\"]', '",{']),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@st.composite
def _pages(draw):
    servers = draw(st.lists(_json, max_size=6))
    members = {"servers": servers, "metadata": draw(st.dictionaries(st.text(max_size=6), _json, max_size=3))}
    for key in draw(st.lists(st.text(max_size=6), max_size=2)):
        members.setdefault(key, draw(_json))
    order = draw(st.permutations(list(members)))
    indent = draw(st.sampled_from([None, 0, 1, "\t"]))
    text = json.dumps({key: members[key] for key in order}, indent=indent, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :")])))
    return bytearray(draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " \n"])), "utf-8")


@settings(max_examples=300, deadline=None)
@given(_pages())
def test_split_then_parse_equals_parsing_the_page_whole(body):
    spans, members = registry.split_page(body)
    whole = orjson.loads(body)
    assert [orjson.loads(body[start:end]) for start, end in spans] == whole["servers"]
    assert {key: orjson.loads(body[start:end]) for key, (start, end) in members.items()} == whole


def _page(*raw: bytes, metadata: bytes = b'{"count": 3, "nextCursor": "io.github.p/s:1.0.2"}') -> bytearray:
    return bytearray(b'{"servers": [' + b", ".join(raw) + b'], "metadata": ' + metadata + b"}")


def test_an_item_the_parser_refuses_is_unparsed_with_its_name_and_its_neighbours_kept():
    good = [orjson.dumps(item("io.github.p/s", f"1.0.{i}")) for i in range(3)]
    deep = b'{"_meta": ' + b"[" * 5000 + b"]" * 5000 + b', "server": {"version": "9.9.9", "name": "io.github.p/d"}}'
    surrogate = b'{"server": {"name": "io.github.p/u", "version": "1.0.0", "description": "\\ud800"}}'
    nameless = b"[" * 2000 + b"]" * 2000
    page = registry._parse_page("u", _page(good[0], deep, good[1], surrogate, nameless, good[2]),
                                registry.DEFAULT_LIMITS)
    assert page.items[0::2] == [orjson.loads(g) for g in good[:2]] + [Unparsed(
        "entry nests JSON deeper than the parser's 1024 levels", 4000)]
    assert page.items[1] == Unparsed("entry nests JSON deeper than the parser's 1024 levels", len(deep),
                                     "io.github.p/d", "9.9.9")
    assert page.items[3].name == "io.github.p/u" and page.items[3].reason.startswith("entry is not valid JSON: ")
    assert page.items[5] == orjson.loads(good[2]) and page.next_cursor == "io.github.p/s:1.0.2"
    rows, rejected = collect_entries(page.items)
    assert [r.key for r in rows] == [("io.github.p/s", f"1.0.{i}") for i in range(3)]
    assert [(r.position, r.name, r.version) for r in rejected] == [
        (1, "io.github.p/d", "9.9.9"), (3, "io.github.p/u", "1.0.0"), (4, None, None)]


@pytest.mark.parametrize("body", [
    _page(b"[" * 2000 + b"]" * 2000, metadata=b"[" * 2000 + b"]" * 2000),  # the page's own part is too deep
    bytearray(b'{"servers": [' + b"[" * 2000 + b"]" * 2000),  # cut: no end to the page
    bytearray(b'{"servers": {"a": ' + b"[" * 2000 + b"]" * 2000 + b"}}"),  # servers is no array
    bytearray(b'[{"servers": [' + b"[" * 2000 + b"]" * 2000 + b"]}]"),  # the page is no object
    bytearray(b'{"servers": [' + b"[" * 2000 + b"]" * 2000 + b'], "metadata": {}} {}'),  # bytes after it
    bytearray(b'{"servers": [' + b"1," * (registry.MAX_SPLIT_ITEMS + 1) + b'"\\ud800"]}'),  # past the bound
])
def test_a_page_whose_own_structure_cannot_be_read_is_still_one_error(body):
    with pytest.raises(UpstreamError, match="upstream (page nests JSON deeper|answered non-JSON|sent a truncated)"):
        try:
            registry._parse_page("u", body, registry.DEFAULT_LIMITS)
        except registry._Transient as exc:  # a cut body is retried, then one UpstreamError
            raise UpstreamError(exc.message) from exc


def test_the_split_scan_is_linear_in_a_100000_deep_item():
    body = _page(b"[" * 100_000 + b"]" * 100_000)
    spans, _ = registry.split_page(body)
    assert spans == [(13, 13 + 200_000)]
