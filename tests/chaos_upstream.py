"""A hostile or broken upstream for the crawler's chaos tests, over real HTTP on 127.0.0.1.

Honest answers come from mirror.fake_upstream.FakeRegistry. Misbehaviour is switched on per
request: each fault in `faults` takes over one request, in order, and `fault` (when set)
takes over every request after them. A fault is a function that writes the whole answer to
the socket itself, so it can lie about Content-Length, trickle, hang up, or stream far more
than any page without the test ever holding that much.

    with ChaosUpstream(entries) as up:
        up.faults = [retry_after("2"), status(500)]
        up.fault = trickle()
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
from fakeclock import INTERVAL_HEADER

from mirror.fake_upstream import FakeRegistry, TrackingServer

_BLOCK = b" " * 65536  # JSON whitespace: padding that is valid wherever it is cut

Fault = Callable[["Exchange"], None]


class Exchange(BaseHTTPRequestHandler):
    """One request; faults write their answer through its helpers."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    @property
    def chaos(self) -> ChaosUpstream:
        return self.server.chaos

    def do_GET(self) -> None:
        fault = self.chaos.take(self.path)
        try:
            (fault or honest)(self)
        except OSError:  # the crawler hung up on us, as it should on a hostile answer
            self.close_connection = True

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.chaos.count(len(data))

    def honest_answer(self) -> tuple[int, dict[str, str], bytes]:
        return self.chaos.registry.handle("GET", self.path)

    def hang_up(self, *, reset: bool = False) -> None:
        if reset:  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def honest(exchange: Exchange) -> None:
    """What the fake registry would answer."""
    status_code, headers, body = exchange.honest_answer()
    exchange.head(status_code, {**headers, "Content-Length": str(len(body))})
    exchange.write(body)


def status(code: int, body: bytes = b"nope", headers: dict[str, str] | None = None) -> Fault:
    def fault(exchange: Exchange) -> None:
        exchange.head(code, {"Content-Type": "text/plain", "Content-Length": str(len(body)), **(headers or {})})
        exchange.write(body)

    return fault


def retry_after(value: str, code: int = 429) -> Fault:
    return status(code, b"slow down", {"Retry-After": value})


def http_date_in(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def redirect(code: int, location: str) -> Fault:
    return status(code, b"moved", {"Location": location})


def trickle(interval: float = 0.5, size: int = 100_000, *, wait: float | None = None) -> Fault:
    """A 200 that sends one byte every `interval` seconds: never idle long enough to time out.

    The answer names its interval (X-Chaos-Interval), so that a crawl on a fake clock
    (tests/fakeclock.py) can take each read as that long; `wait` is then the real pause
    between bytes, shorter than the interval it stands for."""

    def fault(exchange: Exchange) -> None:
        exchange.head(200, {"Content-Type": "application/json", "Content-Length": str(size),
                            INTERVAL_HEADER: str(interval)})
        for _ in range(size):
            exchange.write(b" ")
            if exchange.chaos.stopping.wait(interval if wait is None else wait):
                break

    return fault


def stall(seconds: float = 30.0) -> Fault:
    """Headers, then nothing (until the upstream is stopped)."""

    def fault(exchange: Exchange) -> None:
        exchange.head(200, {"Content-Type": "application/json", "Content-Length": "1000"})
        exchange.chaos.stopping.wait(seconds)

    return fault


def truncated(keep: float = 0.5) -> Fault:
    """The honest answer with its true Content-Length, but the connection closes part way."""

    def fault(exchange: Exchange) -> None:
        status_code, headers, body = exchange.honest_answer()
        exchange.head(status_code, {**headers, "Content-Length": str(len(body))})
        exchange.write(body[: int(len(body) * keep)])
        exchange.hang_up()

    return fault


def cut_unframed(keep: float = 0.5) -> Fault:
    """The honest answer with no Content-Length (ends at close), closed part way: cut JSON."""

    def fault(exchange: Exchange) -> None:
        status_code, headers, body = exchange.honest_answer()
        exchange.head(status_code, {**headers, "Connection": "close"})
        exchange.write(body[: int(len(body) * keep)])
        exchange.hang_up()

    return fault


def hang_up(*, reset: bool = True) -> Fault:
    """No answer at all: the connection is reset (or closed) as soon as the request arrives."""

    def fault(exchange: Exchange) -> None:
        exchange.hang_up(reset=reset)

    return fault


def huge(size: int = 50_000_000, *, content_length: bool = True) -> Fault:
    """`size` bytes of a page that never ends, generated block by block."""

    def fault(exchange: Exchange) -> None:
        framing = {"Content-Length": str(size)} if content_length else {"Connection": "close"}
        exchange.head(200, {"Content-Type": "application/json", **framing})
        opening = b'{"servers": ['
        exchange.write(opening)
        left = size - len(opening)
        while left > 0:
            block = _BLOCK[: min(left, len(_BLOCK))]
            exchange.write(block)
            left -= len(block)
        exchange.hang_up()

    return fault


def gzip_bomb(decoded: int = 64 * 2**20) -> Fault:
    """A few tens of KiB of gzip that inflate to `decoded` bytes of whitespace."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [squeeze.compress(b'{"servers": [')]
    parts += [squeeze.compress(_BLOCK * 16) for _ in range(decoded // (len(_BLOCK) * 16))]
    body = b"".join(parts) + squeeze.flush()

    def fault(exchange: Exchange) -> None:
        exchange.head(200, {"Content-Type": "application/json", "Content-Encoding": "gzip",
                            "Content-Length": str(len(body))})
        exchange.write(body)

    return fault


def deep(depth: int, *, in_metadata: bool = False) -> Fault:
    """A well-formed page whose one entry (or its metadata) nests `depth` arrays."""
    nest = b"[" * depth + b"]" * depth
    body = (b'{"servers": [], "metadata": {"count": 0, "deep": ' + nest + b"}}" if in_metadata
            else b'{"servers": [' + nest + b'], "metadata": {"count": 1}}')
    return status(200, body, {"Content-Type": "application/json"})


def deep_item(depth: int, name: str = "io.github.chaos/deep", version: str = "6.6.6") -> bytes:
    """An entry, as bytes no encoder here writes, whose _meta nests `depth` arrays."""
    server = orjson.dumps({"name": name, "version": version, "description": "deep"})
    return b'{"server": ' + server + b', "_meta": ' + b"[" * depth + b"]" * depth + b"}"


def spliced(*raw: bytes) -> Fault:
    """The honest answer, with the `raw` items (bytes as they are) first in the first page of the
    whole list (not in an updated_since answer)."""

    def fault(exchange: Exchange) -> None:
        status_code, headers, body = exchange.honest_answer()
        opening = b'{"servers":['
        first = "/servers?" in exchange.path and not any(p in exchange.path for p in ("cursor=", "updated_since="))
        if status_code == 200 and first and body.startswith(opening):
            rest = body[len(opening):]
            body = opening + b",".join(raw) + (b"" if rest.startswith(b"]") else b",") + rest
        exchange.head(status_code, {**headers, "Content-Length": str(len(body))})
        exchange.write(body)

    return fault


def minting(rows_for: Callable[[int], list[Any]]) -> Fault:
    """Pages that never end: page n serves rows_for(n) and a cursor never seen before."""
    pages = iter(range(1_000_000_000))
    lock = threading.Lock()

    def fault(exchange: Exchange) -> None:
        with lock:
            n = next(pages)
        body = orjson.dumps({"servers": rows_for(n), "metadata": {"nextCursor": f"mint-{n}", "count": 100}})
        status(200, body, {"Content-Type": "application/json"})(exchange)

    return fault


class _Server(TrackingServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, chaos: ChaosUpstream) -> None:
        super().__init__(("127.0.0.1", 0), Exchange)
        self.chaos = chaos

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a crawler hanging up is expected here
            super().handle_error(request, client_address)


class ChaosUpstream:
    """A FakeRegistry behind a server whose answers can be switched to misbehave. Context manager."""

    def __init__(self, entries: list[dict] | None = None, *, prefix: str = "") -> None:
        self.registry = FakeRegistry([] if entries is None else entries, prefix=prefix)
        self.faults: list[Fault] = []
        self.fault: Fault | None = None
        self.requests: list[str] = []
        self.body_bytes = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ChaosUpstream is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.registry.prefix}"

    def take(self, target: str) -> Fault | None:
        with self._lock:
            self.requests.append(target)
            return self.faults.pop(0) if self.faults else self.fault

    def count(self, sent: int) -> None:
        with self._lock:
            self.body_bytes += sent

    def __enter__(self) -> ChaosUpstream:
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="chaos-upstream", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
