"""Withdrawals (SPEC R11) and moving revenue into funds (R2): revenue leaves
at once, a paid payout goes to the outside world, a failed one comes back,
and every settlement is idempotent."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from conftest import assert_error, at

from flattr_node import closing, ledger, periods
from flattr_node.models import Payout, Txn
from flattr_node.services import flattring, things

_months = itertools.count()


def earn(cfg, make_user, owner, cents: int):
    """Give `owner` `cents` of revenue the real way: a giver flattrs, the month closes."""
    month = periods.shift("2020-01", next(_months))
    giver = make_user(f"giver{month.replace('-', '')}", cents, budget=cents)
    thing = things.register_thing(owner, {"url": f"https://{owner.username}.example/{month}", "title": month})
    flattring.flattr_thing(cfg, giver, thing.id, at(month, 10))
    closing.close_period(cfg.with_(revenue_requires_giving=False), month, at(periods.shift(month, 1), 1, 1))


@pytest.fixture
def ann(cfg, make_user):
    ann = make_user("ann")
    earn(cfg, make_user, ann, 10000)
    earn(cfg, make_user, ann, 5000)
    assert ledger.balance(ann.id, "revenue") == 15000
    return ann


@pytest.fixture
def op(make_user, api_for):
    return api_for(make_user("op", operator=True))


def held():
    return ledger.node_account("payouts").balance


def external():
    return ledger.node_account("external").balance


def test_a_payout_leaves_revenue_at_once(ann, api_for):
    r = api_for(ann).post("/payouts", json={"amount": 4000})
    assert r.status_code == 201, r.get_json()
    p = r.get_json()
    for key in ("id", "amount", "currency", "status", "created_at"):
        assert key in p
    assert (p["amount"], p["currency"], p["status"]) == (4000, "EUR", "requested")
    assert dt.datetime.fromisoformat(p["created_at"]).utcoffset() is not None
    assert ledger.balance(ann.id, "revenue") == 11000
    assert held() == 4000
    assert api_for(ann).get("/user").get_json()["revenue"] == 11000
    assert ledger.check_ledger().ok


def test_payout_limits(ann, api_for, cfg):
    api = api_for(ann)
    assert_error(api.post("/payouts", json={"amount": cfg.min_payout - 1}), 422, "validation", "amount")
    assert api.post("/payouts", json={"amount": cfg.min_payout}).status_code == 201
    assert_error(api.post("/payouts", json={"amount": 14001}), 402, "no_money")
    assert api.post("/payouts", json={"amount": 14000}).status_code == 201
    assert ledger.balance(ann.id, "revenue") == 0
    assert_error(api.post("/payouts", json={"amount": cfg.min_payout}), 402, "no_money")
    assert Payout.select().count() == 2
    assert ledger.check_ledger().ok


def test_funds_cannot_be_withdrawn(make_user, api_for):
    """R2: deposited funds are for giving, not for taking back."""
    rich = make_user("rich", 10000)
    assert_error(api_for(rich).post("/payouts", json={"amount": 5000}), 402, "no_money")
    assert ledger.balance(rich.id, "funds") == 10000
    assert Payout.select().count() == 0


@pytest.mark.parametrize("amount", [1000.0, 2.5, "1000", True, None, [1000], -1000, 0])
def test_bad_payout_amounts(ann, api_for, amount):
    assert_error(api_for(ann).post("/payouts", json={"amount": amount}), 422, "validation", "amount")
    assert ledger.balance(ann.id, "revenue") == 15000 and held() == 0


def test_a_person_sees_only_their_own_payouts(ann, make_user, api_for, anon, cfg):
    bob = make_user("bob")
    earn(cfg, make_user, bob, 2000)
    api_for(ann).post("/payouts", json={"amount": 1000})
    api_for(bob).post("/payouts", json={"amount": 2000})
    assert [p["amount"] for p in api_for(ann).get("/payouts").get_json()] == [1000]
    assert [p["amount"] for p in api_for(bob).get("/payouts").get_json()] == [2000]
    assert_error(anon.get("/payouts"), 401, "unauthorized")
    assert_error(anon.post("/payouts", json={"amount": 1000}), 401, "unauthorized")


def test_paid_goes_to_the_outside_world_once(ann, api_for, op):
    pid = api_for(ann).post("/payouts", json={"amount": 4000}).get_json()["id"]
    before = external()
    r = op.post(f"/admin/payouts/{pid}/paid")
    assert r.status_code == 200 and r.get_json()["status"] == "paid"
    assert external() == before + 4000
    assert held() == 0
    assert op.post(f"/admin/payouts/{pid}/paid").status_code == 200  # twice: nothing moves
    assert external() == before + 4000
    assert Txn.select().where(Txn.key == f"payout:{pid}:paid").count() == 1
    assert ledger.balance(ann.id, "revenue") == 11000
    # Paid is final: it cannot fail afterwards.
    assert_error(op.post(f"/admin/payouts/{pid}/failed"), 422, "validation")
    assert ledger.balance(ann.id, "revenue") == 11000
    assert ledger.check_ledger().ok


def test_failed_returns_to_revenue_once(ann, api_for, op):
    pid = api_for(ann).post("/payouts", json={"amount": 4000}).get_json()["id"]
    before = external()
    r = op.post(f"/admin/payouts/{pid}/failed")
    assert r.status_code == 200 and r.get_json()["status"] == "failed"
    assert ledger.balance(ann.id, "revenue") == 15000
    assert held() == 0 and external() == before
    assert op.post(f"/admin/payouts/{pid}/failed").status_code == 200
    assert ledger.balance(ann.id, "revenue") == 15000
    assert_error(op.post(f"/admin/payouts/{pid}/paid"), 422, "validation")
    assert external() == before
    assert ledger.check_ledger().ok


def test_only_operators_settle(ann, api_for, anon):
    pid = api_for(ann).post("/payouts", json={"amount": 4000}).get_json()["id"]
    for action in ("paid", "failed"):
        assert_error(api_for(ann).post(f"/admin/payouts/{pid}/{action}"), 403, "forbidden")
        assert_error(anon.post(f"/admin/payouts/{pid}/{action}"), 401, "unauthorized")
    assert Payout.get_by_id(pid).status == "requested" and held() == 4000


@pytest.mark.parametrize("pid", ["999999", "abc", "0", "-1"])
def test_settling_an_unknown_payout_is_not_found(op, pid):
    assert_error(op.post(f"/admin/payouts/{pid}/paid"), 404, "not_found")
    assert_error(op.post(f"/admin/payouts/{pid}/failed"), 404, "not_found")


# --- revenue to funds -------------------------------------------------------------


def test_revenue_to_funds_with_an_idempotency_key_moves_once(ann, api_for):
    api = api_for(ann)
    headers = {**api.headers, "Idempotency-Key": "move-1"}
    for _ in range(3):
        r = api.client.post("/api/v1/user/revenue-to-funds", json={"amount": 3000}, headers=headers)
        assert r.status_code == 200, r.get_json()
        assert (r.get_json()["revenue"], r.get_json()["funds"]) == (12000, 3000)
    assert ledger.balance(ann.id, "revenue") == 12000
    assert ledger.balance(ann.id, "funds") == 3000
    # Another key is another move.
    r = api.client.post("/api/v1/user/revenue-to-funds", json={"amount": 2000}, headers={**api.headers, "Idempotency-Key": "move-2"})
    assert (r.get_json()["revenue"], r.get_json()["funds"]) == (10000, 5000)
    assert ledger.check_ledger().ok


def test_revenue_to_funds_without_a_key_moves_each_time(ann, api_for):
    api = api_for(ann)
    for _ in range(2):
        assert api.post("/user/revenue-to-funds", json={"amount": 1}).status_code == 200
    assert ledger.balance(ann.id, "revenue") == 14998
    assert ledger.balance(ann.id, "funds") == 2
    assert ledger.check_ledger().ok


def test_revenue_to_funds_refusals(ann, api_for, make_user):
    api = api_for(ann)
    assert_error(api.post("/user/revenue-to-funds", json={"amount": 15001}), 402, "no_money")
    for bad in (0, -5, 2.5, 100.0, "100", None, False):
        assert_error(api.post("/user/revenue-to-funds", json={"amount": bad}), 422, "validation", "amount")
    r = api.client.post(
        "/api/v1/user/revenue-to-funds", json={"amount": 100}, headers={**api.headers, "Idempotency-Key": "k" * 65}
    )
    assert_error(r, 422, "validation", "Idempotency-Key")
    poor = api_for(make_user("poor", 500))
    assert_error(poor.post("/user/revenue-to-funds", json={"amount": 100}), 402, "no_money")
    assert ledger.balance(ann.id, "revenue") == 15000 and ledger.balance(ann.id, "funds") == 0


def test_idempotency_keys_belong_to_one_person(ann, make_user, api_for, cfg):
    bob = make_user("bob")
    earn(cfg, make_user, bob, 2000)
    for who in (ann, bob):
        api = api_for(who)
        r = api.client.post("/api/v1/user/revenue-to-funds", json={"amount": 500}, headers={**api.headers, "Idempotency-Key": "same"})
        assert r.status_code == 200
    assert ledger.balance(ann.id, "funds") == 500
    assert ledger.balance(bob.id, "funds") == 500


def test_conservation_through_a_whole_cycle(ann, api_for, op, make_user):
    """R12 after every kind of movement: deposit, close, move, payout, paid, failed."""
    assert ledger.check_ledger().ok
    api = api_for(ann)
    api.post("/user/revenue-to-funds", json={"amount": 1000})
    assert ledger.check_ledger().ok
    p1 = api.post("/payouts", json={"amount": 5000}).get_json()["id"]
    p2 = api.post("/payouts", json={"amount": 6000}).get_json()["id"]
    assert ledger.check_ledger().ok
    op.post(f"/admin/payouts/{p1}/paid")
    assert ledger.check_ledger().ok
    op.post(f"/admin/payouts/{p2}/failed")
    assert ledger.check_ledger().ok
    total = sum(a.balance for a in ledger.Account.select())
    assert total == 0
    # Outside world: two givers deposited 15000, 5000 went out.
    assert external() == -15000 + 5000
    assert ledger.balance(ann.id, "revenue") == 15000 - 1000 - 5000


def test_an_idempotency_key_reused_for_another_amount_is_refused(ann, api_for):
    api = api_for(ann)
    headers = {**api.headers, "Idempotency-Key": "once"}
    assert api.client.post("/api/v1/user/revenue-to-funds", json={"amount": 3000}, headers=headers).status_code == 200
    r = api.client.post("/api/v1/user/revenue-to-funds", json={"amount": 4000}, headers=headers)
    assert_error(r, 422, "validation", "Idempotency-Key")
    assert ledger.balance(ann.id, "funds") == 3000 and ledger.balance(ann.id, "revenue") == 12000
