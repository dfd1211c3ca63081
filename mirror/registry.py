"""Upstream client: fetch one list page, iterate them all, within explicit bounds.

The only module that knows upstream URLs and cursors. It takes an httpx.Client so tests
and callers choose the transport. Anyone can publish to the registry and anything can sit
at --upstream, so every bound is explicit (CrawlLimits) and every failure is one
UpstreamError naming the URL; transient ones are retried with backoff and jitter first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import orjson
import tenacity
from pydantic import ValidationError

from mirror import __url__, __version__, paths
from mirror.errors import UpstreamError, UsageError
from mirror.models import ServerListPage, Unparsed, json_depth
from mirror.text import collapsed

PAGE_LIMIT = 100
USER_AGENT = f"mcp-mirror/{__version__} (+{__url__}; static mirror of the MCP Registry)"
MiB = 2**20
_INFLATE_STEP = 256 * 1024  # bytes inflated per call: bounds the memory a gzip bomb costs above the cap


@dataclass(frozen=True)
class CrawlLimits:
    """Every bound on one crawl, so a hostile or broken upstream ends in one clear error.

    deadline             3600 s    the whole crawl, retries and waits included; each request's
                                   timeouts are clamped to what is left of it
    response_deadline    60 s      one response, headers and body (upstream's slowest pages took
                                   20-25 s in 2026): a trickle of bytes, each within the read
                                   timeout, is cut here and retried like a timeout. Checked at every
                                   read, with the request's timeouts clamped to it
    max_response_bytes   32 MiB    decoded bytes of one response, counted while streaming
    max_depth            1024      JSON nesting of a page (the page object is level 1; orjson
                                   itself refuses more than 1024). Entries deeper than admission's
                                   own bound (64) are rejected one by one, not with their page
    max_rows             2,000,000 items over the whole crawl
    min_rows_per_page    10        with page_slack: a crawl may fetch at most
    page_slack           10        distinct_rows // min_rows_per_page + page_slack pages
    max_stale_pages      3         pages in a row that bring no new row yet carry a nextCursor
    max_cursor_length    2048      characters of one nextCursor (real ones are name:version)
    request_timeout      None      seconds per request; None keeps the client's (make_client: 30 s)
    max_retries          3         retries of one page after a transient failure (4 attempts)
    backoff_base         0.5 s     full jitter: wait uniform(0, min(backoff_max, base * 2**n))
    backoff_max          30 s
    retry_after_cap      300 s     longest wait a Retry-After can impose
    rate                 None      requests a minute, paced by a token bucket of `burst` requests
    burst                10        (None: unpaced; `mcp-mirror` itself sends --rate, default 120,
                                   under upstream's ~180 a minute per address)
    """

    deadline: float = 3600.0
    response_deadline: float = 60.0
    max_response_bytes: int = 32 * MiB
    max_depth: int = 1024
    max_rows: int = 2_000_000
    min_rows_per_page: int = 10
    page_slack: int = 10
    max_stale_pages: int = 3
    max_cursor_length: int = 2048
    request_timeout: float | None = None
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 300.0
    rate: float | None = None
    burst: int = 10


DEFAULT_LIMITS = CrawlLimits()


@dataclass(frozen=True)
class Page:
    url: str
    items: list[Any]
    next_cursor: str | None
    served_at: datetime | None = None  # its Date header: upstream's clock when it answered


def make_client(timeout: float = 30.0) -> httpx.Client:
    # Redirects stay off: a registry that redirects is misconfigured, and following one
    # could take the crawl to another host.
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


def check_upstream_url(url: str) -> None:
    """Refuse plain http except to loopback: a crawl over the open network must be https."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return
    raise UsageError(f"upstream {collapsed(url)} is not https",
                     hint="use an https:// --upstream; plain http is only allowed to 127.0.0.1, ::1 or localhost")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def servers_url(upstream: str, *, cursor: str | None = None, limit: int = PAGE_LIMIT,
                updated_since: str | None = None) -> str:
    query: dict[str, str] = {"limit": str(limit), "include_deleted": "true"}
    if updated_since:
        query["updated_since"] = updated_since
    if cursor:
        query["cursor"] = cursor  # opaque: sent back exactly, percent-encoded
    return paths.Urls(upstream).servers(**query)


def http_date(value: str | None) -> datetime | None:
    """An HTTP-date (a Date or Retry-After header) as an aware datetime; None when it is not one."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # "-0000": always GMT


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A Retry-After header in either form (delta-seconds or HTTP-date) as seconds from now."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return float(value)
    when = http_date(value)
    if when is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def fetch_servers_page(client: httpx.Client, url: str, *, limits: CrawlLimits = DEFAULT_LIMITS,
                       sleep: Callable[[float], None] = time.sleep) -> Page:
    """GET one list page within `limits`, retrying transient failures with jittered backoff."""
    check_upstream_url(url)
    return _fetch(client, url, limits=limits, sleep=sleep, budget=Budget.start(limits, sleep))


def fetch_versions(client: httpx.Client, upstream: str, name: str, *, budget: Budget) -> Page:
    """Every version of one server, deleted ones included (`/versions?include_deleted=true`);
    no page when upstream has none left (404). For the servers an incremental crawl cannot
    settle from the rows it got (isLatest moved to a row whose updatedAt upstream left alone)."""
    check_upstream_url(upstream)
    url = f"{paths.Urls(upstream).versions(name)}?include_deleted=true"
    try:
        page = _fetch(client, url, limits=budget.limits, sleep=budget.sleep, budget=budget)
    except _NotFound:
        return Page(url=url, items=[], next_cursor=None)
    finally:
        budget.pages += 1
    return Page(url=url, items=page.items, next_cursor=None)


def fetch_document(client: httpx.Client, url: str, *, budget: Budget, missing_ok: bool = False) -> dict | None:
    """GET one JSON object within the crawl's bounds (a change feed's index or page); None
    for a 404 when `missing_ok` (the upstream is no mcp-mirror, so has no feed)."""
    check_upstream_url(url)
    try:
        return _fetch(client, url, limits=budget.limits, sleep=budget.sleep, budget=budget, parse=_parse_document)
    except _NotFound:
        if missing_ok:
            return None
        raise


def iter_pages(client: httpx.Client, upstream: str, *, updated_since: str | None = None,
               sleep: Callable[[float], None] = time.sleep, limits: CrawlLimits = DEFAULT_LIMITS,
               budget: Budget | None = None) -> Iterator[Page]:
    """Follow metadata.nextCursor until it is absent or empty, or a bound in `limits` stops the crawl.

    Only cursors are followed, always on `upstream`: no URL found in an entry is ever requested.
    A `budget` shared with other requests of the same crawl carries its deadline, pace and count.

    A page over max_response_bytes is asked for again with a tenth of the limit (100, 10, 1)
    until the rows it would have held are read, so large rows (each of which admission then
    refuses) cannot stop the crawl together. One row over the cap alone still does: the
    nextCursor that steps past it comes after it in the body, and forging one from its name
    and version would assume the cursor's format, which is upstream's own.
    """
    check_upstream_url(upstream)
    budget = budget or Budget.start(limits, sleep)
    limits, sleep = budget.limits, budget.sleep
    first_page = budget.pages
    cursors: set[str] = set()
    keys: set[tuple[str, Any]] = set()
    rows = stale = 0
    cursor: str | None = None
    limit, owed, small_pages = PAGE_LIMIT, 0, 0  # owed: rows left to read at the smaller limit
    while True:
        try:
            page = _fetch(client, servers_url(upstream, cursor=cursor, limit=limit, updated_since=updated_since),
                          limits=limits, sleep=sleep, budget=budget)
        except _TooBig as exc:
            if limit == 1:
                raise UpstreamError(exc.message, hint="one row alone is over the cap and the cursor past it comes "
                                                      "after it; the upstream is broken or hostile") from exc
            owed = owed or limit
            limit = max(1, limit // 10)
            continue
        budget.pages += 1
        if limit < PAGE_LIMIT:
            small_pages += len(page.items) >= limit  # a full small page is no minted cursor
            owed -= len(page.items)
            if owed <= 0:
                limit, owed = PAGE_LIMIT, 0
        rows += len(page.items)
        if rows > limits.max_rows:
            raise UpstreamError(f"upstream sent more than {limits.max_rows} rows in {budget.pages} pages: {page.url}",
                                hint="the upstream is looping or far larger than any registry; the crawl was not saved")
        before = len(keys)
        keys.update(_key(item) for item in page.items)
        yield page
        if page.next_cursor is None:
            return
        next_cursor = page.next_cursor
        if len(next_cursor) > limits.max_cursor_length:
            raise UpstreamError(f"upstream sent a nextCursor of {len(next_cursor)} characters: {page.url}",
                                hint=f"cursors are at most {limits.max_cursor_length}; the crawl was not saved")
        if next_cursor in cursors:
            raise UpstreamError(f"upstream repeated cursor {collapsed(next_cursor, 80)!r}: {page.url}",
                                hint="the upstream paginates in a loop; the crawl was not saved")
        stale = stale + 1 if len(keys) == before else 0
        if stale >= limits.max_stale_pages:
            raise UpstreamError(f"upstream sent {stale} pages in a row with no new rows but a nextCursor: {page.url}",
                                hint="the upstream paginates in a loop; the crawl was not saved")
        if budget.pages - first_page - small_pages >= len(keys) // limits.min_rows_per_page + limits.page_slack:
            raise UpstreamError(f"upstream keeps minting cursors: {budget.pages} pages for {len(keys)} rows",
                                hint="an honest upstream sends full pages; the crawl was not saved")
        cursors.add(next_cursor)
        cursor = next_cursor


def _key(item: Any) -> tuple[str, Any]:
    """(name, version) when the item has them; otherwise its content, so repeats still count as repeats."""
    if isinstance(item, Unparsed):
        return (item.name, item.version) if item.name is not None and item.version is not None else ("", id(item))
    server = item.get("server") if isinstance(item, dict) else None
    if isinstance(server, dict) and isinstance(server.get("name"), str) and isinstance(server.get("version"), str):
        return (server["name"], server["version"])
    try:
        return ("", hash(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)))
    except TypeError:  # too deep for orjson to write: admission rejects it; count it as new
        return ("", id(item))


@dataclass
class Budget:
    """The crawl's clock and meter: what is left of the deadline, the pages and requests it has
    bought, and the pace (`limits.rate`) its requests go out at.

    `clock` (seconds, monotonic) and `sleep` are the only ways it reads or spends time, so a
    test can run the deadline, the response deadline and the pace on a fake clock."""

    limits: CrawlLimits
    ends_at: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    pages: int = 0
    requests: int = 0
    _tokens: float = 0.0
    _stamp: float = 0.0

    @classmethod
    def start(cls, limits: CrawlLimits, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Budget:
        now = clock()
        return cls(limits, now + limits.deadline, sleep, clock, _tokens=float(limits.burst), _stamp=now)

    def pace(self, url: str) -> None:
        """Wait, if need be, so requests go out at no more than `limits.rate` a minute."""
        rate = self.limits.rate
        self.requests += 1
        if not rate:
            return
        interval = 60.0 / rate
        now = self.clock()
        self._tokens = min(float(self.limits.burst), self._tokens + (now - self._stamp) / interval)
        self._stamp = now
        if self._tokens < 1.0:
            wait = (1.0 - self._tokens) * interval
            if wait > self.remaining():
                raise UpstreamError(f"crawl would pass its {self.limits.deadline:g} s deadline after {self.pages} "
                                    f"pages keeping to {rate:g} requests a minute: {url}",
                                    hint="raise --rate or --deadline")
            self.sleep(wait)
            self._tokens, self._stamp = 1.0, self.clock()
        self._tokens -= 1.0

    def remaining(self) -> float:
        return self.ends_at - self.clock()

    def check(self, url: str) -> None:
        if self.remaining() <= 0:
            raise UpstreamError(f"crawl passed its {self.limits.deadline:g} s deadline after {self.pages} pages: {url}",
                                hint="the upstream is too slow or stalling; the crawl was not saved")

    def timeout(self, client: httpx.Client) -> httpx.Timeout:
        if self.limits.request_timeout is None:
            base = client.timeout
        else:
            base = httpx.Timeout(self.limits.request_timeout, connect=min(10.0, self.limits.request_timeout))
        left = max(min(self.remaining(), self.limits.response_deadline), 0.001)

        def clamp(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx.Timeout(connect=clamp(base.connect), read=clamp(base.read), write=clamp(base.write),
                             pool=clamp(base.pool))


class _Transient(Exception):
    """A failure worth another attempt; becomes an UpstreamError once the retries are spent."""

    def __init__(self, message: str, hint: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.retry_after = retry_after


class _Wait(tenacity.wait.wait_base):
    """Retry-After when the upstream sends one (capped), else exponential backoff with full jitter.

    A wait that would outlast the crawl's deadline ends the crawl now instead of sleeping into it.
    """

    def __init__(self, limits: CrawlLimits, budget: Budget, url: str) -> None:
        self.limits, self.budget, self.url = limits, budget, url
        self.jitter = tenacity.wait_random_exponential(multiplier=limits.backoff_base, max=limits.backoff_max)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        if retry_state.attempt_number > self.limits.max_retries:
            return 0.0  # tenacity asks before it stops: there is no next attempt to wait for
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = error.retry_after if isinstance(error, _Transient) else None
        left = max(self.budget.remaining(), 0.0)
        if asked is not None:
            if asked > left:
                raise UpstreamError(f"upstream asked to wait {asked:.0f} s (Retry-After) for {self.url}, past the "
                                    f"crawl's {self.limits.deadline:g} s deadline",
                                    hint="the upstream is rate limiting; run again later")
            return min(asked, self.limits.retry_after_cap)
        wait = self.jitter(retry_state)
        if wait > left:
            raise UpstreamError(f"crawl would pass its {self.limits.deadline:g} s deadline after {self.budget.pages} "
                                f"pages waiting to retry {self.url}",
                                hint="the upstream is too slow or failing; the crawl was not saved")
        return wait


def _fetch(client: httpx.Client, url: str, *, limits: CrawlLimits, sleep: Callable[[float], None],
           budget: Budget, parse: Callable[[str, bytearray, CrawlLimits], Any] | None = None) -> Any:
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(_Transient),
        stop=tenacity.stop_after_attempt(limits.max_retries + 1),
        wait=_Wait(limits, budget, url),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(_attempt, client, url, limits, budget, parse)
    except _Transient as exc:
        attempts = limits.max_retries + 1
        raise UpstreamError(exc.message, hint=f"{exc.hint}; gave up after {attempts} attempts") from exc


def _attempt(client: httpx.Client, url: str, limits: CrawlLimits, budget: Budget,
             parse: Callable[[str, bytearray, CrawlLimits], Any] | None = None) -> Any:
    target = url
    for hop in range(2):  # at most one redirect, and only to the same path with a trailing slash
        budget.check(url)
        budget.pace(url)
        clock = _ResponseClock(budget.clock() + limits.response_deadline, limits.response_deadline, url,
                               budget.clock)
        try:
            # Ask for gzip only: it is the one encoding decoded here, under the byte cap.
            with client.stream("GET", target, headers={"Accept-Encoding": "gzip"},
                               timeout=budget.timeout(client)) as response:
                clock.check()
                if response.status_code != 200:
                    _drain(response, budget, clock)
                slashed = _slash_redirect(target, response) if hop == 0 else None
                if slashed is not None:
                    target = slashed
                    continue
                _check_status(url, response)
                served_at = response.headers.get("Date")
                body = _read_body(url, response, limits, budget, clock)
        except httpx.TimeoutException as exc:
            budget.check(url)  # the timeouts are clamped to the deadline: running out of it is the deadline
            clock.check()  # and to the response's: running out of that is the response deadline
            raise _Transient(f"upstream timed out: {url}: {_describe(exc)}",
                             "the upstream is slow or down; run again later") from exc
        except httpx.ConnectError as exc:
            raise _Transient(f"upstream unreachable: {url}: {_describe(exc)}",
                             "check --upstream and the network, then run again") from exc
        except httpx.RemoteProtocolError as exc:  # a short read, or a hang-up before any answer
            raise _Transient(f"upstream cut the response short: {url}: {_describe(exc)}",
                             "the upstream or the network dropped the connection; run again later") from exc
        except httpx.HTTPError as exc:  # resets and other transport failures
            raise _Transient(f"upstream connection failed: {url}: {_describe(exc)}",
                             "the upstream or the network dropped the connection; run again later") from exc
        result = (parse or _parse_page)(url, body, limits)
        if isinstance(result, Page):
            result = replace(result, served_at=http_date(served_at))
        return result
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class _ResponseClock:
    """The deadline of one response: a trickle keeps every read within the read timeout, so
    only a bound on the whole response stops it (checked at every read)."""

    ends_at: float
    seconds: float
    url: str
    clock: Callable[[], float] = time.monotonic  # the crawl's (Budget.clock)

    def check(self) -> None:
        if self.clock() > self.ends_at:
            raise _Transient(f"upstream took more than {self.seconds:g} s to send one response: {self.url}",
                             "the upstream is trickling or too slow; run again later or raise --response-deadline")


_DRAIN_BYTES = 64 * 1024


def _drain(response: httpx.Response, budget: Budget, clock: _ResponseClock) -> None:
    """Read a small error or redirect body to its end before the response is closed: closing a
    connection with unread bytes resets it, and the server sees the reset as its own error."""
    if response.is_stream_consumed:
        return
    seen = 0
    with contextlib.suppress(httpx.HTTPError):
        for raw in response.iter_raw():
            seen += len(raw)
            if seen > _DRAIN_BYTES:
                return
            budget.check(clock.url)
            clock.check()


def _slash_redirect(url: str, response: httpx.Response) -> str | None:
    """Where a plain file server sends a directory's path (`/v0.1/servers` to `/v0.1/servers/`,
    query kept): the one redirect followed, since it cannot leave the path or the host."""
    if response.status_code not in (301, 302, 303, 307, 308):
        return None
    location = response.headers.get("Location")
    if not location:
        return None
    asked, told = urlsplit(url), urlsplit(urljoin(url, location))
    if (told.scheme, told.netloc, told.path) != (asked.scheme, asked.netloc, asked.path + "/"):
        return None
    if told.query not in ("", asked.query) or told.fragment:
        return None
    return urlunsplit((asked.scheme, asked.netloc, told.path, asked.query, ""))


def _check_status(url: str, response: httpx.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (408, 429) or 500 <= status <= 599:
        why = "the upstream is rate limiting" if status == 429 else "the upstream is failing"
        raise _Transient(f"upstream answered HTTP {status} for {url}", f"{why}; run again later",
                         retry_after=retry_after_seconds(response.headers.get("Retry-After")))
    if 300 <= status <= 399:
        location = collapsed(response.headers.get("Location", "(no Location)"))
        raise UpstreamError(f"upstream answered HTTP {status} redirect to {location} for {url}",
                            hint="mcp-mirror does not follow redirects; pass the final https URL as --upstream")
    if status == 404:
        raise _NotFound(f"upstream answered HTTP 404 for {url}", hint="is --upstream a v0.1 registry base URL?")
    raise UpstreamError(f"upstream answered HTTP {status} for {url}", hint="is --upstream a v0.1 registry base URL?")


class _NotFound(UpstreamError):
    """A 404: fatal for a list page, 'no versions left' for a server's versions."""


def _read_body(url: str, response: httpx.Response, limits: CrawlLimits, budget: Budget,
               clock: _ResponseClock) -> bytearray:
    """Stream the body, counting decoded bytes and stopping the moment the cap is passed.

    gzip is inflated here with max_length rather than by httpx, whose decoder inflates a whole
    network chunk at once (a 64 KiB chunk of a gzip bomb is ~64 MiB).
    """
    cap = limits.max_response_bytes
    if response.is_stream_consumed:  # an in-memory transport (httpx.MockTransport) read and decoded it already
        if len(response.content) > cap:
            raise _too_big(url, cap)
        return bytearray(response.content)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        inflate = None
        announced = response.headers.get("Content-Length", "")
        if re.fullmatch(r"[0-9]+", announced) and int(announced) > cap:
            raise _too_big(url, cap, announced=int(announced))
    elif encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    else:
        raise UpstreamError(f"upstream sent Content-Encoding {collapsed(encoding, 40)!r} for {url}",
                            hint="mcp-mirror asks for gzip or nothing; the upstream ignored that")
    body = bytearray()
    for raw in response.iter_raw():
        if inflate is None:
            body += raw
        else:
            _inflate_into(body, raw, inflate, cap, url)
        if len(body) > cap:
            body.clear()  # the error's frames outlive this call (the page is asked for again): free it now
            raise _too_big(url, cap)
        budget.check(url)
        clock.check()
    if inflate is not None and not inflate.eof:
        raise _Transient(f"upstream cut the gzip body short: {url}",
                         "the upstream or the network dropped the connection; run again later")
    return body


def _inflate_into(body: bytearray, raw: bytes, inflate: Any, cap: int, url: str) -> None:
    """Inflate one network chunk onto `body` a step at a time, never more than one byte past the cap."""
    data = raw
    while True:
        step = min(cap - len(body) + 1, _INFLATE_STEP)
        try:
            out = inflate.decompress(data, step)
        except zlib.error as exc:
            raise UpstreamError(f"upstream sent a broken gzip body for {url}: {exc}",
                                hint="the upstream or a proxy in between is broken") from exc
        body += out
        if len(body) > cap:
            body.clear()
            raise _too_big(url, cap)
        data = inflate.unconsumed_tail
        if not data and len(out) < step:  # input used up and nothing held back
            return


class _TooBig(UpstreamError):
    """A response over max_response_bytes: a list page is asked for again in smaller pages."""


def _too_big(url: str, cap: int, *, announced: int | None = None) -> UpstreamError:
    size = f"{cap / MiB:g} MiB" if cap % MiB == 0 else f"{cap} bytes"
    what = f"announced {announced} bytes, more than {size}," if announced else f"sent more than {size}"
    return _TooBig(f"upstream {what} for {url}",
                   hint="a v0.1 list page is far smaller; the upstream is broken or hostile")


def _parse_json(url: str, body: bytearray, limits: CrawlLimits, *, by_item: bool = False) -> Any:
    """The body as JSON. With `by_item`, a list page the parser refuses whole is read again a
    `servers` item at a time (split_page), so one item beyond the parser is one Unparsed item."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        data = _parse_by_item(body) if by_item else None
        if data is not None:
            return data
        if str(exc).startswith("depth limit exceeded"):
            raise _too_deep(url, limits) from exc
        if exc.pos >= len(body.rstrip()):
            # The parse failed at the very end: the body was cut, not wrong. Worth another try.
            raise _Transient(f"upstream sent a truncated JSON body for {url}",
                             "the upstream or the network dropped the connection; run again later") from exc
        raise UpstreamError(f"upstream answered non-JSON for {url}: {collapsed(str(exc))}",
                            hint="is --upstream a v0.1 registry base URL?") from exc
    # orjson itself refuses more than 1024 levels; only a tighter bound needs the walk
    if limits.max_depth < _ORJSON_DEPTH and json_depth(data, limits.max_depth) > limits.max_depth:
        raise _too_deep(url, limits)
    return data


def _parse_document(url: str, body: bytearray, limits: CrawlLimits) -> Any:
    data = _parse_json(url, body, limits)
    if not isinstance(data, dict):
        raise UpstreamError(f"upstream answered JSON that is not an object for {url}",
                            hint="is --upstream a tree made by mcp-mirror?")
    return data


def _parse_page(url: str, body: bytearray, limits: CrawlLimits) -> Page:
    data = _parse_json(url, body, limits, by_item=True)
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise UpstreamError(f"upstream page has no metadata object: {url}",
                            hint="the upstream does not speak the v0.1 list format")
    try:
        page = ServerListPage.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = collapsed(".".join(str(part) for part in problem["loc"]), 80)
        raise UpstreamError(f"upstream page is malformed at {where}: {collapsed(problem['msg'])}: {url}",
                            hint="the upstream does not speak the v0.1 list format") from exc
    cursor = page.metadata.nextCursor
    return Page(url=url, items=page.servers, next_cursor=cursor or None)


_ORJSON_DEPTH = 1024

# -- a page read an item at a time ------------------------------------------------------------
# orjson refuses a whole page for one item nested past its 1024 levels (upstream's Go decoder
# takes 10,000) or one string it cannot read. split_page finds the items' byte ranges with a
# scan that keeps only a bracket counter (no recursion, one pass, linear in the body, which the
# byte cap bounds); each item is then parsed alone.

_TOKEN = re.compile(rb'["\[\]{},]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # after the opening quote
_SPACE = b" \t\r\n"
MAX_SPLIT_ITEMS = 10_000  # members of one container: a page holds 100 items


class Unsplittable(ValueError):
    """The body is not an object whose members the scan can tell apart."""


Span = tuple[int, int]


def split_container(body: bytes | bytearray, start: int) -> tuple[list[Span], int]:
    """The byte ranges of the members of the array or object opening at body[start] (an
    object's members are `"key": value`), and the index just past its closing bracket.

    Strings are skipped whole (escapes included), so only brackets and commas outside them
    count; nesting is a counter, so any depth costs the same. Bracket kinds are not matched:
    the parser checks each range, and a range it refuses is one bad item.
    """
    if start >= len(body) or body[start] not in b"[{":
        raise Unsplittable("not an array or object")
    pieces: list[Span] = []
    depth, begin, pos = 0, start + 1, start + 1
    while True:
        match = _TOKEN.search(body, pos)
        if match is None:
            raise Unsplittable("unterminated")
        at = match.start()
        char = body[at]
        if char == 0x22:  # '"'
            rest = _STRING_REST.match(body, at + 1)
            if rest is None:
                raise Unsplittable("unterminated string")
            pos = rest.end()
            continue
        pos = at + 1
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            if depth == 0:
                if pieces or body[begin:at].strip(_SPACE):
                    pieces.append((begin, at))
                return pieces, at + 1
            depth -= 1
        elif depth == 0:  # a comma between members
            pieces.append((begin, at))
            begin = at + 1
            if len(pieces) > MAX_SPLIT_ITEMS:
                raise Unsplittable(f"more than {MAX_SPLIT_ITEMS} members")


def _strip(body: bytes | bytearray, span: Span) -> Span:
    start, end = span
    while start < end and body[start] in _SPACE:
        start += 1
    while end > start and body[end - 1] in _SPACE:
        end -= 1
    return start, end


def _members(body: bytes | bytearray, span: Span) -> dict[str, Span]:
    """An object's members as key -> value range (the last of a repeated key, as orjson)."""
    start, end = _strip(body, span)
    pieces, close = split_container(body, start)
    if close != end:
        raise Unsplittable("bytes after the object")
    members = {}
    for piece in pieces:
        first, last = _strip(body, piece)
        rest = _STRING_REST.match(body, first + 1) if body[first : first + 1] == b'"' else None
        if rest is None:
            raise Unsplittable("a member without a key")
        try:
            key = orjson.loads(body[first : rest.end()])
        except orjson.JSONDecodeError as exc:
            raise Unsplittable("a key that is not a string") from exc
        colon, _ = _strip(body, (rest.end(), last))
        if body[colon : colon + 1] != b":":
            raise Unsplittable("a member without a colon")
        members[key] = _strip(body, (colon + 1, last))
    return members


def split_page(body: bytes | bytearray) -> tuple[list[Span], dict[str, Span]]:
    """The byte ranges of a list page's `servers` items, and of its top-level members.
    Raises Unsplittable when the body is not such a page."""
    members = _members(body, (0, len(body)))
    if "servers" not in members:
        raise Unsplittable("no servers member")
    start, end = members["servers"]
    if body[start : start + 1] != b"[":
        raise Unsplittable("servers is not an array")
    items, close = split_container(body, start)
    if close != end:
        raise Unsplittable("bytes after the servers array")
    return [_strip(body, item) for item in items], members


def _parse_by_item(body: bytearray) -> dict | None:
    """The page with each item parsed alone (an Unparsed where that fails), its metadata parsed
    as usual; None when the page itself, not one of its items, is what cannot be read."""
    try:
        spans, members = split_page(body)
        metadata = orjson.loads(body[slice(*members["metadata"])]) if "metadata" in members else None
    except (Unsplittable, orjson.JSONDecodeError):
        return None
    items: list[Any] = []
    for span in spans:
        raw = body[slice(*span)]
        try:
            items.append(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            reason = (f"entry nests JSON deeper than the parser's {_ORJSON_DEPTH} levels"
                      if str(exc).startswith("depth limit exceeded") else f"entry is not valid JSON: {exc}")
            items.append(Unparsed(reason, len(raw), *_name_and_version(body, span)))
    return {"servers": items, "metadata": metadata}


def _name_and_version(body: bytearray, span: Span) -> tuple[str | None, str | None]:
    """server.name and server.version of an item the parser refused, when a scan finds them."""
    found: list[str | None] = [None, None]
    with contextlib.suppress(Unsplittable, orjson.JSONDecodeError, KeyError):
        server = _members(body, _members(body, span)["server"])
        for index, key in enumerate(("name", "version")):
            if key in server:
                value = orjson.loads(body[slice(*server[key])])
                found[index] = value if isinstance(value, str) else None
    return found[0], found[1]


def _too_deep(url: str, limits: CrawlLimits) -> UpstreamError:
    return UpstreamError(f"upstream page nests JSON deeper than {limits.max_depth} levels: {url}",
                         hint="no v0.1 list page is that deep; the upstream is broken or hostile")


def _describe(exc: Exception) -> str:
    return collapsed(str(exc)) or type(exc).__name__


