"""The database: one peewee proxy, bound at start to SQLite or PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL (this is money), foreign keys
on, a busy timeout, and every transaction begins IMMEDIATE so that writers
queue for the lock up front instead of failing with "database is locked"
half-way through. PostgreSQL uses the same models; services take row locks
with `locked()` where SQLite relies on the IMMEDIATE lock.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, unquote, urlsplit

from peewee import DatabaseProxy, OperationalError, PostgresqlDatabase, SqliteDatabase

DatabaseConnectError = OperationalError

database = DatabaseProxy()

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("foreign_keys", 1),
    ("busy_timeout", 30000),
)


def sqlite_path(url: str) -> str:
    """sqlite:///var/flattr.db -> var/flattr.db; sqlite:////abs/x.db -> /abs/x.db."""
    return unquote(url[len("sqlite:///") :])


def make_database(url: str):
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url)
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            timeout=30,
            lock_type="IMMEDIATE",
            check_same_thread=False,
        )
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        extra = dict(parse_qsl(parts.query))  # e.g. sslmode=require, options=-csearch_path=x
        return PostgresqlDatabase(
            unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname or None,
            port=parts.port or None,
            **extra,
        )
    raise ValueError(f"unsupported database URL: {url}")


def bind(url: str):
    """Point the proxy at the database of `url` and return it."""
    db = make_database(url)
    database.initialize(db)
    return db


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def locked(query, share: bool = False):
    """SELECT ... FOR UPDATE (or FOR SHARE) on PostgreSQL; on SQLite the
    IMMEDIATE transaction already holds the only write lock."""
    if not is_postgres():
        return query
    return query.for_update("FOR SHARE" if share else "FOR UPDATE")
