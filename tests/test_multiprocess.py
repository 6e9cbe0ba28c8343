"""Three `flattr-node serve` processes on one database, each with its own
scheduler, started together: each one's first tick tries to close the same
ended months at the same moment. Money moves once: the ledger equals that
of one close of the same data, and every process's ledger check passed.
On a SQLite file, and on PostgreSQL when the suite runs there."""

from __future__ import annotations

import time

import pytest
from conftest import ledger_snapshot
from nodeproc import Server, cli, seed_month, write_config

from flattr_node import closing, periods
from flattr_node import db as dbmod
from flattr_node.config import Config, validate
from flattr_node.models import CheckRun, Period, Txn, utcnow

pytestmark = pytest.mark.slow


@pytest.fixture
def two_databases(new_database_url):
    """Two empty databases of the kind under test."""
    return new_database_url(), new_database_url()


def test_three_serve_processes_close_a_month_once(tmp_path, two_databases):
    shared, reference = two_databases
    cfg = validate(Config(database=shared, secret_key="x" * 32, scheduler=False, close_batch_size=3))
    last = periods.last_ended(utcnow(), cfg.tz)
    month = last  # ended: the schedulers will want to close it at once
    for url in (shared, reference):
        seed_month(cfg.with_(database=url), month, people=40)

    # The reference: one close, in this process, of the same data.
    database = dbmod.bind(reference)
    with database.connection_context():
        closing.close_due_periods(cfg.with_(database=reference))
        expected = ledger_snapshot()
    assert [p for p in expected["periods"] if p[0] == month][0][1] == "closed"

    config = write_config(tmp_path / "config.toml", shared, scheduler=True, tick_minutes=60, close_batch_size=3)
    servers = []
    try:
        for i in range(3):  # started together; each one's scheduler ticks as soon as it is up
            servers.append(Server(config, tmp_path / f"serve{i}.log", wait=False))
        for server in servers:
            server.wait_ready()
        database = dbmod.bind(shared)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with database.connection_context():
                ticks = CheckRun.select().count()
                open_ = Period.select().where((Period.name <= last) & (Period.status != "closed")).count()
            if ticks >= 3 and not open_:
                break
            time.sleep(0.2)
    finally:
        for server in servers:
            server.stop()
    logs = "\n".join((tmp_path / f"serve{i}.log").read_text() for i in range(3))
    with database.connection_context():
        assert CheckRun.select().count() >= 3, logs
        assert all(run.ok for run in CheckRun.select()), [run.problems for run in CheckRun.select()]
        assert ledger_snapshot() == expected
        closes = Txn.select().where(Txn.kind == "close").count()
        assert closes == sum(p[2] for p in expected["periods"])  # one transaction per paying giver
    assert "LEDGER CHECK FAILED" not in logs and "Traceback" not in logs
    assert "ledger ok" in cli(config, "check").stdout
