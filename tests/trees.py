"""Render small trees for tests: in memory as {path: bytes}, or published to a directory."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import orjson

from mirror import hosts, paths
from mirror.models import Delta, Row, Snapshot
from mirror.publish import LocalTarget, PublishResult, publish
from mirror.render import Sealed, Site, row_source


def site(snapshot: Snapshot, rows: Sequence[Row], *, base_url: str, host: str = "nginx",
         content: Snapshot | None = None, deltas: Sequence[Delta] | None = None) -> Site:
    return Site(snapshot, row_source(rows), base_url=base_url, profile=hosts.get_profile(host), content=content,
                deltas=None if deltas is None else lambda: list(deltas))


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
                 host: str = "nginx", content: Snapshot | None = None,
                 deltas: Sequence[Delta] | None = None) -> PublishResult:
    rendered = site(snapshot, rows, base_url=base_url, host=host, content=content, deltas=deltas)
    index = rendered.profile.index_name
    with LocalTarget(out, manifest_path=paths.manifest_file(index), state_path=paths.state_file(index)) as target:
        return publish(rendered, target)


SNAPSHOT_LINE = re.compile(rb"Data from <bdi>[^<]*</bdi>, synced <time[^>]*>[^<]*</time>\n\(snapshot \d+\)")
UPSTREAM_LINE = re.compile(rb"This mirror of <code>[^<]*</code>")


def comparable_tree(root: Path) -> dict[str, bytes]:
    """A published tree as {path: bytes}, less what names the crawl rather than the data, so
    a mirror kept current by incremental crawls can be compared with one full crawl:

    - the change feeds (`/v0.1/x/mcp-mirror/changes`): they are the history of crawls, which
      differs by construction;
    - the manifest: it only lists the other files' hashes (every other file is compared);
    - in the state document, the `snapshot`, `content`, `manifest` and `changes` members (ids,
      times and the feed's link); every count and capability stays;
    - in `/v0.1/version`, `git_commit` and `build_time` (the content snapshot's id and time);
    - the catalog's "What changed" pages and Atom feed: the same history of crawls;
    - on the home page, the content snapshot's id, upstream and finish time; on the 404
      page, the upstream (a mirror of a mirror names another one).
    """
    root = Path(root).resolve()
    files: dict[str, bytes] = {}
    feed = paths.extension_dir("changes")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((feed + "/", paths.extension_dir("manifest") + "/", paths.CATALOG_CHANGES + "/")) \
                or rel == paths.FEED:
            continue
        data = path.read_bytes()
        if rel.startswith(paths.extension_dir("state") + "/"):
            state = orjson.loads(data)
            for key in ("snapshot", "content", "manifest", "changes"):
                state.pop(key, None)
            data = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
        elif rel.startswith(paths.api_dir("version") + "/"):
            version = orjson.loads(data)
            version.pop("git_commit", None)
            version.pop("build_time", None)
            data = orjson.dumps(version)
        elif rel == paths.LANDING_PAGE:
            data = SNAPSHOT_LINE.sub(b"Data from _, synced _ (snapshot _)", data)
        elif rel == paths.NOT_FOUND_PAGE:
            data = UPSTREAM_LINE.sub(b"This mirror of _", data)
        files[rel] = data
    return files
