"""People over the API: /user, /users/{name}, /users/{name}/things; R1, R4, R5
and the 401 cases."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import Api
from conftest import assert_error as shared_assert_error

from flattr_node import ledger
from flattr_node.models import ApiToken, User
from flattr_node.services import people, things


def assert_error(response, status, code, field=None):
    """Here the description must also name the field."""
    body = shared_assert_error(response, status, code, field)
    if field is not None:
        assert field in body["error_description"], body
    return body


def assert_iso_with_offset(text):
    moment = dt.datetime.fromisoformat(text)
    assert moment.tzinfo is not None and moment.utcoffset() is not None, text


def test_get_user_shows_oneself_with_integer_amounts_beside_currency(make_user, api_for):
    kim = make_user("kim", 500, budget=300)
    r = api_for(kim).get("/user")
    assert r.status_code == 200
    me = r.get_json()
    for key in ("username", "display_name", "about", "url", "created_at", "email", "currency", "funds",
                "revenue", "monthly_budget", "monthly_topup", "flattrs_this_period"):
        assert key in me, key
    assert me["username"] == "kim" and me["email"] == "kim@example.org"
    assert me["currency"] == "EUR"
    assert (me["funds"], me["revenue"], me["monthly_budget"], me["monthly_topup"]) == (500, 0, 300, 0)
    for key in ("funds", "revenue", "monthly_budget", "monthly_topup", "flattrs_this_period"):
        assert type(me[key]) is int, key
    assert_iso_with_offset(me["created_at"])


def test_patch_user_sets_budget_topup_and_profile(cfg, make_user, api_for):
    kim = make_user("kim", 500)
    r = api_for(kim).patch("/user", json={"monthly_budget": 1000, "monthly_topup": 200, "display_name": "Kim K.", "about": "writes\nthings"})
    assert r.status_code == 200, r.get_json()
    me = r.get_json()
    assert (me["monthly_budget"], me["monthly_topup"], me["display_name"], me["about"]) == (1000, 200, "Kim K.", "writes\nthings")
    stored = User.get_by_id(kim.id)
    assert (stored.monthly_budget, stored.monthly_topup) == (1000, 200)
    assert stored.topup_set_at is not None


@pytest.mark.parametrize("budget", [200, 10000, 5000])
def test_budget_within_limits_is_accepted(make_user, api_for, budget):
    r = api_for(make_user("kim")).patch("/user", json={"monthly_budget": budget})
    assert r.status_code == 200 and r.get_json()["monthly_budget"] == budget


@pytest.mark.parametrize("budget", [199, 10001, 0, -200, 10**20])
def test_budget_outside_limits_is_refused(make_user, api_for, budget):
    kim = make_user("kim", budget=300)
    r = api_for(kim).patch("/user", json={"monthly_budget": budget})
    assert_error(r, 422, "validation", "monthly_budget")
    assert User.get_by_id(kim.id).monthly_budget == 300


def test_budget_limits_follow_the_config(cfg, make_user, client):
    from flattr_node.app import create_app

    app = create_app(cfg.with_(min_monthly_budget=500, max_monthly_budget=600), bind_database=False)
    kim = make_user("kim")
    api = Api(app.test_client(), people.create_token(kim))
    assert_error(api.patch("/user", json={"monthly_budget": 400}), 422, "validation", "monthly_budget")
    assert_error(api.patch("/user", json={"monthly_budget": 700}), 422, "validation", "monthly_budget")
    assert api.patch("/user", json={"monthly_budget": 550}).status_code == 200


@pytest.mark.parametrize("topup", [0, 200, 10000])
def test_topup_zero_or_at_least_the_minimum(make_user, api_for, topup):
    r = api_for(make_user("kim")).patch("/user", json={"monthly_topup": topup})
    assert r.status_code == 200 and r.get_json()["monthly_topup"] == topup


@pytest.mark.parametrize("topup", [1, 199, -1, 10**20])
def test_topup_below_the_minimum_is_refused(make_user, api_for, topup):
    kim = make_user("kim")
    assert_error(api_for(kim).patch("/user", json={"monthly_topup": topup}), 422, "validation", "monthly_topup")
    assert User.get_by_id(kim.id).monthly_topup == 0


@pytest.mark.parametrize("field", ["monthly_budget", "monthly_topup"])
@pytest.mark.parametrize("value", [2.5, 300.0, "300", "3.00", True, False, None, [300], {"cents": 300}])
def test_money_fields_must_be_json_integers(make_user, api_for, field, value):
    """R1: no float ever holds money, and a string or bool is not an amount either."""
    kim = make_user("kim", budget=300)
    assert_error(api_for(kim).patch("/user", json={field: value}), 422, "validation", field)
    stored = User.get_by_id(kim.id)
    assert (stored.monthly_budget, stored.monthly_topup) == (300, 0)


def test_a_patch_is_all_or_nothing(make_user, api_for):
    kim = make_user("kim", budget=300)
    r = api_for(kim).patch("/user", json={"display_name": "New", "monthly_budget": 1})
    assert_error(r, 422, "validation", "monthly_budget")
    assert User.get_by_id(kim.id).display_name == "kim"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "root"}, "username"),
        ({"is_operator": True}, "is_operator"),
        ({"funds": 10**6}, "funds"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"display_name": "two\nlines"}, "display_name"),
        ({"display_name": 5}, "display_name"),
        ({"about": "x" * 2001}, "about"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"show_flattrs": "maybe"}, "show_flattrs"),
    ],
)
def test_patch_refuses_what_cannot_be_changed_or_is_bad(make_user, api_for, payload, field):
    kim = make_user("kim")
    assert_error(api_for(kim).patch("/user", json=payload), 422, "validation", field)
    stored = User.get_by_id(kim.id)
    assert not stored.is_operator and stored.username == "kim" and stored.display_name == "kim"
    assert ledger.balance(kim.id, "funds") == 0


def test_patch_with_malformed_json_or_a_non_object_is_invalid_request(make_user, api_for):
    api = api_for(make_user("kim"))
    r = api.client.patch("/api/v1/user", data=b"{not json", headers={**api.headers, "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_request")
    for payload in (b"[1, 2]", b'"text"', b"42", b"null", b"\xff\xfe"):
        r = api.client.patch("/api/v1/user", data=payload, headers={**api.headers, "Content-Type": "application/json"})
        assert_error(r, 400, "invalid_request")


# --- 401 -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/user", "/user/flattrs", "/user/incoming", "/deposits", "/payouts"])
def test_no_auth_is_unauthorized(anon, path):
    assert_error(anon.get(path), 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    ["Bearer nonsense", "Bearer ", "Bearer", "Basic a2ltOnB3", "fn_abc", "Token fn_abc"],
)
def test_a_bad_authorization_header_is_unauthorized(make_user, client, header):
    make_user("kim")
    r = client.get("/api/v1/user", headers={"Authorization": header})
    assert_error(r, 401, "unauthorized")


def test_a_revoked_token_is_unauthorized(make_user, client):
    kim = make_user("kim")
    token = people.create_token(kim, "laptop")
    api = Api(client, token)
    assert api.get("/user").status_code == 200
    people.revoke_token(kim, ApiToken.get(ApiToken.user == kim).id)
    assert_error(api.get("/user"), 401, "unauthorized")
    assert_error(api.patch("/user", json={"monthly_budget": 500}), 401, "unauthorized")
    assert User.get_by_id(kim.id).monthly_budget == 200


def test_a_suspended_persons_token_is_unauthorized(make_user, api_for):
    kim = make_user("kim", 500)
    api = api_for(kim)
    assert api.get("/user").status_code == 200
    User.update(is_suspended=True).where(User.id == kim.id).execute()
    assert_error(api.get("/user"), 401, "unauthorized")
    assert_error(api.post("/deposits", json={"amount": 500}), 401, "unauthorized")


def test_only_the_tokens_digest_is_stored(make_user):
    kim = make_user("kim")
    token = people.create_token(kim, "x")
    row = ApiToken.get(ApiToken.user == kim)
    assert token not in row.digest and len(row.digest) == 64


# --- public profiles ------------------------------------------------------


def test_public_profile_hides_money_and_email(make_user, anon, api_for):
    make_user("ann", 700)
    for api in (anon, api_for(make_user("kim"))):
        r = api.get("/users/ann")
        assert r.status_code == 200
        profile = r.get_json()
        assert profile["username"] == "ann"
        for key in ("display_name", "about", "url", "created_at"):
            assert key in profile
        for secret in ("email", "funds", "revenue", "monthly_budget", "monthly_topup"):
            assert secret not in profile
        assert_iso_with_offset(profile["created_at"])


def test_profile_lookup_ignores_case_and_unknown_is_not_found(make_user, anon):
    make_user("ann")
    assert anon.get("/users/ANN").get_json()["username"] == "ann"
    assert_error(anon.get("/users/nobody"), 404, "not_found")
    assert_error(anon.get("/users/nobody/things"), 404, "not_found")


def test_hidden_things_are_listed_only_for_their_owner(make_user, anon, api_for):
    ann = make_user("ann")
    kim = make_user("kim")
    things.register_thing(ann, {"url": "https://ann.example/public", "title": "public"})
    things.register_thing(ann, {"url": "https://ann.example/hidden", "title": "hidden", "hidden": True})
    archived = things.register_thing(ann, {"url": "https://ann.example/old", "title": "old"})
    things.archive_thing(ann, archived.id)

    def titles(api):
        r = api.get("/users/ann/things")
        assert r.status_code == 200
        return sorted(t["title"] for t in r.get_json())

    assert titles(anon) == ["public"]
    assert titles(api_for(kim)) == ["public"]
    assert titles(api_for(ann)) == ["hidden", "public"]


def test_cookie_requests_that_change_state_need_a_csrf_token(client, make_user):
    """SPEC §3: the session cookie works for the API, but a state-changing
    request by cookie needs the CSRF token; a token request needs none."""
    from web_helpers import csrf_token

    kim = make_user("kim")
    token = csrf_token(client)
    signed_in = client.post("/signin", data={"csrf_token": token, "username": "kim", "password": "correct horse"})
    assert signed_in.status_code in (302, 303), signed_in.status_code
    assert client.get("/api/v1/user").get_json()["username"] == "kim"
    assert_error(client.patch("/api/v1/user", json={"monthly_budget": 500}), 403, "forbidden")
    assert User.get_by_id(kim.id).monthly_budget == 200
    r = client.patch("/api/v1/user", json={"monthly_budget": 500}, headers={"X-CSRFToken": csrf_token(client)})
    assert r.status_code == 200, r.get_json()
    assert User.get_by_id(kim.id).monthly_budget == 500
