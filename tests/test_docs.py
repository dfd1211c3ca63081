import re
import subprocess
import sys
from pathlib import Path

import pytest

from mirror.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name, command", sorted(cli.commands.items()))
def test_every_command_has_help_and_is_documented(name, command):
    assert command.help, f"{name} has no help"
    assert f"mcp-mirror {name}" in README, f"{name} is not in README.md"
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt not in ("--help", "--quiet", "--workdir", "--upstream-port"):
                assert opt in README, f"{name} {opt} is not in README.md"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)


def test_only_the_cli_imports_click_and_pure_modules_stay_pure():
    code = (
        "import sys, mirror.diff, mirror.paths, mirror.models, mirror.routes, mirror.policy;"
        "bad = {'click', 'duckdb', 'httpx'} & set(sys.modules);"
        "print(','.join(sorted(bad)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
    package = Path(__file__).parent.parent / "mirror"
    importers = [p.name for p in package.glob("*.py") if re.search(r"^\s*(import|from) click", p.read_text(), re.M)]
    assert importers == ["cli.py"]
