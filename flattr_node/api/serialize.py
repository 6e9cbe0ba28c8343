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
    period = periods.name_of(utcnow(), cfg.tz)
    # Read by every button on every page view: SQL text, not a composed query.
    # Flattrs given here and flattrs delivered by peer nodes (federation).
    counts = execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN period = ? THEN 1 ELSE 0 END), 0) FROM "
        "(SELECT period FROM flattr WHERE thing_id = ? UNION ALL SELECT period FROM inbox_flattr WHERE thing_id = ?) AS f",
        (period, t.id, t.id),
    ).fetchone()
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
        "flattrs": counts[0],
        "flattrs_this_period": counts[1],
        "created_at": periods.iso(t.created_at, cfg.tz),
        "link": f"{cfg.base_url.rstrip('/')}/things/{t.id}",
    }
    if viewer is not None:
        data["flattred"] = (
            Flattr.select().where((Flattr.giver == viewer) & (Flattr.thing == t.id) & (Flattr.period == period)).exists()
        )
    return data


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
