"""Schema versions: numbered migrations applied by `init` and `serve`.

`schema_version` holds one row per applied migration. Each migration runs in
its own transaction, so an upgrade never needs a hand-written SQL step and a
failed one leaves the previous version intact. Migration 1 creates the schema
from the models as they were when it was written; later changes to a model
must come with a new migration here (tests compare a migrated database with
the models).
"""

from __future__ import annotations

import logging

from peewee import SQL, CharField, DateTimeField, IntegerField, Model

from . import ledger
from .db import database, is_postgres
from .models import MODELS, utcnow

log = logging.getLogger(__name__)


class SchemaVersion(Model):
    version = IntegerField(primary_key=True)
    name = CharField(max_length=100)
    applied_at = DateTimeField(default=utcnow)

    class Meta:
        database = database
        table_name = "schema_version"


APPEND_ONLY = ("txn", "posting")


def _append_only_triggers() -> None:
    """The ledger is append-only: the database itself refuses edits."""
    for table in APPEND_ONLY:
        if is_postgres():
            database.execute_sql(
                "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'the ledger is append-only: %% on %% refused', TG_OP, TG_TABLE_NAME; END; "
                "$$ LANGUAGE plpgsql"
            )
            database.execute_sql(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
        else:
            for op in ("UPDATE", "DELETE"):
                database.execute_sql(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {table} refused'); END"
                )


def _m1_initial() -> None:
    database.create_tables(MODELS)
    _append_only_triggers()


def _m2_invites_and_resets() -> None:
    from .models_web import WEB_MODELS

    database.create_tables(WEB_MODELS)


MIGRATIONS = [
    (1, "initial schema", _m1_initial),
    (2, "invite codes and password resets", _m2_invites_and_resets),
]


def current_version() -> int:
    if not database.table_exists("schema_version"):
        return 0
    return SchemaVersion.select(SQL("MAX(version)")).scalar() or 0


def migrate() -> list[int]:
    """Apply every migration not applied yet; return their numbers."""
    database.create_tables([SchemaVersion])
    applied = []
    for number, name, step in MIGRATIONS:
        with database.atomic():
            if is_postgres():  # one migrating process at a time
                database.execute_sql("SELECT pg_advisory_xact_lock(7294001)")
            if SchemaVersion.get_or_none(SchemaVersion.version == number) is not None:
                continue
            log.info("schema: applying migration %d (%s)", number, name)
            step()
            SchemaVersion.create(version=number, name=name)
            applied.append(number)
    with database.atomic():
        ledger.ensure_node_accounts()
    return applied


def latest_version() -> int:
    return MIGRATIONS[-1][0]
