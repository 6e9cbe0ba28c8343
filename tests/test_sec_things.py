"""Who a thing pays (issue 10, items 1 and 8): a URL on a site verified by
someone else cannot be registered (API and dashboard); an auto-submit flattr
for user_id=X never pays anyone but X; the http:// and www. twins of a
registered URL are the same thing."""

from __future__ import annotations

from urllib.parse import urlencode

from button_helpers import form_token, parse, signin, text
from conftest import assert_error

from flattr_node.models import Flattr, Thing
from flattr_node.services.sites import VerifiedSite


def verified(user, host: str) -> None:
    VerifiedSite.create(host=host, user=user, home_url=f"https://{host}/")


def test_api_refuses_a_url_on_a_site_verified_by_someone_else(make_user, api_for):
    ann, mal = make_user("ann"), make_user("mal")
    verified(ann, "ann.example")
    for url in ("https://ann.example/2026/new-post", "http://ann.example/x", "https://www.ann.example/y"):
        body = assert_error(api_for(mal).post("/things", {"url": url, "title": "Mine now"}), 403, "forbidden")
        assert "verified by another person" in body["error_description"]
    assert Thing.select().count() == 0
    # Ann herself registers there; anyone registers on sites nobody verified.
    assert api_for(ann).post("/things", {"url": "https://ann.example/2026/new-post", "title": "New"}).status_code == 201
    assert api_for(mal).post("/things", {"url": "https://mal.example/a", "title": "Mal's"}).status_code == 201


def test_dashboard_refuses_a_url_on_a_site_verified_by_someone_else(client, make_user):
    ann = make_user("ann")
    make_user("mal")
    verified(ann, "ann.example")
    signin(client, "mal")
    token = form_token(parse(client.get("/dashboard/things")))
    response = client.post(
        "/dashboard/things", data={"csrf_token": token, "url": "https://ann.example/2026/p", "title": "Stolen", "category": "text"}
    )
    assert response.status_code == 422
    assert "verified by another person" in text(parse(response))
    assert Thing.select().count() == 0


def auto(**params) -> str:
    return "/submit/auto?" + urlencode(params)


def test_autosubmit_never_pays_anyone_but_its_user_id(client, make_user, api_for, cfg):
    """Mal registers Ann's new post before its first flattr: Ann's button must
    not pay Mal; it is refused, saying why."""
    make_user("ann")
    mal = make_user("mal")
    kim = make_user("kim", 500)
    url = "https://ann.example/2026/new"
    assert api_for(mal).post("/things", {"url": url, "title": "Grabbed"}).status_code == 201

    button = auto(user_id="ann", url=url, title="Ann's new post")
    body = assert_error(api_for(kim).post("/flattr", {"url": cfg.base_url + button}), 403, "forbidden")
    assert "ann" in body["error_description"] and "mal" in body["error_description"]

    signin(client, "kim")
    page = client.get(button)
    assert page.status_code == 403 and "registered on this node by mal" in text(parse(page))
    # The http:// twin of the URL is the same thing, refused the same way.
    twin = auto(user_id="ann", url="http://www.ann.example/2026/new")
    assert client.get(twin).status_code == 403
    assert Flattr.select().count() == 0
    assert kim.id  # kim paid nobody


def test_http_and_www_twins_are_one_thing(make_user, api_for, cfg):
    ann, mal, kim = make_user("ann"), make_user("mal"), make_user("kim", 500)
    created = api_for(ann).post("/things", {"url": "https://ann.example/2026/post", "title": "Post"})
    assert created.status_code == 201
    for twin in ("http://ann.example/2026/post", "https://www.ann.example/2026/post", "http://WWW.ann.example/2026/post/"):
        body = assert_error(api_for(mal).post("/things", {"url": twin, "title": "Twin"}), 422, "validation", "url")
        assert "already registered" in body["error_description"]
        found = api_for(kim).get("/things/lookup?" + urlencode({"url": twin}))
        assert found.status_code == 200 and found.json["id"] == created.json["id"]
    # And the reverse: www. first, then the bare host.
    assert api_for(ann).post("/things", {"url": "http://www.ann.example/other", "title": "Other"}).status_code == 201
    assert_error(api_for(mal).post("/things", {"url": "https://ann.example/other", "title": "Twin"}), 422, "validation", "url")
    assert Thing.select().count() == 2
