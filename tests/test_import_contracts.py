"""Which module may import what: the layers hold because a tool says so, not by habit.

The contracts are import-linter's, in pyproject.toml ([tool.importlinter]): render never
reads the store, the upstream client never touches the database, the store never speaks
HTTP, pure modules do no I/O of their own. Indirect imports count.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_every_import_contract_is_kept():
    linter = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert linter, "import-linter is a test dependency: run `make install`"
    done = subprocess.run([linter], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    assert "0 broken" in done.stdout and "4 kept" in done.stdout


def test_only_the_cli_imports_click():
    package = ROOT / "mirror"
    importers = [p.name for p in package.rglob("*.py") if re.search(r"^\s*(import|from) click", p.read_text(), re.M)]
    assert importers == ["cli.py"]
