"""A hostile upstream: items anyone could publish, each with what the mirror must do with it.

`hostile_corpus()` returns HostileCase records; `expect` is "admitted" or "rejected", and a
rejected case names a fragment its reason must contain. The (name, version) pairs are
unique (exact duplicates are tested apart) so the fixture upstream's keyset pagination
serves every item once. `servable()` pre-encodes what orjson cannot write (more than
254 levels), so FakeUpstream can send a 300-deep document as a real upstream would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from factories import item

from mirror.models import OFFICIAL

NS = "io.hostile"
BAD_SCHEMES = ("javascript:alert(document.domain)", "data:text/html,<script>alert(1)</script>",
               "vbscript:msgbox(1)", " \x01JaVaScRiPt:alert(1)")
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BIDI = "evil\u202etxt.exe \u2066isolate\u2069 \u200bzero-width"
CONTROL = "bell\x07 nul\x00 esc\x1b[31m red\x1b[0m cr\r lf\n del\x7f"
DEVICE_NAMES = ("CON", "prn", "Aux", "nul.txt", "COM1", "com9.tar.gz", "LPT1", "lpt9", "CONOUT$")
RESERVED_VERSIONS = ("index.json", "index.html", "include-deleted.json", "latest")
# Spelled like the tree's files in another case, hidden, Windows devices: plain segments on
# every host (a case-insensitive output skips what folds together, mirror.paths.CaseFolding).
LOOKALIKE_VERSIONS = ("INDEX.JSON", "Index.Html", "Include-Deleted.JSON", "Latest", "LATEST", "_pages", "_x",
                      ".hidden", "1.0.", *DEVICE_NAMES)
TRAVERSAL_NAMES = ("../..", "a/..", "%2e%2e/x", f"{NS}/%2e%2e", "../etc/passwd", "/etc/passwd", f"{NS}/x/../../y",
                   f"{NS}/..", f"{NS}/x\\..\\..", f"{NS}/\u2024\u2024", f"{NS}/x\u2215y", "..%2f..%2fetc/passwd",
                   f"{NS}/x\x00", f"{NS}/evil\u202e", "C:/Windows", f"{NS}/ x")
TRAVERSAL_VERSIONS = ("..", ".", "../../etc", "1/../../x", "1\x00", "1\x1b[2J", "1\x85", "")
# What looks like a traversal or a URL's syntax once decoded is one literal segment: hosts decode once.
LITERAL_VERSIONS = ("%2e%2e", "..%2F..", "..\\..", "1\u202e0", "1 0", "1?x=1", "1#x", "%00", "...")
# Markup and URLs that run script in a browser if a page lets them through unescaped, each
# calling alert() so tests/test_browser.py sees it fire: text that breaks out of an element,
# an attribute or a script block, and URLs a browser still runs (tab inside, entity, case).
BROWSER_MARKUP = ("<img src=x onerror=alert(1)>", "<svg onload=alert(1)>", "</script><script>alert(1)</script>",
                  '"><img src=x onerror=alert(1)>', "'><svg onload=alert(1)>",
                  "<iframe srcdoc='<script>alert(1)</script>'></iframe>", "<details open ontoggle=alert(1)>",
                  "<input autofocus onfocus=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;",
                  '<!--<img src="--><img src=x onerror=alert(1)//">')
BROWSER_URLS = ("javascript:alert(1)", "java\tscript:alert(1)", "jav&#x09;ascript:alert(1)", "JaVaScRiPt:alert(1)",
                "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==")
# Versions are URL path segments, and a segment may still spell a script URL or an attribute break.
BROWSER_VERSIONS = ("javascript:alert(1)", "1'-alert(1)-'", "1&lt;svg&Tab;onload=alert(1)&gt;",
                    "1'onmouseover='alert(1)")
RESERVED_NAMES = ("index.json/x", "index.html/x", "include-deleted.json/x", f"{NS}/index.json", f"{NS}/index.html",
                  "_pages/x")
LOOKALIKE_NAMES = ("INDEX.json/x", "latest/x", "Latest/x", f"{NS}/latest", f"{NS}/Include-Deleted.json", "con/x",
                   f"{NS}/aux", f"{NS}/com1.x", f"{NS}/LPT3")


@dataclass(frozen=True)
class HostileCase:
    id: str
    item: Any
    expect: Literal["admitted", "rejected"]
    why: str
    reason: str = ""  # for rejected cases: a fragment the reason must contain

    @property
    def key(self) -> tuple[str, str]:
        """(name, version) as the fixture upstream orders and pages them."""
        server = self.item.get("server") if isinstance(self.item, dict) else None
        server = server if isinstance(server, dict) else {}
        return str(server.get("name", "")), str(server.get("version", ""))


def hostile_corpus(*, bulk_versions: int = 10_000) -> list[HostileCase]:
    return [*_good(), *_paths(), *_collisions(), *_injection(), *_shapes(), *_bounds(), *_bulk(bulk_versions)]


def servable(entry: Any, *, depth: int = 200) -> Any:
    """`entry` with any value of it or of its `server` nested past `depth` pre-encoded as an
    orjson.Fragment: FakeUpstream writes pages with orjson, which stops at 254 levels."""
    def wrap(value: Any) -> Any:
        return orjson.Fragment(json.dumps(value).encode()) if _depth(value) > depth else value
    if not isinstance(entry, dict):
        return entry
    served = {key: wrap(value) for key, value in entry.items()}
    if isinstance(entry.get("server"), dict):
        served["server"] = {key: wrap(value) for key, value in entry["server"].items()}
    return served


def nested(levels: int, *, kind: type = dict) -> Any:
    """A value `levels` containers deep (the innermost holds a string)."""
    value: Any = "bottom"
    for _ in range(levels):
        value = {"d": value} if kind is dict else [value]
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _admitted(case_id: str, entry: Any, why: str) -> HostileCase:
    return HostileCase(case_id, entry, "admitted", why)


def _rejected(case_id: str, entry: Any, why: str, reason: str) -> HostileCase:
    return HostileCase(case_id, entry, "rejected", why, reason)


def _good() -> Iterator[HostileCase]:
    yield _admitted("good-old", item("io.github.example/weather", "1.0.0"), "an ordinary older version")
    yield _admitted("good-latest", item("io.github.example/weather", "1.1.0", latest=True,
                                        published="2025-10-02T00:00:00Z"), "an ordinary latest version")
    yield _admitted("good-deprecated", item("com.example/tools", "2.0.0", status="deprecated", latest=True),
                    "a deprecated version")
    yield _admitted("good-deleted", item("com.example/gone", "0.1.0", status="deleted", latest=True),
                    "a deleted version")
    for n, version in enumerate(("1.0.0+build.7", "2.0.0-beta.1", "1:2", "v1~rc", "2025.01.01", "1!x")):
        yield _admitted(f"good-version-{n}", item(f"{NS}/odd-versions", version),
                        "unusual versions that are still plain URL path segments")


def _paths() -> Iterator[HostileCase]:
    for n, name in enumerate(TRAVERSAL_NAMES):
        yield _rejected(f"traversal-name-{n}", item(name, "1.0.0", latest=True),
                        "a name that is not two plain segments could climb out of the tree", "server.name")
    for n, version in enumerate(TRAVERSAL_VERSIONS):
        yield _rejected(f"traversal-version-{n}", item(f"{NS}/traversal", version, latest=True),
                        "a version that is not one plain segment could climb out of the tree", "server.version")
    for n, version in enumerate(LITERAL_VERSIONS):
        yield _admitted(f"literal-version-{n}", item(f"{NS}/literal", version),
                        "one literal segment on disk, which hosts answer for its percent-encoded URL")
    for n, version in enumerate(RESERVED_VERSIONS):
        yield _rejected(f"reserved-version-{n}", item(f"{NS}/reserved", version),
                        "a version spelled exactly like a file or the latest pointer of the tree", "server.version")
    for n, version in enumerate(LOOKALIKE_VERSIONS):
        yield _admitted(f"lookalike-version-{n}", item(f"{NS}/reserved", version),
                        "the tree's names in another case, hidden-looking or Windows devices shadow nothing")
    yield _admitted("reserved-sibling", item(f"{NS}/deleted-sibling", "1.0.0", status="deleted", latest=True),
                    "the deleted version beside which include-deleted.json would clash")
    yield _rejected("reserved-beside-deleted", item(f"{NS}/deleted-sibling", "include-deleted.json"),
                    "would overwrite the deleted sibling's view file", "reserved")
    for n, name in enumerate(RESERVED_NAMES):
        yield _rejected(f"reserved-name-{n}", item(name, "1.0.0", latest=True),
                        "a name segment spelled exactly like a file of the tree", "server.name")
    for n, name in enumerate(LOOKALIKE_NAMES):
        yield _admitted(f"lookalike-name-{n}", item(name, "1.0.0", latest=True),
                        "the tree's names in another case, `latest` or Windows devices shadow nothing")


def _collisions() -> Iterator[HostileCase]:
    """Spellings that differ only in case are kept: every host tells them apart."""
    yield _admitted("case-name-upper", item("a/B", "1.0.0", latest=True), "'a/B' and 'a/b' are two servers")
    yield _admitted("case-name-lower", item("a/b", "1.0.0", latest=True), "'a/B' and 'a/b' are two servers")
    for spelling in ("CASE", "Case", "case"):
        for version in ("1.0.0", "2.0.0"):
            yield _admitted(f"case-three-{spelling}-{version}", item(f"{NS}/{spelling}", version),
                            "three spellings of one name, each with its versions")
    yield _admitted("case-version-upper", item(f"{NS}/rc", "1.0.0-RC1"), "'1.0.0-RC1' and '1.0.0-rc1' are two")
    yield _admitted("case-version-lower", item(f"{NS}/rc", "1.0.0-rc1", latest=True), "both versions are kept")
    yield _admitted("case-latest", item(f"{NS}/pointer", "Latest", latest=True),
                    "upstream reserves exactly 'latest'; 'Latest' is its own directory beside the pointer")
    yield _admitted("case-latest-sibling", item(f"{NS}/pointer", "1.0.0"), "the server keeps its other versions")
    yield _rejected("case-invalid-spelling", item(f"{NS}/Claim", "index.json", latest=True),
                    "a rejected entry claims no spelling", "reserved")
    yield _admitted("case-valid-spelling", item(f"{NS}/claim", "1.0.0", latest=True),
                    "a spelling of its name in another case was rejected for its version")


def _injection() -> Iterator[HostileCase]:
    for n, url in enumerate(BAD_SCHEMES):
        yield _admitted(f"url-scheme-{n}", _everywhere(item(f"{NS}/scheme-{n}", "1.0.0", latest=True), url, url),
                        "JSON is served verbatim (application/json, nosniff); HTML must neutralise the URLs")
    yield _admitted("script", _everywhere(item(f"{NS}/script", "1.0.0", latest=True), SCRIPT, SCRIPT),
                    "markup in every text field: escaped in HTML, verbatim in JSON")
    yield _admitted("bidi", _everywhere(item(f"{NS}/bidi", "1.0.0", latest=True), BIDI, "https://example.com/" + BIDI),
                    "bidi overrides in text: HTML must neutralise them")
    yield _admitted("control", _everywhere(item(f"{NS}/control", "1.0.0", latest=True), CONTROL,
                                           "https://example.com/" + CONTROL),
                    "control characters in text, NUL included")
    for n, markup in enumerate(BROWSER_MARKUP):
        url = BROWSER_URLS[n % len(BROWSER_URLS)]
        yield _admitted(f"browser-markup-{n}", _everywhere(item(f"{NS}/markup-{n}", "1.0.0", latest=True), markup, url),
                        "markup that runs script if any page inserts it unescaped")
    for n, version in enumerate(BROWSER_VERSIONS):
        yield _admitted(f"browser-version-{n}", item(f"{NS}/script-versions", version, latest=n == 0,
                                                     published=f"2025-10-0{n + 1}T00:00:00Z"),
                        "a version that is a valid path segment but spells script in a URL or an attribute")
    yield _rejected("bidi-name", item(f"{NS}/\u202egnp.exe", "1.0.0"), "bidi in a name would spoof paths",
                    "server.name")


def _everywhere(entry: dict[str, Any], text: str, url: str) -> dict[str, Any]:
    """`text` in every text field and `url` in every URL field a renderer might show."""
    server = entry["server"]
    server.update(
        description=text, title=text, websiteUrl=url,
        repository={"url": url, "source": text, "subfolder": text},
        icons=[{"src": url, "mimeType": text, "sizes": [text]}],
        packages=[{"registryType": "npm", "identifier": url, "version": "1.0.0", "registryBaseUrl": url,
                   "transport": {"type": "stdio"},
                   "environmentVariables": [{"name": "TOKEN", "description": text, "default": url}],
                   "packageArguments": [{"type": "named", "name": "--x", "description": text, "value": url}]}],
        remotes=[{"type": "streamable-http", "url": url,
                  "headers": [{"name": "Authorization", "description": text, "value": url}]}],
    )
    entry["_meta"]["io.modelcontextprotocol.registry/publisher-provided"] = {"note": text, "link": url}
    return entry


def _shapes() -> Iterator[HostileCase]:
    bare = item(f"{NS}/bare", "1.0.0", latest=True)
    del bare["server"]["description"], bare["server"]["$schema"]
    yield _admitted("missing-description", bare, "description and $schema are optional")
    no_meta = item(f"{NS}/no-meta", "1.0.0")
    del no_meta["_meta"]
    yield _admitted("missing-meta", no_meta, "_meta is optional since #811")
    other_meta = item(f"{NS}/other-meta", "1.0.0")
    other_meta["_meta"] = {"com.example/x": {"y": 1}}
    yield _admitted("meta-without-official", other_meta, "only the official block is checked")
    yield _admitted("only-identity", {"server": {"name": f"{NS}/minimal", "version": "1.0.0"}},
                    "nothing but name and version")
    yield _admitted("empty-repository", item(f"{NS}/empty-repo", "1.0.0", repository={}),
                    "upstream emitted repository: {} before #717")
    for n, entry in enumerate(("not an object", 42, None, [1, 2], True)):
        yield _rejected(f"not-object-{n}", entry, "an item that is not an object", "not a JSON object")
    yield _rejected("server-not-object", {"server": "x", "_meta": {}}, "server must be an object", "server")
    yield _rejected("no-server", {"_meta": {}}, "no server at all", "server")
    for n, (field, value) in enumerate((("name", 123), ("name", None), ("version", None), ("version", 1.0),
                                        ("description", ["a"]), ("description", None))):
        broken = item(f"{NS}/types-{n}", "1.0.0")
        broken["server"][field] = value
        yield _rejected(f"wrong-type-{n}", broken, f"{field} of the wrong JSON type", f"server.{field}")
    no_name = item(f"{NS}/unnamed", "1.0.0")
    del no_name["server"]["name"]
    yield _rejected("missing-name", no_name, "no name", "server.name")
    meta_list = item(f"{NS}/meta-list", "1.0.0")
    meta_list["_meta"] = ["x"]
    yield _rejected("meta-not-object", meta_list, "_meta must be an object", "_meta")
    for n, (field, value) in enumerate((("status", "exploded"), ("publishedAt", "yesterday"),
                                        ("updatedAt", "2025-01-01T00:00:00"), ("statusChangedAt", 5))):
        broken = item(f"{NS}/official-{n}", "1.0.0")
        broken["_meta"][OFFICIAL][field] = value
        yield _rejected(f"official-{n}", broken, f"official {field} unusable", "_meta")


def _bounds() -> Iterator[HostileCase]:
    yield _rejected("huge-description", item(f"{NS}/huge", "1.0.0", latest=True, description="A" * 1_000_000),
                    "a 1 MB description would be copied into ~16 files of the tree", "byte bound")
    yield _admitted("large-description", item(f"{NS}/large", "1.0.0", latest=True, description="é" * 60_000),
                    "a 120 kB description is within the bound")
    yield _rejected("deep-300", item(f"{NS}/deep", "1.0.0", latest=True, x_unknown=nested(300)),
                    "300-deep JSON: orjson cannot even write it", "levels deep")
    yield _rejected("deep-300-list", item(f"{NS}/deep-list", "1.0.0", x_unknown=nested(300, kind=list)),
                    "300-deep arrays", "levels deep")
    deep_meta = item(f"{NS}/deep-meta", "1.0.0")
    deep_meta["_meta"]["io.modelcontextprotocol.registry/publisher-provided"] = nested(100)
    yield _rejected("deep-meta", deep_meta, "deep publisher-provided _meta", "levels deep")
    # item (1) > server (2) > x_unknown (3...): 62 levels inside it make 64 in all.
    yield _admitted("deep-64", item(f"{NS}/deep-ok", "1.0.0", x_unknown=nested(62)), "exactly at the depth bound")
    yield _rejected("deep-65", item(f"{NS}/deep-over", "1.0.0", x_unknown=nested(63)), "one past it", "levels deep")
    yield _rejected("long-version", item(f"{NS}/long", "1." + "0" * 254), "a 256-byte file name", "NAME_MAX")
    yield _admitted("long-ok", item(f"{NS}/long", "1." + "0" * 253), "a 255-byte file name")
    yield _admitted("long-name", item(f"{NS}/" + "n" * (200 - len(NS) - 1), "1.0.0"), "a 200-character name")
    yield _rejected("too-long-name", item(f"{NS}/" + "n" * (201 - len(NS) - 1), "1.0.0"), "201 characters",
                    "server.name")


def _bulk(versions: int) -> Iterator[HostileCase]:
    """`versions` versions of one server (upstream allows 10,000): small items, built once."""
    template = {"server": {"name": f"{NS}/many", "description": "One of many", "version": ""},
                "_meta": {OFFICIAL: {"status": "active", "publishedAt": "2025-10-01T00:00:00Z", "isLatest": False}}}
    for n in range(versions):
        entry = copy.deepcopy(template)
        entry["server"]["version"] = f"0.0.{n}"
        if n == versions - 1:
            entry["_meta"][OFFICIAL]["isLatest"] = True
        yield _admitted(f"bulk-{n}", entry, "one of many versions of one server, at upstream's bound")
