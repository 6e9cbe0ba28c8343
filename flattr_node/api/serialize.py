"""Objects of SPEC §3 as JSON-ready dicts. Amounts stay ints beside `currency`."""

from __future__ import annotations

from .. import ledger, periods
from ..bank.accounts import payout_fields
from ..bank.instructions import deposit_payment, has_qr
from ..config import Config
from ..db import execute
from ..models import Deposit, Flattr, Payout, Thing, User, utcnow


def user_public(cfg: Config, user: User) -> dict:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "about": user.about,
        "url": user.url or None,
        "created_at": periods.iso(user.created_at, cfg.tz),
    }


def user_private(cfg: Config, user: User) -> dict:
    period = periods.name_of(utcnow(), cfg.tz)
    data = user_public(cfg, user)
    data.update(
        email=user.email,
        currency=cfg.currency,
        funds=ledger.balance(user.id, "funds"),
        revenue=ledger.balance(user.id, "revenue"),
        pending_revenue=ledger.balance(user.id, "pending_revenue"),  # owed by peer nodes, not yet paid (SPEC §6)
        monthly_budget=user.monthly_budget,
        monthly_topup=user.monthly_topup,
        flattrs_this_period=Flattr.select().where((Flattr.giver == user) & (Flattr.period == period)).count(),
        is_operator=user.is_operator,
        period=period,
        **payout_fields(user.id),  # where withdrawals and refunds are sent (SPEC §7)
    )
    return data


def thing(cfg: Config, t: Thing, viewer: User | None = None) -> dict:
    return things(cfg, [t], viewer)[0]


def things(cfg: Config, page: list[Thing], viewer: User | None = None) -> list[dict]:
    """A page of things, their counts read in one query for the whole page
    (and whether `viewer` flattred them this period in one more), never one
    query per thing. The things come with their owners (a join)."""
    period = periods.name_of(utcnow(), cfg.tz)
    counts = flattr_counts([t.id for t in page], period)
    flattred = flattred_now(viewer, [t.id for t in page], period) if viewer is not None else set()
    out = []
    for t in page:
        total, this_period = counts.get(t.id, (0, 0))
        data = {
            "id": t.id,
            "url": t.url,
            "title": t.title,
            "description": t.description,
            "category": t.category,
            "language": t.language or None,
            "tags": [tag for tag in t.tags.split(",") if tag],
            "hidden": t.hidden,
            "archived": t.archived,
            "owner": {"username": t.owner.username},
            "flattrs": total,
            "flattrs_this_period": this_period,
            "created_at": periods.iso(t.created_at, cfg.tz),
            "link": f"{cfg.base_url.rstrip('/')}/things/{t.id}",
        }
        if viewer is not None:
            data["flattred"] = t.id in flattred
        out.append(data)
    return out


def id_list(ids: list[int]) -> str:
    """`ids` as a SQL list of placeholders (one per id)."""
    return ", ".join("?" * len(ids))


def flattr_counts(ids: list[int], period: str) -> dict[int, tuple[int, int]]:
    """{thing id: (flattrs ever, flattrs in `period`)} for the things of
    `ids` that have any: flattrs given here and flattrs delivered by peer
    nodes (federation). One query; SQL text, since a button's page reads it."""
    if not ids:
        return {}
    rows = execute(
        "SELECT thing_id, COUNT(*), COALESCE(SUM(CASE WHEN period = ? THEN 1 ELSE 0 END), 0) FROM "
        "(SELECT thing_id, period FROM flattr UNION ALL SELECT thing_id, period FROM inbox_flattr) AS f "
        f"WHERE thing_id IN ({id_list(ids)}) GROUP BY thing_id",
        (period, *ids),
    )
    return {thing_id: (total, now) for thing_id, total, now in rows}


def flattred_now(viewer: User, ids: list[int], period: str) -> set[int]:
    """The things of `ids` that `viewer` flattred in `period`: one query."""
    if not ids:
        return set()
    rows = execute(
        f"SELECT DISTINCT thing_id FROM flattr WHERE giver_id = ? AND period = ? AND thing_id IN ({id_list(ids)})",
        (viewer.id, period, *ids),
    )
    return {thing_id for (thing_id,) in rows}


def flattr(cfg: Config, f: Flattr) -> dict:
    t = f.thing
    data = {
        "id": f.id,
        "thing": {"id": t.id, "url": t.url, "title": t.title},
        # The giver and owner come with the flattr (flattring reads or makes
        # them with it); peewee would look up one that did not.
        "giver": {"username": f.giver.username},
        "owner": {"username": f.owner.username},
        "period": f.period,
        "created_at": periods.iso(f.created_at, cfg.tz),
        "status": f.status,
        "share": f.share,
        "fee": f.fee,
        "currency": cfg.currency,
    }
    if "@" in f.owner.username:  # a thing hosted on a peer node (federation)
        from ..federation.remote import describe_remote

        describe_remote(data, f)
    return data


def deposit(cfg: Config, d: Deposit) -> dict:
    return {
        "id": d.id,
        "amount": d.amount,
        "currency": cfg.currency,
        "reference": d.reference,
        "status": d.status,
        "created_at": periods.iso(d.created_at, cfg.tz),
        "confirmed_at": periods.iso(d.confirmed_at, cfg.tz),
        "topup_period": d.topup_period,
        "instructions": cfg.bank_instructions,
        **deposit_payment(cfg, d),  # the node's bank account and the reference in groups of four
        "qr_code": f"{cfg.base_url.rstrip('/')}/dashboard/deposits/{d.id}/qr.png" if has_qr(cfg) else None,
    }


def payout(cfg: Config, p: Payout) -> dict:
    return {
        "id": p.id,
        "amount": p.amount,
        "currency": cfg.currency,
        "status": p.status,
        "created_at": periods.iso(p.created_at, cfg.tz),
        "settled_at": periods.iso(p.settled_at, cfg.tz),
    }
