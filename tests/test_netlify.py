"""The generated `_redirects`, run through Netlify's own rule matcher (netlify-redirector,
the library Netlify's CLI dev server uses): every API path is the Netlify Function's (it
routes them as routes.py does, tests/test_functions.py), so no rule may take one, nor a file
the function reads; the rules left map a base path to the tree and hide the host's files."""

import json
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from trees import plan_site

from mirror import hosts, paths
from mirror.models import Snapshot

MATCHER = Path(__file__).resolve().parent.parent / ".venv" / "node" / "node_modules" / "netlify-redirector"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not MATCHER.is_dir(),
                                reason="needs node and netlify-redirector (make install fetches it with npm)")

# API paths: the function's, under the base and /v0. The list's queries too.
API_REQUESTS = [
    "/v0.1/servers", "/v0.1/servers?limit=5", "/v0.1/servers?search=git", "/v0.1/servers?include_deleted=true",
    "/v0.1/servers?version=1.0.0&cursor=a%3A1", "/v0.1/servers/", "/v0.1",
    "/v0.1/servers/io.github.x/y/versions", "/v0.1/servers/io.github.x/y/versions?include_deleted=true",
    "/v0.1/servers/io.github.x/y/versions/latest", "/v0.1/servers/com.example/A/versions/1.0.0+build.7",
    "/v0.1/servers/com.example/A/versions/2.0.0?include_deleted=true", "/v0.1/health", "/v0.1/x/mcp-mirror/state",
    "/v0.1/servers/io.github.x%2Fy/versions", "/v0.1/servers/io.github.x%2Fy/versions/1.0.0%2Bb",
    "/v0.1/version", "/v0.1/x/mcp-mirror/rows", "/v0.1/x/mcp-mirror/changes", "/v0.1/servers/a/b/c/d/e", "/v0.1/nope",
]
API_REQUESTS += ["/v0" + target[len("/v0.1"):] for target in API_REQUESTS]
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
    return site_for(prefix)["_redirects"].decode()


def site_for(prefix: str) -> dict[str, bytes]:
    return plan_site(SNAPSHOT, [], base_url=f"https://mirror.netlify.app{prefix}", host="netlify")


def split(target: str, prefix: str = "") -> tuple[str, str]:
    path, _, query = target.partition("?")
    return prefix + path, query


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_the_function_takes_every_api_path(prefix):
    """Its config.path (URLPattern: `*` is any rest of the path) covers each API path under the
    base, and no rule takes one but a prefix's unforced mapping to the root, which Netlify tries
    only after the function (netlify dev: tests/test_functions.py)."""
    function = site_for(prefix)[f"{hosts.NETLIFY_FUNCTIONS}/mcp-query.mjs"].decode()
    config = re.search(r"^export const config = (.*);$", function, re.MULTILINE)
    assert config is not None
    assert json.loads(re.sub(r"(\w+):", r'"\1":', config.group(1))) == {
        "path": hosts.function_paths(prefix), "excludedPath": hosts.function_reads(hosts.get_profile("netlify"))}
    requests = [split(target, prefix) for target in API_REQUESTS]
    for (path, query), got in zip(requests, match(rules_for(prefix), requests), strict=True):
        assert any(fnmatchcase(path, pattern) for pattern in hosts.function_paths(prefix)), path
        unforced = {"to": path[len(prefix):], "status": 200, "force": False} if prefix else None
        assert got is None or got == unforced, (path, query, got)


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_no_rule_takes_what_the_function_reads(prefix):
    """The files the function reads from the deploy's root (the rows index, each version's
    documents, the problems): no rule takes one, and the function leaves them to the deploy."""
    index = hosts.get_profile("netlify").index_name
    version = paths.version_dir("com.example/A", "1.0.0+build.7")
    documents = [paths.rows_index_file(index), paths.view_file(version, index=index),
                 paths.view_file(version, deleted=True), paths.problem_file("server-not-found"),
                 paths.view_file(paths.versions_dir("io.github.x/y"), deleted=True)]
    requests = [("/" + document, "") for document in documents]
    assert match(rules_for(prefix), requests) == [None] * len(requests)
    excluded = hosts.function_reads(hosts.get_profile("netlify"))
    assert all(any(fnmatchcase(path, pattern) for pattern in excluded) for path, _ in requests)
    # and what clients ask stays the function's
    asked = [split(target, prefix)[0] for target in API_REQUESTS]
    assert not any(fnmatchcase(path, pattern) for pattern in excluded for path in asked)


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_the_hosts_files_are_never_served(prefix):
    requests = [(f"{base}/{hosts.NETLIFY_FUNCTIONS}/mcp-query.mjs", "") for base in {"", prefix}]
    for request, got in zip(requests, match(rules_for(prefix), requests), strict=True):
        problem = "/" + paths.problem_file("endpoint-not-found")
        assert (got["status"], got["force"], got["to"]) == (404, True, problem), request


def test_a_prefix_maps_the_rest_of_the_tree_to_the_root():
    requests = [("/some/prefix/index.html", ""), ("/some/prefix/assets/catalog.css", ""), ("/some/prefix/", "")]
    got = match(rules_for("/some/prefix"), requests)
    assert [(m["status"], m["force"], m["to"]) for m in got] == [
        (200, False, "/index.html"), (200, False, "/assets/catalog.css"), (200, False, "/")]
    assert match(rules_for(""), [("/index.html", ""), ("/v0.1/servers/a/b/versions/index.json", "")]) == [None, None]


@pytest.mark.parametrize("prefix", ["", "/some/prefix"])
def test_discovery_documents_and_cards_are_never_redirected(prefix):
    """ARD's paths and the Server Cards are the deploy's files: no rule takes them at the root,
    and under a prefix only the unforced 200 rewrite to the root does (no 3xx, which importers
    such as MCP Gateway Registry's refuse)."""
    targets = [paths.ARD_FILE, paths.AI_CATALOG_FILE, paths.ard_page_file(2),
               paths.card_file("com.example/A", "1.0.0+build.7")]
    requests = [(f"{prefix}/{target}", "") for target in targets]
    unforced = [{"to": f"/{target}", "status": 200, "force": False} for target in targets]
    assert match(rules_for(prefix), requests) == (unforced if prefix else [None] * len(targets))
