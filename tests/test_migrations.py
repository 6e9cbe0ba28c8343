"""Schema migrations: a migrated database equals the models of today, on a
fresh database and on an old one; later migrations (new tables, new
columns) apply to both; several processes migrating at once do no harm."""

from __future__ import annotations

import threading

import pytest
from conftest import use_database
from peewee import CharField, IntegerField

from flattr_node import db as dbmod
from flattr_node import schema
from flattr_node.db import database
from flattr_node.models import BaseModel, Thing, User, utcnow


def shape() -> dict:
    """Tables, columns, indexes and foreign keys, as the database reports them."""
    tables = {}
    for table in sorted(database.get_tables()):
        if table == "schema_version":
            continue
        columns = sorted((c.name, c.data_type.lower(), c.null, c.primary_key) for c in database.get_columns(table))
        indexes = sorted((tuple(i.columns), i.unique) for i in database.get_indexes(table))
        fks = sorted((f.column, f.dest_table, f.dest_column) for f in database.get_foreign_keys(table))
        tables[table] = {"columns": columns, "indexes": indexes, "foreign_keys": fks}
    return tables


def test_migrated_database_matches_the_models(db, new_database_url):
    migrated = shape()
    assert schema.current_version() == schema.latest_version()
    models = schema.all_models()
    assert {m._meta.table_name for m in models} <= set(migrated), "a model has no table: add a migration"
    # The same models created directly, without migrations.
    url = new_database_url()
    database.close()
    dbmod.bind(url)
    database.connect()
    database.create_tables(models)
    direct = shape()
    assert set(migrated) == set(direct)
    for table in direct:
        assert migrated[table] == direct[table], f"table {table} differs from its model: add a migration"


def test_old_database_upgrades_to_the_same_schema(db, new_database_url, monkeypatch):
    """A database made by migration 1 alone (as a v1 node left it, with data)
    takes the later migrations and ends like a fresh one."""
    fresh = shape()
    url = new_database_url()
    database.close()
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    use_database(url)
    assert schema.current_version() == 1
    # Written through the frozen v1 model: today's User has columns v1 lacked.
    schema._V1User.create(
        username="early", email="e@example.org", password_hash="x", display_name="", about="", url="",
        is_operator=False, is_suspended=False, show_flattrs=False, monthly_budget=200, monthly_topup=0, created_at=utcnow(),
    )
    monkeypatch.undo()
    use_database(url)  # `serve` after the upgrade
    assert schema.migrate() == []
    assert schema.current_version() == schema.latest_version()
    assert shape() == fresh
    assert User.get(User.username == "early").monthly_budget == 200


def _m_test_table():
    class Gadget(BaseModel):
        name = CharField(max_length=20)

        class Meta:
            table_name = "test_gadget"

    database.create_tables([Gadget])


def _m_test_column():
    schema.add_columns("thing", test_views=IntegerField(default=0))


@pytest.mark.parametrize("start_at", ["fresh", "old"])
def test_later_migrations_add_tables_and_columns(new_database_url, monkeypatch, start_at):
    """The next engineer's migrations: a new table and a new column, on a fresh
    database and on one that already holds data at the current version."""
    url = new_database_url()
    extra = [
        (schema.latest_version() + 1, "test: a new table", _m_test_table),
        (schema.latest_version() + 2, "test: a new column", _m_test_column),
    ]
    database.close()
    if start_at == "old":
        use_database(url)
        people_before = User.select().count()
        User.create(username="old", email="o@example.org", password_hash="x", monthly_budget=200)
        Thing.create(owner=User.get(User.username == "old"), url="https://a.example/", title="A")
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, *extra])
    use_database(url)
    assert schema.current_version() == extra[-1][0]
    columns = {c.name for c in database.get_columns("thing")}
    assert "test_views" in columns
    assert "test_gadget" in database.get_tables()
    if start_at == "old":
        assert User.select().count() == people_before + 1
        assert database.execute_sql("SELECT test_views FROM thing").fetchall() == [(0,)]
    assert schema.migrate() == []  # idempotent


def test_processes_migrating_at_once(new_database_url):
    """Three `serve` processes starting together: each migrates; it happens once."""
    url = new_database_url()
    database.close()
    dbmod.bind(url)
    errors, results = [], []

    def run():
        try:
            with database.connection_context():
                results.append(schema.migrate())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = sorted(n for r in results for n in r)
    assert applied == [n for n, _, _ in schema.MIGRATIONS]
    with database.connection_context():
        assert schema.current_version() == schema.latest_version()
