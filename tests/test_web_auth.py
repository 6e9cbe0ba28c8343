"""Sign-up modes, invites, rate-limited sign-in, password change and reset
by e-mail against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from web_helpers import csrf_token, errors_of, parse, post, signin

from flattr_node import mailer
from flattr_node.app import create_app
from flattr_node.models import User, utcnow
from flattr_node.models_web import Invite, PasswordReset
from flattr_node.services import passwords


def sign_up(client, username, code=None, password="correct horse"):
    data = {"username": username, "email": f"{username}@example.org", "password": password}
    if code is not None:
        data["code"] = code
    return post(client, "/signup", data, token_from="/signin")


def test_first_person_on_a_fresh_node_becomes_the_operator(client):
    page = client.get("/signup")
    assert page.status_code == 200 and "you will be its" in page.get_data(as_text=True)
    assert sign_up(client, "ops").status_code == 302
    client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert sign_up(client, "kim").status_code == 302
    roles = dict(User.select(User.username, User.is_operator).tuples())
    assert roles == {"ops": True, "kim": False}


def test_sign_up_errors_stand_next_to_their_field_and_create_nobody(client, make_user):
    make_user("kim")
    response = sign_up(client, "kim")
    assert response.status_code == 422
    assert any("taken" in e for e in errors_of(response))
    doc = parse(response)
    field = next(n for n in doc.iter("input") if n.get("name") == "username")
    assert field.get("aria-invalid") == "true"
    assert User.select().count() == 1


def test_invite_mode_needs_an_unused_members_code(app, client, cfg, make_user):
    app.config["NODE"] = cfg.with_(signup="invite", invites_per_member=2)
    ops = make_user("ops", operator=True)
    assert sign_up(client, "kim").status_code == 422  # no code
    assert any("invite code" in e for e in errors_of(sign_up(client, "kim", "ZZZZZ-ZZZZZ")))
    assert User.select().count() == 1

    signin(client, "ops")
    page = client.get("/invites").get_data(as_text=True)
    codes = re.findall(r"<code>([0-9A-Z]{5}-[0-9A-Z]{5})</code>", page)
    assert len(codes) == 2 and Invite.select().where(Invite.inviter == ops).count() == 2
    client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")})

    assert sign_up(client, "kim", codes[0].lower().replace("-", " ")).status_code == 302  # typed loosely
    kim = User.get(User.username == "kim")
    assert not kim.is_operator
    client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")})
    again = sign_up(client, "bob", codes[0])
    assert again.status_code == 422 and any("used" in e for e in errors_of(again))
    assert not User.select().where(User.username == "bob").exists()

    signin(client, "ops")
    page = client.get("/invites").get_data(as_text=True)
    assert "/users/kim" in page and "not used yet" in page  # who used which code
    assert len(re.findall(r"<code>", page)) == 2  # no new codes beyond invites_per_member


def test_closed_sign_up_refuses_everyone(app, client, cfg, make_user):
    app.config["NODE"] = cfg.with_(signup="closed")
    make_user("ops", operator=True)
    assert client.get("/signup").status_code == 403
    response = sign_up(client, "kim")
    assert response.status_code == 403
    assert not User.select().where(User.username == "kim").exists()


def test_sign_in_is_rate_limited(client, make_user):
    make_user("kim")
    token = csrf_token(client)
    statuses = [
        client.post("/signin", data={"csrf_token": token, "username": "kim", "password": "wrong password"}).status_code
        for _ in range(11)
    ]
    assert statuses[:10] == [422] * 10
    assert statuses[10] == 429
    response = client.post("/signin", data={"csrf_token": token, "username": "kim", "password": "correct horse"})
    assert response.status_code == 429  # even the right password waits
    assert "rate_limit_exceeded" in response.get_data(as_text=True)
    api = client.post("/signin", data={"csrf_token": token, "username": "kim", "password": "x"}, headers={"Accept": "application/json"})
    assert api.status_code == 429 and api.get_json()["error"] == "rate_limit_exceeded"


def test_password_change(client, make_user):
    make_user("kim")
    signin(client, "kim")
    wrong = post(client, "/account/password", {"current_password": "nope nope", "new_password": "a new secret", "confirm": "a new secret"}, token_from="/dashboard")
    assert wrong.status_code == 422 and any("current password" in e for e in errors_of(wrong))
    mismatch = post(client, "/account/password", {"current_password": "correct horse", "new_password": "a new secret", "confirm": "other"}, token_from="/dashboard")
    assert mismatch.status_code == 422
    ok = post(client, "/account/password", {"current_password": "correct horse", "new_password": "a new secret", "confirm": "a new secret"}, token_from="/dashboard")
    assert ok.status_code == 302
    client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert post(client, "/signin", {"username": "kim", "password": "correct horse"}).status_code == 422
    signin(client, "kim", "a new secret")


# --- reset by e-mail, against a real SMTP server ---------------------------------


@pytest.fixture
def mail_client(mail_cfg, db, smtp):
    app = create_app(mail_cfg, bind_database=False)
    app.config.update(TESTING=True)
    return app.test_client(), smtp[1]


def main_text(response) -> str:
    return " ".join("".join(next(parse(response).iter("main")).itertext()).split())


def link_in(message) -> str:
    body = message.get_content()
    return re.search(r"http://node\.test(/password/reset/\S+)", body).group(1)


def test_password_reset_by_email(mail_client, make_user):
    client, inbox = mail_client
    make_user("kim")
    nobody = post(client, "/password/forgot", {"email": "nobody@example.org"})
    assert nobody.status_code == 200 and "If an account uses that address" in nobody.get_data(as_text=True)
    assert inbox.messages == []

    sent = post(client, "/password/forgot", {"email": "kim@example.org"})
    assert main_text(sent) == main_text(nobody)  # the page does not tell who has an account
    assert mailer.wait(10)  # the mail goes out after the answer
    assert len(inbox.messages) == 1
    rcpt, message = inbox.messages[0]
    assert rcpt == ["kim@example.org"] and message["From"] == "node@node.test"
    path = link_in(message)
    token = path.rsplit("/", 1)[1]
    assert not PasswordReset.select().where(PasswordReset.digest == token).exists()  # stored hashed only

    assert client.get(path).status_code == 200
    short = post(client, path, {"new_password": "short", "confirm": "short"})
    assert short.status_code == 422
    done = post(client, path, {"new_password": "brand new secret", "confirm": "brand new secret"})
    assert done.status_code == 302
    signin(client, "kim", "brand new secret")
    assert client.get(path).status_code == 404  # single use
    assert post(client, path, {"new_password": "another secret", "confirm": "another secret"}).status_code == 404


def test_reset_tokens_expire(mail_client, make_user):
    client, inbox = mail_client
    make_user("kim")
    post(client, "/password/forgot", {"email": "kim@example.org"})
    assert mailer.wait(10)
    token = link_in(inbox.messages[0][1]).rsplit("/", 1)[1]
    later = utcnow() + passwords.RESET_VALID + dt.timedelta(seconds=1)
    with pytest.raises(Exception, match="expired"):
        passwords.reset_password(token, "brand new secret", now=later)
    signin(client, "kim")  # the old password still works


def test_without_smtp_the_reset_page_says_to_ask_the_operator(client):
    page = client.get("/password/forgot").get_data(as_text=True)
    assert "sends no e-mail" in page
    response = post(client, "/password/forgot", {"email": "kim@example.org"})
    assert response.status_code == 422


def test_only_one_first_person_becomes_operator_when_sign_ups_race(cfg, db):
    """Several people sign up at the same instant on a fresh node (threads,
    one connection each): exactly one of them is the operator."""
    import threading

    from flattr_node import db as dbmod
    from flattr_node.services import invites

    barrier = threading.Barrier(4)
    errors = []

    def sign(name):
        with dbmod.database.connection_context():
            barrier.wait()
            try:
                invites.sign_up(cfg, name, f"{name}@example.org", "correct horse")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

    threads = [threading.Thread(target=sign, args=(f"racer{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert User.select().count() == 4
    assert User.select().where(User.is_operator).count() == 1


def test_one_invite_code_racing_lets_in_exactly_one(cfg, db, make_user):
    import threading

    from flattr_node import db as dbmod
    from flattr_node.services import invites

    cfg = cfg.with_(signup="invite", invites_per_member=1)
    ops = make_user("ops", operator=True)
    code = invites.invites_of(cfg, ops)[0].code
    barrier = threading.Barrier(4)
    outcomes = []

    def sign(name):
        with dbmod.database.connection_context():
            barrier.wait()
            try:
                invites.sign_up(cfg, name, f"{name}@example.org", "correct horse", code)
                outcomes.append("in")
            except Exception as e:  # noqa: BLE001 - counted below
                outcomes.append(getattr(e, "code", repr(e)))

    threads = [threading.Thread(target=sign, args=(f"racer{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["in", "validation", "validation", "validation"]
    assert User.select().count() == 2
    assert Invite.get(Invite.code == code).used_by.username.startswith("racer")


def test_a_new_password_signs_out_the_other_sessions(app, client, make_user):
    make_user("kim")
    other = app.test_client()
    signin(client, "kim")
    signin(other, "kim")
    assert other.get("/dashboard").status_code == 200
    changed = post(client, "/account/password", {"current_password": "correct horse", "new_password": "a new secret", "confirm": "a new secret"}, token_from="/dashboard")
    assert changed.status_code == 302
    assert client.get("/dashboard").status_code == 200  # this session stays
    stale = other.get("/dashboard")
    assert stale.status_code == 302 and "/signin" in stale.headers["Location"]


def test_a_password_reset_signs_out_every_session(mail_client, make_user):
    client, inbox = mail_client
    make_user("kim")
    signed_in = client.application.test_client()
    signin(signed_in, "kim")
    post(client, "/password/forgot", {"email": "kim@example.org"})
    assert mailer.wait(10)
    path = link_in(inbox.messages[0][1])
    assert post(client, path, {"new_password": "brand new secret", "confirm": "brand new secret"}).status_code == 302
    assert signed_in.get("/dashboard").status_code == 302
