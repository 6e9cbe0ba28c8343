"""Subscriptions (SPEC §9): "flattr this thing every month for 3, 6 or 12 months".

At the start of every period an active subscription makes that period's
flattr through the ordinary flattr path (flattring.flattr_thing: R3, R6, R7
are checked there and nowhere else) and counts down. Exactly once per
period: the (subscription, period) row is unique and is written in the same
transaction as the flattr, so a second process, a retry after a crash or a
tick that runs late (the node was down on the 1st) finds it and does
nothing. A period in which the person has too little in their funds (R3)
still counts, and they get a notice. An archived thing ends the subscription.

A period the node was down for from its first to its last day gets no
flattr (R7: a flattr belongs to the period in which it is recorded) and does
not count: the subscription goes on in the next period it can act in.
"""

from __future__ import annotations

import datetime as dt
import logging

from peewee import IntegrityError

from .. import periods
from ..config import Config
from ..db import database, execute, locked
from ..errors import FlattrError, FlattrOnce, FlattrOwner, Forbidden, NoMoney, NotFound, Validation
from ..i18n import said
from ..models import Flattr, Thing, User, utcnow
from ..models_sup import SUBSCRIPTION_MONTHS, Subscription, SubscriptionRun
from . import flattring, notices
from . import things as things_service
from .validate import row_id

log = logging.getLogger(__name__)
MAX_ACTIVE = 500  # per person: a subscription is a monthly write for the node


def _flattred(user_id: int, thing_id: int, period: str) -> bool:
    return Flattr.select().where((Flattr.giver == user_id) & (Flattr.thing == thing_id) & (Flattr.period == period)).exists()


def subscribe(cfg: Config, user: User, thing_id, months, now: dt.datetime | None = None) -> Subscription:
    """Start one. If the person has not flattred the thing this period, this
    period is the first (its flattr is made now); otherwise the next."""
    now = now or utcnow()
    if type(months) is not int or months not in SUBSCRIPTION_MONTHS:  # a JSON integer, as amounts are (R1)
        raise Validation(said('months must be 3, 6 or 12'), field="months")
    if thing_id is None:
        raise Validation(said('thing_id is required'), field="thing_id")
    thing = things_service.get_thing(thing_id)
    if thing.owner_id == user.id:
        raise FlattrOwner(said('you cannot subscribe to your own thing'))
    if thing.archived:
        raise Forbidden(said('this thing is archived and can no longer be flattred'))
    period = periods.name_of(now, cfg.tz)
    with database.atomic():
        locked(User.select(User.id).where(User.id == user.id)).first()  # one subscribe at a time per person
        active = Subscription.select().where((Subscription.user == user.id) & (Subscription.status == "active"))
        if active.where(Subscription.thing == thing.id).exists():
            raise Validation(said('you already subscribe to this thing: end that subscription first'), field="thing_id")
        if active.count() >= MAX_ACTIVE:
            raise Validation(said('you have %(max_active)s active subscriptions: end some first', max_active=MAX_ACTIVE), field="thing_id")
        first = periods.shift(period, 1) if _flattred(user.id, thing.id, period) else period
        sub = Subscription.create(
            user=user.id, thing=thing.id, months=months, remaining=months, started_period=first, created_at=now
        )
    if first == period:
        run_one(cfg, sub.id, now)
    return get(user, sub.id)


def get(user: User, sub_id) -> Subscription:
    number = row_id(sub_id)
    sub = None
    if number is not None:
        sub = (
            Subscription.select(Subscription, Thing)
            .join(Thing)
            .where((Subscription.id == number) & (Subscription.user == user.id))
            .first()
        )
    if sub is None:  # someone else's is "not found" too: ids tell nothing
        raise NotFound(said('you have no subscription %(sub_id)s', sub_id=sub_id))
    return sub


def list_of(user: User) -> list[Subscription]:
    return list(
        Subscription.select(Subscription, Thing)
        .join(Thing)
        .where(Subscription.user == user.id)
        .order_by(Subscription.status, Subscription.id.desc())
        .limit(1000)
    )


def active_for(user: User, thing_id: int) -> Subscription | None:
    return (
        Subscription.select()
        .where((Subscription.user == user.id) & (Subscription.thing == thing_id) & (Subscription.status == "active"))
        .first()
    )


def cancel(user: User, sub_id, now: dt.datetime | None = None) -> Subscription:
    """End it; this period's flattr, if made, stays (it is an ordinary flattr)."""
    sub = get(user, sub_id)
    with database.atomic():
        Subscription.update(status="ended", end_reason="cancelled", ended_at=now or utcnow()).where(
            (Subscription.id == sub.id) & (Subscription.status == "active")
        ).execute()
    return get(user, sub.id)


def _end(sub_id: int, reason: str, now: dt.datetime) -> None:
    Subscription.update(status="ended", end_reason=reason, ended_at=now).where(
        (Subscription.id == sub_id) & (Subscription.status == "active")
    ).execute()


def _claim(sub_id: int, period: str) -> bool:
    """The period's row, inserted first: a concurrent run of the same
    (subscription, period) inserts nothing (or waits for our commit on
    PostgreSQL, then inserts nothing) and leaves."""
    row = execute(
        "INSERT INTO subscription_run (subscription_id, period, outcome, created_at) VALUES (?, ?, 'no_money', ?) "
        "ON CONFLICT (subscription_id, period) DO NOTHING RETURNING id",
        (sub_id, period, SubscriptionRun.created_at.db_value(utcnow())),
    ).fetchone()
    return row is not None


def run_one(cfg: Config, sub_id: int, now: dt.datetime | None = None) -> str | None:
    """This period's flattr of one subscription, at most once. Returns what
    happened ('flattred', 'already', 'no_money', 'ended'), or None when there
    was nothing to do (done before, not started yet, not active)."""
    now = now or utcnow()
    period = periods.name_of(now, cfg.tz)
    with database.atomic():
        sub = locked(Subscription.select().where(Subscription.id == sub_id)).first()
        if sub is None or sub.status != "active" or sub.started_period > period or sub.remaining <= 0:
            return None
        if not _claim(sub.id, period):
            return None
        user = User.get_by_id(sub.user_id)
        outcome, flattr_id = _flattr_for(cfg, user, sub, now)
        if outcome == "ended":
            # Not a period of the subscription: the run row goes with this transaction.
            SubscriptionRun.delete().where(
                (SubscriptionRun.subscription == sub.id) & (SubscriptionRun.period == period)
            ).execute()
            return outcome
        SubscriptionRun.update(outcome=outcome, flattr=flattr_id).where(
            (SubscriptionRun.subscription == sub.id) & (SubscriptionRun.period == period)
        ).execute()
        left = sub.remaining - 1
        Subscription.update(remaining=left).where(Subscription.id == sub.id).execute()
        if left == 0:
            _end(sub.id, "done", now)
        if outcome == "no_money":
            thing = Thing.get_by_id(sub.thing_id)
            notices.queue(
                user.id,
                "subscription",
                f"subscription:{sub.id}:{period}",
                {"subscription": sub.id, "thing": thing.title, "thing_id": thing.id, "period": period,
                 "min_funds": cfg.min_monthly_budget, "remaining": left},
            )  # fmt: skip
    log.info("subscription %d, %s: %s", sub_id, period, outcome)
    return outcome


def _flattr_for(cfg: Config, user: User, sub: Subscription, now: dt.datetime) -> tuple[str, int | None]:
    """The ordinary flattr, in a savepoint: a refusal leaves the transaction usable."""
    try:
        with database.atomic():  # the savepoint
            flattr = flattring.record(cfg, user, sub.thing_id, now)
        return "flattred", flattr.id
    except NoMoney:
        return "no_money", None
    except FlattrOnce:  # the person flattred it themselves this period: it is done
        return "already", None
    except (Forbidden, FlattrOwner, NotFound):  # archived (or no longer someone else's)
        reason = "archived" if Thing.get_or_none(Thing.id == sub.thing_id) and Thing.get_by_id(sub.thing_id).archived else "own"
        _end(sub.id, reason, now)
        return "ended", None


def run_due(cfg: Config, now: dt.datetime | None = None) -> dict:
    """Every active subscription's flattr for the current period (the
    scheduler's job; safe from several processes, and again after a crash)."""
    now = now or utcnow()
    period = periods.name_of(now, cfg.tz)
    due = (
        Subscription.select(Subscription.id)
        .where(
            (Subscription.status == "active")
            & (Subscription.started_period <= period)
            & ~Subscription.id.in_(SubscriptionRun.select(SubscriptionRun.subscription).where(SubscriptionRun.period == period))
        )
        .order_by(Subscription.id)
        .tuples()
    )
    counts: dict = {}
    for (sub_id,) in list(due):
        try:
            outcome = run_one(cfg, sub_id, now)
        except (FlattrError, IntegrityError):
            log.exception("subscription %d: could not run for %s; will retry next tick", sub_id, period)
            continue
        if outcome is not None:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def flattred_in(sub: Subscription) -> list[SubscriptionRun]:
    return list(SubscriptionRun.select().where(SubscriptionRun.subscription == sub.id).order_by(SubscriptionRun.period))
