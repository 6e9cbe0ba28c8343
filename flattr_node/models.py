"""The schema. CHECK constraints back the money rules in the database itself,
so that a bug in a service cannot write a negative balance or a self-flattr.
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    SQL,
    BigIntegerField,
    BooleanField,
    CharField,
    Check,
    CompositeKey,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from .db import database

CATEGORIES = ("text", "images", "video", "audio", "software", "people", "rest")


def utcnow() -> dt.datetime:
    """Naive UTC: what every DateTimeField stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    username = CharField(max_length=40, unique=True)
    email = CharField(max_length=254)
    password_hash = CharField(max_length=255)
    display_name = CharField(max_length=100, default="")
    about = TextField(default="")
    url = CharField(max_length=2048, default="")
    is_operator = BooleanField(default=False)
    is_suspended = BooleanField(default=False)
    show_flattrs = BooleanField(default=False)
    monthly_budget = BigIntegerField(constraints=[Check("monthly_budget >= 0")])
    monthly_topup = BigIntegerField(default=0, constraints=[Check("monthly_topup >= 0")])
    topup_set_at = DateTimeField(null=True)  # a top-up starts with the next period
    created_at = DateTimeField(default=utcnow)
    language = CharField(max_length=8, default="")  # en | de | sv, chosen with the switch; "": the browser's

    # flask-login's protocol
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return not self.is_suspended

    def get_id(self) -> str:
        return str(self.id)


class Account(BaseModel):
    """A ledger account. `code` names it: 'user:42:funds', 'node:external'.

    Only the external account (the world outside the node) may go negative.
    """

    code = CharField(max_length=64, unique=True)
    kind = CharField(max_length=16)  # funds | revenue | external | fees | payouts
    # Indexed with kind below: a person's account of a kind is one index probe.
    user = ForeignKeyField(User, null=True, backref="accounts", on_delete="RESTRICT", index=False)
    balance = BigIntegerField(default=0)

    class Meta:
        indexes = ((("user", "kind"), True),)  # a person has one account of each kind
        constraints = [SQL("CHECK (kind = 'external' OR balance >= 0)")]


class Txn(BaseModel):
    """One movement of money. `key` makes it idempotent: a retry finds it."""

    key = CharField(max_length=120, unique=True)
    kind = CharField(max_length=24)
    memo = TextField(default="")
    created_at = DateTimeField(default=utcnow)


class Posting(BaseModel):
    txn = ForeignKeyField(Txn, backref="postings", on_delete="RESTRICT")
    account = ForeignKeyField(Account, backref="postings", on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount <> 0")])


class Period(BaseModel):
    """A calendar month in the node's timezone and the state of its close."""

    name = CharField(max_length=7, primary_key=True)  # YYYY-MM
    status = CharField(max_length=8, default="open")  # open | closing | closed
    stage = CharField(max_length=8, default="")  # plan | apply | done
    runner = CharField(max_length=64, null=True)
    lease_until = DateTimeField(null=True)
    closing_started_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    givers = IntegerField(default=0)  # people who paid in the close
    flattrs = IntegerField(default=0)  # every flattr of the period
    counted = IntegerField(default=0)  # the flattrs that took a share (R8)
    distributed = BigIntegerField(default=0)
    fees = BigIntegerField(default=0)

    class Meta:
        constraints = [SQL("CHECK (status IN ('open', 'closing', 'closed'))")]


class Thing(BaseModel):
    owner = ForeignKeyField(User, backref="things", on_delete="RESTRICT")
    url = CharField(max_length=2048, unique=True)
    title = CharField(max_length=200)
    description = TextField(default="")
    category = CharField(max_length=16, default="text")
    language = CharField(max_length=35, default="")
    tags = TextField(default="")  # comma separated, normalised
    hidden = BooleanField(default=False)
    archived = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)


class Flattr(BaseModel):
    # giver and thing lead the composite indexes below, which serve their lookups.
    giver = ForeignKeyField(User, backref="given", on_delete="RESTRICT", index=False)
    thing = ForeignKeyField(Thing, backref="flattrs", on_delete="RESTRICT", index=False)
    owner = ForeignKeyField(User, backref="received", on_delete="RESTRICT")
    period = CharField(max_length=7)
    created_at = DateTimeField(default=utcnow)
    status = CharField(max_length=12, default="pending")  # pending | counted | not_counted
    share = BigIntegerField(null=True)
    fee = BigIntegerField(null=True)

    class Meta:
        indexes = (
            (("giver", "thing", "period"), True),
            # A month's flattrs in each giver's order of time (id breaks ties),
            # with the owner: the close ranks them from this index alone.
            (("period", "giver", "created_at", "id", "owner"), False),
            (("thing", "period"), False),
            (("period", "owner"), False),
        )
        constraints = [
            SQL("CHECK (giver_id <> owner_id)"),
            SQL("CHECK (status IN ('pending', 'counted', 'not_counted'))"),
            SQL("CHECK (share IS NULL OR share >= 0)"),
            SQL("CHECK (fee IS NULL OR (fee >= 0 AND fee <= share))"),
        ]


class ClosePlan(BaseModel):
    """The plan stage's output: what each giver spends in a period."""

    period = CharField(max_length=7)
    giver = ForeignKeyField(User, on_delete="RESTRICT")
    spend = BigIntegerField(constraints=[Check("spend >= 0")])
    n = IntegerField(constraints=[Check("n > 0")])
    txn = ForeignKeyField(Txn, null=True, on_delete="RESTRICT")
    # The cut (R9): (created_at, id) of the giver's (spend % n)-th earliest
    # counting flattr; it and the earlier ones get a cent more (rules.share_sql).
    cut_at = DateTimeField(null=True)
    cut_id = IntegerField(null=True)

    class Meta:
        primary_key = CompositeKey("period", "giver")


class Deposit(BaseModel):
    user = ForeignKeyField(User, backref="deposits", on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount > 0")])
    reference = CharField(max_length=32, unique=True)
    status = CharField(max_length=10, default="pending")  # pending | confirmed | cancelled
    topup_period = CharField(max_length=7, null=True)
    created_at = DateTimeField(default=utcnow)
    confirmed_at = DateTimeField(null=True)
    txn = ForeignKeyField(Txn, null=True, on_delete="RESTRICT")

    class Meta:
        indexes = ((("user", "topup_period"), True),)
        constraints = [SQL("CHECK (status IN ('pending', 'confirmed', 'cancelled'))")]


class Payout(BaseModel):
    user = ForeignKeyField(User, backref="payouts", on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount > 0")])
    status = CharField(max_length=10, default="requested")  # requested | paid | failed
    created_at = DateTimeField(default=utcnow)
    settled_at = DateTimeField(null=True)

    class Meta:
        constraints = [SQL("CHECK (status IN ('requested', 'paid', 'failed'))")]


class ApiToken(BaseModel):
    user = ForeignKeyField(User, backref="tokens", on_delete="RESTRICT")
    name = CharField(max_length=100, default="")
    digest = CharField(max_length=64, unique=True)  # sha256 of the token
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    # Migration 40: what the token may do (flattr_node/scopes.py), and for a
    # token an OAuth app got (flattr_node/oauth/), the app and the expiry.
    scopes = CharField(max_length=100, default="flattr thing email extendedread")
    oauth_client_id = IntegerField(null=True, index=True)
    expires_at = DateTimeField(null=True)


class CheckRun(BaseModel):
    """The result of the last ledger checks, for operators and the scheduler."""

    ran_at = DateTimeField(default=utcnow)
    ok = BooleanField()
    problems = TextField(default="")


MODELS = [
    User,
    Account,
    Txn,
    Posting,
    Period,
    Thing,
    Flattr,
    ClosePlan,
    Deposit,
    Payout,
    ApiToken,
    CheckRun,
]
