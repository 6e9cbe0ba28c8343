"""The close against a reference split computed here, flattr by flattr, with
the pure money module (SPEC R8, R9): every flattr's status, share and fee,
and every close transaction's postings, on a month big enough for many
batches, ties in time, fees, people without money, and a close that crashes
half-way and is run again."""

from __future__ import annotations

import glob
import os
import tempfile
from collections import defaultdict

import pytest
from conftest import load_close_bench

from flattr_node import closing, ledger, rules
from flattr_node.db import database, is_postgres


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
        shares = rules.split_evenly(spend[giver], len(mine))
        if spend[giver] == 0:
            for (_, fid, _), share in zip(mine, shares, strict=True):
                expected[fid] = ("counted", share, 0)
            continue
        entry = defaultdict(int)
        entry[funds[giver]] -= spend[giver]
        for (_, fid, owner), share in zip(mine, shares, strict=True):
            fee = rules.fee_of(share, fee_percent)
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
    bench = load_close_bench()
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


def sqlite_only():
    if is_postgres():
        pytest.skip("SQLite's batches: PostgreSQL keeps its per-row foreign-key checks")


def scratch_dirs():  # the close of old made scratch files: none may be left
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"flattr-close-{os.getpid()}-*")))


def test_a_close_leaves_foreign_keys_on_and_no_scratch_files(cfg, db):
    sqlite_only()
    bench = load_close_bench()
    bench.build(60, 17, 5, postgres=False)
    before = scratch_dirs()
    closing.close_period(cfg.with_(close_batch_size=7), bench.PERIOD, bench.CLOSE_AT)
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert scratch_dirs() == before
    assert ledger.check_ledger().ok


def test_a_batch_that_would_post_to_a_missing_account_moves_nothing(cfg, db):
    """The batches check the references foreign keys would: a revenue account
    removed after the plan (it had no postings, so nothing stopped it) makes
    the batch that would pay it fail, and nothing of that batch is written."""
    sqlite_only()
    bench = load_close_bench()
    bench.build(60, 17, 5, postgres=False)
    cfg = cfg.with_(close_batch_size=1000)  # one batch
    owner = rows("SELECT f.owner_id FROM flattr f WHERE f.giver_id IN (SELECT owner_id FROM flattr) LIMIT 1")[0][0]
    before = dict(rows("SELECT id, balance FROM account"))

    def remove_account(stage, done, total):
        if stage == "plan":
            database.execute_sql(
                f"DELETE FROM account WHERE user_id = {database.param} AND kind = 'revenue'", (owner,)
            )

    with pytest.raises(RuntimeError, match="missing accounts"):
        closing.close_period(cfg, bench.PERIOD, bench.CLOSE_AT, hook=remove_account)
    assert rows("SELECT COUNT(*) FROM txn WHERE kind = 'close'") == [(0,)]
    assert rows("SELECT COUNT(*) FROM close_plan WHERE txn_id IS NOT NULL") == [(0,)]
    after = dict(rows("SELECT id, balance FROM account"))
    assert all(after[a] == before[a] for a in after)
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert rows("SELECT status FROM period WHERE name = ?", bench.PERIOD) == [("closing",)]


def test_a_batch_that_meets_a_close_key_it_did_not_make_moves_nothing(cfg, db):
    """A batch's transactions are all new or it fails whole: here a
    transaction of another kind already holds the close key of a giver of
    the second batch (written while the first one commits). The second batch
    fails and says why, the first stays, the ledger still checks, and a
    rerun refuses the same way rather than pay that giver twice or never."""
    bench = load_close_bench()
    bench.build(60, 17, 5, postgres=is_postgres())
    cfg = cfg.with_(fee_percent=7, close_batch_size=20)

    def forge(stage, done, total):
        if stage == "apply:before-commit" and done == 20:
            giver = rows("SELECT giver_id FROM close_plan WHERE txn_id IS NULL AND spend > 0 ORDER BY giver_id LIMIT 1 OFFSET 5")[0][0]
            funds = ledger.user_account(giver, "funds").id
            ledger.post(f"close:{bench.PERIOD}:giver:{giver}", "forged", [(funds, -1), (ledger.node_account("fees").id, 1)])

    with pytest.raises(RuntimeError, match="a close transaction the plan does not know of"):
        closing.close_period(cfg, bench.PERIOD, bench.CLOSE_AT, hook=forge)
    assert rows("SELECT COUNT(*) FROM txn WHERE kind = 'close'") == [(20,)]
    assert rows("SELECT COUNT(*) FROM close_plan WHERE txn_id IS NOT NULL") == [(20,)]
    assert ledger.check_ledger().ok
    with pytest.raises(RuntimeError, match="a close transaction the plan does not know of"):
        closing.close_period(cfg, bench.PERIOD, bench.CLOSE_AT)
    assert rows("SELECT COUNT(*) FROM txn WHERE kind = 'close'") == [(20,)]
    assert rows("SELECT status FROM period WHERE name = ?", bench.PERIOD) == [("closing",)]
