"""A faithful fake of the official MCP Registry read API (v0.1), served over real HTTP.

Tests and the demo crawl this instead of registry.modelcontextprotocol.io.  It reproduces
the upstream behaviour a mirror depends on (shared/reference/upstream.md §2-§5): keyset
cursors `name:version` over a plain text `(name, version)` order, `nextCursor` on every
full page (so an exact multiple of `limit` ends with an empty page), deleted versions
hidden unless asked for, `updated_since` forcing them in, Huma-style problem+json errors,
308 on a trailing slash, and `%2F`-encoded names in path segments.

Its writes (`publish`, `edit`, `set_status`) move `updatedAt` and `isLatest` the way upstream's
do (§6): the changed row's updatedAt is bumped, while a version that gains or loses
isLatest because another one was published or changed status keeps its updatedAt, so
`updated_since` alone never shows that flip.

    python -m mirror.fake_upstream --port 8765 [--data FILE] [--prefix /x]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import html
import re
import socket
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import orjson

SAMPLE_PATH = Path(__file__).parent / "data" / "sample.json"
OFFICIAL = "io.modelcontextprotocol.registry/official"

Response = tuple[int, dict[str, str], bytes]

# Go's http.StatusText, pinned: Python renamed 422 to "Unprocessable Content" in 3.13.
_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 422: "Unprocessable Entity"}
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.ASCII)
_BAD_SINCE = "Invalid updated_since format: expected RFC3339 timestamp (e.g., 2025-08-07T13:15:04.280Z)"
_DELETED_REQUIRED = (
    "Cannot set include_deleted=false when using updated_since (incremental sync requires deleted servers)"
)
_EPOCH = datetime.min.replace(tzinfo=UTC)


def load_sample() -> list[dict]:
    return orjson.loads(SAMPLE_PATH.read_bytes())


def parse_rfc3339(text: str) -> datetime | None:
    """Go's `time.Parse(time.RFC3339, …)`: optional fraction (truncated to µs like pgx), Z or ±hh:mm."""
    match = _RFC3339.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0)
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 24 or minutes > 59:  # Go's bounds: +24:00 parses, as Python's timezone cannot
            return None
        offset = (-1 if zone[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                        tzinfo=UTC) - offset
    except (ValueError, OverflowError):
        return None


class _Problem(Exception):
    """An RFC 9457 error as Huma writes it: title, status, detail and optional errors."""

    def __init__(self, status: int, detail: str, errors: list[dict] | None = None) -> None:
        super().__init__(detail)
        self.body = {"title": _TITLES[status], "status": status, "detail": detail}
        if errors:
            self.body["errors"] = errors

    def response(self) -> Response:
        return self.body["status"], {"Content-Type": "application/problem+json"}, orjson.dumps(self.body)


def _path_unescape(segment: str) -> str:
    """Go's `url.PathUnescape`: strict about malformed escapes, and `+` stays a plus."""
    bad = _BAD_ESCAPE.search(segment)
    if bad:
        raise ValueError(f'invalid URL escape "{segment[bad.start() : bad.start() + 3]}"')
    return unquote(segment)


def search_matches(term: str) -> Callable[[str], bool]:
    """Upstream's search since registry #1227 (April 2026): `ILIKE '%' || term || '%'` with
    `\\`, `%` and `_` escaped, so a case-insensitive substring of the name taken literally;
    case folds ASCII only, as under the C locale."""
    fold = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    needle = term.translate(fold)
    return lambda name: needle in name.translate(fold)


def _fields(entry: object) -> tuple[str, str, dict]:
    """(name, version, official meta), tolerating the malformed entries tests inject."""
    if not isinstance(entry, dict):
        return "", "", {}
    server, meta = entry.get("server"), entry.get("_meta")
    if not isinstance(server, dict):
        server = {}
    official = meta.get(OFFICIAL) if isinstance(meta, dict) else None
    return str(server.get("name", "")), str(server.get("version", "")), official if isinstance(official, dict) else {}


def _published(entry: dict) -> datetime:
    return parse_rfc3339(str(_fields(entry)[2].get("publishedAt", ""))) or _EPOCH


def _not_deleted(entry: dict) -> bool:
    return _fields(entry)[2].get("status") != "deleted"


class _Query:
    """Query parameters as Huma binds them: first value wins, an empty value counts as unset."""

    def __init__(self, raw: str) -> None:
        self.values: dict[str, str] = {}
        for key, value in parse_qsl(raw, keep_blank_values=True):
            self.values.setdefault(key, value)
        self.errors: list[dict] = []

    def get(self, name: str) -> str | None:
        return self.values.get(name) or None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        if not re.fullmatch(r"[+-]?[0-9]+", raw) or not -(2**63) <= int(raw) < 2**63:  # Go's ParseInt
            self.errors.append({"message": "invalid integer", "location": f"query.{name}", "value": raw})
            return default
        value = int(raw)
        if value < low:
            self.errors.append({"message": f"expected number >= {low}", "location": f"query.{name}", "value": value})
        elif value > high:
            self.errors.append({"message": f"expected number <= {high}", "location": f"query.{name}", "value": value})
        return value

    def boolean(self, name: str) -> bool | None:
        """Go's strconv.ParseBool; None when the parameter is absent."""
        raw = self.get(name)
        if raw is None:
            return None
        if raw in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if raw in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        self.errors.append({"message": "invalid boolean", "location": f"query.{name}", "value": raw})
        return None

    def validate(self) -> None:
        if self.errors:
            raise _Problem(422, "validation failed", self.errors)


_SEMVER = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")


def _semver_key(version: str) -> tuple | None:
    """A sort key for a semantic version (build metadata ignored, pre-releases before the release)."""
    match = _SEMVER.fullmatch(version)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def compare_versions(a: dict, b: dict) -> int:
    """Upstream's CompareVersions of two entries: both semver, by semver; neither, by publish
    time; one semver, it wins. -1, 0 or 1."""
    ka, kb = _semver_key(_fields(a)[1]), _semver_key(_fields(b)[1])
    if ka is not None and kb is not None:
        return (ka > kb) - (ka < kb)
    if ka is None and kb is None:
        pa, pb = _published(a), _published(b)
        return (pa > pb) - (pa < pb)
    return 1 if ka is not None else -1


def go_time(when: datetime) -> str:
    """A time as Go's RFC3339Nano writes a PostgreSQL timestamp: µs, trailing zeros trimmed."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


class FakeRegistry:
    """Pure request handler over a list of ServerResponse dicts (no sockets)."""

    def __init__(self, entries: list[dict], *, prefix: str = "") -> None:
        self.entries = entries
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.requests: list[str] = []
        self.user_agents: list[str | None] = []  # the User-Agent of each request, as _Handler saw it
        self.fail_next: list[tuple[int, bytes, str]] = []
        self.ignore_updated_since = False  # behave like a host that drops query strings it does not know
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests may step time themselves
        self._lock = threading.Lock()
        self._last_time = _EPOCH

    # -- writes, as upstream's service layer makes them ------------------------------

    def now(self) -> str:
        """The registry's clock: wall time, strictly increasing (two writes never share a time)."""
        when = max(self.clock(), self._last_time + timedelta(microseconds=1))
        self._last_time = when
        return go_time(when)

    def _find(self, name: str, version: str) -> dict:
        for entry in self.entries:
            if _fields(entry)[:2] == (name, version):
                return entry
        raise KeyError((name, version))

    def _official(self, entry: dict) -> dict:
        return entry.setdefault("_meta", {}).setdefault(OFFICIAL, {})

    def publish(self, server: dict) -> dict:
        """Publish a new version: it is latest iff it compares above the current latest, and
        the old latest loses the flag with its updatedAt untouched (UnmarkAsLatest)."""
        with self._lock:
            when = self.now()
            entry = {"server": server, "_meta": {OFFICIAL: {
                "status": "active", "statusChangedAt": when, "publishedAt": when, "updatedAt": when,
                "isLatest": False}}}
            siblings = [e for e in self.entries if _fields(e)[0] == server["name"]]
            current = [e for e in siblings if _fields(e)[2].get("isLatest") is True]
            if not current or all(compare_versions(entry, c) > 0 for c in current):
                for old in current:
                    self._official(old)["isLatest"] = False
                self._official(entry)["isLatest"] = True
            self.entries.append(entry)
            return entry

    def edit(self, name: str, version: str, **fields: object) -> dict:
        """An admin edit (PUT): the server object changes and updatedAt moves."""
        with self._lock:
            entry = self._find(name, version)
            entry["server"].update(fields)
            self._official(entry)["updatedAt"] = self.now()
            return entry

    def set_status(self, name: str, version: str, status: str, message: str | None = None) -> dict:
        """A status change: updatedAt moves (statusChangedAt only if the status did), then
        the latest is recomputed over the server (recalculateLatest, #1201) without touching
        the updatedAt of the versions whose flag moves."""
        with self._lock:
            entry = self._find(name, version)
            official = self._official(entry)
            when = self.now()
            if official.get("status") != status:
                official["statusChangedAt"] = when
            official["status"] = status
            official.pop("statusMessage", None)
            if message:
                official["statusMessage"] = message
            official["updatedAt"] = when
            self._recalculate_latest(name)
            return entry

    def remove(self, name: str, version: str) -> None:
        """A row vanishing outright (upstream never does this through its API, but a database
        repair can): only a full crawl can notice."""
        with self._lock:
            self.entries.remove(self._find(name, version))

    def _recalculate_latest(self, name: str) -> None:
        """The highest non-deleted version is latest; if every one is deleted, the highest."""
        siblings = [e for e in self.entries if _fields(e)[0] == name]
        live = [e for e in siblings if _not_deleted(e)] or siblings
        best = live[0]
        for candidate in live[1:]:
            if compare_versions(candidate, best) > 0:
                best = candidate
        for entry in siblings:
            self._official(entry)["isLatest"] = entry is best

    def handle(self, method: str, target: str) -> Response:
        with self._lock:
            self.requests.append(target)
            injected = self.fail_next.pop(0) if self.fail_next else None
        if injected:
            status, body, content_type = injected
            return status, {"Content-Type": content_type}, body
        raw_path, _, raw_query = target.partition("?")
        if raw_path != "/" and raw_path.endswith("/"):
            return self._redirect(raw_path, raw_query)
        try:
            # Split before unescaping so a %2F inside the name stays inside its segment.
            segments = [_path_unescape(s) for s in raw_path.split("/")]
        except ValueError:
            return 400, {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}, b"400 Bad Request"
        try:
            if method not in ("GET", "HEAD"):
                raise _Problem(405, "Method not allowed")
            body = self._route(segments, _Query(raw_query))
        except _Problem as problem:
            return problem.response()
        return 200, {"Content-Type": "application/json"}, orjson.dumps(body)

    def _redirect(self, raw_path: str, raw_query: str) -> Response:
        """Upstream's TrailingSlashMiddleware: path.Clean the path, keep the query, 308."""
        location = re.sub("/{2,}", "/", raw_path).rstrip("/") or "/"
        if raw_query:
            location += "?" + raw_query
        body = f'<a href="{html.escape(location)}">Permanent Redirect</a>.\n\n'.encode()
        return 308, {"Location": location, "Content-Type": "text/html; charset=utf-8"}, body

    def _route(self, segments: list[str], query: _Query) -> dict:
        prefix = self.prefix.split("/")[1:]
        if segments[0] != "" or segments[1 : 1 + len(prefix)] != prefix:
            raise _Problem(404, "Endpoint not found")
        match segments[1 + len(prefix) :]:
            # Upstream registers the same handlers under /v0 and /v0.1.
            case ["v0" | "v0.1", "servers"]:
                return self._list(query)
            case ["v0" | "v0.1", "servers", name, "versions"]:
                return self._versions(self._unescape(name, "server name"), query)
            case ["v0" | "v0.1", "servers", name, "versions", version]:
                return self._version(self._unescape(name, "server name"), self._unescape(version, "version"), query)
            case ["v0" | "v0.1", "health"]:
                return {"status": "ok"}
            case ["v0" | "v0.1", "ping"]:
                return {"pong": True}
            case ["v0" | "v0.1", "version"]:
                return {"version": "fake", "git_commit": "0000000", "build_time": "2025-01-01T00:00:00Z"}
        raise _Problem(404, "Endpoint not found")

    @staticmethod
    def _unescape(value: str, what: str) -> str:
        """The handlers unescape path values a second time (servers.go)."""
        try:
            return _path_unescape(value)
        except ValueError as error:
            raise _Problem(400, f"Invalid {what} encoding", [{"message": str(error)}]) from None

    def _list(self, query: _Query) -> dict:
        limit = query.integer("limit", 30, 1, 100)
        include_deleted = query.boolean("include_deleted")
        query.validate()
        since = None
        if (raw_since := query.get("updated_since")) and not self.ignore_updated_since:
            since = parse_rfc3339(raw_since)
            if since is None:
                raise _Problem(400, _BAD_SINCE)
            if include_deleted is False:
                raise _Problem(400, _DELETED_REQUIRED)
            include_deleted = True
        search = search_matches(term) if (term := query.get("search")) else None
        version = query.get("version")
        cursor = query.get("cursor")
        after = tuple(cursor.split(":", 1)) if cursor and ":" in cursor else None

        rows = []
        for entry in self.entries:
            name, ver, official = _fields(entry)
            if not include_deleted and official.get("status") == "deleted":
                continue
            if search and not search(name):
                continue
            if version == "latest" and official.get("isLatest") is not True:
                continue
            if version and version != "latest" and ver != version:
                continue
            if since and not (parse_rfc3339(str(official.get("updatedAt", ""))) or _EPOCH) > since:
                continue
            if cursor and not ((name, ver) > after if after else name > cursor):
                continue
            rows.append(((name, ver), entry))
        page = [entry for _, entry in heapq.nsmallest(limit, rows, key=lambda row: row[0])]
        metadata: dict = {}
        if page and len(page) >= limit:
            name, ver, _ = _fields(page[-1])
            metadata["nextCursor"] = f"{name}:{ver}"
        metadata["count"] = len(page)
        return {"servers": page, "metadata": metadata}

    def _matching(self, name: str, query: _Query) -> list[dict]:
        include_deleted = query.boolean("include_deleted")
        query.validate()
        return [e for e in self.entries if _fields(e)[0] == name and (include_deleted or _not_deleted(e))]

    def _versions(self, name: str, query: _Query) -> dict:
        rows = sorted(self._matching(name, query), key=_published, reverse=True)
        if not rows:
            raise _Problem(404, "Server not found")
        return {"servers": rows, "metadata": {"count": len(rows)}}

    def _version(self, name: str, version: str, query: _Query) -> dict:
        rows = self._matching(name, query)
        if version == "latest":
            rows = sorted((e for e in rows if _fields(e)[2].get("isLatest") is True), key=_published, reverse=True)
        else:
            rows = [e for e in rows if _fields(e)[1] == version]
        if not rows:
            raise _Problem(404, "Server not found")
        return rows[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server behind its load balancer
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms delayed-ACK stalls
    server: _Server

    def _serve(self) -> None:
        self.server.registry.user_agents.append(self.headers.get("User-Agent"))
        status, headers, body = self.server.registry.handle(self.command, self.path)
        if self.command not in ("GET", "HEAD"):
            headers = {**headers, "Connection": "close"}  # a request body we never read
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header in the registry's clock, as upstream's is in its own."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        return format_datetime(self.server.registry.clock().astimezone(UTC), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


class TrackingServer(ThreadingHTTPServer):
    """A threading server that can hang up its open connections, so a test upstream stops
    at once: otherwise server_close() waits for the threads of idle keep-alive clients."""

    # socketserver's default backlog is 5: VS Code's gallery opens a connection per server it
    # looks up, all at once, and connections past the backlog stalled for minutes here.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-connection (a crawler dropping a connection after a 500)
        is no upstream error: socketserver would print its traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Server(TrackingServer):
    def __init__(self, address: tuple[str, int], registry: FakeRegistry) -> None:
        super().__init__(address, _Handler)
        self.registry = registry


class FakeUpstream:
    """Runs a FakeRegistry on 127.0.0.1 in a background thread. Context manager."""

    def __init__(self, entries: list[dict] | None = None, *, port: int = 0, prefix: str = "") -> None:
        self.registry = FakeRegistry(load_sample() if entries is None else entries, prefix=prefix)
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeUpstream is not running; call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.registry.prefix}"

    def start(self) -> FakeUpstream:
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", self._port), self.registry)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-upstream", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mirror.fake_upstream", description="Serve a fake MCP Registry v0.1 read API."
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 picks a free one; default 8765)")
    parser.add_argument("--data", type=Path, help="JSON array of ServerResponse objects (default: the bundled sample)")
    parser.add_argument("--prefix", default="", help="path prefix in front of /v0.1, e.g. /registry")
    args = parser.parse_args(argv)
    entries = orjson.loads(args.data.read_bytes()) if args.data else None
    upstream = FakeUpstream(entries, port=args.port, prefix=args.prefix).start()
    print(upstream.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
