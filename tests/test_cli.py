"""The command line: contract options, environment variables, and one-line errors that lose nothing."""

import os
import signal
import subprocess
import sys
import threading
import time

import orjson
import pytest
from click.testing import CliRunner
from conftest import free_port
from factories import item

from mirror import hosts
from mirror.cli import cli
from mirror.fake_upstream import FakeUpstream
from mirror.settings import Settings
from mirror.store import SCHEMA_VERSION, open_store


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def build(settings, *extra):
    return invoke("build", "--upstream", settings.upstream, "--db", settings.db, "--out", settings.out, *extra)


def site_bytes(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def built(settings):
    result = build(settings)
    assert result.exit_code == 0, result.output
    return settings


def test_build_prints_a_summary(settings):
    result = build(settings)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("snapshot 1 (full, 5 requests): 120 rows, 47 servers from http://127.0.0.1:")
    assert lines[1].startswith("changes: 47 server_added, 120 version_added")
    assert lines[2] == "rejected entries: 0"
    assert "written" in lines[3] and lines[4].startswith("took ")


def test_options_come_from_the_environment(settings):
    env = {"MCP_MIRROR_UPSTREAM": settings.upstream, "MCP_MIRROR_DB": str(settings.db),
           "MCP_MIRROR_OUT": str(settings.out)}
    assert invoke("build", env=env).exit_code == 0
    assert (settings.out / "v0.1/x/mcp-mirror/rows/index.json").is_file()
    assert invoke("snapshots", env=env).output.startswith("1\t")


def test_crawl_then_render_a_past_snapshot(built):
    crawled = invoke("crawl", "--upstream", built.upstream, "--db", built.db)
    assert crawled.output.startswith("snapshot 2 (incremental):")
    out = built.out.parent / "old"
    result = invoke("render", "--db", built.db, "--out", out, "--snapshot", 1, "--base-url", "https://m.example/x")
    assert result.exit_code == 0 and result.output.startswith("snapshot 1 -> ")
    state = orjson.loads((out / "v0.1/x/mcp-mirror/state/index.json").read_bytes())
    assert (state["snapshot"]["id"], state["baseUrl"]) == (1, "https://m.example/x")


@pytest.mark.parametrize("fault, message", [
    ((500, b"oops", "text/plain"), "upstream answered HTTP 500"),
    ((404, b'{"title":"Not Found"}', "application/problem+json"), "upstream answered HTTP 404"),
    ((200, b"<html>hello</html>", "text/html"), "upstream answered non-JSON"),
    ((200, b'{"servers": []}', "application/json"), "upstream page has no metadata object"),
    ((200, b'{"servers": [], "metadata": "soon"}', "application/json"), "upstream page has no metadata object"),
    ((200, b'{"servers": {}, "metadata": {}}', "application/json"), "upstream page is malformed at servers"),
])
def test_upstream_faults_fail_in_one_line_and_keep_the_previous_snapshot_and_site(built, upstream, fault, message):
    before = site_bytes(built.out)
    upstream.registry.fail_next = [fault] * 5  # outlasts the retries of transient errors
    result = build(built)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("mcp-mirror: error: " + message)
    assert site_bytes(built.out) == before
    with open_store(built.db) as store:
        assert store.latest_ok_snapshot().id == 1
        assert store.list_snapshots()[-1].outcome == "failed"


def test_a_fault_on_a_later_page_saves_nothing(built, upstream):
    # 120 rows: the first page of 100 is fine, then the upstream breaks for good
    original = upstream.registry.handle
    calls = []

    def flaky(method, target):
        calls.append(target)
        return original(method, target) if len(calls) == 1 else (503, {"Content-Type": "text/plain"}, b"down")

    upstream.registry.handle = flaky
    result = invoke("crawl", "--full", "--upstream", built.upstream, "--db", built.db)
    assert result.exit_code == 1 and "HTTP 503" in result.output
    assert len(calls) == 5  # the first page, then the second tried 4 times
    with open_store(built.db) as store:
        assert [r.name for r in store.load_rows(1)] == [r.name for r in store.load_rows(store.latest_ok_snapshot().id)]
        assert store.table_counts()["versions"] == 120


def test_an_unreachable_upstream_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("crawl", "--upstream", url, "--db", tmp_path / "m.duckdb")
    assert result.exit_code == 1
    assert result.output.startswith(f"mcp-mirror: error: upstream unreachable: {url}/v0.1/")
    assert result.output.count("\n") == 1


def test_a_database_from_a_newer_version_is_refused(built):
    with open_store(built.db) as store:
        store.con.execute("UPDATE schema_version SET version = ?", [SCHEMA_VERSION + 5])
    for args in (["snapshots"], ["diff"], ["render", "--out", built.out], ["crawl", "--upstream", built.upstream]):
        result = invoke(*args, "--db", built.db)
        assert result.exit_code == 1, args
        assert "newer than this mcp-mirror knows" in result.output and result.output.count("\n") == 1


def test_an_output_path_that_is_a_file_is_refused(built, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep")
    result = invoke("render", "--db", built.db, "--out", target)
    assert result.exit_code == 1
    assert result.output == f"mcp-mirror: error: output path {target} is a file, not a directory (pass another --out)\n"
    assert target.read_text() == "keep"
    rebuilt = invoke("build", "--upstream", built.upstream, "--db", built.db, "--out", target)
    assert rebuilt.exit_code == 1 and "is a file" in rebuilt.output
    with open_store(built.db) as store:
        assert len(store.list_snapshots()) == 1  # refused before crawling


def test_missing_database_and_unknown_snapshot(tmp_path, built):
    assert "run `mcp-mirror crawl` first" in invoke("diff", "--db", tmp_path / "none.duckdb").output
    result = invoke("render", "--db", built.db, "--snapshot", 42)
    assert result.exit_code == 1 and "no snapshot 42" in result.output


def test_bad_urls_are_usage_errors(tmp_path):
    result = invoke("crawl", "--upstream", "ftp://x", "--db", tmp_path / "m.duckdb")
    assert result.exit_code == 2 and "--upstream" in result.output and "http(s)" in result.output


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run([sys.executable, "-m", "mirror", "--version"], capture_output=True, text=True,
                          env={**os.environ}, check=True)
    assert done.stdout.strip().startswith("mcp-mirror, version ")


def test_host_config_prints_each_profile(tmp_path):
    out = tmp_path / "site"
    nginx = invoke("host-config", "nginx", "--out", out, "--base-url", "https://example.org/some/prefix")
    assert nginx.exit_code == 0
    assert f'root "{out.resolve()}";' in nginx.output
    assert 'location ~ "(?s)^/some/prefix/v0\\.1/servers/?\\z" {' in nginx.output
    caddy = invoke("host-config", "caddy", "--out", out, "--base-url", "https://mcp.example.org")
    assert "https://mcp.example.org {" in caddy.output.splitlines()
    assert "function handler(event)" in invoke("host-config", "s3", "--out", out).output
    for profile in ("netlify", "cloudflare-pages", "static"):
        text = invoke("host-config", profile, "--out", out).output
        degrades = "#   - " in text if hosts.get_profile(profile).degradations else "nothing degrades" in text
        assert "lives in the tree" in text and degrades, profile
    bad = invoke("host-config", "apache", "--out", out)
    assert bad.exit_code == 2 and "apache" in bad.output
    weird = invoke("host-config", "nginx", "--out", out, "--base-url", 'https://x.org/a"b')
    assert weird.exit_code == 2 and "--base-url" in weird.output
    unquotable = invoke("host-config", "caddy", "--out", tmp_path / "{site}")
    assert unquotable.exit_code == 2 and "cannot quote" in unquotable.output


def test_host_config_reads_the_trees_own_profile_and_base_url(built):
    out = built.out.parent / "caddy-tree"
    assert invoke("render", "--db", built.db, "--out", out, "--profile", "caddy",
                  "--base-url", "https://mcp.example.org/reg").exit_code == 0
    own = invoke("host-config", "--out", out)
    assert own.exit_code == 0 and "https://mcp.example.org {" in own.output.splitlines()
    assert invoke("host-config", "caddy", "--out", out).output == own.output
    other = invoke("host-config", "nginx", "--out", out)
    assert other.exit_code == 2 and "rendered for the caddy profile, not nginx" in other.output
    moved = invoke("host-config", "--out", out, "--base-url", "https://elsewhere.example")
    assert moved.exit_code == 2 and "rendered for https://mcp.example.org/reg" in moved.output
    unknown = invoke("host-config", "--out", built.out.parent / "nothing-here")
    assert unknown.exit_code == 2 and "give the PROFILE" in unknown.output


def test_render_for_a_host_profile_records_it(built):
    out = built.out.parent / "pages"
    assert invoke("render", "--db", built.db, "--out", out, "--profile", "static").exit_code == 0
    state = orjson.loads((out / "v0.1/x/mcp-mirror/state/index.html").read_bytes())
    assert state["host"]["profile"] == "static" and state["host"]["queryRouting"] is False
    assert (out / "v0.1/servers/index.html").is_file() and (out / ".nojekyll").is_file()
    again = invoke("render", "--db", built.db, "--out", out, "--profile", "nginx")  # switching profiles cleans up
    assert again.exit_code == 0
    assert not (out / "v0.1/servers/index.html").exists() and (out / "v0.1/x/mcp-mirror/rows/index.json").is_file()


def test_a_killed_crawl_leaves_the_previous_snapshot_and_site(built, upstream):
    before = site_bytes(built.out)
    second_page = threading.Event()
    original = upstream.registry.handle

    def stall_on_second_page(method, target):
        if "cursor=" in target:
            second_page.set()
            threading.Event().wait(30)  # hold the request until the crawler is killed
        return original(method, target)

    upstream.registry.handle = stall_on_second_page
    crawler = subprocess.Popen([sys.executable, "-m", "mirror", "build", "--full", "--upstream", built.upstream,
                                "--db", str(built.db), "--out", str(built.out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert second_page.wait(30), "the crawler never asked for the second page"
    finally:
        crawler.send_signal(signal.SIGKILL)
        crawler.wait()
    upstream.registry.handle = original
    assert site_bytes(built.out) == before
    with open_store(built.db) as store:
        assert [s.id for s in store.list_snapshots()] == [1]
        assert len(store.load_rows(1)) == 120
    assert build(built).exit_code == 0  # and the next run works


def test_diff_never_prints_upstream_control_characters_raw(tmp_path):
    hostile = item("io.github.x/term", "1.0.0\x1b[2J\x07")
    hostile["server"]["description"] = "\u202eevil"
    with FakeUpstream([item("io.github.x/ok", "1.0.0"), hostile]) as up:
        settings = Settings(upstream=up.url, db=tmp_path / "m.duckdb", out=tmp_path / "site")
        assert build(settings).exit_code == 0
        shown = invoke("diff", "--db", settings.db)
    assert shown.exit_code == 0 and "rejected (1)" in shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "\\x1b[2J" in shown.output


def test_progress_is_drawn_only_on_a_terminal(monkeypatch, capsys):
    from mirror.cli import progress_display

    with progress_display() as progress:
        assert progress is None  # pytest's stderr is no terminal: cron and CI logs stay clean
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_display() as progress:
        progress("crawled 3 pages, 300 rows\x1b[2J")
        progress.count(3, 7)
    drawn = capsys.readouterr().err
    assert "crawled 3 pages, 300 rows\\x1b[2J" in drawn and "\x1b[2J" not in drawn
    assert "3/7" in drawn


def test_a_crawl_in_a_pipe_prints_no_progress(settings):
    result = build(settings)
    assert result.exit_code == 0 and "\x1b" not in result.output and "\r" not in result.output


def test_the_response_deadline_comes_from_its_option_or_the_environment(built, upstream):
    assert "--response-deadline" in invoke("crawl", "--help").output
    assert "MCP_MIRROR_RESPONSE_DEADLINE" in invoke("build", "--help").output
    before = site_bytes(built.out)
    answer = upstream.registry.handle

    def slow(method, target):
        time.sleep(0.5)
        return answer(method, target)

    upstream.registry.handle = slow
    result = invoke("build", "--upstream", built.upstream, "--db", built.db, "--out", built.out,
                    env={"MCP_MIRROR_RESPONSE_DEADLINE": "0.2"})
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith("mcp-mirror: error: upstream took more than 0.2 s to send one response: ")
    assert "gave up after 4 attempts" in result.output
    assert site_bytes(built.out) == before
