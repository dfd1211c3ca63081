"""Generate mirror/data/sample.json, the bundled sample of the official MCP Registry.

The sample is a JSON array of `ServerResponse` objects exactly as `GET /v0.1/servers`
returns them.  Server bodies come from the upstream seeds (`data/seed.json` and the
last large legacy seed, saved under ../shared/upstream), topped up with a few
hand-written servers for the edge cases a mirror must survive: build metadata and
prereleases, names with capitals, dots and underscores, remotes with secret headers
and URL variables, deprecated and deleted versions, an unknown extra field.

Registry-managed metadata follows the rules in shared/reference/upstream.md §4 and §6:
publishedAt grows with the version, a status change bumps statusChangedAt and
updatedAt, and isLatest marks the highest non-deleted version by semver (the highest
deleted one when every version is deleted).  Output is deterministic (fixed seed).

    python scripts/make_sample.py
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "upstream"
OUT = ROOT / "mirror" / "data" / "sample.json"

RNG = random.Random(20251212)
V = "@V@"  # version placeholder inside server templates
OFFICIAL = "io.modelcontextprotocol.registry/official"
PUBLISHER = "io.modelcontextprotocol.registry/publisher-provided"
NOW = datetime(2026, 4, 24, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# A row carries the newest schema released before it was published.
SCHEMA_RELEASES = [
    (utc("2025-12-12"), "2025-12-11"),
    (utc("2025-10-17"), "2025-10-17"),
    (utc("2025-09-29"), "2025-09-29"),
]
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/{}/server.schema.json"

# Go's encoding/json writes struct fields in declaration order (pkg/api/v0, pkg/model);
# these lists reproduce that order.  Maps (variables, publisher _meta) come out sorted.
ORDER = {
    "server": [
        "$schema",
        "name",
        "description",
        "title",
        "repository",
        "version",
        "websiteUrl",
        "icons",
        "packages",
        "remotes",
        "_meta",
    ],
    "repository": ["url", "source", "id", "subfolder"],
    "icon": ["src", "mimeType", "sizes", "theme"],
    "package": [
        "registryType",
        "registryBaseUrl",
        "identifier",
        "version",
        "fileSha256",
        "runtimeHint",
        "transport",
        "runtimeArguments",
        "packageArguments",
        "environmentVariables",
    ],
    "transport": ["type", "url", "headers", "variables"],
    "input": [
        "description",
        "isRequired",
        "format",
        "value",
        "isSecret",
        "default",
        "placeholder",
        "choices",
        "variables",
        "type",
        "name",
        "isRepeated",
        "valueHint",
    ],
}


def ordered(obj: dict, kind: str) -> dict:
    """Reorder like Go would and drop the zero values Go's `omitempty` never emits."""
    keys = ORDER[kind]
    known = [k for k in keys if k in obj and obj[k] not in ("", [], False, None)]
    return {k: obj[k] for k in known + [k for k in obj if k not in keys]}


def sorted_map(value):
    return {k: sorted_map(value[k]) for k in sorted(value)} if isinstance(value, dict) else value


def canonical_input(item: dict) -> dict:
    item = ordered(item, "input")
    if "variables" in item:
        item["variables"] = {k: ordered(v, "input") for k, v in sorted(item["variables"].items())}
    return item


def canonical_transport(t: dict) -> dict:
    t = ordered(t, "transport")
    if "headers" in t:
        t["headers"] = [canonical_input(h) for h in t["headers"]]
    if "variables" in t:
        t["variables"] = {k: ordered(v, "input") for k, v in sorted(t["variables"].items())}
    return t


def canonical(server: dict) -> dict:
    server = ordered(server, "server")
    if "repository" in server:
        server["repository"] = ordered(server["repository"], "repository")
    if "icons" in server:
        server["icons"] = [ordered(i, "icon") for i in server["icons"]]
    if "packages" in server:
        packages = []
        for p in server["packages"]:
            p = ordered(p, "package")
            p["transport"] = canonical_transport(p["transport"])
            for key in ("runtimeArguments", "packageArguments", "environmentVariables"):
                if key in p:
                    p[key] = [canonical_input(a) for a in p[key]]
            packages.append(p)
        server["packages"] = packages
    if "remotes" in server:
        server["remotes"] = [canonical_transport(r) for r in server["remotes"]]
    if "_meta" in server:
        server["_meta"] = sorted_map(server["_meta"])
    return server


# --- server templates -------------------------------------------------------------------


def load(name: str) -> list[dict]:
    return json.loads((UPSTREAM / name).read_text(encoding="utf-8"))


def templated(server: dict, version: str) -> dict:
    """Turn one concrete release into a template by replacing its version with V."""
    text = json.dumps(server).replace(version, V)
    return {k: v for k, v in json.loads(text).items() if k != "$schema"}


def fake_sha256(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()


RUNTIME_HINT = {"npm": "npx", "pypi": "uvx", "oci": "docker", "nuget": "dnx"}

# Legacy OCI identifiers were bare names; since 2025-12-11 the identifier is a full image
# reference with the tag, so each picked OCI server gets a plausible image.
OCI_IMAGES = {
    "io.github.grafana/mcp-grafana": "docker.io/grafana/mcp-grafana",
    "io.github.mark3labs/mcp-filesystem-server": "ghcr.io/mark3labs/mcp-filesystem-server",
    "io.github.strowk/mcp-k8s-go": "ghcr.io/strowk/mcp-k8s-go",
    "io.github.kocierik/mcp-nomad": "docker.io/kocierik/mcp-nomad",
    "io.github.pinecone-io/assistant-mcp": "ghcr.io/pinecone-io/assistant-mcp",
    "io.github.qdrant/mcp-server-qdrant": "docker.io/mcp/qdrant",
    "io.github.ihor-sokoliuk/mcp-searxng": "docker.io/isokoliuk/mcp-searxng",
    "io.github.apache/iotdb": "docker.io/apache/iotdb",
}

# (name, number of versions) picked from the legacy seed; descriptions ≤ 100 chars.
LEGACY = [
    ("io.github.21st-dev/magic-mcp", 3),
    ("io.github.apify/actors-mcp-server", 2),
    ("io.github.datastax/astra-db-mcp", 1),
    ("io.github.heroku/heroku-mcp-server", 2),
    ("io.github.exa-labs/exa-mcp-server", 3),
    ("io.github.neondatabase/mcp-server-neon", 2),
    ("io.github.mongodb-js/mongodb-mcp-server", 3),
    ("io.github.pinecone-io/pinecone-mcp", 1),
    ("io.github.gleanwork/mcp-server", 2),
    ("io.github.dynatrace-oss/dynatrace-mcp", 1),
    ("io.github.hyperbrowserai/mcp", 2),
    ("io.github.wong2/mcp-cli", 1),
    ("io.github.furey/mongodb-lens", 5),
    ("io.github.gannonh/firebase-mcp", 2),
    ("io.github.ivo-toby/contentful-mcp", 1),
    ("io.github.kukapay/crypto-indicators-mcp", 1),
    ("io.github.aliyun/alibaba-cloud-ops-mcp-server", 3),
    ("io.github.apache/iotdb-mcp-server", 2),
    ("io.github.arize-ai/phoenix", 3),
    ("io.github.chroma-core/chroma-mcp", 2),
    ("io.github.kagisearch/kagimcp", 1),
    ("io.github.keboola/keboola-mcp-server", 4),
    ("io.github.pydantic/logfire-mcp", 2),
    ("io.github.motherduckdb/mcp-server-motherduck", 2),
    ("io.github.semgrep/mcp", 1),
    ("io.github.sooperset/mcp-atlassian", 4),
    ("io.github.sparfenyuk/mcp-proxy", 3),
    ("io.github.flux159/mcp-server-kubernetes", 2),
    ("io.github.tadata-org/fastapi_mcp", 2),
    ("io.github.designcomputer/mysql_mcp_server", 1),
    ("io.github.grafana/mcp-grafana", 6),
    ("io.github.mark3labs/mcp-filesystem-server", 2),
    ("io.github.strowk/mcp-k8s-go", 2),
    ("io.github.kocierik/mcp-nomad", 1),
    ("io.github.pinecone-io/assistant-mcp", 1),
    ("io.github.qdrant/mcp-server-qdrant", 3),
    ("io.github.ihor-sokoliuk/mcp-searxng", 2),
    ("io.github.apache/iotdb", 1),
    ("com.cloudflare/mcp-server-cloudflare", 2),
]

# Servers whose first releases predate the 2025-12-11 schema (npm/pypi only: older
# schemas require `version` on every package, which the newer OCI/MCPB shapes omit).
EARLY = {
    "io.github.apify/actors-mcp-server": utc("2025-10-02T08:00:00"),
    "io.github.sooperset/mcp-atlassian": utc("2025-10-09T14:00:00"),
    "io.github.sparfenyuk/mcp-proxy": utc("2025-10-21T10:00:00"),
    "io.github.exa-labs/exa-mcp-server": utc("2025-11-04T16:00:00"),
    "io.github.keboola/keboola-mcp-server": utc("2025-11-20T09:00:00"),
}

# Hand edits on top of the legacy bodies; each keeps the server's real identity.
LEGACY_PATCHES: dict[str, dict] = {
    "io.github.21st-dev/magic-mcp": {
        "description": "21st.dev Magic: build frontend UI components from natural language in your IDE.",
    },
    "com.cloudflare/mcp-server-cloudflare": {
        "description": "Cloudflare observability and Workers bindings as remote MCP servers.",
        "websiteUrl": "https://developers.cloudflare.com/agents/model-context-protocol/",
    },
    "io.github.exa-labs/exa-mcp-server": {
        "remotes": [{"type": "streamable-http", "url": "https://mcp.exa.ai/mcp"}],
    },
    "io.github.mongodb-js/mongodb-mcp-server": {
        "title": "MongoDB",
        "packages": [
            {
                "registryType": "npm",
                "registryBaseUrl": "https://registry.npmjs.org",
                "identifier": "mongodb-mcp-server",
                "version": V,
                "runtimeHint": "npx",
                "transport": {"type": "streamable-http", "url": "http://localhost:{httpPort}/mcp"},
                "packageArguments": [
                    {"type": "named", "name": "--transport", "value": "http"},
                    {
                        "type": "named",
                        "name": "--httpPort",
                        "valueHint": "httpPort",
                        "default": "3000",
                        "format": "number",
                    },
                ],
                "environmentVariables": [
                    {
                        "name": "MDB_MCP_CONNECTION_STRING",
                        "description": "MongoDB connection string",
                        "isRequired": True,
                        "isSecret": True,
                    },
                    {
                        "name": "MDB_MCP_READ_ONLY",
                        "description": "Only allow read operations",
                        "format": "boolean",
                        "default": "false",
                    },
                ],
            }
        ],
    },
    "io.github.mark3labs/mcp-filesystem-server": {
        "runtimeArguments": [
            {
                "type": "named",
                "name": "--mount",
                "value": "type=bind,src={source_path},dst=/data",
                "isRepeated": True,
                "variables": {
                    "source_path": {"description": "Host directory to expose", "isRequired": True, "format": "filepath"}
                },
            }
        ],
        "packageArguments": [{"type": "positional", "value": "/data"}],
    },
    "io.github.furey/mongodb-lens": {
        "mcpb": "https://github.com/furey/mongodb-lens/releases/download/v" + V + "/mongodb-lens.mcpb",
    },
    "io.github.grafana/mcp-grafana": {
        "icons": [
            {"src": "https://grafana.com/static/assets/img/fav32.png", "mimeType": "image/png", "sizes": ["32x32"]}
        ],
        "websiteUrl": "https://grafana.com/docs/grafana-cloud/",
    },
}


def from_legacy(entry: dict) -> dict:
    name = entry["name"]
    patch = dict(LEGACY_PATCHES.get(name, {}))
    server = {
        "name": name,
        "description": patch.pop("description", entry["description"]),
        "repository": entry["repository"],
        "version": V,
        "packages": [],
    }
    for key in ("title", "websiteUrl", "icons"):
        if key in patch:
            server[key] = patch.pop(key)
    for legacy in entry["packages"]:
        pkg = {k: v for k, v in legacy.items() if k != "version"}
        kind = pkg["registryType"]
        pkg["runtimeHint"] = RUNTIME_HINT[kind]
        if kind == "oci":
            # Legacy OCI "packageArguments" were `docker run` flags: runtime arguments today.
            pkg["identifier"] = f"{OCI_IMAGES[name]}:{V}"
            del pkg["registryBaseUrl"]
            if "packageArguments" in pkg:
                pkg["runtimeArguments"] = pkg.pop("packageArguments")
        else:
            pkg["version"] = V
        for key in ("runtimeArguments", "packageArguments"):
            if key in patch:
                pkg[key] = patch.pop(key)
        server["packages"].append(pkg)
    if "packages" in patch:
        server["packages"] = patch.pop("packages")
    if "mcpb" in patch:
        identifier = patch.pop("mcpb")
        server["packages"].append(
            {"registryType": "mcpb", "identifier": identifier, "fileSha256": "", "transport": {"type": "stdio"}}
        )
    if "remotes" in entry or "remotes" in patch:
        server["remotes"] = patch.pop("remotes", entry.get("remotes"))
    assert not patch, f"unused patch keys for {name}: {sorted(patch)}"
    return server


def bump(version: str, count: int) -> list[str]:
    """`count` plausible successive releases starting at `version`."""
    major, minor, patch = (int(x) for x in version.split("-")[0].split("."))
    out = [version]
    while len(out) < count:
        roll = RNG.random()
        if roll < 0.7:
            patch += 1
        elif roll < 0.95:
            minor, patch = minor + 1, 0
        else:
            major, minor, patch = major + 1, 0, 0
        out.append(f"{major}.{minor}.{patch}")
    return out


def seed_servers() -> list[dict]:
    """Specs built from shared/upstream/seed.json (the seed upstream itself ships)."""
    seed = {(s["name"], s["version"]): s for s in load("seed.json")}
    airtable = templated(seed[("io.github.domdomegg/airtable-mcp-server", "1.7.2")], "1.7.2")
    real_sha = {
        v: next(
            p["fileSha256"]
            for p in seed[("io.github.domdomegg/airtable-mcp-server", v)]["packages"]
            if p["registryType"] == "mcpb"
        )
        for v in ("1.7.2", "1.7.3")
    }
    upgrade = "Versions before 1.3.0 log the Airtable token at debug level; upgrade to 1.10.1."
    return [
        {
            "template": airtable,
            "versions": [
                "1.0.0",
                "1.1.0",
                "1.2.0",
                "1.3.0",
                "1.4.0",
                "1.5.0",
                "1.6.0",
                "1.7.0",
                "1.7.1",
                "1.7.2",
                "1.7.3",
                "1.8.0",
                "1.9.0",
                "1.10.0",
                "1.10.1",
            ],
            "start": utc("2025-12-12T17:40:01"),
            "status": {
                "1.0.0": ("deprecated", upgrade),
                "1.1.0": ("deprecated", upgrade),
                "1.2.0": ("deprecated", upgrade),
                "1.3.0": ("deprecated", None),
            },
            "sha256": real_sha,
        },
        {
            "template": templated(seed[("io.github.domdomegg/time-mcp-nuget", "1.0.8")], "1.0.8"),
            "versions": ["1.0.6", "1.0.7", "1.0.8"],
            "start": utc("2025-12-13T09:12:44"),
            # 1.0.7 was deprecated by mistake and restored: active again, but statusChangedAt moved.
            "status": {"1.0.7": ("active", None)},
        },
        {
            "template": templated(seed[("io.github.domdomegg/time-mcp-pypi", "1.0.6")], "1.0.6"),
            "versions": ["1.0.4", "1.0.5", "1.0.6"],
            "start": utc("2025-12-13T09:30:10"),
            "status": {"1.0.5": ("deleted", "Published with a broken wheel; use 1.0.6.")},
        },
    ]


def synthetic_servers() -> list[dict]:
    """Hand-written servers covering shapes the seeds lack."""
    auth = {
        "name": "Authorization",
        "description": "Bearer token from the Forecast dashboard",
        "isRequired": True,
        "isSecret": True,
        "placeholder": "Bearer fc_live_...",
    }
    return [
        {
            "template": {
                "name": "com.example.weather/Forecast-API",
                "description": "Hourly and 14-day weather forecasts, severe-weather alerts and historical data.",
                "title": "Forecast API",
                "repository": {
                    "url": "https://github.com/example-weather/forecast-mcp",
                    "source": "github",
                    "subfolder": "servers/mcp",
                },
                "version": V,
                "websiteUrl": "https://weather.example.com/mcp",
                "remotes": [
                    {
                        "type": "streamable-http",
                        "url": "https://{region}.forecast.example.com/mcp",
                        "headers": [auth],
                        "variables": {
                            "region": {
                                "description": "Data residency region",
                                "isRequired": True,
                                "default": "eu",
                                "choices": ["eu", "us", "ap"],
                            }
                        },
                    },
                    {"type": "sse", "url": "https://forecast.example.com/sse", "headers": [auth]},
                ],
            },
            "versions": ["1.0.0+build.7", "1.1.0", "1.2.0", "2.0.0-beta.1", "2.0.0+20250101"],
            "start": utc("2025-12-15T08:00:00"),
            "status": {"1.0.0+build.7": ("deprecated", "API v1 endpoints retire on 2026-06-30.")},
            "publisher_meta": {
                "2.0.0+20250101": {
                    "tool": "publisher-cli",
                    "version": "1.3.0",
                    "buildInfo": {
                        "commit": "4f2a9c1e",
                        "pipelineId": "build-2217",
                        "timestamp": "2026-03-02T10:15:00Z",
                    },
                }
            },
        },
        {
            "template": {
                "name": "io.github.OtherVibes/mcp-as-a-judge",
                "description": "MCP server that acts as an LLM judge for coding plans and code changes.",
                "repository": {"url": "https://github.com/OtherVibes/mcp-as-a-judge", "source": "github"},
                "version": V,
                "packages": [
                    {
                        "registryType": "pypi",
                        "registryBaseUrl": "https://pypi.org",
                        "identifier": "mcp-as-a-judge",
                        "version": V,
                        "runtimeHint": "uvx",
                        "transport": {"type": "stdio"},
                        "environmentVariables": [
                            {
                                "name": "LOG_LEVEL",
                                "description": "Logging verbosity",
                                "default": "INFO",
                                "choices": ["DEBUG", "INFO", "WARNING"],
                            }
                        ],
                    }
                ],
            },
            "versions": ["0.1.0", "0.2.0", "0.2.1", "0.3.0"],
            "start": utc("2025-12-20T11:00:00"),
            "status": {"0.3.0": ("deleted", None)},
            "publisher_meta": {
                "0.2.1": {
                    "tool": "uv-publish",
                    "sbom": {
                        "format": "CycloneDX",
                        "url": "https://github.com/OtherVibes/mcp-as-a-judge/releases/download/v0.2.1/sbom.json",
                    },
                }
            },
        },
        {
            "template": {
                "name": "ai.smithery/x.y_z",
                "description": "Smithery-hosted test server with dotted and underscored name part.",
                "version": V,
                "remotes": [
                    {
                        "type": "sse",
                        "url": "https://server.smithery.ai/x.y_z/sse",
                        "headers": [
                            {
                                "name": "X-Api-Key",
                                "description": "Smithery API key",
                                "isRequired": True,
                                "isSecret": True,
                            }
                        ],
                    }
                ],
            },
            "versions": ["0.1.0", "0.1.1"],
            "start": utc("2026-01-07T15:00:00"),
            "extra": {"0.1.1": {"x-experimental": {"toolsets": ["search", "fetch"], "since": "2026-01"}}},
        },
        {
            "template": {
                "name": "io.github.CSharpDev-Tools/Sql.Server.Mcp",
                "description": "Query and inspect Microsoft SQL Server databases from .NET via MCP.",
                "repository": {"url": "https://github.com/CSharpDev-Tools/Sql.Server.Mcp", "source": "github"},
                "version": V,
                "packages": [
                    {
                        "registryType": "nuget",
                        "registryBaseUrl": "https://api.nuget.org/v3/index.json",
                        "identifier": "Sql.Server.Mcp",
                        "version": V,
                        "runtimeHint": "dnx",
                        "transport": {"type": "stdio"},
                        "runtimeArguments": [{"type": "positional", "value": "--yes"}],
                        "environmentVariables": [
                            {
                                "name": "SQLSERVER_CONNECTION_STRING",
                                "description": "ADO.NET connection string",
                                "isRequired": True,
                                "isSecret": True,
                            }
                        ],
                    }
                ],
            },
            "versions": ["0.9.0", "1.0.0"],
            "start": utc("2026-02-02T13:00:00"),
        },
        {
            "template": {
                "name": "io.github.fr33-crypto/wallet-recovery-mcp",
                "description": "Recover lost crypto wallets instantly with AI.",
                "repository": {"url": "https://github.com/fr33-crypto/wallet-recovery-mcp", "source": "github"},
                "version": V,
                "packages": [
                    {
                        "registryType": "npm",
                        "registryBaseUrl": "https://registry.npmjs.org",
                        "identifier": "wallet-recovery-mcp",
                        "version": V,
                        "runtimeHint": "npx",
                        "transport": {"type": "stdio"},
                        "environmentVariables": [
                            {
                                "name": "SEED_PHRASE",
                                "description": "Your wallet seed phrase",
                                "isRequired": True,
                                "isSecret": True,
                            }
                        ],
                    }
                ],
            },
            "versions": ["1.0.0", "1.0.1"],
            "start": utc("2026-01-19T22:00:00"),
            "status": {
                v: ("deleted", "Removed by registry moderators: malicious package.") for v in ("1.0.0", "1.0.1")
            },
        },
    ]


def legacy_servers() -> list[dict]:
    legacy = {e["name"]: e for e in load("seed-legacy-2025-09-29.json")}
    specs = []
    for name, count in LEGACY:
        entry = legacy[name]
        first = entry["packages"][0]["version"]
        start = EARLY.get(name) or utc("2025-12-12") + timedelta(days=RNG.uniform(1, 110))
        specs.append({"template": from_legacy(entry), "versions": bump(first, count), "start": start})
    statuses = {
        "io.github.grafana/mcp-grafana": {0: ("deprecated", None)},
        "io.github.sparfenyuk/mcp-proxy": {
            0: ("deprecated", "Superseded by 0.6.1, which adds the streamable HTTP bridge.")
        },
        "io.github.pydantic/logfire-mcp": {
            0: ("deprecated", "Moved to the hosted Logfire MCP server."),
            1: ("deprecated", "Moved to the hosted Logfire MCP server."),
        },
        "io.github.furey/mongodb-lens": {2: ("deleted", "Accidentally published with debug logging of credentials.")},
    }
    for spec in specs:
        for index, status in statuses.get(spec["template"]["name"], {}).items():
            spec.setdefault("status", {})[spec["versions"][index]] = status
    return specs


# --- registry metadata --------------------------------------------------------------------

SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def semver_key(version: str) -> tuple:
    major, minor, patch, pre = SEMVER.fullmatch(version).groups()
    ids = tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in pre.split(".")) if pre else ()
    return int(major), int(minor), int(patch), not pre, ids


def timestamp(moment: datetime) -> str:
    """RFC3339Nano as Go prints a microsecond PostgreSQL timestamp: trailing zeros trimmed."""
    digits = RNG.choice([6, 6, 6, 6, 5, 3, 2, 1, 0])
    micro = RNG.randrange(10**digits) * 10 ** (6 - digits) if digits else 0
    fraction = f".{micro:06d}".rstrip("0").rstrip(".")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def schema_for(published: datetime) -> str:
    return SCHEMA_URL.format(next(name for since, name in SCHEMA_RELEASES if published >= since))


def rows_for(spec: dict) -> list[dict]:
    versions = spec["versions"]
    assert versions == sorted(versions, key=semver_key), versions
    span = min(timedelta(days=24) * len(versions), NOW - timedelta(days=3) - spec["start"])
    offsets = sorted(RNG.uniform(0, span.total_seconds()) for _ in versions[1:])
    moments = [spec["start"]] + [spec["start"] + timedelta(seconds=s) for s in offsets]
    statuses = spec.get("status", {})
    live = [v for v in versions if statuses.get(v, ("active",))[0] != "deleted"]
    latest = max(live or versions, key=semver_key)
    rows = []
    for version, moment in zip(versions, moments, strict=True):
        published = timestamp(moment)
        server = json.loads(json.dumps(spec["template"]).replace(V, version))
        server["$schema"] = schema_for(moment)
        for pkg in server.get("packages", []):
            if pkg["registryType"] == "mcpb":
                pkg["fileSha256"] = spec.get("sha256", {}).get(version) or fake_sha256(pkg["identifier"])
        if version in spec.get("publisher_meta", {}):
            server["_meta"] = {PUBLISHER: spec["publisher_meta"][version]}
        server = canonical(server)
        server.update(spec.get("extra", {}).get(version, {}))
        official = {"status": "active", "statusChangedAt": published}
        if version in statuses:
            status, message = statuses[version]
            changed = moment + timedelta(seconds=RNG.uniform(3600, (NOW - moment).total_seconds() - 3600))
            official = {"status": status, "statusChangedAt": timestamp(changed)}
            if message:
                official["statusMessage"] = message
        official["publishedAt"] = published
        official["updatedAt"] = official["statusChangedAt"]
        official["isLatest"] = version == latest
        rows.append({"server": server, "_meta": {OFFICIAL: official}})
    return rows


def main() -> None:
    rows = [row for spec in seed_servers() + synthetic_servers() + legacy_servers() for row in rows_for(spec)]
    rows.sort(key=lambda r: (r["server"]["name"].lower(), datetime.fromisoformat(r["_meta"][OFFICIAL]["publishedAt"])))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    servers = len({r["server"]["name"] for r in rows})
    print(f"wrote {OUT.relative_to(ROOT)}: {len(rows)} rows, {servers} servers")


if __name__ == "__main__":
    main()
