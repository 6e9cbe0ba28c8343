"""The dashboard's forms: budget and top-up, deposits, withdrawals, revenue to
funds, things and their snippets, tokens, profile; amounts in the reader's
locale and dates in the node's timezone; the 12-month chart."""

from __future__ import annotations

import datetime as dt

from conftest import at
from web_helpers import errors_of, parse, post, signin, text_of

from flattr_node import ledger
from flattr_node.closing import close_period
from flattr_node.models import ApiToken, Deposit, Payout, Thing, User
from flattr_node.services import flattring, things


def form(client, path, data):
    return post(client, path, data, token_from="/dashboard")


def test_budget_is_edited_in_place_with_errors_next_to_the_field(client, make_user):
    kim = make_user("kim", 500)
    signin(client, "kim")
    assert form(client, "/dashboard/budget", {"monthly_budget": "3,50"}).status_code == 302
    assert User.get_by_id(kim.id).monthly_budget == 350
    for bad, why in (("abc", "write an amount"), ("1", "between"), ("100.01", "between"), ("2.555", "write an amount")):
        response = form(client, "/dashboard/budget", {"monthly_budget": bad})
        assert response.status_code == 422, bad
        doc = parse(response)
        error = text_of(doc, "monthly_budget-error")
        assert why in error, (bad, error)
        field = next(n for n in doc.iter("input") if n.get("name") == "monthly_budget")
        assert field.get("aria-describedby") == "monthly_budget-error" and field.get("value") == bad
    assert User.get_by_id(kim.id).monthly_budget == 350


def test_topup_on_and_off(client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    assert form(client, "/dashboard/topup", {"monthly_topup": "5"}).status_code == 302
    assert User.get_by_id(kim.id).monthly_topup == 500
    assert form(client, "/dashboard/topup", {"monthly_topup": "1"}).status_code == 422
    assert form(client, "/dashboard/topup", {"monthly_topup": ""}).status_code == 302
    assert User.get_by_id(kim.id).monthly_topup == 0


def test_deposit_shows_reference_and_instructions_and_can_be_cancelled(client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    assert form(client, "/dashboard/deposits", {"amount": "0"}).status_code == 422
    assert form(client, "/dashboard/deposits", {"amount": "2"}).status_code == 302
    deposit = Deposit.get(Deposit.user == kim)
    assert (deposit.amount, deposit.status) == (200, "pending")
    page = client.get("/dashboard/deposits")
    table = text_of(page, "deposits")
    assert deposit.reference in table and "€2.00" in table and "quoting the reference" in table
    assert form(client, f"/dashboard/deposits/{deposit.id}/cancel", {"confirmed": "yes"}).status_code == 302
    assert Deposit.get_by_id(deposit.id).status == "cancelled"
    again = form(client, f"/dashboard/deposits/{deposit.id}/cancel", {"confirmed": "yes"})
    assert again.status_code == 422


def revenue_for(cfg, kim, ann, cents):
    """Kim receives `cents` from Ann in October (both give: R8)."""
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "Ann's post"})
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-10", 2))
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-10", 3))
    close_period(cfg, "2026-10", at("2026-11", 1, 1))
    assert ledger.balance(kim.id, "revenue") == cents


def test_withdraw_and_move_revenue_into_funds(app, client, cfg, make_user):
    app.config["NODE"] = cfg = cfg.with_(min_payout=300)
    kim = make_user("kim", 200, budget=200)
    ann = make_user("ann", 600, budget=600)
    revenue_for(cfg, kim, ann, 600)
    signin(client, "kim")
    low = form(client, "/dashboard/payouts", {"payout-amount": "2"})
    assert low.status_code == 422 and any("smallest payout is €3.00" in e for e in errors_of(low))
    too_much = form(client, "/dashboard/payouts", {"payout-amount": "7"})
    assert too_much.status_code == 422 and any("your revenue is €6.00" in e for e in errors_of(too_much))
    assert form(client, "/dashboard/payouts", {"payout-amount": "4"}).status_code == 302
    assert [(p.amount, p.status) for p in Payout.select().where(Payout.user == kim)] == [(400, "requested")]
    assert form(client, "/dashboard/revenue-to-funds", {"move-amount": "1.50"}).status_code == 302
    assert (ledger.balance(kim.id, "revenue"), ledger.balance(kim.id, "funds")) == (50, 150)
    page = client.get("/dashboard/payouts")
    assert text_of(page, "revenue") == "€0.50" and "€4.00" in text_of(page, "payouts")


def test_flattr_by_url_from_the_dashboard_with_clear_errors(client, cfg, make_user):
    kim = make_user("kim", 200)
    ann = make_user("ann")
    things.register_thing(ann, {"url": "https://ann.example/p", "title": "Ann's post"})
    things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post"})
    signin(client, "kim")
    own = form(client, "/dashboard/flattr", {"url": "https://kim.example/p"})
    assert own.status_code == 422
    assert any("your own thing" in e for e in errors_of(own))
    assert form(client, "/dashboard/flattr", {"url": "https://ann.example/p"}).status_code == 302
    twice = form(client, "/dashboard/flattr", {"url": "https://ann.example/p"})
    assert any("already flattred" in e for e in errors_of(twice))
    page = client.get("/dashboard")
    row = text_of(page, "this-month")
    assert "Ann's post" in row and "not counted" in row and "ann has not flattred anything" in row


def test_register_edit_archive_a_thing_with_its_snippets(client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    bad = form(client, "/dashboard/things", {"url": "javascript:alert(1)", "title": "x", "category": "text"})
    assert bad.status_code == 422 and any("http" in e for e in errors_of(bad))
    created = form(client, "/dashboard/things", {"url": "https://kim.example/a?utm_source=x", "title": "A & B", "category": "audio", "tags": "Jazz, live"})
    assert created.status_code == 302
    thing = Thing.get(Thing.owner == kim)
    assert (thing.url, thing.category, thing.tags) == ("https://kim.example/a", "audio", "jazz,live")
    page = client.get(f"/dashboard/things/{thing.id}")
    snippets = {n.get("id"): "".join(n.itertext()) for n in parse(page).iter("textarea") if n.get("class") == "snippet"}
    assert len(snippets) >= 1, "no snippet"
    assert all(f"/things/{thing.id}" in s or f'[flattr id="{thing.id}"' in s for s in snippets.values()), snippets
    html_snippet = snippets.get("snippet-html") or next(iter(snippets.values()))
    assert "A &amp; B" in html_snippet  # escaped inside the markup to paste
    assert form(client, f"/dashboard/things/{thing.id}", {"title": "A and B", "category": "video", "tags": ""}).status_code == 302
    assert Thing.get_by_id(thing.id).title == "A and B"
    assert form(client, f"/dashboard/things/{thing.id}/archive", {"confirmed": "yes"}).status_code == 302
    assert Thing.get_by_id(thing.id).archived
    every = [n for n in parse(client.get("/dashboard/things")).iter("textarea") if (n.get("id") or "").startswith("every-")]
    texts = ["".join(n.itertext()) for n in every]
    assert all("kim" in t for t in texts) and sum("/submit/auto?user_id=kim" in t for t in texts) >= 3


def test_tokens_are_shown_once_work_and_can_be_revoked(client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    response = form(client, "/dashboard/tokens", {"name": "my blog", "scopes": ["flattr", "thing", "email", "extendedread"]})
    assert response.status_code == 200
    token = next(n for n in parse(response).iter("input") if n.get("id") == "new-token").get("value")
    assert token.startswith("fn_")
    assert token not in client.get("/dashboard/tokens").get_data(as_text=True)  # once only
    api = client.application.test_client()
    assert api.get("/api/v1/user", headers={"Authorization": f"Bearer {token}"}).get_json()["username"] == "kim"
    row = ApiToken.get(ApiToken.user == kim)
    assert row.name == "my blog" and row.digest != token
    assert form(client, f"/dashboard/tokens/{row.id}/revoke", {"confirmed": "yes"}).status_code == 302
    assert api.get("/api/v1/user", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_profile_settings(client, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    bad = form(client, "/dashboard/profile", {"display_name": "Kim", "email": "kim@example.org", "url": "ftp://kim.example"})
    assert bad.status_code == 422 and any("http" in e for e in errors_of(bad))
    ok = form(client, "/dashboard/profile", {"display_name": "Kim K", "email": "k@example.org", "url": "https://kim.example", "about": "hi", "show_flattrs": "y", "current_password": "correct horse"})
    assert ok.status_code == 302
    kim = User.get_by_id(kim.id)
    assert (kim.display_name, kim.email, kim.url, kim.about, kim.show_flattrs) == ("Kim K", "k@example.org", "https://kim.example/", "hi", True)


def test_amounts_follow_the_readers_locale(client, make_user):
    make_user("kim", 123456)
    signin(client, "kim")
    for language, expected in (("de-DE,de;q=0.9", "1.234,56\xa0€"), ("fr", "1\u202f234,56\xa0€"), ("en-US", "€1,234.56"), ("xx-YY", "€1,234.56"), ("*", "€1,234.56")):
        page = client.get("/dashboard", headers={"Accept-Language": language})
        assert text_of(page, "funds") == " ".join(expected.split()), language
        assert expected in page.get_data(as_text=True), language  # the locale's own spaces


def test_dates_are_shown_in_the_nodes_timezone(app, client, cfg, make_user):
    app.config["NODE"] = cfg.with_(timezone="Asia/Tokyo")
    kim = make_user("kim")
    deposit_time = dt.datetime(2026, 11, 5, 20, 30)  # 05:30 on the 6th in Tokyo
    Deposit.create(user=kim, amount=100, reference="FN-TEST-0001", created_at=deposit_time)
    signin(client, "kim")
    table = text_of(client.get("/dashboard/deposits", headers={"Accept-Language": "en-GB"}), "deposits")
    assert "06/11/2026, 05:30" in table


def test_past_months_table_and_chart(client, cfg, make_user):
    kim = make_user("kim", 200, budget=200)
    ann = make_user("ann", 600, budget=600)
    revenue_for(cfg, kim, ann, 600)
    signin(client, "kim")
    page = client.get("/dashboard/history?period=2026-10")
    assert page.status_code == 200
    doc = parse(page)
    svg = next(n for n in doc.iter() if str(n.tag).endswith("}svg"))
    rects = [r for r in svg.iter() if str(r.tag).endswith("}rect")]
    assert len(rects) == 4  # from kim's first month (October) to November, given and received
    tallest = max(rects, key=lambda r: int(r.get("height")))
    assert "received" in tallest.get("class") and "€6.00" in "".join(tallest.itertext())
    months = text_of(doc, "months")
    assert "October 2026" in months and "€2.00" in months and "€6.00" in months
    assert "Kim's post" in "".join(next(doc.iter("main")).itertext())
    assert client.get("/dashboard/history?period=2026-13").status_code == 422
