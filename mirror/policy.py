"""Curation policy: which rows of a snapshot an organization's mirror serves, and why.

Pure: a `Policy` is parsed from TOML text and decides each row; nothing here reads the
store or writes a file. Applied at render, so the snapshot stays complete and a policy
change needs no new crawl.

Precedence, first that applies wins (deny wins over allow, the usual allowlist rule):

1. `exclude` globs and `[[rule]]` tables with `action = "exclude"`, in file order;
2. `[[pin]]`: every version of a pinned server but the pinned one is excluded, the pinned
   one is admitted by the pin;
3. `include` globs and `[[rule]]` tables with `action = "include"`, in file order;
4. the default: admitted when the policy has no include rule at all, else excluded
   ("not included").

A server whose upstream latest version is excluded (or pinned away) gets a new latest:
the highest admitted visible version (semver, else newest publishedAt), so `latest`
pointers and the `version=latest` pages never name a row the mirror does not serve.
Upstream's own `isLatest` stays as upstream wrote it; the mirror's word is under the
mirror's `_meta` key (`MIRROR_META`), with the rule that moved it.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import groupby
from pathlib import Path
from typing import Any

import orjson

from mirror.errors import PolicyError
from mirror.models import Row, content_hash, is_visible, latest_row

MIRROR_META = "mcp-mirror/mirror"  # the mirror's own `_meta` key: never upstream's
ACTIONS = ("include", "exclude")
TRANSPORTS = ("remote", "stdio")
STATUSES = ("active", "deprecated", "deleted")
_TOP_KEYS = {"include", "exclude", "rule", "pin", "collisions"}
_RULE_KEYS = {"action", "name", "registry_type", "package", "transport", "status", "reason"}
_PIN_KEYS = {"name", "version", "reason"}
_GLOB_ENTRY_KEYS = {"name", "reason"}
_COLLISION_KEYS = {"prefer"}
_GLOB_CHARS = re.compile(r"[A-Za-z0-9._/*?-]+")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")
MAX_POLICY_BYTES = 1_000_000


@dataclass(frozen=True)
class Rule:
    """One rule: every matcher it has must match (an AND); `label` names it in reports."""

    label: str
    action: str
    reason: str
    name: re.Pattern[str] | None = None
    registry_type: str | None = None
    package: re.Pattern[str] | None = None
    transport: str | None = None
    status: str | None = None

    def matches(self, row: Row, server: dict[str, Any]) -> bool:
        if self.name is not None and not self.name.fullmatch(row.name):
            return False
        if self.status is not None and row.status != self.status:
            return False
        if self.transport == "remote" and not _list(server.get("remotes")):
            return False
        if self.transport == "stdio" and not any(
                _get(package, "transport", "type") == "stdio" for package in _list(server.get("packages"))):
            return False
        if self.registry_type is not None or self.package is not None:
            return any((self.registry_type is None or package.get("registryType") == self.registry_type)
                       and (self.package is None or (isinstance(package.get("identifier"), str)
                                                     and self.package.fullmatch(package["identifier"])))
                       for package in _list(server.get("packages")) if isinstance(package, dict))
        return True


@dataclass(frozen=True)
class Pin:
    label: str
    name: re.Pattern[str]
    version: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """What the policy says of one row, and which rule said it."""

    admitted: bool
    rule: str
    reason: str

    def describe(self) -> str:
        return f"{'admitted' if self.admitted else 'excluded'} by {self.rule}: {self.reason}"


DEFAULT_ADMIT = Decision(True, "default", "the policy has no include rule, so everything not excluded is served")
NOT_INCLUDED = Decision(False, "default", "no include rule matches")


@dataclass(frozen=True)
class Policy:
    excludes: tuple[Rule, ...] = ()
    includes: tuple[Rule, ...] = ()
    pins: tuple[Pin, ...] = ()
    prefer: str | None = None  # on a name both upstream and --local have: "local", "upstream", or refuse

    def decide(self, row: Row) -> Decision:
        if not (self.excludes or self.pins or self.includes):
            return DEFAULT_ADMIT  # no rule to read the document for
        server = _server(row)
        for rule in self.excludes:
            if rule.matches(row, server):
                return Decision(False, rule.label, rule.reason)
        for pin in self.pins:
            if pin.name.fullmatch(row.name):
                if row.version == pin.version:
                    return Decision(True, pin.label, pin.reason)
                return Decision(False, pin.label, f"{pin.reason} (pinned to {pin.version})")
        for rule in self.includes:
            if rule.matches(row, server):
                return Decision(True, rule.label, rule.reason)
        return NOT_INCLUDED if self.includes else DEFAULT_ADMIT

    def labels(self) -> list[str]:
        """Every rule's label, in precedence order (what `build` counts by)."""
        return [*(r.label for r in self.excludes), *(p.label for p in self.pins), *(r.label for r in self.includes),
                "default"]


EVERYTHING = Policy()


@dataclass
class Curation:
    """The policy applied to a sorted row stream: what `build` reports."""

    admitted: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    relatested: list[tuple[str, str]] = field(default_factory=list)  # (name, version) made latest by the mirror

    @property
    def rows_admitted(self) -> int:
        return sum(self.admitted.values())

    @property
    def rows_excluded(self) -> int:
        return sum(self.excluded.values())

    def by_rule(self) -> dict[str, dict[str, int]]:
        rules = sorted(self.admitted.keys() | self.excluded.keys())
        return {rule: {"admitted": self.admitted.get(rule, 0), "excluded": self.excluded.get(rule, 0)}
                for rule in rules}


@dataclass(frozen=True)
class Decided:
    """One row of a snapshot with the policy's word on it: what the governance outputs
    (allowlists, deny entries) are made of, excluded rows included."""

    row: Row  # as served when admitted (isLatest marked by the mirror where the policy moved it)
    decision: Decision
    latest: bool  # the version the mirror serves as its server's latest


def decide_servers(rows: Iterable[Row], policy: Policy, *,
                   report: Curation | None = None) -> Iterator[Decided]:
    """Every row of a stream sorted by (name, version), one server at a time, decided; each
    server's admitted rows with exactly one latest visible row when it has any visible row."""
    for _, group in groupby(rows, key=lambda row: row.name):
        decided = [(row, policy.decide(row)) for row in group]
        kept = [row for row, decision in decided if decision.admitted]
        fixed = relatest(kept, rule="policy")
        if report is not None:
            for _, decision in decided:
                (report.admitted if decision.admitted else report.excluded)[decision.rule] += 1
            report.relatested.extend(r.key for r, old in zip(fixed, kept, strict=True) if r is not old)
        served = {row.key: row for row in fixed}
        latest = latest_row(row for row in fixed if is_visible(row))
        for row, decision in decided:
            shown = served.get(row.key, row)
            yield Decided(shown, decision, latest is not None and shown.key == latest.key)


def curate(rows: Iterable[Row], policy: Policy, *, report: Curation | None = None) -> Iterator[Row]:
    """The admitted rows of a stream sorted by (name, version), one server at a time, each
    server with exactly one latest visible row when it has any visible row."""
    return (d.row for d in decide_servers(rows, policy, report=report) if d.decision.admitted)


def relatest(versions: list[Row], *, rule: str) -> list[Row]:
    """`versions` (one server's) unchanged when a visible one is flagged latest; else with
    the best visible one flagged, and marked so under the mirror's `_meta` key."""
    visible = [row for row in versions if is_visible(row)]
    if not visible or any(row.is_latest for row in visible):
        return versions
    best = best_version(visible)
    return [mark_latest(row, rule=rule) if row is best else row for row in versions]


def best_version(rows: list[Row]) -> Row:
    """Upstream's rule for isLatest: the highest semantic version when every version is one,
    else the newest publishedAt."""
    parsed = [_semver_key(row.version) for row in rows]
    if all(key is not None for key in parsed):
        return max(zip(parsed, rows, strict=True), key=lambda pair: pair[0])[1]
    return max(rows, key=lambda row: row.published_sort_key)


def _semver_key(version: str) -> tuple | None:
    match = _SEMVER.fullmatch(version)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    # a release sorts after its pre-releases; pre-release identifiers compare numerically when numeric
    pre_key = (1,) if pre is None else (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), pre_key)


def mark_latest(row: Row, *, rule: str) -> Row:
    item = _item(row)
    if item is None:  # render leaves such a row out; it is still the server's latest
        return replace(row, is_latest=True)
    meta = item.get("_meta") if isinstance(item.get("_meta"), dict) else {}
    mirror = meta.get(MIRROR_META) if isinstance(meta.get(MIRROR_META), dict) else {}
    item["_meta"] = {**meta, MIRROR_META: {**mirror, "isLatest": True, "latestBy": rule}}
    doc = orjson.dumps(item)
    return replace(row, is_latest=True, doc=doc, hash=content_hash(doc))


def _item(row: Row) -> dict[str, Any] | None:
    try:
        item = orjson.loads(row.doc)
    except orjson.JSONDecodeError:
        return None
    return item if isinstance(item, dict) else None


def _server(row: Row) -> dict[str, Any]:
    server = (_item(row) or {}).get("server")
    return server if isinstance(server, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# -- parsing ------------------------------------------------------------------------


def load(text: str, *, source: str = "policy") -> Policy:
    """Parse a policy file; raises PolicyError naming the line and the key of the problem."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not TOML: {exc}") from None
    where = _Locator(text, source)
    for key in data:
        if key not in _TOP_KEYS:
            raise where.error(key, f"unknown key {key!r}", hint=f"known keys: {', '.join(sorted(_TOP_KEYS))}")
    excludes: list[Rule] = []
    includes: list[Rule] = []
    for action in ("exclude", "include"):
        entries = data.get(action, [])
        if not isinstance(entries, list):
            raise where.error(action, f"{action!r} must be a list of globs")
        for n, entry in enumerate(entries, 1):
            if isinstance(entry, str):
                glob, reason = entry, f"on the {action} list"
            elif isinstance(entry, dict):
                _known(entry, _GLOB_ENTRY_KEYS, where, f"{action}[{n}]")
                glob, reason = entry.get("name"), entry.get("reason", f"on the {action} list")
                if not isinstance(reason, str):
                    raise where.error("reason", f"{action}[{n}].reason must be a string")
            else:
                raise where.error(action, f"{action}[{n}] must be a glob or a {{name, reason}} table")
            rule = Rule(f"{action}[{n}] {glob}", action, reason, name=_glob(glob, where, action, f"{action}[{n}]"))
            (excludes if action == "exclude" else includes).append(rule)
    rules = data.get("rule", [])
    where.table = None
    if not isinstance(rules, list):
        raise where.error("rule", "'rule' must be an array of tables ([[rule]])")
    for n, table in enumerate(rules, 1):
        where.table = ("rule", n)
        rule = _rule(table, n, where)
        (excludes if rule.action == "exclude" else includes).append(rule)
    pins = []
    where.table = None
    pin_tables = data.get("pin", [])
    if not isinstance(pin_tables, list):
        raise where.error("pin", "'pin' must be an array of tables ([[pin]])")
    for n, table in enumerate(pin_tables, 1):
        where.table = ("pin", n)
        label = f"pin[{n}]"
        if not isinstance(table, dict):
            raise where.error("pin", f"{label} must be a table")
        _known(table, _PIN_KEYS, where, label)
        version, reason = table.get("version"), table.get("reason")
        if not isinstance(version, str) or not version:
            raise where.error("version", f"{label} needs a version (a string)")
        if not isinstance(reason, str) or not reason:
            raise where.error("reason", f"{label} needs a reason")
        pins.append(Pin(f"{label} {table.get('name')}@{version}", _glob(table.get("name"), where, "name", label),
                        version, reason))
    where.table = ("collisions", 1) if "collisions" in data else None
    collisions = data.get("collisions", {})
    if not isinstance(collisions, dict):
        raise where.error("collisions", "'collisions' must be a table")
    _known(collisions, _COLLISION_KEYS, where, "collisions")
    prefer = collisions.get("prefer")
    if prefer is not None and prefer not in ("local", "upstream"):
        raise where.error("prefer", f"collisions.prefer is {prefer!r}", hint='use "local" or "upstream"')
    return Policy(tuple(excludes), tuple(includes), tuple(pins), prefer)


def _rule(table: Any, n: int, where: _Locator) -> Rule:
    label = f"rule[{n}]"
    if not isinstance(table, dict):
        raise where.error("rule", f"{label} must be a table")
    _known(table, _RULE_KEYS, where, label)
    action, reason = table.get("action"), table.get("reason")
    if action not in ACTIONS:
        raise where.error("action", f"{label}.action is {action!r}", hint='use "include" or "exclude"')
    if not isinstance(reason, str) or not reason:
        raise where.error("reason", f"{label} needs a reason (say why, for `policy explain`)")
    matchers = {key: table[key] for key in ("name", "registry_type", "package", "transport", "status") if key in table}
    if not matchers:
        raise where.error("action", f"{label} has no matcher",
                          hint="give name, registry_type, package, transport or status")
    for key, value in matchers.items():
        if not isinstance(value, str) or not value:
            raise where.error(key, f"{label}.{key} must be a non-empty string")
    if matchers.get("transport", "remote") not in TRANSPORTS:
        raise where.error("transport", f"{label}.transport is {matchers['transport']!r}",
                          hint='use "remote" or "stdio"')
    if matchers.get("status", "active") not in STATUSES:
        raise where.error("status", f"{label}.status is {matchers['status']!r}", hint=f"use one of {STATUSES}")
    described = " ".join(f"{key}={value}" for key, value in matchers.items())
    return Rule(f"{label} {action} {described}", action, reason,
                name=_glob(matchers["name"], where, "name", label) if "name" in matchers else None,
                registry_type=matchers.get("registry_type"),
                package=_glob(matchers["package"], where, "package", label, names=False)
                if "package" in matchers else None,
                transport=matchers.get("transport"), status=matchers.get("status"))


def _known(table: dict, known: set[str], where: _Locator, label: str) -> None:
    for key in table:
        if key not in known:
            raise where.error(key, f"unknown key {key!r} in {label}", hint=f"known keys: {', '.join(sorted(known))}")


def _glob(glob: Any, where: _Locator, key: str, label: str, *, names: bool = True) -> re.Pattern[str]:
    """A name glob: `*` any run of characters but `/`, `?` one such character. For server
    names (`io.github.acme/*`, `com.example.*/*`) the glob must have the name's one `/`."""
    if not isinstance(glob, str) or not glob:
        raise where.error(key, f"{label}: a glob must be a non-empty string")
    if names and (glob.count("/") != 1 or not _GLOB_CHARS.fullmatch(glob)):
        raise where.error(key, f"{label}: bad glob {glob!r}",
                          hint="a server-name glob is namespace/name with letters, digits, . - _ and * or ?, "
                               "e.g. io.github.acme/*")
    if not names and (len(glob) > 500 or any(ch.isspace() or not ch.isprintable() for ch in glob)):
        raise where.error(key, f"{label}: bad glob {glob!r}", hint="no spaces or control characters")
    if "**" in glob:
        raise where.error(key, f"{label}: bad glob {glob!r}", hint="'**' means nothing more than '*' here")
    parts = []
    for ch in glob:
        parts.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return re.compile("".join(parts))


class _Locator:
    """tomllib reports no line for a key: find the line by scanning the text, within the
    table the key belongs to (the n-th `[[rule]]`, `[collisions]`, or the top level);
    a key that is missing is reported at its table's header."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.table: tuple[str, int] | None = None  # set by the parser while it reads a table

    def _section(self) -> tuple[int, int]:
        """The lines (0-based start, end) of the current table; the top level when none."""
        header = re.compile(r"^\s*\[")
        if self.table is None:
            end = next((i for i, line in enumerate(self.lines) if header.match(line)), len(self.lines))
            return 0, end
        name, n = self.table
        wanted = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*\]\]?")
        starts = [i for i, line in enumerate(self.lines) if wanted.match(line)]
        if len(starts) < n:  # an inline table or array on one line: search the whole text
            return 0, len(self.lines)
        start = starts[n - 1]
        end = next((i for i in range(start + 1, len(self.lines)) if header.match(self.lines[i])), len(self.lines))
        return start, end

    def line_of(self, key: str) -> int | None:
        pattern = re.compile(rf"^\s*(\"?){re.escape(key)}\1\s*=|[{{,]\s*{re.escape(key)}\s*=")
        start, end = self._section()
        for number in range(start, end):
            if pattern.search(self.lines[number]):
                return number + 1
        if self.table is not None and start < len(self.lines):
            return start + 1
        return None

    def error(self, key: str, message: str, *, hint: str | None = None) -> PolicyError:
        line = self.line_of(key)
        at = f"{self.source}:{line}" if line is not None else self.source
        return PolicyError(f"{at}: key {key!r}: {message}", hint=hint)


def read(path: Path) -> Policy:
    """A policy file by path (the CLI's edge); an unreadable file is a PolicyError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policy file {path}: {exc}") from None
    return load(text, source=str(path))
