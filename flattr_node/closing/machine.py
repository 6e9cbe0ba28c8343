"""The month close as a state machine (SPEC R10): claim, lease, stages, resume.

    open --claim--> closing/plan --plan--> closing/apply --batches--> closed/done

Each arrow is one database transaction (the apply: one per batch of givers)
on both engines; what each stage computes and writes is in `month.py`. A
crash at any instant loses at most the transaction in flight, and a rerun
resumes at the stage the period row says.

Only one runner works at a time: it claims the period row with a lease that
it renews in every transaction. A runner that finds the claim held by a live
process waits for it; a dead runner's claim (same host, process gone, or
lease run out) is taken over. Correctness never depends on the claim: plan
rows are marked paid in the same transaction as the ledger writes, and the
unique transaction keys make a second payment impossible.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from .. import periods
from ..config import Config
from ..db import database, dialect, locked
from ..errors import Validation
from ..models import Period, utcnow
from . import month

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
StepHook = Callable[[str, int, int], None]


class CloseBusy(Exception):
    """Another live runner holds the period; `wait=False` callers get this."""


def new_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _runner_alive(runner: str) -> bool:
    """A runner on this host is alive while its process is; elsewhere, ask the lease."""
    try:
        host, pid, _thread, _tag = runner.rsplit(":", 3)
        pid = int(pid)
        int(_thread)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        # Another thread of this process holds it while that thread runs.
        thread = int(_thread)
        return thread != threading.get_ident() and any(t.ident == thread for t in threading.enumerate())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(name: str, runner: str, now: dt.datetime) -> str:
    """Claim the period; return its status after the claim ('closed' = nothing to do)."""
    with database.atomic():
        Period.insert(name=name).on_conflict_ignore().execute()
        period = locked(Period.select().where(Period.name == name)).get()
        if period.status == "closed":
            return "closed"
        held = period.runner and period.runner != runner
        if held and period.lease_until and period.lease_until > utcnow() and _runner_alive(period.runner):
            raise CloseBusy(f"period {name} is being closed by {period.runner}")
        if held:
            log.warning("period %s: taking over from runner %s", name, period.runner)
        values = {"runner": runner, "lease_until": utcnow() + dt.timedelta(seconds=LEASE_SECONDS)}
        if period.status == "open":
            values.update(status="closing", stage="plan", closing_started_at=now)
            log.info("period %s: closing", name)
        Period.update(**values).where(Period.name == name).execute()
        return "closing"


def _renew(name: str, runner: str) -> None:
    """Inside a stage's transaction: keep the lease, or stop if it was taken."""
    updated = (
        Period.update(lease_until=utcnow() + dt.timedelta(seconds=LEASE_SECONDS))
        .where((Period.name == name) & (Period.runner == runner))
        .execute()
    )
    if not updated:
        raise CloseBusy(f"period {name}: another runner took over")


def _plan_stage(cfg: Config, name: str, runner: str, hook: StepHook | None) -> None:
    """One transaction: the plan (month.plan) and the move to apply."""
    with database.atomic():
        _renew(name, runner)
        totals = month.plan(cfg, name)
        Period.update(stage="apply", **totals).where(Period.name == name).execute()
        if hook:
            hook("plan:before-commit", 0, totals["givers"])
    log.info("period %s: planned %d flattrs (%d counting) of %d paying givers", name, totals["flattrs"], totals["counted"], totals["givers"])
    if hook:
        hook("plan", 0, totals["givers"])


def _apply_stage(cfg: Config, name: str, runner: str, hook: StepHook | None, now: dt.datetime) -> None:
    """One transaction per batch of givers (month.pay_batch) until none is left."""
    done, total = month.progress(name)
    while True:
        with database.atomic():
            _renew(name, runner)
            paid = month.pay_batch(cfg, name, now)
            if not paid:
                break
            done += paid
            if hook:
                hook("apply:before-commit", done, total)
        if hook:
            hook("apply", done, total)


def _finish(name: str, runner: str, now: dt.datetime) -> None:
    with database.atomic():
        _renew(name, runner)
        Period.update(status="closed", stage="done", closed_at=now, runner=None, lease_until=None).where(
            Period.name == name
        ).execute()
    period = Period.get_by_id(name)
    log.info(
        "period %s: closed: %d givers, %d flattrs, %d counted, %d distributed, %d fees",
        name, period.givers, period.flattrs, period.counted, period.distributed, period.fees,
    )


def _close_one(cfg: Config, name: str, now: dt.datetime, runner: str, hook: StepHook | None, wait: bool) -> None:
    while True:
        try:
            if _claim(name, runner, now) == "closed":
                return
            break
        except CloseBusy:
            if not wait:
                raise
            time.sleep(0.2)
    try:
        with dialect().bulk_session():
            stage = Period.select(Period.stage).where(Period.name == name).scalar()
            if stage == "plan":
                _plan_stage(cfg, name, runner, hook)
                stage = "apply"
            if stage == "apply":
                _apply_stage(cfg, name, runner, hook, now)
            _finish(name, runner, now)
    except BaseException:
        _release(name, runner)
        raise


def _release(name: str, runner: str) -> None:
    """After an error: let the next runner resume at once. (After a crash the
    claim stays, and the next runner finds its owner dead or its lease out.)"""
    try:
        if database.in_transaction():
            return
        with database.atomic():
            Period.update(runner=None, lease_until=None).where((Period.name == name) & (Period.runner == runner)).execute()
    except Exception:  # the database itself may be what failed
        log.warning("period %s: could not release the claim of %s", name, runner, exc_info=True)


def close_period(
    cfg: Config,
    name: str,
    now: dt.datetime | None = None,
    *,
    hook: StepHook | None = None,
    wait: bool = True,
) -> Period:
    """Close `name` and every earlier period still open, in order.

    Earlier periods go first because a giver's spend depends on the funds
    the previous close left. `hook(stage, done, total)` is told of progress.
    """
    now = now or utcnow()
    if not periods.is_valid(name):
        raise Validation(f"not a period (YYYY-MM): {name!r}", field="period")
    if not periods.has_ended(name, now, cfg.tz):
        raise Validation(f"period {name} has not ended yet: it ends at {periods.iso(periods.end_utc(name, cfg.tz), cfg.tz)}")
    runner = new_runner_id()
    pending = [
        p
        for (p,) in Period.select(Period.name).where((Period.status != "closed") & (Period.name < name)).order_by(Period.name).tuples()
    ]
    for earlier in [*pending, name]:
        _close_one(cfg, earlier, now, runner, hook, wait)
    return Period.get_by_id(name)


def close_due_periods(cfg: Config, now: dt.datetime | None = None) -> list[str]:
    """What the scheduler runs: close every ended period that is not closed.

    A node that was down on the 1st catches up; a period another process is
    closing is left to it.
    """
    now = now or utcnow()
    last = periods.last_ended(now, cfg.tz)
    if _existed_in(cfg, last):  # a fresh node closes no month from before it existed
        Period.insert(name=last).on_conflict_ignore().execute()
    due = [p for (p,) in Period.select(Period.name).where((Period.status != "closed") & (Period.name <= last)).order_by(Period.name).tuples()]
    closed = []
    for name in due:
        try:
            close_period(cfg, name, now, wait=False)
            closed.append(name)
        except CloseBusy as e:
            log.info("%s; leaving it to that runner", e)
            break
    return closed


def _existed_in(cfg: Config, name: str) -> bool:
    """Whether the node was there in period `name`: its schema was made before
    the period ended, or it holds an earlier period."""
    from ..schema import SchemaVersion

    born = SchemaVersion.select(SchemaVersion.applied_at).order_by(SchemaVersion.applied_at).first()
    if born is not None and born.applied_at < periods.end_utc(name, cfg.tz):
        return True
    return Period.select().where(Period.name < name).exists()
