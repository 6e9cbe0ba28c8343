"""The operator's pages: deposits to confirm, payouts to settle, periods, the
ledger check, and people."""

from __future__ import annotations

from conftest import at
from web_helpers import csrf_token, post, signin, text_of

from flattr_node import ledger
from flattr_node.closing import close_period
from flattr_node.models import CheckRun, Deposit, Payout, User
from flattr_node.services import flattring, funds, things


def form(client, path):
    # confirmed: the question page before suspend / make operator is tested in test_ux_confirm.py
    return post(client, path, {"confirmed": "yes"}, token_from="/dashboard")


def test_members_get_403_on_every_operator_page(client, make_user):
    make_user("kim")
    signin(client, "kim")
    assert client.get("/operator").status_code == 403
    assert client.get("/operator", headers={"Accept": "application/json"}).get_json()["error"] == "forbidden"


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/operator")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


def test_confirm_deposits_and_settle_payouts(app, client, cfg, make_user):
    app.config["NODE"] = cfg = cfg.with_(min_payout=1)
    make_user("ops", operator=True)
    kim = make_user("kim", 200, budget=200)
    ann = make_user("ann", 200, budget=200)
    deposit = funds.open_deposit(kim, 1234)
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-10", 2))
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-10", 3))
    close_period(cfg, "2026-10", at("2026-11", 1, 1))
    paid_one = funds.request_payout(cfg, ann, 150)
    failed_one = funds.request_payout(cfg, ann, 50)

    signin(client, "ops")
    page = client.get("/operator")
    assert deposit.reference in text_of(page, "deposits") and "€12.34" in text_of(page, "deposits")
    periods = text_of(page, "periods")
    assert "2026-10" in periods and "closed" in periods and "€4.00" in periods
    assert form(client, f"/operator/deposits/{deposit.id}/confirm").status_code == 302
    assert form(client, f"/operator/deposits/{deposit.id}/confirm").status_code == 302  # twice: credited once
    assert Deposit.get_by_id(deposit.id).status == "confirmed" and ledger.balance(kim.id, "funds") == 1234
    assert form(client, f"/operator/payouts/{paid_one.id}/paid").status_code == 302
    assert form(client, f"/operator/payouts/{failed_one.id}/failed").status_code == 302
    assert form(client, f"/operator/payouts/{paid_one.id}/failed").status_code == 422  # already paid
    assert [Payout.get_by_id(p.id).status for p in (paid_one, failed_one)] == ["paid", "failed"]
    assert ledger.balance(ann.id, "revenue") == 50
    assert form(client, "/operator/deposits/999/confirm").status_code == 404


def test_ledger_check_and_people(client, make_user):
    ops = make_user("ops", operator=True)
    kim = make_user("kim", 300)
    signin(client, "ops")
    assert "Never run yet" in client.get("/operator").get_data(as_text=True)
    assert form(client, "/operator/check").status_code == 302
    assert CheckRun.select().count() == 1 and CheckRun.get().ok
    page = client.get("/operator")
    assert "all good" in text_of(page, "check")
    people = text_of(page, "people")
    assert "kim" in people and "€3.00" in people
    assert form(client, f"/operator/people/{kim.id}/make-operator").status_code == 302
    assert User.get_by_id(kim.id).is_operator
    assert form(client, f"/operator/people/{kim.id}/revoke-operator").status_code == 302
    assert form(client, f"/operator/people/{kim.id}/suspend").status_code == 302
    assert User.get_by_id(kim.id).is_suspended
    assert form(client, f"/operator/people/{ops.id}/suspend").status_code == 403  # never oneself
    assert form(client, f"/operator/people/{ops.id}/revoke-operator").status_code == 403
    assert User.get_by_id(ops.id).is_operator and not User.get_by_id(ops.id).is_suspended

    other = client.application.test_client()
    token = csrf_token(other)
    refused = other.post("/signin", data={"csrf_token": token, "username": "kim", "password": "correct horse"})
    assert refused.status_code == 422  # a suspended person cannot sign in
    assert form(client, f"/operator/people/{kim.id}/unsuspend").status_code == 302
    assert other.post("/signin", data={"csrf_token": token, "username": "kim", "password": "correct horse"}).status_code == 302
