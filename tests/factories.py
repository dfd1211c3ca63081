"""Small builders for upstream items and rows, shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

from mirror.models import OFFICIAL, Row, row_from_item


def item(name: str, version: str, *, status: str = "active", latest: bool = False,
         published: str = "2025-10-01T00:00:00Z", description: str = "A server", **server: Any) -> dict[str, Any]:
    return {
        "server": {
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": name, "description": description, "version": version, **server,
        },
        "_meta": {OFFICIAL: {"status": status, "statusChangedAt": published, "publishedAt": published,
                             "updatedAt": published, "isLatest": latest}},
    }


def row(name: str, version: str, **kwargs: Any) -> Row:
    return row_from_item(item(name, version, **kwargs))


def official(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["_meta"][OFFICIAL]


def with_status(entry: dict[str, Any], status: str, message: str | None = None,
                when: str = "2025-11-01T00:00:00Z") -> dict[str, Any]:
    changed = copy.deepcopy(entry)
    meta = official(changed)
    meta.update(status=status, statusChangedAt=when, updatedAt=when)
    meta.pop("statusMessage", None)
    if message:
        meta["statusMessage"] = message
    return changed
