"""Public profiles and the directory of creators."""

from __future__ import annotations

from web_helpers import parse

from flattr_node.models import Thing, User, utcnow
from flattr_node.services import flattring, people, things


def names_in_directory(client, query: str = "") -> list[str]:
    response = client.get("/directory" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    doc = parse(response)
    return [" ".join("".join(h.itertext()).split()) for li in doc.iter("li") if "creator" in (li.get("class") or "") for h in li.iter("h2")]


def post(owner, slug, **extra):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{slug}", "title": f"{owner.username} {slug}", **extra})


def test_directory_sorted_by_flattrs_this_month_with_search(client, cfg, make_user):
    ann, bob, cy = make_user("ann", 300), make_user("bob", 300), make_user("cy", 300)
    dee = make_user("dee", 300)
    people.update_settings(cfg, ann, {"display_name": "Ann Archer"})
    a = post(ann, "song", category="audio", tags="jazz,live")
    b = post(bob, "code", category="software", tags="python")
    post(cy, "photo", category="images", tags="jazz")
    post(dee, "secret", hidden=True)  # hidden: dee is not listed
    now = utcnow()
    for giver in (bob, cy, dee):
        flattring.flattr_thing(cfg, giver, a.id, now)
    flattring.flattr_thing(cfg, cy, b.id, now)
    assert names_in_directory(client) == ["Ann Archer @ann", "bob", "cy"]
    assert names_in_directory(client, "?q=arch") == ["Ann Archer @ann"]
    assert names_in_directory(client, "?category=software") == ["bob"]
    assert names_in_directory(client, "?tag=JAZZ") == ["Ann Archer @ann", "cy"]
    assert names_in_directory(client, "?tag=jaz") == []  # whole tags only
    assert names_in_directory(client, "?q=%25") == []  # LIKE wildcards are literal
    assert client.get("/directory?category=nonsense").status_code == 422
    User.update(is_suspended=True).where(User.id == bob.id).execute()
    assert names_in_directory(client) == ["Ann Archer @ann", "cy"]


def test_profile_shows_things_and_flattrs_only_when_allowed(client, cfg, make_user):
    kim, ann = make_user("kim", 300), make_user("ann")
    people.update_settings(cfg, kim, {"about": "I read a lot", "url": "https://kim.example"})
    visible = post(kim, "visible")
    post(kim, "hidden", hidden=True)
    anns = post(ann, "post")
    flattring.flattr_thing(cfg, kim, anns.id)
    page = client.get("/users/kim").get_data(as_text=True)
    assert "kim visible" in page and "kim hidden" not in page and "I read a lot" in page
    assert "Recently flattred" not in page and "ann post" not in page
    people.update_settings(cfg, kim, {"show_flattrs": True})
    page = client.get("/users/kim").get_data(as_text=True)
    assert "Recently flattred" in page and "ann post" in page
    ann_page = client.get("/users/ann").get_data(as_text=True)
    assert "1 flattr this month, 1 in all" in " ".join(ann_page.split())
    things.archive_thing(kim, visible.id)
    assert "archived" in client.get("/users/kim").get_data(as_text=True)
    assert Thing.get_by_id(visible.id).archived


def test_unknown_and_suspended_profiles_are_not_found(client, make_user):
    kim = make_user("kim")
    assert client.get("/users/nobody").status_code == 404
    User.update(is_suspended=True).where(User.id == kim.id).execute()
    assert client.get("/users/kim").status_code == 404
