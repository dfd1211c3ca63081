"""ToolHive's upstream-registry file (`export --format toolhive`) from the curated snapshot.

ToolHive takes the file whole or not at all. toolhive-registry-server@534eb23
`internal/sources/types.go` runs toolhive-core's `ValidateUpstreamRegistryBytes` (envelope and
server.json schemas, then publisher-provided `_meta`), decodes servers into Go structs, refuses
no servers or an empty name or description; its sync is one PostgreSQL transaction that fails
on a repeated name, U+0000, or publisher-provided `_meta` over `maxMetaSize`. So each server is
checked by those rules, as Go applies them, and one that fails is left out with its reason,
never rewritten. Where exactness would need Go itself (URL parsing, float spelling) the check
is stricter: a server ToolHive would take may be left out, never the reverse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft7Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match

from mirror.errors import UsageError

DATA = Path(__file__).parent / "data"
SCHEMA_URL = ("https://raw.githubusercontent.com/stacklok/toolhive-core/main/registry/types/data/"
              "upstream-registry.schema.json")
PUBLISHER = "io.modelcontextprotocol.registry/publisher-provided"
MAX_META_BYTES = 262_144  # toolhive-registry-server internal/config/config.go DefaultMaxMetaSize
INDENT = b"      "  # a server's depth in the file: root, data, servers
REASON_CHARS = 240

_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", re.ASCII)
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")  # an escaped U+0000, not a literal backslash-u
_EXPONENT = re.compile(rb"\de[+-]")


@dataclass(frozen=True)
class Left:
    """A server left out of the file, and why."""

    name: str
    version: str
    reason: str


@dataclass(frozen=True)
class ToolHiveFile:
    data: bytes
    servers: int
    left_out: tuple[Left, ...]


def registry_file(servers: Iterable[Mapping[str, Any]], *, last_updated: str,
                  max_bytes: int | None) -> ToolHiveFile:
    """The file, its bytes a function of the arguments (same snapshot, same bytes).

    Servers keep the order given (the snapshot's name order). With `max_bytes` the file keeps
    them until the next valid one would not fit; it and all later ones are cut, unchecked, as
    validation is the slow part. Raises UsageError when no server goes in (ToolHive refuses)."""
    if not (isinstance(last_updated, str) and _UTC.fullmatch(last_updated)
            and _date_time(last_updated)):
        raise ValueError(f"last_updated {last_updated!r} is not an RFC 3339 UTC time (…Z)")
    head, tail = _frame(last_updated)
    used = len(head) + len(tail)
    items: list[bytes] = []
    left: list[Left] = []
    seen: set[str] = set()
    full: int | None = None  # the size the first server that did not fit would have made
    for index, server in enumerate(servers):
        name, version = _identity(server, index)
        if full is not None:
            left.append(Left(name, version, f"over --max-bytes {max_bytes}: the file is full"))
            continue
        item, reason = _entry(server)
        if item is not None and name in seen:
            item, reason = None, "the name is already in the file: ToolHive keeps one version"
        if item is None:
            left.append(Left(name, version, _short(reason)))
            continue
        seen.add(name)
        need = used + len(item) + (2 if items else 0)  # ",\n" between servers
        if max_bytes is not None and need > max_bytes:
            full = need
            left.append(Left(name, version, f"over --max-bytes {max_bytes}: with it the file "
                                            f"would be {need} bytes"))
            continue
        items.append(item)
        used = need
    if not items:
        raise _nothing(left, max_bytes, full)
    return ToolHiveFile(head + b",\n".join(items) + tail, len(items), tuple(left))


def _nothing(left: list[Left], max_bytes: int | None, full: int | None) -> UsageError:
    hint = "ToolHive refuses a registry file without servers; "
    if not left:
        return UsageError("no server to export: the curated snapshot admits none", hint=hint
                          + "widen the policy (`mcp-mirror policy explain NAME` says why not)")
    if full is not None:
        return UsageError(f"--max-bytes {max_bytes} leaves room for no server: the first that "
                          f"can go in needs {full} bytes", hint=hint + "raise --max-bytes")
    return UsageError(f"no server can go in the ToolHive file: all {len(left)} were left out; "
                      f"the first, {left[0].name} {left[0].version}: {left[0].reason}",
                      hint=hint + "admit servers that follow server.json 2025-12-11")


def _frame(last_updated: str) -> tuple[bytes, bytes]:
    """The envelope, cut where the servers go, so the file's size adds up server by server
    without serialising it again. orjson's 2-space indent: people read this file."""
    envelope = {"$schema": SCHEMA_URL, "version": "1.0.0", "meta": {"last_updated": last_updated},
                "data": {"servers": [0]}}
    head, tail = orjson.dumps(envelope, option=orjson.OPT_INDENT_2).split(INDENT + b"0\n")
    return head, b"\n" + tail + b"\n"


def _identity(server: Any, index: int) -> tuple[str, str]:
    get = server.get if isinstance(server, Mapping) else {}.get
    name, version = get("name"), get("version")
    return (_short(name) if isinstance(name, str) and name else f"servers[{index}]",
            _short(version) if isinstance(version, str) else "")


def _short(text: str) -> str:
    """At most REASON_CHARS; the middle goes, since a message ends with what is wrong."""
    half = REASON_CHARS // 2
    return text if len(text) <= REASON_CHARS else text[:half] + "…" + text[1 - half:]


def _entry(server: Any) -> tuple[bytes | None, str]:
    """The server as the file carries it (indented to its depth), or None and why not."""
    if not isinstance(server, Mapping):
        return None, f"not a JSON object but {type(server).__name__}"
    try:
        raw = orjson.dumps(server, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError as exc:
        return None, f"not JSON: {exc}"
    parsed = orjson.loads(raw)
    if parsed != server:
        return None, "not JSON: it changes in a JSON round trip (NaN or infinity?)"
    if _NUL.search(raw):
        return None, "contains U+0000, which PostgreSQL refuses (ToolHive stores servers there)"
    for field in ("name", "description"):
        if not parsed.get(field):
            return None, f"no {field}: ToolHive requires a non-empty {field}"
    server_schema, extensions_schema, fields, folds = _compiled()
    if not server_schema.is_valid(parsed):
        return None, "not valid server.json 2025-12-11: " + _message(server_schema, parsed)
    folded = _folded(parsed, fields, folds)
    if folded is not None:
        return None, (f"key {folded!r} would be read as a server.json field by Go's "
                      "case-insensitive decoder")
    extensions = parsed.get("_meta", {}).get(PUBLISHER)
    if extensions is not None:
        if not extensions_schema.is_valid(extensions):
            return None, ("publisher-provided _meta fails ToolHive's publisher-provided schema: "
                          + _message(extensions_schema, extensions))
        size = _go_json_size(extensions)
        if size > MAX_META_BYTES:
            return None, (f"publisher-provided _meta is {size} bytes as Go writes it; ToolHive's "
                          f"default maxMetaSize is {MAX_META_BYTES}")
    return INDENT + raw.replace(b"\n", b"\n" + INDENT), ""


def _message(validator: Any, instance: Any) -> str:
    error = best_match(validator.iter_errors(instance))
    return f"/{'/'.join(map(str, error.absolute_path))}: {_short(error.message)}"


def _folded(server: dict[str, Any], fields: frozenset[str], folds: frozenset[str]) -> str | None:
    """Go's encoding/json matches keys to struct fields ignoring case, so `"Name": 5` beside
    `"name"` is a type error (or a silent overwrite) that fails the whole file."""

    def walk(value: Any, free: bool) -> str | None:
        if isinstance(value, list):
            return next((hit for item in value if (hit := walk(item, False))), None)
        for key, item in value.items() if isinstance(value, dict) else ():
            if not free and key not in fields and key.casefold() in folds:
                return key
            if key == "_meta":  # a struct of one field; the rest of `_meta` is free
                keys = item if isinstance(item, dict) else ()
                hit = next((k for k in keys if k != PUBLISHER and k.casefold() == PUBLISHER), None)
            else:  # the keys of `variables` are names, not fields
                hit = walk(item, key == "variables")
            if hit:
                return hit
        return None

    return walk(server, False)


def _go_json_size(value: Any) -> int:
    """An upper bound on encoding/json's length for `value`: it escapes < > & (+5 bytes each)
    and U+2028/9 (+3), and spells floats from 1e16 to 1e21 in full (+17 at most)."""
    raw = orjson.dumps(value)
    return (len(raw) + 5 * sum(map(raw.count, (b"<", b">", b"&")))
            + 3 * sum(map(raw.count, ("\u2028".encode(), "\u2029".encode())))
            + 17 * len(_EXPONENT.findall(raw)))


@cache
def _compiled() -> tuple[Any, Any, frozenset[str], frozenset[str]]:
    """Compiled once: the 2025-12-11 server schema (toolhive-core embeds these very bytes) and
    toolhive-core@61e76f2's publisher-provided schema, the strict one (later toolhive-core drops
    its additionalProperties: false), with gojsonschema's regex and format semantics, `$ref`s
    inlined (draft-07 ignores a `$ref`'s siblings, and neither schema recurses), plus the
    server.json field names and their case folds."""
    server = json.loads((DATA / "server.schema.json").read_text())
    extensions = json.loads((DATA / "toolhive-publisher-provided.schema.json").read_text())
    go = validators.extend(Draft7Validator, {"pattern": _pattern})
    fields = {key for node in _nodes(server) for key in node.get("properties", {})} - {PUBLISHER}
    return (go(_inline(server, server["definitions"]), format_checker=FORMATS),
            go(_inline(extensions, extensions["definitions"]), format_checker=FORMATS),
            frozenset(fields), frozenset(field.casefold() for field in fields))


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    for child in node if isinstance(node, list) else ():
        yield from _nodes(child)


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(child, definitions) for child in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(definitions[node["$ref"].removeprefix("#/definitions/")], definitions)
    return {key: _inline(child, definitions) for key, child in node.items() if key != "definitions"}


@cache
def go_regex(pattern: str) -> re.Pattern[str]:
    """Go's RE2: \\d \\w \\s are ASCII, and `$` is the end of the text, never before a final
    newline. Every pattern in both schemas uses `$` only as its last character."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern, re.ASCII)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not go_regex(pattern).search(instance):
        yield ValidationError(f"{_short(repr(instance))} does not match {pattern!r}")


FORMATS = FormatChecker(formats=())  # gojsonschema asserts formats; these are the schemas' four
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:", re.ASCII)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=\x80-\U0010ffff]*)(:[0-9]*)?")
_USER = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNSAFE = re.compile(r"[\s\\\x00-\x1f\x7f]")
_LABEL = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])"
_HOSTNAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_UUID = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}")
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_ZONE = r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"
_DATE_TIME = re.compile(rf"(\d{{4}})-(\d\d)-(\d\d)(T{_TIME}(\.\d+)?{_ZONE})?|{_TIME}{_ZONE}?",
                        re.ASCII)


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    """Go's url.Parse with a scheme, as gojsonschema asks, but stricter: no space, backslash or
    control character anywhere, every % a full escape, and a plain host."""
    scheme = _SCHEME.match(value) if isinstance(value, str) else None
    if not isinstance(value, str):
        return True
    if scheme is None or _BAD_ESCAPE.search(value) or _UNSAFE.search(value):
        return False
    rest = value[scheme.end():]
    if not rest.startswith("//"):
        return True
    user, _, host = re.split(r"[/?#]", rest[2:], maxsplit=1)[0].rpartition("@")
    return bool(_USER.fullmatch(user) and _HOST.fullmatch(host)) and "%" not in host


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    """gojsonschema takes RFC 3339, or a bare date, or a time with or without a zone."""
    match = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if not isinstance(value, str) or (match and match[1] is None):
        return True
    try:
        return bool(match) and bool(date(int(match[1]), int(match[2]), int(match[3])))
    except ValueError:
        return False


FORMATS.checks("hostname")(lambda value: not isinstance(value, str)
                           or bool(_HOSTNAME.fullmatch(value)) and len(value) < 256)
FORMATS.checks("uuid")(lambda value: not isinstance(value, str) or bool(_UUID.fullmatch(value)))
