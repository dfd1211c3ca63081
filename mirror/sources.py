"""The organization's own servers: a directory of server.json files, made into rows.

Each file is validated against the official server.json schema (a copy ships in
mirror/data, since ../shared is not installed) and then as upstream validates a row.
The mirror mints the official-style `_meta` upstream would: status active, publishedAt and
updatedAt, isLatest by upstream's rule (highest semver, else newest). Times must be the
same in every clone, so never a file's mtime: the file's own
`_meta["mcp-mirror/mirror"].publishedAt` when it has one, else the finish time of the
snapshot whose data is rendered. The mirror's own record (origin, file) is under its
`_meta` key; the server object itself is served as the file has it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from heapq import merge
from itertools import groupby
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from mirror.errors import PolicyError
from mirror.models import OFFICIAL, Row, parse_time, row_from_item
from mirror.policy import MIRROR_META, best_version

SCHEMA = Path(__file__).parent / "data" / "server.schema.json"  # shared/upstream's, verbatim
MAX_FILE_BYTES = 1_000_000
MAX_FILES = 10_000


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


@dataclass(frozen=True)
class LocalServer:
    path: str  # relative to the directory, POSIX
    server: dict[str, Any]


def read_directory(directory: Path) -> list[LocalServer]:
    """Every `*.json` below `directory`, sorted by path; raises PolicyError naming the file
    and the field of the first problem."""
    root = Path(directory)
    if not root.is_dir():
        raise PolicyError(f"--local {root} is not a directory")
    files = sorted(p for p in root.rglob("*.json") if p.is_file() and not p.is_symlink())
    if len(files) > MAX_FILES:
        raise PolicyError(f"--local {root} has more than {MAX_FILES} server.json files")
    return [read_file(path, name=path.relative_to(root).as_posix()) for path in files]


def read_file(path: Path, *, name: str) -> LocalServer:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PolicyError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
    try:
        server = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PolicyError(f"{name}: not JSON: {exc}") from None
    return LocalServer(name, validate(server, name=name))


def validate(server: Any, *, name: str) -> dict[str, Any]:
    errors = sorted(_validator().iter_errors(server), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        first = errors[0]
        field = _pointer(first.absolute_path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PolicyError(f"{name}: {field}: {first.message[:300]}{more}",
                          hint="the file must follow server.schema.json (2025-12-11)")
    try:
        row_from_item({"server": server, "_meta": {}})
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = _pointer(problem["loc"][1:])
        raise PolicyError(f"{name}: {field}: {problem['msg'].removeprefix('Value error, ')}") from None
    stamp = _own(server).get("publishedAt")
    if stamp is not None:
        try:
            parse_time(stamp)
        except (TypeError, ValueError):
            raise PolicyError(f"{name}: /_meta/{MIRROR_META}/publishedAt: {stamp!r} is not an RFC 3339 time "
                              "with a time zone") from None
    return server


def _pointer(parts: Iterable[Any]) -> str:
    return "/" + "/".join(str(part) for part in parts) if parts else "/ (the document)"


def _own(server: dict[str, Any]) -> dict[str, Any]:
    meta = server.get("_meta")
    own = meta.get(MIRROR_META) if isinstance(meta, dict) else None
    return own if isinstance(own, dict) else {}


def local_rows(servers: list[LocalServer], *, snapshot_time: str) -> list[Row]:
    """The rows of the local servers, sorted by (name, version), with minted `_meta`."""
    by_key: dict[tuple[str, str], LocalServer] = {}
    for local in servers:
        key = (local.server["name"], local.server["version"])
        if key in by_key:
            raise PolicyError(f"{local.path}: {key[0]} {key[1]} is also in {by_key[key].path}",
                              hint="one file per name and version")
        by_key[key] = local
    rows: list[Row] = []
    for _, group in groupby(sorted(by_key.items()), key=lambda pair: pair[0][0]):
        drafts = [(_row(local, snapshot_time=snapshot_time, latest=False), local) for _key, local in group]
        best = best_version([row for row, _ in drafts])
        for row, local in drafts:
            rows.append(_row(local, snapshot_time=snapshot_time, latest=True) if row is best else row)
    return rows


def _row(local: LocalServer, *, snapshot_time: str, latest: bool) -> Row:
    when = _own(local.server).get("publishedAt") or snapshot_time
    item = {"server": local.server,
            "_meta": {OFFICIAL: {"status": "active", "statusChangedAt": when, "publishedAt": when,
                                 "updatedAt": when, "isLatest": latest},
                      MIRROR_META: {"origin": "local", "file": local.path}}}
    return row_from_item(item)


def merged(upstream: Iterable[Row], local: list[Row], *, prefer: str | None,
           collisions: list[str] | None = None) -> Iterator[Row]:
    """Upstream's rows and the local ones, in (name, version) order, one server at a time.
    A name both have is resolved by `prefer` ("local": upstream's versions of it are left
    out; "upstream": the local ones are); with no rule it is refused, naming the server.
    Each collision's name is appended to `collisions`, for the report."""
    tagged = merge(((row, False) for row in upstream), ((row, True) for row in local), key=lambda pair: pair[0].key)
    for name, group in groupby(tagged, key=lambda pair: pair[0].name):
        pairs = list(group)
        origins = {is_local for _, is_local in pairs}
        if len(origins) == 2:
            if prefer is None:
                raise PolicyError(f"{name} is both an upstream server and a --local one",
                                  hint='say which wins in the policy: [collisions] prefer = "local" or "upstream"')
            if collisions is not None:
                collisions.append(name)
            pairs = [pair for pair in pairs if pair[1] == (prefer == "local")]
        yield from (row for row, _ in pairs)
