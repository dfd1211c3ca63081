"""The ARD catalog at /.well-known/ai-catalog.json: the admitted servers, by the spec's field rules."""

import re

import orjson
from factories import row
from trees import site

from mirror import paths
from mirror.models import Snapshot
from mirror.policy import curate, load
from mirror.render import ard

SNAPSHOT = Snapshot(id=1, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z",
                    upstream="http://up", mode="full", outcome="ok", error=None, rows=0, servers=0, rejected=0)
# ai-catalog.schema.json (ards-project/ard-spec, specVersion 1.0): what an entry must be
URN = re.compile(r"^urn:air:[a-zA-Z0-9.-]+(:[a-zA-Z0-9._-]+)+$")
HOST_KEYS = {"displayName", "identifier", "documentationUrl", "logoUrl", "trustManifest"}
ENTRY_KEYS = {"identifier", "displayName", "type", "url", "data", "description", "tags", "capabilities",
              "representativeQueries", "version", "updatedAt", "metadata", "trustManifest"}

ROWS = [row("io.github.acme/tools", "1.0.0"), row("io.github.acme/tools", "1.2.0", latest=True, title="Acme Tools"),
        row("io.github.acme/old", "1.0.0", latest=True, status="deleted"),
        row("com.evil/x", "0.1.0", latest=True, description="<script>alert(1)</script>\u202e")]


def catalog(rows, *, host="nginx", base_url="https://mcp.acme.example/registry"):
    entries = {e.path: e for e in site(SNAPSHOT, rows, base_url=base_url, host=host).entries()}
    return entries[paths.AI_CATALOG_FILE].data()


def test_the_catalog_lists_each_served_servers_latest_version_by_the_specs_rules():
    document = orjson.loads(catalog(ROWS))
    assert document["specVersion"] == "1.0" and set(document) == {"specVersion", "host", "entries"}
    assert set(document["host"]) <= HOST_KEYS and document["host"]["displayName"]
    for entry in document["entries"]:
        assert set(entry) <= ENTRY_KEYS and URN.match(entry["identifier"]), entry
        assert entry["type"] == "application/mcp-server+json"
    assert [(e["identifier"], e["displayName"], e["url"]) for e in document["entries"]] == [
        ("urn:air:mcp.acme.example:com.evil:x", "com.evil/x",
         "https://mcp.acme.example/registry/v0.1/servers/com.evil%2Fx/versions/0.1.0"),
        ("urn:air:mcp.acme.example:io.github.acme:tools", "Acme Tools",
         "https://mcp.acme.example/registry/v0.1/servers/io.github.acme%2Ftools/versions/1.2.0"),
    ]  # the deleted server is not offered
    assert document["entries"][0]["description"] == "<script>alert(1)</script>\u202e"  # a JSON string, nothing more
    assert catalog(ROWS) == catalog(list(reversed(ROWS)))  # deterministic


def test_the_catalog_lists_exactly_what_the_policy_admits():
    policy = load('exclude = [{name = "com.evil/*", reason = "blocked"}]\n'
                  '[[pin]]\nname = "io.github.acme/tools"\nversion = "1.0.0"\nreason = "reviewed"\n')
    rows = sorted(ROWS, key=lambda r: r.key)
    document = orjson.loads(catalog(list(curate(rows, policy))))
    assert [(e["identifier"], e["version"]) for e in document["entries"]] == [
        ("urn:air:mcp.acme.example:io.github.acme:tools", "1.0.0")]


def test_on_a_plain_file_server_no_markup_reaches_the_catalog():
    body = catalog(ROWS, host="static")
    assert b"<" not in body and "\u202e".encode() not in body
    assert orjson.loads(body)["entries"][0]["description"] == "<script>alert(1)</script>\u202e"


def test_the_publisher_is_the_host_name():
    assert ard.identifier("http://127.0.0.1:8000", "a.b/c_d") == "urn:air:127.0.0.1:a.b:c_d"
