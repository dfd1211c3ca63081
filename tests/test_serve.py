"""`mcp-mirror serve` as a small private host: nothing outside the tree, no listings, logs."""

import socket
import threading

import httpx
import pytest
from conftest import copy_tree, serving

from mirror.errors import RenderError
from mirror.serve import MirrorServer, normalize


@pytest.fixture
def site(sample_tree):
    """The session's build of the sample: read only."""
    return sample_tree().out


def raw_get(server, target: str) -> tuple[int, bytes]:
    """A request line sent as is: HTTP clients normalise `..` before it leaves them."""
    with socket.create_connection(server.server_address[:2]) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_normalize_resolves_dots_and_refuses_escapes():
    assert normalize("/v0.1/./servers//a%2Fb/versions") == "/v0.1/servers/a/b/versions"
    assert normalize("/v0.1/x/../servers") == "/v0.1/servers"
    assert normalize("/../etc/passwd") is None
    assert normalize("/%2e%2e/%2e%2e/etc/passwd") is None
    assert normalize("/v0.1/%00") is None


def test_nothing_outside_the_tree_is_reachable(site, tmp_path):
    site = copy_tree(site, tmp_path / "site")  # a link is planted in it
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (site / "v0.1" / "leak").symlink_to(secret)
    with serving(site) as server:
        for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/v0.1/..%2f..%2fsecret.txt", "/v0.1/leak",
                       "/mirror.duckdb"):
            status, body = raw_get(server, target)
            assert status in (400, 404), target
            assert b"do not serve" not in body


def test_no_directory_listings(site):
    with serving(site) as server:
        for target in ("/v0.1/", "/v0.1/servers/_pages/", "/v0.1/servers/_pages/default"):
            status, body = raw_get(server, target)
            assert status == 404 and b"<a href" not in body, target


def test_writes_are_refused_and_requests_logged(site, capfd):
    server = MirrorServer(site, "127.0.0.1", 0)  # not quiet: logs to stderr
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(server.server_address[:2]) as sock:
            sock.sendall(b"DELETE /v0.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 405")
        raw_get(server, "/v0.1/health")
    finally:
        server.shutdown()
        server.server_close()
    logged = capfd.readouterr().err
    assert '"GET /v0.1/health HTTP/1.1" 200' in logged and '"DELETE /v0.1/servers HTTP/1.1" 405' in logged


def test_a_directory_without_a_render_is_refused(tmp_path):
    with pytest.raises(RenderError, match="holds no rendered mirror"):
        MirrorServer(tmp_path, "127.0.0.1", 0)


def test_revalidation_with_etags(site):
    with serving(site) as server, httpx.Client(base_url=server.url) as client:
        first = client.get("/v0.1/servers?limit=10")
        tag = first.headers["etag"]
        again = client.get("/v0.1/servers?limit=10", headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert client.get("/v0.1/servers?limit=100", headers={"If-None-Match": tag}).status_code == 200
