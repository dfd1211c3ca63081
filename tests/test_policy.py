"""Curation policy: each rule's decisions, precedence, latest pointers, refusals with line and key."""

import orjson
import pytest
from factories import row

from mirror import policy
from mirror.errors import PolicyError
from mirror.policy import MIRROR_META, Curation, curate, load

NPM = {"registryType": "npm", "identifier": "@acme/tools", "version": "1.0.0", "transport": {"type": "stdio"}}
PYPI = {"registryType": "pypi", "identifier": "evil-tools", "version": "1.0.0", "transport": {"type": "stdio"}}
REMOTE = {"type": "streamable-http", "url": "https://mcp.acme.example/mcp"}


def decide(text, r):
    return load(text).decide(r)


def test_include_and_exclude_globs_on_names():
    text = 'include = ["io.github.acme/*", "com.example.*/*"]\nexclude = ["io.github.acme/secret"]\n'
    assert decide(text, row("io.github.acme/tools", "1.0.0")).rule == "include[1] io.github.acme/*"
    assert decide(text, row("com.example.weather/api", "1.0.0")).admitted
    assert not decide(text, row("com.example/api", "1.0.0")).admitted  # `.*` needs a dot and more
    assert decide(text, row("io.github.other/x", "1.0.0")) == policy.NOT_INCLUDED
    excluded = decide(text, row("io.github.acme/secret", "1.0.0"))
    assert not excluded.admitted and excluded.rule == "exclude[1] io.github.acme/secret"  # deny wins
    assert "*" not in decide(text, row("io.github.acme/a", "1.0.0")).rule.split()[0]


def test_no_include_rule_admits_everything_not_excluded():
    text = 'exclude = [{name = "io.github.evil/*", reason = "known bad"}]\n'
    assert decide(text, row("io.github.good/x", "1.0.0")) == policy.DEFAULT_ADMIT
    assert decide(text, row("io.github.evil/x", "1.0.0")).reason == "known bad"


def test_rules_by_registry_type_package_transport_and_status():
    text = '''
[[rule]]
action = "exclude"
status = "deprecated"
reason = "deprecated servers are not offered"

[[rule]]
action = "exclude"
registry_type = "pypi"
package = "evil-*"
reason = "blocked package"

[[rule]]
action = "include"
transport = "remote"
reason = "hosted servers only"

[[rule]]
action = "include"
registry_type = "npm"
package = "@acme/*"
reason = "our npm scope"
'''
    p = load(text)
    assert p.decide(row("a.b/deprecated", "1.0.0", status="deprecated", remotes=[REMOTE])).reason.startswith("depre")
    assert p.decide(row("a.b/evil", "1.0.0", packages=[PYPI], remotes=[REMOTE])).reason == "blocked package"
    assert p.decide(row("a.b/remote", "1.0.0", remotes=[REMOTE])).reason == "hosted servers only"
    assert p.decide(row("a.b/npm", "1.0.0", packages=[NPM])).reason == "our npm scope"
    assert p.decide(row("a.b/stdio", "1.0.0", packages=[{**NPM, "identifier": "other"}])) == policy.NOT_INCLUDED
    assert p.labels()[0] == "rule[1] exclude status=deprecated"


def test_stdio_only():
    p = load('[[rule]]\naction = "include"\ntransport = "stdio"\nreason = "local processes only"\n')
    assert p.decide(row("a.b/npm", "1.0.0", packages=[NPM])).admitted
    assert not p.decide(row("a.b/remote", "1.0.0", remotes=[REMOTE])).admitted


def test_a_pin_admits_one_version_and_makes_it_latest():
    text = '[[pin]]\nname = "io.github.acme/tools"\nversion = "1.0.0"\nreason = "2.0 breaks our CI"\n'
    rows = [row("io.github.acme/tools", "1.0.0"), row("io.github.acme/tools", "2.0.0", latest=True),
            row("io.github.other/x", "1.0.0", latest=True)]
    report = Curation()
    kept = list(curate(rows, load(text), report=report))
    assert [r.key for r in kept] == [("io.github.acme/tools", "1.0.0"), ("io.github.other/x", "1.0.0")]
    pinned = kept[0]
    assert pinned.is_latest
    meta = orjson.loads(pinned.doc)["_meta"]
    assert meta[MIRROR_META] == {"isLatest": True, "latestBy": "policy"}
    assert meta["io.modelcontextprotocol.registry/official"]["isLatest"] is False  # upstream's word, untouched
    assert kept[1] is rows[2]  # rows the policy does not touch are the same bytes
    assert report.relatested == [("io.github.acme/tools", "1.0.0")]
    assert report.by_rule() == {"default": {"admitted": 1, "excluded": 0},
                                "pin[1] io.github.acme/tools@1.0.0": {"admitted": 1, "excluded": 1}}
    explained = load(text).decide(rows[1])
    assert explained.describe() == ("excluded by pin[1] io.github.acme/tools@1.0.0: 2.0 breaks our CI "
                                    "(pinned to 1.0.0)")


def test_excluding_the_latest_version_moves_latest_to_the_highest_admitted_semver():
    rows = [row("a.b/x", "1.10.0", published="2025-01-01T00:00:00Z"), row("a.b/x", "1.9.0"),
            row("a.b/x", "2.0.0-rc.1", latest=True, packages=[PYPI])]
    text = '[[rule]]\naction = "exclude"\npackage = "evil-*"\nreason = "no"\n'
    kept = list(curate(rows, load(text)))
    assert [(r.version, r.is_latest) for r in kept] == [("1.10.0", True), ("1.9.0", False)]


def test_a_server_whose_every_version_is_excluded_is_gone():
    rows = [row("a.b/x", "1.0.0", latest=True), row("c.d/y", "1.0.0", latest=True)]
    assert [r.name for r in curate(rows, load('exclude = ["a.b/*"]'))] == ["c.d/y"]


@pytest.mark.parametrize(("text", "line", "key"), [
    ('include = ["a.b/*"]\n\nincludes = ["x/y"]\n', 3, "includes"),
    ('exclude = ["a.b/*"]\n[[rule]]\naction = "exclude"\nname = "x/*"\nreasn = "typo"\n', 5, "reasn"),
    ('include = [\n  "a.b/*",\n]\n[[pin]]\nname = "a/b"\nversion = "1"\nreason = "r"\nwhen = 1\n', 8, "when"),
    ('[collisions]\nprefer = "both"\n', 2, "prefer"),
    ('[[rule]]\naction = "include"\ntransport = "carrier-pigeon"\nreason = "r"\n', 3, "transport"),
    ('[[rule]]\naction = "include"\nname = "a/*"\n', 1, "reason"),  # missing: its table's header
])
def test_an_unknown_key_or_a_bad_value_is_refused_with_its_line_and_key(text, line, key):
    with pytest.raises(PolicyError) as caught:
        load(text, source="policy.toml")
    assert str(caught.value).startswith(f"policy.toml:{line}: key {key!r}")


@pytest.mark.parametrize("glob", ["io.github.acme", "a/b/c", "a b/*", "a/**", "a/[x]"])
def test_a_bad_glob_is_refused_with_its_line(glob):
    with pytest.raises(PolicyError) as caught:
        load(f'# the org\n\nexclude = ["{glob}"]\n', source="p.toml")
    assert str(caught.value).startswith("p.toml:3: key 'exclude'") and "bad glob" in str(caught.value)


def test_not_toml_is_refused():
    with pytest.raises(PolicyError, match="not TOML"):
        load("include = [", source="p.toml")


def test_semver_order_is_upstreams():
    rows = [row("a.b/x", v) for v in ("1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "0.9.9")]
    assert policy.best_version(rows).version == "1.0.0"
    assert policy.best_version(rows[1:3]).version == "1.0.0-rc.10"
    dated = [row("a.b/x", "2024.1", published="2025-02-01T00:00:00Z"),
             row("a.b/x", "2025.1", published="2025-01-01T00:00:00Z")]
    assert policy.best_version(dated).version == "2024.1"  # not all semver: newest published


def test_a_problem_in_the_second_table_names_that_tables_line():
    text = ('[[rule]]\naction = "include"\nname = "a.b/*"\nreason = "ok"\n\n'
            '[[rule]]\naction = "include"\nname = "a.b/c/d"\nreason = "bad"\n')
    with pytest.raises(PolicyError, match=r"^p.toml:8: key 'name': rule\[2\]: bad glob"):
        load(text, source="p.toml")


def test_every_row_is_decided_and_one_admitted_visible_version_is_shown_as_latest():
    text = ('exclude = ["io.github.evil/*"]\n[[pin]]\nname = "io.github.acme/tools"\nversion = "1.0.0"\n'
            'reason = "reviewed"\n')
    rows = [row("io.github.acme/tools", "1.0.0"), row("io.github.acme/tools", "2.0.0", latest=True),
            row("io.github.evil/x", "1.0.0", latest=True),
            row("io.github.gone/y", "1.0.0"), row("io.github.gone/y", "1.1.0", latest=True, status="deleted")]
    decided = list(policy.decide_servers(rows, load(text)))
    assert [(d.row.key, d.decision.admitted, d.latest) for d in decided] == [
        (("io.github.acme/tools", "1.0.0"), True, True),  # the pin moved latest here
        (("io.github.acme/tools", "2.0.0"), False, False),
        (("io.github.evil/x", "1.0.0"), False, False),  # excluded: never the shown latest
        (("io.github.gone/y", "1.0.0"), True, True),
        (("io.github.gone/y", "1.1.0"), True, False)]  # deleted: not visible
    assert MIRROR_META in orjson.loads(decided[0].row.doc)["_meta"]  # as served
    assert [r.key for r in curate(rows, load(text))] == [d.row.key for d in decided if d.decision.admitted]
