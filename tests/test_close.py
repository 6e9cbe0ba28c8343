"""The month close: R8 giving to receive, R9 the split, R10 exactly once."""

from __future__ import annotations

import threading

import pytest
from conftest import at, ledger_snapshot, use_database

from flattr_node import closing, ledger
from flattr_node.closing import close_due_periods, close_period
from flattr_node.errors import PeriodClosed, Validation
from flattr_node.models import Flattr, Period
from flattr_node.services import flattring, things

OCT = "2026-10"
AFTER_OCT = at("2026-11", 1, 0, 5)


def register(owner, slug):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{slug}", "title": f"{owner.username}'s {slug}"})


def flattringflattr(cfg, giver, thing, when):
    return flattring.flattr_thing(cfg, giver, thing.id, when)


def test_seed_example_each_owner_receives_one_euro(cfg, make_user):
    """Kim puts €2 in, budget €2, flattrs two posts: each owner receives €1.00."""
    kim = make_user("kim", 200, budget=200)
    ann = make_user("ann", 200)
    bob = make_user("bob", 200)
    kims_post, anns_post, bobs_post = register(kim, "p"), register(ann, "p"), register(bob, "p")
    flattringflattr(cfg, kim, anns_post, at(OCT, 3))
    flattringflattr(cfg, kim, bobs_post, at(OCT, 4))
    # Ann and Bob give too, so that flattrs to them count (R8).
    flattringflattr(cfg, ann, kims_post, at(OCT, 5))
    flattringflattr(cfg, bob, kims_post, at(OCT, 6))

    period = close_period(cfg, OCT, AFTER_OCT)

    assert ledger.balance(ann.id, "revenue") == 100
    assert ledger.balance(bob.id, "revenue") == 100
    assert ledger.balance(kim.id, "revenue") == 400
    assert ledger.balance(kim.id, "funds") == 0
    assert (period.status, period.givers, period.flattrs, period.counted, period.distributed, period.fees) == (
        "closed", 3, 4, 4, 600, 0,
    )
    shares = {f.thing_id: f.share for f in Flattr.select().where(Flattr.giver == kim)}
    assert shares == {anns_post.id: 100, bobs_post.id: 100}
    assert ledger.check_ledger().ok


def test_flattr_to_someone_who_gave_nothing_is_not_counted(cfg, make_user):
    kim = make_user("kim", 300, budget=300)
    ann = make_user("ann")  # gives nothing this month
    bob = make_user("bob", 200)
    kims = register(kim, "p")
    to_ann = flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))
    to_bob = flattringflattr(cfg, kim, register(bob, "p"), at(OCT, 3))
    flattringflattr(cfg, bob, kims, at(OCT, 4))

    close_period(cfg, OCT, AFTER_OCT)

    to_ann, to_bob = Flattr.get_by_id(to_ann.id), Flattr.get_by_id(to_bob.id)
    assert (to_ann.status, to_ann.share) == ("not_counted", 0)
    assert (to_bob.status, to_bob.share) == ("counted", 300)  # the whole budget
    assert ledger.balance(ann.id, "revenue") == 0
    assert ledger.balance(bob.id, "revenue") == 300


def test_without_giving_to_receive_every_flattr_counts(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 200)
    ann, bob = make_user("ann"), make_user("bob")
    flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))
    flattringflattr(cfg, kim, register(bob, "p"), at(OCT, 3))
    close_period(cfg, OCT, AFTER_OCT)
    assert ledger.balance(ann.id, "revenue") == 100
    assert ledger.balance(bob.id, "revenue") == 100


def test_leftover_cents_go_to_the_earliest_flattrs(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 200, budget=200)
    owners = [make_user(n) for n in ("ann", "bob", "cat")]
    posts = [register(o, "p") for o in owners]
    # Recorded in the order cat, ann, bob; ann and bob at the same instant (then by id).
    flattringflattr(cfg, kim, posts[2], at(OCT, 1))
    f_ann = flattringflattr(cfg, kim, posts[0], at(OCT, 2))
    f_bob = flattringflattr(cfg, kim, posts[1], at(OCT, 2))
    assert f_ann.id < f_bob.id
    close_period(cfg, OCT, AFTER_OCT)
    got = [ledger.balance(o.id, "revenue") for o in owners]
    assert got == [67, 66, 67]  # 200 = 67 + 67 + 66: cat and ann were earliest
    assert sum(got) == 200


def test_spend_is_the_smaller_of_budget_and_funds(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    rich = make_user("rich", 5000, budget=300)
    poor = make_user("poor", 250, budget=1000)
    ann = make_user("ann")
    post = register(ann, "p")
    flattringflattr(cfg, rich, post, at(OCT, 2))
    flattringflattr(cfg, poor, post, at(OCT, 2))
    close_period(cfg, OCT, AFTER_OCT)
    assert ledger.balance(rich.id, "funds") == 4700
    assert ledger.balance(poor.id, "funds") == 0
    assert ledger.balance(ann.id, "revenue") == 550


def test_budget_in_force_at_close_is_used(cfg, make_user):
    from flattr_node.services import people

    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 5000, budget=200)
    ann = make_user("ann")
    flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))
    people.update_settings(cfg, kim, {"monthly_budget": 900})
    close_period(cfg, OCT, AFTER_OCT)
    assert ledger.balance(ann.id, "revenue") == 900


def test_fee_goes_to_the_node(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False, fee_percent=10)
    kim = make_user("kim", 1000, budget=999)
    owners = [make_user(n) for n in ("ann", "bob")]
    for o in owners:
        flattringflattr(cfg, kim, register(o, "p"), at(OCT, 2))
    period = close_period(cfg, OCT, AFTER_OCT)
    # 999 = 500 + 499; fees floor(50.0) = 50 and floor(49.9) = 49.
    assert [ledger.balance(o.id, "revenue") for o in owners] == [450, 450]
    assert ledger.node_account("fees").balance == 99
    assert (period.distributed, period.fees) == (900, 99)
    assert ledger.check_ledger().ok


def test_people_without_counting_flattrs_keep_their_budget(cfg, make_user):
    kim = make_user("kim", 500)
    ann = make_user("ann")
    flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))  # ann gave nothing: not counted
    close_period(cfg, OCT, AFTER_OCT)
    assert ledger.balance(kim.id, "funds") == 500


def test_a_period_that_has_not_ended_cannot_be_closed(cfg, make_user):
    with pytest.raises(Validation, match="has not ended"):
        close_period(cfg, OCT, at(OCT, 31, 23, 59, 59))
    with pytest.raises(Validation, match="YYYY-MM"):
        close_period(cfg, "2026-13", AFTER_OCT)
    assert Period.get_or_none(Period.name == OCT) is None


@pytest.mark.parametrize("state", ["closing", "closed"])
def test_no_flattr_lands_in_a_closing_or_closed_period(cfg, make_user, state):
    kim = make_user("kim", 500)
    ann = make_user("ann")
    post = register(ann, "p")
    flattring.ensure_period(OCT)
    Period.update(status=state).where(Period.name == OCT).execute()
    # A clock that says it is still October after the close began:
    with pytest.raises(PeriodClosed):
        flattringflattr(cfg, kim, post, at(OCT, 31))
    assert Flattr.select().count() == 0


def test_closing_twice_moves_money_once(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 200)
    ann = make_user("ann")
    flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))
    close_period(cfg, OCT, AFTER_OCT)
    before = ledger_snapshot()
    close_period(cfg, OCT, at("2026-11", 2))
    assert close_due_periods(cfg, at("2026-11", 3)) == []
    assert ledger_snapshot() == before
    assert ledger.balance(ann.id, "revenue") == 200


def test_scheduler_catches_up_every_ended_period_in_order(cfg, make_user):
    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 300, budget=200)
    ann = make_user("ann")
    flattringflattr(cfg, kim, register(ann, "p1"), at("2026-08", 2))
    flattringflattr(cfg, kim, register(ann, "p2"), at("2026-09", 2))
    # The node was down from September until the middle of November.
    closed = close_due_periods(cfg, at("2026-11", 15))
    assert closed == ["2026-08", "2026-09", "2026-10"]
    # August spent 200 of 300; September could only spend the 100 left.
    assert ledger.balance(ann.id, "revenue") == 300
    assert Period.get_by_id("2026-09").distributed == 100
    assert ledger.check_ledger().ok


def build_month(cfg, make_user):
    """A small month with every kind of case: ties, fees, not counted, zero funds."""
    people = [make_user(f"p{i}", 200 + 97 * i, budget=250 + 13 * i) for i in range(7)]
    posts = [register(p, f"post{j}") for p in people for j in range(2)]
    loner = make_user("loner")  # gives nothing: flattrs to loner don't count
    lonely_post = register(loner, "post")
    for i, giver in enumerate(people[:6]):
        for j, post in enumerate(posts[(i * 3) % len(posts) :][:4] + [lonely_post]):
            if post.owner_id != giver.id:
                flattringflattr(cfg, giver, post, at(OCT, 1 + (i + j) % 3))
    return people


def test_a_close_that_fails_anywhere_then_reruns_gives_the_same_ledger(cfg, make_user, new_database_url):
    cfg = cfg.with_(fee_percent=7, close_batch_size=2)
    build_month(cfg, make_user)
    steps: list[str] = []
    close_period(cfg, OCT, AFTER_OCT, hook=lambda stage, done, total: steps.append(stage))
    expected = ledger_snapshot()
    assert ledger.check_ledger().ok
    assert "plan:before-commit" in steps and steps.count("apply") >= 3  # several batches

    for crash_at in range(len(steps)):
        use_database(new_database_url())
        build_month(cfg, make_user)
        calls = 0

        def crash(stage, done, total, crash_at=crash_at):
            nonlocal calls
            calls += 1
            if calls == crash_at + 1:
                raise RuntimeError(f"crash at {stage} {done}/{total}")

        with pytest.raises(RuntimeError, match="crash at"):
            close_period(cfg, OCT, AFTER_OCT, hook=crash)
        assert ledger.check_ledger().ok  # a half-closed month is still a balanced ledger
        close_period(cfg, OCT, at("2026-11", 1, 1))
        assert ledger_snapshot() == expected, f"after a crash at step {crash_at} ({steps[crash_at]})"


def test_two_closes_racing_move_money_once(cfg, make_user):
    cfg = cfg.with_(fee_percent=5, close_batch_size=1)
    build_month(cfg, make_user)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run():
        from flattr_node.db import database

        try:
            with database.connection_context():
                barrier.wait()
                close_period(cfg, OCT, AFTER_OCT)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert ledger.check_ledger().ok
    period = Period.get_by_id(OCT)
    assert period.status == "closed"
    paid = ledger.Txn.select().where(ledger.Txn.kind == "close").count()
    assert paid == period.givers > 0
    spent = sum(-b for b in ledger_snapshot()["balances"].values() if b < 0)
    assert spent == ledger.node_account("external").balance * -1


def test_period_summary_api(cfg, make_user, api_for):
    cfg_ = cfg
    kim = make_user("kim", 200)
    api = api_for(kim)
    response = api.get("/periods/2026-13")
    assert response.status_code == 422 and response.json["error"] == "validation"
    response = api.get(f"/periods/{OCT}")
    assert response.json["status"] == "open"
    close_period(cfg_, OCT, AFTER_OCT)
    body = api.get(f"/periods/{OCT}").json
    assert body["status"] == "closed" and body["closed_at"].endswith("+00:00")
    assert set(body) >= {"period", "status", "closed_at", "givers", "flattrs", "distributed", "fees"}
    assert closing.period_summary(cfg_, OCT)["status"] == "closed"


def test_check_finds_a_closed_period_whose_shares_do_not_add_up(cfg, make_user):
    from flattr_node.db import database

    cfg = cfg.with_(revenue_requires_giving=False)
    kim = make_user("kim", 300)
    ann = make_user("ann")
    f = flattringflattr(cfg, kim, register(ann, "p"), at(OCT, 2))
    close_period(cfg, OCT, AFTER_OCT)
    assert ledger.check_ledger().ok
    database.execute_sql("UPDATE flattr SET share = share - 1 WHERE id = " + database.param, (f.id,))
    problems = ledger.check_ledger().problems
    assert any(f"period {OCT}, giver {kim.id}: planned 200, shares add up to 199" in p for p in problems), problems


def test_a_ledger_check_does_not_hold_up_writers(cfg, make_user):
    """The check reads one snapshot while money keeps moving beside it."""
    from flattr_node.db import consistent_read, database
    from flattr_node.services import funds

    kim = make_user("kim", 200)
    deposit = funds.open_deposit(kim, 300)
    done = threading.Event()

    def confirm():
        with database.connection_context():
            funds.confirm_deposit(deposit.id)
        done.set()

    with consistent_read():
        before = ledger.balance(kim.id, "funds")
        writer = threading.Thread(target=confirm)
        writer.start()
        assert done.wait(10), "a write waited for the ledger check to finish"
        assert ledger.balance(kim.id, "funds") == before == 200  # still the snapshot it began with
    writer.join()
    assert ledger.balance(kim.id, "funds") == 500
