"""The client allowlists (mirror/allowlist.py), checked against the clients' own rules.

Two node helpers in tests/vscode_gallery/ run for the whole module, one process each:
- install_config.mjs: VS Code's own server.json -> mcp.json conversion
  (`getMcpServerConfigurationFromManifest`, VS Code 1.128.1 as pinned), which decides the
  command every package gets;
- matcher_oracle.mjs: VS Code's allow/deny decision, which no npm build contains, rewritten
  from the published rules (reference section 2.2) and parsing URLs with node's WHATWG
  `new URL`, as VS Code does.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirror import allowlist, governance
from mirror.allowlist import Allowlists, Candidate, Matcher, Unmatched, dumps, server_matchers
from mirror.models import row_from_item
from mirror.policy import decide_servers, load

HERE = Path(__file__).parent / "vscode_gallery"
MODULES = Path(sys.prefix) / "vscode-gallery" / "node_modules"  # where `make install` puts them
SAMPLE = json.loads((Path(allowlist.__file__).parent / "data" / "sample.json").read_text())
POLICY = """
exclude = ["io.github.fr33-crypto/*", "io.github.pinecone-io/*",
           "io.github.heroku/heroku-mcp-server"]

[[pin]]
name = "com.example.weather/Forecast-API"
version = "1.2.0"
reason = "the version security reviewed"

[[pin]]
name = "io.github.exa-labs/exa-mcp-server"
version = "0.3.11"
reason = "the version security reviewed"
"""
HOSTILE_FILLS = ["evil.example/", "evil.example?", "evil.example#", "x@evil.example",
                 "evil.example\\", "..", "%2e%2e", "evil.example:1", "a/../../x"]
DOCUMENT_LISTS = {"managed": ("allowedMcpServers", "deniedMcpServers"),
                  "vscode": ("chat.mcp.allowedServers", "chat.mcp.deniedServers")}


# -- node ----------------------------------------------------------------------------


class Node:
    """One node process answering JSON lines, kept for the module."""

    def __init__(self, script: Path, *args: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed: VS Code's conversion and the matcher oracle"
                        " run in node")
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in close())
        self.process = subprocess.Popen([node, str(script), *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                        encoding="utf-8")

    def ask_many(self, requests: list[dict]) -> list[dict]:
        def write() -> None:
            for request in requests:
                self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()

        writer = threading.Thread(target=write)  # node answers while we write: no pipe deadlock
        writer.start()
        answers = []
        for _ in requests:
            line = self.process.stdout.readline()
            if not line:
                self.errors.seek(0)
                pytest.fail(f"node exited {self.process.wait()}:\n{self.errors.read()[-3000:]}")
            answers.append(json.loads(line))
        writer.join()
        return answers

    def ask(self, request: dict) -> dict:
        return self.ask_many([request])[0]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.errors.close()


@pytest.fixture(scope="module")
def vscode():
    if not (MODULES / "@codingame" / "monaco-vscode-api").is_dir():
        pytest.skip(f"VS Code's code (@codingame/monaco-vscode-api) is not installed in {MODULES}:"
                    " run `make install` (it needs npm)")
    node = Node(HERE / "install_config.mjs", "--modules", str(MODULES))
    yield node
    node.close()


@pytest.fixture(scope="module")
def oracle():
    node = Node(HERE / "matcher_oracle.mjs")
    yield node
    node.close()


def argv(answer: dict) -> list[str] | None:
    """The command VS Code writes, or None when it throws or writes a remote."""
    config = answer.get("config")
    if not config or "command" not in config:
        return None
    return [config["command"], *(config.get("args") or [])]


def ours(package: Any) -> tuple[str, ...] | str:
    """Our command for one package, or the reason there is none."""
    found = server_matchers("t/t", "1", {"packages": [package]})
    return found.matchers[0].value if found.matchers else found.unmatched[0].reason


def alone(server: dict, package: Any) -> dict:
    """The server as if `package` were its only one: what installing that package reads."""
    kind = package.get("registryType") if isinstance(package, dict) else None
    request_type = kind if isinstance(kind, str) and kind != "remote" else "npm"
    return {"server": {**server, "packages": [package], "remotes": []}, "type": request_type}


def check(oracle: Node, document: dict, lists: str, identities: list[dict]) -> list[str]:
    allow_key, deny_key = DOCUMENT_LISTS[lists]
    answer = oracle.ask({"op": "check", "allow": document[allow_key], "deny": document[deny_key],
                         "identities": identities})
    whole = {"allow": len(document[allow_key]), "deny": len(document[deny_key])}
    assert answer["kept"] == whole, "the oracle's parse step dropped an entry as malformed"
    return answer["results"]


# -- building candidates as the wiring will ----------------------------------------------


def candidates(items: Iterable[dict], policy_text: str) -> list[Candidate]:
    """As render and export make them (mirror.governance over the policy's decisions)."""
    rows = sorted((row_from_item(item) for item in items), key=lambda row: row.key)
    return list(governance.candidates(decide_servers(rows, load(policy_text))))


def candidate(name: str, version: str = "1.0.0", *, admitted: bool = True,
              status: str = "active", latest: bool = True, **server: Any) -> Candidate:
    server = {"name": name, "version": version, **server}
    return Candidate(name, version, status, admitted, latest, server)


def npm(identifier: str, version: str = "1.0.0", **extra: Any) -> dict:
    return {"registryType": "npm", "identifier": identifier, "version": version,
            "transport": {"type": "stdio"}, **extra}


def remote(url: str, kind: str = "streamable-http") -> dict:
    return {"type": kind, "url": url}


# -- 1. commands: parity with VS Code's own conversion ---------------------------------

def positional(value: str | None = None, **more: Any) -> dict:
    return {"type": "positional", **({"value": value} if value is not None else {}), **more}


def args(*items: dict, key: str = "packageArguments") -> dict:
    return {key: list(items)}


HOSTILE_PACKAGES: dict[str, tuple[Any, str]] = {  # id: (package, "exact" | "input" | "refused")
    "quotes": (npm("@acme/srv", registryBaseUrl="https://npm.acme.example",
                   runtimeArguments=[positional('--opt="a b"'),
                                     {"type": "named", "name": "--x", "value": "it's"}],
                   **args(positional("\"'\\\n"))), "exact"),
    "brace-var": (npm("srv", **args(positional("--dir={v}", variables={"v": {"default": "d"}}))),
                  "input"),
    "brace-undeclared": (npm("srv", **args(positional("{v}"))), "exact"),
    "dollar-brace": (npm("srv", **args(positional("${HOME}/x"))), "refused"),
    "dollar-name": (npm("srv", **args(positional("$TOKEN"), key="runtimeArguments")), "refused"),
    "input-literal": (npm("srv", **args(positional("${input:x}"))), "refused"),
    "replace-pattern": (npm("srv", **args(positional("$&{v}$'", variables={"v": {}}))), "input"),
    "hint-described": (npm("srv", **args(positional(valueHint="path", description="where"))),
                       "input"),
    "hint-default-null": (npm("srv", **args(positional(valueHint="p", default=None))), "input"),
    "hint-only": (npm("srv", **args(positional(valueHint="stdio"))), "exact"),
    "positional-empty": (npm("srv", **args(positional())), "exact"),
    "named-described": (npm("srv", **args({"type": "named", "name": "--port",
                                           "description": "port"})), "input"),
    "named-flag": (npm("srv", **args({"type": "named", "name": "--verbose"})), "exact"),
    "named-nameless": (npm("srv", **args({"type": "named", "value": "x"})), "refused"),
    "arg-type-unknown": (npm("srv", **args({"type": "flag", "value": "x"})), "refused"),
    "pypi-index": ({"registryType": "pypi", "identifier": "srv", "version": "2.0",
                    "registryBaseUrl": "https://pypi.acme.example/simple",
                    "runtimeHint": "python"}, "exact"),
    "oci-env-order": ({"registryType": "oci", "identifier": "acme/srv",
                       "registryBaseUrl": "ghcr.io", "environmentVariables": [
                           {"name": "B"}, {"name": "10"}, {"name": "__proto__"}, {"name": "0"},
                           {"name": "B", "value": "x"},
                           {"name": "A", "value": "{t}", "variables": {"t": {}}}],
                       "runtimeArguments": [{"type": "named", "name": "--network",
                                             "value": "host"}]}, "exact"),
    "oci-version": ({"registryType": "oci", "identifier": "docker.io/acme/srv", "version": "1.2"},
                    "exact"),
    "nuget-args": ({"registryType": "nuget", "identifier": "Acme.Srv", "version": "1.0.8",
                    "registryBaseUrl": "https://nuget.acme.example/v3/index.json",
                    **args(positional("--stdio"))}, "exact"),
    "nuget-empty-args": ({"registryType": "nuget", "identifier": "Acme.Srv", **args()}, "exact"),
    "mcpb": ({"registryType": "mcpb", "identifier": "https://x.example/a.mcpb", "version": "1"},
             "refused"),
    "cargo": ({"registryType": "cargo", "identifier": "srv", "version": "1"}, "refused"),
    "no-identifier": ({"registryType": "npm", "version": "1"}, "refused"),
    "version-number": ({"registryType": "npm", "identifier": "srv", "version": 1}, "refused"),
    "args-string": (npm("srv", runtimeArguments="-y"), "refused"),
    "env-null": (npm("srv", environmentVariables=[None]), "refused"),
    "variables-null": (npm("srv", **args(positional("x", variables={"v": None}))), "refused"),
    "empty-version": (npm("srv", version=""), "exact"),
    "unicode-newline": (npm("sérvé", **args(positional("a\nb\u2028"))), "exact"),
    "http-transport": (npm("srv", transport={"type": "streamable-http",
                                             "url": "http://localhost:{port}/mcp"}), "exact"),
    "not-an-object": ("npm:srv", "refused"),
}


def test_every_sample_package_gets_the_command_vscode_writes(vscode):
    cases = [(item["server"], package)
             for item in SAMPLE for package in item["server"].get("packages") or []]
    answers = vscode.ask_many([alone(server, package) for server, package in cases])
    exact = 0
    for (server, package), answer in zip(cases, answers, strict=True):
        mine, theirs = ours(package), argv(answer)
        where = f"{server['name']}@{server['version']} {package['registryType']}"
        if isinstance(mine, tuple):
            exact += 1
            assert list(mine) == theirs, where
        elif theirs is not None and package["registryType"] in allowlist.COMMANDS:
            assert any("${input:" in part for part in theirs), f"{where}: refused: {mine}"
        else:
            assert package["registryType"] not in allowlist.COMMANDS, where
        if theirs is not None and any("${input:" in part for part in theirs):
            assert isinstance(mine, str) and "user input" in mine, where
    assert exact >= 80, "the sample has packages of every supported type: most get a command"


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKAGES))
def test_hostile_packages_get_vscodes_command_or_none(vscode, case):
    package, expected = HOSTILE_PACKAGES[case]
    theirs = argv(vscode.ask(alone({"name": "t/t", "version": "1"}, package)))
    mine = ours(package)
    if expected == "exact":
        assert isinstance(mine, tuple) and list(mine) == theirs
    else:
        assert isinstance(mine, str), f"{case}: emitted {mine}"
    if expected == "input":
        assert theirs is not None and any("${input:" in part for part in theirs)
        assert "user input" in mine
    if theirs is not None and any("${input:" in part for part in theirs):
        assert isinstance(mine, str)


def test_hostile_commands_are_as_vscode_builds_them():
    """The cases above, spelled out: what a reader checks the port against."""
    assert ours(HOSTILE_PACKAGES["quotes"][0]) == (
        "npx", '--opt="a b"', "--x", "it's", "--registry", "https://npm.acme.example",
        "@acme/srv@1.0.0", "\"'\\\n")
    assert ours(HOSTILE_PACKAGES["oci-env-order"][0]) == (
        "docker", "run", "-i", "--rm", "--network", "host", "-e", "0", "-e", "10", "-e", "B",
        "-e", "A", "ghcr.io/acme/srv")
    assert ours(HOSTILE_PACKAGES["nuget-args"][0]) == (
        "dnx", "Acme.Srv@1.0.8", "--yes", "--source", "https://nuget.acme.example/v3/index.json",
        "--", "--stdio")
    assert ours(HOSTILE_PACKAGES["pypi-index"][0]) == (
        "uvx", "--index-url", "https://pypi.acme.example/simple", "srv@2.0")
    assert ours(HOSTILE_PACKAGES["positional-empty"][0]) == ("npx", "srv@1.0.0", "")
    assert "Copilot blocks" in ours(HOSTILE_PACKAGES["dollar-brace"][0])
    assert "'mcpb'" in ours(HOSTILE_PACKAGES["mcpb"][0])


# -- 2. the matcher oracle over a policy on the sample ----------------------------------


def fill(url: str, value: str | None = None, variables: dict | None = None) -> str:
    """A remote URL with its template variables given values: each default, else `value`."""
    def one(match: re.Match) -> str:
        spec = (variables or {}).get(match.group(1))
        if value is None and isinstance(spec, dict) and isinstance(spec.get("default"), str):
            return spec["default"]
        return value or "sample1"
    return re.sub(r"\{([A-Za-z0-9_.-]+)\}", one, url)


def install_identities(vscode: Node, c: Candidate) -> list[tuple[str, dict]]:
    """(source, identity) of every way the client installs this version: VS Code's own
    install (packages[0], else remotes[0]), each package as if installed, each remote as
    written and with its variables filled."""
    server, out = c.server, []
    packages, remotes = server.get("packages") or [], server.get("remotes") or []
    requests = [alone(server, package) for package in packages]
    if packages:
        requests.append({"server": server, "type": packages[0]["registryType"]})
    answers = vscode.ask_many(requests)
    installs = [*enumerate(answers[:len(packages)]), *([(0, answers[-1])] if packages else [])]
    for n, answer in installs:
        if argv(answer) is not None:
            source = f"packages[{n}] ({packages[n]['registryType']})"
            out.append((source, {"name": c.name, "command": argv(answer)}))
    for n, entry in enumerate(remotes):
        for url in dict.fromkeys([entry["url"], fill(entry["url"], None, entry.get("variables"))]):
            out.append((f"remotes[{n}]", {"name": c.name, "url": url}))
    return out


@pytest.fixture(scope="module")
def sample_candidates() -> list[Candidate]:
    return candidates(SAMPLE, POLICY)


@pytest.fixture(scope="module")
def sample_lists(sample_candidates) -> Allowlists:
    return Allowlists.build(sample_candidates)


@pytest.mark.parametrize("lists", sorted(DOCUMENT_LISTS))
def test_every_admitted_install_is_allowed_and_every_excluded_denied(
        vscode, oracle, sample_candidates, sample_lists, lists):
    document = (sample_lists.managed_settings() if lists == "managed"
                else sample_lists.vscode_settings())
    noted = {(n.name, n.version) for n in sample_lists.notes}
    withheld = {(n.name, n.version) for n in sample_lists.notes if "withheld" in n.text}
    admitted_names = {c.name for c in sample_candidates if c.admitted and c.status != "deleted"}
    tally = {"Allowed": 0, "Denied": 0, "NotAllowed": 0}
    for c in sample_candidates:
        found = server_matchers(c.name, c.version, c.server)
        exact = {m.source.removesuffix(" (default port)") for m in found.matchers}
        pairs = install_identities(vscode, c)
        results = check(oracle, document, lists, [identity for _, identity in pairs])
        allowed = c.admitted and c.status in ("active", "deprecated")
        for (source, identity), result in zip(pairs, results, strict=True):
            tally[result] += 1
            where = f"{c.name}@{c.version} {source} {identity}"
            if allowed:
                assert result == ("Allowed" if source in exact else "NotAllowed"), where
                assert source in exact or (c.name, c.version) in noted, where
            elif source in exact and not from_source(found, source) & sample_lists.withheld.keys():
                assert result == "Denied", where
            elif source in exact:  # withheld: the same entry as an admitted server's
                assert (c.name, c.version) in withheld, where
            elif lists == "vscode" and c.name not in admitted_names:
                assert result == "Denied", f"{where}: the serverName deny entry"
            else:
                assert result != "Allowed", where
                assert (c.name, c.version) in noted, f"{where}: left out without a note"
    assert tally["Allowed"] > 100 and tally["Denied"] > 10, tally
    assert withheld >= {("com.example.weather/Forecast-API", "1.1.0"),
                        ("io.github.exa-labs/exa-mcp-server", "0.3.12")}


def from_source(found, source: str) -> set:
    """The (key, value) entries one remote or package gave."""
    return {(m.key, m.value) for m in found.matchers
            if m.source.removesuffix(" (default port)") == source}


def attacks(pattern: str) -> list[str]:
    """URLs on other hosts that a careless pattern would admit."""
    scheme, rest = pattern.split("://", 1)
    authority, path = rest.split("/", 1)
    host = authority.split(":")[0].replace("*", "x")
    path = "/" + path.replace("*", "x")
    tricks = [f"{scheme}://{trick}" for trick in (
        f"attacker.example{path}", f"{host}.evil.example{path}", f"{host}@evil.example{path}",
        f"attacker.example/{host}{path}", f"attacker.example/?{host}{path}",
        f"attacker.example#{host}{path}", f"{host}:x@evil.example{path}",
        f"evil.example\\{host}{path}")]
    if "*" in authority:
        tricks += [f"{scheme}://" + rest.replace("*", fill_value, 1).replace("*", "x")
                   for fill_value in HOSTILE_FILLS]
    return tricks


def test_no_allow_entry_admits_another_host(oracle, sample_lists):
    document = sample_lists.managed_settings()
    patterns = [e["serverUrl"] for e in document["allowedMcpServers"] if "serverUrl" in e]
    assert any("*" in p.split("/")[2] for p in patterns), "the sample has a host template"
    for pattern in patterns:
        urls = attacks(pattern)
        parsed = oracle.ask({"op": "destination", "urls": urls})
        results = check(oracle, {"allowedMcpServers": [{"serverUrl": pattern}],
                                 "deniedMcpServers": []},
                        "managed", [{"name": "x", "url": url} for url in urls])
        for url, host, result in zip(urls, parsed["hostnames"], results, strict=True):
            if result == "Allowed":
                assert on_host(host, pattern), f"{pattern} admits {url} (host {host})"


def on_host(hostname: str | None, pattern: str) -> bool:
    """Whether a URL's host is the pattern's host, or under its fixed suffix (templates)."""
    host = pattern.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    if hostname is None or "*" not in host:
        return hostname == host
    labels = host.rstrip(".").split(".")
    fixed = labels[max(n for n, label in enumerate(labels) if "*" in label) + 1:]
    return len(fixed) >= 2 and hostname.rstrip(".").endswith("." + ".".join(fixed))


def test_the_sample_documents_as_built(sample_lists):
    managed, vscode_doc = sample_lists.managed_settings(), sample_lists.vscode_settings()
    allow = managed["allowedMcpServers"]
    assert {"serverUrl": "https://*.forecast.example.com/mcp"} in allow
    assert {"serverCommand": ["npx", "airtable-mcp-server@1.10.1"]} in allow
    assert {"serverCommand": ["dnx", "TimeMcpServer@1.0.8", "--yes"]} in allow
    deleted = ["npx", "--registry", "https://registry.npmjs.org", "wallet-recovery-mcp@1.0.1"]
    assert {"serverCommand": deleted} in managed["deniedMcpServers"]
    withheld = {"serverUrl": "https://forecast.example.com/sse"}  # pinned 1.2.0 has it too
    assert withheld not in managed["deniedMcpServers"]
    assert vscode_doc["chat.mcp.allowedServers"] == allow
    names = [e["serverName"] for e in vscode_doc["chat.mcp.deniedServers"] if "serverName" in e]
    assert names == sorted(names) and "io.github.fr33-crypto/wallet-recovery-mcp" in names
    assert "com.example.weather/Forecast-API" not in names  # a pinned version is admitted
    assert not any("serverName" in entry for entry in [*allow, *managed["deniedMcpServers"]])
    order = sorted(allow, key=lambda e: (next(iter(e)) != "serverUrl", next(iter(e.values()))))
    assert allow == order
    assert any("withheld" in n.text and "Forecast-API@1.2.0" in n.text for n in sample_lists.notes)


# -- decisions, one by one ---------------------------------------------------------


def test_allow_is_admitted_active_or_deprecated_and_deny_the_rest():
    built = Allowlists.build([
        candidate("a/active", packages=[npm("active")]),
        candidate("a/deprecated", status="deprecated", packages=[npm("deprecated")]),
        candidate("a/deleted", status="deleted", packages=[npm("deleted")]),
        candidate("a/excluded", admitted=False, packages=[npm("excluded")]),
        candidate("a/excluded-deprecated", admitted=False, status="deprecated",
                  packages=[npm("xd")]),
    ]).managed_settings()
    assert built == {
        "allowedMcpServers": [{"serverCommand": ["npx", "active@1.0.0"]},
                              {"serverCommand": ["npx", "deprecated@1.0.0"]}],
        "deniedMcpServers": [{"serverCommand": ["npx", "deleted@1.0.0"]},
                             {"serverCommand": ["npx", "excluded@1.0.0"]},
                             {"serverCommand": ["npx", "xd@1.0.0"]}]}


def test_each_version_is_pinned_and_entries_are_deduplicated():
    built = Allowlists.build([
        candidate("a/s", "1.0.0", latest=False, packages=[npm("s", "1.0.0")],
                  remotes=[remote("https://s.example/mcp")]),
        candidate("a/s", "1.1.0", packages=[npm("s", "1.1.0")],
                  remotes=[remote("https://S.example:443/mcp")]),
    ]).managed_settings()
    assert built["allowedMcpServers"] == [{"serverUrl": "https://s.example/mcp"},
                                          {"serverCommand": ["npx", "s@1.0.0"]},
                                          {"serverCommand": ["npx", "s@1.1.0"]}]


def test_a_deny_entry_that_would_block_an_admitted_server_is_withheld_with_a_note():
    built = Allowlists.build([
        candidate("a/s", "1.0.0", admitted=False, remotes=[remote("https://s.example/mcp")],
                  packages=[npm("shared", "1")]),
        candidate("a/s", "2.0.0", remotes=[remote("https://s.example/mcp")]),
        candidate("b/other", admitted=False, remotes=[remote("https://api.t.example/mcp")]),
        candidate("b/tenant", remotes=[remote("https://{tenant}.t.example/mcp")]),
        candidate("c/same-package", packages=[npm("shared", "1")]),
    ])
    assert built.managed_settings()["deniedMcpServers"] == []
    texts = [str(n) for n in built.notes if "withheld" in n.text]
    assert any(t.startswith("a/s@1.0.0: deny entry serverUrl https://s.example/mcp")
               and "a/s@2.0.0" in t for t in texts)
    assert any(t.startswith("a/s@1.0.0: deny entry serverCommand")
               and "c/same-package@1.0.0" in t for t in texts)
    assert any(t.startswith("b/other@1.0.0") and "b/tenant@1.0.0" in t for t in texts)
    assert any(n.name == "a/s" and "serverName" in n.text for n in built.notes)
    assert built.vscode_settings()["chat.mcp.deniedServers"] == [{"serverName": "b/other"}]


def test_names_deny_only_in_vscodes_format_and_never_allow():
    built = Allowlists.build([candidate("a/gone", status="deleted", packages=[npm("gone")]),
                              candidate("a/kept", packages=[npm("kept")])])
    assert built.vscode_settings()["chat.mcp.deniedServers"] == [
        {"serverCommand": ["npx", "gone@1.0.0"]}, {"serverName": "a/gone"}]
    assert built.vscode_settings()["chat.mcp.allowedServers"] == [
        {"serverCommand": ["npx", "kept@1.0.0"]}]
    assert "serverName" not in dumps(built.managed_settings()).decode()


def test_a_policy_that_admits_nothing_blocks_every_server(oracle):
    built = Allowlists.build(candidates(SAMPLE, 'exclude = ["*/*"]'))
    managed = built.managed_settings()
    assert managed["allowedMcpServers"] == [] and len(managed["deniedMcpServers"]) > 50
    assert built.claude_managed_mcp() == {"mcpServers": {}}
    assert any(n.name == "" and "admits no server" in n.text for n in built.notes)  # noted
    identities = [{"name": "x/y", "command": ["npx", "anything"]},
                  {"name": "x/y", "url": "https://a.example/"}]
    assert check(oracle, managed, "managed", identities) == ["NotAllowed", "NotAllowed"]


URLS = [  # server.json URL -> patterns, or the start of the reason there is none
    ("https://{tenant_id}.brightsec.com/mcp", ["https://*.brightsec.com/mcp"]),
    ("https://mcp.zeroheight.com/mcp/{token}", ["https://mcp.zeroheight.com/mcp/*"]),
    ("https://www.searchapi.io/mcp?token={api_token}", ["https://www.searchapi.io/mcp?token=*"]),
    ("https://h.example:{port}/mcp", ["https://h.example:*/mcp", "https://h.example/mcp"]),
    ("HTTPS://User:pw@Bücher.DE:0443/a/./b/../c/é?q='x'#frag",
     ["https://xn--bcher-kva.de/a/c/%C3%A9?q=%27x%27"]),
    ("https://api.example.com", ["https://api.example.com/"]),
    ("http://api.example.com:80/x?", ["http://api.example.com/x"]),
    ("https://api.example.com:8443/a\\b/%2E%2e/c", ["https://api.example.com:8443/a/c"]),
    ("https://api.example.com./mcp", ["https://api.example.com./mcp"]),
    ("https://10.0.0.1/mcp", ["https://10.0.0.1/mcp"]),
    ("https://{endpoint}/mcp", "a host template"),
    ("https://{HAPI_FQDN}:{HAPI_PORT}/mcp", "a host template"),
    ("https://{x}.com/mcp", "a host template"),
    ("https://{x}example.com/mcp", "a host template"),
    ("https://{x}-api.example.com/mcp", "a host template"),
    ("https://api.example.com/*", "the URL holds a literal '*'"),
    ("https://api.example.com/${TOKEN}", "the URL holds '$'"),
    ("https://api.example.com/$TOKEN", "the URL holds '$'"),
    ("ftp://api.example.com/", "not an http(s)"),
    ("https:api.example.com/", "not an http(s)"),
    ("{base}/mcp", "not an http(s)"),
    ("https://a b.example/", "the URL holds spaces"),
    ("https://api.example.com/a^b", "the URL holds characters URL parsers encode differently"),
    ("https://[::1]/mcp", "the URL holds characters URL parsers encode differently"),
    ("https://0x7f.1/", "the host is an IPv4 address"),
    ("https://api.example.com:99999/", "port 99999"),
    ("https://%65vil.example/", "the host is percent-encoded"),
    ("https://xn--.example/", "the host has a label that is not valid punycode"),
    (42, "the URL is not a non-empty string"),
]


@pytest.mark.parametrize(("url", "expected"), URLS, ids=[str(u) for u, _ in URLS])
def test_remote_urls(url, expected):
    found = server_matchers("a/b", "1", {"remotes": [{"type": "sse", "url": url}]})
    if isinstance(expected, list):
        assert [m.value for m in found.matchers] == expected and not found.unmatched
    elif expected is not None:
        assert not found.matchers, found.matchers
        assert found.unmatched[0].reason.startswith(expected), found.unmatched


def test_url_patterns_are_what_new_url_makes_of_the_url(oracle):
    """Every untemplated pattern of the table is node's `origin + pathname + search`."""
    plain = [(url, expected[0]) for url, expected in URLS
             if isinstance(expected, list) and "{" not in url]
    answer = oracle.ask({"op": "destination", "urls": [url for url, _ in plain]})
    assert answer["destinations"] == [pattern for _, pattern in plain]


def test_a_port_template_is_allowed_on_any_port_of_that_host_only(oracle):
    built = Allowlists.build([candidate("a/p", remotes=[remote("https://h.example:{port}/mcp")])])
    document = built.managed_settings()
    urls = ["https://h.example:8443/mcp", "https://h.example:443/mcp", "https://h.example/mcp",
            "https://h.example:1@evil.example/mcp", "https://evil.example:8443/mcp"]
    results = check(oracle, document, "managed", [{"name": "a/p", "url": url} for url in urls])
    assert results == ["Allowed", "Allowed", "Allowed", "NotAllowed", "NotAllowed"]


def test_describe_lists_matchers_and_what_has_none():
    found = server_matchers("a/b", "1.0.0", {
        "remotes": [remote("https://{endpoint}/mcp"), remote("https://a.example/mcp")],
        "packages": [npm("b"), {"registryType": "mcpb", "identifier": "x"}]})
    assert found.matchers == (
        Matcher("serverUrl", "https://a.example/mcp", "remotes[1]", "streamable-http"),
        Matcher("serverCommand", ("npx", "b@1.0.0"), "packages[0] (npm)"))
    assert found.unmatched[1] == Unmatched(
        "packages[1] (mcpb)",
        "registryType 'mcpb': VS Code's conversion writes no runnable command")
    assert found.describe() == [
        "a/b@1.0.0",
        "  serverUrl https://a.example/mcp  (remotes[1])",
        '  serverCommand ["npx","b@1.0.0"]  (packages[0] (npm))',
        f"  no exact entry for remotes[0]: {found.unmatched[0].reason}",
        f"  no exact entry for packages[1] (mcpb): {found.unmatched[1].reason}"]


@pytest.mark.parametrize("server", [None, [], "x", {"remotes": "x", "packages": {"a": 1}},
                                    {"remotes": [None, 1], "packages": [None, []]}])
def test_any_shape_of_server_is_described_not_raised(server):
    found = server_matchers("a/b", "1", server)
    assert not found.matchers
    assert isinstance(found.describe(), list)


def test_claude_gets_the_latest_admitted_version_remote_first():
    built = Allowlists.build([
        candidate("io.acme/remote", "1.0.0", latest=False,
                  remotes=[remote("https://old.acme.example/mcp")]),
        candidate("io.acme/remote", "2.0.0", remotes=[remote("https://{t}.acme.example/mcp"),
                                                      remote("https://acme.example/sse", "sse")],
                  packages=[npm("acme", "2.0.0")]),
        candidate("io.acme/stdio",
                  packages=[{"registryType": "mcpb", "identifier": "x"}, npm("st")]),
        candidate("io.acme/http", remotes=[remote("https://acme.example/mcp")]),
        candidate("io.acme/nothing", packages=[{"registryType": "mcpb", "identifier": "x"}]),
        candidate("io.acme/excluded", admitted=False, packages=[npm("ex")]),
        candidate("io.acme.remote/x", packages=[npm("clash1")]),
        candidate("io-acme-remote/x", packages=[npm("clash2")]),
    ])
    assert built.claude_managed_mcp() == {"mcpServers": {
        "io-acme-remote_x": {"type": "stdio", "command": "npx", "args": ["clash2@1.0.0"]},
        "io-acme-remote_x-2": {"type": "stdio", "command": "npx", "args": ["clash1@1.0.0"]},
        "io-acme_http": {"type": "http", "url": "https://acme.example/mcp"},
        "io-acme_remote": {"type": "sse", "url": "https://acme.example/sse"},
        "io-acme_stdio": {"type": "stdio", "command": "npx", "args": ["st@1.0.0"]},
    }}
    assert any(n.name == "io.acme/nothing" and n.only == "claude-managed-mcp" and "left out" in n.text
               for n in built.notes)


def test_dumps_is_deterministic_indented_json():
    document = {"allowedMcpServers": [{"serverCommand": ["npx", "é\"x"]}], "deniedMcpServers": []}
    text = dumps(document)
    assert text.endswith(b"}\n") and b'\n  "allowedMcpServers": [\n' in text
    assert json.loads(text) == document and dumps(json.loads(text)) == text


# -- 3. properties -----------------------------------------------------------------

LABELS = st.one_of(st.text("abXY09-_", min_size=1, max_size=5),
                   st.sampled_from(["ü", "faß", "xn--bcher-kva", "123", "0x7f", "{t}", "a{t}",
                                    "{t}b", "{t}-x"]))
SEGMENTS = st.one_of(st.text("aZ.%2eE'\"<>`é\\-", max_size=5),
                     st.sampled_from(["{v}", "..", ".", "%2e", "%2E%2e", "mcp", "a{v}b"]))
TEMPLATES = st.builds(
    lambda scheme, user, labels, dot, port, segments, query, fragment:
        f"{scheme}://{user}{'.'.join(labels)}{dot}{port}"
        f"{'/'.join(['', *segments]) if segments else ''}{query}{fragment}",
    st.sampled_from(["https", "http", "HTTPS", "ftp"]),
    st.sampled_from(["", "u@", "u:p@", "{t}@", "a@b@", "good.example@"]),
    st.lists(LABELS, min_size=1, max_size=4),
    st.sampled_from(["", "."]),
    st.sampled_from(["", ":443", ":80", ":8443", ":{port}", ":0443", ":", ":99999",
                     ":8{port}"]),
    st.lists(SEGMENTS, max_size=4),
    st.sampled_from(["", "?", "?q={v}", "?a='b'&c=\"d\"", "?é=é", "?x=1"]),
    st.sampled_from(["", "#f", "#{v}"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(template=TEMPLATES, hostile=st.sampled_from(HOSTILE_FILLS))
def test_url_patterns_admit_their_server_and_no_other_host(oracle, template, hostile):
    found = server_matchers("a/b", "1", {"remotes": [{"type": "sse", "url": template}]})
    if not found.matchers:  # refused: the reason is stated, nothing broader is emitted
        assert len(found.unmatched) == 1 and found.unmatched[0].reason
        return
    patterns = [m.value for m in found.matchers]
    document = {"allowedMcpServers": [{"serverUrl": p} for p in patterns],
                "deniedMcpServers": []}
    honest = [fill(template, value) for value in ("8443", "443")]
    urls = honest + [fill(template, hostile)] + [url for p in patterns for url in attacks(p)]
    parsed = oracle.ask({"op": "destination", "urls": urls})
    results = check(oracle, document, "managed", [{"name": "a/b", "url": url} for url in urls])
    hosts = parsed["hostnames"]
    for n, (url, host, result) in enumerate(zip(urls, hosts, results, strict=True)):
        if n < len(honest) and host is not None:
            assert result == "Allowed", f"{template} -> {patterns}: its own {url} is not allowed"
        if result == "Allowed":
            assert any(on_host(host, p) for p in patterns), f"{patterns} admit {url} ({host})"


URL_TEXT = st.builds(lambda start, rest: start + "".join(rest),
                     st.sampled_from(["https://", "http://", "HTTP://", "https:/", "https:"]),
                     st.lists(st.sampled_from([*"aZ09.-_~:/\\?#@%[]{}^`|'\"<>!$&()*+,;=",
                                               *"é€ßü。\u00ad ", "%2e", "%41", "xn--", "0x", "..",
                                               "%zz"]), max_size=25))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=URL_TEXT)
def test_an_untemplated_pattern_is_what_new_url_makes_of_the_url(oracle, url):
    found = server_matchers("a/b", "1", {"remotes": [{"url": url}]})
    if found.matchers and "{" not in url:
        destination = oracle.ask({"op": "destination", "urls": [url]})["destinations"][0]
        assert [m.value for m in found.matchers] == [destination]


TEXT = st.one_of(st.text(st.sampled_from(list("ab\"' ${}:-=_/\\é0")), max_size=8),
                 st.sampled_from(["{v}", "${v}", "$V", "${input:v}", "$&{v}", "", "--"]))
VARIABLES = st.dictionaries(st.sampled_from(["v", "w", "0"]), st.just({}), max_size=2)
ARGUMENT = st.fixed_dictionaries(
    {"type": st.sampled_from(["positional", "named", "positional", "named", "other"])},
    optional={"value": st.none() | TEXT, "valueHint": TEXT, "name": TEXT, "description": TEXT,
              "default": st.none() | TEXT, "variables": VARIABLES})
PACKAGE = st.fixed_dictionaries(
    {"registryType": st.sampled_from(["npm", "pypi", "oci", "nuget", "mcpb"]), "identifier": TEXT},
    optional={"version": st.none() | TEXT, "registryBaseUrl": TEXT, "runtimeHint": TEXT,
              "runtimeArguments": st.lists(ARGUMENT, max_size=3),
              "packageArguments": st.lists(ARGUMENT, max_size=3),
              "environmentVariables": st.lists(st.fixed_dictionaries(
                  {"name": st.sampled_from(["A", "0", "10", "__proto__", "B", ""])},
                  optional={"value": TEXT, "variables": VARIABLES}), max_size=3)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(package=PACKAGE)
def test_hostile_arguments_get_vscodes_command_or_none(vscode, oracle, package):
    theirs = argv(vscode.ask(alone({"name": "t/t", "version": "1"}, package)))
    mine = ours(package)
    if isinstance(mine, tuple):
        assert list(mine) == theirs
        document = Allowlists.build([candidate("t/t", packages=[package])]).managed_settings()
        assert json.loads(dumps(document)) == document
        identity = {"name": "t/t", "command": theirs}
        assert check(oracle, document, "managed", [identity]) == ["Allowed"]
    if theirs is not None and any("${input:" in part for part in theirs):
        assert isinstance(mine, str)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picks=st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.booleans(), st.booleans(),
                                st.sampled_from(["active", "deprecated", "deleted"])), max_size=30),
       extra=st.lists(st.tuples(TEMPLATES, PACKAGE, st.booleans()), max_size=5))
def test_documents_are_always_whole_valid_json(oracle, picks, extra):
    servers = [SAMPLE[i]["server"] for i, *_ in picks]
    chosen = [Candidate(server["name"], server["version"], status, admitted, latest, server)
              for server, (_, admitted, latest, status) in zip(servers, picks, strict=True)]
    chosen += [candidate(f"x.y/h{n}", remotes=[remote(url)], packages=[package], admitted=admitted)
               for n, (url, package, admitted) in enumerate(extra)]
    built = Allowlists.build(chosen)
    for lists in DOCUMENT_LISTS:
        document = built.managed_settings() if lists == "managed" else built.vscode_settings()
        assert json.loads(dumps(document)) == document
        check(oracle, document, lists, [])  # asserts the parse step keeps every entry
    claude = json.loads(dumps(built.claude_managed_mcp()))["mcpServers"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", key) for key in claude)


# -- 4. 10,000+ servers --------------------------------------------------------------


def many(count: int) -> list[Candidate]:
    out = []
    for n in range(count):
        name = f"io.example.n{n:05d}/server-{n}"
        server: dict = {"name": name, "version": "1.0.0", "packages": [npm(f"@example/server-{n}")]}
        if n % 3 == 0:
            server["remotes"] = [remote(f"https://s{n}.example.com/mcp")]
        if n % 5 == 0:  # thousands of servers on one host, as on hosting platforms
            server["remotes"] = [remote(f"https://server.shared.example/s{n}/mcp")]
        if n % 7 == 0:
            server["remotes"] = [remote(f"https://{{tenant}}.s{n}.example.com/mcp/{{token}}")]
        out.append(Candidate(name, "1.0.0", "active", n % 10 != 9, True, server))
    return out


def argv_of(c: Candidate) -> list[str]:
    return ["npx", f"{c.server['packages'][0]['identifier']}@1.0.0"]


def test_ten_thousand_servers_are_built_whole_and_deterministic(oracle):
    servers = many(11_200)
    assert sum(c.admitted for c in servers) >= 10_000
    built = Allowlists.build(servers)
    shuffled = servers[:]
    random.Random(7).shuffle(shuffled)
    again = Allowlists.build(iter(shuffled))
    documents = {"managed": built.managed_settings(), "vscode": built.vscode_settings()}
    for lists, document in documents.items():
        text = dumps(document)
        assert json.loads(text) == document
        same = again.managed_settings() if lists == "managed" else again.vscode_settings()
        assert text == dumps(same)
        sampled = [c for n, c in enumerate(servers) if n % 89 == 0 or n % 100 == 99]
        identities = [{"name": c.name, "command": argv_of(c)} for c in sampled]
        identities += [{"name": c.name, "url": fill(c.server["remotes"][0]["url"])}
                       for c in sampled if "remotes" in c.server]
        expected = ["Allowed" if c.admitted else "Denied" for c in sampled]
        expected += ["Allowed" if c.admitted else "Denied"
                     for c in sampled if "remotes" in c.server]
        assert check(oracle, document, lists, identities) == expected
    assert built.withheld == {} and len(built.managed_settings()["deniedMcpServers"]) > 1_500
    claude = dumps(built.claude_managed_mcp())
    assert claude == dumps(again.claude_managed_mcp())
    assert [str(n) for n in built.notes] == [str(n) for n in again.notes]
    # The sizes for 11,200 servers (10,080 admitted, 1,120 denied): about 1.5 MB each. No
    # format states a cap; the output grows by a fixed amount per server.
    sizes = {"managed-settings.json": len(dumps(documents["managed"])),
             "settings.json keys": len(dumps(documents["vscode"])),
             "managed-mcp.json": len(claude)}
    assert sizes == {"managed-settings.json": 1_512_517, "settings.json keys": 1_585_338,
                     "managed-mcp.json": 1_401_188}, sizes
    assert all(size < 160 * len(servers) for size in sizes.values())
