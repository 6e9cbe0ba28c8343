"""The money rules of a month, in one place (SPEC R8, R9).

R8 (giving to receive): a flattr counts only if the owner of the flattred
thing gave at least one flattr in the same period (unless the node turns
`revenue_requires_giving` off).

Held by its host (SPEC §6): a remote flattr (one with an outbox row) counts
only once its host node has it, i.e. its delivery was acknowledged; one the
host refused (the thing was archived there, say) or never received never
counts, whatever the node's settings: the host would refuse a statement line
for it. A local flattr is always held.

R9 (the split): each giver with counting flattrs spends
`min(budget, funds)`; every counting flattr gets `spend // n`, the `spend % n`
earliest (by time, then id) one cent more; the node's fee on a share is
`floor(share * fee_percent / 100)`, the rest goes to the owner.

Each rule is written here twice and nowhere else: as pure Python (what the
dashboard's estimate runs, and what a reader checks the rule against) and as
its SQL rendering (what the month close runs over a whole month at once).
tests/test_rules.py pins the SQL to the Python with Hypothesis on both
engines. Change a rule here, in both halves, and every path follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from . import periods

# --- pure Python --------------------------------------------------------------


def split_evenly(amount: int, n: int) -> list[int]:
    """Split `amount` into `n` shares that add up to it exactly (R9).

    Every share is `amount // n`; the first `amount % n` shares (the earliest
    flattrs, when the caller orders them so) get one more cent.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if amount < 0:
        raise ValueError("amount must not be negative")
    base, extra = divmod(amount, n)
    return [base + 1] * extra + [base] * (n - extra)


def fee_of(share: int, fee_percent: int) -> int:
    """The node's fee on one share: floor(share * fee_percent / 100) (R9)."""
    if not 0 <= fee_percent <= 100:
        raise ValueError("fee_percent must be between 0 and 100")
    return share * fee_percent // 100


def spend_of(budget: int, funds: int) -> int:
    """What a giver with counting flattrs spends (R9): min(budget, funds)."""
    return max(min(budget, funds), 0)


@dataclass(frozen=True)
class MonthFlattr:
    """What the rules need to know of one flattr."""

    id: int
    giver: int
    owner: int
    created_at: dt.datetime
    held: bool = True  # its host has it: always for a local flattr, once delivered for a remote one


@dataclass(frozen=True)
class Outcome:
    """What the rules decide for one flattr."""

    counted: bool
    share: int
    fee: int

    @property
    def status(self) -> str:
        return "counted" if self.counted else "not_counted"


def counts(flattr: MonthFlattr, gave: set[int], requires_giving: bool) -> bool:
    """R8 and held: does `flattr` count, given the people who gave in its period?"""
    return flattr.held and (not requires_giving or flattr.owner in gave)


def split_month(
    flattrs: Iterable[MonthFlattr],
    spend: dict[int, int],
    fee_percent: int,
    requires_giving: bool,
    gave: set[int] | None = None,
) -> dict[int, Outcome]:
    """R8 and R9 over a period's flattrs: each flattr's outcome by id.

    `spend` is each giver's spend (`spend_of`) as the close would take it;
    `gave` is who gave in the period, by default the givers of `flattrs`
    (pass it when `flattrs` are only some of the period's, as the estimate
    of one person does)."""
    flattrs = list(flattrs)
    gave = {f.giver for f in flattrs} if gave is None else gave
    by_giver: dict[int, list[MonthFlattr]] = {}
    out: dict[int, Outcome] = {}
    for f in flattrs:
        if counts(f, gave, requires_giving):
            by_giver.setdefault(f.giver, []).append(f)
        else:
            out[f.id] = Outcome(False, 0, 0)
    for giver, mine in by_giver.items():
        mine.sort(key=lambda f: (f.created_at, f.id))
        for f, share in zip(mine, split_evenly(spend[giver], len(mine)), strict=True):
            out[f.id] = Outcome(True, share, fee_of(share, fee_percent))
    return out


# --- the SQL rendering ----------------------------------------------------------
#
# Over the tables: flattr (period, giver_id, owner_id, created_at, id),
# "user" (monthly_budget), account (balance of kind 'funds') and close_plan,
# one row per giver with counting flattrs: spend, n, and the cut (cut_at,
# cut_id) = (created_at, id) of the giver's (spend % n)-th earliest counting
# flattr, NULL when spend % n = 0.


def period_literal(period: str) -> str:
    """A period name as an SQL literal; only a valid YYYY-MM gets through."""
    if not periods.is_valid(period):
        raise ValueError(f"not a period (YYYY-MM): {period!r}")
    return f"'{period}'"


def gave_sql(period: str) -> str:
    """SQL, R8: the people who gave in `period` (one column, giver_id): who
    flattred here, and the remote owners (proxy people) whose node said they
    gave (peer_gave, stored before the close plans; federation/gave.py).

    The only definition of "gave": the close and the estimate both use it."""
    p = period_literal(period)
    return (
        f"SELECT g.giver_id FROM flattr g WHERE g.period = {p} "
        f"UNION ALL SELECT pg.user_id FROM peer_gave pg WHERE pg.period = {p} AND pg.gave"
    )


def held_sql(f: str) -> str:
    """SQL: flattr `f` is held by its host: local (no outbox row), or its
    delivery acknowledged (federation/delivery.py)."""
    # Not a correlated probe per flattr: the few undelivered rows (index on
    # status) are read once and each flattr is looked up among them.
    return f"{f}.id NOT IN (SELECT o.flattr_id FROM outbox o WHERE o.status <> 'delivered')"


def counts_sql(f: str, period: str, requires_giving: bool) -> str:
    """SQL, R8 and held: a condition true when flattr `f` of `period` counts."""
    if not requires_giving:
        return held_sql(f)
    # EXISTS, not `owner_id IN (...)`: the close also asks NOT (this), and
    # PostgreSQL runs `NOT (x IN (subquery))` as a scan of the whole month per
    # flattr once the month's givers outgrow work_mem (a 1M-flattr close did
    # not end in 15 minutes); an EXISTS is a join or an index probe per flattr.
    return f"EXISTS (SELECT 1 FROM ({gave_sql(period)}) gv WHERE gv.giver_id = {f}.owner_id) AND {held_sql(f)}"


def spend_sql(budget: str, funds: str) -> str:
    """SQL, R9: min(budget, funds), never below 0 (`spend_of`)."""
    least = f"CASE WHEN {budget} < {funds} THEN {budget} ELSE {funds} END"
    return f"CASE WHEN {least} < 0 THEN 0 ELSE {least} END"


def share_sql(f: str, p: str) -> str:
    """SQL, R9: the share of counting flattr `f` from its giver's plan row `p`:
    spend // n, plus one cent if (created_at, id) <= the cut. With no cut
    (spend % n = 0) the comparison is NULL: no extra cent."""
    return f"{p}.spend / {p}.n + CASE WHEN ({f}.created_at, {f}.id) <= ({p}.cut_at, {p}.cut_id) THEN 1 ELSE 0 END"


def fee_sql(share: str, fee_percent: int) -> str:
    """SQL, R9: floor(share * fee_percent / 100); shares are >= 0, so integer
    division is the floor."""
    return "0" if not fee_percent else f"({share}) * {int(fee_percent)} / 100"


def extra_cents_sql(p: str) -> str:
    """SQL, R9: spend % n of plan row `p`, how many shares get a cent more."""
    return f"({p}.spend - {p}.spend / {p}.n * {p}.n)"


def giver_fees_sql(p: str, fee_percent: int) -> str:
    """SQL, R9: the fees of all counting flattrs of plan row `p`: spend % n
    shares of base + 1 and the others of base, each with its fee."""
    base, extra = f"{p}.spend / {p}.n", extra_cents_sql(p)
    return f"{extra} * ({fee_sql(f'{base} + 1', fee_percent)}) + ({p}.n - {extra}) * ({fee_sql(base, fee_percent)})"
