"""`flattr-node backup` taken while the node is under load: the copy opens as
a node whose `check` passes and which holds every flattr acknowledged (201)
before the backup began.

It runs on the suite's database: a SQLite node (the backup is a database
file) or, with FLATTR_TEST_DATABASE, a PostgreSQL node in a schema of its
own (the backup is a pg_dump archive, restored with pg_restore into a new
database on the same server)."""

from __future__ import annotations

import contextlib
import subprocess
import time

import pytest
from nodeproc import (
    CLI,
    PG_UNDER_TEST,
    Load,
    Server,
    child_env,
    cli,
    copy_rows,
    drop_pg_schema,
    need_pg_dump,
    pg_schema,
    restored_pg_dump,
    seed_people,
    write_config,
)

from flattr_node.config import Config, validate

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def live_node(tmp_path):
    """The URL of a new node's database on the suite's database, and where its
    backup goes: (url, backup path)."""
    if not PG_UNDER_TEST:
        yield f"sqlite:///{tmp_path / 'live' / 'node.db'}", tmp_path / "copy" / "node.db"
        return
    need_pg_dump()
    url, schema = pg_schema(PG_UNDER_TEST)
    try:
        yield url, tmp_path / "copy" / "node.dump"
    finally:
        drop_pg_schema(PG_UNDER_TEST, schema)


@contextlib.contextmanager
def restored(copy, live_url):
    """The URL of a node on the backup."""
    if not PG_UNDER_TEST:
        yield f"sqlite:///{copy}"
        return
    with restored_pg_dump(copy, live_url) as url:
        yield url


def test_backup_under_load_restores_every_acknowledged_flattr(tmp_path):
    with live_node(tmp_path) as (url, copy):
        backup, load, began, ended = backup_under_load(tmp_path, url, copy)
        assert backup.returncode == 0, backup.stderr
        assert "backup written" in backup.stdout

        before = {(u, t) for kind, u, t, status, _, acked in load.records if kind == "flattr" and status == 201 and acked < began}
        during = [r for r in load.records if began <= r[5] <= ended]
        assert before, "no flattr was acknowledged before the backup began"
        assert during, "the backup did not overlap the load"
        assert not [r for r in load.records if r[3] >= 500]

        with restored(copy, url) as copy_url:
            restored_config = write_config(tmp_path / "restored.toml", copy_url)
            assert "ledger ok" in cli(restored_config, "check").stdout
            in_copy = set(copy_rows(copy_url, "SELECT giver_id, thing_id FROM flattr"))
        assert before <= in_copy, f"{len(before - in_copy)} acknowledged flattrs are missing from the backup"
        every_acked = {(u, t) for kind, u, t, status, _, _ in load.records if kind == "flattr" and status == 201}
        assert in_copy <= every_acked, "the backup holds a flattr nobody was told about"


def backup_under_load(tmp_path, url, copy):
    """Serve the node at `url` under load and take `backup` to `copy` in the
    middle: (the backup's CompletedProcess, the load, when it began, ended)."""
    data = seed_people(validate(Config(database=url, secret_key="x" * 32, scheduler=False)), people=20)
    config = write_config(tmp_path / "config.toml", url, threads=8)
    server = Server(config, tmp_path / "serve.log")
    try:
        load = Load(server.url, data["tokens"], data["things"], workers=12, requests_each=120, seed=5).start()
        while len(load.records) < 300:  # let the load get going
            time.sleep(0.05)
        began = time.monotonic()
        backup = subprocess.run(
            [*CLI, "--config", str(config), "backup", str(copy)],
            capture_output=True, text=True, timeout=300, env=child_env(),
        )  # fmt: skip
        ended = time.monotonic()
        load.join()
    finally:
        server.stop()
    return backup, load, began, ended
