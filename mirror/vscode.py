"""What VS Code itself writes when it installs a server.json (issue #26, point 4).

A port of `AbstractCommonMcpManagementService.getMcpServerConfigurationFromManifest`
(src/vs/platform/mcp/common/mcpManagementService.ts, VS Code 1.128.1 as pinned in
tests/vscode_gallery/), rule for rule: the mcp.json server entry (`config`) and the `inputs`
it prompts for, as VS Code builds them, down to JavaScript's key order, truthiness and
`String.prototype.replace`. Pure; the server.json is untrusted.

It never guesses: a shape VS Code throws on, or would coerce (a number where a string goes
into the command or a key), or a registry type VS Code writes no runnable command for
(1.128.1 writes `command: "<type>"`, 1.138.0 throws), raises `NotInstallable`. What VS Code
leaves out without throwing (an argument neither positional nor named with a name) is left
out here too, and listed in `Installation.dropped`.

The allowlists (mirror/allowlist.py) take their `serverCommand` from `package_configuration`;
the catalog (mirror/render/catalog.py) shows `configuration` for the package VS Code's gallery
install picks (`gallery_package_type`) as its mcp.json snippet and install link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMMANDS = {"npm": "npx", "pypi": "uvx", "oci": "docker", "nuget": "dnx"}
REMOTE = "remote"  # RegistryType.REMOTE: the package type that asks for remotes[0]
COPILOT_MCP = "https://api.githubcopilot.com/mcp"  # VS Code drops its Authorization headers
MAX_VALUE_CHARS = 256 * 1024  # what `{var}` replacement may make of one value (the doc bound)
MAX_SCAN_CHARS = 16 * 1024 * 1024  # what the replacements of one value may scan
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_DASHES = re.compile(r"^--?")


class NotInstallable(Exception):
    """Why VS Code's conversion gives no usable entry: it throws, or the shape is one it
    would coerce or write no runnable command for."""


@dataclass(frozen=True)
class Installation:
    """VS Code's `mcpServerConfiguration`: `config` as mcp.json holds it under the server's
    name (keys in VS Code's order, its `undefined`s left out) and the `inputs` it adds."""

    config: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""  # "packages[1]" or "remotes[0]": which part of the server.json it is from
    dropped: tuple[str, ...] = ()  # arguments VS Code leaves out (it logs a notice, or nothing)

    @property
    def argv(self) -> tuple[str, ...] | None:
        """`[command, *args]` of a stdio entry; None for a remote."""
        if "command" not in self.config:
            return None
        return (self.config["command"], *self.config.get("args", ()))


def gallery_package_type(server: Mapping[str, Any]) -> Any:
    """The package type VS Code's gallery install asks for (mcpWorkbenchManagementService:
    `packages?.[0]?.registryType ?? "remote"`)."""
    packages = server.get("packages") if isinstance(server, Mapping) else None
    first = packages[0] if isinstance(packages, list) and packages else None
    kind = first.get("registryType") if isinstance(first, Mapping) else None
    return REMOTE if kind is None else kind


def configuration(server: Any, package_type: Any) -> Installation:
    """`getMcpServerConfigurationFromManifest(server, package_type)`: remotes[0] when the
    type is "remote" and there are remotes, else the first package of that type, else the
    first package."""
    if not isinstance(server, Mapping):
        raise NotInstallable("the server is not an object")
    remotes, packages = server.get("remotes"), server.get("packages")
    for key, value in (("remotes", remotes), ("packages", packages)):
        if value is not None and not isinstance(value, list):
            raise NotInstallable(f"malformed: {key} is not a list")
    if not isinstance(package_type, str):
        raise NotInstallable(f"package type {package_type!r}: VS Code's conversion writes no"
                             " runnable command")
    if package_type == REMOTE and remotes:
        return remote_configuration(remotes[0])
    for n, package in enumerate(packages or []):
        if package is None:
            raise NotInstallable(f"malformed: packages[{n}] is null (VS Code throws)")
        if isinstance(package, Mapping) and package.get("registryType") == package_type:
            return package_configuration(package, source=f"packages[{n}]")
    if not packages:
        raise NotInstallable("no server package found (VS Code throws)")
    return package_configuration(packages[0], source="packages[0]")


def remote_configuration(remote: Any, source: str = "remotes[0]") -> Installation:
    """The remote branch: `type` is always "http" (VS Code falls back to SSE itself), the URL
    is written as it is (`{var}` kept), headers become values or `${input:…}`."""
    if not isinstance(remote, Mapping):
        raise NotInstallable("malformed: the remote is not an object (VS Code throws)")
    url = remote.get("url")
    if not isinstance(url, str):
        raise NotInstallable("malformed: the remote's url is not a string (VS Code throws)")
    headers = remote.get("headers")
    if headers is None:
        headers = []
    if not isinstance(headers, list):
        raise NotInstallable("malformed: headers is not a list")
    values, inputs = _key_values(headers, "headers", drop_authorization=url.startswith(COPILOT_MCP))
    config: dict[str, Any] = {"type": "http", "url": url}
    if values:
        config["headers"] = values
    return Installation(config, inputs, source)


def package_configuration(package: Any, source: str = "") -> Installation:
    """The package branch for this one package (the argv and env VS Code writes; the
    package's `runtimeHint` is ignored, as VS Code ignores it)."""
    if not isinstance(package, Mapping):
        raise NotInstallable("malformed: not an object")
    kind = package.get("registryType")
    if not isinstance(kind, str) or kind not in COMMANDS:
        raise NotInstallable(f"registryType {kind!r}: VS Code's conversion writes no runnable"
                             " command")
    ident, version, base = (_optional(package, key)
                            for key in ("identifier", "version", "registryBaseUrl"))
    if not ident:
        raise NotInstallable("malformed: no identifier")
    args: list[str] = ["run", "-i", "--rm"] if kind == "oci" else []
    inputs: list[dict[str, Any]] = []
    dropped: list[str] = []
    _arguments(package.get("runtimeArguments"), "runtimeArguments", args, inputs, dropped)
    environment = package.get("environmentVariables")
    if environment is not None and not isinstance(environment, list):
        raise NotInstallable("malformed: environmentVariables is not a list")
    env, env_inputs = _key_values(environment or [], "environmentVariables")
    inputs += env_inputs
    if kind == "oci":
        args += [part for name in env for part in ("-e", name)]
    pinned = f"{ident}@{version}" if version else ident
    if kind in ("npm", "pypi"):
        args += [("--registry" if kind == "npm" else "--index-url"), base] if base else []
        args.append(pinned)
    elif kind == "oci":
        image = f"{base}/{ident}" if base else ident
        args.append(f"{image}:{version}" if version else image)
    else:
        args += [pinned, "--yes", *(["--source", base] if base else []),
                 *(["--"] if package.get("packageArguments") else [])]  # a list, or refused below
    _arguments(package.get("packageArguments"), "packageArguments", args, inputs, dropped)
    config: dict[str, Any] = {"type": "stdio", "command": COMMANDS[kind]}
    if args:
        config["args"] = args
    if env:
        config["env"] = env
    return Installation(config, inputs, source, tuple(dropped))


# -- VS Code's helpers: processArguments, processKeyValueInputs, getVariables -----------


def _optional(item: Mapping, key: str, where: str = "") -> str | None:
    """A field that must be a string when present: VS Code throws or coerces otherwise."""
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise NotInstallable(f"malformed: {where}{key} is not a string")
    return value


def _truthy(value: Any) -> bool:
    """JavaScript's truthiness of a JSON value: `[]` and `{}` are true."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, (int, float)):
        return value == value and value != 0  # NaN is false
    if isinstance(value, str):
        return value != ""
    return True


def _js_keys(names: list[str]) -> list[str]:
    """Own keys in the order JavaScript lists them: array indices ascending, then the rest
    in the order first assigned."""
    index = sorted((k for k in names if _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1), key=int)
    chosen = set(index)
    return index + [k for k in names if k not in chosen]


def _variables(item: Mapping, where: str) -> list[dict[str, Any]]:
    """getVariables: one input per entry of `variables`, a pick list when it has choices."""
    value = item.get("variables")
    if value is None:
        return []
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise NotInstallable(f"malformed: {where}.variables is not an object of objects")
    return [_input(key, spec, choices=True) for key in _js_keys(list(value))
            for spec in (value[key],)]


def _input(ident: str, spec: Mapping, *, choices: bool, password: bool | None = None
           ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ident,
        "type": "pickString" if choices and _truthy(spec.get("choices")) else "promptString",
        "description": "" if spec.get("description") is None else spec["description"],
        "password": _truthy(spec.get("isSecret")) if password is None else password,
    }
    if "default" in spec:  # `default: x.default`: undefined is left out, null is written
        out["default"] = spec["default"]
    if choices and "choices" in spec:
        out["options"] = spec["choices"]
    return out


def _replace(text: str, variables: list[dict[str, Any]]) -> str:
    """`text.replace("{id}", "${input:id}")` per variable: the first occurrence only, and
    the replacement read as JavaScript reads one (`$$`, `$&`, `` $` ``, `$'`). Bounded: a
    server.json whose ids repeat `` $` `` or `$'` can double the text at each variable, and
    thousands of variables on one long value are that many scans of it."""
    scanned = 0
    for variable in variables:
        scanned += len(text)
        if scanned > MAX_SCAN_CHARS:
            raise NotInstallable("too many variables on too long a value to convert")
        pattern, replacement = "{" + variable["id"] + "}", "${input:" + variable["id"] + "}"
        at = text.find(pattern)
        if at < 0:
            continue
        before, after = text[:at], text[at + len(pattern):]
        parts, n = [], 0
        while n < len(replacement):
            pair = replacement[n:n + 2]
            special = {"$$": "$", "$&": pattern, "$`": before, "$'": after}.get(pair)
            parts.append(replacement[n] if special is None else special)
            n += 1 if special is None else 2
        if len(before) + len(after) + sum(map(len, parts)) > MAX_VALUE_CHARS:
            raise NotInstallable(f"a value grows past {MAX_VALUE_CHARS} characters")
        text = before + "".join(parts) + after
    return text


def _arguments(items: Any, label: str, args: list[str], inputs: list[dict[str, Any]],
               dropped: list[str]) -> None:
    """processArguments, appending to `args` and `inputs`."""
    if items is None:
        return
    if not isinstance(items, list):
        raise NotInstallable(f"malformed: {label} is not a list")
    for n, arg in enumerate(items):
        where = f"{label}[{n}]"
        if not isinstance(arg, Mapping):
            raise NotInstallable(f"malformed: {where} is not an object")
        value, hint, described, name = (_optional(arg, k, f"{where}.") for k in
                                         ("value", "valueHint", "description", "name"))
        variables = _variables(arg, where)
        asks = bool(described) or "default" in arg  # JS: description || default !== undefined
        kind = arg.get("type")
        if kind == "positional":
            if value:
                args.append(_replace(value, variables))
                inputs += variables
            elif hint and asks:
                inputs.append(_input(hint, arg, choices=False, password=False))
                args.append(f"${{input:{hint}}}")
            else:
                args.append(hint if hint is not None else "")
        elif kind == "named" and name:
            args.append(name)
            if value:
                args.append(_replace(value, variables))
                inputs += variables
            elif asks:
                ident = _DASHES.sub("", name, count=1)
                inputs.append(_input(ident, arg, choices=False, password=False))
                args.append(f"${{input:{ident}}}")
        else:
            dropped.append(f"{where} is neither positional nor named with a name (VS Code"
                           " drops it)")


def _key_values(items: list[Any], label: str, *, drop_authorization: bool = False
                ) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """processKeyValueInputs over environment variables or headers: each name's value (the
    last one given; `__proto__` never becomes a key), in JavaScript's key order, and the
    inputs they prompt for."""
    values: dict[str, str] = {}
    inputs: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        where = f"{label}[{n}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise NotInstallable(f"malformed: {where} has no name")
        if drop_authorization and item["name"].lower() == "authorization":
            continue
        value = _optional(item, "value", f"{where}.") or ""
        variables = _variables(item, where)
        if variables:
            value = _replace(value, variables)
            inputs += variables
        elif not value and (_truthy(item.get("description")) or _truthy(item.get("choices"))
                            or "default" in item):
            inputs.append(_input(item["name"], item, choices=True))
            value = f"${{input:{item['name']}}}"
        if item["name"] != "__proto__":  # a string assigned to __proto__ is ignored
            values[item["name"]] = value
    return {key: values[key] for key in _js_keys(list(values))}, inputs
