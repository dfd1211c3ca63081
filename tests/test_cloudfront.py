"""The generated CloudFront Function, run in node, must route exactly as mirror/routes.py."""

import json
import shutil
import subprocess
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, quote, unquote

import pytest

from mirror import hosts, routes

REQUESTS = [
    "/v0.1/servers", "/v0.1/servers/", "/v0.1/servers?limit=1", "/v0.1/servers?limit=50&version=latest",
    "/v0.1/servers?limit=50&version=latest&cursor=30-30", "/v0.1/servers?include_deleted=true&limit=100",
    "/v0.1/servers?version=latest&include_deleted=1", "/v0.1/servers?updated_since=2025-01-01T00%3A00%3A00Z",
    "/v0.1/servers?updated_since=2025-01-01T00:00:00%2B02:00", "/v0.1/servers?limit=0", "/v0.1/servers?limit=abc",
    "/v0.1/servers?cursor=zzz", "/v0.1/servers?search=time", "/v0.1/servers?version=1.0.0",
    "/v0.1/servers?updated_since=yesterday", "/v0.1/servers?include_deleted=maybe",
    "/v0.1/servers?updated_since=2025-01-01T00:00:00Z&include_deleted=false",
    "/v0.1/servers/io.github.x%2Fy/versions", "/v0.1/servers/io.github.x%2Fy/versions?include_deleted=true",
    "/v0.1/servers/io.github.x%2Fy/versions/latest", "/v0.1/servers/com.example%2FA/versions/1.0.0%2Bbuild.7",
    "/v0.1/servers/com.example%2FA/versions/1.0.0+build.7?include_deleted=true", "/v0.1/health",
    "/v0.1/x/mcp-mirror/state", "/v0.1/servers/a%2Fb/versions?include_deleted=nope",
    "/v0/servers", "/v0/servers?limit=50&version=latest", "/v0/servers?version=latest&limit=100",
    "/v0/servers/io.github.x%2Fy/versions/latest", "/v0/health",
]
PREFIXES = ["", "/some/prefix"]

HARNESS = """
%s
var requests = JSON.parse(require('fs').readFileSync(0, 'utf8'));
var out = requests.map(function (r) {
  var qs = {};
  r.query.forEach(function (kv) { if (!(kv[0] in qs)) qs[kv[0]] = { value: kv[1] }; });
  var result = handler({ request: { method: r.method, uri: r.uri, querystring: qs, headers: {} } });
  return result.statusCode ? { status: result.statusCode, body: result.body ? JSON.parse(result.body.data) : null,
                               headers: result.headers }
                           : { uri: result.uri };
});
process.stdout.write(JSON.stringify(out));
"""


def run_function(prefix: str, requests: list[dict]) -> list[dict]:
    source = hosts.host_config("s3", out=PurePosixPath("/srv/site"), base_url=f"https://cdn.example{prefix}")
    done = subprocess.run(["node", "-e", HARNESS % source], input=json.dumps(requests), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_cloudfront_function_routes_like_serve(prefix):
    requests = []
    for target in REQUESTS:
        path, _, query = target.partition("?")
        # CloudFront hands the function the path as sent and query values still encoded
        requests.append({"method": "GET", "uri": prefix + path,
                         "query": [[k, quote(v, safe="")] for k, v in parse_qsl(query, keep_blank_values=True)]})
    results = run_function(prefix, requests)
    for target, result in zip(REQUESTS, results, strict=True):
        path, _, query = target.partition("?")
        answer = routes.resolve(unquote(path), dict(parse_qsl(query, keep_blank_values=True)))
        expected = answer.files[0]
        if answer.status >= 400:
            assert result["status"] == answer.status, target
            assert result["body"]["status"] == answer.status, target
            assert result["headers"]["content-type"]["value"] == "application/problem+json", target
        else:
            assert unquote(result["uri"]) == "/" + str(expected), (target, result)
            assert "%2B" in result["uri"] or "+" not in str(expected), target  # S3 keys: '+' must be encoded


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_cloudfront_function_answers_preflight_and_refuses_paths_outside_the_prefix():
    preflight, outside = run_function("/mcp", [{"method": "OPTIONS", "uri": "/mcp/v0.1/servers", "query": []},
                                               {"method": "GET", "uri": "/other/v0.1/servers", "query": []}])
    assert preflight["status"] == 204
    assert preflight["headers"]["access-control-allow-origin"]["value"] == "*"
    assert preflight["headers"]["access-control-max-age"]["value"] == hosts.PREFLIGHT_MAX_AGE
    assert outside["status"] == 404
