"""The governance outputs as a user gets them: `export`, the tree's fixed paths, `policy explain`.

The documents' rules are held to the clients in tests/test_allowlist.py (VS Code's own
conversion and matcher oracle) and tests/test_toolhive.py (ToolHive's schema and checks), on
candidates made by the same wiring (`governance.candidates` over `policy.decide_servers`);
here a crawled snapshot goes through the CLI and render, and what lands must be those
documents, byte for byte.
"""

import orjson
import pytest
from click.testing import CliRunner
from test_allowlist import POLICY
from test_toolhive import refusals

from mirror import allowlist, governance, paths, pipeline
from mirror.cli import cli
from mirror.policy import decide_servers, load
from mirror.store import open_store

NOTHING = 'include = ["no.such/server"]\n'


@pytest.fixture
def crawled(upstream, settings, tmp_path):
    pipeline.crawl(settings)
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    return settings, policy


def decided(settings, policy_text):
    with open_store(settings.db) as store:
        rows = list(store.iter_rows(store.ok_snapshot().id))
    return list(decide_servers(rows, load(policy_text)))


def export(settings, *args):
    return CliRunner().invoke(cli, ["export", "--db", str(settings.db), *args])


@pytest.mark.parametrize("fmt", ["allowlist", "vscode-settings", "claude-managed-mcp"])
def test_export_writes_the_allowlists_of_the_curated_snapshot(crawled, tmp_path, fmt):
    settings, policy = crawled
    out = tmp_path / f"{fmt}.json"
    result = export(settings, "--format", fmt, "--policy", str(policy), "-o", str(out))
    assert result.exit_code == 0, result.output
    made = allowlist.Allowlists.build(governance.candidates(decided(settings, POLICY)))
    expected = {"allowlist": made.managed_settings, "vscode-settings": made.vscode_settings,
                "claude-managed-mcp": made.claude_managed_mcp}[fmt]()
    assert out.read_bytes() == allowlist.dumps(expected)
    first = result.output.splitlines()[0]
    assert first.endswith(f"(snapshot 1) -> {out}") and ("allow entries" in first or "servers" in first)
    if fmt != "claude-managed-mcp":  # the excluded servers are denied; what got no exact entry is said
        assert expected[list(expected)[1]]
        assert "io.github.grafana/mcp-grafana (" in result.output and "takes user input" in result.output


def test_the_tree_publishes_the_same_allowlists_and_links_them(crawled, tmp_path):
    settings, policy = crawled
    settings = settings.model_copy(update={"policy": policy})
    pipeline.render(settings)
    state = orjson.loads((settings.out / paths.state_file()).read_bytes())
    assert set(state["governance"]) == {"allowlist", "vscode-settings", "claude-managed-mcp"}
    home = (settings.out / "index.html").read_text()
    for fmt, where in state["governance"].items():
        assert where["url"] == f"{settings.base_url.rstrip('/')}/{where['path']}"
        out = tmp_path / f"{fmt}.json"
        assert export(settings, "--format", fmt, "--policy", str(policy), "-o", str(out)).exit_code == 0
        assert (settings.out / where["path"]).read_bytes() == out.read_bytes()  # the export's bytes
        assert f'href="{where["path"]}"' in home  # every catalog page's footer links it
    assert pipeline.verify(settings.out).ok


def test_toolhive_export_is_a_file_toolhive_takes_and_names_what_it_left_out(crawled, tmp_path):
    settings, policy = crawled
    out = tmp_path / "thv.json"
    result = export(settings, "--format", "toolhive", "--policy", str(policy), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert refusals(out.read_bytes()) == []
    servers = orjson.loads(out.read_bytes())["data"]["servers"]
    shown = [d for d in decided(settings, POLICY) if d.decision.admitted and d.latest]
    assert len(servers) + result.output.count("left out:") == len(shown)
    assert [s["name"] for s in servers] == sorted(s["name"] for s in servers)
    bounded = export(settings, "--format", "toolhive", "--max-bytes", "20000", "-o", str(out))
    assert bounded.exit_code == 0 and len(out.read_bytes()) <= 20_000 and "over --max-bytes 20000" in bounded.output


def test_a_policy_that_admits_nothing(crawled, tmp_path):
    settings, policy = crawled
    policy.write_text(NOTHING)
    out = tmp_path / "m.json"
    result = export(settings, "--format", "allowlist", "--policy", str(policy), "-o", str(out))
    assert result.exit_code == 0, result.output
    document = orjson.loads(out.read_bytes())
    assert document["allowedMcpServers"] == [] and document["deniedMcpServers"]  # only built-ins run
    assert "the allow list is []" in result.output
    result = export(settings, "--format", "toolhive", "--policy", str(policy), "-o", str(out))
    assert result.exit_code == 2 and "admits none" in result.output


def test_standard_output_and_refused_combinations(crawled):
    settings, policy = crawled
    result = export(settings, "--format", "vscode-settings", "-o", "-")
    assert result.exit_code == 0
    assert "chat.mcp.allowedServers" in orjson.loads(result.stdout_bytes.split(b"\n}\n")[0] + b"\n}")
    assert export(settings, "--format", "jsonl", "--policy", str(policy)).exit_code == 2
    assert export(settings, "--format", "allowlist", "--changes").exit_code == 2


def test_policy_explain_shows_each_versions_entries(crawled):
    settings, policy = crawled
    args = ["--db", str(settings.db), "--policy", str(policy)]
    shown = CliRunner().invoke(cli, ["policy", "explain", "io.github.domdomegg/airtable-mcp-server", "1.7.2", *args])
    assert shown.exit_code == 0, shown.output
    assert 'allowlist: serverCommand ["npx","airtable-mcp-server@1.7.2"]  (packages[0] (npm))' in shown.output
    assert "allowlist: no exact entry for packages[2] (mcpb)" in shown.output
    excluded = CliRunner().invoke(cli, ["policy", "explain", "io.github.heroku/heroku-mcp-server", *args])
    assert "excluded by" in excluded.output and "  denylist: serverCommand" in excluded.output
