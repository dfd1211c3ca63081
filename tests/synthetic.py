"""A deterministic, realistic synthetic registry for `make bench`.

Servers have 1 to 50 versions (most have a few, some many, as upstream), each a full
server.json with packages of every registry type, remotes, environment variables and
headers, and the registry's `_meta` (statuses, publishedAt, updatedAt, isLatest).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from mirror.models import OFFICIAL

SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
WORDS = ("fast", "secure", "local", "cloud", "search", "files", "git", "docs", "data", "query", "slack", "notes",
         "calendar", "mail", "browser", "shell", "kubernetes", "postgres", "redis", "weather", "maps", "tickets")
EPOCH = datetime(2025, 6, 1, tzinfo=UTC)


def _stamp(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _package(rnd: random.Random, short: str, version: str) -> dict[str, Any]:
    kind = rnd.choices(("npm", "pypi", "oci", "nuget", "mcpb"), weights=(55, 25, 12, 3, 5))[0]
    identifier = {"npm": f"@{short}/mcp-server", "pypi": f"{short}-mcp", "oci": f"ghcr.io/{short}/mcp-server",
                  "nuget": f"{short.title()}.Mcp", "mcpb": f"https://github.com/{short}/releases/download/v{version}/"
                  f"{short}.mcpb"}[kind]
    package: dict[str, Any] = {"registryType": kind, "identifier": identifier, "version": version,
                               "transport": {"type": "stdio"}}
    if kind == "mcpb":
        package["fileSha256"] = f"{rnd.getrandbits(256):064x}"
    if rnd.random() < 0.6:
        package["environmentVariables"] = [
            {"name": f"{rnd.choice(WORDS).upper()}_{suffix}",
             "description": f"The {rnd.choice(WORDS)} {suffix.lower()}",
             "isRequired": rnd.random() < 0.5, "isSecret": suffix == "TOKEN"}
            for suffix in rnd.sample(("TOKEN", "URL", "REGION", "PROFILE"), rnd.randint(1, 3))]
    if rnd.random() < 0.3:
        package["packageArguments"] = [{"type": "named", "name": "--mode", "value": rnd.choice(("read", "write"))}]
    return package


def _versions_count(rnd: random.Random) -> int:
    return min(50, max(1, int(rnd.paretovariate(0.9))))


def synthetic_registry(versions: int, *, seed: int = 7) -> list[dict[str, Any]]:
    """About `versions` entries (exactly that many), in no particular order."""
    rnd = random.Random(seed)
    entries: list[dict[str, Any]] = []
    server = 0
    while len(entries) < versions:
        count = min(_versions_count(rnd), versions - len(entries))
        owner = f"{rnd.choice(WORDS)}{server}"
        short = f"{rnd.choice(WORDS)}-{rnd.choice(WORDS)}"
        name = f"io.github.{owner}/{short}" if rnd.random() < 0.8 else f"com.{owner}.mcp/{short}"
        published = EPOCH + timedelta(minutes=rnd.randint(0, 300_000))
        remote = rnd.random() < 0.3
        for n in range(count):
            version = f"{n // 10}.{n % 10}.{rnd.randint(0, 3)}" if rnd.random() < 0.97 else f"{n}.0.0-beta.{n}"
            published += timedelta(hours=rnd.randint(1, 150))  # every time stays before the changes
            status = rnd.choices(("active", "deprecated", "deleted"), weights=(94, 4, 2))[0]
            detail: dict[str, Any] = {
                "$schema": SCHEMA, "name": name,
                "description": " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 12)))[:100],
                "title": short.replace("-", " ").title(), "version": version,
                "repository": {"url": f"https://github.com/{owner}/{short}", "source": "github"},
                "websiteUrl": f"https://{owner}.example.com/{short}",
                "packages": [_package(rnd, short, version) for _ in range(rnd.choice((1, 1, 1, 2)))],
            }
            if remote:
                detail["remotes"] = [{"type": "streamable-http", "url": f"https://mcp.{owner}.example.com/{short}",
                                      "headers": [{"name": "Authorization", "isRequired": True, "isSecret": True}]}]
            if rnd.random() < 0.2:
                detail["icons"] = [{"src": f"https://{owner}.example.com/icon.png", "mimeType": "image/png"}]
            official = {"status": status, "publishedAt": _stamp(published), "updatedAt": _stamp(published),
                        "isLatest": n == count - 1}
            if status != "active":
                official["statusChangedAt"] = _stamp(published + timedelta(days=3))
                official["updatedAt"] = official["statusChangedAt"]
                if status == "deprecated":
                    official["statusMessage"] = "superseded by a newer version"
            entries.append({"server": detail, "_meta": {OFFICIAL: official}})
        server += 1
    # keep the (name, version) keys unique
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry["server"]["name"], entry["server"]["version"])
        while key in seen:
            entry["server"]["version"] += ".1"
            key = (entry["server"]["name"], entry["server"]["version"])
        seen.add(key)
    return entries


def change_one_percent(entries: list[dict[str, Any]], *, round_: int, seed: int = 11) -> list[int]:
    """Change 1% of the rows in place, as an hour of upstream does: descriptions and
    statuses; returns the indices of the rows changed."""
    rnd = random.Random(seed + round_)
    chosen = rnd.sample(range(len(entries)), max(1, len(entries) // 100))
    when = _stamp(EPOCH + timedelta(days=530, hours=round_))  # after every row's own times, as upstream's now is
    for index in chosen:
        entry = entries[index]
        official = entry["_meta"][OFFICIAL]
        if rnd.random() < 0.7:
            entry["server"]["description"] = f"updated in round {round_}: {entry['server']['description']}"[:100]
        else:
            official["status"] = "deprecated" if official["status"] == "active" else "active"
            official["statusChangedAt"] = when
        official["updatedAt"] = when
    return chosen
