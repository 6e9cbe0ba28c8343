"""Auto-submit (SPEC §3): a button for a post not registered yet; the thing is
created for `user_id` on its first flattr. Verified sites: a rel="payment"
link to one's profile on the home page (fetched over real HTTP from a local
server); auto-submit for a site verified by someone else is refused."""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

import pytest
from button_helpers import confirm_form, parse, signin, text
from live import serve_pages

from flattr_node import netguard
from flattr_node.models import Flattr, Thing
from flattr_node.services import sites


@pytest.fixture
def cfg(cfg):
    """A node on localhost whose operator lets it fetch home pages on 127.0.0.1
    (a default node may not)."""
    return cfg.with_(base_url="http://localhost:8080", allow_private_network=True)


def auto(**params) -> str:
    return "/submit/auto?" + urlencode(params)


def test_first_flattr_creates_the_thing_for_its_owner(client, make_user):
    ann = make_user("ann")
    kim = make_user("kim", 500)
    path = auto(user_id="ann", url="https://ann.example/2026/new?utm_source=x", title="New post", category="text", tags="a,b")
    response = client.get(path)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/signin"

    signin(client, "kim")
    page = client.get(path)
    assert page.status_code == 200
    doc = parse(page)
    assert "not on the node yet" in text(doc) and doc.find(".//h1").text == "Flattr “New post”?"
    assert Thing.select().count() == 0  # nothing is created by looking
    action, fields = confirm_form(doc)
    done = client.post(action, data=fields)
    assert done.status_code == 201, done.get_data(as_text=True)
    thing = Thing.get(Thing.url == "https://ann.example/2026/new")  # normalised: no tracking parameter
    assert (thing.owner_id, thing.title, thing.category, thing.tags) == (ann.id, "New post", "text", "a,b")
    assert Flattr.get(Flattr.thing == thing).giver_id == kim.id

    # Registered now: the same button goes to the thing's confirmation page.
    again = client.get(path + "&popup=1&origin=https://ann.example")
    assert again.status_code == 302
    assert again.headers["Location"] == f"/things/{thing.id}/flattr?popup=1&origin=https://ann.example"


def test_bad_autosubmit_requests_get_clear_errors(client, make_user):
    make_user("ann")
    make_user("kim", 500)
    signin(client, "kim")
    assert client.get(auto(url="https://ann.example/x")).status_code == 422
    assert client.get(auto(user_id="ghost", url="https://ann.example/x")).status_code == 404
    for bad in ("javascript:alert(1)", "ftp://ann.example/x", ""):
        response = client.get(auto(user_id="ann", url=bad))
        assert response.status_code == 422, bad
    long_title = client.get(auto(user_id="ann", url="https://ann.example/x", title="t" * 500))
    assert long_title.status_code == 422
    assert Thing.select().count() == 0


def test_own_autosubmit_button_is_refused(client, make_user):
    make_user("ann", 500)
    signin(client, "ann")
    path = auto(user_id="ann", url="https://ann.example/mine")
    page = parse(client.get(path))
    assert "your own thing" in text(page) and page.find(".//button[@id='confirm-flattr']") is None
    token = next(i.get("value") for i in page.iter("input") if i.get("name") == "csrf_token")
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 403
    assert parse(response).find(".//*[@role='alert']").get("data-error") == "flattr_owner"
    assert Thing.select().count() == 0


def test_api_flattr_by_autosubmit_url(client, make_user, api_for):
    make_user("ann")
    kim = make_user("kim", 500)
    url = "http://localhost:8080" + auto(user_id="ann", url="https://ann.example/api", title="Via API")
    response = api_for(kim).post("/flattr", {"url": url})
    assert response.status_code == 201, response.json
    assert response.json["thing"]["title"] == "Via API" and response.json["owner"]["username"] == "ann"


@pytest.fixture
def home_pages():
    pages: dict = {}
    with serve_pages(pages) as base:
        yield base, pages


def verify(client, url):
    doc = parse(client.get("/sites"))
    token = next(i.get("value") for i in doc.iter("input") if i.get("name") == "csrf_token")
    return client.post("/sites", data={"url": url, "csrf_token": token})


def test_verified_site_refuses_autosubmit_for_anyone_else(client, make_user, api_for, home_pages):
    base, pages = home_pages
    host = urlsplit(base).netloc
    ann = make_user("ann")
    make_user("bob")
    kim = make_user("kim", 500)
    pages["/"] = '<html><head><link rel="payment" href="http://localhost:8080/users/ann"></head><body>Ann\'s blog</body></html>'

    signin(client, "ann")
    assert client.get("/sites").status_code == 200
    response = verify(client, base + "/some/post")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [s.host for s in sites.sites_of(ann)] == [host]
    assert host in text(parse(client.get("/sites")))
    client.post("/signout", data={"csrf_token": next(i.get("value") for i in parse(client.get("/sites")).iter("input") if i.get("name") == "csrf_token")})

    # Bob's auto-submit button for a page on Ann's site: refused everywhere.
    signin(client, "kim")
    bobs = auto(user_id="bob", url=f"{base}/2026/stolen", title="Not Bob's")
    refused = client.get(bobs)
    assert refused.status_code == 403 and "verified by another person" in text(parse(refused))
    assert client.post(bobs, data={}).status_code == 403  # CSRF first: nothing happens either way
    api = api_for(kim)
    response = api.post("/flattr", {"url": "http://localhost:8080" + bobs})
    assert (response.status_code, response.json["error"]) == (403, "forbidden")
    assert "verified by another person" in response.json["error_description"]
    oembed = client.get("/oembed?" + urlencode({"url": "http://localhost:8080" + bobs}))
    assert oembed.status_code == 403
    assert Thing.select().count() == 0

    # Ann's own button for her site works; sites nobody verified stay open to all.
    response = api.post("/flattr", {"url": "http://localhost:8080" + auto(user_id="ann", url=f"{base}/2026/mine")})
    assert response.status_code == 201 and response.json["owner"]["username"] == "ann"
    response = api.post("/flattr", {"url": "http://localhost:8080" + auto(user_id="bob", url="https://bob.example/x")})
    assert response.status_code == 201


def test_verification_reads_the_home_page_and_moves_with_it(client, make_user, home_pages, cfg):
    base, pages = home_pages
    ann, bob = make_user("ann"), make_user("bob")
    pages["/"] = '<link rel="me payment" href="/elsewhere"><link rel="payment" href="http://localhost:8080/submit/auto?user_id=bob&url=x">'
    with pytest.raises(sites.Validation, match='no rel="payment" link'):
        sites.verify_site(cfg, ann, base)
    assert sites.verify_site(cfg, bob, base).user_id == bob.id  # Flattr's auto-submit form counts too
    # Whoever controls the home page decides: it now links to Ann.
    pages["/"] = '<link rel="payment" href="http://localhost:8080/users/ann/">'
    assert sites.verify_site(cfg, ann, base + "/any/page").user_id == ann.id
    assert sites.verifier_of(base + "/post").id == ann.id


def test_verification_fetch_is_careful(client, make_user, home_pages, cfg, monkeypatch):
    base, pages = home_pages
    ann = make_user("ann")
    signin(client, "ann")

    def redirect_to(location):
        def handler(h):
            h.send_response(302)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return handler

    cases = {
        "javascript:alert(1)": "must be an http:// or https:// URL",
        "file:///etc/passwd": "must be an http:// or https:// URL",
    }
    for url, words in cases.items():
        response = verify(client, url)
        assert response.status_code == 422 and words in text(parse(response))

    pages["/"] = redirect_to("file:///etc/passwd")
    response = verify(client, base)
    assert response.status_code == 422 and "redirects to a URL that is not http(s)" in text(parse(response))

    pages["/"] = redirect_to("/")  # a loop
    assert "redirects more than" in text(parse(verify(client, base)))

    pages["/"] = redirect_to("/home")
    pages["/home"] = '<link rel="payment" href="http://localhost:8080/users/ann">'
    assert verify(client, base).status_code == 302  # http redirects on the same site are followed

    pages["/"] = "<p>" + "x" * (sites.MAX_HOME_PAGE + 10) + "</p>"
    assert "larger than" in text(parse(verify(client, base)))

    del pages["/"]
    assert "answered HTTP 404" in text(parse(verify(client, base)))

    def slow(h):
        time.sleep(1.5)
        return '<link rel="payment" href="http://localhost:8080/users/ann">'

    pages["/"] = slow
    monkeypatch.setattr(sites, "VERIFY_DEADLINE", 0.5)
    assert "did not answer in time" in text(parse(verify(client, base)))

    # Nothing listens there: a clear error, never a 500.
    response = verify(client, "http://127.0.0.1:9/")
    assert response.status_code == 422 and "cannot fetch" in text(parse(response))
    assert [s.host for s in sites.sites_of(ann)] == [urlsplit(base).netloc]


def test_a_default_node_does_not_fetch_private_addresses(make_user, home_pages, cfg):
    base, pages = home_pages
    ann = make_user("ann")
    pages["/"] = '<link rel="payment" href="https://flattr.example.org/users/ann">'
    public = cfg.with_(base_url="https://flattr.example.org", allow_private_network=False)
    # Only loopback here: a broken check must never send traffic to another network.
    for ip in ("10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "fd00::1", "::1", "0.0.0.0"):
        assert not netguard.is_public_address(ip), ip
    assert netguard.is_public_address("93.184.216.34")
    for url in (base, base.replace("127.0.0.1", "localhost"), "http://[::1]:9/"):
        with pytest.raises(sites.Validation, match="private or local address"):
            sites.verify_site(public, ann, url)
    assert sites.sites_of(ann) == []
