"""Client allowlists made from the curated snapshot (issue #26, point 1).

Pure: candidates in, documents and notes out. The clients match what they will run, so every
entry is what a client itself derives from the server.json, never a broader pattern: a
server that cannot get an exact entry is reported (`Unmatched`), because a broader entry
would admit servers the policy never saw, and a missing one only blocks this one.

- URLs become patterns as VS Code compares them (`origin + pathname + search` of a WHATWG
  `new URL`; the pattern itself is never normalised by VS Code), which also satisfies
  Copilot's and Claude Code's canonicalisation of both sides. Characters that URL parsers
  encode differently are refused rather than guessed.
- Commands are VS Code's `getMcpServerConfigurationFromManifest` (1.128.1), as mirror/vscode.py
  ports it; shapes VS Code would throw on or silently drop make the package malformed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain, count
from typing import Any, Literal

import idna
import orjson

from mirror import vscode
from mirror.vscode import COMMANDS  # noqa: F401  (the registry types with a command)

ALLOWED_STATUSES = ("active", "deprecated")
MAX_URL_CHARS = 2048  # bounds every entry, and the pairwise overlap check below
MAX_COMMAND_CHARS = 8192
_VAR = re.compile(r"\{[A-Za-z0-9_.-]+\}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL = re.compile(r"[a-z0-9_*-]+")
_ENDS_IN_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_SHELL_VAR = re.compile(r"\$(?:\{|[A-Za-z_])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTABLE = set("^`|[]{}")  # parsers and spec versions encode these differently
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DOTS = {".": 1, "%2e": 1, "..": 2, ".%2e": 2, "%2e.": 2, "%2e%2e": 2}  # WHATWG dot segments
_PATH_ENCODED, _QUERY_ENCODED = '<>"`', "<>\"'"  # WHATWG's sets, less what is refused


@dataclass(frozen=True)
class Candidate:
    """One version of the curated snapshot, as the wiring hands it over."""

    name: str
    version: str
    status: str  # upstream's: "active" | "deprecated" | "deleted"
    admitted: bool  # the curation policy's decision
    latest: bool  # the version the mirror shows as the server's latest
    server: Mapping[str, Any]  # upstream server.json, untrusted


@dataclass(frozen=True)
class Matcher:
    key: Literal["serverUrl", "serverCommand", "serverName"]
    value: str | tuple[str, ...]
    source: str  # e.g. "remotes[0]", "packages[1] (npm)"
    transport: str | None = None  # the remote's declared type, for Claude Code's entries


@dataclass(frozen=True)
class Unmatched:
    source: str
    reason: str


@dataclass(frozen=True)
class ServerMatchers:
    name: str
    version: str
    matchers: tuple[Matcher, ...]
    unmatched: tuple[Unmatched, ...]

    def describe(self) -> list[str]:
        lines = [f"{self.name}@{self.version}"]
        lines += [f"  {m.key} {_show(m.value)}  ({m.source})" for m in self.matchers]
        lines += [f"  no exact entry for {u.source}: {u.reason}" for u in self.unmatched]
        return lines if len(lines) > 1 else [*lines, "  no remotes and no packages"]


@dataclass(frozen=True)
class Note:
    name: str  # "" for a note on the whole document
    version: str
    text: str
    only: str = ""  # the one format it is about ("vscode-settings", "claude-managed-mcp"), "" for all

    def __str__(self) -> str:
        return f"{self.name}@{self.version}: {self.text}" if self.name else self.text


class _NoEntry(Exception):
    """Why one remote or package gets no exact entry."""


# -- remotes --------------------------------------------------------------------------


def _url_patterns(url: Any) -> list[str]:
    """The `serverUrl` patterns of one remote URL (two when the port is a template
    variable: `:*`, and the default port, which WHATWG drops so `:*` cannot match it)."""
    if not isinstance(url, str) or not url or not _encodable(url):
        raise _NoEntry("the URL is not a non-empty string of valid Unicode")
    template = _VAR.sub("*", url)
    for refused, reason in (
            (len(url) > MAX_URL_CHARS, f"the URL is longer than {MAX_URL_CHARS} characters"),
            (re.search(r"[\x00-\x20\x7f]", url), "the URL holds spaces or control characters"),
            ("$" in url, "the URL holds '$': Copilot blocks unresolved ${VAR}/$VAR, Claude Code"
                         " expands them"),
            ("*" in url, "the URL holds a literal '*', which every client reads as a wildcard"),
            (_UNSTABLE & set(template), "the URL holds characters URL parsers encode differently"
                                        " ({ } ^ ` | [ ]; or an IPv6 host)")):
        if refused:
            raise _NoEntry(reason)
    scheme_match = _SCHEME.match(template)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme not in _DEFAULT_PORTS:
        raise _NoEntry("not an http(s)://host/ URL")
    rest = template[scheme_match.end():]
    end = min((i for i in map(rest.find, "/\\?#") if i >= 0), default=len(rest))
    authority, rest = rest[:end].rpartition("@")[2], rest[end:]  # userinfo is not compared
    host, _, port = authority.partition(":")
    host = _host(host)
    if port == "*":
        ports = [":*", ""]
    elif port.isascii() and port.isdigit():
        if int(port) > 65535:
            raise _NoEntry(f"port {port} is out of range")
        ports = ["" if int(port) == _DEFAULT_PORTS[scheme] else f":{int(port)}"]
    elif port:
        raise _NoEntry(f"the port {port!r} is neither a number nor one template variable")
    else:
        ports = [""]
    rest = rest.partition("#")[0]
    path, _, query = rest.partition("?")
    tail = _path(path) + ("?" + _encode(query, _QUERY_ENCODED) if query else "")
    return [f"{scheme}://{host}{p}{tail}" for p in ports]


def _host(host: str) -> str:
    if not host:
        raise _NoEntry("the URL has no host")
    if "%" in host:
        raise _NoEntry("the host is percent-encoded")
    if not host.isascii():
        if "*" in host:
            raise _NoEntry("a template variable in a non-ASCII host")
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise _NoEntry("the host is not a valid internationalised domain name") from None
    host = host.lower()
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    try:
        [idna.decode(label) for label in labels if label.startswith("xn--")]
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _NoEntry("the host has a label that is not valid punycode") from None
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise _NoEntry("the host has an empty label or characters other than letters, digits,"
                       " '-', '_' and '.'")
    if _ENDS_IN_NUMBER.fullmatch(labels[-1]):
        if not _IPV4.fullmatch(".".join(labels)):
            raise _NoEntry("the host is an IPv4 address in a form that URL parsers rewrite")
        host = ".".join(labels)  # an address keeps no trailing dot
    if "*" in host:
        last = max(i for i, label in enumerate(labels) if "*" in label)
        if re.search(r"\*(?!\.)", host) or len(labels) - last - 1 < 2:
            raise _NoEntry(f"a host template ({host}) that can stand for another domain: only"
                           " '{var}.' before two or more fixed labels stays within subdomains")
    return host


def _path(path: str) -> str:
    """The WHATWG pathname of a special URL: `\\` is `/`, dot segments resolved."""
    segments = _encode(path.replace("\\", "/"), _PATH_ENCODED)[1:].split("/") if path else [""]
    out: list[str] = []
    for n, segment in enumerate(segments):
        dots = _DOTS.get(segment.lower(), 0)
        if dots == 2 and out:
            out.pop()
        if not dots or n == len(segments) - 1:
            out.append("" if dots else segment)
    return "/" + "/".join(out)


def _encode(text: str, also: str) -> str:
    return "".join(ch if ch.isascii() and ch not in also
                   else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
                   for ch in text)


def _encodable(text: str) -> bool:
    return not _SURROGATE.search(text)  # what orjson cannot write, nor UTF-8 encode


# -- packages: VS Code's own command (mirror/vscode.py) ----------------------------------


def _server_command(package: Any) -> tuple[str, ...]:
    """The argv VS Code writes when it installs this package (runtimeHint ignored), when it
    is exact: no argument VS Code drops, no `${input:…}` resolved at launch, nothing a client
    expands."""
    try:
        installed = vscode.package_configuration(package)
    except vscode.NotInstallable as why:
        raise _NoEntry(str(why)) from None
    if installed.dropped:
        raise _NoEntry(f"malformed: {installed.dropped[0]}")
    argv = installed.argv or ()  # a package's entry always has a command
    for part in argv:
        if not _encodable(part):
            raise _NoEntry("the command is not valid Unicode")
        if "${input:" in part:
            raise _NoEntry(f"the command takes user input at launch: {part!r}")
        if _SHELL_VAR.search(part):
            raise _NoEntry(f"the command holds {part!r}: Copilot blocks unresolved ${{VAR}}/$VAR,"
                           " Claude Code and VS Code expand them")
    if sum(map(len, argv)) > MAX_COMMAND_CHARS:
        raise _NoEntry(f"the command is longer than {MAX_COMMAND_CHARS} characters")
    return argv


def server_matchers(name: str, version: str, server: Mapping[str, Any]) -> ServerMatchers:
    """Every entry one server version can have, remotes first; pure."""
    found: list[Matcher | Unmatched] = []
    if not isinstance(server, Mapping):
        return ServerMatchers(name, version, (), (Unmatched("server", "not an object"),))
    for field, kind_key in (("remotes", "type"), ("packages", "registryType")):
        items = server.get(field)
        if items is not None and not isinstance(items, list):
            found.append(Unmatched(field, "not a list"))
        for n, item in enumerate(items if isinstance(items, list) else []):
            kind = item.get(kind_key) if isinstance(item, Mapping) else None
            source = f"{field}[{n}]" + (f" ({kind})" if field == "packages" else "")
            try:
                if field == "packages":
                    found.append(Matcher("serverCommand", _server_command(item), source))
                    continue
                patterns = _url_patterns(item.get("url") if isinstance(item, Mapping) else None)
                transport = kind if isinstance(kind, str) else None
                found += [Matcher("serverUrl", p, source + " (default port)" * i, transport)
                          for i, p in enumerate(patterns)]
            except _NoEntry as why:
                found.append(Unmatched(source, str(why)))
    return ServerMatchers(name, version, tuple(m for m in found if isinstance(m, Matcher)),
                          tuple(u for u in found if isinstance(u, Unmatched)))


# -- documents ------------------------------------------------------------------------

Entry = tuple[str, Any]  # (key, value) of one allow or deny entry
Owners = set[tuple[str, str]]  # the (name, version)s an entry came from


class Allowlists:
    """The three documents and their notes, from one pass over the candidates."""

    def __init__(self, allow: dict[Entry, Owners], deny: dict[Entry, Owners], names: list[str],
                 claude: dict[str, dict], notes: Iterable[Note],
                 withheld: dict[Entry, Owners]) -> None:
        self.allow, self.deny, self.deny_names, self.claude = allow, deny, names, claude
        self.notes = sorted(set(notes), key=lambda n: (n.name, n.version, n.text, n.only))
        self.withheld = withheld  # deny entry -> the admitted versions it would have blocked

    @classmethod
    def build(cls, candidates: Iterable[Candidate]) -> Allowlists:
        allow: dict[Entry, Owners] = defaultdict(set)
        deny: dict[Entry, Owners] = defaultdict(set)
        admitted: dict[str, set[str]] = defaultdict(set)
        latest: dict[str, tuple[str, ServerMatchers]] = {}
        denied_names: set[str] = set()
        notes: list[Note] = []
        for c in candidates:
            found = server_matchers(c.name, c.version, c.server)
            allowed = c.admitted and c.status in ALLOWED_STATUSES
            for m in found.matchers:
                (allow if allowed else deny)[(m.key, m.value)].add((c.name, c.version))
            side = "allowlist" if allowed else "denylist"
            notes += [Note(c.name, c.version, f"no {side} entry for {u.source}: {u.reason}")
                      for u in found.unmatched]
            if not allowed:
                denied_names.add(c.name)
                continue
            admitted[c.name].add(c.version)
            if c.latest and (c.name not in latest or c.version > latest[c.name][0]):
                latest[c.name] = (c.version, found)
            if not found.matchers:
                notes.append(Note(c.name, c.version, "admitted, but no exact entry: clients that"
                                                     " apply this allowlist block it"))
        withheld = _overlaps(allow, deny)
        for entry, blocked in withheld.items():
            shown = ", ".join(f"{n}@{v}" for n, v in sorted(blocked)[:3])
            shown += f" and {len(blocked) - 3} more" if len(blocked) > 3 else ""
            notes += [Note(n, v, f"deny entry {entry[0]} {_show(entry[1])} withheld: it would"
                                 f" also block admitted {shown}") for n, v in deny.pop(entry)]
        notes += [Note(name, "*", "VS Code serverName deny entry withheld: admitted versions "
                                  + ", ".join(sorted(admitted[name])) + " have the same name",
                       "vscode-settings")
                  for name in denied_names & admitted.keys()]
        if not allow:
            notes.append(Note("", "", "the policy admits no server with an exact entry: the allow"
                                      " list is [], which blocks every server but built-in ones"))
        claude = _claude(latest, admitted, notes)
        return cls(allow, deny, sorted(denied_names - admitted.keys()), claude, notes, withheld)

    def managed_settings(self) -> dict:
        """GitHub Copilot's file; Claude Code and VS Code 1.130+ read it as-is."""
        return {"allowedMcpServers": _entries(self.allow),
                "deniedMcpServers": _entries(self.deny)}

    def vscode_settings(self) -> dict:
        """VS Code's gallery install names a server by its registry name, so names can deny."""
        names = [{"serverName": name} for name in self.deny_names]
        return {"chat.mcp.allowedServers": _entries(self.allow),
                "chat.mcp.deniedServers": _entries(self.deny) + names}

    def claude_managed_mcp(self) -> dict:
        return {"mcpServers": self.claude}


def _entries(entries: Mapping[Entry, Any]) -> list[dict]:
    urls = sorted(value for key, value in entries if key == "serverUrl")
    commands = sorted(value for key, value in entries if key == "serverCommand")
    return [{"serverUrl": url} for url in urls] + [{"serverCommand": list(c)} for c in commands]


def _show(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else orjson.dumps(list(value)).decode()


def _overlaps(allow: Mapping[Entry, set], deny: Iterable[Entry]) -> dict[Entry, set]:
    """Deny entries that match some admitted server: an equal command, or a URL pattern
    sharing a URL with an allowed one. Patterns are indexed by host (host templates by
    their fixed suffix) and equal literals found by lookup, so thousands of servers on one
    host stay near-linear."""
    exact: dict[str, set] = defaultdict(set)
    indexed: dict[str, list[str]] = defaultdict(list)  # anchor -> allowed patterns
    for (key, value), owners in allow.items():
        if key == "serverUrl":
            indexed[_anchor(value)].append(value)
            if "*" not in value:
                exact[value.lower()] |= owners
    found: dict[Entry, set] = {}
    for entry in deny:
        key, value = entry
        if key == "serverCommand":
            blocked = set(allow.get(entry, ()))
        else:
            anchor, labels = _anchor(value), _anchor(value).split(".")
            anchors = {".".join(labels[n:]) for n in range(len(labels))}
            if "*" in value.split("/")[2]:  # a host template also meets the hosts under it
                anchors |= {a for a in indexed if a.endswith("." + anchor)}
            blocked = set(exact.get(value.lower(), ()))
            for pattern in (p for a in anchors for p in indexed.get(a, ())):
                if ("*" in pattern or "*" in value) and _globs_meet(value, pattern):
                    blocked |= allow[("serverUrl", pattern)]
        if blocked:
            found[entry] = blocked
    return found


def _anchor(pattern: str) -> str:
    host = pattern.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    return host[host.rindex("*") + 2:] if "*" in host else host.rstrip(".")


def _globs_meet(a: str, b: str) -> bool:
    """Whether two patterns share a URL, as VS Code reads them: case-insensitive, a `*` in
    the authority never spans `/ ? # @ \\`, any other `*` spans anything."""
    a, b = a.lower(), b.lower()
    ends = [p.index("/", p.index("://") + 3) for p in (a, b)]  # canonical: always a path
    reach, seen = [(0, 0)], {(0, 0)}
    while reach:
        i, j = reach.pop()
        if i == len(a) and j == len(b):
            return True
        steps = [(i + 1, j + 1)] if i < len(a) and j < len(b) and a[i] == b[j] != "*" else []
        for x, y, p, q, end, swap in ((i, j, a, b, ends[0], False), (j, i, b, a, ends[1], True)):
            if x < len(p) and p[x] == "*":
                spans = y < len(q) and (x >= end or q[y] == "*" or q[y] not in "/?#@\\")
                steps += [(y, x + 1) if swap else (x + 1, y)]
                steps += [(y + 1, x) if swap else (x, y + 1)] if spans else []
        for step in steps:
            if step not in seen:
                seen.add(step)
                reach.append(step)
    return False


def _claude(latest: Mapping[str, tuple[str, ServerMatchers]], admitted: Iterable[str],
            notes: list[Note]) -> dict[str, dict]:
    """managed-mcp.json: each admitted server's latest version, by an exact remote when it
    has one, else by its first package with an exact command. Keys are Claude Code names
    (`[A-Za-z0-9_-]`), `<namespace>_<name>`, made unique in the order of registry names."""
    servers: dict[str, dict] = {}
    for name in sorted(admitted):
        version, found = latest.get(name, ("*", ServerMatchers(name, "*", (), ())))
        remote = next((m for m in found.matchers if m.key == "serverUrl" and "*" not in m.value
                       and m.transport in ("streamable-http", "sse")), None)
        command = next((m for m in found.matchers if m.key == "serverCommand"), None)
        if remote is not None:
            entry = {"type": "sse" if remote.transport == "sse" else "http", "url": remote.value}
        elif command is not None:
            entry = {"type": "stdio", "command": command.value[0], "args": list(command.value[1:])}
        else:
            notes.append(Note(name, version, "left out: " + (
                "no untemplated streamable-http/sse remote and no package with an exact command"
                if name in latest else "no admitted version is the latest shown"),
                "claude-managed-mcp"))
            continue
        base = re.sub(r"[^A-Za-z0-9_-]", "-", name.replace("/", "_", 1))
        key = next(k for k in chain([base], (f"{base}-{n}" for n in count(2))) if k not in servers)
        servers[key] = entry
    return dict(sorted(servers.items()))


def dumps(document: dict) -> bytes:
    """Deterministic bytes: the order is already fixed, so keys are not re-sorted."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
