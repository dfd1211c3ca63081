"""A test oracle for MCP Gateway Registry's ARD ingestion (agentic-community/mcp-gateway-registry,
issue #1296), which is not installable (not on PyPI; its client imports the app's services).
Written from its published rules (governance-outputs.md §7), not from its code:

- Documents: https only; nested ones on the root's host or a subdomain of it; any 3xx is
  skipped, never followed, as is a 4xx/5xx; more than 5×1024×1024 bytes (Content-Length or
  streamed) is skipped; so is a body that is not JSON, or not a manifest: `host.displayName`
  is required, `specVersion` defaults to "1.0", entries need `identifier`, `displayName` and
  `type`. Requests send `Accept: application/json`; Content-Type is not checked.
- Recursion: `application/ai-catalog+json` entries with a `url` are crawled (`urljoin`),
  depth-first, the root at depth 0 and nothing deeper than `max_depth` (3), each URL once.
- Trust, per document: its expected domain is the host name of its own
  `host.trustManifest.identity` (an https URL or a bare domain), or the source's pinned
  `expected_identity`; an entry passes only if its URN publisher (the first group of URN
  below) equals it, case-insensitively. Under "reject" every other entry is dropped.
- Mapping: kept types are server cards, A2A agent cards and skills; a record is stored at
  `/{source_id}/{leaf}`, leaf being the identifier's last `:` segment, so entries with the
  same leaf overwrite each other (recorded here as collisions).

Left out: the SSRF guard's DNS check (the tests pin the catalog's host name to a local
server, as a resolver would), the polite delay between fetches, and storage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 3
CATALOG = "application/ai-catalog+json"
KEPT = {"application/mcp-server-card+json": "server", "application/a2a-agent-card+json": "agent",
        "application/ai-skill": "skill"}
URN = re.compile(r"^urn:air:([a-zA-Z0-9.-]+)(?::([a-zA-Z0-9._:-]+))?:([a-zA-Z0-9._-]+)$")


class TrustManifest(BaseModel):
    identity: str


class Host(BaseModel):
    displayName: str  # noqa: N815 (the manifest's own spelling)
    trustManifest: TrustManifest | None = None  # noqa: N815


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    identifier: str
    displayName: str  # noqa: N815
    type: str
    url: str | None = None


class Manifest(BaseModel):
    specVersion: str = "1.0"  # noqa: N815
    host: Host
    entries: list[CatalogEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


Fetch = Callable[[str], Response]


@dataclass(frozen=True)
class Record:
    kind: str  # server, agent or skill
    path: str  # /{source_id}/{leaf}
    identifier: str
    name: str  # displayName
    ard_source_url: str | None
    version: str | None


@dataclass
class Ingestion:
    documents: list[tuple[str, Manifest, int]] = field(default_factory=list)  # url, manifest, bytes
    skipped: list[tuple[str, str]] = field(default_factory=list)  # url, why
    rejected: list[tuple[str, str]] = field(default_factory=list)  # identifier, why
    records: dict[str, Record] = field(default_factory=dict)  # by leaf
    # leaf, the identifier overwritten, the one overwriting it
    collisions: list[tuple[str, str, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # identifier, type


def pinned_fetch(client: httpx.Client, pins: dict[str, str]) -> Fetch:
    """GET through `client`, an origin such as https://mcp.acme.example answered by the local
    server pinned for it (http://127.0.0.1:PORT), as a resolver pin would. Never follows a
    redirect; stops reading at MAX_BYTES + 1."""
    def fetch(url: str) -> Response:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        target = pins[origin] + url[len(origin):]
        with client.stream("GET", target, headers={"Accept": "application/json"},
                           follow_redirects=False) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_BYTES:
                    break
            return Response(response.status_code, dict(response.headers), bytes(body))
    return fetch


def host_identity_domain(identity: str | None) -> str | None:
    text = (identity or "").strip()
    if not text:
        return None
    return (urlsplit(text if "://" in text else f"https://{text}").hostname or "").lower() or None


def ingest(root: str, fetch: Fetch, *, source_id: str = "mirror", max_depth: int = MAX_DEPTH,
           same_domain_only: bool = True, trust: str = "reject",
           expected_identity: str | None = None) -> Ingestion:
    """What the ingestion stores from the catalog at `root`."""
    result = Ingestion()
    root_domain = (urlsplit(root).hostname or "").lower()
    visited: set[str] = set()

    def crawl(url: str, depth: int) -> None:
        if depth > max_depth or url in visited:
            return
        visited.add(url)
        manifest = fetch_one(url)
        if manifest is None:
            return
        for entry in manifest.entries:
            if entry.type == CATALOG and entry.url:
                crawl(urljoin(url, entry.url), depth + 1)

    def fetch_one(url: str) -> Manifest | None:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host:
            return skip(url, "not https")
        if same_domain_only and not (host == root_domain or host.endswith("." + root_domain)):
            return skip(url, f"host {host} is outside {root_domain}")
        response = fetch(url)
        if 300 <= response.status < 400:
            return skip(url, f"redirect {response.status}")
        if response.status >= 400:
            return skip(url, f"status {response.status}")
        declared = response.headers.get("content-length", "")
        if (declared.isdigit() and int(declared) > MAX_BYTES) or len(response.body) > MAX_BYTES:
            return skip(url, "over the 5 MB cap")
        try:
            payload = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            return skip(url, "not JSON")
        try:
            manifest = Manifest.model_validate(payload)
        except ValidationError as exc:
            return skip(url, f"not a manifest: {exc.errors()[:3]}")
        result.documents.append((url, manifest, len(response.body)))
        return manifest

    def skip(url: str, why: str) -> None:
        result.skipped.append((url, why))

    crawl(root, 0)
    pin = host_identity_domain(expected_identity) if expected_identity else None
    for _url, manifest, _size in result.documents:
        own = manifest.host.trustManifest
        expected = pin or (host_identity_domain(own.identity) if own else None)
        for entry in manifest.entries:
            if trust != "off":
                match = URN.match(entry.identifier)
                if match is None:
                    result.rejected.append((entry.identifier, "unparseable-urn"))
                    if trust == "reject":
                        continue
                elif not expected or match.group(1).lower() != expected.lower():
                    why = f"urn-publisher={match.group(1)} != identity={expected}"
                    result.rejected.append((entry.identifier, why))
                    if trust == "reject":
                        continue
            kind = KEPT.get(entry.type)
            if kind is None:
                result.ignored.append((entry.identifier, entry.type))
                continue
            leaf = entry.identifier.rsplit(":", 1)[-1]
            extra: dict[str, Any] = entry.model_extra or {}
            record = Record(kind, f"/{source_id}/{leaf}", entry.identifier, entry.displayName,
                            entry.url, extra.get("version"))
            if leaf in result.records:
                result.collisions.append((leaf, result.records[leaf].identifier, entry.identifier))
            result.records[leaf] = record
    return result
