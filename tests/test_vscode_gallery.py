"""VS Code's own MCP gallery code, run in node, must show the same servers from the mirror as
from the upstream it mirrors.

tests/vscode_gallery/gallery.mjs builds VS Code's McpGalleryService and its manifest service
with VS Code's dependency injection, pointed at a registry URL through the
`chat.mcp.gallery.serviceUrl` setting, and prints what the gallery shows: the version probe's
manifest, the list over every page, a search and the detail lookup of every listed server.
tests/clients.py re-implements these requests; this runs the real code, so a change in how VS
Code builds URLs, pages or parses answers shows up here when its package is bumped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_conformance import BASES, SERVERS, VISIBLE, sites, start  # noqa: F401  (fixtures, used by name)

from mirror.fake_upstream import FakeUpstream

SCRIPT = Path(__file__).parent / "vscode_gallery" / "gallery.mjs"
MODULES = Path(sys.prefix) / "vscode-gallery" / "node_modules"  # where `make install` puts them
SEARCH = "db"  # six sample servers have it in their name: iotdb, astra-db, mongodb, motherduckdb
RUN_SECONDS = 90


def node_binary() -> str:
    """node, or a clear failure (a skip only when asked for), as server_binary does for nginx."""
    found = shutil.which("node")
    if not found:
        if os.environ.get("MCP_MIRROR_SKIP_NODE") == "1":
            pytest.skip("node is not installed and MCP_MIRROR_SKIP_NODE=1")
        pytest.fail("node is not installed: `apt-get install nodejs npm`, then `make install`, "
                    "or set MCP_MIRROR_SKIP_NODE=1 to skip VS Code's gallery tests", pytrace=False)
    if not (MODULES / "@codingame" / "monaco-vscode-mcp-service-override").is_dir():
        pytest.fail(f"VS Code's gallery code is not installed in {MODULES}: run `make install` (it needs npm)",
                    pytrace=False)
    return found


def show(base_url: str) -> dict:
    """What VS Code's gallery shows for the registry at `base_url`, with that URL written as
    `{base}` so that two registries compare."""
    done = subprocess.run(
        [node_binary(), str(SCRIPT), "--modules", str(MODULES), "--search", SEARCH,
         "--timeout", str(RUN_SECONDS - 10), base_url],
        capture_output=True, text=True, timeout=RUN_SECONDS)
    assert done.returncode == 0, f"gallery.mjs exited {done.returncode}:\n{done.stderr[-3000:]}"
    return relative(json.loads(done.stdout), base_url.rstrip("/"))


def relative(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace(base, "{base}")
    if isinstance(value, list):
        return [relative(item, base) for item in value]
    if isinstance(value, dict):
        return {key: relative(item, base) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def upstream() -> dict:
    with FakeUpstream() as fake:
        return show(fake.url)


@pytest.fixture(scope="module", params=[
    pytest.param((kind, base), id=f"{kind}-{base}", marks=[getattr(pytest.mark, kind)] if kind != "serve" else [])
    for kind in SERVERS for base in BASES])
def mirror(request, start) -> dict:  # noqa: F811  (start: the fixture imported above)
    return show(str(start(*request.param).client.base_url))


def failures(shown: dict, *, phases: set[str]) -> list:
    """Requests of these phases that did not answer 200, and what the gallery logged."""
    return ([entry for entry in shown["requests"] if entry["phase"] in phases and entry.get("status") != 200]
            + [entry for entry in shown["log"] if entry["phase"] in phases])


def test_the_gallery_shows_every_visible_server_of_the_upstream(upstream):
    """The reference the mirror is compared with, so that an empty answer cannot pass."""
    assert upstream["manifest"]["version"] == "v0.1" and upstream["manifest"]["enabled"] is True
    assert [server["name"] for server in upstream["list"]["servers"]] == VISIBLE
    assert upstream["details"]["missing"] == [] and len(upstream["details"]["servers"]) == len(VISIBLE)
    found = [server["name"] for server in upstream["search"]["servers"]]
    assert len(found) > 1 and all(SEARCH in name.lower() for name in found), found
    assert failures(upstream, phases={"manifest", "list", "search", "details"}) == []


def test_the_gallery_lists_what_it_lists_from_upstream(mirror, upstream):
    assert failures(mirror, phases={"manifest", "list"}) == []
    assert mirror["manifest"] == upstream["manifest"]
    assert mirror["list"]["servers"] == upstream["list"]["servers"]
    assert mirror["list"]["pages"] == upstream["list"]["pages"]  # the same page sizes, so the same requests


def test_the_gallery_details_every_server_as_from_upstream(mirror, upstream):
    assert failures(mirror, phases={"details"}) == []
    assert mirror["details"] == upstream["details"]


def test_the_gallery_searches_as_upstream_does(mirror, upstream):
    assert failures(mirror, phases={"search"}) == []
    assert mirror["search"] == upstream["search"]
