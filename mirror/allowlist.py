"""Client allowlists made from the curated snapshot (issue #26, point 1).

Pure: candidates in, documents and notes out. The clients match what they will run, so every
entry is what a client itself derives from the server.json, never a broader pattern: a
server that cannot get an exact entry is reported (`Unmatched`), because a broader entry
would admit servers the policy never saw, and a missing one only blocks this one.

- URLs become patterns as VS Code compares them (`origin + pathname + search` of a WHATWG
  `new URL`; the pattern itself is never normalised by VS Code), which also satisfies
  Copilot's and Claude Code's canonicalisation of both sides. Characters that URL parsers
  encode differently are refused rather than guessed.
- Commands are VS Code's `getMcpServerConfigurationFromManifest` (1.128.1), ported rule for
  rule; shapes VS Code would throw on or silently drop make the package malformed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import idna
import orjson

ALLOWED_STATUSES = ("active", "deprecated")
MAX_URL_CHARS = 2048  # bounds every entry, and the pairwise overlap check below
MAX_COMMAND_CHARS = 8192
COMMANDS = {"npm": "npx", "pypi": "uvx", "oci": "docker", "nuget": "dnx"}
_VAR = re.compile(r"\{[A-Za-z0-9_.-]+\}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL = re.compile(r"[a-z0-9_*-]+")
_ENDS_IN_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
_IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)")
_SHELL_VAR = re.compile(r"\$(?:\{|[A-Za-z_])")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_UNSTABLE = set("^`|[]{}")  # node 20 keeps ^ | [ ] raw in paths, newer parsers may not
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_ENCODED, _QUERY_ENCODED = '<>"`', "<>\"'"  # WHATWG's sets, less what is refused earlier


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
        for m in self.matchers:
            value = m.value if isinstance(m.value, str) else orjson.dumps(list(m.value)).decode()
            lines.append(f"  {m.key} {value}  ({m.source})")
        lines += [f"  no exact entry for {u.source}: {u.reason}" for u in self.unmatched]
        if not self.matchers and not self.unmatched:
            lines.append("  no remotes and no packages: nothing to match")
        return lines


@dataclass(frozen=True)
class Note:
    name: str  # "" for a note on the whole document
    version: str
    text: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}: {self.text}" if self.name else self.text


class _NoEntry(Exception):
    """Why one remote or package gets no exact entry."""


# -- remotes --------------------------------------------------------------------------


def url_patterns(url: Any) -> list[str]:
    """The `serverUrl` patterns of one remote URL (two when the port is a template
    variable: `:*`, and the default port, which WHATWG drops so `:*` cannot match it)."""
    if not isinstance(url, str) or not url:
        raise _NoEntry("the URL is not a non-empty string")
    if not _encodable(url):
        raise _NoEntry("the URL is not valid Unicode")
    if len(url) > MAX_URL_CHARS:
        raise _NoEntry(f"the URL is longer than {MAX_URL_CHARS} characters")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        raise _NoEntry("the URL holds spaces or control characters")
    if "$" in url:
        raise _NoEntry("the URL holds '$': Copilot blocks unresolved ${VAR}/$VAR, Claude Code expands them")
    if "*" in url:
        raise _NoEntry("the URL holds a literal '*', which every client reads as a wildcard")
    template = _VAR.sub("*", url)
    if _UNSTABLE & set(template):
        raise _NoEntry("the URL holds characters URL parsers encode differently ({ } ^ ` | [ ])")
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
        raise _NoEntry("the host has characters other than letters, digits, '-', '_' and '.'"
                       " (an IPv6 literal or an empty label)")
    if _ENDS_IN_NUMBER.fullmatch(labels[-1]):
        if not _IPV4.fullmatch(".".join(labels)):
            raise _NoEntry("the host is an IPv4 address in a form that URL parsers rewrite")
        host = ".".join(labels)  # an address keeps no trailing dot
    if "*" in host:
        last = max(i for i, label in enumerate(labels) if "*" in label)
        if re.search(r"\*(?!\.)", host) or len(labels) - last - 1 < 2:
            raise _NoEntry(f"a host template ({host}) that can stand for another domain: only"
                           " '{var}.' before at least two fixed labels is narrowed to subdomains")
    return host


def _path(path: str) -> str:
    """The WHATWG pathname of a special URL: `\\` is `/`, dot segments resolved."""
    segments = _encode(path.replace("\\", "/"), _PATH_ENCODED)[1:].split("/") if path else [""]
    out: list[str] = []
    for n, segment in enumerate(segments):
        last, lowered = n == len(segments) - 1, segment.lower()
        if lowered in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        elif lowered in (".", "%2e"):
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def _encode(text: str, also: str) -> str:
    return "".join(ch if ch.isascii() and ch not in also
                   else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
                   for ch in text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeError:
        return False
    return True


# -- packages: VS Code's getMcpServerConfigurationFromManifest -------------------------


def server_command(package: Any) -> tuple[str, ...]:
    """The argv VS Code writes when it installs this package (runtimeHint ignored)."""
    if not isinstance(package, Mapping):
        raise _NoEntry("malformed: not an object")
    kind = package.get("registryType")
    if kind not in COMMANDS:
        raise _NoEntry(f"registryType {kind!r}: VS Code's conversion writes no runnable command")
    ident, version, base = (package.get(k) for k in ("identifier", "version", "registryBaseUrl"))
    if not isinstance(ident, str) or not ident:
        raise _NoEntry("malformed: no identifier")
    _optional(version, "version")
    _optional(base, "registryBaseUrl")
    args = ["run", "-i", "--rm"] if kind == "oci" else []
    args += _arguments(package.get("runtimeArguments"), "runtimeArguments")
    names = _environment(package.get("environmentVariables"))
    if kind == "oci":
        args += [part for name in names for part in ("-e", name)]
    pinned = f"{ident}@{version}" if version else ident
    if kind in ("npm", "pypi"):
        args += [("--registry" if kind == "npm" else "--index-url"), base] if base else []
        args.append(pinned)
    elif kind == "oci":
        image = f"{base}/{ident}" if base else ident
        args.append(f"{image}:{version}" if version else image)
    else:
        package_arguments = package.get("packageArguments")
        args += [pinned, "--yes", *(["--source", base] if base else []),
                 *(["--"] if isinstance(package_arguments, list) and package_arguments else [])]
    args += _arguments(package.get("packageArguments"), "packageArguments")
    argv = (COMMANDS[kind], *args)
    for part in argv:
        if _SHELL_VAR.search(part):
            raise _NoEntry(f"the command holds {part!r}: Copilot blocks unresolved ${{VAR}}/$VAR,"
                           " Claude Code and VS Code expand them")
        if not _encodable(part):
            raise _NoEntry("the command is not valid Unicode")
    if sum(map(len, argv)) > MAX_COMMAND_CHARS:
        raise _NoEntry(f"the command is longer than {MAX_COMMAND_CHARS} characters")
    return argv


def _optional(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _NoEntry(f"malformed: {what} is not a string")


def _variables(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise _NoEntry(f"malformed: {where}.variables is not an object of objects")
    return list(value)


def _arguments(items: Any, label: str) -> list[str]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise _NoEntry(f"malformed: {label} is not a list")
    out: list[str] = []
    for n, arg in enumerate(items):
        where = f"{label}[{n}]"
        if not isinstance(arg, Mapping):
            raise _NoEntry(f"malformed: {where} is not an object")
        for key in ("value", "valueHint", "description", "name"):
            _optional(arg.get(key), f"{where}.{key}")
        variables, value, hint = _variables(arg.get("variables"), where), arg.get("value"), arg.get("valueHint")
        asks = bool(arg.get("description")) or "default" in arg  # JS: description || default !== undefined
        if value and any(f"{{{v}}}" in value for v in variables):
            raise _NoEntry(f"{where} takes user input at launch (VS Code writes ${{input:…}})")
        if arg.get("type") == "positional":
            if not value and hint and asks:
                raise _NoEntry(f"{where} takes user input at launch (VS Code writes ${{input:{hint}}})")
            out.append(value or hint or "")
        elif arg.get("type") == "named":
            if not arg.get("name"):
                raise _NoEntry(f"malformed: {where} is a named argument without a name (VS Code drops it)")
            if not value and asks:
                raise _NoEntry(f"{where} takes user input at launch (VS Code writes ${{input:…}})")
            out += [arg["name"], value] if value else [arg["name"]]
        else:
            raise _NoEntry(f"malformed: {where}.type is {arg.get('type')!r} (VS Code ignores it)")
    return out


def _environment(items: Any) -> list[str]:
    """Variable names in the order JavaScript lists an object's keys (array indices first);
    VS Code collects them into an object, so `__proto__` never becomes a key."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise _NoEntry("malformed: environmentVariables is not a list")
    names: dict[str, None] = {}
    for n, var in enumerate(items):
        where = f"environmentVariables[{n}]"
        if not isinstance(var, Mapping) or not isinstance(var.get("name"), str):
            raise _NoEntry(f"malformed: {where} has no name")
        _optional(var.get("value"), f"{where}.value")
        _variables(var.get("variables"), where)
        names.setdefault(var["name"], None)
    names.pop("__proto__", None)
    index = sorted((k for k in names if _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1), key=int)
    return index + [k for k in names if k not in set(index)]


def server_matchers(name: str, version: str, server: Mapping[str, Any]) -> ServerMatchers:
    """Every entry one server version can have, remotes first; pure."""
    matchers: list[Matcher] = []
    unmatched: list[Unmatched] = []
    if not isinstance(server, Mapping):
        return ServerMatchers(name, version, (), (Unmatched("server", "not an object"),))
    for field in ("remotes", "packages"):
        items = server.get(field)
        if items is not None and not isinstance(items, list):
            unmatched.append(Unmatched(field, "not a list"))
            continue
        for n, item in enumerate(items or []):
            kind = item.get("type" if field == "remotes" else "registryType") if isinstance(item, Mapping) else None
            source = f"{field}[{n}]" if field == "remotes" else f"{field}[{n}] ({kind})"
            try:
                if field == "remotes":
                    transport = kind if isinstance(kind, str) else None
                    patterns = url_patterns(item.get("url") if isinstance(item, Mapping) else None)
                    matchers += [Matcher("serverUrl", p, source + (" (default port)" if i else ""), transport)
                                 for i, p in enumerate(patterns)]
                else:
                    matchers.append(Matcher("serverCommand", server_command(item), source))
            except _NoEntry as why:
                unmatched.append(Unmatched(source, str(why)))
    return ServerMatchers(name, version, tuple(matchers), tuple(unmatched))


# -- documents ------------------------------------------------------------------------

Entry = tuple[str, Any]  # (key, value) of one allow or deny entry


class Allowlists:
    """The three documents and their notes, from one pass over the candidates."""

    def __init__(self, allow: dict[Entry, set], deny: dict[Entry, set], names: list[str],
                 claude: dict[str, dict], notes: Iterable[Note]) -> None:
        self.allow, self.deny, self.deny_names, self.claude = allow, deny, names, claude
        self.notes = sorted(set(notes), key=lambda n: (n.name, n.version, n.text))
        self.withheld: dict[Entry, set[tuple[str, str]]] = {}  # deny entry -> admitted it would block

    @classmethod
    def build(cls, candidates: Iterable[Candidate]) -> Allowlists:
        allow: dict[Entry, set[tuple[str, str]]] = defaultdict(set)
        deny: dict[Entry, set[tuple[str, str]]] = defaultdict(set)
        admitted: dict[str, set[str]] = defaultdict(set)
        denied_names: set[str] = set()
        latest: dict[str, tuple[str, ServerMatchers]] = {}
        notes: list[Note] = []
        for c in candidates:
            found = server_matchers(c.name, c.version, c.server)
            allowed = c.admitted and c.status in ALLOWED_STATUSES
            for m in found.matchers:
                (allow if allowed else deny)[(m.key, m.value)].add((c.name, c.version))
            side = "allowlist" if allowed else "denylist"
            notes += [Note(c.name, c.version, f"no {side} entry for {u.source}: {u.reason}") for u in found.unmatched]
            if allowed:
                admitted[c.name].add(c.version)
                if c.latest and (c.name not in latest or c.version > latest[c.name][0]):
                    latest[c.name] = (c.version, found)
                if not found.matchers:
                    notes.append(Note(c.name, c.version, "admitted, but has no exact entry: clients"
                                                         " with this allowlist block it"))
            else:
                denied_names.add(c.name)
        withheld = _overlaps(allow, deny)
        for entry, blocked in withheld.items():
            owners = deny.pop(entry)
            shown = ", ".join(f"{n}@{v}" for n, v in sorted(blocked)[:3])
            more = f" and {len(blocked) - 3} more" if len(blocked) > 3 else ""
            notes += [Note(n, v, f"deny entry {entry[0]} {_show(entry[1])} withheld: it would also"
                                 f" block admitted {shown}{more}") for n, v in owners]
        for name in sorted(denied_names & admitted.keys()):
            notes.append(Note(name, "*", "VS Code serverName deny entry withheld: admitted versions"
                                         f" {', '.join(sorted(admitted[name]))} have the same name"))
        if not allow:
            notes.append(Note("", "", "the policy admits no server with an exact entry: allowedMcpServers"
                                      " is [], which blocks every server but the clients' built-in ones"))
        claude = _claude(latest, admitted, notes)
        built = cls(allow, deny, sorted(denied_names - admitted.keys()), claude, notes)
        built.withheld = withheld
        return built

    def managed_settings(self) -> dict:
        """GitHub Copilot's file; Claude Code and VS Code 1.130+ read it as-is."""
        return {"allowedMcpServers": _entries(self.allow), "deniedMcpServers": _entries(self.deny)}

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
            for pattern in (p for a in anchors for p in indexed.get(a, ()) if "*" in p or "*" in value):
                if _globs_meet(value, pattern):
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


def _claude(latest: Mapping[str, tuple[str, ServerMatchers]], admitted: Mapping[str, set],
            notes: list[Note]) -> dict[str, dict]:
    """managed-mcp.json: each admitted server's latest version, by an exact remote when it
    has one, else its first package with an exact command."""
    servers: dict[str, dict] = {}
    for name in sorted(admitted):
        if name not in latest:
            notes.append(Note(name, "*", "managed-mcp.json: no admitted version is the latest shown"))
            continue
        version, found = latest[name]
        remote = next((m for m in found.matchers if m.key == "serverUrl" and "*" not in m.value
                       and m.transport in ("streamable-http", "sse")), None)
        command = next((m for m in found.matchers if m.key == "serverCommand"), None)
        if remote is not None:
            servers[name] = {"type": "sse" if remote.transport == "sse" else "http", "url": remote.value}
        elif command is not None:
            servers[name] = {"type": "stdio", "command": command.value[0], "args": list(command.value[1:])}
        else:
            notes.append(Note(name, version, "managed-mcp.json: left out, no untemplated streamable-http/sse"
                                             " remote and no package with an exact command"))
    bases = {name: re.sub(r"[^A-Za-z0-9_-]", "-", name.replace("/", "_", 1)) for name in servers}
    counts = defaultdict(int)
    for base in bases.values():
        counts[base] += 1
    used = {base for base, count in counts.items() if count == 1}
    keyed: dict[str, dict] = {}
    for name in sorted(servers):
        key, n = bases[name], 1
        while counts[bases[name]] > 1 and key in used:
            n += 1
            key = f"{bases[name]}-{n}"
        used.add(key)
        keyed[key] = servers[name]
    return dict(sorted(keyed.items()))


def dumps(document: dict) -> bytes:
    """Deterministic bytes: the order is already fixed, so keys are not re-sorted."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
