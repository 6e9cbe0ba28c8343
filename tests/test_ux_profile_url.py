"""One profile URL: every link the node gives out to a person's profile
(thing page, confirmation page, oEmbed author_url, the rel="payment" link
that /sites asks bloggers to add, plugin_bridge's markup) opens it."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from web_helpers import parse, signin

import plugin_bridge as pb
from flattr_node.services import things


def local_path(url: str) -> str:
    """A link of the node (absolute on base_url http://node.test, or a path) as a path."""
    parts = urlsplit(url)
    assert parts.netloc in ("", "node.test"), url
    return parts.path


def test_every_profile_link_opens_the_profile(client, make_user):
    ann = make_user("ann")
    make_user("kim", 300)
    thing = things.register_thing(ann, {"url": "https://ann.example/post", "title": "Ann's post"})
    links = []

    doc = parse(client.get(f"/things/{thing.id}"))
    links += [a.get("href") for a in doc.iter("a") if a.text and a.text.strip() == "ann"]

    oembed = client.get("/oembed", query_string={"url": f"http://node.test/things/{thing.id}"})
    assert oembed.status_code == 200
    links.append(json.loads(oembed.get_data(as_text=True))["author_url"])

    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    links += [a.get("href") for a in doc.iter("a") if a.text and a.text.strip() == "ann"]

    client.post("/signout")
    signin(client, "ann")
    sites = client.get("/sites").get_data(as_text=True)
    rel_payment = parse(sites).find(".//pre").text
    links.append(parse(rel_payment).find(".//link").get("href"))

    ref = pb.ThingRef(node="http://node.test", id=thing.id, url=thing.url, title=thing.title, owner="ann")
    links.append(pb.oembed(ref)["author_url"])

    assert len(links) == 5, links
    paths = {local_path(link) for link in links}
    assert paths == {"/users/ann"}, links
    page = client.get("/users/ann")
    assert page.status_code == 200
    assert "Ann&#39;s post" in page.get_data(as_text=True) or "Ann's post" in page.get_data(as_text=True)


def test_the_old_profile_address_redirects(client, make_user):
    make_user("ann")
    response = client.get("/people/ann")
    assert response.status_code == 301
    assert local_path(response.headers["Location"]) == "/users/ann"
    assert client.get("/users/nobody").status_code == 404
