"""Deposits (money in) and automatic top-ups (SPEC R5): open, confirm once,
cancel; only operators confirm; a person sees only their own."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import assert_error, at
from stdnum import iso11649

from flattr_node import ledger, periods
from flattr_node.errors import Validation
from flattr_node.models import Deposit, Txn, User, utcnow
from flattr_node.services import funds


@pytest.fixture
def kim(make_user):
    return make_user("kim")


@pytest.fixture
def op(make_user, api_for):
    return api_for(make_user("op", operator=True))


def test_open_a_deposit(kim, api_for):
    r = api_for(kim).post("/deposits", json={"amount": 2500})
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    for key in ("id", "amount", "currency", "reference", "status", "created_at", "confirmed_at"):
        assert key in d, key
    assert (d["amount"], d["currency"], d["status"], d["confirmed_at"]) == (2500, "EUR", "pending", None)
    assert type(d["amount"]) is int
    # An ISO 11649 creditor reference, with its check digits.
    assert re.fullmatch(r"RF[0-9]{2}[0-9A-HJKMNP-TV-Z]{10}", d["reference"])
    assert iso11649.is_valid(d["reference"])
    assert dt.datetime.fromisoformat(d["created_at"]).utcoffset() is not None
    # Nothing is credited before the money arrives.
    assert ledger.balance(kim.id, "funds") == 0
    assert ledger.check_ledger().ok


@pytest.mark.parametrize("amount", [0, -100, funds.MAX_DEPOSIT + 1, 200.0, 2.5, "200", True, None, [200], {}])
def test_bad_amounts_are_refused(kim, api_for, amount):
    assert_error(api_for(kim).post("/deposits", json={"amount": amount}), 422, "validation", "amount")
    assert Deposit.select().count() == 0


def test_a_missing_amount_is_refused(kim, api_for):
    assert_error(api_for(kim).post("/deposits", json={}), 422, "validation", "amount")
    assert_error(api_for(kim).post("/deposits"), 422, "validation", "amount")


def test_the_limits_are_inclusive(kim, api_for):
    api = api_for(kim)
    assert api.post("/deposits", json={"amount": 1}).status_code == 201
    assert api.post("/deposits", json={"amount": funds.MAX_DEPOSIT}).status_code == 201


def test_at_most_twenty_pending(kim, api_for):
    api = api_for(kim)
    for _ in range(funds.MAX_PENDING_DEPOSITS):
        assert api.post("/deposits", json={"amount": 100}).status_code == 201
    assert_error(api.post("/deposits", json={"amount": 100}), 422, "validation", "amount")
    assert Deposit.select().count() == funds.MAX_PENDING_DEPOSITS


def test_a_person_sees_only_their_own_deposits(kim, make_user, api_for, anon):
    ann = make_user("ann")
    api_for(kim).post("/deposits", json={"amount": 100})
    api_for(ann).post("/deposits", json={"amount": 200})
    api_for(ann).post("/deposits", json={"amount": 300})
    assert [d["amount"] for d in api_for(kim).get("/deposits").get_json()] == [100]
    assert [d["amount"] for d in api_for(ann).get("/deposits").get_json()] == [300, 200]
    assert_error(anon.get("/deposits"), 401, "unauthorized")
    assert_error(anon.post("/deposits", json={"amount": 100}), 401, "unauthorized")


def test_operator_confirms_by_id_and_twice_credits_once(kim, api_for, op):
    d = api_for(kim).post("/deposits", json={"amount": 2500}).get_json()
    r = op.post(f"/admin/deposits/{d['id']}/confirm")
    assert r.status_code == 200, r.get_json()
    confirmed = r.get_json()
    assert confirmed["status"] == "confirmed"
    assert dt.datetime.fromisoformat(confirmed["confirmed_at"]).utcoffset() is not None
    assert ledger.balance(kim.id, "funds") == 2500
    again = op.post(f"/admin/deposits/{d['id']}/confirm")
    assert again.status_code == 200 and again.get_json()["status"] == "confirmed"
    assert ledger.balance(kim.id, "funds") == 2500
    assert Txn.select().where(Txn.kind == "deposit").count() == 1
    assert api_for(kim).get("/user").get_json()["funds"] == 2500
    assert ledger.check_ledger().ok


def test_operator_confirms_by_reference_in_any_case(kim, api_for, op):
    d = api_for(kim).post("/deposits", json={"amount": 700}).get_json()
    ref = d["reference"]
    # In groups of four as printed, lower case, O and l for zero and one.
    sloppy = " ".join(ref[i : i + 4] for i in range(0, len(ref), 4)).lower().replace("0", "o").replace("1", "l")
    r = op.post(f"/admin/deposits/{sloppy}/confirm")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["id"] == d["id"]
    for variant in (ref, ref.lower(), f" {ref[:4]} {ref[4:]} "):
        assert op.post(f"/admin/deposits/{variant}/confirm").status_code == 200
    assert ledger.balance(kim.id, "funds") == 700
    assert ledger.check_ledger().ok


def test_only_operators_confirm(kim, make_user, api_for, anon):
    d = api_for(kim).post("/deposits", json={"amount": 700}).get_json()
    assert_error(api_for(kim).post(f"/admin/deposits/{d['id']}/confirm"), 403, "forbidden")
    assert_error(api_for(make_user("ann")).post(f"/admin/deposits/{d['reference']}/confirm"), 403, "forbidden")
    assert_error(anon.post(f"/admin/deposits/{d['id']}/confirm"), 401, "unauthorized")
    assert Deposit.get_by_id(d["id"]).status == "pending"
    assert ledger.balance(kim.id, "funds") == 0


@pytest.mark.parametrize("ref", ["999999", "FN-AAAA-AAAA", "nonsense", "-1", "0"])
def test_confirming_an_unknown_deposit_is_not_found(op, ref):
    assert_error(op.post(f"/admin/deposits/{ref}/confirm"), 404, "not_found")


def test_a_cancelled_deposit_cannot_be_confirmed(kim, api_for, op):
    d = api_for(kim).post("/deposits", json={"amount": 700}).get_json()
    funds.cancel_deposit(d["reference"], user=kim)
    assert_error(op.post(f"/admin/deposits/{d['id']}/confirm"), 422, "validation")
    assert Deposit.get_by_id(d["id"]).status == "cancelled"
    assert ledger.balance(kim.id, "funds") == 0
    with pytest.raises(Validation):
        funds.cancel_deposit(d["id"])  # and it is not pending any more
    assert ledger.check_ledger().ok


def test_a_confirmed_deposit_cannot_be_cancelled(kim):
    d = funds.open_deposit(kim, 300)
    funds.confirm_deposit(d.id)
    with pytest.raises(Validation):
        funds.cancel_deposit(d.id)
    assert ledger.balance(kim.id, "funds") == 300


def test_nobody_cancels_someone_elses_deposit(kim, make_user):
    d = funds.open_deposit(kim, 300)
    from flattr_node.errors import NotFound

    with pytest.raises(NotFound):
        funds.cancel_deposit(d.id, user=make_user("ann"))
    assert Deposit.get_by_id(d.id).status == "pending"


def test_conservation_over_many_deposits(make_user):
    people = [make_user(f"p{i}") for i in range(4)]
    for i, person in enumerate(people):
        for amount in (1, 99, 1234):
            d = funds.open_deposit(person, amount * (i + 1))
            funds.confirm_deposit(d.reference)
    assert ledger.check_ledger().ok
    assert ledger.node_account("external").balance == -sum(1334 * (i + 1) for i in range(4))


# --- top-ups (R5) -------------------------------------------------------------


def set_topup(user, amount, when):
    """The API stamps the real clock; tests place the moment in a period."""
    User.update(monthly_topup=amount, topup_set_at=when).where(User.id == user.id).execute()


def test_topup_opens_one_deposit_per_person_per_period(cfg, kim, make_user):
    ann = make_user("ann")
    set_topup(kim, 500, at("2026-10", 15))
    set_topup(ann, 300, at("2026-09", 2))
    make_user("none")  # no top-up
    assert funds.open_topups(cfg, at("2026-10", 20)) == 1  # ann's, set last month; kim's starts next month
    assert funds.open_topups(cfg, at("2026-11", 1, 0, 0)) == 2
    assert funds.open_topups(cfg, at("2026-11", 1, 0, 5)) == 0  # idempotent
    assert funds.open_topups(cfg, at("2026-11", 28)) == 0
    rows = sorted(Deposit.select(Deposit.user, Deposit.amount, Deposit.topup_period, Deposit.status).tuples())
    assert rows == [
        (kim.id, 500, "2026-11", "pending"),
        (ann.id, 300, "2026-10", "pending"),
        (ann.id, 300, "2026-11", "pending"),
    ]
    assert funds.open_topups(cfg, at("2026-12", 1, 0, 0)) == 2
    # A top-up moves no money until it is paid.
    assert ledger.balance(kim.id, "funds") == 0
    assert ledger.check_ledger().ok


def test_topup_set_over_the_api_starts_next_period(cfg, kim, api_for):
    assert api_for(kim).patch("/user", json={"monthly_topup": 400}).status_code == 200
    now = utcnow()
    assert funds.open_topups(cfg, now) == 0
    next_start = periods.start_utc(periods.shift(periods.name_of(now, cfg.tz), 1), cfg.tz)
    assert funds.open_topups(cfg, next_start) == 1
    deposit = Deposit.get(Deposit.user == kim)
    assert (deposit.amount, deposit.topup_period) == (400, periods.name_of(next_start, cfg.tz))
    # The person sees it among their deposits and pays it like any other.
    listed = api_for(kim).get("/deposits").get_json()
    assert [(d["amount"], d["status"]) for d in listed] == [(400, "pending")]
    funds.confirm_deposit(deposit.reference)
    assert ledger.balance(kim.id, "funds") == 400


def test_no_topup_for_zero_or_suspended(cfg, kim, make_user):
    ann = make_user("ann")
    set_topup(kim, 0, at("2026-09", 1))
    set_topup(ann, 500, at("2026-09", 1))
    User.update(is_suspended=True).where(User.id == ann.id).execute()
    assert funds.open_topups(cfg, at("2026-11", 2)) == 0
    assert Deposit.select().count() == 0


def test_topups_follow_the_nodes_timezone(cfg, kim):
    berlin = cfg.with_(timezone="Europe/Berlin")
    set_topup(kim, 500, at("2026-09", 10))
    # 2026-10-31T23:30Z is November in Berlin.
    assert funds.open_topups(berlin, dt.datetime(2026, 10, 31, 23, 30)) == 1
    assert Deposit.get().topup_period == "2026-11"
    assert funds.open_topups(berlin, dt.datetime(2026, 11, 1, 0, 30)) == 0


def test_a_reference_drawn_twice_is_drawn_again_in_the_same_transaction(kim, api_for, monkeypatch):
    """The random reference of a new deposit is one that is taken already
    (the randomness made to repeat itself): the deposit gets the next one,
    inside its one transaction (on PostgreSQL a failed INSERT would have
    spoilt it without a savepoint)."""
    from flattr_node.bank import references

    draws = iter("A" * references.BODY_LENGTH * 2 + "B" * references.BODY_LENGTH)

    class Repeating:  # the stdlib's secrets, drawing AAA…, AAA…, BBB…
        @staticmethod
        def choice(alphabet):
            return next(draws)

    monkeypatch.setattr(references, "secrets", Repeating)
    first = api_for(kim).post("/deposits", json={"amount": 100}).get_json()
    second = api_for(kim).post("/deposits", json={"amount": 200})
    assert second.status_code == 201, second.get_json()
    assert first["reference"] != second.get_json()["reference"]
    assert second.get_json()["reference"] == references.make_reference("B" * references.BODY_LENGTH)
    assert [d.amount for d in Deposit.select().where(Deposit.user == kim.id).order_by(Deposit.id)] == [100, 200]
