"""The month close (SPEC R8, R9, R10).

* machine.py: the state machine (claim, lease, stages, resume): *when* and
  in which transactions;
* month.py: the set-based plan and payment: *what* is written, the same SQL
  on both engines, with the rules from rules.py.
"""

from __future__ import annotations

import datetime as dt

from .. import periods
from ..config import Config
from ..errors import Validation
from ..models import Flattr, Period, utcnow
from .machine import CloseBusy, StepHook, close_due_periods, close_period, new_runner_id

__all__ = ["CloseBusy", "StepHook", "close_due_periods", "close_period", "new_runner_id", "period_summary"]


def period_summary(cfg: Config, name: str, now: dt.datetime | None = None) -> dict:
    if not periods.is_valid(name):
        raise Validation(f"not a period (YYYY-MM): {name!r}", field="period")
    period = Period.get_or_none(Period.name == name)
    if period is None:
        period = Period(name=name)
    if period.status == "open":
        givers = Flattr.select(Flattr.giver).where(Flattr.period == name).distinct().count()
        flattrs = Flattr.select().where(Flattr.period == name).count()
        counted = None
    else:
        givers, flattrs, counted = period.givers, period.flattrs, period.counted
    return {
        "period": name,
        "status": period.status,
        "stage": period.stage or None,
        "ended": periods.has_ended(name, now or utcnow(), cfg.tz),
        "closed_at": periods.iso(period.closed_at, cfg.tz),
        "givers": givers,
        "flattrs": flattrs,
        "counted": counted,
        "distributed": period.distributed,
        "fees": period.fees,
        "currency": cfg.currency,
    }
