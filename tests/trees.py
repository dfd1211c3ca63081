"""Render small trees for tests: in memory as {path: bytes}, or published to a directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mirror import hosts, paths
from mirror.models import Row, Snapshot
from mirror.publish import LocalTarget, PublishResult, publish
from mirror.render import Sealed, Site, row_source


def site(snapshot: Snapshot, rows: Sequence[Row], *, base_url: str, host: str = "nginx",
         content: Snapshot | None = None) -> Site:
    return Site(snapshot, row_source(rows), base_url=base_url, profile=hosts.get_profile(host), content=content)


def plan_site(snapshot: Snapshot, rows: Sequence[Row], *, base_url: str, host: str = "nginx") -> dict[str, bytes]:
    """Every file of the tree but the manifest; the state document is sealed with a stand-in."""
    rendered = site(snapshot, rows, base_url=base_url, host=host)
    files = {}
    for entry in rendered.entries():
        assert entry.path not in files, entry.path
        files[entry.path] = entry.data()
    state = rendered.state_entry(Sealed(rendered.manifest_path(), "0" * 64, files=len(files), bytes=0))
    files[state.path] = state.data()
    return files


def publish_site(snapshot: Snapshot, rows: Sequence[Row], out: Path, *, base_url: str,
                 host: str = "nginx", content: Snapshot | None = None) -> PublishResult:
    rendered = site(snapshot, rows, base_url=base_url, host=host, content=content)
    index = rendered.profile.index_name
    with LocalTarget(out, manifest_path=paths.manifest_file(index), state_path=paths.state_file(index)) as target:
        return publish(rendered, target)
