"""The README's walkthrough, run as it stands against a real `serve`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from nodeproc import free_port

ROOT = Path(__file__).resolve().parent.parent


def walkthrough_script() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README.md lost its walkthrough block"
    return block.group(1)


def test_readme_walkthrough_pays_each_owner_one_euro(tmp_path, database_url):
    if shutil.which("faketime") is None or shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have faketime and curl (.ci/run installs them)")
        pytest.skip("the walkthrough needs faketime and curl (apt-get install faketime curl)")
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'database = "{database_url}"\nsecret_key = "walkthrough"\nbase_url = "http://127.0.0.1:{port}"\n'
        f"port = {port}\nscheduler = false\n"
    )
    flattr_node = str(Path(sys.executable).with_name("flattr-node"))
    env = {**os.environ, "FLATTR_NODE_CONFIG": str(config), "F": flattr_node, "N": f"http://127.0.0.1:{port}/api/v1"}
    log = open(tmp_path / "serve.log", "wb")  # a file, not a pipe nobody reads while it runs
    server = subprocess.Popen([flattr_node, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough_script()],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
        )
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    assert run.returncode == 0, run.stderr
    out = run.stdout.strip().splitlines()
    # The last four lines: Ann's and Bob's revenue, Kim's revenue, Kim's share.
    assert out[-4:] == ["100", "100", "400", "100"], run.stdout
    assert any('"error":"flattr_once"' in line.replace(" ", "") for line in out)
    assert "ledger ok" in run.stdout
    assert re.search(r"period \d{4}-\d\d closed: 3 givers, 4 of 4 flattrs counted, €6\.00 to owners", run.stdout)
