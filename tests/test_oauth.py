"""OAuth 2.0 on a live node (waitress on loopback): an app's whole round trip
in headless Chromium (register the app on the dashboard, sign in, consent,
code, token with PKCE, refresh, revoke), the app being Authlib's own OAuth
client; then every way a request goes wrong, refused as RFC 6749 says."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from browser import chromium, need_chromium
from live import serve_node, serve_pages
from web_helpers import parse

from flattr_node.oauth import clients
from flattr_node.oauth.models import OAuthCode
from flattr_node.services import things

WAIT = 20


@pytest.fixture
def node(cfg, make_user):
    make_user("dev")
    make_user("ann", 1000)
    bob = make_user("bob")
    thing = things.register_thing(bob, {"url": "https://bob.example/post", "title": "Bob's post"})
    arrived: list[str] = []

    def callback(handler):
        arrived.append(handler.path)
        return "<!doctype html><title>back in the app</title><p id=back>back in the app</p>"

    with serve_node(cfg) as (live, _app), serve_pages({"/cb": callback}) as app_site:
        yield {"url": live.base_url, "cb": f"{app_site}/cb", "arrived": arrived, "thing": thing.id}


def browser_sign_in(driver, wait, username):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait.until(ec.presence_of_element_located((By.NAME, "username")))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys("correct horse")
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def test_an_apps_round_trip_in_chromium(node, tmp_path):
    need_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base = node["url"]
    driver = chromium(tmp_path / "profile")
    try:
        wait = WebDriverWait(driver, WAIT)
        # The app's maker registers it on their dashboard.
        driver.get(f"{base}/signin?next=/dashboard/apps")
        browser_sign_in(driver, wait, "dev")
        wait.until(ec.presence_of_element_located((By.NAME, "redirect_uris")))
        driver.find_element(By.NAME, "name").send_keys("Podcast player")
        driver.find_element(By.NAME, "redirect_uris").send_keys(node["cb"])
        driver.find_element(By.CSS_SELECTOR, "#own-apps form:last-of-type button[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.ID, "client-secret")))
        client_id = driver.find_element(By.ID, "client-id").get_attribute("value")
        secret = driver.find_element(By.ID, "client-secret").get_attribute("value")
        driver.delete_all_cookies()

        # The app sends a reader to the node, with PKCE (Authlib makes the challenge).
        app = OAuth2Session(
            client_id, secret, scope="flattr extendedread", redirect_uri=node["cb"], code_challenge_method="S256"
        )
        verifier = "v" * 20 + "erifier-of-the-podcast-player-0123456789"
        url, state = app.create_authorization_url(f"{base}/oauth/authorize", code_verifier=verifier)
        driver.get(url)
        browser_sign_in(driver, wait, "ann")  # not signed in yet: the node asks first
        wait.until(ec.presence_of_element_located((By.ID, "allow")))
        assert driver.find_element(By.ID, "client-name").text == "Podcast player"
        asked = [li.get_attribute("data-scope") for li in driver.find_elements(By.CSS_SELECTOR, "#asked-scopes li")]
        assert asked == ["flattr", "extendedread"]
        assert "flattr things for you" in driver.find_element(By.ID, "asked-scopes").text
        driver.find_element(By.ID, "allow").click()
        wait.until(ec.presence_of_element_located((By.ID, "back")))
        back = driver.current_url
        assert back.startswith(node["cb"]) and parse_qs(urlsplit(back).query)["state"] == [state]
    finally:
        driver.quit()

    token = app.fetch_token(f"{base}/oauth/token", authorization_response=back, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer" and token["scope"] == "flattr extendedread"
    assert token["refresh_token"] and token["expires_in"] > 0
    me = app.get(f"{base}/api/v1/user")
    assert me.status_code == 200 and me.json()["username"] == "ann"
    assert "email" not in me.json()  # not asked for
    flattr = app.post(f"{base}/api/v1/things/{node['thing']}/flattr")
    assert flattr.status_code == 201 and flattr.json()["giver"]["username"] == "ann"
    # A scope the token lacks (RFC 6750 §3.1: 403 insufficient_scope).
    refused = app.post(f"{base}/api/v1/things", json={"url": "https://ann.example/x", "title": "X"})
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"

    # Refresh: a new access token; the old one and the old refresh token stop working.
    old = dict(token)
    new = app.refresh_token(f"{base}/oauth/token")
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert bearer(base, old["access_token"]).status_code == 401
    assert bearer(base, new["access_token"]).status_code == 200
    again = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
        auth=(client_id, secret),
        timeout=10,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # Revoke (RFC 7009): the token stops working at once.
    revoked = app.revoke_token(f"{base}/oauth/revoke", token=new["access_token"], token_type_hint="access_token")
    assert revoked.status_code == 200
    assert bearer(base, new["access_token"]).status_code == 401


def bearer(base, token):
    return requests.get(f"{base}/api/v1/user", headers={"Authorization": f"Bearer {token}"}, timeout=10)


# --- what goes wrong, over HTTP with a signed-in session ------------------------


@pytest.fixture
def app_client(node, make_user):
    from flattr_node.services import people

    client, secret = clients.create_client(people.get_user("dev"), "Blog platform", [node["cb"]])
    return {"id": client.client_id, "secret": secret}


def signed_in(base, username="ann") -> requests.Session:
    http = requests.Session()
    page = http.get(f"{base}/signin", timeout=10)
    http.post(
        f"{base}/signin",
        data={"csrf_token": csrf(page.text), "username": username, "password": "correct horse"},
        timeout=10,
    ).raise_for_status()
    return http


def csrf(html: str) -> str:
    return next(n.get("value") for n in parse(html).iter("input") if n.get("name") == "csrf_token")


VERIFIER = "a-verifier-that-is-long-enough-for-rfc-7636-0123456789"


def authorize_url(base, client_id, redirect_uri, scope="flattr", verifier=VERIFIER, **extra):
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "s1",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        **extra,
    }
    params = {k: v for k, v in params.items() if v is not None}
    return requests.Request("GET", f"{base}/oauth/authorize", params=params).prepare().url


def consent(http, url, allow="yes") -> requests.Response:
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    return http.post(url, data={"csrf_token": csrf(page.text), "allow": allow}, allow_redirects=False, timeout=10)


def code_from(response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


def exchange(base, app, code, redirect_uri, verifier=VERIFIER):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    return requests.post(f"{base}/oauth/token", data=data, auth=(app["id"], app["secret"]), timeout=10)


def test_wrong_redirect_uri_is_never_followed(node, app_client):
    base, http = node["url"], signed_in(node["url"])
    for wrong in ("https://evil.example/cb", node["cb"] + "/more", node["cb"].replace("/cb", "/other")):
        page = http.get(authorize_url(base, app_client["id"], wrong), allow_redirects=False, timeout=10)
        # RFC 6749 §4.1.2.1: tell the person, never redirect to an unregistered URI.
        assert page.status_code == 400 and "Location" not in page.headers
        assert "redirect" in page.text.lower()
    unknown = http.get(authorize_url(base, "fnc_nobody", node["cb"]), allow_redirects=False, timeout=10)
    assert unknown.status_code == 400 and "Location" not in unknown.headers


def test_a_loopback_redirect_may_use_any_port(node, app_client):
    base = node["url"]
    other_port = node["cb"].replace(f":{urlsplit(node['cb']).port}/", ":1/")
    answer = consent(signed_in(base), authorize_url(base, app_client["id"], other_port))
    assert answer.headers["Location"].startswith(other_port + "?")
    token = exchange(base, app_client, code_from(answer), other_port)
    assert token.status_code == 200, token.text


def test_code_is_single_use_and_reuse_revokes_its_token(node, app_client):
    base = node["url"]
    code = code_from(consent(signed_in(base), authorize_url(base, app_client["id"], node["cb"])))
    first = exchange(base, app_client, code, node["cb"])
    assert first.status_code == 200
    second = exchange(base, app_client, code, node["cb"])
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert bearer(base, first.json()["access_token"]).status_code == 401  # RFC 6749 §4.1.2


@pytest.mark.parametrize(
    "verifier, error",
    [(None, "invalid_request"), ("a-wrong-verifier-that-is-also-long-enough-0123456789", "invalid_grant")],
)
def test_missing_or_wrong_verifier_is_refused(node, app_client, verifier, error):
    base = node["url"]
    code = code_from(consent(signed_in(base), authorize_url(base, app_client["id"], node["cb"])))
    answer = exchange(base, app_client, code, node["cb"], verifier=verifier)
    assert answer.status_code == 400 and answer.json()["error"] == error


def test_expired_code_is_refused(node, app_client):
    base = node["url"]
    code = code_from(consent(signed_in(base), authorize_url(base, app_client["id"], node["cb"])))
    # A minute later (the code's lifetime): moved back in the node's own database.
    for row in OAuthCode.select():
        OAuthCode.update(expires_at=row.expires_at - dt.timedelta(minutes=2)).where(OAuthCode.id == row.id).execute()
    answer = exchange(base, app_client, code, node["cb"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_errors_the_app_is_told_by_redirect(node, app_client):
    base, http = node["url"], signed_in(node["url"])

    def error_of(url, allow=None):
        answer = consent(http, url, allow) if allow else http.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and answer.headers["Location"].startswith(node["cb"] + "?")
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        assert query["state"] == ["s1"]
        return query["error"][0]

    assert error_of(authorize_url(base, app_client["id"], node["cb"]), allow="no") == "access_denied"
    assert error_of(authorize_url(base, app_client["id"], node["cb"], scope="flattr admin")) == "invalid_scope"
    assert error_of(authorize_url(base, app_client["id"], node["cb"], code_challenge=None, code_challenge_method=None)) == "invalid_request"
    assert error_of(authorize_url(base, app_client["id"], node["cb"], code_challenge_method="plain")) == "invalid_request"
    assert error_of(authorize_url(base, app_client["id"], node["cb"], response_type="token")) == "unsupported_response_type"


def test_wrong_client_secret_and_the_consent_page_guards(node, app_client):
    base = node["url"]
    code = code_from(consent(signed_in(base), authorize_url(base, app_client["id"], node["cb"])))
    wrong = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": node["cb"], "code_verifier": VERIFIER},
        auth=(app_client["id"], "fncs_not-the-secret"),
        timeout=10,
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    http = signed_in(base)
    url = authorize_url(base, app_client["id"], node["cb"])
    page = http.get(url, timeout=10)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"
    forged = http.post(url, data={"allow": "yes"}, allow_redirects=False, timeout=10)  # no CSRF token
    assert forged.status_code == 403 and "Location" not in forged.headers


def test_metadata_and_cli_registration(node, cfg, tmp_path):
    from nodeproc import cli, write_config

    meta = requests.get(f"{node['url']}/.well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == node["url"] and meta["token_endpoint"] == f"{node['url']}/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["scopes_supported"]) == {"flattr", "thing", "email", "extendedread"}
    config = write_config(tmp_path / "config.toml", cfg.database, base_url=node["url"])
    out = cli(config, "oauth", "client", "create", "Static site tool", "--redirect-uri", "http://127.0.0.1/callback").stdout
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["client_id"].startswith("fnc_") and lines["client_secret"].startswith("fncs_")
    page = signed_in(node["url"]).get(authorize_url(node["url"], lines["client_id"], "http://127.0.0.1:4321/callback"), timeout=10)
    assert page.status_code == 200 and "Static site tool" in page.text and "its operator" in page.text
    bad = cli(config, "oauth", "client", "create", "X", "--redirect-uri", "http://example.com/cb", check=False)
    assert bad.returncode != 0 and "loopback" in bad.stderr and "Traceback" not in bad.stderr
