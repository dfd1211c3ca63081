"""Render's output and publish's input: a stream of typed entries.

Producers (`mirror.render`) yield entries in write order; targets (`mirror.publish`) put
them somewhere. An entry says what it is, so nothing downstream parses paths back into
roles: the kind orders writes (files first, indexes last, as Debian's ftpsync does), the
media type and cache class become headers or object metadata.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Kind(IntEnum):
    """Write order: nothing is published before what it refers to."""

    DOCUMENT = 0  # refers to nothing: a version, a problem, a probe document, a host file
    LIST = 1  # names documents: a versions list, a page of a chain
    POINTER = 2  # where clients start: `latest`, the first page, the landing page
    STATE = 3  # the state document, which names the manifest: always last


class Cache(StrEnum):
    """Cache classes; `hosts` turns each into a Cache-Control value."""

    API = "api"
    HTML = "html"
    STATE = "state"


Body = bytes | Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the tree. `path` is relative and POSIX. `source` digests what the body
    is made from, so a target can tell an unchanged file without making its body."""

    path: str
    kind: Kind
    media_type: str
    body: Body
    cache: Cache = Cache.API
    source: str | None = None

    def data(self) -> bytes:
        return self.body() if callable(self.body) else self.body


def digest(*parts: str) -> str:
    """A short, stable digest of the inputs of an entry."""
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()
