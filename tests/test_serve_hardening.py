"""`mcp-mirror serve` on a network: bounded by time, bytes and connections, logs that cannot
drive a terminal; and the generated nginx config refuses symlinks inside the tree."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx
import orjson
import pytest
from conftest import free_port, serving
from test_conformance import answer, nginx_serving

from mirror import hosts, pipeline
from mirror.serve import MirrorServer, ServeLimits


@pytest.fixture(scope="module")
def site(sample_tree) -> Path:
    """The session's build, for the tests that only read it."""
    return sample_tree().out


def connect(server: MirrorServer) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=5)


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def is_closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes `sock` within `wait` seconds (anything it sends is dropped)."""
    sock.settimeout(wait)
    try:
        read_until_closed(sock)
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_normal_requests_are_answered_while_idle_and_slow_clients_hold_connections(site):
    limits = ServeLimits(header_timeout=2.0, workers=2)
    with serving(site, limits) as server, ExitStack() as stack:
        opened = time.monotonic()
        idle = [stack.enter_context(connect(server)) for _ in range(100)]
        slow = [stack.enter_context(connect(server)) for _ in range(60)]
        for sock in slow:
            sock.sendall(b"GET /v0.1/servers HTTP/1.1\r\nHost: x\r\n")
        stop = threading.Event()

        def trickle() -> None:  # one header byte per socket every 0.2 s: a per-read timeout never fires
            while not stop.wait(0.2):
                for sock in slow:
                    with suppress(OSError):
                        sock.send(b"a")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        try:
            response = httpx.get(server.url + "/v0.1/servers", timeout=5)  # a hang guard only
            assert response.status_code == 200 and response.json()["servers"]
            # answered while they were still held: within their header_timeout, not after it
            assert not is_closed(slow[0], 0.1) and not is_closed(idle[0], 0.1)

            for sock in slow:  # still trickling (no read ever times out), cut off at the whole-head deadline
                sock.settimeout(limits.header_timeout + 10)  # a hang guard only
                assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - opened >= limits.header_timeout  # not before it
        finally:
            stop.set()
            trickler.join()
        assert all(is_closed(sock, 10.0) for sock in idle)


def test_at_max_connections_the_longest_idle_connection_makes_room(site):
    # no idle connection reaches its header_timeout here: only making room closes one
    with serving(site, ServeLimits(max_connections=8, header_timeout=60.0)) as server, ExitStack() as stack:
        idle = []
        for _ in range(8):
            idle.append(stack.enter_context(connect(server)))
            time.sleep(0.02)  # accepted in this order
        # the oldest goes once idle for a second (it might have been about to send); the timeout is a hang guard
        assert httpx.get(server.url + "/v0.1/servers?limit=1", timeout=10).status_code == 200
        assert is_closed(idle[0], 10.0)
        assert not is_closed(idle[-1], 0.2)


def test_under_a_low_open_file_limit_a_normal_request_is_answered_past_idle_and_slow_clients(site):
    """`ulimit -n 100`, as containers and systemd units often set it: the connection cap comes
    from the limit, and idle, then stalled connections make room, so accept never fails."""
    port = free_port()

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    server = subprocess.Popen([sys.executable, "-m", "mirror", "serve", str(site), "--port", str(port)],
                              preexec_fn=limit_files, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    try:
        with ExitStack() as stack:
            for _ in range(100):  # wait for it to listen
                with suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                time.sleep(0.05)
            idle = [stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)) for _ in range(120)]
            slow = [stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5)) for _ in range(60)]
            for sock in slow:
                sock.sendall(b"GET /v0.1/servers HTTP/1.1\r\nHost: x\r\n")

            def trickle() -> None:
                while not stop.wait(0.2):
                    for sock in slow:
                        with suppress(OSError):
                            sock.send(b"a")

            threading.Thread(target=trickle, daemon=True).start()
            response = httpx.get(f"http://127.0.0.1:{port}/v0.1/servers?limit=1", timeout=8)  # a hang guard only
            assert response.status_code == 200 and response.json()["metadata"]["count"] == 1
            assert server.poll() is None
            assert len(idle) + len(slow) > 100  # more clients than the process has descriptors
    finally:
        stop.set()
        server.terminate()
        _, errors = server.communicate(timeout=10)
    assert "the open-file limit allows" in errors and "Traceback" not in errors


def test_kept_alive_connections_serve_again_then_close_when_idle(site):
    # the head's timeout is far off: only the keep-alive timeout closes the connection here
    with serving(site, ServeLimits(keepalive_timeout=0.5, header_timeout=60.0)) as server, connect(server) as sock:
        request = b"GET /v0.1/health HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request + b"\r\n" + request)  # pipelined (an empty line between is skipped): both answered
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 2:
            data += sock.recv(65536)
        answered = time.monotonic()
        assert is_closed(sock, 10.0)  # a hang guard only
        assert time.monotonic() - answered > 0.3  # kept alive for a while first


def test_an_oversized_request_head_is_refused_with_431(site):
    with serving(site, ServeLimits(max_header_bytes=1024)) as server, connect(server) as sock:
        sock.sendall(b"GET /v0.1/servers HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
        head, _, body = read_until_closed(sock).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 ") and b"application/problem+json" in head
        assert orjson.loads(body)["status"] == 431


def test_request_bodies_are_never_taken_for_the_next_request(site):
    with serving(site, ServeLimits()) as server, connect(server) as sock:
        sock.sendall(b"GET /v0.1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n"
                     b"GET /v0.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)  # answered once, then closed
        assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1") == 1


def test_control_characters_are_escaped_in_the_log(site, capfd):
    with serving(site, ServeLimits(header_timeout=0.5), quiet=False) as server:
        with connect(server) as sock:
            sock.sendall(b"GET /v0.1/\x1b[31mred\x07\xe2\x80\xae HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")
        with connect(server) as sock:  # a head that never completes is logged too
            sock.sendall(b"GET /\x1b]0;owned\x07")
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    logged = capfd.readouterr().err
    assert r'"GET /v0.1/\x1b[31mred\x07\xe2\x80\xae HTTP/1.1" 400' in logged
    assert r'"GET /\x1b]0;owned\x07" 408' in logged
    assert not {"\x1b", "\x07", "\u202e", "\xe2"} & set(logged)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        ServeLimits(workers=0)


# -- symlinks in the tree, with real nginx -----------------------------------------------


@pytest.mark.nginx
def test_nginx_refuses_symlinks_in_the_tree_but_serves_through_a_symlinked_root(settings, tmp_path):
    """The tree is published as `current -> generation`; links planted inside it that point
    outside are not followed, while the root itself may be (and will be) a link."""
    pipeline.build(settings)
    site = settings.out
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": "do not serve"}')
    outside = tmp_path / "outside" / "x" / "versions" / "latest"
    outside.mkdir(parents=True)
    (outside / "index.json").write_text(secret.read_text())
    leak = site / "v0.1" / "servers" / "io.github.leak"
    (leak / "file" / "versions" / "latest").mkdir(parents=True)
    (leak / "file" / "versions" / "latest" / "index.json").symlink_to(secret)
    (leak / "dir").symlink_to(tmp_path / "outside" / "x")
    (site / "leak.json").symlink_to(secret)
    current = tmp_path / "current"
    current.symlink_to(site, target_is_directory=True)

    directives = hosts.host_config("nginx", out=site, base_url="http://127.0.0.1:8000")
    directives = directives.replace(f'root "{site.absolute()}"', f'root "{current}"')
    assert f'root "{current}"' in directives
    logs = tmp_path / "nginx"
    logs.mkdir()
    with nginx_serving(directives, logs) as origin, serving(current, ServeLimits()) as serve, \
            httpx.Client(base_url=origin, timeout=5) as client, httpx.Client(base_url=serve.url, timeout=5) as own:
        assert client.get("/v0.1/servers").status_code == 200  # through the symlinked root
        for path in ("/v0.1/servers/io.github.leak%2Ffile/versions/latest",
                     "/v0.1/servers/io.github.leak%2Fdir/versions/latest"):
            response = client.get(path)
            assert response.status_code == 404 and b"do not serve" not in response.content, path
            assert answer(response) == answer(own.get(path)), path
        response = client.get("/leak.json")
        assert response.status_code in (403, 404) and b"do not serve" not in response.content
