"""Accounts under attack (issue 10, items 3 and 5): a token cannot change the
e-mail address (a reset would then hand the account over); the e-mail changes
only on the web with the current password, and the old address is told;
current-password guesses are throttled; asking for a password reset answers
the same whether or not the address has an account, with SMTP up or down."""

from __future__ import annotations

import logging

import pytest
from conftest import assert_error
from nodeproc import free_port
from test_web_auth import mail_client, main_text  # noqa: F401  (a fixture)
from web_helpers import errors_of, post, signin

from flattr_node import mailer
from flattr_node.app import create_app
from flattr_node.models import User


def test_a_token_cannot_change_the_email(make_user, api_for, client):
    kim = make_user("kim")
    body = assert_error(api_for(kim).patch("/user", {"email": "mallory@evil.example"}), 403, "forbidden", "email")
    assert "only on the node's web page" in body["error_description"]
    # Nor with other fields beside it, nor by the signed-in browser's cookie through the API.
    assert api_for(kim).patch("/user", {"display_name": "K", "email": "m@evil.example"}).status_code == 403
    signin(client, "kim")
    assert client.patch("/api/v1/user", json={"email": "m@evil.example"}).status_code in (403, 400)
    assert User.get_by_id(kim.id).email == "kim@example.org"
    assert User.get_by_id(kim.id).display_name == "kim"  # all or nothing


def profile(client, **data):
    current = {"display_name": "Kim", "email": "kim@example.org", "url": "", "about": ""}
    return post(client, "/dashboard/profile", {**current, **data}, token_from="/dashboard/profile")


def test_the_email_changes_on_the_web_with_the_password_and_the_old_address_is_told(mail_client, make_user):  # noqa: F811
    client, inbox = mail_client
    kim = make_user("kim")
    signin(client, "kim")
    missing = profile(client, email="new@example.org")
    assert missing.status_code == 422 and any("current password" in e for e in errors_of(missing))
    wrong = profile(client, email="new@example.org", current_password="not it at all")
    assert wrong.status_code == 422
    assert User.get_by_id(kim.id).email == "kim@example.org"
    assert profile(client, display_name="Kim K").status_code == 302  # other fields need no password

    ok = profile(client, email="new@example.org", current_password="correct horse")
    assert ok.status_code == 302
    assert User.get_by_id(kim.id).email == "new@example.org"
    assert mailer.wait(10)
    told = [m for rcpt, m in inbox.messages if rcpt == ["kim@example.org"]]
    assert len(told) == 1 and "new@example.org" in told[0].get_content()


def test_current_password_guesses_are_throttled(client, make_user):
    make_user("kim")
    signin(client, "kim")
    guess = {"new_password": "a new secret", "confirm": "a new secret"}
    statuses = [
        post(client, "/account/password", {**guess, "current_password": f"guess {i}"}, token_from="/dashboard").status_code
        for i in range(11)
    ]
    assert statuses[:10] == [422] * 10 and statuses[10] == 429
    right = post(client, "/account/password", {**guess, "current_password": "correct horse"}, token_from="/dashboard")
    assert right.status_code == 429  # even the right one waits
    assert profile(client, email="new@example.org", current_password="correct horse").status_code == 429


@pytest.fixture
def smtp_down_client(cfg, db):
    node = cfg.with_(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="node@node.test", smtp_starttls=False)
    app = create_app(node, bind_database=False)
    app.config.update(TESTING=True)
    return app.test_client()


def test_a_reset_with_smtp_down_does_not_tell_who_has_an_account(smtp_down_client, make_user, caplog):
    client = smtp_down_client
    make_user("kim")
    caplog.set_level(logging.ERROR, logger="flattr_node.mailer")
    unknown = post(client, "/password/forgot", {"email": "nobody@example.org"})
    known = post(client, "/password/forgot", {"email": "kim@example.org"})
    assert (known.status_code, unknown.status_code) == (200, 200)
    assert main_text(known) == main_text(unknown)
    assert mailer.wait(30)
    failures = [r for r in caplog.records if "could not send" in r.getMessage()]
    assert len(failures) == 1 and "kim@example.org" in failures[0].getMessage()
