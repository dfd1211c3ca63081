"""ToolHive's upstream-registry file: valid against ToolHive's own schema and checks, bounded.

The oracle is independent of mirror/toolhive.py: stock jsonschema validators over the saved
ToolHive schema (toolhive-core@61e76f2) with its `$ref` resolved by `referencing` to the saved
2025-12-11 server schema, plus ToolHive's Go checks re-stated (toolhive-core
`schema_validation.go`, toolhive-registry-server `internal/sources/types.go`). Go's own
validator does not run here (no Go toolchain).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator
from referencing import Registry, Resource
from synthetic import synthetic_registry

from mirror import toolhive
from mirror.errors import UsageError
from mirror.models import OFFICIAL
from mirror.toolhive import MAX_META_BYTES, PUBLISHER, REASON_CHARS, SCHEMA_URL, Left, registry_file

SHARED = Path(__file__).resolve().parents[2] / "shared"
THV_SCHEMA = (SHARED / "reference/schemas"
              / "toolhive-upstream-registry.schema.toolhive-core-61e76f2.json")
SERVER_SCHEMA = SHARED / "upstream/schemas/2025-12-11.server.schema.json"
DATA = Path(toolhive.__file__).parent / "data"
PUBLISHER_SCHEMA = DATA / "toolhive-publisher-provided.schema.json"
WHEN = "2026-12-01T00:00:00Z"
STACKLOK = "io.github.stacklok"
MB = 1_000_000


def _oracle() -> tuple[Draft202012Validator, Draft7Validator]:
    server = json.loads(SERVER_SCHEMA.read_text())
    registry = Registry().with_resource(server["$id"], Resource.from_contents(server))
    envelope = Draft202012Validator(json.loads(THV_SCHEMA.read_text()), registry=registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)
    extensions = Draft7Validator(json.loads(PUBLISHER_SCHEMA.read_text()),
                                 format_checker=Draft7Validator.FORMAT_CHECKER)
    return envelope, extensions


ENVELOPE, EXTENSIONS = _oracle()


def refusals(data: bytes) -> list[str]:
    """What ToolHive would refuse the file for: its schema, then its Go checks."""
    document = json.loads(data)
    problems = [f"{list(e.absolute_path)}: {e.message[:200]}"
                for e in ENVELOPE.iter_errors(document)]
    servers = document["data"]["servers"]
    if not servers:
        problems.append("upstream registry must contain at least one server")
    names = [server.get("name") for server in servers]
    problems += [f"{name}: twice" for name in set(names) if names.count(name) > 1]
    for server in servers:
        if not server.get("name") or not server.get("description"):
            problems.append(f"{server.get('name')}: name and description are required")
        extensions = server.get("_meta", {}).get(PUBLISHER)
        if isinstance(extensions, dict):
            problems += [f"{server['name']}: {e.message[:200]}"
                         for e in EXTENSIONS.iter_errors(extensions)]
    return problems


def latest(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The shown version of each non-deleted server, in name order, as the lead passes them."""
    shown = [item["server"] for item in items if item["_meta"][OFFICIAL]["isLatest"]
             and item["_meta"][OFFICIAL]["status"] != "deleted"]
    return sorted(shown, key=lambda server: server["name"])


SAMPLE_SERVERS = latest(json.loads((DATA / "sample.json").read_text()))


def base(name: str = "io.example/ok", **fields: Any) -> dict[str, Any]:
    return {"$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": name, "description": "A server", "version": "1.0.0", **fields}


def hostile(**fields: Any) -> dict[str, Any]:
    return base("io.example/hostile", **fields)


def publishing(extensions: Any) -> dict[str, Any]:
    return hostile(_meta={PUBLISHER: extensions})


def stacklok(**extension: Any) -> dict[str, Any]:
    return publishing({STACKLOK: {"ghcr.io/acme/x:1": extension}})


def test_sample_gives_a_file_toolhive_takes_with_servers_untouched():
    result = registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=None)

    assert refusals(result.data) == []
    document = json.loads(result.data)
    assert document["$schema"] == SCHEMA_URL
    assert document["version"] == "1.0.0" and document["meta"] == {"last_updated": WHEN}
    left = {entry.name for entry in result.left_out}
    kept = [server for server in SAMPLE_SERVERS if server["name"] not in left]
    assert result.servers == len(kept) == len(document["data"]["servers"])
    assert len(kept) == len(SAMPLE_SERVERS) - 2
    # as upstream wrote them, key order, `$schema` and `_meta` included
    assert [orjson.dumps(s) for s in document["data"]["servers"]] == [orjson.dumps(s) for s in kept]
    # the 2-space indentation is orjson's own, with a final newline
    assert result.data == orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def test_sample_servers_left_out_are_those_that_would_sink_the_whole_file():
    result = registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=None)

    assert [(entry.name, entry.version) for entry in result.left_out] == [
        ("com.example.weather/Forecast-API", "2.0.0+20250101"),
        ("io.github.OtherVibes/mcp-as-a-judge", "0.2.1")]
    assert all("publisher-provided" in entry.reason and "is not of type 'object'" in entry.reason
               for entry in result.left_out)
    everything = json.loads(result.data)
    everything["data"]["servers"] = SAMPLE_SERVERS
    refused = refusals(orjson.dumps(everything))
    assert {problem.split(":")[0] for problem in refused} == {e.name for e in result.left_out}


HOSTILE: list[tuple[str, Any, str | None]] = [
    # (case, server, words of the reason, or None when the server is kept)
    ("empty description", hostile(description=""), "no description"),
    ("no description", {k: v for k, v in hostile().items() if k != "description"},
     "no description"),
    ("repository {}", hostile(repository={}), "'url' is a required property"),
    ("repository with empty url", hostile(repository={"url": "", "source": ""}), "is not a 'uri'"),
    ("publisher-provided value a string", publishing({"tool": "publisher-cli"}),
     "not of type 'object'"),
    ("publisher-provided a string", publishing("x"), "not of type 'object'"),
    ("publisher-provided null", publishing(None), "not of type 'object'"),
    ("publisher-provided objects", publishing({"com.example": {"build": 1}}), None),
    ("stacklok valid", stacklok(status="active", tier="Official", tools=["get_weather"],
                                tags=["weather"],
                                metadata={"stars": 3, "last_updated": "2026-01-02T03:04:05Z"}),
     None),
    ("stacklok extra key", stacklok(status="active", x=1), "Additional properties are not allowed"),
    ("stacklok newer key", stacklok(status="active", stateless=True),
     "Additional properties are not allowed"),
    ("stacklok without status", stacklok(tier="Official"), "'status' is a required property"),
    ("stacklok not an object", publishing({STACKLOK: ["active"]}), "not of type 'object'"),
    ("stacklok non-ASCII tool name", stacklok(status="active", tools=["café"]), "does not match"),
    ("stacklok bad date-time", stacklok(status="active", metadata={"last_updated": "yesterday"}),
     "is not a 'date-time'"),
    ("stacklok bad uuid", stacklok(status="active", metadata={"kubernetes": {"uid": "NOT-A-UUID"}}),
     "is not a 'uuid'"),
    ("stacklok bad hostname", stacklok(status="active", provenance={"sigstore_url": "-x-.example"}),
     "is not a 'hostname'"),
    ("publisher-provided over maxMetaSize", publishing({"com.example": {"blob": "x" * MB}}),
     "maxMetaSize"),
    ("1 MB description", hostile(description="x" * MB), "is too long"),
    ("1 MB title", hostile(title="x" * MB), "is too long"),
    ("1 MB in free _meta", hostile(_meta={"com.example/notes": {"text": "x" * MB}}), None),
    ("1 MB unknown field", hostile(**{"x-notes": "x" * MB}), None),
    ("$schema not a URI", hostile(**{"$schema": "not a uri"}), "is not a 'uri'"),
    ("$schema with a space", hostile(**{"$schema": "https://exa mple.com/s.json"}),
     "is not a 'uri'"),
    ("$schema with a bad port", hostile(**{"$schema": "https://example.com:8x/s.json"}),
     "is not a 'uri'"),
    ("$schema a number", hostile(**{"$schema": 5}), "is not of type 'string'"),
    ("$schema an older one", hostile(**{
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json"}),
     None),
    ("$schema elsewhere", hostile(**{"$schema": "urn:example:odd"}), None),
    ("older server.json", hostile(packages=[{"registry_name": "npm", "name": "x",
                                             "version": "1.0.0"}]), "is a required property"),
    ("older top-level field", hostile(status="active"), None),
    ("name with a final newline", base("io.example/hostile\n"), "does not match"),
    ("name without a slash", base("hostile"), "does not match"),
    ("non-ASCII digits in icon sizes", hostile(icons=[
        {"src": "https://x.example/i.png", "sizes": ["\u0664\u0668x\u0664\u0668"]}]),
     "does not match"),
    ("U+0000", hostile(description="nul\x00"), "U+0000"),
    ("backslash-u0000 as text", hostile(description="a \\u0000 b"), None),
    ("markup in description", hostile(description="<script>alert(1)</script>"), None),
    ("lone surrogate", hostile(description="\ud800"), "not JSON"),
    ("NaN", hostile(_meta={"com.example": {"n": float("nan")}}), "round trip"),
    ("integer over 64 bits", hostile(_meta={"com.example": {"n": 2**70}}), "not JSON"),
    ("a key Go reads as name", hostile(Name=5), "case-insensitive"),
    ("a key Go reads as _meta's", hostile(_meta={PUBLISHER.upper(): "x"}), "case-insensitive"),
    ("variables named like fields", hostile(remotes=[{
        "type": "streamable-http", "url": "https://{Name}.example/mcp",
        "variables": {"Name": {"description": "the tenant"}}}]), None),
    ("description of exactly 100", hostile(description="d" * 100), None),
    ("description of 101", hostile(description="d" * 101), "is too long"),
    ("not an object", ["io.example/hostile"], "not a JSON object"),
    ("null", None, "not a JSON object"),
]


@pytest.mark.parametrize(("server", "reason"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_hostile_servers_are_left_out_with_a_reason_or_kept_in_a_valid_file(server, reason):
    before = copy.deepcopy(server)
    result = registry_file([base("io.example/a"), server], last_updated=WHEN, max_bytes=None)

    assert refusals(result.data) == []
    if reason is None:
        assert result.left_out == () and result.servers == 2
        kept = json.loads(result.data)["data"]["servers"][1]
        assert orjson.dumps(kept) == orjson.dumps(server)
    else:
        assert result.servers == 1
        (entry,) = result.left_out
        assert reason in entry.reason, entry.reason
        assert len(entry.reason) <= REASON_CHARS
        named = isinstance(server, dict) and "name" in server
        assert entry.name == (server["name"] if named else "servers[1]")
    assert server == before  # never rewritten to pass


def test_a_repeated_name_keeps_the_first():
    result = registry_file([base("io.example/a"), base("io.example/a", version="2.0.0")],
                           last_updated=WHEN, max_bytes=None)
    assert refusals(result.data) == []
    reason = "the name is already in the file: ToolHive keeps one version"
    assert result.left_out == (Left("io.example/a", "2.0.0", reason),)


def test_a_1mb_name_is_reported_by_a_shortened_name_and_the_end_of_the_message():
    result = registry_file([base("io.example/a"), base("io.example/" + "n" * MB)],
                           last_updated=WHEN, max_bytes=None)
    (entry,) = result.left_out
    assert entry.name.startswith("io.example/nnn") and "…" in entry.name
    assert len(entry.name) == REASON_CHARS and entry.reason.endswith("is too long")


def test_publisher_provided_size_counts_bytes_as_go_writes_them():
    """Go escapes <, > and & as \\u003c…: under the limit for orjson can be over it for Go."""
    frame = len(orjson.dumps({"com.example": {"x": ""}}))
    fits = publishing({"com.example": {"x": "y" * (MAX_META_BYTES - frame)}})
    escaped = publishing({"com.example": {"x": "<" + "y" * (MAX_META_BYTES - frame - 1)}})
    over = publishing({"com.example": {"x": "y" * (MAX_META_BYTES - frame + 1)}})

    assert registry_file([fits], last_updated=WHEN, max_bytes=None).left_out == ()
    for server in (escaped, over):
        result = registry_file([base("io.example/a"), server], last_updated=WHEN, max_bytes=None)
        assert "maxMetaSize" in result.left_out[0].reason


def test_every_schema_pattern_is_translated_whole():
    """go_regex rewrites only a final `$`; no pattern in either schema has another."""
    patterns: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            patterns.extend(v for k, v in node.items() if k == "pattern" and isinstance(v, str))
            node = list(node.values())
        for value in node if isinstance(node, list) else ():
            walk(value)

    walk(json.loads(SERVER_SCHEMA.read_text()))
    walk(json.loads(PUBLISHER_SCHEMA.read_text()))
    assert len(patterns) >= 8
    assert all("$" not in pattern[:-1] for pattern in patterns)
    assert toolhive.go_regex("^[a-z]+$").search("abc")
    assert not toolhive.go_regex("^[a-z]+$").search("abc\n")


# -- the byte bound

VALID = [server for server in SAMPLE_SERVERS if "_meta" not in server]
PREFIX_BYTES = [len(registry_file(VALID[:k], last_updated=WHEN, max_bytes=None).data)
                for k in range(1, len(VALID) + 1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=PREFIX_BYTES[-1] + 200))
def test_max_bytes_keeps_the_longest_prefix_that_fits(max_bytes):
    try:
        result = registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=max_bytes)
    except UsageError as exc:
        assert max_bytes < PREFIX_BYTES[0]
        assert exc.message.startswith(f"--max-bytes {max_bytes} leaves room for no server")
        assert f"needs {PREFIX_BYTES[0]} bytes" in exc.message
        return
    kept = result.servers
    assert len(result.data) == PREFIX_BYTES[kept - 1] <= max_bytes
    assert kept == len(VALID) or PREFIX_BYTES[kept] > max_bytes
    assert result.data == registry_file(VALID[:kept], last_updated=WHEN, max_bytes=None).data
    # from the first server that does not fit, every server is cut, checked or not
    at = SAMPLE_SERVERS.index(VALID[kept]) if kept < len(VALID) else len(SAMPLE_SERVERS)
    over = f"over --max-bytes {max_bytes}: "
    cut = [entry for entry in result.left_out if entry.reason.startswith(over)]
    assert [entry.name for entry in cut] == [server["name"] for server in SAMPLE_SERVERS[at:]]
    invalid = [entry.name for entry in result.left_out if entry not in cut]
    assert invalid == [server["name"] for server in SAMPLE_SERVERS[:at] if server not in VALID]
    if cut:
        assert cut[0].reason == f"{over}with it the file would be {PREFIX_BYTES[kept]} bytes"
        assert all(entry.reason == f"{over}the file is full" for entry in cut[1:])
    assert refusals(result.data) == []


def test_max_bytes_of_exactly_the_file_size_keeps_everything():
    full = registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=None)
    assert registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=len(full.data)) == full
    smaller = registry_file(SAMPLE_SERVERS, last_updated=WHEN, max_bytes=len(full.data) - 1)
    assert smaller.servers == full.servers - 1


# -- scale

def test_ten_thousand_servers_make_a_valid_deterministic_file_and_a_bounded_one():
    servers = latest(synthetic_registry(55_000))
    assert len(servers) >= 10_000

    first = registry_file(servers, last_updated=WHEN, max_bytes=None)
    again = registry_file(copy.deepcopy(servers), last_updated=WHEN, max_bytes=None)

    assert first == again
    assert first.servers == len(servers) and first.left_out == ()
    assert refusals(first.data) == []
    bounded = registry_file(servers, last_updated=WHEN, max_bytes=1 << 20)
    assert len(bounded.data) <= 1 << 20 < len(first.data)
    assert bounded.servers + len(bounded.left_out) == len(servers)
    assert all(entry.reason.startswith("over --max-bytes 1048576: ") for entry in bounded.left_out)
    assert refusals(bounded.data) == []


# -- nothing to write

def test_a_policy_that_admits_nothing_is_an_error_that_says_what_to_do():
    with pytest.raises(UsageError, match="admits none") as caught:
        registry_file([], last_updated=WHEN, max_bytes=None)
    assert "widen the policy" in caught.value.hint and caught.value.exit_code == 2


def test_every_server_left_out_is_an_error_naming_the_first_reason():
    with pytest.raises(UsageError, match="all 2 were left out") as caught:
        registry_file([base("io.example/a", description=""), None], last_updated=WHEN,
                      max_bytes=None)
    assert "io.example/a 1.0.0: no description" in caught.value.message


def test_last_updated_must_be_rfc3339_utc():
    for bad in ("2026-12-01 00:00:00Z", "2026-12-01T00:00:00+00:00", "2026-13-01T00:00:00Z", "now"):
        with pytest.raises(ValueError, match="RFC 3339"):
            registry_file([base()], last_updated=bad, max_bytes=None)
    stamp = "2026-12-01T00:00:00.123Z"
    result = registry_file([base()], last_updated=stamp, max_bytes=None)
    assert json.loads(result.data)["meta"]["last_updated"] == stamp
