"""Flattrs (SPEC R3, R6, R7, R8)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

from .. import ledger, periods, webhooks
from ..config import Config
from ..db import database, dialect, execute
from ..errors import FlattrOnce, FlattrOwner, Forbidden, NoMoney, NotFound, PeriodClosed, Validation
from ..i18n import Amount, said
from ..models import Flattr, Period, Thing, User, utcnow
from ..rules import split_evenly
from ..urls import normalize_url
from . import people
from . import things as things_service
from .validate import row_id


def ensure_period(name: str) -> None:
    Period.insert(name=name).on_conflict_ignore().execute()


def _lock_period() -> str:
    """On PostgreSQL a flattr's insert share-locks its period's row, so a
    close cannot claim the period while the insert runs (SQLite: the write
    lock does it)."""
    return dialect().lock_clause(share=True)


def _flattr_context(thing_id: int, period: str, giver: User):
    """In one statement: the thing with its owner's name, the period's
    status, the giver's funds and whether the owner has a webhook endpoint;
    the period's row is made on the month's first flattr. None if there is
    no such thing."""

    def read():
        return execute(
            "SELECT t.id, t.owner_id, t.url, t.title, t.archived, u.username, "
            "(SELECT p.status FROM period p WHERE p.name = ?), "
            "(SELECT a.balance FROM account a WHERE a.code = ?), "
            "EXISTS (SELECT 1 FROM webhook_endpoint e WHERE e.user_id = t.owner_id AND e.enabled AND e.deleted_at IS NULL) "
            'FROM thing t JOIN "user" u ON u.id = t.owner_id WHERE t.id = ?',
            (period, ledger.user_code(giver.id, "funds"), thing_id),
        ).fetchone()

    row = read()
    if row is not None and row[6] is None:
        ensure_period(period)
        row = read()
    return row


def record(cfg: Config, giver: User, thing_id: int, now: dt.datetime) -> Flattr:
    """Every rule, then one row, inside the caller's write transaction (its
    one write also re-checks the period, under a share lock on PostgreSQL).

    The flattr path is the node's hottest write, so its statements are SQL
    text rather than peewee queries (composing those cost more than running
    them): docs/performance.md.
    """
    period = periods.name_of(now, cfg.tz)
    row = _flattr_context(thing_id, period, giver)
    if row is None:
        raise NotFound(said('no thing with id %(thing_id)s', thing_id=thing_id))
    tid, owner_id, url, title, archived, username, state, funds, hooks = row
    thing = Thing(id=tid, owner=User(id=owner_id, username=username), url=url, title=title, archived=bool(archived))
    if thing.owner_id == giver.id:
        raise FlattrOwner(said('you cannot flattr your own thing'))
    if thing.archived:
        raise Forbidden(said('this thing is archived and can no longer be flattred'))
    if state != "open":
        raise PeriodClosed(said('the period %(period)s is %(state)s: no flattr can be added to it', period=period, state=state))
    funds = funds or 0
    if funds < cfg.min_monthly_budget:
        raise NoMoney(
            said('you need at least %(min_monthly_budget)s in your funds to flattr (you have %(funds)s): open a deposit with POST /api/v1/deposits or on your dashboard, or move revenue into your funds', min_monthly_budget=Amount(cfg.min_monthly_budget, cfg.currency), funds=Amount(funds, cfg.currency)),
            words=said(
                "You need at least %(least)s in your funds to flattr, and you have %(funds)s: add funds on your dashboard's "
                "Deposits page (or move revenue into your funds), then flattr again.",
                least=Amount(cfg.min_monthly_budget, cfg.currency),
                funds=Amount(funds, cfg.currency),
            ),
        )
    # The insert itself makes sure, with the period's row share-locked on
    # PostgreSQL, that the period is still open: a close that claims it
    # waits for this insert, or this insert sees the claim and adds nothing.
    # One flattr per thing per month (R7) is the unique (giver_id, thing_id,
    # period) index: a second one, even from a concurrent request, inserts
    # nothing and returns no id.
    # The owner's webhook messages (flattr.created) go in the flattr's own
    # transaction (every caller of record holds one: flattr_node/webhooks).
    row = execute(
        "INSERT INTO flattr (giver_id, thing_id, owner_id, period, created_at, status) "
        "SELECT ?, ?, ?, ?, ?, 'pending' "
        f"WHERE EXISTS (SELECT 1 FROM period p WHERE p.name = ? AND p.status = 'open'{_lock_period()}) "
        "ON CONFLICT (giver_id, thing_id, period) DO NOTHING RETURNING id",
        (giver.id, thing.id, thing.owner_id, period, Flattr.created_at.db_value(now), period),
    ).fetchone()
    if row is not None and hooks:
        webhooks.enqueue("flattr.created", thing.owner_id, str(row[0]), now)
    if row is None:
        state = execute("SELECT status FROM period WHERE name = ?", (period,)).fetchone()[0]
        if state != "open":
            raise PeriodClosed(said('the period %(period)s is %(state)s: no flattr can be added to it', period=period, state=state))
        raise FlattrOnce(said('you already flattred this thing in %(period)s: one flattr per thing per month', period=period))
    return Flattr(id=row[0], giver=giver, thing=thing, owner=thing.owner, period=period, created_at=now, status="pending")


def flattr_thing(cfg: Config, giver: User, thing_id, now: dt.datetime | None = None) -> Flattr:
    number = row_id(thing_id)
    if number is None:
        raise NotFound(said('no such thing'))
    with database.atomic():  # one transaction on both engines (SQLite: IMMEDIATE, writers queue up front)
        return record(cfg, giver, number, now or utcnow())


def autosubmit_params(cfg: Config, url: str) -> dict | None:
    """The parameters of one of this node's auto-submit URLs, else None."""
    base = urlsplit(cfg.base_url)
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    if parts.path.rstrip("/") != base.path.rstrip("/") + "/submit/auto":
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    return {k: v[0] for k, v in query.items()}


def thing_for_autosubmit(params: dict) -> tuple[Thing | None, User, dict]:
    """Resolve an auto-submit request: (existing thing or None, owner, thing fields)."""
    user_id = params.get("user_id") or ""
    if not user_id:
        raise Validation(said('user_id is required for auto-submit'), field="user_id")
    owner = people.find_user(user_id)
    if owner is None or owner.is_suspended:
        raise NotFound(said('no person called %(user_id)s on this node', user_id=repr(user_id)))
    fields = {k: params[k] for k in ("url", "title", "description", "category", "language", "tags", "hidden") if k in params}
    fields["url"] = normalize_url(fields.get("url"))
    if not fields.get("title"):
        fields["title"] = fields["url"]
    existing = things_service.by_url(fields["url"])
    if existing is not None and existing.owner_id != owner.id:
        # The button says whom it pays: never anyone else (a thing grabbed first).
        raise Forbidden(
            said('%(url)s is registered on this node by %(username)s, not by %(username2)s: this button would pay someone other than %(username2)s, so it is refused', url=fields['url'], username=existing.owner.username, username2=owner.username)
        )
    return existing, owner, fields


def flattr_url(cfg: Config, giver: User, url, now: dt.datetime | None = None) -> Flattr:
    """POST /flattr: a registered thing's URL, or an auto-submit URL (SPEC §3)."""
    now = now or utcnow()
    if not isinstance(url, str) or not url.strip():
        raise Validation(said('url is required'), field="url")
    params = autosubmit_params(cfg, url.strip())
    from ..federation import remote

    on_peer = remote.match(url)
    if on_peer is not None:  # a thing of a peer node (SPEC §6)
        return remote.flattr_remote(cfg, giver, *on_peer, now)
    if params is None:
        return flattr_thing(cfg, giver, things_service.lookup(url).id, now)
    return flattr_autosubmit(cfg, giver, params, now)


def flattr_autosubmit(cfg: Config, giver: User, params: dict, now: dt.datetime | None = None) -> Flattr:
    """Flattr an auto-submit request; the thing is created for its owner on
    its first flattr, unless its site is verified by someone else."""
    now = now or utcnow()
    existing, owner, fields = thing_for_autosubmit(params)
    if existing is not None:
        return flattr_thing(cfg, giver, existing.id, now)
    if owner.id == giver.id:
        raise FlattrOwner(said('you cannot flattr your own thing'))
    from . import sites

    sites.check_autosubmit_owner(fields["url"], owner)
    values = things_service.new_thing_fields(owner, fields)
    with database.atomic():
        # The thing is created for its owner on its first flattr; both or neither.
        thing = things_service.by_url(values["url"]) or things_service.insert_thing(owner, values)
        return record(cfg, giver, thing.id, now)


def flattrs_of(user: User, period: str | None, incoming: bool = False) -> list[Flattr]:
    if period is not None and not periods.is_valid(period):
        raise Validation(said('period must be YYYY-MM'), field="period")
    who = Flattr.owner if incoming else Flattr.giver
    # The giver's and owner's usernames come with each row (the API shows
    # them): two lookups per flattr before, for up to 1000 flattrs.
    giver, owner = User.alias(), User.alias()
    query = (
        Flattr.select(Flattr, Thing, giver.id, giver.username, owner.id, owner.username)
        .join(Thing)
        .switch(Flattr)
        .join(giver, on=(Flattr.giver == giver.id), attr="giver")
        .switch(Flattr)
        .join(owner, on=(Flattr.owner == owner.id), attr="owner")
        .where(who == user)
    )
    if period:
        query = query.where(Flattr.period == period)
    return list(query.order_by(Flattr.created_at.desc(), Flattr.id.desc()).limit(1000))


def count_this_period(cfg: Config, thing_id) -> int:
    """A thing's flattrs this period (its badge's number); NotFound if there
    is no such thing. One statement: a badge is fetched on every view of a
    post."""
    number = row_id(thing_id)
    row = None
    if number is not None:
        row = execute(
            "SELECT (SELECT COUNT(*) FROM flattr f WHERE f.thing_id = t.id AND f.period = ?)"
            " + (SELECT COUNT(*) FROM inbox_flattr i WHERE i.thing_id = t.id AND i.period = ?) FROM thing t WHERE t.id = ?",
            (periods.name_of(utcnow(), cfg.tz), periods.name_of(utcnow(), cfg.tz), number),
        ).fetchone()
    if row is None:
        raise NotFound(said('no thing with id %(thing_id)s', thing_id=thing_id))
    return row[0]


def worth_now(cfg: Config, user: User, extra: int = 1, now: dt.datetime | None = None) -> dict:
    """What one flattr is worth right now for this reader: their spend
    (min(budget, funds), as the close will take it, R9) split evenly over
    their flattrs this period plus `extra` more. Later flattrs lower it, and
    flattrs that do not count (R8) raise it, so it is an estimate."""
    now = now or utcnow()
    period = periods.name_of(now, cfg.tz)
    n = Flattr.select().where((Flattr.giver == user) & (Flattr.period == period)).count() + extra
    funds = ledger.balance(user.id, "funds")
    spend = min(user.monthly_budget, funds)
    shares = split_evenly(max(spend, 0), n) if n > 0 else [0]
    return {
        "period": period,
        "spend": spend,
        "flattrs": n,
        "share": min(shares),
        "currency": cfg.currency,
        "funds": funds,
        "enough_funds": funds >= cfg.min_monthly_budget,  # R3
        "min_funds": cfg.min_monthly_budget,
    }


def owner_has_given(cfg: Config, owner_username: str, now: dt.datetime | None = None) -> bool:
    """R8 before the click: True when a flattr of this owner's thing would
    count as things stand (the rule is off, or they gave a flattr this
    period). False: it counts only if they give one before the month ends."""
    if not cfg.revenue_requires_giving:
        return True
    period = periods.name_of(now or utcnow(), cfg.tz)
    return (
        Flattr.select()
        .join(User, on=(Flattr.giver == User.id))
        .where((User.username == str(owner_username).lower()) & (Flattr.period == period))
        .exists()
    )

