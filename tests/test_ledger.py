"""The double-entry ledger (SPEC R1, R2, R12): idempotent posting, append-only
tables, CHECK constraints, and `check_ledger` catching every kind of tampering."""

from __future__ import annotations

import pytest
from peewee import DatabaseError, IntegrityError

from flattr_node import ledger
from flattr_node.db import database
from flattr_node.models import Account, Deposit, Flattr, Payout, Posting, Thing, Txn
from flattr_node.services import funds, things


def problems():
    return ledger.check_ledger().problems


def balances():
    return dict(Account.select(Account.code, Account.balance).tuples())


def test_a_fresh_node_has_its_accounts_and_a_clean_ledger(db):
    assert set(balances()) == {"node:external", "node:fees", "node:payouts"}
    assert ledger.check_ledger().ok


def test_a_person_has_funds_and_revenue_accounts(make_user):
    kim = make_user("kim")
    assert balances()[f"user:{kim.id}:funds"] == 0
    assert balances()[f"user:{kim.id}:revenue"] == 0


def test_post_moves_money_and_keeps_the_books_balanced(make_user):
    kim = make_user("kim")
    ext, kf = ledger.node_account("external").id, ledger.user_account(kim.id, "funds").id
    with database.atomic():
        txn, created = ledger.post("test:1", "deposit", [(ext, -500), (kf, 500)])
    assert created
    assert sorted(Posting.select(Posting.amount).where(Posting.txn == txn).tuples()) == [(-500,), (500,)]
    assert ledger.balance(kim.id, "funds") == 500
    assert balances()["node:external"] == -500
    # The check also compares with confirmed deposits: this was no deposit.
    assert any("money created or destroyed" in p for p in problems())


def test_post_with_a_used_key_returns_the_first_transaction_and_moves_nothing(make_user):
    kim = make_user("kim", 300)
    kf, kr = ledger.user_account(kim.id, "funds").id, ledger.user_account(kim.id, "revenue").id
    with database.atomic():
        first, created = ledger.post("move:1", "test", [(kf, -100), (kr, 100)])
    with database.atomic():
        again, created_again = ledger.post("move:1", "test", [(kf, -100), (kr, 100)])
    assert created and not created_again
    assert again.id == first.id
    assert ledger.balance(kim.id, "funds") == 200
    assert ledger.balance(kim.id, "revenue") == 100
    assert Txn.select().where(Txn.key == "move:1").count() == 1
    assert ledger.check_ledger().ok


def test_moves_to_one_account_are_merged(make_user):
    kim = make_user("kim", 300)
    kf, kr = ledger.user_account(kim.id, "funds").id, ledger.user_account(kim.id, "revenue").id
    with database.atomic():
        txn, _ = ledger.post("merge:1", "test", [(kf, -100), (kr, 60), (kr, 40)])
    assert Posting.select().where(Posting.txn == txn).count() == 2
    assert ledger.check_ledger().ok


@pytest.mark.parametrize("moves", [[(1, 5)], [(1, -5), (2, 4)], [], [(1, 5), (1, -5)]])
def test_post_refuses_moves_that_do_not_sum_to_zero_or_move_nothing(db, moves):
    before = balances()
    with pytest.raises(ValueError), database.atomic():
        ledger.post("bad:1", "test", moves)
    assert not Txn.select().where(Txn.key == "bad:1").exists()
    assert balances() == before


# --- the database refuses what the code must never do ----------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE txn SET memo = 'changed'",
        "DELETE FROM txn",
        "UPDATE posting SET amount = amount * 2",
        "DELETE FROM posting",
    ],
)
def test_the_ledger_tables_are_append_only(make_user, sql):
    make_user("kim", 500)
    before = (list(Txn.select().tuples()), list(Posting.select().tuples()))
    with pytest.raises(DatabaseError, match="append-only"), database.atomic():
        database.execute_sql(sql)
    assert (list(Txn.select().tuples()), list(Posting.select().tuples())) == before
    assert ledger.check_ledger().ok


def test_a_user_account_cannot_go_negative(make_user):
    kim = make_user("kim", 100)
    with pytest.raises(IntegrityError), database.atomic():
        Account.update(balance=-1).where(Account.code == f"user:{kim.id}:funds").execute()
    with pytest.raises(IntegrityError), database.atomic():
        Account.update(balance=-1).where(Account.code == "node:fees").execute()
    # The outside world is the one account that may be negative.
    assert balances()["node:external"] == -100


def test_post_that_would_overdraw_a_person_is_refused_whole(make_user):
    kim = make_user("kim", 100)
    kf, kr = ledger.user_account(kim.id, "funds").id, ledger.user_account(kim.id, "revenue").id
    with pytest.raises(IntegrityError), database.atomic():
        ledger.post("overdraw:1", "test", [(kf, -101), (kr, 101)])
    assert not Txn.select().where(Txn.key == "overdraw:1").exists()
    assert ledger.balance(kim.id, "funds") == 100
    assert ledger.check_ledger().ok


def test_a_posting_of_zero_is_refused(make_user):
    kim = make_user("kim", 100)
    txn = Txn.get()
    with pytest.raises(IntegrityError), database.atomic():
        Posting.insert(txn=txn, account=ledger.user_account(kim.id, "funds"), amount=0).execute()


def test_self_flattr_and_duplicate_flattr_are_refused_by_the_schema(make_user):
    kim = make_user("kim", 300)
    ann = make_user("ann", 300)
    thing = things.register_thing(ann, {"url": "https://ann.example/post", "title": "post"})
    own = things.register_thing(kim, {"url": "https://kim.example/post", "title": "mine"})
    with pytest.raises(IntegrityError), database.atomic():
        Flattr.insert(giver=kim, thing=own, owner=kim, period="2026-10").execute()
    Flattr.insert(giver=kim, thing=thing, owner=ann, period="2026-10").execute()
    with pytest.raises(IntegrityError), database.atomic():
        Flattr.insert(giver=kim, thing=thing, owner=ann, period="2026-10").execute()
    # Another period is another flattr.
    Flattr.insert(giver=kim, thing=thing, owner=ann, period="2026-11").execute()
    assert Flattr.select().count() == 2
    assert Thing.select().count() == 2


def test_deposit_and_payout_amounts_must_be_positive(make_user):
    kim = make_user("kim")
    with pytest.raises(IntegrityError), database.atomic():
        Deposit.insert(user=kim, amount=0, reference="FN-ZERO-0000").execute()
    with pytest.raises(IntegrityError), database.atomic():
        Payout.insert(user=kim, amount=-5).execute()


# --- check_ledger finds tampering ------------------------------------------


def test_check_finds_a_changed_cached_balance(make_user):
    kim = make_user("kim", 200)
    database.execute_sql(
        f"UPDATE account SET balance = 999 WHERE code = 'user:{kim.id}:funds'"
    )
    found = problems()
    assert any(f"user:{kim.id}:funds stores 999 but its postings sum to 200" in p for p in found), found
    assert any("sum to 799, not 0" in p for p in found), found


def test_check_finds_an_unbalanced_transaction(make_user):
    kim = make_user("kim", 200)
    fid = ledger.user_account(kim.id, "funds").id
    with database.atomic():
        txn = Txn.create(key="forged:1", kind="forged")
        Posting.insert(txn=txn, account=fid, amount=50).execute()
    found = problems()
    assert any("transaction forged:1 sums to 50 over 1 postings" in p for p in found), found
    assert any(f"user:{kim.id}:funds stores 200 but its postings sum to 250" in p for p in found), found


def test_check_finds_a_posting_to_an_account_that_does_not_exist(make_user):
    """SQLite's month close checks its references per batch rather than per
    row; `check` reads them back. (PostgreSQL refuses such a posting outright.)"""
    from flattr_node.db import is_postgres

    if is_postgres():
        pytest.skip("PostgreSQL's foreign keys refuse the forged posting itself")
    kim = make_user("kim", 200)
    fid = ledger.user_account(kim.id, "funds").id
    database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        with database.atomic():
            txn = Txn.create(key="forged:2", kind="forged")
            Posting.insert(txn=txn, account=fid, amount=-5).execute()
            Posting.insert(txn=txn, account=987654, amount=5).execute()
    finally:
        database.execute_sql("PRAGMA foreign_keys = ON")
    assert any("posting row" in p and "refers to a missing account row" in p for p in problems()), problems()


def test_check_finds_a_transaction_without_postings(db):
    Txn.create(key="empty:1", kind="forged")
    assert any("transaction empty:1 sums to 0 over 0 postings" in p for p in problems())


def test_check_finds_money_created_from_nothing(make_user):
    """A deposit marked confirmed by hand: no money came from outside."""
    kim = make_user("kim", 200)
    dep = funds.open_deposit(kim, 300)
    database.execute_sql(f"UPDATE deposit SET status = 'confirmed' WHERE id = {dep.id}")
    found = problems()
    assert any("money created or destroyed" in p for p in found), found
    assert any(f"deposit {dep.id} is confirmed but its transaction says otherwise" in p for p in found), found


def test_check_finds_payouts_held_that_do_not_match(cfg, make_user):
    kim = make_user("kim", 200)
    kr = ledger.user_account(kim.id, "revenue").id
    ext_before = balances()["node:external"]
    with database.atomic():  # give kim revenue as if a close had paid her
        ledger.post("gift:1", "test", [(ledger.user_account(kim.id, "funds").id, -200), (kr, 200)])
    payout = funds.request_payout(cfg.with_(min_payout=100), kim, 150)
    assert ledger.check_ledger().ok
    database.execute_sql(f"UPDATE payout SET status = 'paid' WHERE id = {payout.id}")
    found = problems()
    assert any("pending payouts hold 150 but requested payouts add up to 0" in p for p in found), found
    assert any("money created or destroyed" in p for p in found), found
    assert balances()["node:external"] == ext_before  # the forgery moved no money


def test_check_is_clean_after_every_kind_of_movement(cfg, make_user):
    """R12 after a deposit, a revenue move, a payout request, paid and failed."""
    kim = make_user("kim", 5000)
    assert ledger.check_ledger().ok
    kf, kr = ledger.user_account(kim.id, "funds").id, ledger.user_account(kim.id, "revenue").id
    with database.atomic():
        ledger.post("as-if-closed", "test", [(kf, -4000), (kr, 4000)])
    assert ledger.check_ledger().ok
    funds.revenue_to_funds(cfg, kim, 500, "k1")
    assert ledger.check_ledger().ok
    p1 = funds.request_payout(cfg, kim, 1000)
    p2 = funds.request_payout(cfg, kim, 1500)
    assert ledger.check_ledger().ok
    funds.mark_paid(p1.id)
    assert ledger.check_ledger().ok
    funds.mark_failed(p2.id)
    assert ledger.check_ledger().ok
    total = sum(balances().values())
    assert total == 0
    assert balances()["node:external"] == -5000 + 1000
