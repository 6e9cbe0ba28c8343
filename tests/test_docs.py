"""The docs keep up with the code: every command is in the README."""

from __future__ import annotations

from pathlib import Path

import click

from flattr_node.cli import main

ROOT = Path(__file__).resolve().parent.parent


def command_paths(group: click.Group, prefix: str = "flattr-node") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        if name.startswith("_"):
            continue
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, path))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [p for p in command_paths(main) if p not in readme and p.replace("flattr-node ", "") not in readme]
    assert not missing, f"commands missing from README.md: {missing}"


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:10]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)
