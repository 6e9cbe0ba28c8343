"""R8 and R9 are written once as pure Python and once as SQL (rules.py);
Hypothesis pins the SQL to the Python on the engine under test: random small
months (ties in time, people without money, owners who give nothing, any
fee, remote flattrs whose delivery is pending, acknowledged or refused),
planned and paid by the close's own SQL inside a transaction that is rolled
back, against rules.split_month."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flattr_node import ledger, rules
from flattr_node.closing import month
from flattr_node.db import database
from flattr_node.federation.models import Outbox, Peer
from flattr_node.models import Account, Flattr, Thing, User

PERIOD = "2030-01"
START = dt.datetime(2030, 1, 1)


@st.composite
def months(draw):
    people = draw(st.integers(min_value=2, max_value=6))
    budgets = draw(st.lists(st.integers(0, 700), min_size=people, max_size=people))
    funds = draw(st.lists(st.sampled_from([0, 1, 3, 99, 250, 1000]) | st.integers(0, 1000), min_size=people, max_size=people))
    pairs = [(g, t) for g in range(people) for t in range(people) if g != t]  # person t owns thing t
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))
    # Few distinct moments: many ties, which the id breaks.
    moments = draw(st.lists(st.integers(0, 3), min_size=len(chosen), max_size=len(chosen)))
    # None: a local flattr; else a remote one and the state of its delivery.
    delivery = st.sampled_from([None, None, "pending", "delivered", "refused"])
    deliveries = draw(st.lists(delivery, min_size=len(chosen), max_size=len(chosen)))
    return {
        "budgets": budgets,
        "funds": funds,
        "flattrs": [(g, t, m, d) for (g, t), m, d in zip(chosen, moments, deliveries, strict=True)],
        "fee_percent": draw(st.sampled_from([0, 1, 7, 10, 33, 100]) | st.integers(0, 100)),
        "requires_giving": draw(st.booleans()),
    }


def fill(m: dict) -> tuple[list[int], list[rules.MonthFlattr]]:
    """The month in the database; its people's ids and its flattrs."""
    users = []
    for i, (budget, funds) in enumerate(zip(m["budgets"], m["funds"], strict=True)):
        user = User.create(username=f"p{i}", email=f"p{i}@example.org", password_hash="!", monthly_budget=budget)
        ledger.open_user_accounts(user)
        Account.update(balance=funds).where(Account.code == ledger.user_code(user.id, "funds")).execute()
        users.append(user.id)
    things = [Thing.create(owner=u, url=f"https://example.org/{u}", title="t").id for u in users]
    flattrs = []
    peer = Peer.create(base_url="https://peer.example", key_id="k", public_key="x", inbox_url="https://peer.example/inbox", currency="EUR")
    for g, t, moment, delivery in m["flattrs"]:
        at = START + dt.timedelta(hours=moment)
        f = Flattr.create(giver=users[g], thing=things[t], owner=users[t], period=PERIOD, created_at=at)
        if delivery is not None:
            Outbox.create(flattr=f, peer=peer, status=delivery)
        flattrs.append(rules.MonthFlattr(f.id, users[g], users[t], at, held=delivery in (None, "delivered")))
    return users, flattrs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=months())
def test_the_close_sql_decides_what_the_pure_rules_decide(cfg, db, m):
    cfg = cfg.with_(fee_percent=m["fee_percent"], revenue_requires_giving=m["requires_giving"], close_batch_size=2)
    with database.atomic() as tx:
        users, flattrs = fill(m)
        spend = {u: rules.spend_of(b, f) for u, b, f in zip(users, m["budgets"], m["funds"], strict=True)}
        expected = rules.split_month(flattrs, spend, m["fee_percent"], m["requires_giving"])

        totals = month.plan(cfg, PERIOD)
        while month.pay_batch(cfg, PERIOD, START):
            pass

        got = {f.id: rules.Outcome(f.status == "counted", f.share, f.fee) for f in Flattr.select().where(Flattr.period == PERIOD)}
        assert got == expected
        assert totals["counted"] == sum(o.counted for o in expected.values())
        assert totals["fees"] == sum(o.fee for o in expected.values())
        assert totals["distributed"] == sum(o.share - o.fee for o in expected.values())

        # What each giver's close transaction moves, from the same outcomes.
        fees_account = ledger.node_account("fees").id
        want = defaultdict(lambda: defaultdict(int))
        for f in flattrs:
            o = expected[f.id]
            if o.counted and spend[f.giver] > 0:
                want[f.giver][ledger.user_account(f.giver, "funds").id] -= o.share
                want[f.giver][ledger.user_account(f.owner, "revenue").id] += o.share - o.fee
                want[f.giver][fees_account] += o.fee
        want = {g: {a: v for a, v in moves.items() if v} for g, moves in want.items()}
        posted = defaultdict(dict)
        for key, account, amount in database.execute_sql(
            "SELECT t.key, x.account_id, x.amount FROM txn t JOIN posting x ON x.txn_id = t.id WHERE t.kind = 'close'"
        ).fetchall():
            posted[int(key.rsplit(":", 1)[1])][account] = amount
        assert dict(posted) == want
        tx.rollback()


def test_split_month_worked_example_of_the_spec():
    """R9's example: funds and budget €2, two flattrs, fee 0: €1.00 each."""
    t = START
    flattrs = [rules.MonthFlattr(1, 10, 20, t), rules.MonthFlattr(2, 10, 30, t)]
    out = rules.split_month(flattrs, {10: 200}, 0, requires_giving=False)
    assert out == {1: rules.Outcome(True, 100, 0), 2: rules.Outcome(True, 100, 0)}
    # With R8 on, neither owner gave: nothing counts.
    out = rules.split_month(flattrs, {10: 200}, 0, requires_giving=True)
    assert {o.status for o in out.values()} == {"not_counted"}


def test_a_remote_flattr_its_host_does_not_have_never_counts():
    """Held (SPEC §6): a remote flattr whose host refused it, or has not
    received it, takes no share, even with R8 off; the others take it all."""
    t = START
    flattrs = [rules.MonthFlattr(1, 10, 20, t, held=False), rules.MonthFlattr(2, 10, 30, t)]
    for requires_giving, gave in ((False, None), (True, {20, 30})):
        out = rules.split_month(flattrs, {10: 200}, 0, requires_giving, gave)
        assert out == {1: rules.Outcome(False, 0, 0), 2: rules.Outcome(True, 200, 0)}
