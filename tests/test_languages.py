"""Languages (SPEC §9): English, German and Swedish, chosen by
Accept-Language and by a switch on every page (remembered for the person,
a cookie for visitors), `<html lang>` saying which; every string of the
templates and forms in the gettext catalogs, complete in de and sv.

These tests do not depend on the database engine: they run in the SQLite
pass only."""

from __future__ import annotations

import pytest
from web_helpers import csrf_token, parse, post, signin

from flattr_node.models import User

pytestmark = pytest.mark.sqlite_only


def html_lang(response) -> str:
    doc = parse(response)
    root = doc.getroot() if hasattr(doc, "getroot") else doc
    return root.get("lang")


def test_accept_language_chooses_and_html_lang_says_so(client):
    assert html_lang(client.get("/")) == "en"
    assert html_lang(client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})) == "de"
    assert html_lang(client.get("/", headers={"Accept-Language": "sv-SE"})) == "sv"
    assert html_lang(client.get("/", headers={"Accept-Language": "fr-FR, sv;q=0.3"})) == "sv"
    assert html_lang(client.get("/", headers={"Accept-Language": "fr-FR"})) == "en"


def test_a_visitors_switch_is_a_cookie(client):
    r = client.get("/language/sv?next=/directory")
    assert r.status_code == 302 and r.headers["Location"].endswith("/directory")
    assert "lang=sv" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
    assert html_lang(client.get("/", headers={"Accept-Language": "de"})) == "sv"  # the switch wins
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert client.get(f"/language/de?next={bad}").headers["Location"] in ("/", "http://localhost/")
    assert client.get("/language/xx").status_code == 404


def test_a_persons_switch_is_remembered_for_them(app, client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    links = parse(client.get("/dashboard")).findall(".//form[@action='/language']//button")
    assert [b.get("value") for b in links] == ["en", "de", "sv"]
    r = post(client, "/language", {"lang": "de", "next": "/dashboard"}, token_from="/dashboard")
    assert r.status_code == 302
    assert User.get_by_id(kim.id).language == "de"
    other = app.test_client()  # another browser, no cookie: signing in brings German
    signin(other, "kim")
    assert html_lang(other.get("/dashboard", headers={"Accept-Language": "en"})) == "de"
    # No CSRF token, no change.
    assert other.post("/language", data={"lang": "sv"}).status_code in (400, 403)
    assert User.get_by_id(kim.id).language == "de"
    assert csrf_token(other, "/dashboard")


@pytest.mark.parametrize("lang", ["en", "de", "sv"])
def test_every_page_renders_in_each_language(app, client, make_user, cfg, lang):
    """Every GET page of the web, for a member and for a visitor: 200, in
    that language (a wrong plural count or placeholder would be a 500)."""
    from conftest import at

    from flattr_node import closing
    from flattr_node.services import flattring, funds, notices, subscriptions, things

    node = cfg.with_(revenue_requires_giving=False)
    kim, ann = make_user("kim", 2000, operator=True), make_user("ann", 1000)
    post = things.register_thing(ann, {"url": "https://ann.example/1", "title": "Ann's"})
    mine = things.register_thing(kim, {"url": "https://kim.example/1", "title": "Kim's"})
    flattring.flattr_thing(node, kim, post.id, now=at("2026-09", 3))
    flattring.flattr_thing(node, ann, mine.id, now=at("2026-09", 4))
    closing.close_period(node, "2026-09", now=at("2026-10", 1, 0, 1))
    funds.open_deposit(kim, 1234)
    subscriptions.subscribe(node, kim, post.id, 3)
    notices.queue_closed_periods(node)
    client.set_cookie("lang", lang)
    visitor = ["/", "/directory", "/users/ann", f"/things/{post.id}", "/signin", "/signup", "/password/forgot"]
    for path in visitor:
        r = client.get(path)
        assert r.status_code == 200 and html_lang(r) == lang, (path, r.status_code)
    signin(client, "kim")
    member = [
        "/dashboard", "/dashboard/history", "/dashboard/history?period=2026-09", "/dashboard/deposits", "/dashboard/payouts",
        "/dashboard/things", f"/dashboard/things/{mine.id}", "/dashboard/tokens", "/dashboard/subscriptions",
        "/dashboard/notices", "/dashboard/profile", "/invites", "/account/password", "/operator", "/sites",
        "/dashboard/bank", "/dashboard/statement", "/dashboard/webhooks", "/dashboard/apps", "/operator/bank",
        f"/things/{post.id}", f"/things/{post.id}/flattr", f"/things/{mine.id}/flattr",
    ]  # fmt: skip
    for path in member:
        r = client.get(path)
        assert r.status_code == 200 and html_lang(r) == lang, (path, r.status_code)
    done = post_form(client, f"/things/{mine.id}/flattr")
    assert done.status_code in (201, 403) and html_lang(done) == lang


def post_form(client, path):
    return post(client, path, {}, token_from=path)


def test_a_german_persons_failed_form_speaks_german(client, make_user):
    """What a service refuses reaches the page in the person's language,
    amounts in their format; the API says the same in English (SPEC §3)."""
    from web_helpers import errors_of, text_of

    make_user("kim", 500)
    signin(client, "kim")
    post(client, "/language", {"lang": "de", "next": "/dashboard"}, token_from="/dashboard")
    r = post(client, "/dashboard/budget", {"monthly_budget": "1"}, token_from="/dashboard")
    assert r.status_code == 422
    assert text_of(parse(r), "monthly_budget-error") == "Das Monatsbudget muss zwischen 2,00 € und 100,00 € liegen."
    r = post(client, "/dashboard/things", {"url": "ftp://kim.example/1", "title": "Mine", "category": "text"}, token_from="/dashboard/things")
    assert r.status_code == 422 and errors_of(r) == ["url muss eine http://- oder https://-URL sein"]
    r = client.get("/dashboard/things/999999")  # a service's not_found, on the error page
    assert r.status_code == 404 and "du hast kein Ding mit dieser ID" in r.get_data(as_text=True)
    r = client.get("/no/such/page")  # werkzeug's own English sentence is replaced
    assert r.status_code == 404 and "Unter dieser Adresse gibt es nichts" in r.get_data(as_text=True)
    api = client.post("/api/v1/things", json={"url": "ftp://kim.example/1", "title": "Mine"}, headers={"Accept-Language": "de", "X-CSRFToken": csrf_token(client, "/dashboard")})
    assert api.status_code == 422 and api.get_json()["error_description"] == "url must be an http:// or https:// URL"


def test_a_swedish_visitor_sees_swedish_errors(client, make_user):
    kim = make_user("kim")
    client.set_cookie("lang", "sv")
    r = post(client, "/signup", {"username": "kim", "email": "x@example.org", "password": "correct horse", "password2": "correct horse"}, token_from="/signup")
    from web_helpers import errors_of

    assert r.status_code == 422 and errors_of(r) == ["användarnamnet 'kim' är upptaget"]
    assert kim


def test_the_webhook_disabled_notice_speaks_the_language(cfg):
    """Its reason too: the error keeps its message and values in the notice."""
    import json

    from flattr_node.i18n import said
    from flattr_node.models_sup import Notice
    from flattr_node.services import notices

    error = said("the endpoint answered HTTP %(status)s", status=500)
    params = {"url": "https://kim.example/hook", "attempts": 9, "error": error, "error_said": error.as_dict()}
    notice = Notice(kind="webhook_disabled", params=json.dumps(params))
    _, text = notices.describe(cfg, notice, "de")
    assert text.startswith("Der Knoten sendet keine Ereignisse mehr an https://kim.example/hook: eine Nachricht ist 9-mal "
                           "fehlgeschlagen (der Endpunkt antwortete mit HTTP 500).")  # fmt: skip
    _, text = notices.describe(cfg, notice, "sv")
    assert "ett meddelande misslyckades 9 gånger (slutpunkten svarade med HTTP 500)" in text
    _, text = notices.describe(cfg, notice, "en")
    assert "a message failed 9 times (the endpoint answered HTTP 500)" in text


def test_password_mails_speak_the_persons_language(mail_cfg, smtp, make_user):
    from flattr_node import mailer
    from flattr_node.services import passwords

    kim = make_user("kim")
    User.update(language="sv").where(User.id == kim.id).execute()
    passwords.request_reset(mail_cfg, "kim@example.org", lambda token: f"http://node.test/password/reset/{token}")
    assert mailer.wait(10)
    (_, message), = smtp[1].messages
    assert str(message["Subject"]) == "Återställ ditt lösenord på flattr-node"
    assert "Någon (förhoppningsvis du) har bett om att återställa lösenordet för kim" in message.get_content()


def test_said_is_english_text_that_a_page_translates(app):
    import copy
    import pickle

    from flattr_node.i18n import Amount, said, say

    words = said("Amount must be at least %(least)s.", least=Amount(150, "EUR"))
    assert words == "Amount must be at least €1.50."  # what the API and the CLI say
    assert copy.deepcopy(words) == words and pickle.loads(pickle.dumps(words)).msgid == words.msgid
    with app.test_request_context("/", headers={"Accept-Language": "de"}):
        assert say(words) == "Der Betrag muss mindestens 1,50\xa0€ sein."
