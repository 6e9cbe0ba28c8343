"""Subscriptions (SPEC §9): the API, and a subscription's months run by the
service with the clock given (tests/test_subscriptions_live.py runs them in
real `serve` processes under libfaketime)."""

from __future__ import annotations

import json

from conftest import assert_error, at

from flattr_node import closing, ledger, periods
from flattr_node.models import Flattr, utcnow
from flattr_node.models_sup import Notice, Subscription, SubscriptionRun
from flattr_node.services import funds, subscriptions, things


def _thing(owner, n=1):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{n}", "title": f"Post {n}"})


def test_subscribing_makes_this_periods_flattr_at_once(cfg, make_user, api_for):
    kim, ann = make_user("kim", 1000), make_user("ann")
    post = _thing(ann)
    r = api_for(kim).post("/subscriptions", json={"thing_id": post.id, "months": 3})
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    period = periods.name_of(utcnow(), cfg.tz)
    assert body["thing"] == {"id": post.id, "url": post.url, "title": "Post 1"}
    assert (body["months"], body["remaining"], body["started_period"], body["status"]) == (3, 2, period, "active")
    flattrs = api_for(kim).get("/user/flattrs").get_json()
    assert [(f["thing"]["id"], f["period"]) for f in flattrs] == [(post.id, period)]
    assert api_for(kim).get("/subscriptions").get_json() == [body]
    # A second subscription to the same thing is refused, clearly.
    assert_error(api_for(kim).post("/subscriptions", json={"thing_id": post.id, "months": 6}), 422, "validation", "thing_id")


def test_a_thing_flattred_this_period_starts_next_period(cfg, make_user, api_for):
    kim, ann = make_user("kim", 1000), make_user("ann")
    post = _thing(ann)
    assert api_for(kim).post(f"/things/{post.id}/flattr").status_code == 201
    body = api_for(kim).post("/subscriptions", json={"thing_id": post.id, "months": 6}).get_json()
    this = periods.name_of(utcnow(), cfg.tz)
    assert (body["remaining"], body["started_period"]) == (6, periods.shift(this, 1))
    assert Flattr.select().count() == 1


def test_bad_subscriptions_get_clear_errors(cfg, make_user, api_for, anon):
    kim, ann = make_user("kim", 1000), make_user("ann")
    own, post = _thing(kim), _thing(ann)
    api = api_for(kim)
    assert_error(anon.post("/subscriptions", json={"thing_id": post.id, "months": 3}), 401, "unauthorized")
    for months in (0, 1, 4, 24, "3", 3.0, None, True):
        assert_error(api.post("/subscriptions", json={"thing_id": post.id, "months": months}), 422, "validation", "months")
    assert_error(api.post("/subscriptions", json={"months": 3}), 422, "validation", "thing_id")
    assert_error(api.post("/subscriptions", json={"thing_id": 10**30, "months": 3}), 404, "not_found")
    assert_error(api.post("/subscriptions", json={"thing_id": "x", "months": 3}), 404, "not_found")
    assert_error(api.post("/subscriptions", json={"thing_id": own.id, "months": 3}), 403, "flattr_owner")
    assert_error(api.post("/subscriptions", data="[1]", content_type="application/json"), 400, "invalid_request")
    things.archive_thing(ann, post.id)
    assert_error(api.post("/subscriptions", json={"thing_id": post.id, "months": 3}), 403, "forbidden")
    assert Subscription.select().count() == 0 and Flattr.select().count() == 0


def test_only_the_subscriber_sees_or_ends_a_subscription(cfg, make_user, api_for):
    kim, ann, bob = make_user("kim", 1000), make_user("ann"), make_user("bob", 1000)
    sub = api_for(kim).post("/subscriptions", json={"thing_id": _thing(ann).id, "months": 12}).get_json()
    assert api_for(bob).get("/subscriptions").get_json() == []
    assert_error(api_for(bob).delete(f"/subscriptions/{sub['id']}"), 404, "not_found")
    assert_error(api_for(kim).delete("/subscriptions/nope"), 404, "not_found")
    ended = api_for(kim).delete(f"/subscriptions/{sub['id']}")
    assert ended.status_code == 200
    assert (ended.get_json()["status"], ended.get_json()["end_reason"]) == ("ended", "cancelled")
    assert Flattr.select().count() == 1  # this period's flattr stays: an ordinary flattr


def test_months_with_funds_running_out_and_back(cfg, make_user):
    """Budget €2, funds €4: two months paid, the third refused (R3) with a
    notice but counted, money added, the fourth paid; then it is done."""
    cfg = cfg.with_(revenue_requires_giving=False)
    kim, ann = make_user("kim", 400, budget=200), make_user("ann", 200)
    post = _thing(ann)
    start = "2026-01"
    sub = subscriptions.subscribe(cfg, kim, post.id, 6, now=at(start, 10))
    outcomes = {start: "flattred"}
    for i in range(1, 6):
        month = periods.shift(start, i)
        closing.close_period(cfg, periods.shift(month, -1), now=at(month, 1, 0, 1))
        if month == periods.shift(start, 3):  # the money comes back
            funds.confirm_deposit(funds.open_deposit(kim, 1000).id, now=at(month, 1, 0, 2))
        assert subscriptions.run_due(cfg, now=at(month, 1, 0, 5)) in ({"flattred": 1}, {"no_money": 1})
        assert subscriptions.run_due(cfg, now=at(month, 2)) == {}  # once per period
        outcomes[month] = SubscriptionRun.get((SubscriptionRun.subscription == sub.id) & (SubscriptionRun.period == month)).outcome
    assert outcomes == {
        "2026-01": "flattred", "2026-02": "flattred", "2026-03": "no_money",
        "2026-04": "flattred", "2026-05": "flattred", "2026-06": "flattred",
    }  # fmt: skip
    sub = Subscription.get_by_id(sub.id)
    assert (sub.remaining, sub.status, sub.end_reason) == (0, "ended", "done")
    assert subscriptions.run_due(cfg, now=at("2026-07", 2)) == {}
    flattred = [f.period for f in Flattr.select().where(Flattr.giver == kim.id).order_by(Flattr.period)]
    assert flattred == ["2026-01", "2026-02", "2026-04", "2026-05", "2026-06"]
    closing.close_period(cfg, "2026-06", now=at("2026-07", 1, 0, 1))
    assert ledger.balance(ann.id, "revenue") == 5 * 200  # the close paid each as any flattr
    notice = Notice.get(Notice.kind == "subscription")
    assert notice.user_id == kim.id and json.loads(notice.params)["period"] == "2026-03"
    assert Notice.select().where(Notice.kind == "subscription").count() == 1
    assert ledger.check_ledger().ok


def test_the_close_pays_subscription_flattrs_as_any_flattr(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim, ann = make_user("kim", 1000, budget=300), make_user("ann")
    a, b = _thing(ann, 1), _thing(ann, 2)
    subscriptions.subscribe(cfg, kim, a.id, 3, now=at("2026-03", 5))
    from flattr_node.services import flattring

    flattring.flattr_thing(cfg, kim, b.id, now=at("2026-03", 6))
    closing.close_period(cfg, "2026-03", now=at("2026-04", 1, 0, 1))
    shares = sorted(Flattr.select(Flattr.share).where(Flattr.period == "2026-03").tuples())
    assert shares == [(150,), (150,)]
    assert ledger.balance(ann.id, "revenue") == 300 and ledger.balance(kim.id, "funds") == 700


def test_an_archived_thing_ends_the_subscription(cfg, make_user):
    kim, ann = make_user("kim", 1000), make_user("ann")
    post = _thing(ann)
    sub = subscriptions.subscribe(cfg, kim, post.id, 3, now=at("2026-05", 3))
    things.archive_thing(ann, post.id)
    assert subscriptions.run_due(cfg, now=at("2026-06", 1, 1)) == {"ended": 1}
    sub = Subscription.get_by_id(sub.id)
    assert (sub.status, sub.end_reason, sub.remaining) == ("ended", "archived", 2)
    assert SubscriptionRun.select().where(SubscriptionRun.period == "2026-06").count() == 0
    assert Flattr.select().where(Flattr.period == "2026-06").count() == 0


def test_a_flattr_made_by_hand_first_is_that_periods_flattr(cfg, make_user):
    """Node down on the 1st, the person clicked on the 2nd: the period has
    its one flattr (R6), the subscription counts it and adds none."""
    from flattr_node.services import flattring

    kim, ann = make_user("kim", 1000), make_user("ann")
    post = _thing(ann)
    sub = subscriptions.subscribe(cfg, kim, post.id, 3, now=at("2026-05", 3))
    flattring.flattr_thing(cfg, kim, post.id, now=at("2026-06", 2))
    assert subscriptions.run_due(cfg, now=at("2026-06", 3)) == {"already": 1}
    assert Flattr.select().where(Flattr.period == "2026-06").count() == 1
    assert Subscription.get_by_id(sub.id).remaining == 1


def test_subscribe_from_the_thing_page_and_the_page_after_a_flattr(cfg, make_user, client):
    from web_helpers import csrf_token, parse, post, signin

    make_user("kim", 1000)
    ann = make_user("ann")
    one, two = _thing(ann, 1), _thing(ann, 2)
    signin(client, "kim")
    page = parse(client.get(f"/things/{one.id}"))
    form = page.find(".//form[@action='/dashboard/subscriptions']")
    assert form is not None and [o.get("value") for o in form.iter("option")] == ["3", "6", "12"]
    r = post(client, "/dashboard/subscriptions", {"thing_id": str(one.id), "months": "6"}, token_from=f"/things/{one.id}")
    assert r.status_code == 302
    listing = client.get("/dashboard/subscriptions").get_data(as_text=True)
    assert "Post 1" in listing and Flattr.select().where(Flattr.thing == one.id).count() == 1
    assert parse(client.get(f"/things/{one.id}")).find(".//*[@data-subscribed]") is not None
    # After a flattr, the page offers a subscription to that thing.
    done = post(client, f"/things/{two.id}/flattr", {}, token_from=f"/things/{two.id}/flattr")
    assert done.status_code == 201
    offer = parse(done).find(".//form[@action='/dashboard/subscriptions']")
    assert offer is not None and offer.find(".//input[@name='thing_id']").get("value") == str(two.id)
    r = post(client, "/dashboard/subscriptions", {"thing_id": str(two.id), "months": "12"}, token_from=f"/things/{two.id}")
    sub = Subscription.get(Subscription.thing == two.id)
    assert (sub.started_period, sub.remaining) == (periods.shift(periods.name_of(utcnow(), cfg.tz), 1), 12)
    # Bad input is told on the page, never a 500; ending works once.
    bad = post(client, "/dashboard/subscriptions", {"thing_id": str(two.id), "months": "5"}, token_from="/dashboard/subscriptions")
    assert bad.status_code == 422
    own = post(client, "/dashboard/subscriptions", {"thing_id": "999999", "months": "3"}, token_from="/dashboard/subscriptions")
    assert own.status_code == 404 and "no thing" in own.get_data(as_text=True)
    end = post(client, f"/dashboard/subscriptions/{sub.id}/end", {}, token_from="/dashboard/subscriptions")
    assert end.status_code == 302 and Subscription.get_by_id(sub.id).status == "ended"
    # The owner is offered nothing on their own thing's page.
    client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")})
    signin(client, "ann")
    assert parse(client.get(f"/things/{one.id}")).find(".//form[@action='/dashboard/subscriptions']") is None
