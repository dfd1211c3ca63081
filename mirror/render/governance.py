"""The allowlists in the tree, at fixed paths an administrator fetches (README, Governance).

Made from every decided row, excluded ones included (they are the deny entries), in one pass
that serves all three files; each body is made only when the publisher asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cache

from mirror import governance
from mirror.hosts import JSON, Profile
from mirror.plan import Entry, Kind
from mirror.policy import Decided


def entries(decided: Callable[[], Iterable[Decided]], *, profile: Profile) -> Iterator[Entry]:
    made = cache(lambda: governance.allowlist_outputs(governance.allowlists(decided())))
    for output in governance.FORMATS.values():
        if output.tree_path is not None:
            yield Entry(output.tree_path, Kind.DOCUMENT, JSON,
                        lambda name=output.name: profile.document(made()[name].data))
