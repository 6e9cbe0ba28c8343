"""What the month close computes and writes: set-based SQL, the same on
SQLite and PostgreSQL. The rules themselves (R8, R9) are in rules.py; this
module only says over which rows they run and where the money goes.

* `plan`: one row per giver with counting flattrs in close_plan (spend, n
  and the cut that names who gets the extra cents), then every flattr's
  status, share and fee. After it the plan is frozen: nothing it is made of
  changes while the period is closing.
* `pay_batch`: the next batch of unpaid givers, one ledger transaction each
  (key `close:P:giver:G`): their funds pay the spend, each payee account gets
  the shares less the fees, the node's fee account the fees. The shares are
  derived from the plan rows (rules.share_sql), read off the flattr index in
  giver order; the plan rows are marked paid in the same transaction.

Two definitions a federated close extends, each written once here:
* who *gave* in the period (R8): rules.gave_sql;
* the *payee account* of a flattr, the ledger account its share less the
  fee is paid to: `_PAYEE` (today the thing owner's revenue account).
"""

from __future__ import annotations

import datetime as dt

from .. import rules
from ..config import Config
from ..db import dialect, execute
from ..ledger import STAGED_TXNS, node_account, post_many

# The payee account of flattr `f`: its owner's revenue account. A LEFT JOIN
# (alias `payee`): a missing account is a NULL, which post_many refuses.
_PAYEE = "LEFT JOIN account payee ON payee.user_id = f.owner_id AND payee.kind = 'revenue'"


def plan(cfg: Config, name: str) -> dict:
    """The plan stage (inside the caller's transaction); returns the
    period's totals: givers, flattrs, counted, distributed, fees."""
    period = rules.period_literal(name)
    counts = rules.counts_sql("f", name, cfg.revenue_requires_giving)
    execute(f"DELETE FROM close_plan WHERE period = {period}")
    # R9: n and spend of each giver with counting flattrs.
    execute(
        f"INSERT INTO close_plan (period, giver_id, spend, n) "
        f"SELECT {period}, c.giver_id, {rules.spend_sql('u.monthly_budget', 'a.balance')}, c.n "
        f"FROM (SELECT f.giver_id, COUNT(*) AS n FROM flattr f WHERE f.period = {period} AND {counts} GROUP BY f.giver_id) c "
        'JOIN "user" u ON u.id = c.giver_id '
        "JOIN account a ON a.user_id = c.giver_id AND a.kind = 'funds'"
    )
    dialect().analyze("close_plan")
    # The cut of each giver with r = spend % n > 0: (created_at, id) of
    # their r-th earliest counting flattr, a seek into the (period,
    # giver_id, created_at, id, owner_id) index and r - 1 steps. SQLite takes
    # no column in OFFSET, so one statement per value of r (a handful).
    extra = rules.extra_cents_sql("close_plan")
    rs = [r for (r,) in execute(f"SELECT DISTINCT {extra} FROM close_plan WHERE period = {period}").fetchall() if r > 0]
    for r in rs:
        execute(
            "UPDATE close_plan SET (cut_at, cut_id) = ("
            f"  SELECT f.created_at, f.id FROM flattr f WHERE f.period = close_plan.period AND f.giver_id = close_plan.giver_id "
            f"  AND {counts} ORDER BY f.created_at, f.id LIMIT 1 OFFSET {int(r) - 1}"
            f") WHERE period = {period} AND {extra} = {int(r)}"
        )
    # Every flattr's status, share and fee, for the pages and the API.
    share = rules.share_sql("flattr", "p")
    counted = execute(
        f"UPDATE flattr SET status = 'counted', share = {share}, fee = {rules.fee_sql(share, cfg.fee_percent)} "
        f"FROM close_plan p WHERE p.period = {period} AND p.giver_id = flattr.giver_id AND flattr.period = {period} "
        f"AND {rules.counts_sql('flattr', name, cfg.revenue_requires_giving)}"
    ).rowcount
    # The others do not count (R8, or not held by their host).
    counts_not = f"NOT ({rules.counts_sql('flattr', name, cfg.revenue_requires_giving)})"
    not_counted = execute(
        f"UPDATE flattr SET status = 'not_counted', share = 0, fee = 0 WHERE period = {period} AND {counts_not}"
    ).rowcount
    givers, n, spend, fees = execute(
        f"SELECT COALESCE(SUM(CASE WHEN p.spend > 0 THEN 1 ELSE 0 END), 0), COALESCE(SUM(p.n), 0), COALESCE(SUM(p.spend), 0), "
        f"COALESCE(SUM({rules.giver_fees_sql('p', cfg.fee_percent)}), 0) FROM close_plan p WHERE p.period = {period}"
    ).fetchone()
    if counted != n:
        raise RuntimeError(f"period {name}: {counted} flattrs counted, but the plan counts {n}")
    return {"givers": givers, "flattrs": counted + not_counted, "counted": counted, "distributed": spend - fees, "fees": fees}


def progress(name: str) -> tuple[int, int]:
    """(givers paid, givers to pay) of the period's plan."""
    done, total = execute(
        "SELECT COALESCE(SUM(CASE WHEN txn_id IS NULL THEN 0 ELSE 1 END), 0), COUNT(*) FROM close_plan "
        f"WHERE period = {rules.period_literal(name)} AND spend > 0"
    ).fetchone()
    return done, total


def pay_batch(cfg: Config, name: str, now: dt.datetime) -> int:
    """Pay the next `close_batch_size` unpaid givers (inside the caller's
    transaction); return how many were paid, 0 when none is left."""
    period = rules.period_literal(name)
    lo, hi, count = execute(
        "SELECT MIN(giver_id), MAX(giver_id), COUNT(*) FROM (SELECT giver_id FROM close_plan "
        f"WHERE period = {period} AND spend > 0 AND txn_id IS NULL ORDER BY giver_id LIMIT {int(cfg.close_batch_size)}) b"
    ).fetchone()
    if not count:
        return 0
    batch = f"p.period = {period} AND p.giver_id BETWEEN {int(lo)} AND {int(hi)} AND p.spend > 0 AND p.txn_id IS NULL"
    share = rules.share_sql("f", "p")
    fee = rules.fee_sql(share, cfg.fee_percent)
    moves = [
        # The giver's funds pay the whole spend ...
        "SELECT p.giver_id AS ref, a.id AS account_id, -p.spend AS amount FROM close_plan p "
        f"LEFT JOIN account a ON a.user_id = p.giver_id AND a.kind = 'funds' WHERE {batch}",
        # ... each flattr's payee account its share less the fee ...
        # (The batch's flattrs read once in index order, each giver's plan row
        # probed by key: CROSS JOIN keeps that order on SQLite, which would
        # otherwise rescan the batch's range for every giver.)
        f"SELECT p.giver_id, payee.id, {share} - ({fee}) FROM flattr f CROSS JOIN close_plan p {_PAYEE} "
        f"WHERE f.period = {period} AND f.giver_id BETWEEN {int(lo)} AND {int(hi)} "
        f"AND p.period = f.period AND p.giver_id = f.giver_id AND {batch} "
        f"AND {rules.counts_sql('f', name, cfg.revenue_requires_giving)}",
    ]
    if cfg.fee_percent:
        # ... and the node's fee account the fees.
        fees = rules.giver_fees_sql("p", cfg.fee_percent)
        moves.append(f"SELECT p.giver_id, {int(node_account('fees').id)}, {fees} FROM close_plan p WHERE {batch}")
    made = post_many(
        "close",
        name,
        f"SELECT p.giver_id, 'close:' || p.period || ':giver:' || CAST(p.giver_id AS VARCHAR(20)) FROM close_plan p WHERE {batch}",
        " UNION ALL ".join(moves),
        now=now,
    )
    marked = execute(
        f"UPDATE close_plan SET txn_id = (SELECT s.txn_id FROM {STAGED_TXNS} s WHERE s.ref = close_plan.giver_id) "
        f"WHERE period = {period} AND giver_id IN (SELECT ref FROM {STAGED_TXNS})"
    ).rowcount
    if not made == marked == count:
        raise RuntimeError(
            f"period {name}: the batch of givers {lo}..{hi} made {made} transactions for {count} unpaid plan rows "
            "(a close transaction the plan does not know of?)"
        )
    return count
