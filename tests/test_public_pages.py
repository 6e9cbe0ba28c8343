"""Public pages: the thing page, the confirmation page (GET shows what will be
paid, POST with a CSRF token records the flattr, R3/R6/R7 errors in words,
never framable), the badge (cacheable, no cookies) and the thing JSON."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

from button_helpers import confirm_form, parse, signin, text

from flattr_node import periods
from flattr_node.models import Flattr, Period, utcnow
from flattr_node.services import flattring, things


def register(owner, slug="p", title=None):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{slug}", "title": title or f"{owner.username}'s {slug}"})


def test_thing_page_shows_title_owner_counts_button_and_discovery(client, make_user, cfg):
    ann, kim = make_user("ann"), make_user("kim", 500)
    thing = register(ann, "post", "Ann's first post")
    flattring.flattr_thing(cfg, kim, thing.id)
    response = client.get(f"/things/{thing.id}")
    assert response.status_code == 200
    doc = parse(response)
    assert doc.find(".//h1").text == "Ann's first post"
    assert doc.find(".//a[@href='/users/ann']") is not None
    assert doc.find(".//*[@data-flattrs-this-period]").text == "1"
    assert doc.find(".//*[@data-flattrs-total]").text == "1"
    button = doc.find(".//a[@class='flattr-node-button']")
    assert button.get("href") == f"http://node.test/things/{thing.id}/flattr"
    links = {(link.get("rel"), link.get("type")): link.get("href") for link in doc.iter("link")}
    assert links[("payment", "text/html")] == f"http://node.test/things/{thing.id}"
    for kind, fmt in (("application/json+oembed", "json"), ("text/xml+oembed", "xml")):
        query = parse_qs(urlsplit(links[("alternate", kind)]).query)
        assert query == {"url": [f"http://node.test/things/{thing.id}"], "format": [fmt]}
    assert client.get("/things/999999").status_code == 404


def test_confirmation_asks_to_sign_in_then_comes_back(client, make_user):
    ann = make_user("ann")
    make_user("kim", 500)
    thing = register(ann)
    response = client.get(f"/things/{thing.id}/flattr?popup=1&origin=https://ann.example")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/signin"
    next_url = parse_qs(location.query)["next"][0]
    assert next_url == f"/things/{thing.id}/flattr?popup=1&origin=https://ann.example"
    back = signin(client, "kim", next_url=next_url.replace("&", "%26").replace("?", "%3F"))
    assert back.headers["Location"].endswith(next_url)


def test_confirmation_page_shows_what_one_flattr_is_worth_and_records_it(client, make_user, cfg):
    ann, bob = make_user("ann", 200), make_user("bob")
    kim = make_user("kim", 300, budget=300)
    bobs = register(bob)
    flattring.flattr_thing(cfg, kim, bobs.id)  # one flattr already this month
    flattring.flattr_thing(cfg, ann, bobs.id)  # ann gave this month: kim's flattr will count (R8)
    thing = register(ann)
    signin(client, "kim")
    page = client.get(f"/things/{thing.id}/flattr")
    assert page.status_code == 200
    # Framing is refused: no site can trick a reader into paying.
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    doc = parse(page)
    words = text(doc)
    assert "€3.00" in words and "2 flattrs" in words
    assert doc.find(".//*[@data-worth]").text == "€1.50"  # €3 over 2 flattrs
    worth = flattring.worth_now(cfg, kim)
    assert (worth["period"], worth["spend"], worth["flattrs"], worth["share"], worth["enough_funds"]) == (
        periods.name_of(utcnow(), cfg.tz), 300, 2, 150, True,
    )
    assert doc.find(".//*[@class='warning']") is None

    action, fields = confirm_form(doc)
    # Without the CSRF token: refused, nothing recorded.
    refused = client.post(action, data={})
    assert refused.status_code == 403
    assert Flattr.select().where(Flattr.thing == thing.id).count() == 0

    done = client.post(action, data=fields)
    assert done.status_code == 201
    assert "It now has 1 flattr this month" in text(parse(done))
    assert done.headers["X-Frame-Options"] == "DENY"
    assert Flattr.select().where((Flattr.thing == thing.id) & (Flattr.giver == kim)).count() == 1

    # R6: a second try is refused in words, and the page says so up front.
    again = client.post(action, data=fields)
    assert again.status_code == 409
    error = parse(again).find(".//*[@role='alert']")
    assert error.get("data-error") == "flattr_once" and "already flattred" in error.text
    page = parse(client.get(f"/things/{thing.id}/flattr"))
    assert "already flattred this thing this month" in text(page)
    assert Flattr.select().where(Flattr.thing == thing.id).count() == 1


def test_confirmation_errors_in_words(client, make_user, cfg):
    ann = make_user("ann")
    poor = make_user("poor", 100)  # below min_monthly_budget (R3)
    thing = register(ann)

    signin(client, "poor")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    assert "You need at least €2.00 in your funds to flattr, and you have €1.00" in text(doc.find(".//*[@class='warning']"))
    assert doc.find(".//button[@id='confirm-flattr']") is None  # no button that cannot work
    action = f"/things/{thing.id}/flattr"
    fields = {"csrf_token": next(i.get("value") for i in doc.iter("input") if i.get("name") == "csrf_token")}
    response = client.post(action, data=fields)
    assert response.status_code == 402
    alert = parse(response).find(".//*[@role='alert']")
    assert alert.get("data-error") == "no_money" and "in your funds to flattr" in alert.text

    # R6: not one's own thing; the page says so before anything is pressed.
    own = register(poor, "mine")
    page = parse(client.get(f"/things/{own.id}/flattr"))
    assert "your own thing" in text(page.find(".//*[@class='own']")) and page.find(".//button[@id='confirm-flattr']") is None
    response = client.post(f"/things/{own.id}/flattr", data=fields)
    assert response.status_code == 403
    assert parse(response).find(".//*[@role='alert']").get("data-error") == "flattr_owner"

    # R7: no flattr lands in a period that is closing.
    make_user("rich", 500)
    client.post("/signout", data={"csrf_token": fields["csrf_token"]})
    signin(client, "rich")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    action, fields = confirm_form(doc)
    period = periods.name_of(utcnow(), cfg.tz)
    flattring.ensure_period(period)
    Period.update(status="closing").where(Period.name == period).execute()
    response = client.post(action, data=fields)
    assert response.status_code == 409
    alert = parse(response).find(".//*[@role='alert']")
    assert alert.get("data-error") == "period_closed" and "is closing" in alert.text
    assert Flattr.select().count() == 0


def test_popup_result_tells_only_the_posts_origin(client, make_user):
    ann = make_user("ann")
    make_user("kim", 500)
    thing = register(ann)
    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr?popup=1&origin=https://ann.example"))
    action, fields = confirm_form(doc)
    assert (fields["popup"], fields["origin"]) == ("1", "https://ann.example")
    done = parse(client.post(action, data=fields))
    result = done.find(".//*[@id='flattr-result']")
    assert (result.get("data-thing"), result.get("data-count"), result.get("data-origin")) == (str(thing.id), "1", "https://ann.example")
    assert done.find(".//script").get("src") == "/button/done.js"

    # Another origin than the post's gets no message.
    other = register(ann, "q")
    doc = parse(client.get(f"/things/{other.id}/flattr?popup=1&origin=https://evil.example"))
    action, fields = confirm_form(doc)
    result = parse(client.post(action, data=fields)).find(".//*[@id='flattr-result']")
    assert result.get("data-origin") == ""
    # A malformed origin is dropped before it reaches the form.
    third = register(ann, "r")
    doc = parse(client.get(f"/things/{third.id}/flattr?popup=1&origin=javascript:alert(1)"))
    assert confirm_form(doc)[1]["popup"] == "1" and "origin" not in confirm_form(doc)[1]


def test_badge_is_cacheable_and_sets_no_cookie(client, make_user, cfg):
    ann, kim = make_user("ann"), make_user("kim", 500)
    thing = register(ann)
    signin(client, "kim")  # the badge must not touch this session
    first = client.get(f"/things/{thing.id}/badge.svg")
    assert first.status_code == 200
    assert first.mimetype == "image/svg+xml"
    assert "Set-Cookie" not in first.headers
    assert "Cookie" not in first.headers.get("Vary", "")
    assert first.headers["Cache-Control"] == "public, no-cache"  # stored, revalidated with the ETag
    etag = first.headers["ETag"]
    root = ET.fromstring(first.data)
    assert "0" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]

    assert client.get(f"/things/{thing.id}/badge.svg", headers={"If-None-Match": etag}).status_code == 304
    flattring.flattr_thing(cfg, kim, thing.id)
    changed = client.get(f"/things/{thing.id}/badge.svg", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "1" in [t.text for t in ET.fromstring(changed.data).iter("{http://www.w3.org/2000/svg}text")]

    compact = client.get(f"/things/{thing.id}/badge.svg?size=compact")
    assert ET.fromstring(compact.data).get("width") == "110"
    assert client.get(f"/things/{thing.id}/badge.svg?size=huge").status_code == 422
    assert client.get("/things/424242/badge.svg").status_code == 404

    by_url = client.get("/badge.svg?url=https://ann.example/p")
    assert "1" in [t.text for t in ET.fromstring(by_url.data).iter("{http://www.w3.org/2000/svg}text")]
    assert "Set-Cookie" not in by_url.headers
    unregistered = client.get("/badge.svg?url=https://ann.example/not-yet")
    assert "0" in [t.text for t in ET.fromstring(unregistered.data).iter("{http://www.w3.org/2000/svg}text")]
    assert client.get("/badge.svg?url=javascript:alert(1)").status_code == 422
    # Errors of the session-free endpoints are ordinary error pages, never a 500.
    assert client.get("/oembed?url=https://nobody.example/").status_code == 404
    assert client.get(f"/oembed?url=http://node.test/things/{thing.id}&maxwidth=x").status_code == 422
    ok = client.get(f"/oembed?url=http://node.test/things/{thing.id}")
    assert ok.status_code == 200 and "Set-Cookie" not in ok.headers and "Cookie" not in ok.headers.get("Vary", "")


def test_thing_json_has_the_count_for_any_origin(client, make_user, cfg):
    ann, kim = make_user("ann"), make_user("kim", 500)
    thing = register(ann)
    flattring.flattr_thing(cfg, kim, thing.id)
    response = client.get(f"/api/v1/things/{thing.id}", headers={"Origin": "https://blog.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert (response.json["flattrs"], response.json["flattrs_this_period"]) == (1, 1)
    # A button for a post it only knows by URL reads the count the same way.
    response = client.get("/api/v1/things/lookup", query_string={"url": thing.url}, headers={"Origin": "https://blog.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.json["id"] == thing.id and response.json["flattrs_this_period"] == 1


def test_scripts_are_served_without_session(client, make_user):
    make_user("kim", 500)
    signin(client, "kim")
    for path in ("/button.js", "/button/done.js"):
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "text/javascript"
        assert "Set-Cookie" not in response.headers and "Cookie" not in response.headers.get("Vary", "")
    assert "postMessage" in client.get("/button/done.js").get_data(as_text=True)
    assert "ev.origin !== nodeOf(a)" in client.get("/button.js").get_data(as_text=True)


def test_archived_thing_says_so_before_anything_is_pressed(client, make_user):
    ann = make_user("ann")
    make_user("kim", 500)
    thing = register(ann)
    things.archive_thing(ann, thing.id)
    signin(client, "kim")
    doc = parse(client.get(f"/things/{thing.id}/flattr"))
    assert "archived" in text(doc.find(".//*[@class='archived']"))
    assert doc.find(".//button[@id='confirm-flattr']") is None
    token = next(i.get("value") for i in doc.iter("input") if i.get("name") == "csrf_token")
    response = client.post(f"/things/{thing.id}/flattr", data={"csrf_token": token})
    assert response.status_code == 403 and parse(response).find(".//*[@role='alert']").get("data-error") == "forbidden"
    assert Flattr.select().count() == 0


def test_every_public_route_is_documented_and_the_readme_shows_the_button(app):
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "buttons.md").read_text()
    documented = {re.sub(r"\[.*?\]|\?.*", "", p) for p in re.findall(r"`(?:GET, POST |GET |POST )?(/[^` ]*)`", doc)}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("public."):
            path = re.sub(r"<(?:int:)?\w+>", "{id}", rule.rule)
            if path not in documented:
                missing.append(path)
    assert not missing, f"routes missing from docs/buttons.md: {missing}"
    readme = (root / "README.md").read_text()
    section = readme.split("## Buttons on your blog", 1)[1].split("\n## ", 1)[0]
    assert "](docs/img/button.png)" in section and (root / "docs" / "img" / "button.png").is_file()
    assert "flattr-node snippet" in section
