"""What the dashboard shows about money: this month's flattrs as the close
would pay them today (R8, R9), past months, and the data of the 12-month chart.

The projection runs the rules the close runs (rules.py: R8 giving to
receive, R9 the split and the fee) over the person's flattrs, with who gave
read from the period. tests/test_web_reports.py closes the month afterwards
and checks the close paid exactly this.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import JOIN, fn

from .. import ledger, periods, rules
from ..config import Config
from ..db import execute
from ..models import Flattr, Period, Thing, User, utcnow


@dataclass
class ProjectedFlattr:
    flattr: Flattr
    thing: Thing
    owner: User
    counted: bool
    share: int  # what the flattr takes from the giver's spend
    fee: int
    reason: str  # why it is not counted (empty when it is)

    @property
    def to_owner(self) -> int:
        return self.share - self.fee


@dataclass
class Projection:
    period: str
    funds: int
    budget: int
    spend: int  # what the close would take from the funds today
    flattrs: list[ProjectedFlattr]

    @property
    def counted(self) -> int:
        return sum(1 for f in self.flattrs if f.counted)


def projection(cfg: Config, user: User, now: dt.datetime | None = None) -> Projection:
    """Each of this period's flattrs by `user`, with what it is worth if the
    period closed now, or why it does not count."""
    now = now or utcnow()
    period = periods.name_of(now, cfg.tz)
    user = User.get_by_id(user.id)  # the budget in force now
    Owner = User.alias()
    rows = list(
        Flattr.select(Flattr, Thing, Owner)
        .join(Thing)
        .switch(Flattr)
        .join(Owner, on=(Flattr.owner == Owner.id))
        .where((Flattr.giver == user.id) & (Flattr.period == period))
        .order_by(Flattr.created_at, Flattr.id)
    )
    owner_ids = {f.owner_id for f in rows}
    gave = set()
    if cfg.revenue_requires_giving and owner_ids:
        owners = ", ".join(str(int(o)) for o in owner_ids)
        gave = {g for (g,) in execute(f"SELECT x.giver_id FROM ({rules.gave_sql(period)}) x WHERE x.giver_id IN ({owners})")}
    funds = ledger.balance(user.id, "funds")
    # Remote flattrs (SPEC §6): one its host refused never counts; one on
    # its way is taken to arrive before the close (the close delivers first).
    from ..federation import delivery

    deliveries = delivery.states(f.id for f in rows if "@" in f.owner.username)
    refused = {i for i, (status, _) in deliveries.items() if status == "refused"}
    mine = [rules.MonthFlattr(f.id, f.giver_id, f.owner_id, f.created_at, held=f.id not in refused) for f in rows]
    outcome = rules.split_month(mine, {user.id: rules.spend_of(user.monthly_budget, funds)}, cfg.fee_percent,
                                cfg.revenue_requires_giving, gave)
    spend = sum(o.share for o in outcome.values())
    out = []
    for f in rows:
        owner = f.owner
        o = outcome[f.id]
        if o.counted:
            out.append(ProjectedFlattr(f, f.thing, owner, True, o.share, o.fee, ""))
        elif f.id in refused:
            status, error = deliveries[f.id]
            reason = delivery.not_held_reason(status, error, owner.username.split("@", 1)[1])
            out.append(ProjectedFlattr(f, f.thing, owner, False, 0, 0, reason))
        else:
            name = owner.display_name or owner.username
            reason = (
                f"{name} has not flattred anything in {period} yet: a flattr counts only when the "
                "owner gives too (giving to receive). It will count if they flattr something before the month ends."
            )
            out.append(ProjectedFlattr(f, f.thing, owner, False, 0, 0, reason))
    return Projection(period=period, funds=funds, budget=user.monthly_budget, spend=spend, flattrs=out)


@dataclass
class MonthTotals:
    period: str
    status: str  # open | closing | closed, or "" for a past month nobody flattred in
    given: int  # what the person's funds paid (shares, fees included)
    received: int  # what reached the person's revenue (shares less fees)
    flattrs_given: int
    flattrs_received: int


def months(cfg: Config, user: User, count: int = 12, now: dt.datetime | None = None) -> list[MonthTotals]:
    """The last `count` periods up to the current one, oldest first, from
    the person's first month on the node."""
    now = now or utcnow()
    current = periods.name_of(now, cfg.tz)
    names = [periods.shift(current, -i) for i in range(count - 1, -1, -1)]
    status = dict(Period.select(Period.name, Period.status).where(Period.name.in_(names)).tuples())
    given = {
        p: (n, s)
        for p, n, s in Flattr.select(Flattr.period, fn.COUNT(Flattr.id), fn.COALESCE(fn.SUM(Flattr.share), 0))
        .where((Flattr.giver == user.id) & Flattr.period.in_(names))
        .group_by(Flattr.period)
        .tuples()
    }
    received = {
        p: (n, s)
        for p, n, s in Flattr.select(
            Flattr.period, fn.COUNT(Flattr.id), fn.COALESCE(fn.SUM(Flattr.share - Flattr.fee), 0)
        )
        .where((Flattr.owner == user.id) & Flattr.period.in_(names))
        .group_by(Flattr.period)
        .tuples()
    }
    # From the month they joined (or their first flattr, given or received, if earlier): no empty months before.
    first = min([periods.name_of(user.created_at, cfg.tz), *given, *received])
    out = []
    for name in (n for n in names if n >= first):
        state = status.get(name) or ("open" if name == current or name in given or name in received else "")
        closed = state == "closed"
        gn, gs = given.get(name, (0, 0))
        rn, rs = received.get(name, (0, 0))
        out.append(MonthTotals(name, state, int(gs) if closed else 0, int(rs) if closed else 0, gn, rn))
    return out


@dataclass
class ThingTotals:
    thing: Thing
    flattrs: int
    amount: int


def received_per_thing(user: User, period: str) -> list[ThingTotals]:
    """What each of the person's things received in a period (0 until it is closed)."""
    rows = (
        Thing.select(Thing, fn.COUNT(Flattr.id).alias("n"), fn.COALESCE(fn.SUM(Flattr.share - Flattr.fee), 0).alias("amount"))
        .join(Flattr, JOIN.INNER, on=(Flattr.thing == Thing.id))
        .where((Flattr.owner == user.id) & (Flattr.period == period))
        .group_by(Thing)
        .order_by(fn.COUNT(Flattr.id).desc(), Thing.id)
    )
    return [ThingTotals(t, t.n, int(t.amount)) for t in rows]


def given_in(user: User, period: str) -> list[Flattr]:
    """The person's flattrs of a period with their share once it is closed."""
    return list(
        Flattr.select(Flattr, Thing)
        .join(Thing)
        .where((Flattr.giver == user.id) & (Flattr.period == period))
        .order_by(Flattr.created_at, Flattr.id)
    )
