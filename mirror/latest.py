"""Upstream's isLatest rule, as a crawl settles it from the rows it staged: pure.

Upstream flags one version of a server isLatest, and moves the flag without bumping the
other version's updatedAt. So when a crawl returned exactly one flagged version of a server,
every flagged version it carried over from the previous snapshot loses the flag; when it
returned several, or none and it carries other than one, or an entry of the server was
refused, the rows cannot tell, and the server must be fetched whole again. The store applies
the answer (it rewrites the documents); this module only decides it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settled:
    unflag: tuple[int, ...]  # staged positions of carried rows that lose isLatest
    refetch: tuple[str, ...]  # servers to fetch whole again, in name order


def settle(flagged: Mapping[str, Iterable[int]], *, returned: Callable[[int], bool],
           unsure: Iterable[str] = ()) -> Settled:
    """`flagged`: for each server the crawl returned rows of, the staged positions of its
    versions flagged isLatest; `returned(position)`: whether that row came from this crawl
    (else it was carried over); `unsure`: servers with a refused entry."""
    unflag: list[int] = []
    refetch = set(unsure) & set(flagged)
    for name, positions in flagged.items():
        fetched = [p for p in positions if returned(p)]
        carried = [p for p in positions if not returned(p)]
        if len(fetched) == 1:
            unflag.extend(carried)
        elif len(fetched) > 1 or len(carried) != 1:
            refetch.add(name)
    return Settled(tuple(unflag), tuple(sorted(refetch)))
