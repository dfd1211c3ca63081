"""The pages people read: today the landing page and the 404 page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mirror import paths
from mirror.hosts import HTML
from mirror.plan import Cache, Entry, Kind
from mirror.render.api import ServerSummary
from mirror.templating import render_template


def landing_page(state: dict[str, Any], servers: Sequence[ServerSummary], *, base_url: str) -> Entry:
    body = render_template("index.html", state=state, servers=servers, base_url=base_url).encode()
    return Entry(paths.LANDING_PAGE, Kind.POINTER, HTML, body, cache=Cache.HTML)


def not_found_page(state: dict[str, Any]) -> Entry:
    body = render_template("404.html", state=state).encode()
    return Entry(paths.NOT_FOUND_PAGE, Kind.DOCUMENT, HTML, body, cache=Cache.HTML)
