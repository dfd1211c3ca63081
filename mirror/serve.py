"""Serve a rendered tree with the routing of `routes`: a preview and small private host.

Paths are percent-decoded and dot segments resolved before lookup, as nginx does, so
`io.github.x%2Fy` and `1.0.0%2Bbuild` reach their directories; nothing outside the tree
is reachable and there are no directory listings.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import orjson

from mirror import hosts, paths, routes
from mirror.errors import RenderError


@dataclass(frozen=True)
class TreeInfo:
    """What `serve` needs to route a tree the way its host profile would."""

    base_path: str
    index: str = paths.DEFAULT_VIEW
    query_routing: bool = True


def read_tree_info(root: Path) -> TreeInfo:
    """The URL path and routing the tree was rendered for, from its state document."""
    state = next((root / paths.state_file(index) for index in (paths.DEFAULT_VIEW, "index.html")
                  if (root / paths.state_file(index)).is_file()), None)
    if state is None:
        raise RenderError(f"{root} holds no rendered mirror", hint="run `mcp-mirror render` or `build` first")
    try:
        document = orjson.loads(state.read_bytes())
        host = document.get("host") or {}
        return TreeInfo(paths.base_path(document["baseUrl"]), index=host.get("indexFile", paths.DEFAULT_VIEW),
                        query_routing=bool(host.get("queryRouting", True)))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RenderError(f"{state} is not a mirror state document", hint="render the site again") from exc


def read_base_path(root: Path) -> str:
    return read_tree_info(root).base_path


def normalize(raw_path: str) -> str | None:
    """Decode %XX and resolve `.`/`..` like nginx; None when the path escapes the root."""
    decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
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


class MirrorHandler(BaseHTTPRequestHandler):
    server: MirrorServer
    protocol_version = "HTTP/1.1"
    server_version = "mcp-mirror"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed-ACK stalls

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
            query.setdefault(key.lower(), value)  # nginx's $arg_name ignores case; first value wins
        tree = self.server.tree
        answer = routes.resolve(path[len(base):], query, index=tree.index, query_routing=tree.query_routing)
        status, rel = routes.pick(answer, self.server.exists)
        if rel is None:
            return self._problem(HTTPStatus(status), "Not found" if status == 404 else "Bad request", head)
        try:
            body = (self.server.root / rel).read_bytes()
        except OSError:  # swapped away between the lookup and the read
            return self._problem(HTTPStatus.SERVICE_UNAVAILABLE, "The tree is being republished: retry", head)
        # Same bytes, same tag (renders are deterministic), so revalidation survives re-renders.
        etag = f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'
        if status == HTTPStatus.OK and etag in self.headers.get("If-None-Match", ""):
            return self._send(HTTPStatus.NOT_MODIFIED, b"", None, {"ETag": etag})
        self._send(HTTPStatus(status), b"" if head else body, hosts.content_type(rel),
                   {"Content-Length": str(len(body)), "ETag": etag})

    def _problem(self, status: HTTPStatus, detail: str, head: bool) -> None:
        body = orjson.dumps({"title": status.phrase, "status": status.value, "detail": detail})
        self._send(status, b"" if head else body, "application/problem+json", {"Content-Length": str(len(body))})

    def _send(self, status: HTTPStatus, body: bytes, ctype: str | None, extra: dict[str, str]) -> None:
        self.send_response(status)
        headers = dict(hosts.RESPONSE_HEADERS)
        if ctype:
            headers["Content-Type"] = ctype
        headers.setdefault("Content-Length", "0")
        for key, value in {**headers, **extra}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class MirrorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str, port: int, *, base_path: str | None = None, quiet: bool = False):
        # Not resolved: `root` may be the symlink a publish swaps, and must follow each swap.
        self.root = Path(root).absolute()
        if not self.root.is_dir():
            raise RenderError(f"{root} is not a directory", hint="pass the --out directory of a render")
        self.tree = read_tree_info(self.root)
        if base_path is not None:
            self.tree = TreeInfo(base_path.rstrip("/"), self.tree.index, self.tree.query_routing)
        self.base_path = self.tree.base_path
        self.quiet = quiet
        super().__init__((host, port), MirrorHandler)

    def exists(self, rel: str) -> bool:
        real = os.path.realpath(self.root / rel)
        return real.startswith(os.path.realpath(self.root) + os.sep) and os.path.isfile(real)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{self.base_path}"
