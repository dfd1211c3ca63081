"""Serve a rendered tree with the routing of `routes`: a preview and small private host.

Paths are percent-decoded and dot segments resolved before lookup, as nginx does, so
`io.github.x%2Fy` and `1.0.0%2Bbuild` reach their directories; nothing outside the tree
is reachable and there are no directory listings.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import os
import re
import resource
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import orjson

from mirror import hosts, paths, routes
from mirror.errors import RenderError
from mirror.query import ListQuery, RowIndex, list_document
from mirror.text import log_safe


@dataclass(frozen=True)
class TreeInfo:
    """What `serve` needs to route a tree the way its host profile would."""

    base_path: str
    index: str = paths.DEFAULT_VIEW
    routes_queries: bool = True
    computes: bool = True  # list queries answered from the rows index, not from page chains


def read_tree_info(root: Path) -> TreeInfo:
    """The URL path and routing the tree was rendered for, from its state document."""
    state = next((root / paths.state_file(index) for index in (paths.DEFAULT_VIEW, "index.html")
                  if (root / paths.state_file(index)).is_file()), None)
    if state is None:
        raise RenderError(f"{root} holds no rendered mirror", hint="run `mcp-mirror render` or `build` first")
    try:
        document = orjson.loads(state.read_bytes())
        host = hosts.Capabilities.from_json(document.get("host"))
        return TreeInfo(paths.base_path(document["baseUrl"]), index=host.index_file,
                        routes_queries=host.routes_queries, computes=host.computed_queries is not None)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RenderError(f"{state} is not a mirror state document", hint="render the site again") from exc


def normalize(raw_path: str) -> str | None:
    """Decode %XX and resolve `.`/`..` like nginx; None when the path escapes the root. Bytes
    that are not UTF-8 are kept (as surrogate escapes, the file system's own spelling): nginx
    and upstream's Go router take them as bytes of a name that is not found, not a bad path."""
    decoded = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
    if "\x00" in decoded:
        return None
    stack: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if not stack:
                return None
            stack.pop()
        else:
            stack.append(segment)
    return "/" + "/".join(stack)


@dataclass(frozen=True)
class ServeLimits:
    """What one client can hold of `serve`. Connections wait for their request in one event
    loop, not on a thread, so idle and slow clients cost a socket and a small buffer; a worker
    is taken only once a whole request head has arrived. Defaults follow nginx where it has one."""

    header_timeout: float = 10.0  # seconds for a whole request head: from the accept, then from its first byte
    keepalive_timeout: float = 15.0  # seconds an idle kept-alive connection may wait for its next request
    write_timeout: float = 30.0  # seconds to hand one answer to the kernel (nginx send_timeout: 60)
    max_header_bytes: int = 32 * 1024  # request line and headers (nginx: 4 buffers of 8 KiB)
    max_connections: int = 512  # open at once, idle ones included (nginx worker_connections)
    workers: int = 32  # threads that build answers
    backlog: int = socket.SOMAXCONN  # connections the kernel queues while max_connections are open

    def __post_init__(self) -> None:
        for field in fields(self):
            if not getattr(self, field.name) > 0:
                raise ValueError(f"ServeLimits.{field.name} must be positive, not {getattr(self, field.name)!r}")


DEFAULT_LIMITS = ServeLimits()
# Descriptors kept back from connections: the listening socket, stdio, the event loop's own,
# and a file open in each worker, with room to spare.
RESERVED_FILES = 32


def connection_cap(limits: ServeLimits) -> int:
    """The connections `serve` may hold at once: `max_connections`, or fewer where the process's
    open-file limit (RLIMIT_NOFILE, `ulimit -n`) would run out first: at the cap, the longest-
    idle connection makes room, which cannot happen once accept itself fails."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_connections
    return max(1, min(limits.max_connections, soft - limits.workers - RESERVED_FILES))
LINGER_SECONDS = 2.0  # after the last answer, how long to drain what the client still sends
_READ_SIZE = 64 * 1024
_IDLE_GRACE = 1.0  # a connection idle for less is likely about to send a request: not reclaimed
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]|%(?![0-9A-Fa-f]{2})")  # what nginx and Go refuse in a path


class MirrorHandler(BaseHTTPRequestHandler):
    """Answers one request whose head `MirrorServer` has read, into memory: the server's event
    loop sends the bytes, so a client that reads slowly never holds a worker."""

    server: MirrorServer
    request: bytes  # the request head
    protocol_version = "HTTP/1.1"
    server_version = "mcp-mirror"

    def setup(self) -> None:
        self.rfile = io.BytesIO(self.request)
        self.wfile = io.BytesIO()

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        headers = getattr(self, "headers", None)
        if headers is not None and (headers.get("Transfer-Encoding") or headers.get("Content-Length", "0") != "0"):
            self.close_connection = True  # a body is never read: it must not be taken for the next request

    def finish(self) -> None:
        """The server sends `wfile` and keeps or closes the connection."""

    def parse_request(self) -> bool:
        """Refuse raw control characters and broken %-escapes in the path, as nginx and Caddy do."""
        if not super().parse_request():
            return False
        if _BAD_TARGET.search(self.path.partition("?")[0]):
            self.close_connection = True
            self._problem(HTTPStatus.BAD_REQUEST, "Bad request path", self.command == "HEAD")
            return False
        return True

    def do_OPTIONS(self) -> None:  # noqa: N802 (http.server naming)
        self._send(HTTPStatus.NO_CONTENT, b"", None, {"Access-Control-Max-Age": hosts.PREFLIGHT_MAX_AGE})

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(head=False)

    def _method_not_allowed(self) -> None:
        self.close_connection = True  # the request body is never read
        self._problem(HTTPStatus.METHOD_NOT_ALLOWED, "Read-only mirror: GET, HEAD and OPTIONS only", False)

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed

    def _answer(self, *, head: bool) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        try:
            path = normalize(raw_path)
        except UnicodeDecodeError:
            path = None
        if path is None:
            return self._problem(HTTPStatus.BAD_REQUEST, "Bad request path", head)
        base = self.server.base_path
        if base and not (path == base or path.startswith(base + "/")):
            return self._problem(HTTPStatus.NOT_FOUND, "Endpoint not found", head)
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(key, value)  # names are case-sensitive, as upstream's; the first value wins
        tree = self.server.tree
        answer = routes.resolve(path[len(base):], query, index=tree.index, routes_queries=tree.routes_queries,
                                computes=tree.computes)
        if answer.problem is not None:
            return self._document(HTTPStatus(answer.status), answer.problem, hosts.PROBLEM_JSON, head)
        if answer.computed is not None:
            rows = self.server.rows_index()
            body = None if rows is None else self.server.computed_list(rows, answer.computed)
            if body is None:  # the rows index or a document vanished: a publish swapped the tree between reads
                return self._problem(HTTPStatus.SERVICE_UNAVAILABLE, "The tree is being republished: retry", head)
            return self._document(HTTPStatus.OK, body, hosts.JSON, head)
        status, rel = routes.pick(answer, self.server.exists)
        if rel is None:
            return self._problem(HTTPStatus(status), "Not found" if status == 404 else "Bad request", head)
        try:
            body = (self.server.root / rel).read_bytes()
        except OSError:  # swapped away between the lookup and the read
            return self._problem(HTTPStatus.SERVICE_UNAVAILABLE, "The tree is being republished: retry", head)
        self._document(HTTPStatus(status), body, hosts.content_type(rel), head)

    def _document(self, status: HTTPStatus, body: bytes, ctype: str, head: bool) -> None:
        # Same bytes, same tag (renders are deterministic), so revalidation survives re-renders.
        etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        if status == HTTPStatus.OK and etag in self.headers.get("If-None-Match", ""):
            return self._send(HTTPStatus.NOT_MODIFIED, b"", None, {"ETag": etag})
        self._send(status, b"" if head else body, ctype, {"Content-Length": str(len(body)), "ETag": etag})

    def _problem(self, status: HTTPStatus, detail: str, head: bool) -> None:
        body = orjson.dumps(paths.problem(status.value, status.phrase, detail))
        self._send(status, b"" if head else body, "application/problem+json", {"Content-Length": str(len(body))})

    def _send(self, status: HTTPStatus, body: bytes, ctype: str | None, extra: dict[str, str]) -> None:
        self.send_response(status)
        headers = dict(hosts.RESPONSE_HEADERS)
        if ctype:
            headers["Content-Type"] = ctype
            if ctype == hosts.HTML:
                headers.update(hosts.PAGE_HEADERS)
        headers.setdefault("Content-Length", "0")
        for key, value in {**headers, **extra}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        self.server.log(self.address_string(), format % args)


class MirrorServer:
    """`serve`'s HTTP/1.1 server, bounded by `limits` so it can face a network.

    One asyncio loop accepts connections and reads request heads under `header_timeout` (a
    whole-head deadline, so trickling a byte a second does not extend it) and idle kept-alive
    connections under `keepalive_timeout`; only complete heads go to the `workers` thread pool.
    When the pool is busy, complete requests queue for it in arrival order: each is quick work
    on a local file, and the queue is bounded by `max_connections`. At `max_connections` the
    connection idle the longest (and for at least a second) is closed to make room, as nginx
    does; when none is, no more are accepted: new connections wait in the kernel's backlog, as
    with nginx, Apache's event MPM and Tomcat, rather than being refused with a 503 that the
    client might not even read. The API mirrors socketserver's: serve_forever() in one thread,
    shutdown() from another, then server_close().
    """

    def __init__(self, root: Path, host: str, port: int, *, base_path: str | None = None, quiet: bool = False,
                 limits: ServeLimits = DEFAULT_LIMITS):
        # Not resolved: `root` may be the symlink a publish swaps, and must follow each swap.
        self.root = Path(root).absolute()
        if not self.root.is_dir():
            raise RenderError(f"{root} is not a directory", hint="pass the --out directory of a render")
        self.tree = read_tree_info(self.root)
        if base_path is not None:
            self.tree = replace(self.tree, base_path=base_path.rstrip("/"))
        self.base_path = self.tree.base_path
        self.quiet = quiet
        self.limits = limits
        self.max_connections = connection_cap(limits)
        if self.max_connections < limits.max_connections:
            self.log("-", f"the open-file limit allows {self.max_connections} connections at once "
                          f"(not {limits.max_connections}): raise it with `ulimit -n` for more")
        self.socket = socket.create_server((host, port), backlog=limits.backlog)
        self.server_address = self.socket.getsockname()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._open = 0  # accepted and not yet closed
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._rows_lock = threading.Lock()
        self._rows: RowIndex | None = None
        self._rows_key: tuple[int, int, int] | None = None

    def rows_index(self) -> RowIndex | None:
        """The tree's rows index, parsed once per published version of it (a publish swaps
        the file, so its inode and mtime say when to read it again)."""
        path = self.root / paths.rows_index_file(self.tree.index)
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._rows_lock:
            if self._rows_key != key:
                try:
                    self._rows = RowIndex.from_bytes(path.read_bytes())
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    self.log("-", f"unreadable rows index {path}: {exc}")
                    return None
                self._rows_key = key
            return self._rows

    def computed_list(self, rows: RowIndex, query: ListQuery) -> bytes | None:
        """A ServerList answering `query`, each item its row's own served document; None
        when a document is missing (a publish swapped the tree between the two reads)."""
        selection = rows.select(query)
        items = []
        for row in selection.rows:
            rel = rows.document_file(row)
            if rel is None or not self.exists(rel):
                return None
            try:
                items.append((self.root / rel).read_bytes())
            except OSError:
                return None
        return list_document(items, next_cursor=selection.next_cursor)

    def exists(self, rel: str) -> bool:
        real = os.path.realpath(self.root / rel)
        return real.startswith(os.path.realpath(self.root) + os.sep) and os.path.isfile(real)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{self.base_path}"

    # -- running -------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Answer until shutdown() is called from another thread (or Ctrl-C in the main one)."""
        self._stopped.clear()
        try:
            asyncio.run(self._serve())
        finally:
            self._stop.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever, running in another thread, and wait until it has returned."""
        self._stop.set()
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()

    def __enter__(self) -> MirrorServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server_close()

    def log(self, host: str, message: str) -> None:
        """One line on stderr. Clients choose much of it, so everything but printable ASCII is
        backslash-escaped: no escape sequence, bell or bidi control reaches a terminal."""
        if not self.quiet:
            sys.stderr.write(f"{host} - {log_safe(message)}\n")

    async def _serve(self) -> None:
        self.socket.setblocking(False)
        self._room = asyncio.Event()
        stop = asyncio.ensure_future(asyncio.to_thread(self._stop.wait))
        with ThreadPoolExecutor(self.limits.workers, thread_name_prefix="mcp-mirror-serve") as self._pool:
            accept = asyncio.create_task(self._accept())
            try:
                await asyncio.wait({accept, stop}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._stop.set()  # releases the thread waiting on it, also when Ctrl-C cancelled us
                for task in (accept, *self._tasks):
                    task.cancel()
                results = await asyncio.gather(accept, stop, *self._tasks, return_exceptions=True)
                await asyncio.sleep(0)  # let the aborted transports close their sockets
        if isinstance(results[0], Exception):
            raise results[0]

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._open >= self.max_connections and not self._reclaim():
                self._room.clear()
                with contextlib.suppress(TimeoutError):  # a connection closes, or one ages past the grace
                    await asyncio.wait_for(self._room.wait(), _IDLE_GRACE / 4)
                continue
            try:
                sock, address = await loop.sock_accept(self.socket)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED):
                    raise
                if exc.errno != errno.ECONNABORTED and not self._reclaim():  # out of descriptors: make room
                    self.log("-", f"cannot accept a connection ({exc.strerror}); retrying in 0.5 s")
                    await asyncio.sleep(0.5)
                continue
            self._open += 1
            task = asyncio.create_task(self._connection(sock, address))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reclaim(self) -> bool:
        """Close the connection that has waited longest for a request, to make room; when none
        has, the one whose request head has been arriving longest (a slow client holds a slot a
        normal request needs more). Only one idle or stalled for _IDLE_GRACE: a request may be on
        its way (the next one on a kept-alive connection, the first on one just accepted), and
        closing under it resets the client. A request being answered is never cut."""
        recent = asyncio.get_running_loop().time() - _IDLE_GRACE
        idle = [conn for conn in self._conns if conn.idle_since is not None and conn.idle_since < recent]
        stalled = [conn for conn in self._conns if conn.head_since is not None and conn.head_since < recent]
        if not idle and not stalled:
            return False
        oldest = (min(idle, key=lambda conn: conn.idle_since) if idle
                  else min(stalled, key=lambda conn: conn.head_since))
        self._conns.discard(oldest)
        oldest.reclaimed = True
        self._open -= 1
        oldest.transport.abort()  # its read sees the end of the stream and the task returns
        return True

    async def _connection(self, sock: socket.socket, address: tuple[str, int]) -> None:
        conn: _Connection | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.transport.set_write_buffer_limits(high=0)  # drain() returns once the kernel has it all
            conn = _Connection(writer.transport)
            self._conns.add(conn)
            await self._converse(conn, reader, writer, address)
        except OSError:  # reset by the client, or an answer it did not read within write_timeout
            pass
        except Exception as exc:  # one bad connection must not stop the server
            self.log(address[0], f"connection failed: {exc!r}")
        finally:
            if conn is None:
                sock.close()
            else:
                conn.transport.abort()
                self._conns.discard(conn)
            if conn is None or not conn.reclaimed:
                self._open -= 1
            self._room.set()

    async def _converse(self, conn: _Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        address: tuple[str, int]) -> None:
        """Requests on one connection, one at a time, until either side closes or a bound is hit."""
        loop = asyncio.get_running_loop()
        limits = self.limits
        received = bytearray()  # not yet answered: a head in progress, or pipelined requests
        waiting = loop.time() + limits.header_timeout  # the first head is due header_timeout after the accept
        first_request = True
        while True:
            if not received:
                conn.idle_since = loop.time()
                try:
                    async with asyncio.timeout_at(waiting):
                        received += await reader.read(_READ_SIZE)
                except TimeoutError:
                    return  # nothing sent: close quietly
                conn.idle_since = None
                if not received:
                    return
            conn.head_since = loop.time()
            try:
                async with asyncio.timeout_at(waiting if first_request else loop.time() + limits.header_timeout):
                    end = await _read_head(reader, received, limits.max_header_bytes)
            except TimeoutError:
                return await self._refuse(reader, writer, address, received, HTTPStatus.REQUEST_TIMEOUT,
                                          f"The request head did not arrive within {limits.header_timeout:g} s")
            except _HeadTooLarge:
                return await self._refuse(reader, writer, address, received,
                                          HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                          f"The request head is over {limits.max_header_bytes} bytes")
            conn.head_since = None
            if end is None:
                return  # the client closed mid-head
            head = bytes(received[:end])
            del received[:end]
            answer, close = await loop.run_in_executor(self._pool, self._respond, head, address)
            await self._write(writer, answer)
            if close:
                return await _linger(reader, writer)
            waiting = loop.time() + limits.keepalive_timeout
            first_request = False

    def _respond(self, head: bytes, address: tuple[str, int]) -> tuple[bytes, bool]:
        """In a worker: the answer to one request head, and whether to close the connection after it."""
        try:
            handler = MirrorHandler(head, address, self)
        except Exception as exc:  # e.g. a file replaced mid-read by a re-render
            self.log(address[0], f"internal error: {exc!r}")
            return _problem_response(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error"), True
        return handler.wfile.getvalue(), handler.close_connection

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: tuple[str, int],
                      received: bytearray, status: HTTPStatus, detail: str) -> None:
        request_line = bytes(received[:1024]).partition(b"\n")[0].rstrip(b"\r").decode("latin-1")  # as much as came
        self.log(address[0], f'"{request_line}" {status.value} -')
        await self._write(writer, _problem_response(status, detail))
        await _linger(reader, writer)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()


@dataclass(eq=False)
class _Connection:
    transport: asyncio.BaseTransport
    idle_since: float | None = None  # loop time it began waiting for a request; None while one is under way
    head_since: float | None = None  # loop time a request head began to arrive; None once it is whole
    reclaimed: bool = False  # closed by the server to make room


class _HeadTooLarge(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader, received: bytearray, limit: int) -> int | None:
    """Read into `received` until it holds a whole request head (request line and headers, through
    the empty line that ends them); return the head's length, or None if the client closes first.
    Empty lines before the request line are dropped (RFC 9112, section 2.2)."""
    searched = 0
    while True:
        if received[:1] in (b"\r", b"\n"):
            del received[:len(received) - len(received.lstrip(b"\r\n"))]
            searched = 0
        ends = [i + len(mark) for mark in (b"\n\r\n", b"\n\n") if (i := received.find(mark, searched)) >= 0]
        if ends:
            if min(ends) > limit:
                raise _HeadTooLarge
            return min(ends)
        if len(received) > limit:
            raise _HeadTooLarge
        searched = max(0, len(received) - 2)
        chunk = await reader.read(_READ_SIZE)
        if not chunk:
            return None
        received += chunk


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after the last answer without losing it: send FIN, then read what the client still
    sends (an unread body, a pipelined request) for a moment, because closing a socket with
    unread input makes the kernel reset the connection, and a reset can destroy the answer."""
    if writer.can_write_eof():
        writer.write_eof()
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while await reader.read(64 * 1024):
                pass
    except TimeoutError:
        pass


def _problem_response(status: HTTPStatus, detail: str) -> bytes:
    """A whole problem+json answer, for requests the handler never sees; the connection closes after it."""
    body = orjson.dumps(paths.problem(status.value, status.phrase, detail))
    headers = {"Server": MirrorHandler.server_version, "Date": formatdate(usegmt=True), **hosts.CORS_HEADERS,
               "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",  # a timeout is no answer to keep
               "Content-Type": "application/problem+json", "Content-Length": str(len(body)), "Connection": "close"}
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", *(f"{key}: {value}" for key, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


