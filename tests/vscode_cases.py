"""Hand-made server.jsons for VS Code's install conversion (mirror/vscode.py), shared by
tests/test_vscode.py and tests/test_catalog.py, and the node process that answers for VS Code.

Each case is (server fields, what VS Code's conversion does for the package type its gallery
install asks for, the package type the catalog's snippet is made for or None):
- "exact": VS Code writes an entry it can run, and the port writes the same;
- "throws": VS Code throws;
- "refused": VS Code writes something, but nothing it can run (an mcpb or unknown type) or
  only by coercing a malformed field; the port refuses it.
"""

from __future__ import annotations

import json
from typing import Any

from hostile import BIDI, SCRIPT
from test_allowlist import HERE, MODULES, Node

from mirror import vscode

RUNNABLE = set(vscode.COMMANDS.values())


def npm(identifier: str = "srv", version: str = "1.0.0", **extra: Any) -> dict:
    return {"registryType": "npm", "identifier": identifier, "version": version,
            "transport": {"type": "stdio"}, **extra}


def positional(value: str | None = None, **more: Any) -> dict:
    return {"type": "positional", **({"value": value} if value is not None else {}), **more}


def named(name: str | None, value: str | None = None, **more: Any) -> dict:
    return {"type": "named", **({"name": name} if name is not None else {}),
            **({"value": value} if value is not None else {}), **more}


REMOTE = {"type": "streamable-http", "url": "https://mcp.example.com/mcp"}
MCPB = {"registryType": "mcpb", "identifier": "https://example.com/x.mcpb", "version": "1",
        "fileSha256": "a" * 64}

CASES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "npm-arguments-and-env": ({"packages": [npm(
        "@acme/srv", registryBaseUrl="https://npm.acme.example",
        runtimeArguments=[named("--node-options", "--max-old-space-size={mem}", variables={
            "mem": {"description": "memory", "default": "512", "choices": ["256", "512"]}})],
        packageArguments=[positional("serve"), positional(valueHint="path", description="the root"),
                          positional(valueHint="mode"), positional(valueHint="p", default=None),
                          named("--port", default=8080), named("-v"),
                          named("--token", description="a token", isSecret=True),
                          named("--dir", "{root}/x", variables={"root": {}})],
        environmentVariables=[
            {"name": "API_KEY", "isSecret": True, "description": "the key", "isRequired": True},
            {"name": "MODE", "value": "fast"}, {"name": "REGION", "default": "eu"},
            {"name": "EMPTY"}, {"name": "CHOICE", "choices": []},
            {"name": "URL", "value": "https://{host}/x",
             "variables": {"host": {"default": "a", "isSecret": True}}}])]}, "exact", "npm"),
    "pypi-index-url": ({"packages": [{
        "registryType": "pypi", "identifier": "srv", "version": "2.0", "runtimeHint": "python",
        "registryBaseUrl": "https://pypi.acme.example/simple",
        "environmentVariables": [{"name": "TOKEN", "description": "token", "isSecret": True}]}]},
        "exact", "pypi"),
    "oci-env-order": ({"packages": [{
        "registryType": "oci", "identifier": "acme/srv", "version": "1.2",
        "registryBaseUrl": "ghcr.io",
        "runtimeArguments": [named("--network", "host"), named("-v", "{dir}:/data",
                                                                variables={"dir": {}})],
        "environmentVariables": [{"name": "B"}, {"name": "10"}, {"name": "__proto__"},
                                 {"name": "0", "value": "zero"}, {"name": "B", "value": "x"},
                                 {"name": "A", "value": "{t}", "variables": {"t": {}}}]}]},
        "exact", "oci"),
    "nuget-source": ({"packages": [{
        "registryType": "nuget", "identifier": "Acme.Srv", "version": "1.0.8",
        "registryBaseUrl": "https://nuget.acme.example/v3/index.json",
        "packageArguments": [positional("--stdio")]}]}, "exact", "nuget"),
    "replace-first-only": ({"packages": [npm(packageArguments=[
        positional("{v}-{v}", variables={"v": {}}),
        positional("{b}{10}{2}{a}", variables={"b": {}, "10": {}, "2": {}, "a": {}})])]},
        "exact", "npm"),
    "replace-specials": ({"packages": [npm(packageArguments=[
        positional("x{a$&b}y", variables={"a$&b": {}}),
        positional("<{p$`q$'r$$s}>", variables={"p$`q$'r$$s": {"description": "odd"}})])]},
        "exact", "npm"),
    "named-dashes": ({"packages": [npm(packageArguments=[
        named("---x", description="three dashes"), named("-y", default=None),
        named("z", description="")])]}, "exact", "npm"),
    "nameless-and-unknown-dropped": ({"packages": [npm(packageArguments=[
        named(None, "x"), {"type": "flag", "value": "y"}, positional("kept")])]}, "exact", "npm"),
    "brace-undeclared": ({"packages": [npm(packageArguments=[positional("{v}")])]}, "exact",
                         "npm"),
    "remote-headers": ({"remotes": [{
        "type": "streamable-http", "url": "https://{tenant}.example.com/mcp",
        "variables": {"tenant": {"description": "tenant", "default": "acme"}},
        "headers": [{"name": "Authorization", "isSecret": True, "description": "token"},
                    {"name": "X-Fixed", "value": "1"},
                    {"name": "X-Template", "value": "Bearer {key}",
                     "variables": {"key": {"isSecret": True, "description": "key"}}},
                    {"name": "X-Empty"}, {"name": "X-Default", "default": "d"}]}]},
        "exact", "remote"),
    "remote-sse": ({"remotes": [{"type": "sse", "url": "https://sse.example.com/sse"},
                                REMOTE]}, "exact", "remote"),
    "copilot-drops-authorization": ({"remotes": [{
        "type": "streamable-http", "url": "https://api.githubcopilot.com/mcp/x",
        "headers": [{"name": "authorization", "description": "token"},
                    {"name": "X-A", "value": "a"}]}]}, "exact", "remote"),
    "empty-packages-remote": ({"packages": [], "remotes": [REMOTE]}, "exact", "remote"),
    "untyped-package-remote": ({"packages": [{"identifier": "x"}], "remotes": [REMOTE]},
                               "exact", "remote"),
    "npm-and-remote": ({"packages": [npm()], "remotes": [REMOTE]}, "exact", "npm"),
    "hostile-text": ({"packages": [npm(SCRIPT, BIDI, packageArguments=[
        positional(SCRIPT), named("--x", BIDI), positional(valueHint=SCRIPT, description=BIDI)],
        environmentVariables=[{"name": SCRIPT, "description": BIDI},
                              {"name": BIDI, "value": SCRIPT}])]}, "exact", "npm"),
    "percent-signs": ({"remotes": [{
        "type": "streamable-http", "url": "https://x.example.com/a%2Fb?q=100%",
        "headers": [{"name": "X-P", "value": "%41%zz%"}]}]}, "exact", "remote"),
    "unicode": ({"packages": [npm("sérvé", packageArguments=[
        positional("a\nb\u2028\U0001f600")])]}, "exact", "npm"),
    "mcpb-then-npm": ({"packages": [MCPB, npm()]}, "refused", "npm"),
    "mcpb-then-remote": ({"packages": [MCPB], "remotes": [REMOTE]}, "refused", "remote"),
    "nothing": ({}, "throws", None),
    "remote-null": ({"remotes": [None]}, "throws", None),
    "remote-url-number": ({"remotes": [{"type": "sse", "url": 5}]}, "throws", None),
    "null-package-first": ({"packages": [None, npm()]}, "throws", None),
    "variables-null": ({"packages": [npm(packageArguments=[
        positional("x", variables={"v": None})])]}, "throws", None),
    "env-null": ({"packages": [npm(environmentVariables=[None])]}, "throws", None),
    "copilot-nameless-header": ({"remotes": [{
        "type": "streamable-http", "url": "https://api.githubcopilot.com/mcp/",
        "headers": [{"value": "x"}]}]}, "throws", None),
    "mcpb-only": ({"packages": [MCPB]}, "refused", None),
    "cargo": ({"packages": [{"registryType": "cargo", "identifier": "srv", "version": "1"}]},
              "refused", None),
    "version-number": ({"packages": [npm(version=1)]}, "refused", None),
    "args-string": ({"packages": [npm(runtimeArguments="-y")]}, "refused", None),
    "headers-string": ({"remotes": [{**REMOTE, "headers": "ab"}]}, "refused", None),
}


def kinds(server: Any) -> list[str]:
    """The package types worth asking for: the gallery's, every package's, and "remote"."""
    packages = server.get("packages") if isinstance(server, dict) else None
    packages = packages if isinstance(packages, list) else []
    found = [vscode.gallery_package_type(server) if isinstance(server, dict) else "remote",
             *(p.get("registryType") for p in packages if isinstance(p, dict)), "remote"]
    return list(dict.fromkeys(k for k in found if isinstance(k, str)))


def node() -> Node:
    return Node(HERE / "install_config.mjs", "--modules", str(MODULES))


def vscode_answer(answer: dict) -> dict | None:
    """Node's answer as ours reads: {config, inputs} (inputs [] when VS Code has none), or
    None when VS Code throws."""
    if "error" in answer:
        return None
    return {"config": answer["config"], "inputs": answer.get("inputs") or []}


def runnable(answer: dict) -> bool:
    """Whether VS Code wrote an entry that runs: a remote, or one of the four commands."""
    config = answer.get("config") or {}
    command = config.get("command")
    return "error" not in answer and (config.get("type") == "http"
                                      or isinstance(command, str) and command in RUNNABLE)


def ours(installation: vscode.Installation) -> dict:
    """Ours as node writes it (JSON: tuples are lists)."""
    return json.loads(json.dumps({"config": installation.config,
                                  "inputs": installation.inputs}))
