"""`serve --port` moves the links with the port; a busy port fails at once,
in one line, before the scheduler's first tick; `make run` takes PORT and
installs only what the node needs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from nodeproc import CLI, Server, child_env, write_config
from web_helpers import parse

from flattr_node.config import Config
from flattr_node.db import database
from flattr_node.models import CheckRun
from flattr_node.services import things
from flattr_node.serving import follow_port

ROOT = Path(__file__).resolve().parent.parent


def test_buttons_point_at_the_port_serve_listens_on(tmp_path, database_url, make_user):
    thing = things.register_thing(make_user("ann"), {"url": "https://ann.example/p", "title": "Ann's post"})
    database.close()
    config = write_config(tmp_path / "config.toml", database_url)  # base_url http://127.0.0.1:8080, port 8080
    server = Server(config, tmp_path / "serve.log")
    try:
        page = requests.get(f"{server.url}/things/{thing.id}", timeout=10)
        button = next(a for a in parse(page.text).iter("a") if a.get("class") == "flattr-node-button")
        assert button.get("href") == f"{server.url}/things/{thing.id}/flattr"
        assert requests.get(button.get("href"), timeout=10, allow_redirects=False).status_code == 302  # the node answers there
    finally:
        server.stop()


def test_an_explicit_base_url_is_kept_with_a_warning_only_when_it_looks_like_this_server():
    cfg = Config(base_url="https://flattr.example.org")
    moved, warning = follow_port(cfg, None, 8090)
    assert (moved.base_url, moved.port, warning) == ("https://flattr.example.org", 8090, None)  # a reverse proxy
    cfg = Config(base_url="http://localhost:9000")
    moved, warning = follow_port(cfg, None, 8090)
    assert moved.base_url == "http://localhost:9000" and "8090" in warning and "\n" not in warning
    moved, warning = follow_port(Config(), None, 8090)
    assert (moved.base_url, warning) == ("http://127.0.0.1:8090", None)
    moved, warning = follow_port(Config(), None, None)
    assert (moved.base_url, warning) == ("http://127.0.0.1:8080", None)


def test_a_busy_port_fails_in_one_line_before_any_tick(tmp_path, database_url, db):
    config = write_config(tmp_path / "config.toml", database_url, scheduler=True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*CLI, "--config", str(config), "serve", "--port", str(port)], capture_output=True, text=True, timeout=120, env=child_env()
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    database.connect(reuse_if_open=True)
    assert CheckRun.select().count() == 0  # the scheduler never ticked


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_takes_a_port_and_installs_only_the_node(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("setup.cfg", "pyproject.toml"):
        (tmp_path / name).write_text("")
    # As from a shell: not the make that may be running this test (its MAKEFLAGS, MAKELEVEL), which
    # would make this make print "Entering/Leaving directory" lines around the plan.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def make_n(*args: str) -> str:
        return subprocess.run(["make", "-n", *args], cwd=tmp_path, capture_output=True, text=True, check=True, env=env).stdout

    plan = make_n("run", "PORT=8090")
    installs = [line for line in plan.splitlines() if "pip install" in line]
    assert installs and not any("[test]" in line for line in installs), plan
    assert all("--quiet --quiet" in line for line in installs)
    assert plan.splitlines()[-1].endswith("flattr-node serve --port 8090")
    plan = make_n("run")
    assert plan.splitlines()[-1].endswith("flattr-node serve")
    test_plan = make_n("test")
    assert any("[test]" in line for line in test_plan.splitlines() if "pip install" in line)


@pytest.mark.slow
def test_building_the_package_prints_no_setuptools_warnings(tmp_path):
    """The ~150 lines of "Package would be ignored" came from template and
    static folders that setuptools saw as packages outside `packages`."""
    result = subprocess.run(
        [str(Path(CLI[0]).with_name("pip")), "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600, env=child_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BuildBackendWarning" not in result.stderr and "Package would be ignored" not in result.stderr
    [wheel] = tmp_path.glob("*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "flattr_node/templates/base.html" in names and "flattr_node/static/style.css" in names
