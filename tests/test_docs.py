import re
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
