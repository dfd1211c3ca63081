"""The allowlists in the tree, at fixed paths an administrator fetches (README, Governance).

Made from every decided row, excluded ones included (they are the deny entries), in one pass
that serves all three files; each body is made only when the publisher asks for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache

from mirror import governance
from mirror.hosts import JSON, Profile
from mirror.plan import Entry, Kind, digest
from mirror.policy import Decided


def entries(decided: Callable[[], Iterable[Decided]], *, profile: Profile,
            rows_digest: str | None = None) -> Iterator[Entry]:
    """`rows_digest`: the store's digest of every row (an uncurated site, where every row is
    admitted), which makes the source without a pass over the rows."""
    # the files' bytes only (not their notes), made once for the three entries
    made = cache(lambda: {name: output.data for name, output in
                          governance.allowlist_outputs(governance.allowlists(decided())).items()})
    source = digest("rows", rows_digest) if rows_digest else _source(decided())
    for output in governance.FORMATS.values():
        if output.tree_path is not None:
            yield Entry(output.tree_path, Kind.DOCUMENT, JSON,
                        lambda name=output.name: profile.document(made()[name]),
                        source=digest(output.name, source))


def _source(decided: Iterable[Decided]) -> str:
    """What the files are made of, without parsing a document: a publisher that has them
    from the same rows and decisions keeps them unmade."""
    hasher = hashlib.blake2b(digest_size=16)
    for d in decided:
        row = d.row
        hasher.update(f"{row.name}\x00{row.version}\x00{row.hash}\x00{row.status}\x00"
                      f"{d.decision.admitted:d}{d.latest:d}\x01".encode())
    return hasher.hexdigest()
