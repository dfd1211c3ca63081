"""The Agentic Resource Discovery (ARD) catalog, `/.well-known/ai-catalog.json`.

ARD v0.9 (draft, ards-project/ard-spec) builds on the AI Catalog manifest, specVersion
"1.0" (spec/schemas/ai-catalog.schema.json): a `host` with a `displayName`, and `entries`
each with an `identifier` (`urn:air:<publisher>:<namespace>:<name>`, the publisher being
the mirror's host name), a `displayName`, a media `type`, and either a `url` or inline
`data`. Each entry here is one served server's latest visible version, its `url` the
mirror's own server.json document for that version: exactly the servers the policy
admits, in name order, so the same snapshot and policy give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson

from mirror import paths
from mirror.hosts import JSON, Profile
from mirror.plan import Entry, Kind, digest
from mirror.render.api import ServerSummary

SPEC_VERSION = "1.0"
MCP_SERVER = "application/mcp-server+json"
_URN_PART = re.compile(r"[^A-Za-z0-9._-]")


def publisher(base_url: str) -> str:
    """The URN's publisher: the host name the mirror is served at."""
    host = (urlsplit(base_url).hostname or "localhost").lower()
    return re.sub(r"[^a-z0-9.-]", "-", host)


def identifier(base_url: str, name: str) -> str:
    namespace, _, short = name.partition("/")
    return f"urn:air:{publisher(base_url)}:{_URN_PART.sub('-', namespace)}:{_URN_PART.sub('-', short)}"


def catalog_document(summaries: Iterable[ServerSummary], *, base_url: str) -> bytes:
    host = publisher(base_url)
    entries = []
    for summary in sorted(summaries, key=lambda s: s.name):
        entry = {"identifier": identifier(base_url, summary.name), "displayName": summary.title or summary.name,
                 "type": MCP_SERVER, "url": paths.server_url(base_url, summary.name, summary.version),
                 "version": summary.version}
        if summary.description:
            entry["description"] = summary.description
        entries.append(entry)
    document = {"specVersion": SPEC_VERSION,
                "host": {"displayName": f"MCP Registry mirror at {host}", "documentationUrl": f"{base_url}/"},
                "entries": entries}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def catalog(summaries: list[ServerSummary], *, base_url: str, profile: Profile) -> Entry:
    """It names documents, so it is a list: written after them, before the pointers. Made
    once the documents pass is over, so `summaries` is complete and names its source."""
    source = digest(SPEC_VERSION, base_url, *(f"{s.name}\x00{s.version}\x00{s.title}\x00{s.description}"
                                              for s in summaries))
    return Entry(paths.AI_CATALOG_FILE, Kind.LIST, JSON,
                 lambda: profile.document(catalog_document(summaries, base_url=base_url)), source=source)
