"""Agentic Resource Discovery: `/.well-known/ard.json` and `/.well-known/ai-catalog.json`.

ARD v0.91 (ards-project/ard-spec) has consumers fetch `/.well-known/ard.json`; older ones,
MCP Gateway Registry's ingestion among them, fetch `/.well-known/ai-catalog.json`. Both
paths hold the same bytes: an AI Catalog 1.0 envelope (`specVersion` "1.0", `host`,
`entries`), which validates against both the strict `ai-catalog.schema.json` and v0.91's
open `ArdManifest`.

- `host`: a `displayName`, the HTML catalog as `documentationUrl`, and a trust manifest
  whose identity is `https://<host name>`: importers check each entry's URN publisher
  against the identity of the document it came in.
- One entry per admitted server, its latest visible version, in name order: identifier
  `urn:air:<host name>:mcp:<namespace>_<name>` (namespaces never contain `_`, so the last
  segment, which importers key on, is unique), `displayName`, `type`, `url`, `version`,
  `description` when there is one, and the same trust manifest. A version with a Server
  Card (`render.cards`) is `application/mcp-server-card+json` pointing at the card; any
  other (package-only, or remotes no card can carry) is `application/mcp-server+json`
  pointing at its v0.1 document, as GitHub's and VS Code's catalogs do.
- No document holds more than `per_document` servers: the rest go to nested same-host
  catalogs, `ard/<n>.json`, linked by `application/ai-catalog+json` entries after the
  servers, each with the same `host`. Documents are numbered breadth-first and hold
  servers in name order, at most three deep (root, then up to `per_document` children,
  each with as many of its own).

Same snapshot and policy, same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from mirror import paths
from mirror.errors import RenderError
from mirror.hosts import JSON, SERVER_CARD, Profile
from mirror.plan import Entry, Kind, digest
from mirror.render import api
from mirror.render.api import ServerSummary

SPEC_VERSION = "1.0"
FORMAT = "ard-0.91/1"  # bumped whenever the same summaries would give different bytes
MCP_SERVER = "application/mcp-server+json"  # ARD v0.9's MCP type: GitHub's feed, VS Code
MCP_SERVER_CARD = SERVER_CARD  # ARD v0.91's (ADR-0008)
AI_CATALOG = "application/ai-catalog+json"  # a nested catalog
URN_NAMESPACE = "mcp"
_URN_PART = re.compile(r"[^A-Za-z0-9._-]")

# Bounds. Every string of an entry has one, so a document's size does: a name is ASCII and
# at most 200 characters (paths.name_problem); a version at most 255 UTF-8 bytes
# (paths.MAX_SEGMENT_BYTES); a title and a description are cut by the summary
# (api.TITLE_CHARS, api.SUMMARY_CHARS). One character takes at most 6 bytes in a document
# (a \u escape: control characters, and <, > and & on the static profile); the base URL
# and host name are the site's own.
NAME_CHARS = 200
ESCAPED = 6
ENTRY_FIXED = 2048  # keys, quotes, indentation, the type, the fixed parts of URLs and URNs
POINTER_FIXED = 512
HOST_FIXED = 512
MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # MCP Gateway Registry's cap per document
MAX_DOCUMENT_ENTRIES = 10_000  # GitHub Agent Finder's
DOCUMENT_BUDGET = 3 * 1024 * 1024  # what one document may take at the bounds: well under both caps
SERVERS_PER_DOCUMENT = 250  # and at most as many nested-catalog links
MAX_DEPTH = 3  # documents from the root down, the root included (MCP Gateway Registry: 3 below it)


def entry_bound(base_url: str) -> int:
    """The most bytes one server's entry can take in a document, for this base URL."""
    base = len(base_url.encode())
    return (ENTRY_FIXED
            + 2 * ESCAPED * base  # the host name, in the identifier and the trust manifest
            + 2 * NAME_CHARS  # the name, in the identifier
            + ESCAPED * max(api.TITLE_CHARS, NAME_CHARS)  # displayName
            + ESCAPED * base  # url: the base,
            + 3 * (NAME_CHARS + paths.MAX_SEGMENT_BYTES)  # and the %-encoded name and version
            + ESCAPED * paths.MAX_SEGMENT_BYTES  # version
            + ESCAPED * api.SUMMARY_CHARS)  # description


def pointer_bound(base_url: str) -> int:
    """The most bytes one nested-catalog link can take."""
    return POINTER_FIXED + 3 * ESCAPED * len(base_url.encode())  # host name twice, and the url


def host_bound(base_url: str) -> int:
    return HOST_FIXED + 3 * ESCAPED * len(base_url.encode())


def per_document(base_url: str) -> int:
    """Servers (and links) per document: SERVERS_PER_DOCUMENT, or fewer for a base URL so
    long that many entries at their bounds would not fit DOCUMENT_BUDGET."""
    room = (DOCUMENT_BUDGET - host_bound(base_url)) // (entry_bound(base_url)
                                                        + pointer_bound(base_url))
    return max(1, min(SERVERS_PER_DOCUMENT, room))


def publisher(base_url: str) -> str:
    """The URN's publisher: the host name the mirror is served at."""
    host = (urlsplit(base_url).hostname or "localhost").lower()
    return re.sub(r"[^a-z0-9.-]", "-", host) or "localhost"


def identifier(base_url: str, name: str) -> str:
    """`urn:air:<host name>:mcp:<namespace>_<name>`: namespaces have no `_`, so the last
    segment tells every server apart (MCP Gateway Registry keys records on it)."""
    namespace, _, short = (_URN_PART.sub("-", part) for part in name.partition("/"))
    return f"urn:air:{publisher(base_url)}:{URN_NAMESPACE}:{namespace}_{short}"


def trust_manifest(base_url: str) -> dict[str, str]:
    return {"identity": f"https://{publisher(base_url)}", "identityType": "https"}


def host(base_url: str) -> dict[str, Any]:
    return {"displayName": f"MCP Registry mirror at {publisher(base_url)}",
            "documentationUrl": f"{base_url}/", "trustManifest": trust_manifest(base_url)}


def server_entry(summary: ServerSummary, *, base_url: str) -> dict[str, Any]:
    if summary.card:
        kind, url = MCP_SERVER_CARD, paths.Urls(base_url).card(summary.name, summary.version)
    else:
        kind, url = MCP_SERVER, paths.server_url(base_url, summary.name, summary.version)
    entry = {"identifier": identifier(base_url, summary.name),
             "displayName": summary.title or summary.name, "type": kind, "url": url,
             "version": summary.version}
    if summary.description:
        entry["description"] = summary.description
    entry["trustManifest"] = trust_manifest(base_url)
    return entry


def pointer_entry(number: int, *, base_url: str) -> dict[str, Any]:
    return {"identifier": f"urn:air:{publisher(base_url)}:catalog:page-{number}",
            "displayName": f"MCP servers, part {number}", "type": AI_CATALOG,
            "url": paths.Urls(base_url).tree_file(paths.ard_page_file(number)),
            "trustManifest": trust_manifest(base_url)}


@dataclass(frozen=True)
class Document:
    """One catalog document: `number` 1 is the root, the others are `ard/<number>.json`."""

    number: int
    servers: range  # indices into the servers in name order
    children: tuple[int, ...]  # the documents it links to

    @property
    def path(self) -> str:
        return paths.ARD_FILE if self.number == 1 else paths.ard_page_file(self.number)


def layout(count: int, per: int) -> list[Document]:
    """`count` servers in documents of at most `per` servers and `per` links, numbered
    breadth-first (a `per`-ary heap): document n holds servers (n-1)*per .. n*per-1, so
    reading documents in number order reads servers in name order."""
    documents = max(1, -(-count // per))
    capacity = sum(per ** depth for depth in range(MAX_DEPTH))
    if documents > capacity:
        raise RenderError(f"{count} servers need {documents} ARD catalog documents, more than the "
                          f"{capacity} that {MAX_DEPTH} levels of {per} hold",
                          hint="shorten --base-url, or curate the mirror with a policy")
    return [Document(number, range((number - 1) * per, min(number * per, count)),
                     tuple(range(per * (number - 1) + 2, min(per * number + 2, documents + 1))))
            for number in range(1, documents + 1)]


def document_bytes(document: Document, ordered: Sequence[ServerSummary], *, base_url: str) -> bytes:
    entries = [server_entry(ordered[i], base_url=base_url) for i in document.servers]
    entries += [pointer_entry(child, base_url=base_url) for child in document.children]
    return orjson.dumps({"specVersion": SPEC_VERSION, "host": host(base_url), "entries": entries},
                        option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def catalog_documents(summaries: Sequence[ServerSummary], *,
                      base_url: str) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every catalog document, in write order: the nested ones first
    (deepest first), the root last, so nothing is written before what it links to."""
    ordered = sorted(summaries, key=lambda summary: summary.name)
    for document in reversed(layout(len(ordered), per_document(base_url))):
        yield document.path, document_bytes(document, ordered, base_url=base_url)


def catalog(summaries: Sequence[ServerSummary], *, base_url: str,
            profile: Profile) -> Iterator[Entry]:
    """The catalog's entries, lists (they name documents and cards), in write order;
    `ai-catalog.json` is the root's bytes again. Made once the documents pass is over, so
    `summaries` is complete; each document's source is what it is made from."""
    ordered = sorted(summaries, key=lambda summary: summary.name)
    documents = layout(len(ordered), per_document(base_url))
    for document in reversed(documents):
        source = digest(FORMAT, base_url, str(document.number), str(len(documents)), *(
            f"{s.name}\x00{s.version}\x00{s.title}\x00{s.description}\x00{s.card:d}"
            for s in (ordered[i] for i in document.servers)))

        def body(document: Document = document) -> bytes:
            return profile.document(document_bytes(document, ordered, base_url=base_url))

        yield Entry(document.path, Kind.LIST, JSON, body, source=source)
        if document.number == 1:
            yield Entry(paths.AI_CATALOG_FILE, Kind.LIST, JSON, body, source=source)
