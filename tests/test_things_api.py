"""Things over the API: register, read, edit, archive, lookup, URL
normalisation (one post is one thing), and who may do what."""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import assert_error

from flattr_node.models import Thing
from flattr_node.services import flattring

POST = {"url": "https://ann.example/2026/10/post", "title": "A post"}


@pytest.fixture
def ann(make_user):
    return make_user("ann", 500)


@pytest.fixture
def ann_api(ann, api_for):
    return api_for(ann)


def test_register_a_thing(ann_api):
    r = ann_api.post(
        "/things",
        json={**POST, "description": "long\ntext", "category": "software", "language": "en", "tags": ["Python", "money"], "hidden": False},
    )
    assert r.status_code == 201, r.get_json()
    t = r.get_json()
    for key in ("id", "url", "title", "description", "category", "language", "tags", "hidden", "archived", "owner",
                "flattrs", "flattrs_this_period", "created_at", "link", "flattred"):
        assert key in t, key
    assert t["url"] == POST["url"] and t["title"] == "A post" and t["category"] == "software"
    assert t["tags"] == ["python", "money"]
    assert t["owner"] == {"username": "ann"}
    assert (t["flattrs"], t["flattrs_this_period"], t["flattred"], t["archived"]) == (0, 0, False, False)
    assert t["link"] == f"http://node.test/things/{t['id']}"
    assert dt.datetime.fromisoformat(t["created_at"]).utcoffset() is not None


def test_read_a_thing_anonymously(ann_api, anon):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    r = anon.get(f"/things/{tid}")
    assert r.status_code == 200
    assert r.get_json()["title"] == "A post"
    assert "flattred" not in r.get_json()  # only when the caller is signed in
    assert_error(anon.get("/things/999999"), 404, "not_found")


@pytest.mark.parametrize(
    "variant",
    [
        "https://ann.example/2026/10/post",
        "HTTPS://ANN.EXAMPLE/2026/10/post",
        "https://ann.example:443/2026/10/post",
        "https://ann.example/2026/10/post/",
        "https://ann.example/2026/10/post#comments",
        "https://ann.example/2026/10/post?utm_source=twitter&utm_medium=social",
        "https://ann.example/2026/10/post?fbclid=abc&gclid=def&mc_cid=1&mc_eid=2",
        "  https://ann.example/2026/10/post  ",
        "https://ann.example./2026/10/post",
    ],
)
def test_one_post_is_one_thing(ann_api, anon, variant):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    r = ann_api.post("/things", json={"url": variant, "title": "again"})
    assert_error(r, 422, "validation", "url")
    assert Thing.select().count() == 1
    found = anon.get("/things/lookup", query_string={"url": variant})
    assert found.status_code == 200 and found.get_json()["id"] == tid


def test_normalisation_keeps_what_matters(ann_api):
    r = ann_api.post("/things", json={"url": "http://Bücher.example:80/a/b/?page=2&utm_campaign=x#top", "title": "t"})
    assert r.status_code == 201
    assert r.get_json()["url"] == "http://xn--bcher-kva.example/a/b?page=2"
    r = ann_api.post("/things", json={"url": "https://ann.example:8443/", "title": "root"})
    assert r.get_json()["url"] == "https://ann.example:8443/"
    # A different query is a different post.
    assert ann_api.post("/things", json={"url": "http://bücher.example/a/b?page=3", "title": "t"}).status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "ftp://ann.example/file",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "mailto:ann@example.org",
        "//ann.example/post",
        "ann.example/post",
        "https://",
        "https://user:pw@ann.example/post",
        "https://ann.example/po st",
        "https://ann.example/\x00",
        "https://ann.example:99999/",
        "https://" + "a" * 2100 + ".example/",
        "",
        None,
        42,
        ["https://ann.example/"],
    ],
)
def test_urls_that_are_not_http_are_refused(ann_api, url):
    assert_error(ann_api.post("/things", json={"url": url, "title": "bad"}), 422, "validation", "url")
    assert Thing.select().count() == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"url": POST["url"]}, "title"),
        ({**POST, "title": ""}, "title"),
        ({**POST, "title": "x" * 201}, "title"),
        ({**POST, "title": 5}, "title"),
        ({**POST, "category": "weapons"}, "category"),
        ({**POST, "tags": [1, 2]}, "tags"),
        ({**POST, "tags": [f"t{i}" for i in range(11)]}, "tags"),
        ({**POST, "hidden": "perhaps"}, "hidden"),
        ({**POST, "owner": "kim"}, "owner"),
        ({**POST, "description": "x" * 5001}, "description"),
    ],
)
def test_bad_thing_fields_are_refused(ann_api, payload, field):
    assert_error(ann_api.post("/things", json=payload), 422, "validation", field)
    assert Thing.select().count() == 0


def test_registering_needs_auth(anon):
    assert_error(anon.post("/things", json=POST), 401, "unauthorized")
    assert Thing.select().count() == 0


def test_lookup_of_an_unknown_or_bad_url_is_not_found(anon):
    assert_error(anon.get("/things/lookup", query_string={"url": "https://nobody.example/"}), 404, "not_found")
    assert_error(anon.get("/things/lookup", query_string={"url": "javascript:alert(1)"}), 404, "not_found")
    assert_error(anon.get("/things/lookup"), 404, "not_found")


def test_edit_a_thing(ann_api):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    r = ann_api.patch(f"/things/{tid}", json={"title": "New title", "tags": "a, b ,a", "hidden": True, "category": "audio"})
    assert r.status_code == 200, r.get_json()
    t = r.get_json()
    assert (t["title"], t["tags"], t["hidden"], t["category"]) == ("New title", ["a", "b"], True, "audio")


def test_the_url_of_a_thing_cannot_change(ann_api):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    assert_error(ann_api.patch(f"/things/{tid}", json={"url": "https://ann.example/other"}), 422, "validation", "url")
    assert Thing.get_by_id(tid).url == POST["url"]


def test_nobody_else_edits_or_archives_my_thing(ann_api, make_user, api_for, anon):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    kim = api_for(make_user("kim"))
    assert_error(kim.patch(f"/things/{tid}", json={"title": "mine now"}), 403, "forbidden")
    assert_error(kim.delete(f"/things/{tid}"), 403, "forbidden")
    assert_error(anon.patch(f"/things/{tid}", json={"title": "mine now"}), 401, "unauthorized")
    assert_error(anon.delete(f"/things/{tid}"), 401, "unauthorized")
    stored = Thing.get_by_id(tid)
    assert (stored.title, stored.archived) == ("A post", False)
    assert_error(kim.patch("/things/999999", json={"title": "x"}), 404, "not_found")


def test_an_operator_may_edit_any_thing(ann_api, make_user, api_for):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    op = api_for(make_user("op", operator=True))
    assert op.patch(f"/things/{tid}", json={"title": "moderated"}).status_code == 200
    assert Thing.get_by_id(tid).title == "moderated"


def test_delete_archives_and_keeps_history(cfg, ann, ann_api, make_user, api_for):
    tid = ann_api.post("/things", json=POST).get_json()["id"]
    kim = make_user("kim", 500)
    flattring.flattr_thing(cfg, kim, tid)
    r = ann_api.delete(f"/things/{tid}")
    assert r.status_code == 200 and r.get_json()["archived"] is True
    kept = api_for(kim).get(f"/things/{tid}").get_json()
    assert kept["archived"] is True and kept["flattrs"] == 1
    # An archived thing cannot be flattred again (R6) ...
    assert_error(api_for(make_user("bob", 500)).post(f"/things/{tid}/flattr"), 403, "forbidden")
    # ... and it stays registered: its URL cannot be taken by someone else.
    assert_error(api_for(kim).post("/things", json=POST), 422, "validation", "url")


def test_a_hidden_thing_is_still_readable_by_id(ann_api, anon):
    tid = ann_api.post("/things", json={**POST, "hidden": True}).get_json()["id"]
    assert anon.get(f"/things/{tid}").get_json()["hidden"] is True
