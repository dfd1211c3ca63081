"""`mcp-mirror verify`: a tree against its manifest, and a deployed copy over HTTP."""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import orjson
from click.testing import CliRunner
from conftest import serving

from mirror import paths, pipeline
from mirror.cli import cli


def test_a_served_copy_passes_the_client_sequences(sample_tree):
    out = sample_tree().out
    with serving(out) as server:
        report = pipeline.verify(out, against=server.url)
    assert report.ok, report.problems
    assert report.checked > 50  # the probe, the gallery pages, each server's latest and versions


def test_a_plain_file_server_fails_them_with_reasons(sample_tree):
    out = sample_tree().out
    handler = partial(SimpleHTTPRequestHandler, directory=str(out.resolve()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = pipeline.verify(out, against=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert not report.ok
    assert any("expected 200" in problem for problem in report.problems)  # /v0.1/servers is a directory here


def test_the_command_lists_problems_and_exits_1(settings):
    pipeline.build(settings)
    runner = CliRunner()
    assert runner.invoke(cli, ["verify", str(settings.out)]).exit_code == 0
    state = settings.out / paths.state_file()
    document = orjson.loads(state.read_bytes())
    document["manifest"]["sha256"] = "0" * 64
    state.unlink()
    state.write_bytes(orjson.dumps(document))
    result = runner.invoke(cli, ["verify", str(settings.out)])
    assert result.exit_code == 1
    assert "its sha256 is not the one" in result.stdout
    assert result.stderr.startswith("mcp-mirror: error: ") and "1 problem in" in result.stderr
