"""A fast upstream for `make bench`: every page of `?limit=100&include_deleted=true`
pre-rendered, keyed by cursor, so the upstream costs the same for the crawler and for the
floor loop it is compared with. `updated_since` (strictly after, deleted rows included) and
a server's versions list are answered too, for incremental syncs. Runs in its own process:
`python -m tests.bench_upstream`.
"""

from __future__ import annotations

import argparse
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

PAGE = 100


OFFICIAL = "io.modelcontextprotocol.registry/official"


def pages(entries: list[dict]) -> dict[str, bytes]:
    """cursor ('' for the first page) -> body, with upstream's name:version cursors."""
    return _pages(sorted(entries, key=lambda e: (e["server"]["name"], e["server"]["version"])))


def _pages(ordered: list[dict]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    cursor = ""
    for start in range(0, len(ordered) + 1, PAGE):
        chunk = ordered[start : start + PAGE]
        metadata: dict = {"count": len(chunk)}
        following = None
        if len(chunk) == PAGE:
            last = chunk[-1]["server"]
            following = f"{last['name']}:{last['version']}"
            metadata = {"nextCursor": following, "count": len(chunk)}
        out[cursor] = orjson.dumps({"servers": chunk, "metadata": metadata})
        if following is None:
            break
        cursor = following
    return out


def _time(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else datetime.min.replace(tzinfo=UTC)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        status = 200
        if url.path.startswith("/v0.1/servers/") and url.path.endswith("/versions"):
            name = unquote(url.path.removeprefix("/v0.1/servers/").removesuffix("/versions"))
            versions = [e for e in self.server.entries if e["server"]["name"] == name]
            body = orjson.dumps({"servers": versions, "metadata": {"count": len(versions)}})
            status = 200 if versions else 404
        elif url.path != "/v0.1/servers":
            body, status = b'{"title":"Not Found","status":404,"detail":"not found"}', 404
        elif "updated_since" in query:
            since = _time(query["updated_since"])
            changed = [e for e in self.server.entries if _time(e["_meta"][OFFICIAL].get("updatedAt")) > since]
            body = _pages(changed).get(query.get("cursor", ""))
        else:
            body = self.server.pages.get(query.get("cursor", ""))
        status = status if body is not None else 400
        body = body if body is not None else b'{"title":"Bad Request","status":400,"detail":"bad cursor"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, bytes]
    entries: list[dict]  # sorted by (name, version)

    def load(self, entries: list[dict]) -> None:
        self.entries = sorted(entries, key=lambda e: (e["server"]["name"], e["server"]["version"]))
        self.pages = _pages(self.entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", args.port), _Handler)
    server.load(orjson.loads(args.data.read_bytes()))
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__":
    main()
