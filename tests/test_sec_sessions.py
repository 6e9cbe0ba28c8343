"""Sessions the node can end (issue 10, item 6): a cookie copied before
sign-out stops working; a new password and "sign out everywhere" end the
other sessions; the CSRF token changes at sign-in; only a valid Bearer token
lets a request skip the CSRF check."""

from __future__ import annotations

from web_helpers import csrf_token, post, signin

from flattr_node.models import User


def copy_cookies(source, target) -> None:
    """What a thief does with a stolen cookie jar."""
    for cookie in source._cookies.values():
        target.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)


def test_a_cookie_copied_before_sign_out_stops_working(app, client, make_user):
    make_user("kim")
    signin(client, "kim")
    thief = app.test_client()
    copy_cookies(client, thief)
    assert thief.get("/dashboard").status_code == 200  # the copy works while kim is signed in
    assert client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")}).status_code == 302
    stale = thief.get("/dashboard")
    assert stale.status_code == 302 and "/signin" in stale.headers["Location"]


def test_sign_out_everywhere_ends_every_session(app, client, make_user):
    make_user("kim")
    laptop, phone = client, app.test_client()
    signin(laptop, "kim")
    signin(phone, "kim")
    page = laptop.get("/account/password").get_data(as_text=True)
    assert 'id="signout-everywhere"' in page
    done = post(laptop, "/signout/everywhere", token_from="/account/password")
    assert done.status_code == 302
    for browser in (laptop, phone):
        response = browser.get("/dashboard")
        assert response.status_code == 302 and "/signin" in response.headers["Location"]
    signin(phone, "kim")  # signing in again works
    assert phone.get("/dashboard").status_code == 200


def test_the_csrf_token_changes_at_sign_in(client, make_user):
    make_user("kim")
    before = csrf_token(client, "/signin")
    signin(client, "kim")
    after = csrf_token(client, "/dashboard")
    assert after != before
    # The token from before sign-in no longer passes.
    response = client.post("/dashboard/budget", data={"csrf_token": before, "monthly_budget": "3.00"})
    assert response.status_code == 403


def test_a_made_up_bearer_token_does_not_skip_the_csrf_check(client, make_user, api_for):
    kim = make_user("kim")
    signin(client, "kim")
    forged = {"Authorization": "Bearer not-a-real-token"}
    response = client.post("/dashboard/budget", data={"monthly_budget": "50.00"}, headers=forged)
    assert response.status_code == 403
    assert User.get_by_id(kim.id).monthly_budget == 200
    # The API still answers a bad token with 401, and a good token needs no CSRF token.
    assert client.patch("/api/v1/user", json={"display_name": "X"}, headers=forged).status_code == 401
    good = api_for(kim).patch("/user", {"display_name": "Kim"})
    assert good.status_code == 200 and good.json["display_name"] == "Kim"
