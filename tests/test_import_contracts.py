"""Which module may import what: the layers hold because a test says so, not by habit.

Each check imports modules in a fresh interpreter and looks at what came with them.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "mirror"
PURE = ["mirror.allowlist", "mirror.diff", "mirror.governance", "mirror.models", "mirror.paths",
        "mirror.policy", "mirror.query", "mirror.routes", "mirror.toolhive", "mirror.vscode"]


def imported_with(*modules: str) -> set[str]:
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io_of_their_own(module):
    assert imported_with(module) & {"duckdb", "httpx", "click", "boto3", "mirror.store", "mirror.registry"} == set()


def test_render_never_reads_the_store():
    """Render takes rows; where they come from is the caller's business (pipeline, curation)."""
    loaded = imported_with("mirror.render", "mirror.render.api", "mirror.render.catalog", "mirror.render.ard",
                           "mirror.render.cards", "mirror.render.feeds", "mirror.render.governance")
    assert loaded & {"duckdb", "mirror.store", "mirror.registry", "httpx"} == set()


def test_the_upstream_client_never_touches_the_database():
    assert imported_with("mirror.registry") & {"duckdb", "mirror.store"} == set()


def test_only_the_cli_imports_click():
    importers = [p.name for p in PACKAGE.rglob("*.py") if re.search(r"^\s*(import|from) click", p.read_text(), re.M)]
    assert importers == ["cli.py"]
