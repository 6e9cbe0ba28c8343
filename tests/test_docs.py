"""The docs keep up with the code: every command, setting and API path is
in the project's own reference (docs/reference.md), and no document sends a
reader to a file the repository does not have."""

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


REFERENCE = ROOT / "docs" / "reference.md"


def reference_section(number: int) -> str:
    text = REFERENCE.read_text()
    return text.split(f"\n## {number}. ", 1)[1].split("\n## ", 1)[0]


def test_every_command_is_in_the_reference():
    """A new command without its line in docs/reference.md §4 fails here."""
    section = reference_section(4)
    missing = [p for p in command_paths(main) if f"| `{p}" not in section]
    assert not missing, f"commands missing from docs/reference.md §4: {missing}"


def test_every_setting_is_in_the_reference_with_its_default():
    """A new config key without its row in docs/reference.md §5 fails here."""
    import json
    import tomllib

    from flattr_node.config import KEYS, Config

    section = reference_section(5)
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    missing = [k for k in KEYS if k not in rows]
    assert not missing, f"settings missing from docs/reference.md §5: {missing}"
    for key in KEYS:
        default = getattr(Config(), key)
        assert tomllib.loads(f"v = {rows[key]}")["v"] == default, (key, rows[key], json.dumps(default))


def test_every_api_path_is_in_the_reference():
    """Every path of the node's OpenAPI document has its row in §3."""
    import json

    section = reference_section(3)
    spec = json.loads((ROOT / "flattr_node" / "openapi.json").read_text())
    missing = [
        f"{method.upper()} {path}"
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete") and f"| {method.upper()} `{path}` |" not in section
    ]
    assert not missing, f"API paths missing from docs/reference.md §3: {missing}"
    assert "/api/v1/openapi.json" in section  # and the reader is told where the node describes itself


def test_the_readme_sends_readers_to_the_reference():
    readme = (ROOT / "README.md").read_text()
    assert "(docs/reference.md)" in readme


def test_no_document_points_outside_the_repository():
    """A clone has no sibling folder of specs: nothing may send a reader there; and every
    relative link of the Markdown files leads to a file that exists."""
    import re
    import subprocess

    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    offenders = []
    for name in files:
        if name.startswith(".ci/") or name == "tests/test_docs.py":
            continue
        path = ROOT / name
        if not path.is_file() or path.suffix in (".png", ".jpg", ".db"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        outside = "../" + "shared"  # spelled in two parts so that this file does not match itself
        if outside in text or "shared/SPEC" in text:
            offenders.append(name)
        if path.suffix == ".md":
            prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.S))  # not code
            for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", prose):
                if "://" in target or target.startswith("mailto:"):
                    continue
                if not (path.parent / target).exists():
                    offenders.append(f"{name}: broken link {target}")
    assert not offenders, offenders


def test_readme_starts_with_the_two_commands():
    head = (ROOT / "README.md").read_text().splitlines()[:10]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)
