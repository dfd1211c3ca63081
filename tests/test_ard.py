"""Discovery that importers accept (issue #26, point 2): `/.well-known/ard.json` (ARD v0.91)
and `/.well-known/ai-catalog.json`, the same bytes; nested same-host catalogs; a Server Card
for each served version with a remote a card can carry.

Checked against the saved schemas (tests/schemas/: ard-spec's strict ai-catalog.schema.json
and ars-system's v0.91 ArdManifest; the card schema vendored in mirror/data), with `format:
uri` checked by RFC 3986's grammar, and over real HTTP (serve, nginx, Caddy, at the root and
under a prefix) by an oracle of MCP Gateway Registry's ingestion (tests/ard_ingestion.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
import jsonschema
import orjson
import pytest
from ard_ingestion import CATALOG, MAX_BYTES, Ingestion, ingest, pinned_fetch
from factories import item, row, with_status
from hostile import hostile_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trees import plan_site, publish_site, site

from mirror import hosts, paths
from mirror.errors import RenderError
from mirror.fake_upstream import load_sample
from mirror.models import Row, Snapshot, is_visible, latest_row, row_from_item
from mirror.policy import curate, load
from mirror.render import ard, cards
from mirror.render.api import SUMMARY_CHARS, TITLE_CHARS, ServerSummary

SNAPSHOT = Snapshot(id=1, started_at="2026-01-01T00:00:00Z", finished_at="2026-01-01T00:00:01Z",
                    upstream="http://up", mode="full", outcome="ok", error=None, rows=0,
                    servers=0, rejected=0)
ORIGIN = "https://mcp.acme.example"
BASE = f"{ORIGIN}/registry"
IDENTITY = {"identity": ORIGIN, "identityType": "https"}
SCHEMAS = Path(__file__).parent / "schemas"
NPM = {"registryType": "npm", "identifier": "x", "version": "1.0.0", "transport": {"type": "stdio"}}

# The two URN rules: ARD's (the schemas' pattern, §5) and MCP Gateway Registry's (§7).
URN = re.compile(r"^urn:air:[a-zA-Z0-9.-]+(:[a-zA-Z0-9._-]+)+$")
GATEWAY_URN = re.compile(r"^urn:air:([a-zA-Z0-9.-]+)(?::([a-zA-Z0-9._:-]+))?:([a-zA-Z0-9._-]+)$")

# `format: uri` as RFC 3986 writes it (scheme ":" then URI characters and %-escapes; brackets
# only around an IP literal): the checker jsonschema would take from rfc3987, not installed.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
RFC3986_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+.-]*:(?://(?:{_PCHAR}*@)?(?:\[[0-9A-Fa-f:.]+\])?)?"
                         rf"{_PCHAR}*(?:#{_PCHAR}*)?", re.ASCII)
FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("uri")(lambda value: not isinstance(value, str)
                      or RFC3986_URI.fullmatch(value) is not None)


def _validator(file: Path, ref: str | None = None) -> jsonschema.Draft202012Validator:
    schema = json.loads(file.read_text())
    return jsonschema.Draft202012Validator({**schema, "$ref": ref} if ref else schema,
                                           format_checker=FORMATS)


AI_CATALOG = _validator(SCHEMAS / "ard-ai-catalog.schema.ard-spec-5fa2f5a.json")
ARD_MANIFEST = _validator(SCHEMAS / "ard-entry.schema.v0.91-draft.ars-system-251e639.json",
                          "#/$defs/ardManifest")
SERVER_CARD = _validator(cards.SCHEMA, "#/$defs/ServerCard")


def errors(validator: jsonschema.Draft202012Validator, document: object) -> list[str]:
    return [f"{list(error.absolute_path)}: {error.message[:200]}"
            for error in validator.iter_errors(document)]


def assert_catalog(document: dict) -> None:
    """Valid for both schemas, with the host block every document must carry."""
    assert errors(AI_CATALOG, document) == [] and errors(ARD_MANIFEST, document) == []
    assert document["host"]["displayName"] and document["host"]["trustManifest"] == IDENTITY
    for entry in document["entries"]:
        assert entry["trustManifest"] == IDENTITY, entry
        assert "representativeQueries" not in entry, entry


def sample_rows() -> list[Row]:
    return sorted((row_from_item(entry) for entry in load_sample()), key=lambda r: r.key)


def ard_documents(files: dict[str, bytes]) -> dict[str, dict]:
    return {path: orjson.loads(data) for path, data in files.items()
            if path in (paths.ARD_FILE, paths.AI_CATALOG_FILE)
            or path.startswith(f"{paths.ARD_DIR}/")}


def card_files(files: dict[str, bytes]) -> dict[str, dict]:
    return {path: orjson.loads(data) for path, data in files.items()
            if path.startswith(f"{paths.CARDS_DIR}/")}


def leaf(name: str) -> str:
    return name.replace("/", "_", 1)


# -- the documents ---------------------------------------------------------------------

ROWS = [row("io.github.acme/tools", "1.0.0",
            remotes=[{"type": "sse", "url": "https://acme.example/sse"}]),
        row("io.github.acme/tools", "1.2.0", latest=True, title="Acme Tools",
            remotes=[{"type": "streamable-http", "url": "https://acme.example/mcp"}]),
        row("io.github.acme/old", "1.0.0", latest=True, status="deleted",
            remotes=[{"type": "sse", "url": "https://acme.example/old"}]),
        row("com.evil/x", "0.1.0", latest=True, description="<script>alert(1)</script>\u202e",
            packages=[NPM])]


def catalog(rows, *, host="nginx", base_url=BASE) -> bytes:
    entries = {e.path: e for e in site(SNAPSHOT, rows, base_url=base_url, host=host).entries()}
    return entries[paths.ARD_FILE].data()


@pytest.mark.parametrize("host", list(hosts.PROFILES))
def test_ard_json_and_ai_catalog_json_are_one_document_valid_for_both_schemas(host):
    files = plan_site(SNAPSHOT, sample_rows(), base_url=BASE, host=host)
    assert files[paths.ARD_FILE] == files[paths.AI_CATALOG_FILE]
    document = orjson.loads(files[paths.ARD_FILE])
    assert set(document) == {"specVersion", "host", "entries"}
    assert document["specVersion"] == "1.0"
    assert document["host"] == {"displayName": "MCP Registry mirror at mcp.acme.example",
                                "documentationUrl": f"{BASE}/", "trustManifest": IDENTITY}
    assert_catalog(document)


def test_each_shown_server_is_one_entry_typed_by_whether_its_version_has_a_card():
    document = orjson.loads(catalog(ROWS))
    listed = [(e["identifier"], e["displayName"], e["type"], e["url"], e["version"])
              for e in document["entries"]]
    assert listed == [
        ("urn:air:mcp.acme.example:mcp:com.evil_x", "com.evil/x", ard.MCP_SERVER,
         f"{BASE}/v0.1/servers/com.evil%2Fx/versions/0.1.0", "0.1.0"),
        ("urn:air:mcp.acme.example:mcp:io.github.acme_tools", "Acme Tools", ard.MCP_SERVER_CARD,
         f"{BASE}/cards/io.github.acme/tools/1.2.0/server-card.json", "1.2.0"),
    ]  # the deleted server is not offered
    # a JSON string, nothing more
    assert document["entries"][0]["description"] == "<script>alert(1)</script>\u202e"
    assert catalog(ROWS) == catalog(list(reversed(ROWS)))  # deterministic
    assert_catalog(document)


def test_the_catalog_lists_exactly_what_the_policy_admits():
    policy = load('exclude = [{name = "com.evil/*", reason = "blocked"}]\n'
                  '[[pin]]\nname = "io.github.acme/tools"\nversion = "1.0.0"\n'
                  'reason = "reviewed"\n')
    rows = sorted(ROWS, key=lambda r: r.key)
    document = orjson.loads(catalog(list(curate(rows, policy))))
    assert [(e["identifier"], e["version"], e["url"]) for e in document["entries"]] == [
        ("urn:air:mcp.acme.example:mcp:io.github.acme_tools", "1.0.0",
         f"{BASE}/cards/io.github.acme/tools/1.0.0/server-card.json")]


def test_a_policy_that_admits_nothing_gives_a_valid_empty_catalog():
    rows = sorted(ROWS, key=lambda r: r.key)
    document = orjson.loads(catalog(list(curate(rows, load('include = ["no.such/server"]\n')))))
    assert document["entries"] == [] and document["host"]["trustManifest"] == IDENTITY
    assert_catalog(document)


def test_on_a_plain_file_server_no_markup_reaches_the_catalog():
    body = catalog(ROWS, host="static")
    assert b"<" not in body and "\u202e".encode() not in body
    assert orjson.loads(body)["entries"][0]["description"] == "<script>alert(1)</script>\u202e"


NAMESPACES = st.from_regex(r"[a-zA-Z0-9.-]+", fullmatch=True)
SHORT_NAMES = st.from_regex(r"[a-zA-Z0-9._-]+", fullmatch=True)
BASE_URLS = st.sampled_from([ORIGIN, BASE, "http://127.0.0.1:8000",
                             "https://MCP.Example.COM:8443/x", "http://[::1]:80"])


@given(namespace=NAMESPACES, short=SHORT_NAMES, base=BASE_URLS)
def test_identifiers_hold_both_urn_rules_and_name_the_server_in_their_last_segment(
        namespace, short, base):
    """Every name shape upstream allows (its schema's pattern, upper case included): the last
    segment is `<namespace>_<name>`, and namespaces have no `_`, so it gives the name back."""
    identifier = ard.identifier(base, f"{namespace}/{short}")
    assert URN.match(identifier)
    match = GATEWAY_URN.match(identifier)
    identity = urlsplit(ard.trust_manifest(base)["identity"]).hostname
    assert match and match.group(1) == ard.publisher(base) == identity
    assert match.group(3) == identifier.rsplit(":", 1)[1] == f"{namespace}_{short}"
    assert match.group(3).split("_", 1) == [namespace, short]


def test_the_publisher_is_the_host_name():
    assert ard.identifier("http://127.0.0.1:8000", "a.b/c_d") == "urn:air:127.0.0.1:mcp:a.b_c_d"
    assert ard.publisher("https://MCP.Example.COM:8443/x") == "mcp.example.com"


# -- nested catalogs -------------------------------------------------------------------


@pytest.mark.parametrize("per", [1, 2, 3, 5])
def test_the_layout_is_breadth_first_in_name_order_and_at_most_three_deep(per):
    capacity = 1 + per + per * per
    for count in range(0, capacity * per + 1):
        documents = ard.layout(count, per)
        assert [i for d in documents for i in d.servers] == list(range(count))
        assert [d.number for d in documents] == list(range(1, len(documents) + 1))
        parent = {child: d.number for d in documents for child in d.children}
        assert sorted(parent) == list(range(2, len(documents) + 1))  # each linked once
        for document in documents:
            assert len(document.servers) <= per and len(document.children) <= per
            depth, number = 1, document.number
            while number != 1:
                number, depth = parent[number], depth + 1
            assert depth <= ard.MAX_DEPTH
            assert all(child > document.number for child in document.children)
    with pytest.raises(RenderError):
        ard.layout(capacity * per + 1, per)


@pytest.mark.parametrize("base_url", [BASE, "https://a.example/" + "p" * 2000])
def test_a_document_at_the_bounds_stays_well_under_the_caps(base_url):
    """Every string at its bound, and each character the most a document spends on one: 6
    bytes (a \\u escape; `<` on the static profile)."""
    per = ard.per_document(base_url)
    worst = ServerSummary(name="n" * 99 + "/" + "s" * 100, version="<" * paths.MAX_SEGMENT_BYTES,
                          status="active", description="<" * SUMMARY_CHARS, title="<" * TITLE_CHARS,
                          card=True)
    static = hosts.get_profile("static")
    document = ard.Document(1, range(per), tuple(range(10**8, 10**8 + per)))
    body = static.document(ard.document_bytes(document, [worst] * per, base_url=base_url))
    bound = ard.host_bound(base_url) + per * (ard.entry_bound(base_url)
                                              + ard.pointer_bound(base_url))
    assert len(body) <= bound <= ard.DOCUMENT_BUDGET < ard.MAX_DOCUMENT_BYTES
    assert len(orjson.loads(body)["entries"]) == 2 * per <= ard.MAX_DOCUMENT_ENTRIES
    single = static.document(ard.document_bytes(ard.Document(1, range(1), ()), [worst],
                                                base_url=base_url))
    assert len(single) - ard.host_bound(base_url) <= ard.entry_bound(base_url)
    if base_url == BASE:
        assert per == ard.SERVERS_PER_DOCUMENT


def test_a_long_catalog_is_split_into_nested_documents_that_each_carry_the_host(monkeypatch):
    monkeypatch.setattr(ard, "SERVERS_PER_DOCUMENT", 2)
    rows = [row(f"io.github.o{i:02d}/mcp", "1.0.0", latest=True,
                remotes=[{"type": "sse", "url": f"https://o{i}.example/sse"}]) for i in range(13)]
    documents = ard_documents(plan_site(SNAPSHOT, rows, base_url=BASE))
    nested = [paths.ard_page_file(n) for n in range(2, 8)]
    assert sorted(documents) == sorted([paths.ARD_FILE, paths.AI_CATALOG_FILE, *nested])
    listed = []
    for path in [paths.ARD_FILE, *nested]:
        assert_catalog(documents[path])
        entries = documents[path]["entries"]
        servers = [e for e in entries if e["type"] != ard.AI_CATALOG]
        links = [e for e in entries if e["type"] == ard.AI_CATALOG]
        assert entries == servers + links and len(servers) <= 2 and len(links) <= 2
        listed += [e["identifier"] for e in servers]
    # name order, document by document
    assert listed == [ard.identifier(BASE, r.name) for r in rows]
    assert [e["url"] for e in documents[paths.ARD_FILE]["entries"][2:]] == [
        f"{BASE}/ard/2.json", f"{BASE}/ard/3.json"]


# -- Server Cards ----------------------------------------------------------------------

CARD_MEMBERS = ("name", "version", "description", "title", "icons", "repository", "websiteUrl",
                "remotes")


def test_every_card_of_the_sample_validates_and_is_the_server_json_without_packages():
    rows = sample_rows()
    minted = card_files(plan_site(SNAPSHOT, rows, base_url=BASE))
    servers = {paths.card_file(r.name, r.version): orjson.loads(r.doc)["server"] for r in rows
               if is_visible(r)}
    assert set(minted) == {path for path, server in servers.items() if server.get("remotes")}
    assert len(minted) == 12
    for path, card in minted.items():
        assert errors(SERVER_CARD, card) == [], path
        assert "packages" not in card and card["$schema"] == cards.SCHEMA_URL
        assert {k: v for k, v in card.items() if k != "$schema"} == {
            k: v for k, v in servers[path].items() if k in CARD_MEMBERS}


def test_cards_exist_only_for_visible_versions_the_api_serves():
    remote = [{"type": "sse", "url": "https://x.example/sse"}]
    deleted = with_status(item("io.github.x/y", "2.0.0", latest=True, remotes=remote), "deleted")
    rows = [row("io.github.x/y", "1.0.0", remotes=remote),
            row("io.github.x/y", ".1", remotes=remote), row_from_item(deleted)]
    # Netlify's deploy drops dot-files: the API skips that version, and so do cards
    for host, expected in (("nginx", {"1.0.0", ".1"}), ("netlify", {"1.0.0"})):
        rendered = site(SNAPSHOT, rows, base_url=BASE, host=host)
        entries = {e.path: e for e in rendered.entries()}
        minted = card_files({path: entry.data() for path, entry in entries.items()})
        assert {path.split("/")[3] for path in minted} == expected
        for path in minted:
            assert entries[path].media_type == hosts.SERVER_CARD and entries[path].source
        assert [s.version for s in rendered.skipped] == ([".1"] if host == "netlify" else [])


def test_a_server_without_a_valid_card_is_listed_with_its_v01_document():
    cases = {  # name: what its shown version has
        "io.github.a/stdio-only": {"remotes": [{"type": "stdio", "url": "https://a.example/x"}]},
        "io.github.a/bad-url": {"remotes": [{"type": "sse", "url": "ftp://a.example/x"}]},
        "io.github.a/no-description": {"description": "",
                                       "remotes": [{"type": "sse", "url": "https://a.example"}]},
        "io.github.a/packages": {"packages": [NPM]},
    }
    rows = [row(name, "1.0.0", latest=True, **fields) for name, fields in cases.items()]
    files = plan_site(SNAPSHOT, rows, base_url=BASE)
    assert card_files(files) == {}
    for entry in orjson.loads(files[paths.ARD_FILE])["entries"]:
        assert entry["type"] == ard.MCP_SERVER and "/v0.1/servers/" in entry["url"]


def test_cards_hold_to_the_schemas_bounds():
    def mint(name="io.github.a/b", version="1.0.0", **server):
        server = {"description": "d", "remotes": [{"type": "sse", "url": "https://a.example"}],
                  **server}
        return cards.mint({"server": server}, name, version)

    assert mint(version="v" * 255) and mint(version="v" * 256) is None
    assert mint(name="a/" + "b" * 198) and mint(name="a/" + "b" * 199) is None
    assert mint(name="a/b") and mint(name="a/") is None and mint(name="a_b/c") is None
    assert mint(description="d" * 100)["description"] == "d" * 100
    assert mint(description="d" * 101)["description"] == "d" * 99 + cards.ELLIPSIS
    assert mint(description="") is None and mint(description=None) is None
    assert mint(title="t" * 100)["title"] == "t" * 100 and "title" not in mint(title="t" * 101)
    assert "title" not in mint(title="")
    for card in (mint(version="v" * 255), mint(description="d" * 101), mint(title="t" * 100)):
        assert errors(SERVER_CARD, card) == []


def test_cards_cut_long_descriptions_and_leave_out_members_that_would_not_validate():
    long = "Ünïcödé " * 20 + "end"
    remotes = [{"type": "sse", "url": "https://a.example/sse"},
               {"type": "sse", "url": "https://a.example/x", "headers": [{"nope": 1}]},
               {"type": "streamable-http", "url": "{tenant}.a.example/mcp"}]
    icons = [{"src": "https://a.example/i.png"}, {"src": "javascript:x"}]
    upstream = item("io.github.a/b", "1.0.0", description=long, title="t" * 101, repository={},
                    websiteUrl="not a url", icons=icons, remotes=remotes)
    card = cards.mint(upstream, "io.github.a/b", "1.0.0")
    assert card is not None and errors(SERVER_CARD, card) == []
    assert len(card["description"]) == 100 and card["description"].endswith(cards.ELLIPSIS)
    assert long.startswith(card["description"][:-1].rstrip())
    assert "title" not in card and "repository" not in card and "websiteUrl" not in card
    assert card["icons"] == [{"src": "https://a.example/i.png"}]
    assert [r["url"] for r in card["remotes"]] == ["https://a.example/sse",
                                                   "{tenant}.a.example/mcp"]


@pytest.mark.parametrize("text", [
    "e\u0301" * 60, "\U0001f1eb\U0001f1f7" * 60, "a" + "\U0001f469\u200d\U0001f4bb" * 40,
    "x" * 98 + "\u0915\u094d\u0937" * 5, "\u270b\U0001f3fd" * 60])
def test_descriptions_are_cut_between_characters(text):
    cut = cards.cut_description(text)
    assert 1 <= len(cut) <= 100 and cut.endswith(cards.ELLIPSIS)
    head = cut[:-1]
    assert text.startswith(head) and not cards._splits_a_character(text, len(head))


# Hostile server.json shapes: for each member server.json has, a valid value, a near miss of
# each rule the card schema has, or anything JSON can hold.
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
                | st.floats(allow_nan=False, allow_infinity=False))
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.text(max_size=12),
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
TEXTS = st.text(max_size=20) | st.text(min_size=95, max_size=140) | st.sampled_from(
    ["", " ", "\u202e", "a" * 100, "a" * 101, "<script>alert(1)</script>",
     "\U0001f1eb\U0001f1f7" * 51, "e\u0301" * 80, "x" * 100_000])
GOOD_URLS = st.from_regex(r"https://[a-z]{1,8}\.example(/[a-zA-Z0-9._~-]{0,10})?", fullmatch=True)
URLS = GOOD_URLS | st.sampled_from([
    "https://a.example/mcp", "http://a.example", "https://{region}.a.example/mcp", "{base}/mcp",
    "{base}", "{1bad}/x", "ftp://a.example", "https://", "https:// a", "https://a b",
    "https://a\u00a0b", "https://a\ufeffb", "https://a\x1cb", "https://a\x85b", "https://a\u3000",
    "https://a\x00", "//a.example", "javascript:alert(1)", "https://a.example/\u00e9",
    "https://a.example/%zz", "https://a.example/%41", "https:///x", "https://a.example/#f",
    "https://[::1]/x", "data:image/png;base64,AAAA", "https://a.example/" + "p" * 10_000,
    "HTTPS://A.EXAMPLE",
]) | st.text(max_size=16) | st.text(max_size=16).map(lambda t: "https://" + t)
GOOD_INPUT_FIELDS = {
    "description": st.text(max_size=20), "isRequired": st.booleans(), "isSecret": st.booleans(),
    "default": st.text(max_size=8), "choices": st.lists(st.text(max_size=5), max_size=3),
    "value": st.text(max_size=8), "placeholder": st.text(max_size=8),
    "format": st.sampled_from(["string", "number", "boolean", "filepath"])}
INPUT_FIELDS = {key: value | TEXTS | JSON_VALUES for key, value in GOOD_INPUT_FIELDS.items()}
INPUT_FIELDS["format"] |= st.sampled_from(["url", "String", "bool"])
GOOD_INPUTS = st.fixed_dictionaries({}, optional=GOOD_INPUT_FIELDS)
INPUTS = GOOD_INPUTS | st.fixed_dictionaries({}, optional=INPUT_FIELDS) | JSON_VALUES
VARIABLES = st.dictionaries(st.text(max_size=6), INPUTS, max_size=2) | JSON_VALUES
GOOD_HEADERS = st.fixed_dictionaries({"name": st.text(max_size=10)}, optional=GOOD_INPUT_FIELDS)
HEADERS = st.lists(GOOD_HEADERS | JSON_VALUES | st.fixed_dictionaries(
    {"name": TEXTS | JSON_VALUES}, optional={**INPUT_FIELDS, "variables": VARIABLES}),
    max_size=3) | JSON_VALUES
GOOD_REMOTES = st.fixed_dictionaries(
    {"type": st.sampled_from(cards.REMOTE_TYPES), "url": GOOD_URLS},
    optional={"headers": st.lists(GOOD_HEADERS, max_size=2),
              "variables": st.dictionaries(st.text(max_size=6), GOOD_INPUTS, max_size=2)})
REMOTES = GOOD_REMOTES | JSON_VALUES | st.fixed_dictionaries(
    {"type": st.sampled_from([*cards.REMOTE_TYPES, "stdio", "http", "SSE"]) | JSON_VALUES,
     "url": URLS | JSON_VALUES},
    optional={"headers": HEADERS, "variables": VARIABLES, "supportedProtocolVersions": JSON_VALUES})
ICONS = st.fixed_dictionaries({"src": GOOD_URLS}, optional={
    "mimeType": st.sampled_from(["image/png", "image/svg+xml"]),
    "sizes": st.lists(st.sampled_from(["48x48", "any"])),
    "theme": st.sampled_from(["dark", "light"]),
}) | JSON_VALUES | st.fixed_dictionaries({}, optional={
    "src": URLS | JSON_VALUES, "mimeType": TEXTS | JSON_VALUES,
    "sizes": st.lists(TEXTS, max_size=2) | JSON_VALUES,
    "theme": st.sampled_from(["dark", "light", "blue"]) | JSON_VALUES})
REPOSITORIES = st.fixed_dictionaries(
    {"url": GOOD_URLS, "source": st.just("github")},
    optional={"id": st.text(max_size=8), "subfolder": st.text(max_size=8)},
) | st.just({}) | JSON_VALUES | st.fixed_dictionaries({}, optional={
    "url": URLS | JSON_VALUES, "source": TEXTS | JSON_VALUES, "id": TEXTS | JSON_VALUES,
    "subfolder": TEXTS | JSON_VALUES})
SERVERS = st.fixed_dictionaries({
    "description": st.text(min_size=1, max_size=150) | TEXTS | JSON_VALUES,
    "remotes": st.lists(REMOTES, min_size=1, max_size=4) | JSON_VALUES,
}, optional={
    "title": st.text(min_size=1, max_size=100) | TEXTS | JSON_VALUES, "repository": REPOSITORIES,
    "websiteUrl": URLS | JSON_VALUES, "icons": st.lists(ICONS, max_size=3) | JSON_VALUES,
    "packages": JSON_VALUES, "_meta": JSON_VALUES})
NAMES = st.sampled_from(["io.github.a/b", "a/b", "A.B-c/D_e.f", "ab", "a/b/c", "a b/c", "\u00e9/x",
                         "a/" + "b" * 198, "a/" + "b" * 199, "-/_"]) | st.text(max_size=12)
VERSIONS = st.sampled_from(["1.0.0", "v" * 255, "v" * 256, "1.0 beta", "\U0001f680"]) | st.text(
    max_size=10)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server=SERVERS, name=st.just("io.github.a/b") | NAMES, version=st.just("1.0.0") | VERSIONS,
       top=st.sampled_from(["server", "server", "other", "list"]))
def test_every_minted_card_validates_whatever_the_server_json(server, name, version, top):
    upstream = {"server": server} if top == "server" else {"other": server} if top == "other" \
        else [server]
    card = cards.mint(upstream, name, version)
    if card is None:
        return
    assert errors(SERVER_CARD, card) == []
    assert "packages" not in card and card["remotes"]
    assert orjson.loads(cards.card_document(card)) == card


@settings(max_examples=200, deadline=None)
@given(server=SERVERS, description=st.text(min_size=1, max_size=300), remote=st.fixed_dictionaries({
    "type": st.sampled_from(cards.REMOTE_TYPES),
    "url": st.from_regex(r"https://[a-z0-9]+\.example/[a-z]*", fullmatch=True)}))
def test_a_card_is_minted_whenever_a_valid_one_can_be(server, remote, description):
    remotes = server.get("remotes") if isinstance(server.get("remotes"), list) else []
    upstream = {"server": {**server, "description": description, "remotes": [*remotes, remote]}}
    card = cards.mint(upstream, "io.github.a/b", "1.0.0")
    assert card is not None and remote in card["remotes"] and errors(SERVER_CARD, card) == []


DEFS = {name: _validator(cards.SCHEMA, f"#/$defs/{name}")
        for name in ("Input", "KeyValueInput", "Icon", "Remote", "Repository")}
# Each member of an Input valid, or one step off its rule (the wrong type, a format not in
# the enum), so that one wrong member among right ones is common.
_WRONG = st.sampled_from([1, None, True, ["a"], {"a": "b"}])
NEAR_INPUTS = st.fixed_dictionaries({}, optional={
    **{key: value | _WRONG for key, value in GOOD_INPUT_FIELDS.items()},
    "isRequired": st.booleans() | st.sampled_from(["true", 1, 0, None]),
    "choices": st.lists(st.text(max_size=3), max_size=2) | st.sampled_from([["a", 1], "a", [None]]),
    "format": st.sampled_from([*cards.INPUT_FORMATS, "url", "String", 1, None])})
NEAR_HEADERS = st.fixed_dictionaries({"name": st.text(max_size=5) | _WRONG}, optional={
    "isSecret": st.booleans() | _WRONG, "format": st.sampled_from(["string", "url"]),
    "variables": st.dictionaries(st.text(max_size=3), NEAR_INPUTS, max_size=2) | _WRONG})


@settings(max_examples=500, deadline=None)
@given(value=INPUTS | NEAR_INPUTS, header=HEADERS | NEAR_HEADERS, icon=ICONS, remote=REMOTES,
       repository=REPOSITORIES)
def test_the_cards_own_checks_are_the_schemas_rules(value, header, icon, remote, repository):
    """What render.cards checks directly (jsonschema is too slow to run on every card): the
    same verdict as the schema for inputs and headers, and never a yes the schema says no to."""
    assert cards._input(value) == DEFS["Input"].is_valid(value)
    for one in header if isinstance(header, list) else [header]:
        assert cards._header(one) == DEFS["KeyValueInput"].is_valid(one)
    assert not cards._icon(icon) or errors(DEFS["Icon"], icon) == []
    made = cards._remote(remote)
    assert made is None or errors(DEFS["Remote"], made) == []
    kept = cards._repository(repository)
    assert kept is None or errors(DEFS["Repository"], kept) == []


def test_the_hostile_corpus_mints_only_valid_cards():
    for case in hostile_corpus(bulk_versions=10):
        name, version = case.key
        for remotes in (None, [{"type": "sse", "url": "https://a.example/sse"}]):
            upstream = case.item
            if remotes and isinstance(upstream, dict) and isinstance(upstream.get("server"), dict):
                upstream = {**upstream, "server": {**upstream["server"], "remotes": remotes}}
            card = cards.mint(upstream, name, version)
            assert card is None or errors(SERVER_CARD, card) == [], case.id


# -- what each host sends --------------------------------------------------------------


def test_every_profile_types_cards_as_server_cards_where_it_can():
    nginx, caddy = (hosts.host_config(name, out=Path("/srv/site"), base_url=BASE)
                    for name in ("nginx", "caddy"))
    assert f"default_type {hosts.SERVER_CARD};" in nginx
    assert f"header Content-Type {hosts.SERVER_CARD}" in caddy
    for name in ("netlify", "cloudflare-pages"):
        headers = plan_site(SNAPSHOT, [], base_url=BASE, host=name)["_headers"].decode()
        rule = headers.split("/registry/cards/*\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert f"  Content-Type: {hosts.SERVER_CARD}" in rule
        assert all(f"  {k}: {v}" in rule for k, v in hosts.RESPONSE_HEADERS.items())
    s3 = plan_site(SNAPSHOT, ROWS, base_url=BASE, host="s3")
    objects = orjson.loads(s3[hosts.OBJECTS_MANIFEST])["objects"]
    card = objects["cards/io.github.acme/tools/1.2.0/server-card.json"]
    assert card["contentType"] == hosts.SERVER_CARD
    assert objects[paths.ARD_FILE]["contentType"] == hosts.JSON
    assert objects[paths.AI_CATALOG_FILE]["contentType"] == hosts.JSON


def test_the_cloudfront_function_serves_discovery_paths_without_a_redirect():
    from test_cloudfront import run_function

    targets = ["/.well-known/ard.json", "/.well-known/ai-catalog.json", "/ard/2.json",
               "/cards/io.github.a/b/1.0.0%2Bbuild.7/server-card.json"]
    for prefix in ("", "/some/prefix"):
        results = run_function(prefix, [{"method": "GET", "uri": prefix + target, "query": []}
                                        for target in targets])
        assert [unquote(r.get("uri", "")) for r in results] == [unquote(t) for t in targets]


# -- over HTTP: serve, nginx and Caddy ---------------------------------------------------

REMOTE = [{"type": "streamable-http", "url": "https://mcp.example/mcp",
           "headers": [{"name": "Authorization", "isRequired": True, "isSecret": True}]}]
QUIRKY = ["1.0 beta", "1?x", "100%", "a\\b", "1+ 1", "\U0001f680-1.0.0", "#" * 20, "v2 (rc)",
          "1.0.0+build.7"]
EXTRA = [
    # short names that 401 of 2,861 real servers share: distinct leaves all the same
    item("io.github.acme/mcp", "1.0.0", latest=True, remotes=REMOTE),
    item("io.github.other/mcp", "2.0.0", latest=True, remotes=REMOTE, description="x" * 150),
    item("com.example/mcp", "0.1.0", latest=True, packages=[NPM]),
    # remotes in an older version only: the shown version is package-only
    item("io.github.moved/server", "1.0.0", remotes=REMOTE),
    item("io.github.moved/server", "2.0.0", latest=True, published="2025-11-01T00:00:00Z",
         packages=[NPM]),
    with_status(item("io.github.gone/remote", "1.0.0", latest=True, remotes=REMOTE), "deleted"),
    *(item("io.github.quirky/remote", version, remotes=REMOTE,
           published=f"2025-10-01T00:00:{n:02d}Z") for n, version in enumerate(QUIRKY)),
    item("io.github.quirky/remote", "2.0.0", latest=True, remotes=REMOTE,
         published="2025-11-01T00:00:00Z"),
]
POLICY = ('exclude = [{name = "ai.smithery/*", reason = "not reviewed"}]\n'
          '[[pin]]\nname = "com.example.weather/Forecast-API"\nversion = "1.1.0"\n'
          'reason = "reviewed"\n')
HTTP_BASES = {"root": ORIGIN, "prefix": BASE}
PER_DOCUMENT = 5  # so the sample needs nested catalogs three deep


def admitted_rows() -> list[Row]:
    rows = [*sample_rows(), *(row_from_item(entry) for entry in EXTRA)]
    return list(curate(sorted(rows, key=lambda r: r.key), load(POLICY)))


def shown(rows: list[Row]) -> dict[str, Row]:
    """Each server's shown version: its latest visible one."""
    by_name: dict[str, list[Row]] = {}
    for r in rows:
        by_name.setdefault(r.name, []).append(r)
    return {name: picked for name, versions in by_name.items()
            if (picked := latest_row(r for r in versions if is_visible(r))) is not None}


def expected_imports(rows: list[Row]) -> dict[str, Row]:
    """The admitted servers whose shown version has remotes, by the leaf the ingestion keys on."""
    return {leaf(name): picked for name, picked in shown(rows).items()
            if orjson.loads(picked.doc)["server"].get("remotes")}


@pytest.fixture(scope="module")
def discovery_sites(tmp_path_factory) -> dict[str, Path]:
    """The sample, a few more servers and a policy, rendered at each base with nested catalogs."""
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ard, "SERVERS_PER_DOCUMENT", PER_DOCUMENT)
        for base, url in HTTP_BASES.items():
            out[base] = tmp_path_factory.mktemp(f"discovery-{base}") / "site"
            publish_site(SNAPSHOT, admitted_rows(), out[base], base_url=url)
    return out


@pytest.fixture(scope="module")
def served(discovery_sites, tmp_path_factory) -> Iterator[Callable[[str, str], str]]:
    """start(kind, base) -> origin, with tests/test_conformance.py's runners: each server
    starts on first use and stops with the module."""
    from test_conformance import run_caddy, run_nginx, run_serve

    runners = {"serve": run_serve, "nginx": run_nginx, "caddy": run_caddy}
    started: dict[tuple[str, str], str] = {}
    with ExitStack() as stack:
        def start(kind: str, base: str) -> str:
            if (kind, base) not in started:
                tmp = tmp_path_factory.mktemp(f"ard-{kind}-{base}")
                runner = runners[kind](discovery_sites[base], HTTP_BASES[base], tmp)
                started[kind, base] = stack.enter_context(runner)
            return started[kind, base]
        yield start


HOSTS = [pytest.param(kind, base, id=f"{kind}-{base}",
                      marks=[getattr(pytest.mark, kind)] if kind != "serve" else [])
         for kind in ("serve", "nginx", "caddy") for base in HTTP_BASES]


def discovery_files(root: Path) -> list[str]:
    root = root.resolve()
    rels = (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return sorted(rel for rel in rels if rel.startswith((".well-known/", "ard/", "cards/")))


@pytest.mark.parametrize(("kind", "base"), HOSTS)
def test_discovery_paths_answer_200_directly_with_their_content_type(served, discovery_sites,
                                                                     kind, base):
    root = discovery_sites[base]
    rels = discovery_files(root)
    assert paths.ard_page_file(7) in rels  # three deep
    assert any("%" in rel for rel in rels) and any("?" in rel for rel in rels)
    prefix = paths.base_path(HTTP_BASES[base])
    with httpx.Client(base_url=served(kind, base), timeout=10, follow_redirects=False) as client:
        urls = [(rel, f"{prefix}/" + "/".join(quote(part, safe="") for part in rel.split("/")))
                 for rel in rels]
        # and each card at the URL the catalog gives it (`+` and the like left as they are)
        urls += [(rel, paths.Urls(prefix).card(f"{ns}/{short}", version))
                 for rel in rels if rel.startswith("cards/")
                 for _, ns, short, version, _ in [rel.split("/")]]
        assert any("+" in url for _, url in urls)
        for rel, url in urls:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.headers)
            assert response.content == (root / rel).read_bytes(), url
            ctype = response.headers["content-type"].split(";")[0]
            assert ctype == (hosts.SERVER_CARD if rel.startswith("cards/") else hosts.JSON), url
            assert response.headers["access-control-allow-origin"] == "*", url
            assert response.headers["cache-control"] == hosts.API_CACHE_CONTROL, url
            assert response.headers["x-content-type-options"] == "nosniff", url
            if rel.startswith("cards/"):
                again = client.get(url, headers={"If-None-Match": response.headers["etag"]})
                assert again.status_code == 304, url
        for missing in ("cards/io.github.nobody/x/1.0.0/server-card.json", "ard/999.json"):
            response = client.get(f"{prefix}/{missing}")  # the catalog's 404 page, as serve's
            assert response.status_code == 404, missing
            assert response.headers["content-type"] == hosts.HTML, missing


def document_depths(result: Ingestion) -> list[int]:
    """How deep each fetched document sits, the root at 1."""
    depth = {result.documents[0][0]: 1}
    for url, manifest, _ in result.documents:
        for entry in manifest.entries:
            if entry.type == CATALOG:
                depth[entry.url] = depth[url] + 1
    return [depth[url] for url, _, _ in result.documents]


def check_ingestion(result: Ingestion, fetch, rows: list[Row], base_url: str, *,
                    documents: int) -> None:
    """Nothing skipped, rejected or overwritten; every document within the caps and carrying
    the host; exactly the servers with remotes imported, each card fetched and valid; the
    package-only servers listed and ignored (not a type the ingestion keeps)."""
    expected = expected_imports(rows)
    assert result.skipped == [] and result.rejected == [] and result.collisions == []
    assert len(result.documents) == documents
    for url, manifest, size in result.documents:
        assert size <= MAX_BYTES and len(manifest.entries) <= ard.MAX_DOCUMENT_ENTRIES, url
        assert manifest.host.displayName, url
        assert manifest.host.trustManifest and manifest.host.trustManifest.identity == ORIGIN, url
    assert set(result.records) == set(expected)
    for key, record in result.records.items():
        assert record.kind == "server" and record.version == expected[key].version
        assert record.path == f"/mirror/{key}"
        response = fetch(record.ard_source_url)
        assert response.status == 200
        assert response.headers["content-type"].split(";")[0] == hosts.SERVER_CARD
        card = orjson.loads(response.body)
        assert errors(SERVER_CARD, card) == [], record.ard_source_url
        assert (card["name"], card["version"]) == (expected[key].name, expected[key].version)
    assert {kind for _, kind in result.ignored} <= {ard.MCP_SERVER, CATALOG}
    package_only = [identifier for identifier, kind in result.ignored if kind == ard.MCP_SERVER]
    assert sorted(package_only) == sorted(ard.identifier(base_url, name) for name in shown(rows)
                                          if leaf(name) not in expected)


@pytest.mark.parametrize(("kind", "base"), HOSTS)
def test_the_gateway_ingestion_imports_exactly_the_admitted_servers_with_remotes(served, kind,
                                                                                 base):
    base_url, rows = HTTP_BASES[base], admitted_rows()
    expected = expected_imports(rows)
    assert set(expected) == {  # not the excluded, moved or deleted ones
        "com.cloudflare_mcp-server-cloudflare", "com.example.weather_Forecast-API",
        "io.github.exa-labs_exa-mcp-server", "io.github.acme_mcp", "io.github.other_mcp",
        "io.github.quirky_remote"}
    assert expected["com.example.weather_Forecast-API"].version == "1.1.0"  # the pinned version
    with httpx.Client(timeout=10) as client:
        fetch = pinned_fetch(client, {ORIGIN: served(kind, base)})
        result = ingest(f"{base_url}/.well-known/ai-catalog.json", fetch)
        documents = len(ard.layout(len(shown(rows)), PER_DOCUMENT))
        check_ingestion(result, fetch, rows, base_url, documents=documents)
        assert max(document_depths(result)) == ard.MAX_DEPTH
        ard_json = fetch(f"{base_url}/{paths.ARD_FILE}")
        assert ard_json.status == 200
        assert ard_json.body == fetch(f"{base_url}/{paths.AI_CATALOG_FILE}").body


@pytest.mark.parametrize(("count", "per", "documents"), [(600, None, 3), (36, 3, 12)])
def test_the_gateway_ingestion_takes_a_nested_catalog_whole(tmp_path, monkeypatch, count, per,
                                                            documents):
    """More servers than one document holds, every one with the short name `mcp` or
    `mcp-server`; the second case three documents deep."""
    from conftest import serving

    if per is not None:
        monkeypatch.setattr(ard, "SERVERS_PER_DOCUMENT", per)
    rows = [row(f"io.github.owner{i:03d}/{'mcp' if i % 3 else 'mcp-server'}", "1.0.0",
                latest=True, **({"remotes": REMOTE} if i % 4 else {"packages": [NPM]}))
            for i in range(count)]
    publish_site(SNAPSHOT, rows, tmp_path / "site", base_url=BASE)
    with serving(tmp_path / "site") as server, httpx.Client(timeout=10) as client:
        fetch = pinned_fetch(client, {ORIGIN: f"http://127.0.0.1:{server.server_address[1]}"})
        result = ingest(f"{BASE}/.well-known/ai-catalog.json", fetch)
        check_ingestion(result, fetch, rows, BASE, documents=documents)
    assert len(result.records) == sum(1 for i in range(count) if i % 4)
    links = [e.type for e in result.documents[0][1].entries].count(CATALOG)
    assert links == min(documents - 1, per or ard.SERVERS_PER_DOCUMENT)
    assert max(document_depths(result)) == (2 if per is None else 3)
