"""A page of things costs the same number of queries whether it shows 5
things or 50: their counts (flattrs ever, this month, by how many people,
whether the reader flattred them) are read for the whole page at once,
never once per thing. Counted on the engine under test, through the
database's own execute_sql, for each list the APIs serve."""

from __future__ import annotations

import pytest

from flattr_node.db import database
from flattr_node.services import flattring, people, things


@pytest.fixture
def shelves(cfg, make_user):
    """bea owns 5 things and ann 50; kim flattred every third of each this month."""
    kim = make_user("kim", 5000)
    ids = {}
    for name, n in (("bea", 5), ("ann", 50)):
        owner = make_user(name)
        made = [things.register_thing(owner, {"url": f"https://{name}.example/post/{i}", "title": f"Post {i}"}) for i in range(n)]
        for t in made[::3]:
            flattring.flattr_thing(cfg, kim, t.id)
        ids[name] = [t.id for t in made]
    return {"ids": ids, "flattred": set(ids["bea"][::3] + ids["ann"][::3]), "kim_token": people.create_token(kim, "test")}


@pytest.fixture
def queries(db, monkeypatch):
    """A list that gets each SQL statement the node runs."""
    ran: list[str] = []
    real = database.obj.execute_sql

    def counting(sql, params=None, *args, **kwargs):
        ran.append(sql)
        return real(sql, params, *args, **kwargs)

    monkeypatch.setattr(database.obj, "execute_sql", counting)
    return ran


PAGES = {  # each list the APIs serve, for the things of `who`
    "/api/v1/users/<who>/things": lambda who, ids: f"/api/v1/users/{who}/things",
    "/rest/v2/users/<who>/things": lambda who, ids: f"/rest/v2/users/{who}/things?count=100",
    "/rest/v2/things/<ids>": lambda who, ids: "/rest/v2/things/" + ",".join(map(str, ids)),
    "/rest/v2/things/search": lambda who, ids: f"/rest/v2/things/search?user={who}&count=100",
}


def counted(client, queries, path: str, token: str) -> tuple[int, list]:
    del queries[:]
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return len(queries), body["things"] if isinstance(body, dict) else body


def test_a_page_of_things_costs_the_same_queries_for_5_things_as_for_50(client, shelves, queries):
    ids = shelves["ids"]
    for name, path in PAGES.items():
        few, shown_few = counted(client, queries, path("bea", ids["bea"]), shelves["kim_token"])
        many, shown_many = counted(client, queries, path("ann", ids["ann"]), shelves["kim_token"])
        assert (len(shown_few), len(shown_many)) == (5, 50), name
        assert many == few, f"{name}: {few} queries for 5 things, {many} for 50"
        for t in shown_few + shown_many:  # and each thing shows its own counts
            flattred = t["id"] in shelves["flattred"]
            assert t["flattrs"] == int(flattred) and t["flattred"] is flattred, (name, t)
            if "flattrs_user_count" in t:  # REST v2's
                assert t["flattrs_user_count"] == int(flattred) and (t["last_flattr_at"] is not None) is flattred, (name, t)
            else:
                assert t["flattrs_this_period"] == int(flattred), (name, t)
