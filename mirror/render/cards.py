"""MCP Server Cards the mirror mints: `cards/<name>/<version>/server-card.json`.

A Server Card (modelcontextprotocol/experimental-ext-server-card, schema.json@8924e08,
vendored as `mirror/data/server-card.schema.json`) describes how to reach a remote server
before connecting. The mirror derives one for each visible (not deleted) version it serves
that has a remote a card can carry: `name`, `version`, `description`, `title`, `icons`,
`repository`, `websiteUrl` and `remotes` (`type`, `url`, `headers`, `variables`), never
`packages` (local install data stays in the v0.1 document).

Upstream data is untrusted, so a card is made to validate against `#/$defs/ServerCard`
(each of its rules checked here), never assumed to: an optional member that would not
validate is left out, a description over 100 characters is cut (the full text stays in the
v0.1 document), a remote the schema does not accept is dropped whole (a remote with a
malformed header would tell a client less than it needs), and when no valid card can be
made (no usable remote, no description, a name the card's pattern refuses) there is none
and the catalog points at the v0.1 document.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import orjson

from mirror import paths
from mirror.hosts import SERVER_CARD, Profile
from mirror.models import Row
from mirror.plan import Entry, Kind, digest

# shared/upstream's copy, verbatim
SCHEMA = Path(__file__).parent.parent / "data" / "server-card.schema.json"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/v1/server-card.schema.json"
FORMAT = "1"  # bumped whenever the same row would mint different bytes
DESCRIPTION_CHARS = 100  # the card schema's maxLength, in characters (code points)
TITLE_CHARS = 100
NAME_CHARS = (3, 200)
VERSION_CHARS = 255
REMOTE_TYPES = ("streamable-http", "sse")
ELLIPSIS = "\u2026"

_NAME = re.compile(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", re.ASCII)
# Remote.url's pattern, `^(https?://[^\s]+|\{[a-zA-Z_][a-zA-Z0-9_]*\}[^\s]*)$`, held to the
# strictest reading of `\s`: Python's (which has U+001C-U+001F and U+0085) and ECMA-262's
# (which has U+FEFF), and no control character at all.
_REMOTE_URL = re.compile(r"(?:https?://|\{[a-zA-Z_][a-zA-Z0-9_]*\})", re.ASCII)
_SPACE_OR_CONTROL = re.compile(r"[\s\ufeff\x00-\x1f\x7f-\x9f]")
# `format: uri` (RFC 3986), read narrowly: an http(s) URL of the URI characters only, with
# well-formed %-escapes. What is not this is left out, whatever a validator would accept.
_URI_CHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
_URI = re.compile(rf"https?://(?!/){_URI_CHAR}+(?:#{_URI_CHAR}*)?", re.ASCII)
_REGIONAL = re.compile("[\U0001f1e6-\U0001f1ff]")
_REGIONAL_RUN = re.compile("[\U0001f1e6-\U0001f1ff]+$")
REPOSITORY_KEYS = ("url", "source", "id", "subfolder")  # Repository's, all strings


# The schema's rules, checked directly: jsonschema takes about 0.5 ms a card, which on a
# registry of 100,000 versions is tens of seconds a render (tests/test_ard.py validates what
# these admit against the schema itself, over hypothesis-generated hostile shapes).
INPUT_FORMATS = ("boolean", "filepath", "number", "string")
ICON_THEMES = ("dark", "light")
_INPUT_MEMBERS = {"default": str, "description": str, "placeholder": str, "value": str,
                  "isRequired": bool, "isSecret": bool}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _input(value: Any) -> bool:
    """`#/$defs/Input`: every member it names has its type (others are free)."""
    if not isinstance(value, dict):
        return False
    if any(key in value and not isinstance(value[key], kind)
           for key, kind in _INPUT_MEMBERS.items()):
        return False
    if "choices" in value and not _strings(value["choices"]):
        return False
    return "format" not in value or (isinstance(value["format"], str)
                                     and value["format"] in INPUT_FORMATS)


def _inputs(value: Any) -> bool:
    """A map of Inputs (`variables`)."""
    return isinstance(value, dict) and all(_input(item) for item in value.values())


def _header(value: Any) -> bool:
    """`#/$defs/KeyValueInput`: an Input with a string `name` and Input `variables`."""
    return (_input(value) and isinstance(value.get("name"), str)
            and ("variables" not in value or _inputs(value["variables"])))


def _icon(value: Any) -> bool:
    """`#/$defs/Icon`, its `src` read as `_uri` does."""
    return (isinstance(value, dict) and _uri(value.get("src"))
            and ("mimeType" not in value or isinstance(value["mimeType"], str))
            and ("sizes" not in value or _strings(value["sizes"]))
            and ("theme" not in value or (isinstance(value["theme"], str)
                                          and value["theme"] in ICON_THEMES)))


def _uri(value: Any) -> bool:
    return isinstance(value, str) and _URI.fullmatch(value) is not None


def _splits_a_character(text: str, at: int) -> bool:
    """Whether cutting `text` before index `at` would split what a reader sees as one
    character: a base and its marks, a ZWJ sequence, a variation selector or an emoji
    modifier, a flag (a pair of regional indicators)."""
    if at <= 0 or at >= len(text):
        return False
    after, before = text[at], text[at - 1]
    if _REGIONAL.match(after) and _REGIONAL.match(before):
        run = len(text[:at]) - len(_REGIONAL_RUN.sub("", text[:at]))
        return run % 2 == 1
    return (unicodedata.category(after) in ("Mn", "Me", "Mc") or "\u200d" in (after, before)
            or "\ufe00" <= after <= "\ufe0f" or "\U0001f3fb" <= after <= "\U0001f3ff")


def cut_description(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """`text` if it fits, else its start and an ellipsis in `limit` characters at most, cut
    where no character is split (code points are what the schema's maxLength counts)."""
    if len(text) <= limit:
        return text
    at = limit - 1
    while at > 0 and _splits_a_character(text, at):
        at -= 1
    head = text[:at].rstrip() or text[:limit - 1]
    return head + ELLIPSIS


def _description(server: dict[str, Any]) -> str | None:
    description = server.get("description")
    if not isinstance(description, str) or not description:
        return None
    return cut_description(description)


def _remote(remote: Any) -> dict[str, Any] | None:
    """The card's remote from a server.json remote (`type`, `url`, `headers`, `variables`),
    or None when the card schema would not accept it."""
    if not isinstance(remote, dict) or remote.get("type") not in REMOTE_TYPES:
        return None
    url = remote.get("url")
    if (not isinstance(url, str) or not _REMOTE_URL.match(url) or _SPACE_OR_CONTROL.search(url)
            or url.endswith("://")):
        return None
    card = {"type": remote["type"], "url": url}
    headers, variables = remote.get("headers"), remote.get("variables")
    if headers is not None:
        if not isinstance(headers, list) or not all(_header(header) for header in headers):
            return None
        card["headers"] = headers
    if variables is not None:
        if not _inputs(variables):
            return None
        card["variables"] = variables
    return card


def _repository(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    repository = {key: value[key] for key in REPOSITORY_KEYS if isinstance(value.get(key), str)}
    return repository if _uri(repository.get("url")) and "source" in repository else None


def _icons(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [icon for icon in value if _icon(icon)]


def mint(item: Any, name: str, version: str) -> dict[str, Any] | None:
    """The Server Card of one upstream item (any shape), or None when no valid one can be
    made. `name` and `version` are the row's: what the card's path and catalog entry say."""
    server = item.get("server") if isinstance(item, dict) else None
    if not isinstance(server, dict):
        return None
    if not NAME_CHARS[0] <= len(name) <= NAME_CHARS[1] or not _NAME.fullmatch(name):
        return None
    if len(version) > VERSION_CHARS:
        return None
    remotes = [card for card in map(_remote, server.get("remotes") or ()) if card is not None] \
        if isinstance(server.get("remotes"), list) else []
    description = _description(server)
    if not remotes or description is None:
        return None
    card: dict[str, Any] = {"$schema": SCHEMA_URL, "name": name, "version": version,
                            "description": description}
    title = server.get("title")
    if isinstance(title, str) and 1 <= len(title) <= TITLE_CHARS:
        card["title"] = title
    if icons := _icons(server.get("icons")):
        card["icons"] = icons
    if (repository := _repository(server.get("repository"))) is not None:
        card["repository"] = repository
    if _uri(server.get("websiteUrl")):
        card["websiteUrl"] = server["websiteUrl"]
    card["remotes"] = remotes
    return card


def card_document(card: dict[str, Any]) -> bytes:
    return orjson.dumps(card, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


class CardMinter:
    """The card entry of a row the API serves, for `ApiProducer` to yield beside the row's
    document; None for a row without one."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def __call__(self, row: Row) -> Entry | None:
        if b'"remotes"' not in row.doc:  # rows are orjson's compact JSON: no other spelling
            return None
        card = mint(orjson.loads(row.doc), row.name, row.version)
        if card is None:
            return None
        path = paths.card_file(row.name, row.version)
        document = self.profile.document
        return Entry(path, Kind.DOCUMENT, SERVER_CARD, lambda: document(card_document(card)),
                     source=digest("server-card", FORMAT, row.hash))
