"""The scheduler (schedules/): a tick closes every ended period (catch-up),
opens top-ups, records a ledger check and shouts when the ledger is broken;
the jobs are registered coalescing, without a misfire limit, in the node's
timezone."""

from __future__ import annotations

import datetime as dt
import logging

from conftest import at

from flattr_node import ledger, periods
from flattr_node.db import database
from flattr_node.models import CheckRun, Deposit, Flattr, Period, User, utcnow
from flattr_node.services import flattring, things
from schedules import run_tick, start_scheduler


def test_a_tick_catches_up_on_every_ended_period(cfg, make_user):
    """A node that was down for months closes each of them, oldest first."""
    now = utcnow()
    current = periods.name_of(now, cfg.tz)
    two_ago, one_ago = periods.shift(current, -2), periods.shift(current, -1)
    kim = make_user("kim", 400, budget=200)
    ann = make_user("ann", 400, budget=200)
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    for month in (two_ago, one_ago):
        flattring.flattr_thing(cfg, kim, anns.id, at(month, 3))
        flattring.flattr_thing(cfg, ann, kims.id, at(month, 4))
    this_month = flattring.flattr_thing(cfg, kim, anns.id, now)

    result = run_tick(cfg)

    assert result["closed"] == [two_ago, one_ago]
    assert dict(Period.select(Period.name, Period.status).tuples()) == {two_ago: "closed", one_ago: "closed", current: "open"}
    # Each month's budget went to the other: 2 x 200 each way.
    assert ledger.balance(kim.id, "revenue") == 400 and ledger.balance(ann.id, "revenue") == 400
    assert ledger.balance(kim.id, "funds") == 0
    assert Flattr.get_by_id(this_month.id).status == "pending"  # the open month is untouched
    assert result["check_ok"] is True
    # Again: nothing left to do, nothing paid twice.
    again = run_tick(cfg)
    assert again["closed"] == [] and again["topups"] == 0
    assert ledger.balance(kim.id, "revenue") == 400
    assert ledger.check_ledger().ok


def test_a_tick_opens_top_ups_once(cfg, make_user):
    kim = make_user("kim")
    User.update(monthly_topup=500, topup_set_at=dt.datetime(2020, 1, 1)).where(User.id == kim.id).execute()
    first = run_tick(cfg)
    assert first["topups"] == 1
    assert run_tick(cfg)["topups"] == 0
    deposit = Deposit.get()
    assert (deposit.user_id, deposit.amount, deposit.status) == (kim.id, 500, "pending")
    assert deposit.topup_period == periods.name_of(utcnow(), cfg.tz)


def test_a_tick_records_its_ledger_check(cfg, make_user):
    make_user("kim", 300)
    run_tick(cfg)
    runs = list(CheckRun.select())
    assert len(runs) == 1 and runs[0].ok is True and runs[0].problems == ""


def test_a_broken_ledger_is_logged_critical(cfg, make_user, caplog):
    kim = make_user("kim", 300)
    with database.atomic():
        database.execute_sql(f"UPDATE account SET balance = 5 WHERE code = 'user:{kim.id}:funds'")
    with caplog.at_level(logging.INFO, logger="flattr_node.schedules"):
        result = run_tick(cfg)
    assert result["check_ok"] is False
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical, caplog.text
    assert any(f"user:{kim.id}:funds stores 5" in r.getMessage() for r in critical)
    run = CheckRun.select().order_by(CheckRun.id.desc()).get()
    assert run.ok is False and f"user:{kim.id}:funds" in run.problems


def test_the_scheduler_registers_its_jobs_safely(cfg, db):
    berlin = cfg.with_(timezone="Europe/Berlin", tick_minutes=7)
    scheduler = start_scheduler(berlin)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert "tick" in jobs and "month-start" in jobs
        for job in jobs.values():  # every job, so a new one cannot forget
            assert job.coalesce is True, job.id
            assert job.misfire_grace_time is None, job.id
            assert job.max_instances == 1, job.id
            assert str(job.trigger.timezone) == "Europe/Berlin", job.id
        for name in ("tick", "month-start"):
            assert jobs[name].func is run_tick and jobs[name].args == (berlin,), name
        assert str(scheduler.timezone) == "Europe/Berlin"
        assert jobs["tick"].trigger.interval == dt.timedelta(minutes=7)
        # The month-start job fires just after midnight on the 1st, Berlin time.
        fire = jobs["month-start"].trigger.get_next_fire_time(None, dt.datetime(2026, 10, 15, tzinfo=dt.UTC))
        assert (fire.month, fire.day, fire.hour, fire.minute) == (11, 1, 0, 0)
        assert fire.utcoffset() == dt.timedelta(hours=1)
    finally:
        scheduler.shutdown(wait=True)
    assert not scheduler.running
