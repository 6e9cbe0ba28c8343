"""Federation between real nodes (SPEC §6): `serve` processes on loopback
ports, each with its own database (one on PostgreSQL in the PostgreSQL
pass), peered with `flattr-node peer add`, flattrs delivered signed."""

from __future__ import annotations

import re

import pytest
import requests
from fednodes import Node, peer
from lxml import html


@pytest.fixture
def nodes(tmp_path):
    made: list[Node] = []

    def make(name: str, **settings) -> Node:
        node = Node(tmp_path, name, postgres=(not made), **settings)
        made.append(node)
        return node.start()

    yield make
    for node in made:
        node.drop()


def test_identity_well_known_and_webfinger(nodes):
    a = nodes("a")
    a.person("kim")
    doc = requests.get(f"{a.url}/.well-known/flattr-node", timeout=10).json()
    assert doc["base_url"] == a.url and doc["currency"] == "EUR" and doc["inbox"] == f"{a.url}/federation/inbox"
    (key,) = doc["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and len(key["kid"]) == 43
    # The key is made once: a restart publishes the same one.
    a.stop()
    a.start()
    assert requests.get(f"{a.url}/.well-known/flattr-node", timeout=10).json()["keys"] == [key]

    host = a.url.split("//")[1]
    r = requests.get(f"{a.url}/.well-known/webfinger", params={"resource": f"acct:kim@{host}"}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/jrd+json")
    jrd = r.json()
    assert jrd["subject"] == f"acct:kim@{host}"
    links = {link["rel"]: link for link in jrd["links"]}
    assert links["http://ostatus.org/schema/1.0/subscribe"]["template"] == f"{a.url}/authorize_interaction?uri={{uri}}"
    assert links["http://webfinger.net/rel/profile-page"]["href"] == f"{a.url}/users/kim"
    for resource in (f"acct:nobody@{host}", "acct:kim@elsewhere.example", "https://x.example/"):
        r = requests.get(f"{a.url}/.well-known/webfinger", params={"resource": resource}, timeout=10)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_peering_is_mutual_and_same_currency(nodes):
    a, b, usd = nodes("a"), nodes("b"), nodes("usd", currency="USD")
    out = a.cli("peer", "add", usd.url, check=False)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "USD" in out.stderr and "EUR" in out.stderr
    out = a.cli("peer", "add", "http://127.0.0.1:1", check=False)
    assert out.returncode == 1 and "did not answer" in out.stderr and "Traceback" not in out.stderr
    a.cli("peer", "add", b.url, "--credit-limit", "5000")
    listing = a.cli("peer", "list").stdout
    assert b.url in listing and "€50.00" in listing
    # A flattr from A to B before B added A: delivered, refused 403, kept waiting.
    reader, blogger = a.person("rea", funds=500), b.person("blo")
    thing = b.thing(blogger, "https://blog.example/post-1")
    r = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{thing}"})
    assert r.status_code == 201, r.text
    assert a.cli("peer", "sync", "--quiet", check=False).returncode == 1
    assert b.count(thing) == 0
    b.cli("peer", "add", a.url)
    assert "delivered 1" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(thing) == 1
    # Removing a peer stops it at once.
    a.cli("peer", "remove", b.url)
    assert b.url not in a.cli("peer", "list").stdout
    out = a.cli("peer", "remove", b.url, check=False)
    assert out.returncode == 1 and "not a peer" in out.stderr


def test_remote_flattr_is_recorded_then_delivered_once(nodes):
    a, b = nodes("a"), nodes("b")
    peer(a, b)
    reader, blogger = a.person("rea", funds=500), b.person("blo")
    poor = a.person("poor", funds=100)
    thing = b.thing(blogger, "https://blog.example/post-1", "Post one")
    url = f"{b.url}/things/{thing}"

    r = a.api(reader, "POST", "/flattr", json={"url": url})
    assert r.status_code == 201, r.text
    flattr = r.json()
    assert flattr["thing"]["url"] == url and flattr["thing"]["title"] == "Post one" and flattr["status"] == "pending"
    assert flattr["owner"]["username"] == f"blo@{b.url.split('//')[1]}"
    assert flattr["thing"]["node"] == b.url
    # R6 for remote things: once per thing per month; R3: no moochers.
    r = a.api(reader, "POST", "/flattr", json={"url": url})
    assert r.status_code == 409 and r.json()["error"] == "flattr_once"
    r = a.api(poor, "POST", "/flattr", json={"url": url})
    assert r.status_code == 402 and r.json()["error"] == "no_money"
    r = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/999999"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"

    assert b.count(thing) == 0  # not delivered yet: the click never waits for B
    assert "delivered 1, waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(thing) == 1
    assert "delivered 0, waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(thing) == 1
    # The count shows on B's badge and thing page too.
    assert re.search(r">\s*1\s*<", requests.get(f"{b.url}/things/{thing}/badge.svg", timeout=10).text)
    page = html.fromstring(requests.get(f"{b.url}/things/{thing}", timeout=10).content)
    assert "1" in page.text_content()


def test_known_remote_thing_can_be_flattred_while_its_host_is_down(nodes):
    a, b = nodes("a"), nodes("b")
    peer(a, b)
    r1, r2, blogger = a.person("one", funds=500), a.person("two", funds=500), b.person("blo")
    thing = b.thing(blogger, "https://blog.example/p")
    url = f"{b.url}/things/{thing}"
    assert a.api(r1, "POST", "/flattr", json={"url": url}).status_code == 201
    b.stop(kill=True)
    r = a.api(r2, "POST", "/flattr", json={"url": url})
    assert r.status_code == 201, r.text
    out = a.cli("peer", "sync", "--quiet", check=False)
    assert out.returncode == 1 and "waiting 2" in out.stdout
    # A thing A never saw cannot be flattred while B is down: nothing to show.
    r = a.api(r2, "POST", "/flattr", json={"url": f"{b.url}/things/{thing + 1}"})
    assert r.status_code == 502 and r.json()["error"] == "peer_unreachable"
    b.start()
    assert "delivered 2" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(thing) == 2


def test_a_delivered_flattr_fires_the_owners_webhook_once(nodes):
    """The host's inbox records a remote flattr and, in the same transaction,
    the owner's flattr.created message, as for a local flattr; a delivery
    sent again is acknowledged and fires nothing more."""
    from nodeproc import free_port
    from test_federation_hostile import node_key, send, signed
    from test_webhooks import Receiver

    a, b = nodes("a"), nodes("b", scheduler=True, tick_minutes=60)  # B's scheduler delivers webhooks
    peer(a, b)
    reader, blogger = a.person("rea", funds=500), b.person("blo")
    thing = b.thing(blogger, "https://blog.example/1", title="Hello")
    port = free_port()
    r = b.api(blogger, "POST", "/webhooks", json={"url": f"http://127.0.0.1:{port}/hook", "events": ["flattr.created"]})
    assert r.status_code == 201, r.text
    receiver = Receiver(port, r.json()["secret"]).start()
    try:
        flattr = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{thing}"}).json()
        assert "delivered 1" in a.cli("peer", "sync", "--quiet").stdout
        receiver.wait_for(1)
        ((_, kind, data),) = receiver.got
        host = a.url.split("//")[1]
        assert kind == "flattr.created" and data["id"] == f"{a.url}/federation/flattrs/{flattr['id']}"
        assert data["giver"] == {"username": f"rea@{host}"} and data["thing"]["id"] == thing and data["thing"]["title"] == "Hello"
        assert data["period"] == flattr["period"]

        # The same flattr delivered again (its answer lost, say): acknowledged, nothing more to send.
        like = {"type": "Like", "id": data["id"], "actor": f"acct:rea@{host}", "object": f"{b.url}/things/{thing}",
                "period": flattr["period"], "published": flattr["created_at"]}  # fmt: skip
        again = send(signed(f"{b.url}/federation/inbox", like, node_key(a)))
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        messages = b.api(blogger, "GET", "/webhooks/messages").json()
        assert [m["event"] for m in messages] == ["flattr.created"]
    finally:
        receiver.stop()
