"""Upstream client: fetch one list page, iterate them all.

The only module that knows upstream URLs and cursors. It takes an httpx.Client so tests
and callers choose the transport; every failure becomes an UpstreamError naming the URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from pydantic import ValidationError

from mirror import __version__
from mirror.errors import UpstreamError
from mirror.models import ServerListPage

PAGE_LIMIT = 100
MAX_PAGES = 100_000
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
USER_AGENT = f"mcp-mirror/{__version__} (static mirror of the MCP Registry)"


@dataclass(frozen=True)
class Page:
    url: str
    items: list[Any]
    next_cursor: str | None


def make_client(timeout: float = 30.0) -> httpx.Client:
    # Redirects stay off: a registry that redirects is misconfigured, and following one
    # could take the crawl to another host.
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=10.0),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


def servers_url(upstream: str, *, cursor: str | None = None, limit: int = PAGE_LIMIT,
                updated_since: str | None = None) -> str:
    query: dict[str, str] = {"limit": str(limit), "include_deleted": "true"}
    if updated_since:
        query["updated_since"] = updated_since
    if cursor:
        query["cursor"] = cursor  # opaque: sent back exactly, percent-encoded
    return f"{upstream.rstrip('/')}/v0.1/servers?{urlencode(query)}"


def fetch_servers_page(client: httpx.Client, url: str, *, retries: int = 3,
                       sleep: Callable[[float], None] = time.sleep) -> Page:
    """GET one list page, retrying transient failures with capped exponential backoff."""
    for attempt in range(retries + 1):
        try:
            response = client.get(url)
        except httpx.HTTPError as exc:
            if attempt < retries:
                sleep(_backoff(attempt, None))
                continue
            raise UpstreamError(f"upstream unreachable: {url}: {exc or type(exc).__name__}",
                                hint="check --upstream and the network, then run again") from exc
        if response.status_code in RETRY_STATUSES and attempt < retries:
            sleep(_backoff(attempt, response.headers.get("Retry-After")))
            continue
        return _parse_page(url, response)
    raise AssertionError("unreachable")


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), 120.0)
    return min(0.5 * 2**attempt, 30.0)


def _parse_page(url: str, response: httpx.Response) -> Page:
    if response.status_code != 200:
        raise UpstreamError(f"upstream answered HTTP {response.status_code} for {url}",
                            hint="is --upstream a v0.1 registry base URL?")
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError(f"upstream answered non-JSON for {url}: {exc}",
                            hint="is --upstream a v0.1 registry base URL?") from exc
    if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
        raise UpstreamError(f"upstream page has no metadata object: {url}",
                            hint="the upstream does not speak the v0.1 list format")
    try:
        page = ServerListPage.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise UpstreamError(f"upstream page is malformed at {where}: {problem['msg']}: {url}") from exc
    cursor = page.metadata.nextCursor
    return Page(url=url, items=page.servers, next_cursor=cursor or None)


def iter_pages(client: httpx.Client, upstream: str, *, updated_since: str | None = None,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[Page]:
    """Follow metadata.nextCursor until it is absent or empty."""
    seen: set[str] = set()
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch_servers_page(client, servers_url(upstream, cursor=cursor, updated_since=updated_since),
                                  sleep=sleep)
        yield page
        if page.next_cursor is None:
            return
        if page.next_cursor in seen:
            raise UpstreamError(f"upstream repeated cursor {page.next_cursor!r}: {page.url}",
                                hint="the upstream paginates in a loop; the crawl was not saved")
        seen.add(page.next_cursor)
        cursor = page.next_cursor
    raise UpstreamError(f"upstream returned more than {MAX_PAGES} pages", hint="the crawl was not saved")
