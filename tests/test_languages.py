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
