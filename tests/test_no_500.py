"""No request, however malformed, gets a 500 (SPEC §3).

The routes come from the app's URL map, so a new /api/v1 route is covered
the day it is added. Every error body carries `error` and `error_description`.
"""

from __future__ import annotations

import json
import re

import pytest

from flattr_node.services import funds, people, things

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

NASTY_SEGMENTS = [
    "abc", "0", "-1", "1.5", "99999999999999999999999", "9223372036854775808", "%00", "a%00b",
    "%C3%BC%E2%82%AC", "%F0%9F%92%B8", "x" * 3000, "..%2F..%2Fetc%2Fpasswd", "%27%3B%20DROP%20TABLE%20txn%3B--",
    "FN-0000-0000", "fn%200000%200000", "%20", "null", "true", "%E2%80%AE", "%FF%FE",
]
NASTY_INT_SEGMENTS = ["99999999999999999999999", "9223372036854775808", "9223372036854775807", "0", "2147483648"]

NASTY_VALUES = [
    None, True, False, 0, -1, 1.5, 1e308, 2**63, 2**64, -(2**63) - 1, 10**40, "", " ", "\x00", "a\x00b",
    "x" * 100_000, "ü€💸\u202e", "\ud800", [], [1, "a"], {}, {"a": {"b": [None]}}, "NaN", "2026-13",
    "javascript:alert(1)", "http://node.test/submit/auto?user_id=ann&url=https://x.example/%00",
    "http://node.test/submit/auto?user_id=%00&url=https://x.example/a",
    "https://x.example/\ud800", "https://\ud800.example/", "http://node.test/submit/auto?user_id=ann&url=https://x.example/\ud800",
    "kim\ud800@example.org",
]
FIELDS = [
    "amount", "url", "title", "description", "category", "language", "tags", "hidden", "monthly_budget",
    "monthly_topup", "display_name", "about", "email", "show_flattrs", "period", "username",
]

BAD_BODIES = [
    b"{", b"[", b"{\"amount\": }", b"nul", b"\x00\x01\x02", b"\xff\xfe\xfd", "{\"a\": \"\ud800\"}".encode("utf-8", "surrogatepass"),
    b"[]", b"\"text\"", b"42", b"null", b"true", b"1e999", b"{\"amount\": 1e999}", b"{\"amount\": NaN}",
    b"{\"amount\": Infinity}", b"{\"amount\": -Infinity}", b"[" * 50_000 + b"]" * 50_000,
    b"{\"a\":" * 20_000 + b"1" + b"}" * 20_000, b"{\"amount\": 100, \"amount\": \"x\"}",
    b"\xef\xbb\xbf{\"amount\": 100}", b"{\"amount\": 100}" + b" " * 10,
]


def api_rules(app):
    return [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")]


def paths_for(rule, values):
    """Every way to fill the rule's parameters with the given values."""
    converters = {name: type(conv).__name__ for name, conv in rule._converters.items()}

    def fill(value_for):
        return _PARAM.sub(lambda m: str(value_for(m.group(2), converters.get(m.group(2)))), rule.rule)

    if not rule.arguments:
        return [rule.rule]
    return sorted({fill(lambda name, conv, v=v: v) for v in values})


class Checker:
    def __init__(self, client):
        self.client = client
        self.failures: dict[str, None] = {}  # ordered, without repeats
        self.count = 0

    def __call__(self, method, path, headers=None, **kw):
        self.count += 1
        r = self.client.open(path, method=method, headers=headers or {}, **kw)
        what = f"{method} {path[:120]} {repr(kw)[:120]}"
        if r.status_code >= 500:
            self.failures[f"{r.status_code}: {what}"] = None
        elif r.status_code >= 400 and method != "HEAD":
            body = r.get_json(silent=True)
            if not (isinstance(body, dict) and body.get("error") and body.get("error_description")):
                self.failures[f"{r.status_code} without an error body: {what}: {r.get_data(as_text=True)[:200]}"] = None
        return r

    def done(self):
        assert self.count > 0
        assert not self.failures, f"{len(self.failures)} of {self.count} requests failed:\n" + "\n".join(list(self.failures)[:60])


@pytest.fixture
def world(cfg, make_user, client):
    """A node with some of everything, and a token each for a person and an operator."""
    ann = make_user("ann", 5000)
    kim = make_user("kim", 5000)
    op = make_user("op", operator=True)
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    deposit = funds.open_deposit(kim, 300)
    return {
        "kim": {"Authorization": f"Bearer {people.create_token(kim)}"},
        "op": {"Authorization": f"Bearer {people.create_token(op)}"},
        "anon": {},
        "thing": thing,
        "deposit": deposit,
    }


def test_the_map_has_api_routes(app):
    rules = {r.rule for r in api_rules(app)}
    assert "/api/v1/things/<int:thing_id>/flattr" in rules and "/api/v1/user" in rules
    assert len(rules) >= 15


def test_wrong_methods_and_nasty_path_parameters(app, client, world):
    check = Checker(client)
    for rule in api_rules(app):
        for path in paths_for(rule, [world["thing"].id, *NASTY_SEGMENTS]):
            for method in METHODS:
                for who in ("anon", "kim", "op"):
                    check(method, path, headers=world[who])
        for path in paths_for(rule, NASTY_INT_SEGMENTS):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                check(method, path, headers=world["op"], json={})
    check.done()


def test_malformed_bodies(app, client, world):
    check = Checker(client)
    for rule in api_rules(app):
        for method in sorted(rule.methods & {"POST", "PATCH", "PUT", "DELETE"}):
            for path in paths_for(rule, [world["thing"].id, world["deposit"].id]):
                for body in BAD_BODIES:
                    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
                        check(method, path, headers={**world["op"], "Content-Type": content_type}, data=body)
    check.done()


def test_huge_bodies_are_refused_cleanly(app, client, world):
    check = Checker(client)
    huge = json.dumps({"amount": 100, "title": "x" * (2 * 1024 * 1024)})
    statuses = set()
    for rule in api_rules(app):
        for method in sorted(rule.methods & {"POST", "PATCH", "PUT", "DELETE"}):
            for path in paths_for(rule, [world["thing"].id]):
                r = check(method, path, headers={**world["kim"], "Content-Type": "application/json"}, data=huge)
                statuses.add(r.status_code)
    check.done()
    assert 413 in statuses


def test_wrong_types_in_every_field(app, client, world):
    check = Checker(client)
    for rule in api_rules(app):
        methods = sorted(rule.methods & {"POST", "PATCH", "PUT", "DELETE"})
        for method in methods:
            for path in paths_for(rule, [world["thing"].id]):
                for value in NASTY_VALUES:
                    check(method, path, headers=world["kim"], json={field: value for field in FIELDS})
                    for field in FIELDS:
                        check(method, path, headers=world["kim"], json={field: value})
    check.done()


def test_nasty_query_strings(app, client, world):
    check = Checker(client)
    # (a client cannot put a lone surrogate in a URL: it is not UTF-8)
    values = [v for v in NASTY_VALUES if isinstance(v, str) and "\ud800" not in v] + ["%00", "2026-01&period=2026-02", "\r\nX-Evil: 1"]
    for rule in api_rules(app):
        if "GET" not in rule.methods:
            continue
        for path in paths_for(rule, [world["thing"].id, "2026-10", "ann"]):
            for value in values:
                for who in ("anon", "kim"):
                    check("GET", path, headers=world[who], query_string={"url": value, "period": value, "format": value})
    check.done()


@pytest.mark.parametrize(
    "header",
    ["Bearer \x01\x02", "Bearer " + "x" * 10_000, "Bearer ü€", "bearer", "Bearer  two  spaces", "\t", "Basic Og==", "Bearer fn_%00"],
)
def test_nasty_authorization_headers(app, client, world, header):
    check = Checker(client)
    for rule in api_rules(app):
        for path in paths_for(rule, [world["thing"].id]):
            for method in sorted(rule.methods - {"OPTIONS"}):
                r = check(method, path, headers={"Authorization": header}, json={"amount": 100})
                if method not in ("GET", "HEAD"):  # a bad token never changes anything
                    assert r.status_code in (401, 404, 405, 422), (method, path, r.status_code)
    check.done()


def test_nasty_idempotency_keys(app, client, world):
    check = Checker(client)
    for key in ["", " ", "\x01", "ü" * 64, "k" * 65, "k" * 10_000, "a\tb"]:
        check("POST", "/api/v1/user/revenue-to-funds", headers={**world["kim"], "Idempotency-Key": key}, json={"amount": 1})
    check.done()


def test_what_the_fixed_cases_answer(world, client):
    """The bugs this file found, with the answers they now get."""
    kim = world["kim"]
    deep = b"[" * 50_000 + b"]" * 50_000
    r = client.post("/api/v1/deposits", data=deep, headers={**kim, "Content-Type": "application/json"})
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_request")
    for path in ("/api/v1/payouts", "/api/v1/user/revenue-to-funds", "/api/v1/deposits"):
        r = client.post(path, json={"amount": 10**40}, headers=kim)
        assert (r.status_code, r.get_json()["error"], r.get_json()["field"]) == (422, "validation", "amount")
    r = client.patch("/api/v1/user", json={"email": "kim\ud800@example.org"}, headers=kim)
    assert (r.status_code, r.get_json()["field"]) == (403, "email")  # and never by a token (issue 10)
    r = client.post("/api/v1/things", json={"url": "https://kim.example/\ud800", "title": "t"}, headers=kim)
    assert (r.status_code, r.get_json()["field"]) == (422, "url")
    assert client.get("/api/v1/users/a%00b").status_code == 404
    assert client.post("/api/v1/admin/deposits/FN%00/confirm", headers=world["op"]).status_code == 404
    auto = "http://node.test/submit/auto?user_id=a%00b&url=https://x.example/a"
    assert client.post("/api/v1/flattr", json={"url": auto}, headers=kim).status_code == 404
    assert client.get("/api/v1/things/99999999999999999999999").status_code == 404


def test_calendar_edges_and_non_ascii_digits(client, make_user, api_for):
    """Issue 10: these gave 500s. Amounts, sizes and periods take ASCII digits only."""
    from urllib.parse import quote

    from button_helpers import signin

    kim = make_user("kim", 500)
    api = api_for(kim)
    thing = things.register_thing(kim, {"url": "https://kim.example/p", "title": "P"})
    for name in ("9999-12", "0000-01", "0001-01", "\u0662\u0660\u0662\u0666-01", "2026-01\n"):
        r = api.get("/periods/" + quote(name, safe=""))
        assert (r.status_code, r.get_json().get("error"), r.get_json().get("field")) == (422, "validation", "period"), name
    assert api.get("/periods/2026-01").status_code == 200
    for value in ("\u00b2", "\u0661\u0660\u0660", "\uff11\uff10"):
        r = client.get("/oembed", query_string={"url": f"http://node.test/things/{thing.id}", "maxwidth": value})
        assert (r.status_code, r.get_json()["field"]) == (422, "maxwidth"), value
        assert client.get("/badge.svg", query_string={"url": "https://x.example/", "size": value}).status_code == 422
    for value in ("\u0662", "\uff12", "\u00b2", "2\n"):
        r = api.post("/deposits", json={"amount": value})
        assert (r.status_code, r.get_json()["field"]) == (422, "amount"), value
    signin(client, "kim")
    for name in ("0000-01", "9999-12", "\u0662\u0660\u0662\u0666-01"):
        r = client.get("/dashboard/history", query_string={"period": name})
        assert r.status_code == 422, name
        assert "period" in r.get_data(as_text=True)
