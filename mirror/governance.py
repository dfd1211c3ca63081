"""The curated snapshot as the files an organization's clients enforce or import.

Allowlists (GitHub Copilot's `managed-settings.json`, which VS Code 1.130+ and Claude Code
read as-is; VS Code's `chat.mcp.*Servers` settings keys; Claude Code's `managed-mcp.json`)
and ToolHive's upstream-registry file, each made from the decided rows (admitted and
excluded alike, since deny entries come from the excluded ones) in one pass. `export` writes
one of them; render publishes the allowlists at fixed paths (`paths.MANAGED_SETTINGS_FILE`...).
The rules live in `allowlist` and `toolhive`; this module only feeds them rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from mirror import allowlist, paths, toolhive
from mirror.models import Row
from mirror.policy import Decided, Decision

TOOLHIVE_MAX_BYTES = 1_048_576  # a Kubernetes ConfigMap's limit (toolhive-registry-server#547)


@dataclass(frozen=True)
class Format:
    """One output: its name on the command line, the file clients know it by, and where a
    rendered tree publishes it (None: export only)."""

    name: str
    file_name: str
    tree_path: str | None
    help: str


FORMATS = {f.name: f for f in (
    Format("allowlist", "managed-settings.json", paths.MANAGED_SETTINGS_FILE,
           "allowedMcpServers/deniedMcpServers for GitHub Copilot, VS Code 1.130+ and Claude Code"),
    Format("vscode-settings", "vscode-settings.json", paths.VSCODE_SETTINGS_FILE,
           "VS Code's chat.mcp.allowedServers/deniedServers settings keys"),
    Format("claude-managed-mcp", "managed-mcp.json", paths.CLAUDE_MANAGED_MCP_FILE,
           "Claude Code's managed-mcp.json: the only servers it loads"),
    Format("toolhive", "toolhive-registry.json", None, "ToolHive's upstream-registry file"),
)}


@dataclass(frozen=True)
class Output:
    """One made file and what a person should know of it."""

    data: bytes
    summary: str  # e.g. "120 allow entries, 3 deny entries"
    notes: tuple[allowlist.Note, ...]  # what was left out, and why

    def grouped_notes(self) -> list[str]:
        """One line per server and reason, naming its versions: a reason shared by fifteen
        versions is one line, not fifteen."""
        versions: dict[tuple[str, str], list[str]] = {}
        for note in self.notes:
            versions.setdefault((note.name, note.text), []).append(note.version)
        lines = []
        for (name, text), found in versions.items():
            if not name:
                lines.append(text)
                continue
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            lines.append(f"{name} ({shown}): {text}")
        return lines


def _server(row_doc: bytes) -> Any:
    try:
        item = orjson.loads(row_doc)
    except orjson.JSONDecodeError:
        return None
    return item.get("server") if isinstance(item, dict) else None


def candidates(decided: Iterable[Decided]) -> Iterator[allowlist.Candidate]:
    for d in decided:
        server = _server(d.row.doc)
        yield allowlist.Candidate(d.row.name, d.row.version, d.row.status, d.decision.admitted,
                                  d.latest, server if isinstance(server, dict) else {})


def allowlists(decided: Iterable[Decided]) -> allowlist.Allowlists:
    return allowlist.Allowlists.build(candidates(decided))


def allowlist_outputs(made: allowlist.Allowlists, *, only: str | None = None) -> dict[str, Output]:
    """The three allowlist files of one build, by format name (or just `only`). Each document
    is made, serialised and dropped before the next: at 100,000 versions each is tens of MB
    of small objects, so the three never coexist."""

    def notes(name: str) -> tuple[allowlist.Note, ...]:
        if name == "claude-managed-mcp":  # one entry a server: only why a server has none
            return tuple(note for note in made.notes if note.only == name)
        return tuple(note for note in made.notes if note.only in ("", name))

    def counts(document: dict[str, Any], allow: str, deny: str) -> str:
        return f"{len(document[allow])} allow entries, {len(document[deny])} deny entries"

    makers = {
        "allowlist": lambda: (made.managed_settings(), ("allowedMcpServers", "deniedMcpServers")),
        "vscode-settings": lambda: (made.vscode_settings(), ("chat.mcp.allowedServers", "chat.mcp.deniedServers")),
        "claude-managed-mcp": lambda: (made.claude_managed_mcp(), None),
    }
    outputs = {}
    for name, maker in makers.items():
        if only is not None and name != only:
            continue
        document, lists = maker()
        summary = counts(document, *lists) if lists else f"{len(document['mcpServers'])} servers"
        outputs[name] = Output(allowlist.dumps(document), summary, notes(name))
        del document
    return outputs


def toolhive_output(decided: Iterable[Decided], *, last_updated: str, max_bytes: int | None) -> Output:
    """The latest shown version of each admitted, visible server, in name order."""
    servers = (_server(d.row.doc) for d in decided if d.decision.admitted and d.latest)
    made = toolhive.registry_file(servers, last_updated=last_updated, max_bytes=max_bytes)
    notes = tuple(allowlist.Note(left.name, left.version, f"left out: {left.reason}") for left in made.left_out)
    return Output(made.data, f"{made.servers} servers", notes)


def matcher_lines(row: Row, decision: Decision) -> list[str]:
    """What `policy explain` shows of a version: the allowlist or denylist entries it gets,
    and what gets none, and why."""
    server = _server(row.doc)
    found = allowlist.server_matchers(row.name, row.version, server if isinstance(server, dict) else {})
    side = "allowlist" if decision.admitted and row.status in allowlist.ALLOWED_STATUSES else "denylist"
    return [f"  {side}: {line.strip()}" for line in found.describe()[1:]]


def make(name: str, decided: Callable[[], Iterable[Decided]], *, last_updated: str,
         max_bytes: int | None = TOOLHIVE_MAX_BYTES) -> Output:
    if name == "toolhive":
        return toolhive_output(decided(), last_updated=last_updated, max_bytes=max_bytes)
    return allowlist_outputs(allowlists(decided()), only=name)[name]
