"""How a request URL maps to a file of the rendered tree, or to a computed list. Pure: no I/O.

These are the rules `serve` applies and that generated web-server configs express, so
the tree answers the same wherever it is hosted. On a host that computes, GET /v0.1/servers
is a `ListQuery` for the rows index (`mirror.query`), checked as upstream checks it; on one
that cannot, query parameters select a pre-rendered page chain. Every other API path P
answers `P/index.json`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from mirror import paths
from mirror.paths import CHAINS, DEFAULT_PAGE_SIZE, PAGE_SIZES, problem_file
from mirror.query import ListQuery, parse_rfc3339

# What Go's strconv.ParseBool (upstream's query binding) accepts.
TRUE = {"1", "t", "T", "TRUE", "true", "True"}
FALSE = {"0", "f", "F", "FALSE", "false", "False"}
LIMIT_RE = re.compile(r"[1-9][0-9]?|100")
INTEGER_RE = re.compile(r"[+-]?[0-9]+")  # what upstream's query binding reads as an integer
INT64 = 2**63  # Go's strconv.ParseInt(…, 64): a longer integer is no integer to Huma
RFC3339_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True)
class Answer:
    """What a host answers: the first of `files` that exists, else `fallback` with
    `fallback_status`. Files are tree paths (relative POSIX strings). An answer with
    `computed` is a list only a host that computes can make, from the rows index; one with
    `problem` is that problem+json body, made for this request."""

    status: int
    files: tuple[str, ...]
    fallback: str | None = None
    fallback_status: int = 404
    computed: ListQuery | None = None
    problem: bytes | None = None


def _problem(slug: str, status: int) -> Answer:
    return Answer(status, (problem_file(slug),))


def resolve(path: str, query: Mapping[str, str], *, index: str = paths.DEFAULT_VIEW,
            routes_queries: bool = True, computes: bool = False) -> Answer:
    """`path` is percent-decoded and relative to the base URL; `query` holds the first
    value of each parameter, decoded. Empty values count as absent, as upstream binds them.
    `index` is the file a directory answers with in this tree, and a tree made for a host
    that cannot route queries is answered as that host would: queries ignored. A host that
    `computes` answers every list query from the rows index; the others pick a page."""
    query = {key: value for key, value in query.items() if value != ""} if routes_queries else {}
    parts = [part for part in path.split("/") if part]
    if parts and parts[0] == paths.API_ALIAS:  # upstream serves one API under both prefixes
        parts[0] = paths.API
    if parts and parts[0] == paths.HOST_DIR:  # the host's own files (the query engine) are never served
        return Answer(200, (), fallback=paths.NOT_FOUND_PAGE)
    if not parts or parts[0] != paths.API:
        return Answer(200, _static_candidates(parts), fallback=paths.NOT_FOUND_PAGE)
    if parts == [paths.API, "servers"] and routes_queries:
        return compute_list(query) if computes else resolve_list(query)
    include_deleted = query.get("include_deleted")
    if include_deleted is not None and include_deleted not in TRUE | FALSE:
        return _problem("bad-include-deleted", 422)
    directory = "/".join(parts)
    missing = "server-not-found" if len(parts) > 2 and parts[1] == "servers" else "endpoint-not-found"
    views = (paths.view_file(directory, deleted=True),) if include_deleted in TRUE else ()
    return Answer(200, (*views, paths.view_file(directory, index=index)), fallback=problem_file(missing))


def resolve_list(query: Mapping[str, str]) -> Answer:
    """GET /v0.1/servers: pick the chain, page size and page for the query. The checks run
    in this order everywhere (generated host configs repeat them)."""
    if query.get("search"):
        return _problem("search-unsupported", 400)
    version = query.get("version")
    if version and version != "latest":
        return _problem("version-filter-unsupported", 400)
    include_deleted = query.get("include_deleted")
    if include_deleted is not None and include_deleted not in TRUE | FALSE:
        return _problem("bad-include-deleted", 422)
    with_deleted = include_deleted in TRUE
    updated_since = query.get("updated_since")
    if updated_since is not None:
        if not RFC3339_RE.fullmatch(updated_since):
            return _problem("bad-updated-since", 400)
        if include_deleted in FALSE:
            return _problem("updated-since-without-deleted", 400)
        with_deleted = True  # a superset of upstream's answer: items carry updatedAt to filter on
    limit = query.get("limit")
    if limit is not None and not LIMIT_RE.fullmatch(limit):
        return _problem("bad-limit", 422)
    token = query.get("cursor") or paths.cursor(page_size(int(limit) if limit else DEFAULT_PAGE_SIZE), 0)
    if not paths.CURSOR_RE.fullmatch(token):
        return _problem("bad-cursor", 400)
    chain = chain_name(latest=version == "latest", with_deleted=with_deleted)
    return Answer(200, (paths.page_file(chain, token),), fallback=problem_file("bad-cursor"), fallback_status=400)


def compute_list(query: Mapping[str, str]) -> Answer:
    """A list query for the rows index, checked as upstream checks it: Huma binds every
    parameter first (one 422 naming each bad one), then the handler's own rules (400)."""
    errors: list[dict[str, str | int]] = []
    limit = query.get("limit")
    if limit is not None:
        if not INTEGER_RE.fullmatch(limit) or not -INT64 <= int(limit) < INT64:
            errors.append({"message": "invalid integer", "location": "query.limit", "value": limit})
        elif not 1 <= int(limit) <= 100:
            bound = ">= 1" if int(limit) < 1 else "<= 100"
            errors.append({"message": f"expected number {bound}", "location": "query.limit", "value": int(limit)})
    include_deleted = query.get("include_deleted")
    if include_deleted is not None and include_deleted not in TRUE | FALSE:
        errors.append({"message": "invalid boolean", "location": "query.include_deleted", "value": include_deleted})
    if errors:
        return Answer(422, (), problem=validation_problem(errors))
    since = None
    if (updated_since := query.get("updated_since")) is not None:
        since = parse_rfc3339(updated_since)
        if since is None:
            return _made_problem("bad-updated-since")
        if include_deleted in FALSE:
            return _made_problem("updated-since-without-deleted")
    computed = ListQuery(limit=int(limit) if limit else DEFAULT_PAGE_SIZE, cursor=query.get("cursor"),
                         search=query.get("search"), version=query.get("version"), since=since,
                         include_deleted=include_deleted in TRUE or since is not None)
    return Answer(200, (), computed=computed)


def validation_problem(errors: list[dict[str, str | int]]) -> bytes:
    """Huma's 422 body for query parameters it could not bind."""
    return orjson.dumps(paths.problem(422, "Unprocessable Entity", "validation failed", errors=errors))


def _made_problem(slug: str) -> Answer:
    status = paths.PROBLEMS[slug][0]
    return Answer(status, (), problem=orjson.dumps(paths.problem_body(slug)))


def page_size(limit: int) -> int:
    """The largest pre-rendered page size not above `limit` (limit is a maximum)."""
    fitting = [size for size in PAGE_SIZES if size <= limit]
    return max(fitting) if fitting else PAGE_SIZES[0]


def chain_name(*, latest: bool, with_deleted: bool) -> str:
    for name, flags in CHAINS.items():
        if flags == (latest, with_deleted):
            return name
    raise AssertionError("every combination has a chain")


def _static_candidates(parts: list[str]) -> tuple[str, ...]:
    if not parts:
        return (paths.LANDING_PAGE,)
    here = "/".join(parts)
    return (here, f"{here}/index.html")


def pick(answer: Answer, exists: Callable[[str], bool]) -> tuple[int, str | None]:
    """The status and file a host answers with, given which files exist."""
    for candidate in answer.files:
        if exists(candidate):
            return answer.status, candidate
    fallback = answer.fallback if answer.fallback is not None and exists(answer.fallback) else None
    return answer.fallback_status, fallback
