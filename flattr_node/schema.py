"""Schema versions: numbered migrations applied by `init` and `serve`.

`schema_version` holds one row per applied migration. Each migration runs in
its own transaction, so an upgrade never needs a hand-written SQL step and a
failed one leaves the previous version intact. Migration 1 is frozen: it
creates the schema from copies of the models as they were when it was
written, so later migrations (new tables, new columns with `add_columns`)
apply the same way to a fresh and to an old database. Append new steps to
`MIGRATIONS` with the next free number; tests compare a migrated database
with the models of today.
"""

from __future__ import annotations

import logging

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

from . import ledger
from .db import database, dialect
from .models import utcnow

log = logging.getLogger(__name__)


class SchemaVersion(Model):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=100)
    applied_at = DateTimeField(default=utcnow)

    class Meta:
        database = database
        table_name = "schema_version"


APPEND_ONLY = ("txn", "posting")
MIGRATION_LOCK = 7294001  # the advisory lock a migrating process holds


def _append_only_triggers() -> None:
    """The ledger is append-only: the database itself refuses edits."""
    for table in APPEND_ONLY:
        for ddl in dialect().append_only_ddl(table):
            database.execute_sql(ddl)


# --- migration 1, frozen -------------------------------------------------
# The schema exactly as migration 1 made it, written out here so that it never
# follows later edits of models.py: a later migration that adds a table or a
# column then works the same on a fresh database (1, 2, 3 ... in a row) and
# on an old one (only the new steps). tests/test_migrations.py checks that a
# migrated database equals the models of today, on SQLite and PostgreSQL.


class _V1(Model):
    class Meta:
        database = database
        legacy_table_names = False


class _V1User(_V1):
    username = CharField(max_length=40, unique=True)
    email = CharField(max_length=254)
    password_hash = CharField(max_length=255)
    display_name = CharField(max_length=100)
    about = TextField()
    url = CharField(max_length=2048)
    is_operator = BooleanField()
    is_suspended = BooleanField()
    show_flattrs = BooleanField()
    monthly_budget = BigIntegerField(constraints=[Check("monthly_budget >= 0")])
    monthly_topup = BigIntegerField(constraints=[Check("monthly_topup >= 0")])
    topup_set_at = DateTimeField(null=True)
    created_at = DateTimeField()

    class Meta:
        table_name = "user"


class _V1Account(_V1):
    code = CharField(max_length=64, unique=True)
    kind = CharField(max_length=16)
    user = ForeignKeyField(_V1User, null=True, on_delete="RESTRICT")
    balance = BigIntegerField()

    class Meta:
        table_name = "account"
        constraints = [SQL("CHECK (kind = 'external' OR balance >= 0)")]


class _V1Txn(_V1):
    key = CharField(max_length=120, unique=True)
    kind = CharField(max_length=24)
    memo = TextField()
    created_at = DateTimeField()

    class Meta:
        table_name = "txn"


class _V1Posting(_V1):
    txn = ForeignKeyField(_V1Txn, on_delete="RESTRICT")
    account = ForeignKeyField(_V1Account, on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount <> 0")])

    class Meta:
        table_name = "posting"


class _V1Period(_V1):
    name = CharField(max_length=7, primary_key=True)
    status = CharField(max_length=8)
    stage = CharField(max_length=8)
    runner = CharField(max_length=64, null=True)
    lease_until = DateTimeField(null=True)
    closing_started_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    givers = IntegerField()
    flattrs = IntegerField()
    counted = IntegerField()
    distributed = BigIntegerField()
    fees = BigIntegerField()

    class Meta:
        table_name = "period"
        constraints = [SQL("CHECK (status IN ('open', 'closing', 'closed'))")]


class _V1Thing(_V1):
    owner = ForeignKeyField(_V1User, on_delete="RESTRICT")
    url = CharField(max_length=2048, unique=True)
    title = CharField(max_length=200)
    description = TextField()
    category = CharField(max_length=16)
    language = CharField(max_length=35)
    tags = TextField()
    hidden = BooleanField()
    archived = BooleanField()
    created_at = DateTimeField()

    class Meta:
        table_name = "thing"


class _V1Flattr(_V1):
    giver = ForeignKeyField(_V1User, on_delete="RESTRICT")
    thing = ForeignKeyField(_V1Thing, on_delete="RESTRICT")
    owner = ForeignKeyField(_V1User, on_delete="RESTRICT")
    period = CharField(max_length=7)
    created_at = DateTimeField()
    status = CharField(max_length=12)
    share = BigIntegerField(null=True)
    fee = BigIntegerField(null=True)

    class Meta:
        table_name = "flattr"
        indexes = (
            (("giver", "thing", "period"), True),
            (("period", "giver", "created_at"), False),
            (("thing", "period"), False),
            (("period", "owner"), False),
        )
        constraints = [
            SQL("CHECK (giver_id <> owner_id)"),
            SQL("CHECK (status IN ('pending', 'counted', 'not_counted'))"),
            SQL("CHECK (share IS NULL OR share >= 0)"),
            SQL("CHECK (fee IS NULL OR (fee >= 0 AND fee <= share))"),
        ]


class _V1ClosePlan(_V1):
    period = CharField(max_length=7)
    giver = ForeignKeyField(_V1User, on_delete="RESTRICT")
    spend = BigIntegerField(constraints=[Check("spend >= 0")])
    n = IntegerField(constraints=[Check("n > 0")])
    txn = ForeignKeyField(_V1Txn, null=True, on_delete="RESTRICT")

    class Meta:
        table_name = "close_plan"
        primary_key = CompositeKey("period", "giver")


class _V1Deposit(_V1):
    user = ForeignKeyField(_V1User, on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount > 0")])
    reference = CharField(max_length=32, unique=True)
    status = CharField(max_length=10)
    topup_period = CharField(max_length=7, null=True)
    created_at = DateTimeField()
    confirmed_at = DateTimeField(null=True)
    txn = ForeignKeyField(_V1Txn, null=True, on_delete="RESTRICT")

    class Meta:
        table_name = "deposit"
        indexes = ((("user", "topup_period"), True),)
        constraints = [SQL("CHECK (status IN ('pending', 'confirmed', 'cancelled'))")]


class _V1Payout(_V1):
    user = ForeignKeyField(_V1User, on_delete="RESTRICT")
    amount = BigIntegerField(constraints=[Check("amount > 0")])
    status = CharField(max_length=10)
    created_at = DateTimeField()
    settled_at = DateTimeField(null=True)

    class Meta:
        table_name = "payout"
        constraints = [SQL("CHECK (status IN ('requested', 'paid', 'failed'))")]


class _V1ApiToken(_V1):
    user = ForeignKeyField(_V1User, on_delete="RESTRICT")
    name = CharField(max_length=100)
    digest = CharField(max_length=64, unique=True)
    created_at = DateTimeField()
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_token"


class _V1CheckRun(_V1):
    ran_at = DateTimeField()
    ok = BooleanField()
    problems = TextField()

    class Meta:
        table_name = "check_run"


V1_MODELS = [
    _V1User, _V1Account, _V1Txn, _V1Posting, _V1Period, _V1Thing, _V1Flattr,
    _V1ClosePlan, _V1Deposit, _V1Payout, _V1ApiToken, _V1CheckRun,
]  # fmt: skip


def _m1_initial() -> None:
    database.create_tables(V1_MODELS)
    _append_only_triggers()


# --- helpers for later migrations -------------------------------------------


def add_columns(table: str, **fields) -> None:
    """In a migration: add columns to an existing table, e.g.
    `add_columns("thing", views=IntegerField(default=0))`. A NOT NULL column
    needs a default (it fills the existing rows). A column the table has
    already is left alone: a table that an earlier migration creates from
    today's model (federation, bank) is born with it on a fresh database."""
    from playhouse.migrate import migrate as run

    have = {c.name for c in database.get_columns(table)}
    migrator = dialect().migrator()
    run(*[migrator.add_column(table, name, field) for name, field in fields.items() if name not in have])


def _m2_invites_and_resets() -> None:
    from .models_web import WEB_MODELS

    database.create_tables(WEB_MODELS)


def _m3_verified_sites() -> None:
    from .services.sites import SITE_MODELS

    database.create_tables(SITE_MODELS)


def _m4_close_indexes() -> None:
    """Indexes for the month close and the flattr path (docs/performance.md).

    * flattr (period, giver_id, created_at, id, owner_id) replaces
      (period, giver_id, created_at): the close ranks a month's flattrs in
      each giver's order of time from this index alone, without a sort.
    * account (user_id, kind), unique, replaces (user_id): a person's funds
      or revenue account is one index probe, and a person has one of each.
    * flattr (giver_id) and (thing_id) go: the unique (giver_id, thing_id,
      period) and (thing_id, period) indexes serve the same lookups, and
      every flattr paid for two more index writes.
    """
    for old in ("flattr_period_giver_id_created_at", "flattr_giver_id", "flattr_thing_id", "account_user_id"):
        database.execute_sql(f"DROP INDEX IF EXISTS {old}")
    database.execute_sql(
        "CREATE INDEX flattr_period_giver_id_created_at_id_owner_id ON flattr (period, giver_id, created_at, id, owner_id)"
    )
    database.execute_sql("CREATE UNIQUE INDEX account_user_id_kind ON account (user_id, kind)")


def _m10_close_plan_cut() -> None:
    """close_plan keeps each giver's cut (R9), so that the payments derive
    every share from the frozen plan rows (closing/month.py)."""
    add_columns("close_plan", cut_at=DateTimeField(null=True), cut_id=IntegerField(null=True))


def _m11_flattr_pages_with_room() -> None:
    """The close writes every flattr of the month once more (status, share,
    fee). PostgreSQL writes a new version of each row: in the same page it
    is a HOT update that touches none of the six indexes of flattr, else
    six index entries per flattr (the largest part of the close, 7 s of
    8 s per 100,000 flattrs). A flattr grows by its share and fee at the
    close (about 68 to 88 bytes), so each page keeps 60 % free for them."""
    dialect().fill_pages_to("flattr", 40)


def _m30_bank_rails() -> None:
    from .bank.models import BANK_MODELS

    database.create_tables(BANK_MODELS)
def _m40_token_scopes_and_oauth() -> None:
    """Token scopes (every existing token keeps all of them), OAuth apps,
    codes and refresh tokens (flattr_node/oauth/)."""
    from .oauth.models import OAUTH_MODELS

    add_columns(
        "api_token",
        scopes=CharField(max_length=100, default="flattr thing email extendedread"),
        oauth_client_id=IntegerField(null=True),
        expires_at=DateTimeField(null=True),
    )
    database.execute_sql("CREATE INDEX api_token_oauth_client_id ON api_token (oauth_client_id)")
    database.create_tables(OAUTH_MODELS)
def _m50_subscriptions() -> None:
    from .models_sup import SUBSCRIPTION_MODELS

    database.create_tables(SUBSCRIPTION_MODELS)


def _m51_notices() -> None:
    from .models_sup import NOTICE_MODELS

    database.create_tables(NOTICE_MODELS)
def _m5_sessions() -> None:
    from .sessions import SESSION_MODELS

    database.create_tables(SESSION_MODELS)


def _m6_rate_counters() -> None:
    from .ratelimit import RATE_MODELS

    database.create_tables(RATE_MODELS)


def _m20_federation() -> None:
    from .federation import keys
    from .federation.models import FEDERATION_MODELS

    database.create_tables(FEDERATION_MODELS)
    keys.make_key()  # the node's Ed25519 identity, in the migration's transaction


def _m21_peer_bank_details() -> None:
    """Peers' bank details (from their well-known document) and the payout
    export that took a settlement this node owes (SPEC §7)."""
    add_columns(
        "peer",
        bank_iban=CharField(max_length=100, default=""),
        bank_bic=CharField(max_length=100, default=""),
        bank_account_name=CharField(max_length=200, default=""),
    )
    add_columns("settlement", exported_in=IntegerField(null=True))


def _m41_webhooks() -> None:
    from .webhooks.models import WEBHOOK_MODELS

    database.create_tables(WEBHOOK_MODELS)


def _m52_user_language() -> None:
    add_columns("user", language=CharField(max_length=8, default=""))


MIGRATIONS = [
    (1, "initial schema", _m1_initial),
    (2, "invite codes and password resets", _m2_invites_and_resets),
    (3, "verified sites for auto-submit", _m3_verified_sites),
    (4, "indexes for the month close", _m4_close_indexes),
    (5, "sign-in sessions the node can end", _m5_sessions),
    (6, "shared rate-limit attempts", _m6_rate_counters),
    (10, "the cut of each giver in the close plan", _m10_close_plan_cut),
    (11, "room in the pages of flattr for the close's update", _m11_flattr_pages_with_room),
    (20, "federation: node key, peers, outbox, inbox", _m20_federation),
    (21, "federation: peers' bank details, settlements in payout exports", _m21_peer_bank_details),
    (30, "bank rails: payout accounts, exports, statement entries", _m30_bank_rails),
    (40, "token scopes and OAuth 2.0", _m40_token_scopes_and_oauth),
    (41, "webhooks: endpoints and their queue", _m41_webhooks),
    (50, "subscriptions", _m50_subscriptions),
    (51, "notices", _m51_notices),
    (52, "a person's language", _m52_user_language),
]


def current_version() -> int:
    if not database.table_exists("schema_version"):
        return 0
    return SchemaVersion.select(SQL("MAX(version)")).scalar() or 0


def migrate() -> list[int]:
    """Apply every migration not applied yet; return their numbers."""
    with database.atomic():
        dialect().advisory_lock(MIGRATION_LOCK)  # CREATE TABLE IF NOT EXISTS races between processes
        database.create_tables([SchemaVersion])
    applied = []
    for number, name, step in MIGRATIONS:
        with database.atomic():
            dialect().advisory_lock(MIGRATION_LOCK)  # one migrating process at a time
            if SchemaVersion.get_or_none(SchemaVersion.version == number) is not None:
                continue
            log.info("schema: applying migration %d (%s)", number, name)
            step()
            SchemaVersion.create(version=number, name=name)
            applied.append(number)
    with database.atomic():
        ledger.ensure_node_accounts()
    return applied


def all_models() -> list[type[Model]]:
    """Every model with a table in the node's database, from every module of
    the package, parents before children (the order to copy them in)."""
    import importlib
    import pkgutil

    from peewee import sort_models

    import flattr_node

    for mod in pkgutil.walk_packages(flattr_node.__path__, "flattr_node."):
        importlib.import_module(mod.name)
    found, todo = set(), [Model]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if (
                sub._meta.database is database
                and sub is not SchemaVersion
                and not issubclass(sub, _V1)
                and sub.__module__.startswith("flattr_node")
                and set(sub._meta.fields) - {"id"}  # an abstract base has no fields of its own
            ):
                found.add(sub)
    return sort_models(found)


def latest_version() -> int:
    return MIGRATIONS[-1][0]
