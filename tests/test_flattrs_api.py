"""Flattrs (SPEC R3, R6, R7): by id, by URL, by auto-submit URL, and every
refusal with its error code. Periods follow the node's timezone."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import Api, assert_error, at

from flattr_node import closing, ledger, periods
from flattr_node.api import serialize
from flattr_node.app import create_app
from flattr_node.errors import FlattrOnce, PeriodClosed
from flattr_node.models import Flattr, Period, Thing, User, utcnow
from flattr_node.services import flattring, people, things


@pytest.fixture
def ann(make_user):
    return make_user("ann", 500)


@pytest.fixture
def post(ann):
    return things.register_thing(ann, {"url": "https://ann.example/post", "title": "Ann's post"})


@pytest.fixture
def kim(make_user):
    return make_user("kim", 200)


def test_flattr_a_thing_by_id(kim, post, api_for):
    api = api_for(kim)
    r = api.post(f"/things/{post.id}/flattr")
    assert r.status_code == 201, r.get_json()
    f = r.get_json()
    for key in ("id", "thing", "giver", "period", "created_at", "status", "share", "fee"):
        assert key in f, key
    assert f["thing"] == {"id": post.id, "url": "https://ann.example/post", "title": "Ann's post"}
    assert f["giver"] == {"username": "kim"}
    assert f["period"] == periods.name_of(utcnow(), dt.UTC)
    assert (f["status"], f["share"], f["fee"]) == ("pending", None, None)
    assert dt.datetime.fromisoformat(f["created_at"]).utcoffset() == dt.timedelta(0)
    t = api.get(f"/things/{post.id}").get_json()
    assert (t["flattrs"], t["flattrs_this_period"], t["flattred"]) == (1, 1, True)
    assert api.get("/user").get_json()["flattrs_this_period"] == 1
    # A flattr is a promise: no money moves until the month is closed.
    assert ledger.balance(kim.id, "funds") == 200
    assert ledger.check_ledger().ok


def test_flattr_once_per_thing_per_period(kim, post, api_for):
    api = api_for(kim)
    assert api.post(f"/things/{post.id}/flattr").status_code == 201
    assert_error(api.post(f"/things/{post.id}/flattr"), 409, "flattr_once")
    assert_error(api.post("/flattr", json={"url": "https://ann.example/post"}), 409, "flattr_once")
    assert Flattr.select().count() == 1


def test_once_per_period_but_again_next_month(cfg, kim, post):
    flattring.flattr_thing(cfg, kim, post.id, at("2026-09", 30, 23, 59))
    with pytest.raises(FlattrOnce):
        flattring.flattr_thing(cfg, kim, post.id, at("2026-09", 1, 0, 0))
    flattring.flattr_thing(cfg, kim, post.id, at("2026-10", 1, 0, 0))
    assert sorted(p for (p,) in Flattr.select(Flattr.period).tuples()) == ["2026-09", "2026-10"]


def test_never_ones_own_thing(ann, post, api_for):
    api = api_for(ann)
    assert_error(api.post(f"/things/{post.id}/flattr"), 403, "flattr_owner")
    assert_error(api.post("/flattr", json={"url": post.url}), 403, "flattr_owner")
    assert Flattr.select().count() == 0


@pytest.mark.parametrize("funds, allowed", [(0, False), (199, False), (200, True), (10_000, True)])
def test_no_moochers(make_user, post, api_for, funds, allowed):
    """R3: funds of at least min_monthly_budget are needed to flattr."""
    giver = make_user("giver", funds)
    r = api_for(giver).post(f"/things/{post.id}/flattr")
    if allowed:
        assert r.status_code == 201
    else:
        body = assert_error(r, 402, "no_money")
        assert "deposit" in body["error_description"]  # says how to add funds
        assert Flattr.select().count() == 0


def test_revenue_does_not_count_as_funds(cfg, make_user, post, api_for):
    """R2/R3: only funds allow flattring; revenue must be moved first."""
    bob = make_user("bob", 200)
    bobs = things.register_thing(bob, {"url": "https://bob.example/p", "title": "p"})
    kim = make_user("kim", 300, budget=300)
    flattring.flattr_thing(cfg, kim, bobs.id, at("2026-10", 3))
    flattring.flattr_thing(cfg, bob, post.id, at("2026-10", 3))
    closing.close_period(cfg.with_(revenue_requires_giving=False), "2026-10", at("2026-11", 1, 0, 5))
    assert ledger.balance(bob.id, "revenue") == 300 and ledger.balance(bob.id, "funds") == 0
    other = things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    api = api_for(bob)
    assert_error(api.post(f"/things/{other.id}/flattr"), 402, "no_money")
    assert api.post("/user/revenue-to-funds", json={"amount": 200}).status_code == 200
    assert api.post(f"/things/{other.id}/flattr").status_code == 201


def test_an_archived_thing_cannot_be_flattred(kim, ann, post, api_for):
    things.archive_thing(ann, post.id)
    assert_error(api_for(kim).post(f"/things/{post.id}/flattr"), 403, "forbidden")
    assert Flattr.select().count() == 0


def test_unknown_thing_is_not_found(kim, api_for):
    api = api_for(kim)
    assert_error(api.post("/things/424242/flattr"), 404, "not_found")
    assert_error(api.post("/flattr", json={"url": "https://nobody.example/x"}), 404, "not_found")


def test_flattring_needs_auth(post, anon):
    assert_error(anon.post(f"/things/{post.id}/flattr"), 401, "unauthorized")
    assert_error(anon.post("/flattr", json={"url": post.url}), 401, "unauthorized")
    assert Flattr.select().count() == 0


def test_a_suspended_giver_cannot_flattr(kim, post, api_for):
    api = api_for(kim)
    User.update(is_suspended=True).where(User.id == kim.id).execute()
    assert_error(api.post(f"/things/{post.id}/flattr"), 401, "unauthorized")
    assert Flattr.select().count() == 0


@pytest.mark.parametrize(
    "url",
    ["https://ann.example/post", "HTTPS://Ann.Example/post/", "https://ann.example/post?utm_source=x#c"],
)
def test_flattr_by_url(kim, post, api_for, url):
    r = api_for(kim).post("/flattr", json={"url": url})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["thing"]["id"] == post.id


@pytest.mark.parametrize("payload", [{}, {"url": ""}, {"url": 5}, {"url": None}, {"url": ["x"]}])
def test_flattr_by_url_needs_a_url(kim, api_for, payload):
    assert_error(api_for(kim).post("/flattr", json=payload), 422, "validation", "url")


def test_auto_submit_creates_the_thing_for_its_owner_on_first_flattr(ann, kim, make_user, api_for):
    auto = "http://node.test/submit/auto?user_id=ann&url=https%3A%2F%2Fann.example%2Fnew%3Futm_source%3Dx&title=New+post&category=images&tags=a,b"
    assert Thing.select().where(Thing.url == "https://ann.example/new").count() == 0
    r = api_for(kim).post("/flattr", json={"url": auto})
    assert r.status_code == 201, r.get_json()
    thing = Thing.get(Thing.url == "https://ann.example/new")
    assert (thing.owner_id, thing.title, thing.category, thing.tags) == (ann.id, "New post", "images", "a,b")
    assert r.get_json()["thing"]["id"] == thing.id
    # The second flattr, by another person, finds the same thing.
    bob = make_user("bob", 300)
    r2 = api_for(bob).post("/flattr", json={"url": auto})
    assert r2.status_code == 201 and r2.get_json()["thing"]["id"] == thing.id
    assert_error(api_for(kim).post("/flattr", json={"url": auto}), 409, "flattr_once")
    assert Thing.select().where(Thing.url == "https://ann.example/new").count() == 1


def test_auto_submit_without_a_title_uses_the_url(kim, ann, api_for):
    auto = "http://node.test/submit/auto?user_id=ann&url=https://ann.example/untitled"
    assert api_for(kim).post("/flattr", json={"url": auto}).status_code == 201
    assert Thing.get(Thing.url == "https://ann.example/untitled").title == "https://ann.example/untitled"


@pytest.mark.parametrize(
    "query, status, code",
    [
        ("user_id=nobody&url=https://x.example/p", 404, "not_found"),
        ("url=https://x.example/p", 422, "validation"),
        ("user_id=ann&url=javascript:alert(1)", 422, "validation"),
        ("user_id=ann", 422, "validation"),
        ("user_id=ann&url=https://x.example/p&category=weapons", 422, "validation"),
        ("user_id=ann&url=https://x.example/p&title=" + "x" * 300, 422, "validation"),
    ],
)
def test_bad_auto_submit_creates_nothing(kim, ann, api_for, query, status, code):
    assert_error(api_for(kim).post("/flattr", json={"url": f"http://node.test/submit/auto?{query}"}), status, code)
    assert Thing.select().count() == 0 and Flattr.select().count() == 0


def test_auto_submit_for_oneself_or_without_money_creates_nothing(ann, make_user, api_for):
    auto = "http://node.test/submit/auto?user_id=ann&url=https://ann.example/mine"
    assert_error(api_for(ann).post("/flattr", json={"url": auto}), 403, "flattr_owner")
    poor = make_user("poor", 100)
    assert_error(api_for(poor).post("/flattr", json={"url": auto}), 402, "no_money")
    assert Thing.select().count() == 0 and Flattr.select().count() == 0


def test_auto_submit_of_another_node_is_just_a_url(kim, api_for):
    auto = "http://elsewhere.test/submit/auto?user_id=ann&url=https://ann.example/x"
    assert_error(api_for(kim).post("/flattr", json={"url": auto}), 404, "not_found")
    assert Thing.select().count() == 0


# --- R7: periods -------------------------------------------------------------


def test_no_flattr_lands_in_a_closed_period(cfg, kim, post, make_user):
    closing.close_period(cfg, "2026-10", at("2026-11", 1, 0, 5))
    with pytest.raises(PeriodClosed):
        flattring.flattr_thing(cfg, kim, post.id, at("2026-10", 31, 23, 59))  # a clock that runs late
    assert Flattr.select().count() == 0
    flattring.flattr_thing(cfg, kim, post.id, at("2026-11", 1, 0, 6))


def test_no_flattr_lands_in_a_closing_period(cfg, kim, post):
    Period.insert(name="2026-10", status="closing", stage="apply").execute()
    with pytest.raises(PeriodClosed):
        flattring.flattr_thing(cfg, kim, post.id, at("2026-10", 20))
    assert Flattr.select().count() == 0


def test_period_closed_over_the_api(kim, post, api_for):
    """Should the clock say the current month is already closing, the API says so."""
    current = periods.name_of(utcnow(), dt.UTC)
    Period.insert(name=current, status="closing", stage="plan").execute()
    assert_error(api_for(kim).post(f"/things/{post.id}/flattr"), 409, "period_closed")
    assert_error(api_for(kim).post("/flattr", json={"url": post.url}), 409, "period_closed")
    assert Flattr.select().count() == 0


def test_periods_follow_the_nodes_timezone(cfg, db, kim, post):
    """In Berlin, 2026-10-31T23:30Z is already 00:30 on 1 November."""
    berlin = cfg.with_(timezone="Europe/Berlin")
    f = flattring.flattr_thing(berlin, kim, post.id, dt.datetime(2026, 10, 31, 23, 30))
    assert f.period == "2026-11"
    shown = serialize.flattr(berlin, Flattr.get_by_id(f.id))
    assert shown["period"] == "2026-11"
    assert shown["created_at"] == "2026-11-01T00:30:00+01:00"
    # And in UTC the same instant is still October.
    g = flattring.flattr_thing(cfg, make_giver(cfg), post.id, dt.datetime(2026, 10, 31, 23, 30))
    assert g.period == "2026-10"
    # Summer time: 2026-07-31T22:30Z is 00:30 on 1 August in Berlin (+02:00).
    h = flattring.flattr_thing(berlin, kim, post.id, dt.datetime(2026, 7, 31, 22, 30))
    assert h.period == "2026-08"
    assert serialize.flattr(berlin, Flattr.get_by_id(h.id))["created_at"] == "2026-08-01T00:30:00+02:00"


def make_giver(cfg):
    from flattr_node.services import funds

    user = people.create_user(cfg, "utcgiver", "u@example.org", "correct horse")
    funds.confirm_deposit(funds.open_deposit(user, 200).id)
    return user


def test_api_dates_carry_the_nodes_offset(cfg, db, kim, post):
    app = create_app(cfg.with_(timezone="Europe/Berlin"), bind_database=False)
    api = Api(app.test_client(), people.create_token(kim))
    r = api.post(f"/things/{post.id}/flattr")
    assert r.status_code == 201
    created = dt.datetime.fromisoformat(r.get_json()["created_at"])
    assert created.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    assert r.get_json()["period"] == periods.name_of(utcnow(), app.config["NODE"].tz)


# --- listing flattrs and periods ----------------------------------------------


def test_flattrs_given_and_received(cfg, kim, ann, post, make_user, api_for):
    bob = make_user("bob", 300)
    bobs = things.register_thing(bob, {"url": "https://bob.example/p", "title": "Bob's"})
    flattring.flattr_thing(cfg, kim, post.id, at("2026-09", 5))
    flattring.flattr_thing(cfg, kim, bobs.id, at("2026-10", 5))
    flattring.flattr_thing(cfg, bob, post.id, at("2026-10", 6))
    kim_api, ann_api = api_for(kim), api_for(ann)
    given = kim_api.get("/user/flattrs").get_json()
    assert [f["thing"]["title"] for f in given] == ["Bob's", "Ann's post"]
    assert [f["period"] for f in kim_api.get("/user/flattrs?period=2026-09").get_json()] == ["2026-09"]
    incoming = ann_api.get("/user/incoming").get_json()
    assert sorted(f["giver"]["username"] for f in incoming) == ["bob", "kim"]
    assert [f["giver"]["username"] for f in ann_api.get("/user/incoming?period=2026-10").get_json()] == ["bob"]
    assert kim_api.get("/user/incoming").get_json() == []
    for bad in ("2026-13", "26-10", "2026-1", "x"):
        assert_error(kim_api.get(f"/user/flattrs?period={bad}"), 422, "validation", "period")


def test_shares_show_once_the_period_is_closed(cfg, make_user, api_for):
    """R8/R9 over the API: statuses and shares of the flattrs, amounts as ints."""
    kim = make_user("kim", 300, budget=300)
    ann = make_user("ann", 200)
    bob = make_user("bob")  # gives nothing: flattrs to bob do not count
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "k"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "a"})
    bobs = things.register_thing(bob, {"url": "https://bob.example/p", "title": "b"})
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-10", 2))
    flattring.flattr_thing(cfg, kim, bobs.id, at("2026-10", 3))
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-10", 4))
    closing.close_period(cfg, "2026-10", at("2026-11", 2))
    given = {f["thing"]["title"]: f for f in api_for(kim).get("/user/flattrs?period=2026-10").get_json()}
    assert (given["a"]["status"], given["a"]["share"], given["a"]["fee"]) == ("counted", 300, 0)
    assert (given["b"]["status"], given["b"]["share"]) == ("not_counted", 0)
    assert all(type(f["share"]) is int and f["currency"] == "EUR" for f in given.values())
    summary = api_for(kim).get("/periods/2026-10").get_json()
    assert (summary["status"], summary["givers"], summary["flattrs"], summary["distributed"], summary["fees"]) == (
        "closed", 2, 3, 500, 0,
    )
    assert dt.datetime.fromisoformat(summary["closed_at"]).utcoffset() is not None
    assert ledger.check_ledger().ok


def test_period_endpoint(anon):
    r = anon.get("/periods/2030-01")
    assert r.status_code == 200
    assert (r.get_json()["status"], r.get_json()["flattrs"], r.get_json()["closed_at"]) == ("open", 0, None)
    for bad in ("2030-13", "2030-1", "abc", "2030-01-01"):
        assert_error(anon.get(f"/periods/{bad}"), 422, "validation", "period")
