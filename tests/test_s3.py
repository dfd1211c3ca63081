"""Publishing into a real S3-compatible endpoint: moto in server mode on 127.0.0.1."""

import hashlib
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import orjson
import pytest
from click.testing import CliRunner
from conftest import free_port

from mirror import paths, pipeline, routes
from mirror.cli import cli
from mirror.hosts import CACHE_CONTROL, CORS_HEADERS
from mirror.plan import Cache
from mirror.publish import Manifest
from mirror.s3 import PENDING_KEY
from mirror.verify import verify_url

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "org-mirror"
PREFIX = "mcp"
URL = f"s3://{BUCKET}/{PREFIX}"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
MANIFEST = paths.manifest_file()
STATE = paths.state_file()


@pytest.fixture
def endpoint(monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    url = f"http://127.0.0.1:{server._port}"
    httpx.post(f"{url}/moto-api/reset")  # moto's backends are per process, not per server
    client = boto3.client("s3", endpoint_url=url)
    client.create_bucket(Bucket=BUCKET)
    # public reads, as behind CloudFront or a website endpoint: the tests fetch over plain HTTP
    client.put_bucket_policy(Bucket=BUCKET, Policy=orjson.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]
    }).decode())
    yield url
    server.stop()


@pytest.fixture
def crawled(settings):
    pipeline.crawl(settings)
    return settings


class Puts:
    """PUTs as boto3 sends them (its own event hook, not the target's bookkeeping)."""

    def __init__(self, client):
        self.keys = []
        client.meta.events.register("before-call.s3.PutObject", lambda params, **_: self.keys.append(
            params["url_path"].split("/", 2)[-1]))


def publish(settings, endpoint, client=None, **options):
    client = client or boto3.client("s3", endpoint_url=endpoint)
    return pipeline.publish_bucket(settings.model_copy(update={"profile": "s3"}), URL, client=client, **options)


HTTP = httpx.Client(timeout=30)  # one pool: a client per request costs more than moto's answer


def fetch(endpoint, path):
    return HTTP.get(f"{endpoint}/{BUCKET}/{PREFIX}/{path}")


def bucket_manifest(endpoint):
    return Manifest.from_bytes(fetch(endpoint, MANIFEST).content)


def local_dir(tmp_path):
    local = tmp_path / "local"
    local.mkdir(exist_ok=True)
    for version in ("1.0.0", "1.1.0"):
        (local / f"tools-{version}.json").write_bytes(orjson.dumps({
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": "com.acme.internal/tools", "description": "Acme's tools", "version": version,
            "remotes": [{"type": "streamable-http", "url": "https://mcp.acme.example/tools"}]}))
    return local


def test_publish_sets_type_and_cache_on_every_key_and_a_second_run_sends_only_what_changed(crawled, endpoint,
                                                                                          tmp_path):
    client = boto3.client("s3", endpoint_url=endpoint)
    puts = Puts(client)
    first = publish(crawled, endpoint, client)
    manifest = bucket_manifest(endpoint)
    assert len(puts.keys) == len(manifest.records) + 2 == len(first.actions.puts)
    for record in list(manifest.records.values())[:: max(len(manifest.records) // 40, 1)]:
        head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{record.path}")
        assert head["ContentType"] == record.media_type
        assert head["CacheControl"] == CACHE_CONTROL[Cache(record.cache)]
        assert hashlib.sha256(fetch(endpoint, record.path).content).hexdigest() == record.sha256

    puts.keys.clear()
    publish(crawled, endpoint, client)  # same snapshot: nothing changes, not even the state's bytes
    assert puts.keys == []

    later = crawled.model_copy(update={"local": local_dir(tmp_path)})
    second = publish(later, endpoint, client)
    new = bucket_manifest(endpoint)
    changed = {path for path, record in new.records.items()
               if path not in manifest.records or manifest.records[path].sha256 != record.sha256}
    superseded = set(manifest.records) - set(new.records)  # pages the new rows moved
    assert set(puts.keys) == changed | {MANIFEST, STATE} | ({PENDING_KEY} if superseded else set())
    assert len(changed) + 2 < len(new.records) // 4
    assert second.actions.deletes == []
    assert "v0.1/servers/com.acme.internal/tools/versions/1.1.0/index.json" in changed


def test_superseded_keys_are_deleted_only_after_the_grace_period(crawled, endpoint, tmp_path):
    publish(crawled.model_copy(update={"local": local_dir(tmp_path)}), endpoint)
    gone = "v0.1/servers/com.acme.internal/tools/versions/1.1.0/index.json"
    second = publish(crawled, endpoint)  # the local server is gone from the tree
    assert gone in second.actions.deferred and second.actions.deletes == []
    assert fetch(endpoint, gone).status_code == 200  # a client part-way through still finds it
    pending = orjson.loads(fetch(endpoint, PENDING_KEY).content)["pending"]
    assert gone in pending and gone not in bucket_manifest(endpoint).records
    third = publish(crawled, endpoint, grace_hours=0)
    assert gone in third.actions.deletes
    assert fetch(endpoint, gone).status_code == 404
    assert orjson.loads(fetch(endpoint, PENDING_KEY).content)["pending"] == {}


def test_dry_run_lists_what_it_would_do_and_changes_nothing(crawled, endpoint):
    result = CliRunner().invoke(cli, ["publish", URL, "--db", str(crawled.db), "--endpoint-url", endpoint,
                                      "--base-url", "http://mirror.test", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"would put {STATE} (application/json" in result.output
    assert "would upload" in result.output.splitlines()[-1]
    assert boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def kill_publish(settings, endpoint, tmp_path, *options, at, nth):
    """`mcp-mirror publish` (with the local servers, so there is something to change) in its own
    process, SIGKILLed on the `nth` line of its --verbose output that starts with `at`."""
    command = [sys.executable, "-m", "mirror", "publish", URL, "--db", str(settings.db), "--endpoint-url", endpoint,
               "--local", str(local_dir(tmp_path)), "--base-url", settings.base_url, "--verbose", *options]
    env = {**os.environ, **CREDENTIALS, "PYTHONPATH": str(Path(__file__).parent.parent)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    seen = 0
    for line in process.stdout:
        seen += line.startswith(at)
        if seen == nth:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("phase", ["new keys", "overwrites"])
def test_a_publish_killed_midway_leaves_the_previous_tree_served_and_the_next_completes(crawled, endpoint, tmp_path,
                                                                                      phase):
    publish(crawled, endpoint)
    old = bucket_manifest(endpoint)
    old_state = fetch(endpoint, STATE).content
    plan = [path for path in publish(crawled.model_copy(update={"local": local_dir(tmp_path)}), endpoint,
                                     dry_run=True).actions.puts if path != PENDING_KEY]  # after the state
    added = sum(path not in old.records for path in plan[:-2])
    assert plan[-2:] == [MANIFEST, STATE] and 4 < added < len(plan) - 4
    assert all(path not in old.records for path in plan[:added])  # new keys first, then overwrites
    kill_after = added - 2 if phase == "new keys" else added + 3
    kill_publish(crawled, endpoint, tmp_path, at=b"put ", nth=kill_after)

    # Clients start at the state document: still the old one, naming the old manifest ...
    assert fetch(endpoint, STATE).content == old_state
    assert orjson.loads(old_state)["manifest"]["sha256"] == old.sha256 == bucket_manifest(endpoint).sha256
    served = {path: hashlib.sha256(fetch(endpoint, path).content).hexdigest() for path in old.records}

    publish(crawled.model_copy(update={"local": local_dir(tmp_path)}), endpoint)  # the next run completes
    new = bucket_manifest(endpoint)
    assert new.sha256 != old.sha256
    assert orjson.loads(fetch(endpoint, STATE).content)["manifest"]["sha256"] == new.sha256
    for record in new.records.values():
        assert hashlib.sha256(fetch(endpoint, record.path).content).hexdigest() == record.sha256, record.path

    # ... every file it lists is still there (nothing is deleted before the grace period): with
    # its old bytes when the kill came while new keys went up, else with its old or its new ones.
    for path, digest in served.items():
        allowed = {old.records[path].sha256} | ({new.records[path].sha256} if path in new.records and
                                                kill_after > added else set())
        assert digest in allowed, path
    if kill_after > added:
        assert any(digest != old.records[path].sha256 for path, digest in served.items())


# -- whole generations behind a CloudFront distribution (moto's CloudFront API) ----------


@pytest.fixture
def distribution(endpoint, monkeypatch):
    """A distribution whose one origin is the bucket at /mcp; the publisher finds CloudFront's
    API where AWS_ENDPOINT_URL_CLOUDFRONT says (moto serves it beside S3)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", endpoint)
    cloudfront = boto3.client("cloudfront", endpoint_url=endpoint)
    created = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": "mcp-mirror-tests", "Comment": "", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "bucket", "DomainName": f"{BUCKET}.s3.amazonaws.com",
                                              "OriginPath": f"/{PREFIX}",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "bucket", "ViewerProtocolPolicy": "allow-all", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": True, "Cookies": {"Forward": "none"}}}})
    return created["Distribution"]["Id"]


def origin_path(endpoint, distribution_id):
    config = boto3.client("cloudfront", endpoint_url=endpoint).get_distribution_config(Id=distribution_id)
    return config["DistributionConfig"]["Origins"]["Items"][0]["OriginPath"]


def served(endpoint, distribution_id, path):
    """A key as the distribution's edges fetch it now: under the origin path."""
    return HTTP.get(f"{endpoint}/{BUCKET}{origin_path(endpoint, distribution_id)}/{path}")


def served_digests(endpoint, distribution_id, manifest):
    """sha256 of every file of `manifest` as the edges would fetch it now."""
    root = f"{endpoint}/{BUCKET}{origin_path(endpoint, distribution_id)}"
    return {path: hashlib.sha256(HTTP.get(f"{root}/{path}").content).hexdigest() for path in manifest.records}


def keys_under(endpoint, prefix):
    pages = boto3.client("s3", endpoint_url=endpoint).get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents") or ()}


def publish_generation(settings, endpoint, distribution_id, client=None, **options):
    return publish(settings, endpoint, client, cloudfront_distribution=distribution_id, **options)


@pytest.fixture
def edge(endpoint, distribution):
    """A CloudFront-like edge that fetches from the bucket under the distribution's origin path now."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Edge", (_Edge,), {
        "origin": f"{endpoint}/{BUCKET}", "origin_path": staticmethod(lambda: origin_path(endpoint, distribution))}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_behind_cloudfront_each_publish_is_a_whole_generation_switched_in_one_update(crawled, endpoint, distribution,
                                                                                     edge, tmp_path):
    client = boto3.client("s3", endpoint_url=endpoint)
    crawled = crawled.model_copy(update={"base_url": edge})
    first = publish_generation(crawled, endpoint, distribution, client)
    assert first.actions.generation == "g000001" and origin_path(endpoint, distribution) == f"/{PREFIX}/g000001"
    old = Manifest.from_bytes(served(endpoint, distribution, MANIFEST).content)
    assert first.actions.copies == [] and len(first.actions.puts) == len(old.records) + 2

    puts = Puts(client)
    later = crawled.model_copy(update={"local": local_dir(tmp_path)})
    second = publish_generation(later, endpoint, distribution, client)
    assert origin_path(endpoint, distribution) == f"/{PREFIX}/g000002"
    new = Manifest.from_bytes(served(endpoint, distribution, MANIFEST).content)
    changed = {path for path, record in new.records.items()
               if path not in old.records or old.records[path].sha256 != record.sha256}
    # only what changed is sent; the rest is copied inside the bucket, keeping its headers
    assert set(puts.keys) == {f"g000002/{path}" for path in changed | {MANIFEST, STATE}} | {PENDING_KEY}
    assert set(second.actions.copies) == set(new.records) - changed
    for record in list(new.records.values())[:: max(len(new.records) // 40, 1)]:
        head = client.head_object(Bucket=BUCKET, Key=f"{PREFIX}/g000002/{record.path}")
        assert (head["ContentType"], head["CacheControl"]) == (record.media_type, CACHE_CONTROL[Cache(record.cache)])
        assert hashlib.sha256(served(endpoint, distribution, record.path).content).hexdigest() == record.sha256
    # the generation before stays whole for clients part-way through paging, until the grace period ends
    assert second.actions.deferred == ["g000001/"] and keys_under(endpoint, f"{PREFIX}/g000001/")
    third = publish_generation(later, endpoint, distribution, client, grace_hours=0)  # no change: no new generation
    assert third.actions.generation is None and third.actions.deletes == ["g000001/"]
    assert keys_under(endpoint, f"{PREFIX}/g000001/") == set()
    assert origin_path(endpoint, distribution) == f"/{PREFIX}/g000002"
    # and VS Code's and Copilot's requests pass through the edge
    report = verify_url(edge)
    assert report.ok, report.problems
    latest = httpx.get(f"{edge}/v0.1/servers/com.acme.internal%2Ftools/versions/latest").json()
    assert latest["server"]["version"] == "1.1.0"


@pytest.mark.parametrize(("moment", "nth"), [(b"copy ", 40), (f"put g000002/{MANIFEST} ".encode(), 1)],
                         ids=["while copying", "with all but the manifest and state up"])
def test_a_generation_publish_killed_at_any_moment_leaves_the_previous_tree_served_whole(crawled, endpoint,
                                                                                        distribution, tmp_path, moment,
                                                                                        nth):
    """Killed while unchanged keys are copied, or with everything but the manifest and state up."""
    publish_generation(crawled, endpoint, distribution)
    old = Manifest.from_bytes(served(endpoint, distribution, MANIFEST).content)
    old_state = served(endpoint, distribution, STATE).content
    kill_publish(crawled, endpoint, tmp_path, "--cloudfront-distribution", distribution, at=moment, nth=nth)
    if b"put" in moment:
        assert keys_under(endpoint, f"{PREFIX}/g000002/")  # every changed file was up

    # the edges still serve the previous generation, every file byte for byte
    assert origin_path(endpoint, distribution) == f"/{PREFIX}/g000001"
    assert served(endpoint, distribution, STATE).content == old_state
    assert served_digests(endpoint, distribution, old) == {path: r.sha256 for path, r in old.records.items()}

    # the next publish completes in a fresh generation; the half-made one is deleted after the grace period
    again = publish_generation(crawled.model_copy(update={"local": local_dir(tmp_path)}), endpoint, distribution)
    assert again.actions.generation == "g000003" and origin_path(endpoint, distribution) == f"/{PREFIX}/g000003"
    assert set(again.actions.deferred) == {"g000001/", "g000002/"}
    new = Manifest.from_bytes(served(endpoint, distribution, MANIFEST).content)
    assert orjson.loads(served(endpoint, distribution, STATE).content)["manifest"]["sha256"] == new.sha256
    assert served_digests(endpoint, distribution, new) == {path: r.sha256 for path, r in new.records.items()}


def test_a_distribution_that_serves_another_prefix_is_refused(crawled, endpoint, distribution):
    cloudfront = boto3.client("cloudfront", endpoint_url=endpoint)
    config = cloudfront.get_distribution_config(Id=distribution)
    config["DistributionConfig"]["Origins"]["Items"][0]["OriginPath"] = "/elsewhere"
    cloudfront.update_distribution(Id=distribution, IfMatch=config["ETag"],
                                   DistributionConfig=config["DistributionConfig"])
    result = CliRunner().invoke(cli, ["publish", URL, "--db", str(crawled.db), "--endpoint-url", endpoint,
                                      "--cloudfront-distribution", distribution])
    assert result.exit_code != 0
    assert "serves /elsewhere/, which is not s3://org-mirror/mcp/" in result.output
    assert keys_under(endpoint, "") == set()


class _Edge(BaseHTTPRequestHandler):
    """What CloudFront does in front of the bucket: the generated function's routing
    (`mirror.routes`, which test_cloudfront proves it equals) and the response-headers policy.
    `origin` is where it fetches from; `origin_path`, when set, says the distribution's now."""

    origin = ""
    origin_path = None

    def do_GET(self):  # noqa: N802
        if self.origin_path is not None:
            self.origin = f"{self.origin}{self.origin_path()}"
        parts = urlsplit(self.path)
        answer = routes.resolve(unquote(parts.path), dict(parse_qsl(parts.query)))

        fetched = {}

        def exists(path):  # moto answers an anonymous HEAD 403 even where GET is public
            fetched[path] = HTTP.get(f"{self.origin}/{path}")
            return fetched[path].status_code == 200

        status, path = routes.pick(answer, exists)
        body, kind = b"", "text/plain"
        if path is not None:
            body, kind = fetched[path].content, fetched[path].headers["content-type"]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        for name, value in CORS_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_vscode_and_copilot_requests_pass_against_the_tree_served_from_the_bucket(crawled, endpoint, tmp_path):
    edge = ThreadingHTTPServer(("127.0.0.1", 0), type("Edge", (_Edge,), {"origin": f"{endpoint}/{BUCKET}/{PREFIX}"}))
    threading.Thread(target=edge.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{edge.server_address[1]}"
        publish(crawled.model_copy(update={"base_url": base, "local": local_dir(tmp_path)}), endpoint)
        report = verify_url(base)
        assert report.ok, report.problems
        assert report.checked > 50
        latest = httpx.get(f"{base}/v0.1/servers/com.acme.internal%2Ftools/versions/latest").json()
        assert latest["server"]["version"] == "1.1.0"
    finally:
        edge.shutdown()
        edge.server_close()

