"""Crash tests: the real `flattr-node close-month` and `deposit confirm` in a
subprocess, killed with SIGKILL at random points (fixed seed), restarted
until done. The final ledger must equal that of an uninterrupted run on the
same data, and `flattr-node check` must pass. On a SQLite file, and on
PostgreSQL when the suite runs there."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
from conftest import ledger_snapshot
from nodeproc import CLI, child_env, cli, seed_month, write_config

from flattr_node import db as dbmod
from flattr_node.config import Config, validate
from flattr_node.models import ClosePlan, Deposit, Period
from flattr_node.services import funds

pytestmark = pytest.mark.slow

PERIOD = "2026-01"
KILLS = 20
PEOPLE = 800
BATCH = 1


@pytest.fixture
def two_databases(new_database_url):
    """Two empty databases of the kind under test."""
    return new_database_url(), new_database_url()


def snapshot(url: str) -> dict:
    database = dbmod.bind(url)
    with database.connection_context():
        return ledger_snapshot()


def progress(url: str) -> tuple[str, int, int]:
    """(stage, givers paid, givers to pay) of the close, read from outside."""
    database = dbmod.bind(url)
    with database.connection_context():
        period = Period.get_or_none(Period.name == PERIOD)
        plan = ClosePlan.select().where((ClosePlan.period == PERIOD) & (ClosePlan.spend > 0))
        return (period.stage if period else "", plan.where(ClosePlan.txn.is_null(False)).count(), plan.count())


def run_killed(config, args, delay: float, url: str | None = None, paid_at_least: int | None = None) -> bool:
    """Start the command and SIGKILL it after `delay` seconds or, given
    `paid_at_least`, as soon as the close (read from outside, in `url`) has
    paid that many givers. True if it was killed before it finished."""
    proc = subprocess.Popen([*CLI, "--config", str(config), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    if paid_at_least is None:
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            pass
    else:
        while proc.poll() is None and progress(url)[1] < paid_at_least:
            time.sleep(0.002)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True
    proc.stderr.read()
    return False


def timed(config, *args) -> float:
    start = time.monotonic()
    cli(config, *args)
    return time.monotonic() - start


def test_close_month_survives_sigkill_at_random_points(tmp_path, two_databases):
    reference, crashed = two_databases
    for url in (reference, crashed):
        seed_month(validate(Config(database=url, secret_key="x" * 32, scheduler=False)), PERIOD, people=PEOPLE)
    ref_config = write_config(tmp_path / "ref.toml", reference, close_batch_size=BATCH)
    crash_config = write_config(tmp_path / "crash.toml", crashed, close_batch_size=BATCH)
    assert snapshot(reference) == snapshot(crashed)  # the same data, before

    startup = timed(ref_config, "check")  # what a command costs before it does anything
    cli(ref_config, "close-month", PERIOD, "--quiet")
    expected = snapshot(reference)
    assert [p[1] for p in expected["periods"] if p[0] == PERIOD] == ["closed"]

    rng = random.Random(20260101)
    kills, early, states = 0, 0, set()
    # A few kills land at a random moment of start-up or the plan; the rest
    # as soon as the close has paid a random few more givers (read from
    # outside), so they land in the apply stage however fast this machine
    # and this database happen to be.
    while kills < KILLS and progress(crashed)[0] != "done":
        _stage, paid, total = progress(crashed)
        if early < KILLS // 4 and rng.random() < 0.3:
            landed = run_killed(crash_config, ["close-month", PERIOD, "--quiet"], rng.uniform(0.3 * startup, 1.5 * startup))
            early += landed
        else:
            target = paid + rng.randint(1, max(1, (total or PEOPLE) // (3 * KILLS)))
            landed = run_killed(crash_config, ["close-month", PERIOD, "--quiet"], 0, url=crashed, paid_at_least=target)
        if landed:
            kills += 1
            states.add(progress(crashed))
    for _ in range(3):  # restart until it completes
        if progress(crashed)[0] == "done":
            break
        cli(crash_config, "close-month", PERIOD, "--quiet")
    assert kills >= KILLS, f"only {kills} kills landed before the close finished: {sorted(states)}; startup {startup:.2f}s"
    mid_apply = {s for s in states if s[0] == "apply" and 0 < s[1] < s[2]}
    assert len(mid_apply) >= 3, f"too few kills landed in the middle of the apply stage: {sorted(states)}"
    assert progress(crashed)[0] == "done"
    assert snapshot(crashed) == expected
    assert "ledger ok" in cli(crash_config, "check").stdout


def test_deposit_confirmation_survives_sigkill(tmp_path, two_databases):
    reference, crashed = two_databases
    ids = {}
    for url in (reference, crashed):
        cfg = validate(Config(database=url, secret_key="x" * 32, scheduler=False))
        seed_month(cfg, PERIOD, people=8, flattrs_per_person=2)
        database = dbmod.bind(url)
        with database.connection_context():
            users = [d.user for d in Deposit.select().order_by(Deposit.id).limit(8)]
            ids[url] = [str(funds.open_deposit(u, 100 + i).id) for i, u in enumerate(users)]
    assert ids[reference] == ids[crashed]
    deposits = ids[reference]
    ref_config = write_config(tmp_path / "ref.toml", reference)
    crash_config = write_config(tmp_path / "crash.toml", crashed)
    startup = timed(ref_config, "check")
    for dep in deposits:
        cli(ref_config, "deposit", "confirm", dep)
    expected = snapshot(reference)

    rng = random.Random(424242)
    kills = 0
    while kills < KILLS:
        dep = rng.choice(deposits)
        kills += run_killed(crash_config, ["deposit", "confirm", dep], rng.uniform(0.5 * startup, 1.3 * startup))
    for dep in deposits:  # the operator runs each confirmation again
        out = cli(crash_config, "deposit", "confirm", dep).stdout
        assert "confirmed deposit" in out or "already confirmed" in out
    assert snapshot(crashed) == expected
    assert "ledger ok" in cli(crash_config, "check").stdout
