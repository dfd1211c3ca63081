"""The organization's own servers (--local) and the policy through the CLI: build, render, explain."""

import orjson
import pytest
from click.testing import CliRunner

from mirror import sources
from mirror.cli import cli
from mirror.errors import PolicyError
from mirror.models import OFFICIAL
from mirror.policy import MIRROR_META

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def server(name="com.acme.internal/tools", version="1.0.0", **extra):
    return {"$schema": SCHEMA_URL, "name": name, "description": "Acme's internal tools", "version": version,
            "remotes": [{"type": "streamable-http", "url": "https://mcp.acme.example/tools"}], **extra}


def write(directory, name, document):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(orjson.dumps(document))


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_local_servers_get_minted_meta_and_upstreams_latest_rule(tmp_path):
    local = tmp_path / "local"
    write(local, "a.json", server(version="1.2.0"))
    write(local, "b.json", server(version="1.10.0"))
    pinned_time = {MIRROR_META: {"publishedAt": "2026-03-01T00:00:00Z"}}
    write(local / "nested", "c.json", server(name="com.acme.internal/db", _meta=pinned_time))
    rows = sources.local_rows(sources.read_directory(local), snapshot_time="2026-05-01T00:00:00Z")
    assert [(r.name, r.version, r.is_latest) for r in rows] == [
        ("com.acme.internal/db", "1.0.0", True), ("com.acme.internal/tools", "1.10.0", True),
        ("com.acme.internal/tools", "1.2.0", False)]
    meta = orjson.loads(rows[0].doc)["_meta"]
    assert meta[OFFICIAL] == {"status": "active", "statusChangedAt": "2026-03-01T00:00:00Z",
                              "publishedAt": "2026-03-01T00:00:00Z", "updatedAt": "2026-03-01T00:00:00Z",
                              "isLatest": True}
    assert meta[MIRROR_META] == {"origin": "local", "file": "nested/c.json"}
    assert orjson.loads(rows[1].doc)["_meta"][OFFICIAL]["publishedAt"] == "2026-05-01T00:00:00Z"
    again = sources.local_rows(sources.read_directory(local), snapshot_time="2026-05-01T00:00:00Z")
    assert [r.doc for r in again] == [r.doc for r in rows]  # deterministic


@pytest.mark.parametrize(("document", "field"), [
    (server(description=""), "/description"),
    ({k: v for k, v in server().items() if k != "version"}, "/ (the document)"),
    (server(remotes=[{"type": "streamable-http"}]), "/remotes/0"),
    (server(name="com.acme/_hidden"), "/name"),
    (server(_meta={MIRROR_META: {"publishedAt": "yesterday"}}), f"/_meta/{MIRROR_META}/publishedAt"),
])
def test_a_bad_local_file_is_refused_naming_the_file_and_the_field(tmp_path, document, field):
    write(tmp_path, "bad.json", document)
    with pytest.raises(PolicyError) as caught:
        sources.read_directory(tmp_path)
    assert str(caught.value).startswith(f"bad.json: {field}:")


def test_two_files_with_one_name_and_version_are_refused(tmp_path):
    write(tmp_path, "a.json", server())
    write(tmp_path, "b.json", server())
    with pytest.raises(PolicyError, match="also in a.json"):
        sources.local_rows(sources.read_directory(tmp_path), snapshot_time="2026-05-01T00:00:00Z")


@pytest.fixture
def crawled(settings):
    result = invoke("crawl", "--upstream", settings.upstream, "--db", settings.db)
    assert result.exit_code == 0, result.output
    return settings


def render(settings, *extra):
    return invoke("render", "--db", settings.db, "--out", settings.out, "--base-url", "http://mirror.test", *extra)


def test_build_with_a_policy_and_local_servers_reports_counts_per_rule(settings, tmp_path):
    local = tmp_path / "local"
    write(local, "tools.json", server())
    policy = tmp_path / "policy.toml"
    policy.write_text('include = ["io.github.domdomegg/*", "com.acme.*/*"]\n'
                      '[[rule]]\naction = "exclude"\nname = "io.github.domdomegg/time-*"\nreason = "not needed"\n')
    result = invoke("build", "--upstream", settings.upstream, "--db", settings.db, "--out", settings.out,
                    "--policy", policy, "--local", local, "--json")
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output.splitlines()[-1])["policy"]
    assert summary["rules"]["rule[1] exclude name=io.github.domdomegg/time-*"] == {"admitted": 0, "excluded": 6}
    assert summary["rules"]["include[2] com.acme.*/*"] == {"admitted": 1, "excluded": 0}
    assert summary["rules"]["default"]["admitted"] == 0 and summary["rules"]["default"]["excluded"] > 50
    served = sorted(p.parents[3].name + "/" + p.parents[2].name
                    for p in (settings.out / "v0.1" / "servers").glob("*/*/versions/latest/index.json"))
    assert served == ["com.acme.internal/tools", "io.github.domdomegg/airtable-mcp-server"]


def test_explain_names_the_rule_for_each_version(crawled, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[[pin]]\nname = "io.github.domdomegg/time-mcp-pypi"\nversion = "1.0.4"\n'
                      'reason = "the version we reviewed"\n')
    result = invoke("policy", "explain", "io.github.domdomegg/time-mcp-pypi", "--db", crawled.db, "--policy", policy)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("  ")]  # then its entries
    assert len(lines) == 3
    assert '  allowlist: serverCommand ["uvx","time-mcp-pypi@1.0.4"]  (packages[0] (pypi))' in result.output
    pin = "pin[1] io.github.domdomegg/time-mcp-pypi@1.0.4"
    assert f"io.github.domdomegg/time-mcp-pypi 1.0.4: admitted by {pin}: the version we reviewed" in lines
    assert sum(f"excluded by {pin}: the version we reviewed (pinned to 1.0.4)" in line for line in lines) == 2
    one = invoke("policy", "explain", "io.github.domdomegg/time-mcp-pypi", "1.0.4", "--db", crawled.db)
    assert one.output.startswith("io.github.domdomegg/time-mcp-pypi 1.0.4: admitted by default: the policy has "
                                 "no include rule, so everything not excluded is served\n  allowlist: ")
    missing = CliRunner().invoke(cli, ["policy", "explain", "no.such/server", "--db", str(crawled.db)])
    assert missing.exit_code == 2 and "neither the snapshot nor --local" in missing.output


def test_a_name_both_upstream_and_local_have_is_refused_unless_the_policy_says_which_wins(crawled, tmp_path):
    local = tmp_path / "local"
    write(local, "mine.json", server(name="io.github.domdomegg/time-mcp-pypi", version="9.0.0"))
    refused = CliRunner().invoke(cli, ["render", "--db", str(crawled.db), "--out", str(crawled.out),
                                       "--local", str(local)])
    assert refused.exit_code == 2
    assert "io.github.domdomegg/time-mcp-pypi is both an upstream server and a --local one" in refused.output
    assert not crawled.out.exists()
    latest = crawled.out / "v0.1/servers/io.github.domdomegg/time-mcp-pypi/versions/latest/index.json"
    for prefer, version in (("local", "9.0.0"), ("upstream", None)):
        policy = tmp_path / f"{prefer}.toml"
        policy.write_text(f'[collisions]\nprefer = "{prefer}"\n')
        result = render(crawled, "--local", local, "--policy", policy)
        assert result.exit_code == 0, result.output
        assert "collision (upstream and --local): io.github.domdomegg/time-mcp-pypi" in result.output
        served = orjson.loads(latest.read_bytes())["server"]["version"]
        assert (served == version) if version else served != "9.0.0"
        versions = crawled.out / "v0.1/servers/io.github.domdomegg/time-mcp-pypi/versions/index.json"
        count = len(orjson.loads(versions.read_bytes())["servers"])
        assert count == (1 if prefer == "local" else 2)  # 1.0.5 is deleted


def test_a_bad_policy_fails_before_the_crawl(settings, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('include = ["io.github.acme/*"]\nexlude = ["x/y"]\n')
    result = CliRunner().invoke(cli, ["build", "--upstream", settings.upstream, "--db", str(settings.db),
                                      "--out", str(settings.out), "--policy", str(policy)])
    assert result.exit_code == 2
    assert f"{policy}:2: key 'exlude': unknown key 'exlude'" in result.output
    assert not settings.db.exists()
