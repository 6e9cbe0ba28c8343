"""The dashboard's "worth right now" projection equals what the close then pays."""

from __future__ import annotations

import pytest
from conftest import at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flattr_node import ledger, periods
from flattr_node.closing import close_period
from flattr_node.models import Flattr, User
from flattr_node.services import flattring, reports, things

OCT = "2026-10"
AFTER_OCT = at("2026-11", 1, 0, 1)


def post_of(user, slug="p"):
    return things.register_thing(user, {"url": f"https://{user.username}.example/{slug}", "title": f"{user.username} {slug}"})


def paid(flattr_id: int) -> tuple[str, int, int]:
    f = Flattr.get_by_id(flattr_id)
    return f.status, f.share, f.fee


@pytest.mark.parametrize(
    ("budget", "funds_cents", "fee_percent"),
    [(200, 200, 0), (301, 500, 10), (1000, 250, 0), (997, 5000, 7)],
)
def test_projection_is_what_the_close_pays(cfg, make_user, budget, funds_cents, fee_percent):
    cfg = cfg.with_(fee_percent=fee_percent)
    kim = make_user("kim", funds_cents, budget=budget)
    givers = [make_user(n, 200) for n in ("ann", "bob", "cy")]
    idle = make_user("dee")  # gives nothing: her flattr does not count (R8)
    kims = post_of(kim)
    # Two flattrs in the same second: the id breaks the tie, as in the close.
    made = [flattring.flattr_thing(cfg, kim, post_of(u).id, at(OCT, 3, 10)) for u in givers]
    made.append(flattring.flattr_thing(cfg, kim, post_of(idle).id, at(OCT, 2)))
    for u in givers:
        flattring.flattr_thing(cfg, u, kims.id, at(OCT, 5))

    projection = reports.projection(cfg, kim, at(OCT, 20))

    assert projection.period == OCT
    assert projection.spend == min(budget, funds_cents)
    by_id = {p.flattr.id: p for p in projection.flattrs}
    assert set(by_id) == {f.id for f in made}
    assert sum(p.share for p in projection.flattrs) == projection.spend
    assert not by_id[made[-1].id].counted and "dee" in by_id[made[-1].id].reason

    close_period(cfg, OCT, AFTER_OCT)

    for f in made:
        p = by_id[f.id]
        assert paid(f.id) == ("counted" if p.counted else "not_counted", p.share, p.fee)
    assert ledger.balance(idle.id, "revenue") == 0
    for u in givers:
        assert ledger.balance(u.id, "revenue") == sum(p.to_owner for p in projection.flattrs if p.owner.id == u.id)


def test_projection_without_giving_to_receive(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 200, budget=200)
    ann, bob = make_user("ann"), make_user("bob")
    a = flattring.flattr_thing(cfg, kim, post_of(ann).id, at(OCT, 2))
    b = flattring.flattr_thing(cfg, kim, post_of(bob).id, at(OCT, 3))
    projection = reports.projection(cfg, kim, at(OCT, 4))
    assert [(p.counted, p.share) for p in projection.flattrs] == [(True, 100), (True, 100)]
    close_period(cfg, OCT, AFTER_OCT)
    assert paid(a.id) == ("counted", 100, 0) and paid(b.id) == ("counted", 100, 0)


def test_projection_with_no_flattrs_spends_nothing(cfg, make_user):
    kim = make_user("kim", 500, budget=300)
    projection = reports.projection(cfg, kim, at(OCT, 4))
    assert (projection.spend, projection.flattrs, projection.funds, projection.budget) == (0, [], 500, 300)


def test_months_totals_after_a_close(cfg, make_user):
    kim = make_user("kim", 200, budget=200)
    ann, bob = make_user("ann", 200), make_user("bob", 200)
    kims = post_of(kim)
    flattring.flattr_thing(cfg, kim, post_of(ann).id, at(OCT, 2))
    flattring.flattr_thing(cfg, kim, post_of(bob).id, at(OCT, 3))
    flattring.flattr_thing(cfg, ann, kims.id, at(OCT, 4))
    flattring.flattr_thing(cfg, bob, kims.id, at(OCT, 5))
    before = {m.period: m for m in reports.months(cfg, kim, now=at(OCT, 20))}
    assert (before[OCT].status, before[OCT].given, before[OCT].flattrs_given) == ("open", 0, 2)
    close_period(cfg, OCT, AFTER_OCT)
    months = reports.months(cfg, kim, now=at("2026-11", 2))
    assert [m.period for m in months] == [OCT, "2026-11"]  # from kim's first month on the node: no empty months before
    october = months[-2]
    assert months[-1].status == "open"  # November is current
    assert (october.status, october.given, october.received, october.flattrs_given, october.flattrs_received) == (
        "closed", 200, 400, 2, 2,
    )
    per_thing = reports.received_per_thing(kim, OCT)
    assert [(t.thing.id, t.flattrs, t.amount) for t in per_thing] == [(kims.id, 2, 400)]


# --- property: on any scenario, the projection is what the close pays ----------


@st.composite
def scenarios(draw):
    n = draw(st.integers(2, 4))
    people = [{"funds": draw(st.integers(200, 1500)), "budget": draw(st.integers(200, 1000))} for _ in range(n)]
    pairs = [(g, o) for g in range(n) for o in range(n) if g != o]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1, max_size=len(pairs)))
    times = [draw(st.integers(1, 3)) for _ in chosen]  # few distinct times: ties, broken by id
    fee = draw(st.sampled_from([0, 3, 10, 33]))
    requires_giving = draw(st.booleans())
    return people, list(zip(chosen, times, strict=True)), fee, requires_giving


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_projection_equals_the_close_on_any_scenario(cfg, make_user, scenario):
    people, flattrs, fee, requires_giving = scenario
    cfg = cfg.with_(fee_percent=fee, revenue_requires_giving=requires_giving)
    # Every example gets its own (later) period and its own people.
    serial = User.select().count()
    period = periods.shift("2020-01", serial)
    users = [make_user(f"s{serial}p{i}", p["funds"], budget=p["budget"]) for i, p in enumerate(people)]
    posts = [post_of(u) for u in users]
    givers = set()
    for (giver, owner), minute in flattrs:
        flattring.flattr_thing(cfg, users[giver], posts[owner].id, at(period, 10, 12, minute))
        givers.add(giver)
    projections = {g: reports.projection(cfg, users[g], at(period, 28)) for g in givers}
    shown = {p.flattr.id: p for proj in projections.values() for p in proj.flattrs}
    assert len(shown) == len(flattrs)

    close_period(cfg, period, periods.end_utc(period, cfg.tz))

    for flattr_id, p in shown.items():
        assert paid(flattr_id) == ("counted" if p.counted else "not_counted", p.share, p.fee), scenario
    for g, proj in projections.items():  # the funds lost exactly the projected spend
        assert ledger.balance(users[g].id, "funds") == people[g]["funds"] - proj.spend, scenario
