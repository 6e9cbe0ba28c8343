"""Tables of subscriptions and notices (migrations 50 and 51 in schema.py).

A subscription's periods are rows of their own, unique per (subscription,
period): that row, written in the same transaction as the period's flattr,
is what makes "exactly once per period" hold across processes and restarts.
A notice is a row written in the same transaction as its event (a durable
queue); e-mail is sent from it after the commit.
"""

from __future__ import annotations

from peewee import SQL, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .models import BaseModel, Flattr, Thing, User, utcnow

SUBSCRIPTION_MONTHS = (3, 6, 12)


class Subscription(BaseModel):
    """'Flattr this thing every month for 3, 6 or 12 months' (Flattr, 2010)."""

    user = ForeignKeyField(User, backref="subscriptions", on_delete="RESTRICT")
    thing = ForeignKeyField(Thing, backref="subscriptions", on_delete="RESTRICT")
    months = IntegerField()
    remaining = IntegerField()
    started_period = CharField(max_length=7)  # the first period it flattrs in
    status = CharField(max_length=8, default="active")  # active | ended
    end_reason = CharField(max_length=16, default="")  # done | cancelled | archived | own
    created_at = DateTimeField(default=utcnow)
    ended_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "started_period"), False), (("user", "thing"), False))
        constraints = [
            SQL("CHECK (months IN (3, 6, 12))"),
            SQL("CHECK (remaining >= 0 AND remaining <= months)"),
            SQL("CHECK (status IN ('active', 'ended'))"),
        ]


class SubscriptionRun(BaseModel):
    """What one subscription did in one period: its flattr, or why not."""

    subscription = ForeignKeyField(Subscription, backref="runs", on_delete="RESTRICT", index=False)
    period = CharField(max_length=7)
    outcome = CharField(max_length=12)  # flattred | already | no_money
    flattr = ForeignKeyField(Flattr, null=True, on_delete="RESTRICT")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("subscription", "period"), True),)
        constraints = [SQL("CHECK (outcome IN ('flattred', 'already', 'no_money'))")]


NOTICE_KINDS = ("deposit_confirmed", "month_closed", "revenue", "payout", "subscription", "webhook_disabled")


class Notice(BaseModel):
    """One thing a person is told: shown on the dashboard, e-mailed if the
    node has SMTP and the person wants that kind. `key` makes the queueing
    idempotent ('deposit:17', 'close:2026-11:giver:4'); `params` is JSON
    rendered into words when shown or sent (in the reader's language)."""

    user = ForeignKeyField(User, backref="notices", on_delete="RESTRICT", index=False)
    kind = CharField(max_length=24)
    key = CharField(max_length=120, unique=True)
    params = TextField(default="{}")
    created_at = DateTimeField(default=utcnow)
    mail = CharField(max_length=8, default="none")  # pending | sent | none (not to be mailed)
    attempts = IntegerField(default=0)
    lease_until = DateTimeField(null=True)  # a sender's claim (several processes)
    sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "created_at"), False), (("mail", "lease_until"), False))
        constraints = [SQL("CHECK (mail IN ('pending', 'sent', 'none', 'failed'))")]


class NoticeOptOut(BaseModel):
    """A kind of notice a person does not want by e-mail (one row per kind)."""

    user = ForeignKeyField(User, backref="notice_opt_outs", on_delete="RESTRICT", index=False)
    kind = CharField(max_length=24)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("user", "kind"), True),)


class NoticeScan(BaseModel):
    """An event whose notices are derived from stored facts (a closed
    period): its row is written in the same transaction as those notices."""

    name = CharField(max_length=40, primary_key=True)
    created_at = DateTimeField(default=utcnow)


SUBSCRIPTION_MODELS = [Subscription, SubscriptionRun]
NOTICE_MODELS = [Notice, NoticeOptOut, NoticeScan]
