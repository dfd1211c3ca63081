"""What real v0.1 clients send and what they accept, for tests against any host.

As read in VS Code's MCP gallery (mcpGalleryService.ts) and in GitHub Copilot CLI's
registry allowlist issues; the research notes are peers.md §1. Each helper raises
AssertionError where the client itself would fail, in the client's words where it has any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

VSCODE_ORIGIN = "vscode-file://vscode-app"  # desktop VS Code fetches from its renderer
MAX_PAGES = 1000


def encode_uri_component(text: str) -> str:
    """JavaScript's encodeURIComponent: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( )."""
    return quote(text, safe="!~*'()")


def latest_path(name: str) -> str:
    return f"/v0.1/servers/{encode_uri_component(name)}/versions/latest"


def vscode_item_problem(item: Any) -> str | None:
    """Why VS Code's v0.1 serializer rejects a list item, or None when it accepts it."""
    server = item.get("server") if isinstance(item, dict) else None
    if not isinstance(server, dict):
        return "no server object"
    for key in ("name", "description", "version"):
        if not isinstance(server.get(key), str) or not server[key]:
            return f"server.{key} is not a non-empty string"
    if not isinstance(item.get("_meta"), dict):
        return "no item-level _meta object (Cannot destructure property ... of 'r._meta')"
    return None


@dataclass
class Gallery:
    """What VS Code's gallery shows: accepted items, the ones it skipped and why, and
    every URL it requested."""

    items: list[dict] = field(default_factory=list)
    skipped: list[tuple[dict, str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def vscode_gallery(client: httpx.Client) -> Gallery:
    """VS Code's version probe, then its list crawl: `limit=50&version=latest`, the next
    page asked for only while `metadata.nextCursor` is truthy, the cursor appended to the
    URL as is (not encoded). An invalid first item rejects the whole page; later invalid
    items are skipped."""
    gallery = Gallery()
    headers = {"Origin": VSCODE_ORIGIN}

    def get(url: str) -> dict:
        response = client.get(url, headers=headers)
        gallery.urls.append(url)
        assert response.is_success, f"GET {url} answered {response.status_code}: {response.text[:200]}"
        return response.json()

    get("/v0.1/servers?limit=1")
    url, seen = "/v0.1/servers?limit=50&version=latest", set()
    while len(gallery.urls) <= MAX_PAGES:
        body = get(url)
        assert isinstance(body.get("servers"), list), f"GET {url}: no servers array"
        for index, item in enumerate(body["servers"]):
            problem = vscode_item_problem(item)
            assert not (problem and index == 0), f"GET {url}: Failed to serialize MCP servers result ({problem})"
            if problem:
                gallery.skipped.append((item, problem))
            else:
                gallery.items.append(item)
        cursor = (body.get("metadata") or {}).get("nextCursor")
        if not cursor:
            return gallery
        assert cursor not in seen, f"GET {url}: nextCursor {cursor!r} repeats, VS Code would page forever"
        seen.add(cursor)
        url = f"/v0.1/servers?limit=50&version=latest&cursor={cursor}"
    raise AssertionError(f"more than {MAX_PAGES} pages: VS Code would page forever")


def vscode_lookup(client: httpx.Client, name: str) -> httpx.Response:
    """VS Code's installed-server lookup; any 4xx means "not in the registry"."""
    return client.get(latest_path(name), headers={"Origin": VSCODE_ORIGIN})


def copilot_lookup(client: httpx.Client, name: str) -> httpx.Response:
    """Copilot CLI's allowlist check, unauthenticated: 200 verifies, 404 is "not found",
    and 401/403 blocks every non-default server."""
    return client.get(latest_path(name), headers={"Accept": "application/json"})


def crawl(client: httpx.Client, query: str) -> list[dict]:
    """Every page of `/v0.1/servers?{query}`, following `nextCursor` URL-encoded as
    careful consumers (and mcp-mirror's own crawler) do."""
    bodies: list[dict] = []
    cursor = None
    while len(bodies) < MAX_PAGES:
        url = "/v0.1/servers?" + "&".join(filter(None, [query, cursor and f"cursor={quote(cursor, safe='')}"]))
        response = client.get(url)
        assert response.status_code == 200, f"GET {url} answered {response.status_code}: {response.text[:200]}"
        bodies.append(response.json())
        cursor = bodies[-1].get("metadata", {}).get("nextCursor")
        if not cursor:
            return bodies
    raise AssertionError(f"GET /v0.1/servers?{query}: more than {MAX_PAGES} pages")


def rows(bodies: list[dict]) -> list[tuple[str, str]]:
    """(name, version) of every item of a crawl, in order."""
    return [(item["server"]["name"], item["server"]["version"]) for body in bodies for item in body["servers"]]
