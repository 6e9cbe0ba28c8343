"""`flattr-node backup` taken while the node is under load: the copy opens as
a node whose `check` passes and which holds every flattr acknowledged (201)
before the backup began.

The backup command is SQLite's online backup (PostgreSQL nodes use pg_dump),
so this test runs a SQLite node whichever database the suite runs on."""

from __future__ import annotations

import subprocess
import time

import pytest
from nodeproc import CLI, Load, Server, child_env, cli, seed_people, write_config

from flattr_node import db as dbmod
from flattr_node.config import Config, validate
from flattr_node.models import Flattr

pytestmark = pytest.mark.slow


def test_backup_under_load_restores_every_acknowledged_flattr(tmp_path):
    url = f"sqlite:///{tmp_path / 'live' / 'node.db'}"
    data = seed_people(validate(Config(database=url, secret_key="x" * 32, scheduler=False)), people=20)
    config = write_config(tmp_path / "config.toml", url, threads=8)
    server = Server(config, tmp_path / "serve.log")
    try:
        load = Load(server.url, data["tokens"], data["things"], workers=12, requests_each=120, seed=5).start()
        while len(load.records) < 300:  # let the load get going
            time.sleep(0.05)
        began = time.monotonic()
        backup = subprocess.run(
            [*CLI, "--config", str(config), "backup", str(tmp_path / "copy" / "node.db")],
            capture_output=True, text=True, timeout=300, env=child_env(),
        )  # fmt: skip
        ended = time.monotonic()
        load.join()
    finally:
        server.stop()
    assert backup.returncode == 0, backup.stderr
    assert "backup written" in backup.stdout

    before = {(u, t) for kind, u, t, status, _, acked in load.records if kind == "flattr" and status == 201 and acked < began}
    during = [r for r in load.records if began <= r[5] <= ended]
    assert before, "no flattr was acknowledged before the backup began"
    assert during, "the backup did not overlap the load"
    assert not [r for r in load.records if r[3] >= 500]

    restored = write_config(tmp_path / "restored.toml", f"sqlite:///{tmp_path / 'copy' / 'node.db'}")
    assert "ledger ok" in cli(restored, "check").stdout
    database = dbmod.bind(f"sqlite:///{tmp_path / 'copy' / 'node.db'}")
    with database.connection_context():
        in_copy = set(Flattr.select(Flattr.giver, Flattr.thing).tuples())
    assert before <= in_copy, f"{len(before - in_copy)} acknowledged flattrs are missing from the backup"
    every_acked = {(u, t) for kind, u, t, status, _, _ in load.records if kind == "flattr" and status == 201}
    assert in_copy <= every_acked, "the backup holds a flattr nobody was told about"
