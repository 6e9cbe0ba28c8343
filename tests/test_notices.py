"""Notices (SPEC §9) against a real SMTP server on loopback (aiosmtpd):
each event is told once, by e-mail only when the person wants that kind,
with a one-click unsubscribe (RFC 8058) that needs no sign-in and works only
for its owner; without SMTP the notices stay on the dashboard."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from conftest import at
from web_helpers import csrf_token, parse, post, signin

from flattr_node import closing, mailer
from flattr_node.app import create_app
from flattr_node.models_sup import Notice, NoticeOptOut
from flattr_node.services import flattring, funds, notices, subscriptions, things


@pytest.fixture
def node(mail_cfg):
    return mail_cfg.with_(revenue_requires_giving=False)


@pytest.fixture
def web(node, db):
    app = create_app(node, bind_database=False)
    app.config.update(TESTING=True)
    return app.test_client()


def month_of_events(node, make_user):
    """kim: a deposit, a payout paid and one failed, a month closed, a
    subscription that could not flattr; ann: revenue."""
    kim = make_user("kim", 1000, budget=300)
    ann, bob = make_user("ann"), make_user("bob", 1000)
    a1 = things.register_thing(ann, {"url": "https://ann.example/1", "title": "Ann's first"})
    a2 = things.register_thing(ann, {"url": "https://ann.example/2", "title": "Ann's second"})
    b1 = things.register_thing(bob, {"url": "https://bob.example/1", "title": "Bob's"})
    for thing in (a1, a2, b1):
        flattring.flattr_thing(node, kim, thing.id, now=at("2026-03", 3))
    flattring.flattr_thing(node, bob, a1.id, now=at("2026-03", 4))
    closing.close_period(node, "2026-03", now=at("2026-04", 1, 0, 1))
    funds.request_payout(node.with_(min_payout=100), ann, 150)
    funds.request_payout(node.with_(min_payout=100), ann, 100)
    paid, failed = sorted(p.id for p in ann.payouts)
    funds.mark_paid(paid)
    funds.mark_paid(paid)  # again: told once
    funds.mark_failed(failed)
    poor = make_user("poor", 200)
    sub = subscriptions.subscribe(node, poor, a1.id, 3, now=at("2026-04", 2))
    closing.close_period(node, "2026-04", now=at("2026-05", 1, 0, 1))  # poor's funds go to ann
    subscriptions.run_due(node, now=at("2026-05", 1, 0, 2))
    return kim, ann, poor, sub


def test_each_event_is_mailed_once(node, make_user, smtp):
    _, inbox = smtp
    kim, ann, poor, sub = month_of_events(node, make_user)
    notices.queue_closed_periods(node)
    notices.queue_closed_periods(node)  # again: nothing new
    assert notices.send_pending(node) > 0
    assert notices.send_pending(node) == 0  # nothing twice
    assert inbox.subjects("kim@example.org") == ["March 2026 is closed: you gave €3.00", "Your deposit of €10.00 arrived"]
    ann_subjects = inbox.subjects("ann@example.org")
    assert ann_subjects == [
        "Your withdrawal of €1.00 failed",
        "Your withdrawal of €1.50 was paid",
        "€2.00 from 1 flattr on 1 thing",  # April: poor's subscription flattr
        "€4.00 from 3 flattrs on 2 things",  # March: kim's two and bob's one
    ], ann_subjects
    assert "Your subscription could not flattr “Ann's first”" in inbox.subjects("poor@example.org")
    kims = next(m for rcpt, m in inbox.messages if rcpt == ["kim@example.org"] and "closed" in str(m["Subject"]))
    body = kims.get_content()
    assert "In March 2026 you gave €3.00 to 3 things:" in body
    assert "- Ann's first: €1.00" in body and "- Bob's: €1.00" in body
    assert kims["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert kims["List-Unsubscribe"].startswith("<http://node.test/notices/unsubscribe/")
    assert len({m["Message-ID"] for _, m in inbox.messages}) == len(inbox.messages)
    assert Notice.select().where(Notice.mail != "sent").count() == 0


def test_two_senders_at_once_send_each_mail_once(node, make_user, smtp):
    _, inbox = smtp
    month_of_events(node, make_user)
    notices.queue_closed_periods(node)
    queued = Notice.select().count()
    from flattr_node.db import database

    def sender():
        with database.connection_context():
            notices.send_pending(node)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inbox.messages) == queued
    assert sorted(str(m["Message-ID"]) for _, m in inbox.messages) == sorted({str(m["Message-ID"]) for _, m in inbox.messages})


def test_a_kind_turned_off_is_not_mailed_but_shown(node, make_user, smtp, web):
    _, inbox = smtp
    kim = make_user("kim")
    signin(web, "kim")
    r = post(web, "/dashboard/notices", {k: "on" for k in ("mail_month_closed", "mail_revenue", "mail_payout", "mail_subscription", "mail_webhook_disabled")}, token_from="/dashboard/notices")
    assert r.status_code == 302
    assert [o.kind for o in NoticeOptOut.select().where(NoticeOptOut.user == kim.id)] == ["deposit_confirmed"]
    funds.confirm_deposit(funds.open_deposit(kim, 500).id)
    notices.send_pending(node)
    assert inbox.messages == []
    page = web.get("/dashboard/notices").get_data(as_text=True)
    assert "Your deposit of €5.00 arrived" in page
    boxes = {i.get("name"): i.get("checked") is not None for i in parse(page).iter("input") if i.get("type") == "checkbox"}
    assert boxes["mail_deposit_confirmed"] is False and boxes["mail_revenue"] is True


def test_one_click_unsubscribe_without_sign_in_and_only_for_its_owner(node, make_user, smtp, web):
    _, inbox = smtp
    kim, bob = make_user("kim", 500), make_user("bob", 500)
    notices.send_pending(node)
    link = next(m for rcpt, m in inbox.messages if rcpt == ["kim@example.org"])["List-Unsubscribe"].strip("<>")
    path = urlsplit(link).path
    # Opening the link (a mail scanner does) changes nothing; it asks.
    page = web.get(path)
    assert page.status_code == 200 and parse(page).find(".//button[@id='unsubscribe']") is not None
    assert NoticeOptOut.select().count() == 0
    # A forged or altered token does nothing, whoever sends it.
    token = path.rsplit("/", 1)[1]
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), notices.unsubscribe_token(node.with_(secret_key="other"), bob.id, "deposit_confirmed"), "x"):
        r = web.post(f"/notices/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 404, r.get_data(as_text=True)
    assert NoticeOptOut.select().count() == 0
    # RFC 8058: the mail program posts List-Unsubscribe=One-Click, no cookie, no CSRF token.
    r = web.post(path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "no more e-mails" in r.get_data(as_text=True)
    assert [(o.user_id, o.kind) for o in NoticeOptOut.select()] == [(kim.id, "deposit_confirmed")]
    inbox.messages.clear()
    funds.confirm_deposit(funds.open_deposit(kim, 100).id)
    funds.confirm_deposit(funds.open_deposit(bob, 100).id)
    notices.send_pending(node)
    assert [rcpt for rcpt, _ in inbox.messages] == [["bob@example.org"]]  # bob still gets his


def test_without_smtp_notices_stay_on_the_dashboard(cfg, make_user, client):
    kim = make_user("kim", 700)
    assert notices.send_pending(cfg) == 0
    signin(client, "kim")
    page = client.get("/dashboard/notices")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Your deposit of €7.00 arrived" in text and "This node sends no e-mail" in text
    assert Notice.get(Notice.user == kim.id).mail == "pending"
    assert csrf_token(client, "/dashboard/notices")


def test_a_notice_is_mailed_right_after_its_request_commits(node, make_user, smtp, web):
    """No wait for the one-minute job: the request that confirms a deposit
    hands its notice to the mailer's thread once it has committed. The
    queue row still decides: the job that runs next sends nothing twice."""
    _, inbox = smtp
    make_user("op", operator=True)
    kim = make_user("kim")
    deposit = funds.open_deposit(kim, 500)
    signin(web, "op")
    r = web.post(f"/api/v1/admin/deposits/{deposit.reference}/confirm", headers={"X-CSRFToken": csrf_token(web, "/dashboard")})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert mailer.wait(10)  # the mailer's thread is done: nothing else ran send_pending
    assert inbox.subjects("kim@example.org") == ["Your deposit of €5.00 arrived"]
    assert Notice.get(Notice.user == kim.id).mail == "sent"
    assert notices.send_pending(node) == 0
    assert len(inbox.messages) == 1


def test_a_command_mails_the_notices_it_queued_before_it_exits(cfg, db, make_user, smtp, tmp_path):
    """`flattr-node deposit confirm` in its own process: the mail is out when
    the command returns, not at the next scheduler job."""
    from nodeproc import cli, write_config

    _, inbox = smtp
    deposit = funds.open_deposit(make_user("kim"), 500)
    config = write_config(
        tmp_path / "config.toml", cfg.database, smtp_host="127.0.0.1", smtp_port=smtp[0], smtp_from="node@node.test", smtp_starttls=False
    )
    cli(config, "deposit", "confirm", deposit.reference)
    assert inbox.subjects("kim@example.org") == ["Your deposit of €5.00 arrived"]
    assert Notice.get(Notice.user == deposit.user_id).mail == "sent"
