"""The generated `_redirects`, run through Netlify's own rule matcher (netlify-redirector,
the library Netlify's CLI dev server uses), must send each request where routes.py does."""

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest
from trees import plan_site

from mirror import hosts, paths, routes
from mirror.models import Snapshot

MATCHER = Path(__file__).resolve().parent.parent / ".venv" / "node" / "node_modules" / "netlify-redirector"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not MATCHER.is_dir(),
                                reason="needs node and netlify-redirector (make install fetches it with npm)")

# Requests Netlify routes with `_redirects` alone; the ones it cannot validate are listed in the
# README. GET /v0.1/servers (and /v0/servers) is the Netlify Function's: see FUNCTION_PATHS.
REQUESTS = [
    "/v0.1/servers/io.github.x/y/versions", "/v0.1/servers/io.github.x/y/versions?include_deleted=true",
    "/v0.1/servers/io.github.x/y/versions/latest", "/v0.1/servers/com.example/A/versions/1.0.0+build.7",
    "/v0.1/servers/com.example/A/versions/2.0.0?include_deleted=true", "/v0.1/health", "/v0.1/x/mcp-mirror/state",
    "/v0.1/servers/io.github.x%2Fy/versions", "/v0.1/servers/io.github.x%2Fy/versions/1.0.0%2Bb",
    "/v0.1/version", "/v0.1/x/mcp-mirror/rows", "/v0.1/x/mcp-mirror/changes",
]
FUNCTION_PATHS = ["/v0.1/servers", "/v0/servers"]
FUNCTION_QUERIES = ["", "limit=5", "search=git", "include_deleted=true", "version=1.0.0&cursor=a%3A1"]
SNAPSHOT = Snapshot(1, "2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z", "https://up", "full", "ok", None, 0, 0, 0)
HARNESS = """
const redirector = require(%s);
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
redirector.parsePlain(input.rules, {}).then(matcher => {
  const out = input.requests.map(([path, query]) => {
    const m = matcher.match({scheme: 'https', host: 'mirror.netlify.app', path, query,
                             getHeader: () => '', getCookie: () => ''});
    return m ? {to: m.to, status: m.status, force: m.force} : null;
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def match(rules: str, requests: list[tuple[str, str]]) -> list[dict]:
    done = subprocess.run(["node", "-e", HARNESS % json.dumps(str(MATCHER))], capture_output=True, text=True,
                          input=json.dumps({"rules": rules, "requests": requests}), check=True)
    return json.loads(done.stdout)


def rules_for(prefix: str) -> str:
    plan = plan_site(SNAPSHOT, [], base_url=f"https://mirror.netlify.app{prefix}", host="netlify")
    return plan["_redirects"].decode()


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_netlify_routes_like_serve(prefix):
    rules = rules_for(prefix)
    requests = [(prefix + target.partition("?")[0], target.partition("?")[2]) for target in REQUESTS]
    for target, got in zip(REQUESTS, match(rules, requests), strict=True):
        path, _, query = target.partition("?")
        answer = routes.resolve(unquote(path), dict(parse_qsl(query)), computes=True)
        assert got is not None and got["force"], target
        # a name sent with %2F stays one segment, encoded; Netlify decodes it to read the file
        assert (got["status"], unquote(got["to"])) == (answer.status, "/" + answer.files[0]), target


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_v0_routes_like_v0_1(prefix):
    rules = rules_for(prefix)
    targets = [*REQUESTS, "/v0.1/servers/a/b/c/d/e", "/v0.1/nope"]
    v0 = [(prefix + "/v0" + t.partition("?")[0][len("/v0.1"):], t.partition("?")[2]) for t in targets]
    v0_1 = [(prefix + t.partition("?")[0], t.partition("?")[2]) for t in targets]
    assert match(rules, v0) == match(rules, v0_1)


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_no_rule_takes_the_functions_paths_or_what_it_reads(prefix):
    """The function's own paths, and the files it reads from the deploy's root (the rows index,
    each version's documents), are never rewritten: at most an unforced 404 fallback matches,
    which Netlify applies only when no function and no file answers the path."""
    index = hosts.get_profile("netlify").index_name
    version = paths.version_dir("com.example/A", "1.0.0+build.7")
    documents = [paths.rows_index_file(index), paths.view_file(version, index=index),
                 paths.view_file(version, deleted=True)]
    requests = [(prefix + path, query) for path in FUNCTION_PATHS for query in FUNCTION_QUERIES]
    requests += [("/" + document, "") for document in documents]
    for request, got in zip(requests, match(rules_for(prefix), requests), strict=True):
        assert got is None or (got["status"] == 404 and not got["force"]), (request, got)


def test_unknown_api_paths_answer_a_problem_404():
    plan = plan_site(SNAPSHOT, [], base_url="https://mirror.netlify.app", host="netlify")
    rules = plan["_redirects"].decode()
    unknown_server, unknown_endpoint = match(rules, [("/v0.1/servers/a/b/c/d/e", ""), ("/v0.1/nope", "")])
    for got, slug in ((unknown_server, "server-not-found"), (unknown_endpoint, "endpoint-not-found")):
        assert (got["status"], got["to"]) == (404, "/" + paths.problem_file(slug))
