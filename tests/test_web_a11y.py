"""Basic accessibility of every page of the web blueprint, read with a real
HTML parser: one h1, labelled fields, errors tied to their field."""

from __future__ import annotations

import pytest
from web_helpers import parse, post, signin

from flattr_node.services import flattring, things


def problems(page: str) -> list[str]:
    doc = parse(page)
    found = []
    if doc.get("lang") != "en":
        found.append("html has no lang")
    h1 = list(doc.iter("h1"))
    if len(h1) != 1:
        found.append(f"{len(h1)} h1 elements")
    labels = {n.get("for") for n in doc.iter("label") if n.get("for")}
    wrapped = {id(i) for label in doc.iter("label") for i in label.iter() if i.tag in ("input", "select", "textarea")}
    for field in [n for n in doc.iter() if n.tag in ("input", "select", "textarea")]:
        if field.get("type") in ("hidden", "submit", "button"):
            continue
        if field.get("id") not in labels and id(field) not in wrapped and not field.get("aria-label"):
            found.append(f"unlabelled {field.tag} name={field.get('name')}")
    ids = [n.get("id") for n in doc.iter() if n.get("id")]
    if len(ids) != len(set(ids)):
        found.append(f"duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    for img in doc.iter("img"):
        if img.get("alt") is None:
            found.append("img without alt")
    for button in doc.iter("button"):
        if not "".join(button.itertext()).strip() and not button.get("aria-label"):
            found.append("button without text")
    return found


@pytest.fixture
def busy(cfg, make_user):
    ops = make_user("ops", 500, operator=True)
    kim = make_user("kim", 500)
    thing = things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post", "tags": "a,b"})
    flattring.flattr_thing(cfg, ops, thing.id)
    return ops, kim, thing


def test_every_page_has_one_h1_and_labelled_fields(app, busy):
    ops, kim, thing = busy
    simple = [r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("web.") and "GET" in r.methods and "<" not in r.rule]
    assert len(simple) >= 12
    for who, extra in (("kim", [f"/dashboard/things/{thing.id}", "/users/kim"]), ("ops", [])):
        client = app.test_client()
        signin(client, who)
        for path in sorted(set(simple + extra) - {"/healthz", "/favicon.ico"}):  # not pages
            if path.startswith("/operator") and who != "ops":
                continue
            response = client.get(path)
            assert response.status_code == 200, (who, path)
            if response.mimetype != "text/html":
                continue  # a download (the statement's CSV), not a page
            assert problems(response.get_data(as_text=True)) == [], (who, path)


def test_anonymous_pages_and_error_pages(client, busy):
    for path in ("/signin", "/signup", "/password/forgot", "/password/reset/nope", "/users/nobody", "/no-such-page"):
        assert problems(client.get(path).get_data(as_text=True)) == [], path


def test_a_field_error_is_tied_to_its_field(client, busy):
    signin(client, "kim")
    response = post(client, "/dashboard/deposits", {"amount": "lots"}, token_from="/dashboard")
    doc = parse(response)
    field = next(n for n in doc.iter("input") if n.get("name") == "amount")
    error = next(n for n in doc.iter() if n.get("id") == field.get("aria-describedby"))
    assert field.get("aria-invalid") == "true" and error.get("role") == "alert" and "amount" in "".join(error.itertext())
    assert problems(response.get_data(as_text=True)) == []
