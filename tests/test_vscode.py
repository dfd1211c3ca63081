"""mirror/vscode.py against VS Code's own conversion, run in node (tests/vscode_gallery/
install_config.mjs, one process for the module, every request in one batch): the sample's
every server and package, and hand-made ones (tests/vscode_cases.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_allowlist import SAMPLE, alone
from vscode_cases import CASES, MODULES, kinds, node, ours, runnable, vscode_answer

from mirror import vscode
from mirror.vscode import Installation, NotInstallable

SERVERS = [entry["server"] for entry in SAMPLE]


def hand_made(case: str) -> dict[str, Any]:
    return {"name": f"io.test/{case}", "version": "1.0.0", **CASES[case][0]}


PICKS = {"packages": [{"registryType": "pypi", "identifier": "a"},
                      {"registryType": "npm", "identifier": "b"},
                      {"registryType": "npm", "identifier": "c"}]}
REQUESTS = [
    *({"server": s, "type": kind} for s in SERVERS for kind in kinds(s)),
    *(alone(s, package) for s in SERVERS for package in s.get("packages") or []),
    *({"server": hand_made(case), "type": kind} for case in CASES for kind in kinds(hand_made(case))),
    *({"server": PICKS, "type": kind} for kind in ("npm", "pypi", "remote", "oci")),
]


def key(request: dict) -> str:
    return json.dumps(request, sort_keys=True)


@pytest.fixture(scope="module")
def answers() -> dict[str, dict]:
    if not (MODULES / "@codingame" / "monaco-vscode-api").is_dir():
        pytest.skip(f"VS Code's code (@codingame/monaco-vscode-api) is not installed in {MODULES}:"
                    " run `make install` (it needs npm)")
    helper = node()
    unique = list({key(r): r for r in REQUESTS}.values())
    try:
        return {key(r): a for r, a in zip(unique, helper.ask_many(unique), strict=True)}
    finally:
        helper.close()


def compare(convert: Callable[[], Installation], answer: dict) -> str:
    """"exact" when ours equals VS Code's, "throws" when both refuse because VS Code throws,
    "refused" when VS Code writes something we refuse (asserting it runs nothing)."""
    try:
        mine: dict | str = ours(convert())
    except NotInstallable as why:
        mine = str(why)
    theirs = vscode_answer(answer)
    if theirs is None:
        assert isinstance(mine, str), f"VS Code throws ({answer['error']}), we wrote {mine}"
        return "throws"
    if isinstance(mine, str):
        return "refused"
    assert mine == theirs
    assert runnable(answer), f"we wrote an entry VS Code cannot run: {theirs}"
    return "exact"


def test_every_sample_server_gets_the_entry_vscode_writes_for_each_package_type(answers):
    outcomes = []
    for server in SERVERS:
        for kind in kinds(server):
            answer = answers[key({"server": server, "type": kind})]
            outcome = compare(lambda s=server, k=kind: vscode.configuration(s, k), answer)
            where = f"{server['name']}@{server['version']} as {kind}"
            # the sample is well formed: only what VS Code cannot run is refused
            assert outcome != "refused" or not runnable(answer), where
            outcomes.append(outcome)
    assert outcomes.count("exact") >= 120, "every sample server has a package or a remote"


def test_every_sample_package_gets_vscodes_entry(answers):
    exact = 0
    for server in SERVERS:
        for package in server.get("packages") or []:
            answer = answers[key(alone(server, package))]
            outcome = compare(lambda p=package: vscode.package_configuration(p), answer)
            assert outcome != "refused" or not runnable(answer), (server["name"], package)
            exact += outcome == "exact"
    assert exact >= 100


@pytest.mark.parametrize("case", sorted(CASES))
def test_hand_made_servers(answers, case):
    server = hand_made(case)
    kind = vscode.gallery_package_type(server)
    outcome = compare(lambda: vscode.configuration(server, kind),
                      answers[key({"server": server, "type": kind})])
    assert outcome == CASES[case][1]


def test_the_package_asked_for_is_the_first_of_its_type_else_the_first(answers):
    for kind, ident in (("npm", "b"), ("pypi", "a"), ("remote", "a"), ("oci", "a")):
        answer = answers[key({"server": PICKS, "type": kind})]
        found = vscode.configuration(PICKS, kind)
        assert compare(lambda k=kind: vscode.configuration(PICKS, k), answer) == "exact"
        assert found.argv[-1] == ident and found.source == f"packages[{'abc'.index(ident)}]"


def test_gallery_package_type_is_packages0_registry_type_else_remote():
    gallery = vscode.gallery_package_type
    assert gallery({"packages": [{"registryType": "pypi"}, {"registryType": "npm"}]}) == "pypi"
    assert gallery({"packages": [], "remotes": [{}]}) == "remote"
    assert gallery({"packages": [{"identifier": "x"}]}) == "remote"
    assert gallery({"packages": [None]}) == "remote"
    assert gallery({}) == "remote"
    assert gallery({"packages": [{"registryType": "mcpb"}]}) == "mcpb"


def test_what_vscode_writes_spelled_out():
    """Cases above, written out: what a reader checks the port against."""
    headers = vscode.configuration(hand_made("remote-headers"), "remote")
    assert headers.config == {
        "type": "http", "url": "https://{tenant}.example.com/mcp",
        "headers": {"Authorization": "${input:Authorization}", "X-Fixed": "1",
                    "X-Template": "Bearer ${input:key}", "X-Empty": "",
                    "X-Default": "${input:X-Default}"}}
    assert headers.inputs == [
        {"id": "Authorization", "type": "promptString", "description": "token", "password": True},
        {"id": "key", "type": "promptString", "description": "key", "password": True},
        {"id": "X-Default", "type": "promptString", "description": "", "password": False,
         "default": "d"}]
    npm = vscode.configuration(hand_made("npm-arguments-and-env"), "npm")
    assert npm.argv == (
        "npx", "--node-options", "--max-old-space-size=${input:mem}",
        "--registry", "https://npm.acme.example", "@acme/srv@1.0.0",
        "serve", "${input:path}", "mode", "${input:p}", "--port", "${input:port}", "-v",
        "--token", "${input:token}", "--dir", "${input:root}/x")
    assert npm.config["env"] == {"API_KEY": "${input:API_KEY}", "MODE": "fast",
                                 "REGION": "${input:REGION}", "EMPTY": "",
                                 "CHOICE": "${input:CHOICE}", "URL": "https://${input:host}/x"}
    assert npm.inputs[0] == {"id": "mem", "type": "pickString", "description": "memory",
                             "password": False, "default": "512", "options": ["256", "512"]}
    assert {"id": "token", "type": "promptString", "description": "a token",
            "password": False} in npm.inputs  # an argument's input is never a password
    assert {"id": "CHOICE", "type": "pickString", "description": "", "password": False,
            "options": []} in npm.inputs  # `[]` is true in JavaScript
    oci = vscode.configuration(hand_made("oci-env-order"), "oci")
    assert oci.argv == ("docker", "run", "-i", "--rm", "--network", "host", "-v",
                        "${input:dir}:/data", "-e", "0", "-e", "10", "-e", "B", "-e", "A",
                        "ghcr.io/acme/srv:1.2")
    assert oci.config["env"] == {"0": "zero", "10": "", "B": "x", "A": "${input:t}"}
    specials = vscode.configuration(hand_made("replace-specials"), "npm")
    assert specials.argv[-2:] == ("x${input:a{a$&b}b}y", "<${input:p<q>r$s}>")
    first = vscode.configuration(hand_made("replace-first-only"), "npm")
    assert first.argv[-2:] == ("${input:v}-{v}", "${input:b}${input:10}${input:2}${input:a}")
    assert [i["id"] for i in first.inputs] == ["v", "2", "10", "b", "a"]  # JavaScript's key order
    dashes = vscode.configuration(hand_made("named-dashes"), "npm")
    assert dashes.argv[-5:] == ("---x", "${input:-x}", "-y", "${input:y}", "z")
    dropped = vscode.configuration(hand_made("nameless-and-unknown-dropped"), "npm")
    assert dropped.argv[-1] == "kept" and len(dropped.dropped) == 2


@pytest.mark.parametrize("shape", [
    None, [], "x", {"packages": "npm"}, {"remotes": {"url": "https://x"}},
    {"packages": [{"registryType": "npm", "identifier": "x", "runtimeArguments": [5]}]},
    {"packages": [{"registryType": "npm", "identifier": "x",
                   "environmentVariables": [{"name": 5}]}]},
    {"packages": [{"registryType": "npm", "identifier": "x",
                   "packageArguments": [{"type": "named", "name": ["--x"]}]}]},
    {"remotes": [{"url": "https://x", "headers": [{"name": "a", "variables": []}]}]},
])
def test_malformed_shapes_are_refused_never_raise_anything_else(shape):
    for kind in ("npm", "remote", 5):
        with pytest.raises(NotInstallable):
            vscode.configuration(shape, kind)
