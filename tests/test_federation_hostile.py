"""Hostile requests to a host node's inbox (SPEC §6): forged, tampered,
replayed, too old, from a non-peer, too large, speaking for someone else.
Nothing is recorded; only well-signed deliveries from a mutual peer count.

The test signs with the http-message-signatures library on its own, as
another implementation of the protocol would (docs/federation.md)."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fednodes import Node, peer, period_now
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from nodeproc import copy_rows

from flattr_node.federation.keys import public_jwk


def node_key(node: Node) -> Ed25519PrivateKey:
    (pem,) = copy_rows(node.database, "SELECT private_pem FROM node_key")[0]
    return serialization.load_pem_private_key(pem.encode(), password=None)


def signed(url: str, payload, key, *, created=None, nonce=None, raw: bytes | None = None) -> requests.PreparedRequest:
    body = raw if raw is not None else json.dumps(payload).encode()
    req = requests.Request("POST", url, data=body, headers={"Content-Type": "application/json"}).prepare()
    kid = public_jwk(key)["kid"]
    HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: key})).sign(
        req, key_id=kid, label="sig1", tag="flattr-node", nonce=nonce or secrets.token_urlsafe(16), body=body,
        created=created or dt.datetime.now(dt.UTC), covered_component_ids=("@method", "@target-uri", "content-type", "content-digest"),
    )  # fmt: skip
    return req


def send(req: requests.PreparedRequest) -> requests.Response:
    with requests.Session() as s:
        return s.send(req, timeout=30)


@pytest.fixture
def three(tmp_path):
    a, b, c = (Node(tmp_path, n, postgres=(n == "b")) for n in "abc")
    for n in (a, b, c):
        n.start()
    peer(a, b)
    c.cli("peer", "add", b.url)  # C adds B, but B never adds C: not mutual
    yield a, b, c
    for n in (a, b, c):
        n.drop()


def test_only_well_signed_deliveries_from_a_mutual_peer_count(three):
    a, b, c = three
    blogger = b.person("blo")
    thing = b.thing(blogger, "https://blog.example/1")
    inbox = f"{b.url}/federation/inbox"
    a_key = node_key(a)
    a_host = a.url.split("//")[1]

    def like(n: int, **over) -> dict:
        return {"type": "Like", "id": f"{a.url}/federation/flattrs/{n}", "actor": f"acct:rea@{a_host}",
                "object": f"{b.url}/things/{thing}", "period": period_now(),
                "published": dt.datetime.now(dt.UTC).isoformat(), **over}  # fmt: skip

    def refused(response, status, code=None):
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error_description"] and (code is None or body["error"] == code)

    first = signed(inbox, like(1), a_key)
    assert send(first).status_code == 202
    refused(send(first), 401, "unauthorized")  # the very same request again: a replay
    again = send(signed(inbox, like(1), a_key))  # a new signature, the same flattr
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert b.count(thing) == 1

    refused(requests.post(inbox, json=like(2), timeout=30), 401, "unauthorized")  # unsigned
    refused(send(signed(inbox, like(3), Ed25519PrivateKey.generate())), 403, "forbidden")  # a key B never pinned
    refused(send(signed(inbox, like(4), node_key(c))), 403, "forbidden")  # C is not B's peer
    tampered = signed(inbox, like(5), a_key)
    tampered.body = json.dumps(like(5, object=f"{b.url}/things/{thing}", actor=f"acct:mallory@{a_host}")).encode()
    tampered.headers["Content-Length"] = str(len(tampered.body))
    refused(send(tampered), 401, "unauthorized")
    now = dt.datetime.now(dt.UTC)
    refused(send(signed(inbox, like(6), a_key, created=now - dt.timedelta(minutes=6))), 401)  # too old
    refused(send(signed(inbox, like(7), a_key, created=now + dt.timedelta(minutes=6))), 401)  # from the future
    refused(send(signed(inbox, like(8, id="http://elsewhere.example/federation/flattrs/8"), a_key)), 403)  # not A's to give
    refused(send(signed(inbox, like(9, actor="acct:rea@elsewhere.example"), a_key)), 403)
    refused(send(signed(inbox, None, a_key, raw=b"x" * (2 * 1024 * 1024))), 413)  # huge
    refused(send(signed(inbox, like(10, object=f"{b.url}/things/999999"), a_key)), 422, "validation")
    refused(send(signed(inbox, like(11, period="2026-13"), a_key)), 422, "validation")
    assert b.count(thing) == 1

    # Clocks apart but within five minutes: accepted.
    assert send(signed(inbox, like(12), a_key, created=now - dt.timedelta(minutes=4))).status_code == 202
    assert send(signed(inbox, like(13), a_key, created=now + dt.timedelta(minutes=4))).status_code == 202
    assert b.count(thing) == 3
    assert copy_rows(b.database, "SELECT COUNT(*) FROM inbox_flattr")[0][0] == 3


def test_a_statement_is_applied_only_if_every_line_was_delivered_and_adds_up(three):
    a, b, c = three
    blogger = b.person("blo")
    thing = b.thing(blogger, "https://blog.example/1")
    a_key, a_host, period = node_key(a), a.url.split("//")[1], period_now()
    for n in (1, 2):
        like = {"type": "Like", "id": f"{a.url}/federation/flattrs/{n}", "actor": f"acct:rea{n}@{a_host}",
                "object": f"{b.url}/things/{thing}", "period": period, "published": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
        assert send(signed(f"{b.url}/federation/inbox", like, a_key)).status_code == 202

    def line(n, share, fee=0, amount=None):
        return {"id": f"{a.url}/federation/flattrs/{n}", "object": f"{b.url}/things/{thing}", "owner": "blo",
                "share": share, "fee": fee, "amount": share - fee if amount is None else amount}  # fmt: skip

    def statement(lines, total=None, **over):
        return {"type": "Statement", "from": a.url, "period": period, "currency": "EUR", "reference": "RF18539007547034",
                "total": sum(x["amount"] for x in lines) if total is None else total, "lines": lines, **over}  # fmt: skip

    url = f"{b.url}/federation/statements"
    hostile = [
        statement([line(1, 100), line(99, 50)]),  # flattr 99 was never delivered
        statement([line(1, 100), line(2, 50)], total=1000),  # inflated total
        statement([line(1, 100), line(2, 5000, amount=50)]),  # an amount that is not share - fee
        statement([line(1, 100), line(2, -50)]),  # negative
        statement([line(1, 100), line(1, 100)]),  # the same flattr twice
        statement([line(1, 100)], currency="USD"),
        statement([line(1, 100)], reference="RF00NOTAREFERENCE"),
        statement([line(1, 100)], period="2001-01"),  # delivered for another period
    ]
    for body in hostile:
        r = send(signed(url, body, a_key))
        assert r.status_code == 422 and r.json()["error"] == "validation", (body, r.text)
    # One statement, one bank transfer: a bad line refuses it whole, and the
    # refusal names every bad line, so the sender's operator sees them all.
    r = send(signed(url, statement([line(98, 10), line(1, 100), line(99, 50), {"id": ["x"], "share": 1, "fee": 0, "amount": 1}]), a_key))
    words = r.json()["error_description"]
    assert r.status_code == 422 and words.startswith("3 of 4 lines refused"), r.text
    assert "line 1: " in words and "flattrs/98" in words and "line 3: " in words and "flattrs/99" in words and "line 4: " in words
    assert "line 2" not in words
    assert send(signed(url, statement([line(1, 100), line(2, 50)]), node_key(c))).status_code == 403  # not a peer
    assert b.api(blogger, "GET", "/user").json()["pending_revenue"] == 0

    good = signed(url, statement([line(1, 100, 10), line(2, 50, 5)]), a_key)
    assert send(good).status_code == 202
    assert send(good).status_code == 401  # replayed
    again = send(signed(url, statement([line(1, 100, 10), line(2, 50, 5)]), a_key))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    other = send(signed(url, statement([line(1, 100, 10), line(2, 50, 5)], reference="RF712348231"), a_key))
    assert other.status_code == 422  # those flattrs are settled already
    user = b.api(blogger, "GET", "/user").json()
    assert (user["pending_revenue"], user["revenue"]) == (135, 0)
    b.cli("check")
    # What a bank import calls for a credit naming a reference (SPEC §7).
    from flattr_node import db as dbmod
    from flattr_node.errors import Validation
    from flattr_node.federation import confirm_settlement

    dbmod.bind(b.database).connect(reuse_if_open=True)
    try:
        assert confirm_settlement("RF712348231", 135) is False  # not a statement: the import tries deposits
        with pytest.raises(Validation, match="not 999"):
            confirm_settlement("RF18 5390 0754 7034", 999)
        assert confirm_settlement("rf18 5390 0754 7034", 135) is True
        with pytest.raises(Validation, match="already confirmed"):
            confirm_settlement("RF18539007547034", 135)
    finally:
        dbmod.database.close()
    user = b.api(blogger, "GET", "/user").json()
    assert (user["pending_revenue"], user["revenue"]) == (0, 135)
    assert "already confirmed" in b.cli("settlement", "confirm", "RF18 5390 0754 7034").stdout
    b.cli("check")


def test_a_peer_beyond_its_credit_limit_is_refused_and_the_reader_told_why(three):
    a, b, _ = three
    b.cli("peer", "add", a.url, "--credit-limit", "100")  # B lets A owe it at most €1.00
    blogger = b.person("blo")
    t1, t2, t3 = (b.thing(blogger, f"https://blog.example/{i}") for i in range(3))
    a_key, a_host, period = node_key(a), a.url.split("//")[1], period_now()
    # A statement A did not pay yet: A owes B €1.35.
    lines = []
    for n, share, fee in ((9001, 75, 7), (9002, 67, 0)):
        like = {"type": "Like", "id": f"{a.url}/federation/flattrs/{n}", "actor": f"acct:old{n}@{a_host}",
                "object": f"{b.url}/things/{t1}", "period": period, "published": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
        assert send(signed(f"{b.url}/federation/inbox", like, a_key)).status_code == 202
        lines.append({"id": like["id"], "object": like["object"], "owner": "blo", "share": share, "fee": fee, "amount": share - fee})
    statement = {"type": "Statement", "from": a.url, "period": period, "currency": "EUR", "reference": "RF18539007547034",
                 "total": 135, "lines": lines}  # fmt: skip
    assert send(signed(f"{b.url}/federation/statements", statement, a_key)).status_code == 202
    # A never made that statement: `peers check` on either side says so.
    for node in (a, b):
        out = node.cli("peers", "check", check=False)
        assert out.returncode == 1 and "RF18539007547034" in out.stderr and "135" in out.stderr, out

    reader = a.person("rea", funds=500)
    assert a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{t2}"}).status_code == 201
    out = a.cli("peer", "sync", "--quiet", check=False)
    assert out.returncode == 1 and "waiting 1" in out.stdout
    r = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{t3}"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "credit limit" in r.json()["error_description"] and "€1.35" in r.json()["error_description"]
    assert b.count(t2) == 0 and b.count(t3) == 0

    b.cli("settlement", "confirm", "RF18539007547034")  # A's payment arrived: A owes nothing
    assert "delivered 1, waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    assert a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{t3}"}).status_code == 201
    assert "delivered 1" in a.cli("peer", "sync", "--quiet").stdout
    assert (b.count(t2), b.count(t3)) == (1, 1)
    b.cli("check")
    a.cli("check")
