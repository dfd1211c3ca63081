"""The generated `_redirects`, run through Netlify's own rule matcher (netlify-redirector,
the library Netlify's CLI dev server uses), must send each request where routes.py does."""

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest
from trees import plan_site

from mirror import paths, routes
from mirror.models import Snapshot

MATCHER = Path(__file__).resolve().parent.parent / ".venv" / "node" / "node_modules" / "netlify-redirector"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not MATCHER.is_dir(),
                                reason="needs node and netlify-redirector (make install fetches it with npm)")

# Requests Netlify can route exactly; the ones it cannot validate are listed in the README.
REQUESTS = [
    "/v0.1/servers/io.github.x/y/versions", "/v0/servers/io.github.x/y/versions/latest",
    "/v0.1/servers/io.github.x/y/versions?include_deleted=true",
    "/v0.1/servers/io.github.x/y/versions/latest", "/v0.1/servers/com.example/A/versions/1.0.0+build.7",
    "/v0.1/servers/com.example/A/versions/2.0.0?include_deleted=true", "/v0.1/health", "/v0.1/x/mcp-mirror/state",
]
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


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_netlify_routes_like_serve(prefix):
    plan = plan_site(SNAPSHOT, [], base_url=f"https://mirror.netlify.app{prefix}", host="netlify")
    rules = plan["_redirects"].decode()
    requests = [(prefix + target.partition("?")[0], target.partition("?")[2]) for target in REQUESTS]
    for target, got in zip(REQUESTS, match(rules, requests), strict=True):
        path, _, query = target.partition("?")
        answer = routes.resolve(unquote(path), dict(parse_qsl(query)))
        assert got is not None and got["force"], target
        assert (got["status"], got["to"]) == (answer.status, "/" + answer.files[0]), target


def test_unknown_api_paths_answer_a_problem_404():
    plan = plan_site(SNAPSHOT, [], base_url="https://mirror.netlify.app", host="netlify")
    rules = plan["_redirects"].decode()
    unknown_server, unknown_endpoint = match(rules, [("/v0.1/servers/a/b/c/d/e", ""), ("/v0.1/nope", "")])
    for got, slug in ((unknown_server, "server-not-found"), (unknown_endpoint, "endpoint-not-found")):
        assert (got["status"], got["to"]) == (404, "/" + paths.problem_file(slug))
