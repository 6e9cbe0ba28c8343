"""`flattr-node migrate-db --to URL`: copy a node's data to another database.

The usual move is from SQLite to PostgreSQL when a node outgrows one
machine. The target is migrated to the same schema version, must hold no
data, and receives every row of every table with its id, in one transaction:
a failed copy leaves the target empty. Then the ledger check runs on it.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import AutoField, BigAutoField

from . import db as dbmod
from . import schema
from .errors import Validation

BATCH = 500


def _count(model) -> int:
    return model.select().count()


def copy_database(target_url: str, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Copy everything from the bound database to `target_url`; return rows per table."""
    source = dbmod.database.obj
    if target_url.split("://")[0] not in ("sqlite", "postgresql", "postgres"):
        raise Validation("--to must be a sqlite:/// or postgresql:// URL", field="to")
    target = dbmod.make_database(target_url)
    models = schema.all_models()
    totals = {m._meta.table_name: _count(m) for m in models}
    grand = sum(totals.values())
    version = schema.current_version()
    try:
        target.connect()
    except dbmod.OperationalError as e:
        raise Validation(f"cannot open the target database: {e}") from None
    try:
        # Migrate the target (through the proxy), then come back to the source.
        dbmod.database.initialize(target)
        try:
            schema.migrate()
            if schema.current_version() != version:
                raise Validation(f"the target is at schema version {schema.current_version()}, the source at {version}")
        finally:
            dbmod.database.initialize(source)
        done = 0
        with target.bind_ctx(models, bind_refs=False, bind_backrefs=False):
            with target.atomic():
                for model in models:
                    rows = model.select().count()
                    if rows and rows != _made_by_migrate(model):
                        raise Validation(f"the target is not empty: table {model._meta.table_name} has {rows} rows")
                # migrate() made the node's own accounts and a signing key; the
                # copy brings the originals (the node keeps its identity).
                from .federation.models import NodeKey
                from .models import Account

                Account.delete().execute()
                NodeKey.delete().execute()
        with target.atomic():
            for model in models:
                fields = list(model._meta.sorted_fields)
                query = model.select(*fields).order_by(*_order(model)).tuples()
                for batch in _batches(query.iterator()):
                    with target.bind_ctx([model], bind_refs=False, bind_backrefs=False):
                        model.insert_many(batch, fields=fields).execute()
                    done += len(batch)
                    if progress:
                        progress(done, grand)
                pk = model._meta.primary_key
                if isinstance(target, dbmod.PostgresqlDatabase) and isinstance(pk, (AutoField, BigAutoField)):
                    table = model._meta.table_name
                    target.execute_sql(
                        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{pk.column_name}'), "
                        f"COALESCE((SELECT MAX({pk.column_name}) FROM \"{table}\"), 0) + 1, false)"
                    )
        with target.bind_ctx(models, bind_refs=False, bind_backrefs=False):
            copied = {m._meta.table_name: _count(m) for m in models}
        if copied != totals:
            raise RuntimeError(f"copy incomplete: {copied} != {totals}")
        return copied
    finally:
        target.close()


def _batches(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _made_by_migrate(model) -> int:
    """The rows migrate() makes in an empty database: the node's own
    accounts, and its signing key (federation)."""
    name = model._meta.table_name
    if name == "account":
        return model.select().where(model.code.startswith("node:")).count()
    return 1 if name == "node_key" else 0


def _order(model):
    pk = model._meta.primary_key
    if pk is False or pk is None:
        return list(model._meta.sorted_fields)
    if hasattr(pk, "field_names"):  # CompositeKey
        return [model._meta.fields[n] for n in pk.field_names]
    return [pk]


def check_target(target_url: str):
    """Run the ledger check on the target; return the CheckResult."""
    from .ledger import check_ledger

    source = dbmod.database.obj
    target = dbmod.make_database(target_url)
    dbmod.database.initialize(target)
    try:
        with target.connection_context():
            return check_ledger()
    finally:
        dbmod.database.initialize(source)
