"""Fuzzing the JSON API with schemathesis, driven by the node's own
`/api/v1/openapi.json`: valid and invalid requests for every operation,
authenticated with a Bearer token. No 500s, and every response (status,
content type, body) matches the document. Plus hostile strings in every
text field of every body: refused with a 4xx and the SPEC's error body, or
stored exactly as sent."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
import schemathesis
from conftest import Api
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flattr_node.api import openapi_paths
from flattr_node.services import things
from flattr_node.services.validate import is_utf8

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 8  # per operation and mode: the whole file stays within a few minutes


def operations() -> list[str]:
    from importlib import resources

    doc = json.loads(resources.files("flattr_node").joinpath("openapi.json").read_text())
    return [f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops]


@pytest.fixture
def fuzz_node(app, cfg, make_user):
    """A node with people, money, things, a flattr and a payout to aim at."""
    op = make_user("op", 5000, operator=True)
    kim = make_user("kim", 5000)
    ann = make_user("ann", 5000)
    t1 = things.register_thing(kim, {"url": "https://kim.example/post", "title": "Kim's post"})
    things.register_thing(ann, {"url": "https://ann.example/song", "title": "Ann's song"})
    from flattr_node.services import flattring, people

    flattring.flattr_thing(cfg, ann, t1.id)
    return {"op": people.create_token(op, "fuzz"), "kim": people.create_token(kim, "fuzz")}


def test_the_document_declares_every_api_route(app):
    def shape(path):  # parameter names may differ: /things/<int:thing_id> ~ /things/{id}
        return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)

    routes = {
        (shape(rule.rule.removeprefix("/api/v1")), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    declared = {(shape(label.split(" ", 1)[1]), label.split(" ", 1)[0]) for label in operations()}
    assert routes == declared
    assert {shape(p) for p in openapi_paths()} == {p for p, _ in routes}


def test_the_node_serves_the_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["components"]["schemas"]) >= {"UserPrivate", "UserPublic", "Thing", "Flattr", "Deposit", "Payout", "Period", "Error"}


@pytest.mark.parametrize("label", operations())
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_operation(app, fuzz_node, label, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    token = fuzz_node["op"] if "/admin/" in label else fuzz_node["kim"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        if mode is not GenerationMode.NEGATIVE:
            raise
        pytest.skip(f"{label}: every input of the declared types is valid, so there is nothing invalid to send")


HOSTILE = [
    "'; DROP TABLE flattr; --",
    '" OR 1=1 --',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "]]></title><x>",
    "{{7*7}} ${7*7} %s %n",
    "\x00nul",
    "line\nbreak",
    "\u202eevil RTL\u202c",
    "e\u0301\u0301\u0301 zalgo",
    "😀" * 50,
    "\ud83d",  # a lone surrogate, as JSON allows
    "\\\\..\\..\\etc\\passwd",
    "x" * 100_000,
    "",
    " ",
    "9999-12",  # issue 10: the edges of the calendar gave 500s as period names
    "0000-01",
    "٢٠٢٦-01",  # Arabic-Indic digits: not a period, not an amount
    "²",
]


FREE_TEXT = {"title", "description", "language", "display_name", "about"}


def _text_fields(schema_name: str) -> list[str]:
    from importlib import resources

    doc = json.loads(resources.files("flattr_node").joinpath("openapi.json").read_text())
    props = doc["components"]["schemas"][schema_name]["properties"]
    return [k for k, v in props.items() if v.get("type") == "string" or "oneOf" in v]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_in_every_text_field(client, fuzz_node, value):
    api = Api(client, fuzz_node["kim"])
    checks = []
    for field in _text_fields("NewThing"):
        data = {"url": "https://kim.example/new", "title": "A title", field: value}
        checks.append(("POST /things", api.post("/things", json=data), field))
    thing_id = api.get("/users/kim/things").get_json()[0]["id"]
    for field in _text_fields("ThingChanges"):
        checks.append((f"PATCH /things/{thing_id}", api.patch(f"/things/{thing_id}", json={field: value}), field))
    for field in _text_fields("UserChanges"):
        checks.append(("PATCH /user", api.patch("/user", json={field: value}), field))
    checks.append(("POST /flattr", api.post("/flattr", json={"url": value}), "url"))
    if is_utf8(value):  # a URL cannot carry a lone surrogate at all
        in_path = quote(value[:300], safe="")
        checks.append(("GET /things/lookup", api.get("/things/lookup", query_string={"url": value}), "url"))
        checks.append(("GET /users/x", api.get("/users/" + in_path), "username"))
        checks.append(("GET /periods/x", api.get("/periods/" + in_path), "period"))
        checks.append(("confirm", Api(client, fuzz_node["op"]).post(f"/admin/deposits/{in_path}/confirm"), "id"))
        checks.append(("paid", Api(client, fuzz_node["op"]).post(f"/admin/payouts/{in_path}/paid"), "id"))
    for what, response, field in checks:
        assert response.status_code < 500, f"{what} {field}={value[:40]!r}: {response.status_code}"
        body = response.get_json()
        if response.status_code >= 400:
            assert set(body) >= {"error", "error_description"}, f"{what} {field}: {body}"
        elif what.startswith(("POST /things", "PATCH")) and field in FREE_TEXT:
            assert (body[field] or "") == value.strip(), f"{what} {field} was changed on the way in"
