"""What a person is told: a suspended account and an expired session are
named in words, not as a password mismatch or a CSRF internals message."""

from __future__ import annotations

from web_helpers import errors_of, parse, post, signin

from flattr_node.models import User


def test_a_suspended_person_is_told_they_are_suspended(client, make_user):
    kim = make_user("kim")
    User.update(is_suspended=True).where(User.id == kim.id).execute()
    response = post(client, "/signin", {"username": "kim", "password": "correct horse"})
    assert response.status_code == 422
    said = " ".join(errors_of(response))
    assert "suspended" in said and "do not match" not in said
    # A wrong password on a suspended account tells nothing more than on any other.
    response = post(client, "/signin", {"username": "kim", "password": "wrong horse"})
    said = " ".join(errors_of(response))
    assert "do not match" in said and "suspended" not in said


def test_an_expired_session_says_so_and_changes_nothing(app, make_user):
    make_user("kim", 300)
    browser = app.test_client()
    signin(browser, "kim")
    page = parse(browser.get("/dashboard"))
    token = next(i.get("value") for i in page.iter("input") if i.get("name") == "csrf_token")
    # The session ends (cookies cleared, a new secret key): the open page's form is sent.
    fresh = app.test_client()
    response = fresh.post("/dashboard/budget", data={"csrf_token": token, "monthly_budget": "5"})
    text = " ".join(parse(response).find(".//main").itertext())
    assert response.status_code == 403
    assert "session has expired" in text and "nothing was changed" in text
    assert "CSRF" not in text
    assert User.get(User.username == "kim").monthly_budget == 200
    # The API keeps its error body.
    api = fresh.post("/api/v1/deposits", json={"amount": 100}, headers={"Accept": "application/json"})
    assert api.status_code in (401, 403)
