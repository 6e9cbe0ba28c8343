"""The small things a new person meets: /sites reachable from the
dashboard, a favicon, "1 flattr" and "2 flattrs", a history that starts when
they joined, and a fresh node that closes no month from before it existed."""

from __future__ import annotations

import datetime as dt

from web_helpers import parse, signin

from flattr_node import periods
from flattr_node.closing import close_due_periods
from flattr_node.models import Flattr, Period, User, utcnow
from flattr_node.services import flattring, things
from flattr_node.words import count, plural


def test_sites_is_a_dashboard_tab(client, make_user):
    make_user("ann")
    signin(client, "ann")
    tabs = parse(client.get("/dashboard")).find(".//nav[@class='tabs']")
    links = {a.text: a.get("href") for a in tabs.iter("a")}
    assert links["Sites"] == "/sites"
    page = parse(client.get("/sites"))
    assert page.find(".//nav[@class='tabs']//a[@aria-current='page']").text == "Sites"


def test_every_page_names_a_favicon_that_exists(client):
    doc = parse(client.get("/"))
    icon = next(link for link in doc.iter("link") if link.get("rel") == "icon")
    response = client.get(icon.get("href"))
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    old_style = client.get("/favicon.ico")
    assert old_style.status_code == 301 and old_style.headers["Location"].endswith(icon.get("href"))


def words_of(response) -> str:
    return " ".join(" ".join(parse(response).find(".//main").itertext()).split())


def test_one_flattr_two_flattrs(client, cfg, make_user):
    assert (plural(1, "flattr", "flattrs"), count(0, "flattr", "flattrs"), count(2, "person", "people")) == ("flattr", "0 flattrs", "2 people")
    ann = make_user("ann")
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "Ann's post"})
    kim = make_user("kim", 500)
    flattring.flattr_thing(cfg, kim, thing.id)
    assert "1 flattr this month, 1 in all" in words_of(client.get(f"/things/{thing.id}"))
    assert "1 flattr by 1 person" in words_of(client.get("/"))
    flattring.flattr_thing(cfg, make_user("bob", 500), thing.id)
    assert "2 flattrs this month, 2 in all" in words_of(client.get(f"/things/{thing.id}"))
    assert "2 flattrs by 2 people" in words_of(client.get("/"))


def test_a_new_persons_history_starts_when_they_joined(client, cfg, make_user):
    kim = make_user("kim")
    signin(client, "kim")
    rows = parse(client.get("/dashboard/history")).findall(".//table[@id='months']/tbody/tr")
    assert len(rows) == 1  # this month only, not 11 empty ones before it
    # Someone who joined three months ago sees those months.
    joined = utcnow() - dt.timedelta(days=80)
    User.update(created_at=joined).where(User.id == kim.id).execute()
    rows = parse(client.get("/dashboard/history")).findall(".//table[@id='months']/tbody/tr")
    now = periods.name_of(utcnow(), cfg.tz)
    assert len(rows) == len({periods.name_of(joined, cfg.tz), periods.shift(now, -1), periods.shift(now, -2), now})


def test_a_fresh_node_closes_no_month_from_before_it_existed(cfg, db):
    now = utcnow()
    assert close_due_periods(cfg, now) == []
    last = periods.last_ended(now, cfg.tz)
    assert Period.get_or_none(Period.name == last) is None
    # A month later the month the node began in has ended: it is closed.
    this = periods.name_of(now, cfg.tz)
    later = periods.start_utc(periods.shift(this, 1), cfg.tz) + dt.timedelta(hours=1)
    assert close_due_periods(cfg, later) == [this]


def test_a_node_that_holds_older_months_still_catches_up(cfg, make_user):
    """Empty months between a node's first and now are closed, as before."""
    cfg = cfg.with_(revenue_requires_giving=False)
    kim, ann = make_user("kim", 300), make_user("ann")
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    flattring.flattr_thing(cfg, kim, thing.id, dt.datetime(2026, 8, 2, 12))
    assert close_due_periods(cfg, dt.datetime(2026, 11, 15, 12)) == ["2026-08", "2026-10"]
    assert Flattr.get().status == "counted"
