"""The close against a reference split computed here, flattr by flattr, with
the pure money module (SPEC R8, R9): every flattr's status, share and fee,
and every close transaction's postings, on a month big enough for many
batches, ties in time, fees, people without money, and a close that crashes
half-way and is run again."""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path

import pytest

from flattr_node import ledger, money
from flattr_node.db import database, is_postgres
from flattr_node.services import closing

BENCH = Path(__file__).resolve().parent.parent / "bench" / "close_month.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("close_month_ref", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(sql, *params):
    return database.execute_sql(sql.replace("?", database.param), params).fetchall()


def reference(period: str, fee_percent: int, requires_giving: bool):
    """What the close must do, from the database before it: per flattr
    (status, share, fee) and per giver the postings {account id: amount}."""
    flattrs = rows("SELECT id, giver_id, owner_id, created_at FROM flattr WHERE period = ?", period)
    givers = {g for _, g, _, _ in flattrs}
    spend = {
        user: min(budget, funds)
        for user, budget, funds in rows(
            "SELECT u.id, u.monthly_budget, a.balance FROM \"user\" u JOIN account a ON a.user_id = u.id AND a.kind = 'funds'"
        )
    }
    revenue = dict(rows("SELECT user_id, id FROM account WHERE kind = 'revenue' AND user_id IS NOT NULL"))
    funds = dict(rows("SELECT user_id, id FROM account WHERE kind = 'funds' AND user_id IS NOT NULL"))
    fees_account = ledger.node_account("fees").id
    by_giver = defaultdict(list)
    expected = {}
    for fid, giver, owner, created_at in flattrs:
        if requires_giving and owner not in givers:
            expected[fid] = ("not_counted", 0, 0)
        else:
            by_giver[giver].append((created_at, fid, owner))
    postings = {}
    for giver, mine in by_giver.items():
        mine.sort()
        shares = money.split_evenly(spend[giver], len(mine))
        if spend[giver] == 0:
            for (_, fid, _), share in zip(mine, shares, strict=True):
                expected[fid] = ("counted", share, 0)
            continue
        entry = defaultdict(int)
        entry[funds[giver]] -= spend[giver]
        for (_, fid, owner), share in zip(mine, shares, strict=True):
            fee = money.fee_of(share, fee_percent)
            expected[fid] = ("counted", share, fee)
            entry[revenue[owner]] += share - fee
            entry[fees_account] += fee
        postings[giver] = {account: amount for account, amount in entry.items() if amount}
    return expected, postings


def actual(period: str):
    flattrs = {fid: (status, share, fee) for fid, status, share, fee in rows(
        "SELECT id, status, share, fee FROM flattr WHERE period = ?", period)}
    postings = defaultdict(dict)
    prefix = f"close:{period}:giver:"
    for key, account, amount in rows(
        "SELECT t.key, x.account_id, x.amount FROM txn t JOIN posting x ON x.txn_id = t.id WHERE t.kind = 'close' AND t.memo = ?",
        period,
    ):
        giver = int(key[len(prefix):])
        assert account not in postings[giver], f"two postings to account {account} in {key}"
        postings[giver][account] = amount
    return flattrs, dict(postings)


@pytest.mark.parametrize(
    "fee_percent, requires_giving, crash_after",
    [(7, True, None), (0, True, None), (10, False, None), (7, True, 3)],
    ids=["fees-R8", "no-fees-R8", "fees-no-R8", "crash-and-rerun"],
)
def test_the_close_pays_exactly_the_reference_split(cfg, db, fee_percent, requires_giving, crash_after):
    bench = load_bench()
    bench.build(300, 61, 7, postgres=is_postgres())
    # Ties in time: every third flattr at its giver's earliest moment, so the
    # id decides who gets a leftover cent among them.
    database.execute_sql(
        "UPDATE flattr SET created_at = (SELECT MIN(f.created_at) FROM flattr f WHERE f.giver_id = flattr.giver_id) "
        "WHERE MOD(id, 3) = 0"
    )
    cfg = cfg.with_(fee_percent=fee_percent, revenue_requires_giving=requires_giving, close_batch_size=23)
    expected_flattrs, expected_postings = reference(bench.PERIOD, fee_percent, requires_giving)
    not_counted = sum(1 for status, _, _ in expected_flattrs.values() if status == "not_counted")
    assert (not_counted > 0) == requires_giving and not_counted < len(expected_flattrs)

    if crash_after is not None:
        batches = 0

        def crash(stage, done, total):
            nonlocal batches
            batches += stage == "apply"
            if batches == crash_after:
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError, match="crash"):
            closing.close_period(cfg, bench.PERIOD, bench.CLOSE_AT, hook=crash)
    closing.close_period(cfg, bench.PERIOD, bench.CLOSE_AT)

    flattrs, postings = actual(bench.PERIOD)
    assert flattrs == expected_flattrs
    assert postings == expected_postings
    assert len(postings) > 10 * 23  # many batches
    assert ledger.check_ledger().ok
