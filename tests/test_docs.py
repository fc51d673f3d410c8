"""The README and docs/ document every command and every option a user can type, and the
README stays a user's page (under 15,000 characters)."""

from __future__ import annotations

import re

import click
import pytest

from pipeline.cli import cli
from tests.helpers import ROOT, commands

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


COMMANDS = commands(cli)


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_every_command_is_in_the_readme(path):
    assert f"dependents {' '.join(path)}" in README


OPTIONS = sorted(
    {
        (" ".join(path), opt)
        for path, command in [((), cli), *COMMANDS]
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--") and opt != "--help"
    }
)


@pytest.mark.parametrize(("command", "option"), OPTIONS, ids=[f"{c} {o}" for c, o in OPTIONS])
def test_every_option_is_documented(command, option):
    assert re.search(rf"{option}(?![\w-])", DOCS), f"dependents {command}: {option} is not documented"


def test_the_readme_is_a_users_page():
    assert len(README) < 15_000
    assert "make run" in README and "make test" in README
