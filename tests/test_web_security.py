"""CSRF on every state-changing route (found by walking the app's URL map, so a
route added later cannot be forgotten), one person cannot see or change
another's money, tokens or settings, and pages cannot be framed."""

from __future__ import annotations

import pytest
from conftest import at, ledger_snapshot
from web_helpers import csrf_token, parse, post, signin

from flattr_node import ledger
from flattr_node.closing import close_period
from flattr_node.models import ApiToken, Deposit, Payout, Thing, User
from flattr_node.models_web import Invite, PasswordReset
from flattr_node.services import flattring, funds, people, things

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def fill(rule) -> str:
    """A URL for a rule, with every variable set to an existing-looking value."""
    values = {}
    for name, converter in rule._converters.items():
        values[name] = 1 if type(converter).__name__ == "IntegerConverter" else "kim"
    return rule.build(values, append_unknown=False)[1]


def state() -> dict:
    snapshot = ledger_snapshot()
    snapshot["rows"] = [m.select().count() for m in (User, Thing, Deposit, Payout, ApiToken, Invite, PasswordReset)]
    snapshot["users"] = sorted(
        User.select(User.id, User.monthly_budget, User.monthly_topup, User.is_operator, User.is_suspended, User.password_hash, User.display_name).tuples()
    )
    snapshot["things"] = sorted(Thing.select(Thing.id, Thing.title, Thing.archived).tuples())
    snapshot["tokens"] = sorted(ApiToken.select(ApiToken.id, ApiToken.revoked_at).tuples())
    return snapshot


@pytest.fixture
def world(cfg, make_user):
    ops = make_user("ops", 1000, operator=True, budget=200)
    kim = make_user("kim", 500, budget=300)
    thing = things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post"})
    funds.open_deposit(kim, 700)
    people.create_token(kim, "kim's blog")
    return ops, kim, thing


@pytest.mark.parametrize("who", ["operator", "member", "anonymous"])
def test_every_state_changing_route_refuses_a_request_without_csrf_token(app, client, world, who):
    csrf_token_of_another_session = csrf_token(app.test_client())
    if who != "anonymous":
        signin(client, "ops" if who == "operator" else "kim")
    # The one exception: RFC 8058's one-click unsubscribe is posted by a mail
    # program, with its signed token as the proof (tests/test_notices.py).
    rules = [r for r in app.url_map.iter_rules() if r.methods & UNSAFE and r.endpoint != "web.unsubscribe"]
    assert len(rules) >= 20  # the walk found the routes (web, api, public, ...)
    before = state()
    seen = []
    for rule in rules:
        url = fill(rule)
        for method in sorted(rule.methods & UNSAFE):
            forms = {"amount": "1", "monthly_budget": "5", "title": "x", "url": "https://kim.example/p", "name": "x", "username": "zed",
                     "email": "zed@example.org", "password": "correct horse", "new_password": "correct horse2", "confirm": "correct horse2"}
            for token in (None, "forged-token", csrf_token_of_another_session):
                data = dict(forms, csrf_token=token) if token else forms
                response = client.open(url, method=method, data=data)
                seen.append((method, url, response.status_code))
                # The OAuth token endpoints and /rest/v2 take no cookie: an app's secret or token, else 401.
                if (who == "anonymous" and rule.rule.startswith("/api/")) or rule.rule.startswith(("/oauth/token", "/oauth/revoke", "/rest/", "/federation/")):
                    assert response.status_code in (400, 401, 403), (method, url, response.status_code)
                else:
                    assert response.status_code in (400, 403), (method, url, token, response.status_code, response.get_data(as_text=True)[:300])
    assert state() == before, seen


def test_the_same_request_with_a_token_goes_through(client, world):
    """The walk above would pass for a broken app that refuses everything."""
    signin(client, "kim")
    assert post(client, "/dashboard/budget", {"monthly_budget": "5"}, token_from="/dashboard").status_code == 302
    assert User.get(User.username == "kim").monthly_budget == 500


@pytest.fixture
def two(cfg, make_user):
    """Kim and Ann, each with a deposit, a token, a thing and a payout."""
    cfg = cfg.with_(min_payout=1)
    kim = make_user("kim", 400, budget=200)
    ann = make_user("ann", 400, budget=200)
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "Ann's post"})
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-10", 2))
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-10", 3))
    close_period(cfg, "2026-10", at("2026-11", 1, 1))
    ann_payout = funds.request_payout(cfg, ann, 77)
    ann_deposit = funds.open_deposit(ann, 4321)
    people.create_token(ann, "ann-secret-token-name")
    ann_token = ApiToken.get(ApiToken.user == ann)
    return kim, ann, anns, ann_deposit, ann_payout, ann_token


def test_a_member_cannot_see_anothers_deposits_payouts_tokens_or_settings(client, two):
    kim, ann, anns, ann_deposit, ann_payout, ann_token = two
    signin(client, "kim")
    pages = {p: client.get(p).get_data(as_text=True) for p in ("/dashboard", "/dashboard/deposits", "/dashboard/payouts", "/dashboard/tokens", "/dashboard/profile", "/dashboard/history", "/dashboard/things", "/invites")}
    for path, page in pages.items():
        assert ann_deposit.reference not in page, path
        assert "ann-secret-token-name" not in page, path
        assert "ann@example.org" not in page, path
        assert "€43.21" not in page, path
    assert "€0.77" not in pages["/dashboard/payouts"]
    assert client.get(f"/dashboard/things/{anns.id}").status_code == 404
    assert client.get("/operator").status_code == 403


def test_a_member_cannot_change_anothers_deposits_tokens_things_or_settings(client, two):
    kim, ann, anns, ann_deposit, ann_payout, ann_token = two
    signin(client, "kim")
    before = state()
    attempts = {
        f"/dashboard/deposits/{ann_deposit.id}/cancel": {},
        f"/dashboard/tokens/{ann_token.id}/revoke": {},
        f"/dashboard/things/{anns.id}": {"title": "mine now", "category": "text"},
        f"/dashboard/things/{anns.id}/archive": {},
        f"/operator/deposits/{ann_deposit.id}/confirm": {},
        f"/operator/payouts/{ann_payout.id}/paid": {},
        f"/operator/payouts/{ann_payout.id}/failed": {},
        f"/operator/people/{ann.id}/suspend": {},
        f"/operator/people/{kim.id}/make-operator": {},
        "/operator/check": {},
    }
    for path, data in attempts.items():
        response = post(client, path, data, token_from="/dashboard")
        assert response.status_code in (403, 404), (path, response.status_code)
    assert state() == before
    # Settings routes change only the signed-in person.
    post(client, "/dashboard/budget", {"monthly_budget": "9"}, token_from="/dashboard")
    post(client, "/dashboard/profile", {"display_name": "Kim K", "email": "kim@example.org"}, token_from="/dashboard")
    assert User.get_by_id(ann.id).monthly_budget == 200 and User.get_by_id(ann.id).display_name == "ann"
    assert User.get_by_id(kim.id).monthly_budget == 900 and User.get_by_id(kim.id).display_name == "Kim K"
    assert Deposit.get_by_id(ann_deposit.id).status == "pending"
    assert ledger.balance(ann.id, "funds") == 400 - 200


def test_pages_cannot_be_framed_and_carry_security_headers(client, make_user):
    make_user("kim", operator=True)
    signin(client, "kim")
    for path in ("/", "/signin", "/signup", "/dashboard", "/dashboard/deposits", "/dashboard/payouts", "/dashboard/tokens", "/operator", "/directory", "/users/kim", "/no-such-page"):
        response = client.get(path)
        assert response.mimetype == "text/html", path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"], path
        if path in ("/dashboard", "/dashboard/deposits", "/dashboard/payouts", "/dashboard/tokens", "/operator"):
            assert response.headers["Cache-Control"] == "no-store", path


def test_session_cookie_is_httponly_and_samesite(client, make_user):
    make_user("kim")
    response = post(client, "/signin", {"username": "kim", "password": "correct horse"})
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_user_text_is_escaped_everywhere(client, make_user, cfg):
    kim = make_user("kim", 500)
    people.update_settings(cfg, kim, {"display_name": "<script>alert(1)</script>", "about": "<img src=x onerror=alert(2)>"})
    things.register_thing(kim, {"url": "https://kim.example/x", "title": "<b onmouseover=alert(3)>t</b>", "tags": "<i>"})
    signin(client, "kim")
    for path in ("/users/kim", "/directory", "/dashboard", "/dashboard/things", "/dashboard/things/1"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "<b onmouseover" not in page, path
        for node in parse(page).iter():
            assert not any(k.startswith("on") for k in node.attrib), (path, node.tag, node.attrib)
    assert csrf_token(client, "/dashboard")
