"""A non-editable install must carry the templates, the SQL schema and the sample."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_wheel_ships_its_data_and_renders_from_outside_the_checkout(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path, ROOT],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("mcp_mirror-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"mirror/templates/catalog/list.html", "mirror/templates/catalog/assets/catalog.css",
            "mirror/templates/catalog/assets/catalog.js", "mirror/schema.sql", "mirror/data/sample.json",
            "mirror/data/toolhive-publisher-provided.schema.json"} <= names
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
                   check=True, capture_output=True)
    script = (
        "import mirror, sys; from pathlib import Path;"
        "from mirror.fake_upstream import FakeUpstream; from mirror import pipeline;"
        "from mirror.settings import Settings;"
        "assert Path(mirror.__file__).parent.parent == Path(sys.argv[1]), mirror.__file__;"
        "up = FakeUpstream().start();"
        "s = Settings(upstream=up.url, db=Path(sys.argv[2]) / 'm.duckdb', out=Path(sys.argv[2]) / 'site');"
        "print(pipeline.build(s).summary['rows']); up.stop()"
    )
    done = subprocess.run([sys.executable, "-c", script, target, tmp_path], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "120"
    assert (tmp_path / "site" / "index.html").read_text().startswith("<!doctype html>")
