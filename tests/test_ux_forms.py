"""Forms speak the form's words and money; the confirmation page says before
the click when a flattr cannot be made (funds) or will not count (R8).
The API keeps its error bodies."""

from __future__ import annotations

from button_helpers import confirm_form, text
from web_helpers import errors_of, parse, post, signin

from flattr_node.models import Flattr
from flattr_node.services import flattring, things


def register(owner, slug="p"):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{slug}", "title": f"{owner.username} {slug}"})


def assert_no_api_speak(messages: list[str]) -> None:
    said = " ".join(messages)
    for api_word in ("cents", "monthly_budget", "monthly_topup", "POST ", "/api/v1", "amount must"):
        assert api_word not in said, (api_word, said)


def test_budget_topup_and_deposit_errors_in_money(client, make_user):
    make_user("kim", 300)
    signin(client, "kim")
    response = post(client, "/dashboard/budget", {"monthly_budget": "1000"}, token_from="/dashboard")
    assert response.status_code == 422
    assert errors_of(response) == ["Monthly budget must be between €2.00 and €100.00."]
    response = post(client, "/dashboard/topup", {"monthly_topup": "1"}, token_from="/dashboard")
    assert response.status_code == 422
    assert "Monthly top-up must be between €2.00 and €100.00, or empty for none." in errors_of(response)
    response = post(client, "/dashboard/deposits", {"amount": "0"}, token_from="/dashboard/deposits")
    assert response.status_code == 422
    [said] = errors_of(response)
    assert said.startswith("A deposit must be between €0.01 and €")
    response = post(client, "/dashboard/revenue-to-funds", {"move-amount": "0"}, token_from="/dashboard/payouts")
    assert response.status_code == 422
    assert "Amount must be at least €0.01." in errors_of(response)
    assert_no_api_speak(errors_of(response))


def test_flattr_without_funds_on_the_dashboard_speaks_of_the_deposits_page(client, make_user, cfg):
    ann = make_user("ann")
    register(ann)
    make_user("kim", 100)  # below the €2.00 minimum (R3)
    signin(client, "kim")
    response = post(client, "/dashboard/flattr", {"url": "https://ann.example/p"}, token_from="/dashboard")
    assert response.status_code == 422
    said = errors_of(response)
    assert "You need at least €2.00 in your funds to flattr, and you have €1.00" in " ".join(said)
    assert_no_api_speak(said)


def test_the_api_keeps_its_error_bodies(make_user, api_for):
    api = api_for(make_user("kim", 300))
    body = api.patch("/user", json={"monthly_budget": 100000}).get_json()
    assert body["error"] == "validation"
    assert body["error_description"] == "monthly_budget must be between 200 and 10000 cents"


def test_no_flattr_button_without_funds_and_a_way_to_add_them(client, make_user):
    ann = make_user("ann")
    thing = register(ann)
    make_user("kim", 100)
    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    assert doc.find(".//button[@id='confirm-flattr']") is None
    warning = doc.find(".//*[@id='add-funds']")
    assert "You need at least €2.00 in your funds to flattr, and you have €1.00" in text(warning)
    assert warning.find(".//a").get("href") == "/dashboard/deposits"
    assert "worth about" not in text(doc)


def test_the_page_says_before_the_click_when_a_flattr_will_not_count(client, make_user, cfg):
    ann, bob = make_user("ann", 300), make_user("bob")
    thing = register(ann)
    make_user("kim", 500)
    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    notice = text(doc.find(".//*[@id='will-not-count']"))
    assert "ann has not flattred anything" in notice and "will not count" in notice
    assert "worth about" not in text(doc)
    assert doc.find(".//button[@id='confirm-flattr']") is not None  # it can still be made
    # Once ann gives, the page promises the share again.
    flattring.flattr_thing(cfg, ann, register(bob).id)
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    assert doc.find(".//*[@id='will-not-count']") is None
    assert doc.find(".//*[@data-worth]").text == "€2.00"  # the €2.00 budget on one flattr
    action, fields = confirm_form(doc)
    assert client.post(action, data=fields).status_code == 201
    assert Flattr.select().where(Flattr.thing == thing.id).count() == 1


def test_with_the_rule_off_every_flattr_counts(app, cfg, make_user):
    app.config["NODE"] = cfg.with_(revenue_requires_giving=False)
    client = app.test_client()
    thing = register(make_user("ann"))
    make_user("kim", 500)
    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    assert doc.find(".//*[@id='will-not-count']") is None and doc.find(".//*[@data-worth]") is not None
