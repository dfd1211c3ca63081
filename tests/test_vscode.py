"""mirror/vscode.py against VS Code's own conversion, run in node (tests/vscode_gallery/
install_config.mjs, one process for the module, every request in one batch): the sample's
every server and package, and hand-made ones (tests/vscode_cases.py)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_allowlist import SAMPLE, alone
from vscode_cases import CASES, MODULES, kinds, node, ours, runnable, vscode_answer

from mirror import vscode
from mirror.render import catalog
from mirror.vscode import Installation, NotInstallable

SERVERS = [entry["server"] for entry in SAMPLE]


def hand_made(case: str) -> dict[str, Any]:
    return {"name": f"io.test/{case}", "version": "1.0.0", **CASES[case][0]}


PICKS = {"packages": [{"registryType": "pypi", "identifier": "a"},
                      {"registryType": "npm", "identifier": "b"},
                      {"registryType": "npm", "identifier": "c"}]}
def _random_shape(rng: random.Random) -> dict[str, Any]:
    """A server.json made of the fields VS Code reads, with values of every JSON type."""
    def value(depth: int = 0) -> Any:
        pick = rng.randrange(12 if depth < 2 else 8)
        return ([None, True, False, 0, 1, "", "x", rng.choice(WORDS)][pick] if pick < 8 else
                [value(depth + 1) for _ in range(rng.randrange(3))] if pick < 10 else
                {rng.choice(WORDS): value(depth + 1) for _ in range(rng.randrange(3))})

    def field(good: Any) -> Any:
        return good if rng.random() < 0.8 else value()

    def variables() -> dict:
        specs = [("description", "d"), ("default", "x"), ("choices", ["a"]), ("isSecret", True)]
        return {rng.choice(["v", "w", "0", "$&", "__proto__"]):
                field({k: field(v) for k, v in rng.sample(specs, 2)})
                for _ in range(rng.randrange(3))}

    def argument() -> Any:
        keys = rng.sample(["type", "name", "value", "valueHint", "description", "default",
                           "variables", "isSecret", "choices"], rng.randrange(1, 6))
        good = {"type": rng.choice(["named", "positional"]), "name": rng.choice(["--a", "-b", "c"]),
                "value": rng.choice(["1", "{v}", "{v}{w}{v}", "", "$'{0}"]), "valueHint": "hint",
                "description": rng.choice(["", "d"]), "default": rng.choice([None, "d"]),
                "variables": variables(), "isSecret": True, "choices": ["a", "b"]}
        return field({key: field(good[key]) for key in keys})

    def package() -> Any:
        keys = rng.sample(["registryType", "identifier", "version", "registryBaseUrl",
                           "runtimeArguments", "packageArguments", "environmentVariables"],
                          rng.randrange(2, 8))
        good = {"registryType": rng.choice(["npm", "pypi", "oci", "nuget", "mcpb"]),
                "identifier": "srv", "version": "1", "registryBaseUrl": "https://r.example",
                "runtimeArguments": [argument() for _ in range(rng.randrange(3))],
                "packageArguments": [argument() for _ in range(rng.randrange(3))],
                "environmentVariables": [argument() for _ in range(rng.randrange(3))]}
        return field({key: field(good[key]) for key in keys})

    def remote() -> Any:
        return field({"type": "sse", "url": field(rng.choice(["https://a.example/mcp", COPILOT])),
                      "headers": field([argument() for _ in range(rng.randrange(3))])})

    shape: dict[str, Any] = {}
    if rng.random() < 0.8:
        shape["packages"] = field([package() for _ in range(rng.randrange(3))])
    if rng.random() < 0.5:
        shape["remotes"] = field([remote() for _ in range(rng.randrange(3))])
    return shape


WORDS = ["npm", "oci", "remote", "named", "positional", "{v}", "v", "$&", "__proto__", "0", "name"]
COPILOT = "https://api.githubcopilot.com/mcp/"
RANDOM = [_random_shape(random.Random(seed)) for seed in range(600)]
REQUESTS = [
    *({"server": s, "type": kind} for s in SERVERS for kind in kinds(s)),
    *(alone(s, package) for s in SERVERS for package in s.get("packages") or []),
    *({"server": hand_made(case), "type": kind}
      for case in CASES for kind in kinds(hand_made(case))),
    *({"server": PICKS, "type": kind} for kind in ("npm", "pypi", "remote", "oci")),
    *({"server": s, "type": kind} for s in RANDOM for kind in kinds(s)),
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
        # what VS Code could run is refused only for a field it would coerce or misread
        assert not runnable(answer) or mine.startswith("malformed: "), (mine, answer)
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
    {"packages": [{"registryType": [], "identifier": "x"}]},
    {"packages": [{"registryType": {"npm": 1}, "identifier": "x"}], "remotes": [None]},
])
def test_malformed_shapes_are_refused_never_raise_anything_else(shape):
    for kind in ("npm", "remote", 5):
        with pytest.raises(NotInstallable):
            vscode.configuration(shape, kind)


def test_replacement_that_would_blow_up_is_refused_quickly():
    """`$'` in an id inserts the rest of the value, once per `$'`: VS Code would build a
    string of gigabytes; the port refuses, in well under a second."""
    doubling = "$'" * 30_000
    value = "{" + doubling + "}" + "x" * 100_000
    grows = {"packages": [{"registryType": "npm", "identifier": "x", "packageArguments": [
        {"type": "positional", "value": value, "variables": {doubling: {}}}]}]}
    many = {"packages": [{"registryType": "npm", "identifier": "x", "packageArguments": [
        {"type": "positional", "value": "y" * 120_000,
         "variables": {f"v{n}": {} for n in range(12_000)}}]}]}
    for server in (grows, many):
        started = time.perf_counter()
        with pytest.raises(NotInstallable):
            vscode.configuration(server, "npm")
        assert time.perf_counter() - started < 1


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
                    | st.sampled_from(["", "npm", "oci", "nuget", "pypi", "remote", "named",
                                       "positional", "--x", "{v}", "v", "$&", "__proto__", "0"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["v", "0", "__proto__", "x"]), inner,
                                      max_size=3),
                    max_leaves=8)
FIELD = st.sampled_from(["type", "name", "value", "valueHint", "description", "default",
                         "choices", "isSecret", "variables"])
ARGUMENT = st.dictionaries(FIELD, JSON, max_size=5) | JSON
PACKAGE = st.fixed_dictionaries({}, optional={
    "registryType": st.sampled_from(["npm", "pypi", "oci", "nuget", "mcpb"]) | JSON,
    "identifier": st.just("srv") | JSON, "version": st.just("1") | JSON,
    "registryBaseUrl": st.just("https://r.example") | JSON,
    "runtimeArguments": st.lists(ARGUMENT, max_size=3) | JSON,
    "packageArguments": st.lists(ARGUMENT, max_size=3) | JSON,
    "environmentVariables": st.lists(ARGUMENT, max_size=3) | JSON}) | JSON
REMOTE_SHAPE = st.fixed_dictionaries({}, optional={
    "type": JSON, "url": st.just("https://api.githubcopilot.com/mcp") | JSON,
    "headers": st.lists(ARGUMENT, max_size=3) | JSON}) | JSON
SERVER = st.fixed_dictionaries({}, optional={"packages": st.lists(PACKAGE, max_size=3) | JSON,
                                             "remotes": st.lists(REMOTE_SHAPE, max_size=2) | JSON})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SERVER, st.sampled_from(["npm", "pypi", "oci", "nuget", "remote", "mcpb"]))
def test_any_shape_converts_or_is_refused_and_the_catalog_never_fails(server, kind):
    try:
        found = vscode.configuration(server, kind)
    except NotInstallable:
        pass
    else:
        json.dumps({"config": found.config, "inputs": found.inputs})  # plain JSON
        assert found.config["type"] in ("stdio", "http")
    entry = catalog.vscode_entry("a/b", server)
    for package in server.get("packages") if isinstance(server.get("packages"), list) else []:
        catalog.launch(package)
    if entry is not None:
        assert entry.mcp_json is None or json.loads(entry.mcp_json)["servers"]["a/b"] == json.loads(
            json.dumps(entry.installation.config))


def test_random_shapes_convert_as_vscode_does_or_are_refused(answers):
    """600 seeded server.jsons with every JSON type in every field VS Code reads: where VS
    Code throws we refuse, where we write an entry it is VS Code's, and what we refuse VS
    Code writes only by coercing (or runs nothing)."""
    outcomes = []
    for server in RANDOM:
        for kind in kinds(server):
            answer = answers[key({"server": server, "type": kind})]
            outcomes.append(compare(lambda s=server, k=kind: vscode.configuration(s, k), answer))
    assert min(outcomes.count(o) for o in ("exact", "throws", "refused")) >= 50, outcomes
