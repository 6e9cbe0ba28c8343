"""Flattr's REST API v2 at /rest/v2, driven by a real Flattr v2 client
library from PyPI (flattrclient, the python-flattr project) against a live
node. The library has Flattr's address built in; it is pointed at the node
the way a user of requests would: a transport adapter mounted on its session
for https://api.flattr.com/ that sends each request to the node instead."""

from __future__ import annotations

import flattrclient.api
import pytest
import requests
from flattrclient.exc import FlattrApiError, InsufficientScopeError, NotFoundError, UnauthorizedError
from live import serve_node
from requests.adapters import HTTPAdapter

from flattr_node.services import people, things

FLATTR = "https://api.flattr.com"


class ToNode(HTTPAdapter):
    """Sends requests meant for api.flattr.com to a node."""

    def __init__(self, node: str):
        super().__init__()
        self.node = node

    def send(self, request, **kwargs):
        request.url = self.node + request.url[len(FLATTR) :]
        return super().send(request, **kwargs)


def flattr_api(node: str, token: str):
    api = flattrclient.api.get(token)
    api._session.mount(FLATTR + "/", ToNode(node))
    return api


@pytest.fixture
def node(cfg, make_user):
    ann = make_user("ann", 1000)
    make_user("kim", 1000)
    ann = people.update_settings(cfg, ann, {"display_name": "Ann A.", "about": "I write about buttons."})
    t = things.register_thing(ann, {"url": "https://ann.example/buttons", "title": "Buttons in 2026", "tags": "web,money", "category": "text"})
    with serve_node(cfg) as (live, _app):
        yield {"url": live.base_url, "thing": t.id, "ann": people.create_token(ann), "kim": people.create_token(people.get_user("kim"))}


def test_the_v2_client_reads_creates_updates_and_flattrs(node):
    ann, kim = flattr_api(node["url"], node["ann"]), flattr_api(node["url"], node["kim"])

    user = kim.users.get("ann")
    assert (user.username, user.firstname, user.about) == ("ann", "Ann A.", "I write about buttons.")
    assert user.link == f"{node['url']}/users/ann" and isinstance(user.registered_at, int)

    thing = kim.things.get(str(node["thing"]))
    assert (thing.id, thing.title, thing.url) == (node["thing"], "Buttons in 2026", "https://ann.example/buttons")
    assert thing.owner["username"] == "ann" and thing.flattrs == 0 and thing.flattred is False
    assert thing.resource == f"{node['url']}/rest/v2/things/{node['thing']}" and isinstance(thing.created_at, int)

    looked_up = kim.things.lookup("https://ann.example/buttons")  # v2's redirect, followed
    assert looked_up.id == node["thing"]

    # Ann registers a post with the library's own Thing object (a form-encoded POST), then edits it (_method=patch).
    new = ann.things.new(url="https://ann.example/tokens", title="Tokens", description="On scopes", tags=["oauth", "web"], category="software")
    created = new.commit()
    assert created["message"] == "ok" and new.id > node["thing"]
    new.title = "Tokens, and what they may do"
    assert new.commit()["message"] == "ok"
    again = kim.things.get(str(new.id))
    assert again.title == "Tokens, and what they may do" and again.tags == ["oauth", "web"] and again.category == "software"
    several = list(kim.things.get(f"{node['thing']},{new.id}"))
    assert sorted(t.id for t in several) == sorted([node["thing"], new.id])

    found = kim.things.search(query="Tokens")
    assert found.total_items == 1 and [t.id for t in found.things] == [new.id]
    assert kim.things.search(tags="money").total_items == 1
    assert {t.id for t in ann.authenticated.get_things()} == {node["thing"], new.id}

    answer = again.support()  # flattr it
    assert answer["message"] == "ok" and answer["thing"]["id"] == new.id
    flattrs = list(kim.authenticated.get_flattrs())
    assert [(f.thing["id"], f.owner["username"]) for f in flattrs] == [(new.id, "kim")]
    assert kim.things.get(str(new.id)).flattrs == 1 and kim.things.get(str(new.id)).flattrs_user_count == 1

    # Ann archives it (v2's DELETE: 204); its history stays.
    new.delete()
    assert kim.things.get(str(node["thing"])).id == node["thing"]


def test_the_v2_clients_own_errors(node):
    kim = flattr_api(node["url"], node["kim"])
    thing = kim.things.get(str(node["thing"]))
    thing.support()
    with pytest.raises(FlattrApiError, match="already flattred"):  # flattr_once: 403, no class of its own in the library
        thing.support()
    with pytest.raises(NotFoundError):
        kim.things.get("99999")
    with pytest.raises(NotFoundError):
        kim.users.get("nobody")
    with pytest.raises(NotFoundError):
        kim.things.lookup("https://nowhere.example/")
    with pytest.raises(UnauthorizedError):
        list(flattr_api(node["url"], "fn_not-a-token").authenticated.get_flattrs())
    only_things = people.create_token(people.get_user("kim"), "cms", ["thing"])
    with pytest.raises(InsufficientScopeError):
        flattr_api(node["url"], only_things).things.get(str(node["thing"])).support()


def test_v2_wire_format(node):
    base, auth = node["url"], {"Authorization": f"Bearer {node['kim']}"}
    r = requests.post(f"{base}/rest/v2/flattr", json={"url": "https://ann.example/buttons"}, headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["thing"]["id"] == node["thing"]
    assert r.headers["X-RateLimit-Limit"] == "5000" and 0 <= int(r.headers["X-RateLimit-Remaining"]) < 5000
    again = requests.post(f"{base}/rest/v2/things/{node['thing']}/flattr", headers=auth, timeout=10)
    body = again.json()
    assert again.status_code == 403 and body["error"] == "flattr_once" and body["error_description"] and body["error_uri"]
    bad = requests.post(f"{base}/rest/v2/things", data={"url": "ftp://x", "title": "x"}, headers={"Authorization": f"Bearer {node['ann']}"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_parameters"
    anon = requests.post(f"{base}/rest/v2/things/{node['thing']}/flattr", timeout=10)
    assert anon.status_code == 401 and anon.json()["error"] == "unauthorized"
    me = requests.get(f"{base}/rest/v2/user", headers=auth, timeout=10).json()
    assert me["username"] == "kim" and me["email"] == "kim@example.org"
    nope = requests.patch(f"{base}/rest/v2/things/{node['thing']}", json={"title": "mine"}, headers=auth, timeout=10)
    assert nope.status_code == 403 and nope.json()["error"] == "forbidden"
    garbage = requests.post(f"{base}/rest/v2/things", data=b"{", headers={**auth, "Content-Type": "application/json"}, timeout=10)
    assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_request"
