"""A federated month, end to end, on three real nodes: A is the readers'
home node, peered with B and C (B and C are not peered). Readers on A flattr
things on A, B and C; every clock jumps to the next month together
(libfaketime); A closes; the shares are the reference split of each
reader's whole month; statements reach B and C as pending revenue; the
operators settle; `peers check` and `check` hold on every node."""

from __future__ import annotations

import re

import pytest
from fednodes import Clock, Node, next_month_start, period_now


@pytest.fixture
def month(tmp_path):
    clock = Clock(tmp_path)
    a = Node(tmp_path, "a", postgres=True, clock=clock.path, fee_percent=10)
    b = Node(tmp_path, "b", clock=clock.path)
    c = Node(tmp_path, "c", clock=clock.path)
    for n in (a, b, c):
        n.start()
    for other in (b, c):
        a.cli("peer", "add", other.url)
        other.cli("peer", "add", a.url)
    yield clock, a, b, c
    for n in (a, b, c):
        n.drop()


def flattr(node: Node, token: str, url: str) -> dict:
    r = node.api(token, "POST", "/flattr", json={"url": url})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_federated_month_closes_and_settles(month):
    clock, a, b, c = month
    period = period_now()
    # People: readers on A; bloggers on A, B, C. B1, C1 and A1 give (R8); B2 does not.
    r1, r2, a1 = a.person("r1", funds=1000), a.person("r2", funds=300), a.person("a1", funds=500)
    assert a.api(r1, "PATCH", "/user", json={"monthly_budget": 1000}).status_code == 200
    assert a.api(r2, "PATCH", "/user", json={"monthly_budget": 300}).status_code == 200
    b1, b2 = b.person("b1", funds=300), b.person("b2")
    c1, c2 = c.person("c1", funds=300), c.person("c2")
    a.thing(a1, "https://a1.example/post")
    tb1, tb2, tb3 = b.thing(b1, "https://b1.example/1"), b.thing(b1, "https://b1.example/2"), b.thing(b2, "https://b2.example/1")
    tc1, tc2 = c.thing(c1, "https://c1.example/1"), c.thing(c2, "https://c2.example/1")
    assert b.api(b1, "POST", f"/things/{tb3}/flattr").status_code == 201  # B1 gives on B
    assert c.api(c1, "POST", f"/things/{tc2}/flattr").status_code == 201  # C1 gives on C

    given = {
        "r1": [flattr(a, r1, "https://a1.example/post"), flattr(a, r1, f"{b.url}/things/{tb1}"),
               flattr(a, r1, f"{b.url}/things/{tb3}"), flattr(a, r1, f"{c.url}/things/{tc1}")],
        "r2": [flattr(a, r2, f"{b.url}/things/{tb1}"), flattr(a, r2, f"{b.url}/things/{tb2}")],
        "a1": [flattr(a, a1, f"{b.url}/things/{tb1}")],
    }  # fmt: skip
    assert "delivered 6, waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    assert (b.count(tb1), b.count(tb2), b.count(tb3), c.count(tc1)) == (3, 1, 2, 1)

    clock.jump_to(next_month_start(period))
    out = a.cli("close-month", period, "--quiet").stdout
    assert f"period {period} closed" in out

    # The reference split of each reader's whole month (R8, R9), local and
    # remote alike: r1's budget 1000 over the three that count (B2 gave
    # nothing: not counted), the earliest one cent more; fee 10 % on A.
    expected = {
        "r1": [("counted", 334, 33), ("counted", 333, 33), ("not_counted", 0, 0), ("counted", 333, 33)],
        "r2": [("counted", 150, 15), ("counted", 150, 15)],
        "a1": [("counted", 200, 20)],
    }
    tokens = {"r1": r1, "r2": r2, "a1": a1}
    for name, flattrs in given.items():
        got = {f["id"]: f for f in a.api(tokens[name], "GET", f"/user/flattrs?period={period}").json()}
        assert [(got[f["id"]]["status"], got[f["id"]]["share"], got[f["id"]]["fee"]) for f in flattrs] == expected[name], name

    not_counted = a.api(r1, "GET", f"/user/flattrs?period={period}").json()
    (why,) = [f for f in not_counted if f["status"] == "not_counted"]
    assert why["thing"]["node"] == b.url and why["reason"] == "the owner did not flattr anything this month"

    # Statements: A owes B 300 + 135 + 135 + 180 (shares less A's fee) and C 300; sent with `peer sync`.
    assert "statements sent 2" in a.cli("peer", "sync", "--quiet").stdout
    listing = a.cli("settlement", "list").stdout
    refs = dict(re.findall(r"\t(http://[^\t]+)\twe owe\t[^\t]+\t(RF[0-9A-Z ]+)\tsent", listing))
    assert set(refs) == {b.url, c.url}, listing
    assert b.api(b1, "GET", "/user").json()["pending_revenue"] == 300 + 135 + 135 + 180
    assert b.api(b2, "GET", "/user").json()["pending_revenue"] == 0
    assert c.api(c1, "GET", "/user").json()["pending_revenue"] == 300
    assert b.api(b1, "GET", "/user").json()["revenue"] == 0
    for n in (a, b, c):
        n.cli("check")
        assert "peers agree" in n.cli("peers", "check").stdout

    # The money moves by bank transfer: A pays, B confirms (twice: once).
    assert "marked paid" in a.cli("settlement", "paid", refs[b.url]).stdout
    assert "already paid" in a.cli("settlement", "paid", refs[b.url]).stdout
    b_ref = refs[b.url].replace(" ", "").lower()  # people type references in lower case
    assert "confirmed" in b.cli("settlement", "confirm", b_ref).stdout
    assert "already confirmed" in b.cli("settlement", "confirm", refs[b.url]).stdout
    user = b.api(b1, "GET", "/user").json()
    assert (user["revenue"], user["pending_revenue"]) == (300 + 135 + 135 + 180, 0)
    bad = b.cli("settlement", "confirm", "RF18539007547034", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no statement" in bad.stderr
    for n in (a, b, c):
        n.cli("check")
        assert "peers agree" in n.cli("peers", "check").stdout
