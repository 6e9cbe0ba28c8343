"""The database: one peewee proxy, bound at start to SQLite or PostgreSQL.

SQLite runs in WAL mode with synchronous=FULL (this is money), foreign keys
on, a busy timeout, and every transaction begins IMMEDIATE so that writers
queue for the lock up front instead of failing with "database is locked"
half-way through. PostgreSQL uses the same models; services take row locks
with `locked()` where SQLite relies on the IMMEDIATE lock, and money-moving
transactions lock ledger accounts in id order (`lock_accounts`, ledger.post)
so that they cannot deadlock. PostgreSQL runs at READ COMMITTED: a row lock
taken by SELECT ... FOR NO KEY UPDATE returns the row as the previous holder
committed it, which is what the services' checks read.
"""

from __future__ import annotations

import contextlib
import os
import threading
from urllib.parse import parse_qsl, unquote, urlsplit

from peewee import SQL, DatabaseProxy, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

DatabaseConnectError = OperationalError
try:  # the driver's own classes: peewee passes its deadlock errors through as they are
    from psycopg2 import InterfaceError as DriverInterfaceError
    from psycopg2 import OperationalError as DriverOperationalError
except ImportError:  # pragma: no cover - psycopg2-binary is a dependency
    from peewee import InterfaceError as DriverInterfaceError

    DriverOperationalError = OperationalError

database = DatabaseProxy()

PG_POOL_SIZE = 32  # per process; waitress's threads, the scheduler and a margin

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("foreign_keys", 1),
    ("busy_timeout", 30000),
)


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


class NodeSqliteDatabase(SqliteDatabase):
    """SQLite where the threads of one process queue for the write lock on a
    Python lock before BEGIN IMMEDIATE.

    SQLite's own busy handler makes a waiting writer sleep and poll (1, 2, 5,
    10 … 100 ms), so under concurrent writes most of the time goes to
    sleeping while the lock is free. Waiting on a Python lock instead wakes
    the next writer the moment the previous one commits: four times the
    write throughput with eight threads. Writers in other processes still
    wait in SQLite's busy handler (busy_timeout), as before.
    """

    def init(self, database, *args, **kwargs):
        super().init(database, *args, **kwargs)
        key = os.path.abspath(database) if database and database != ":memory:" else f"memory:{id(self)}"
        with _WRITE_LOCKS_GUARD:
            self._write_lock = _WRITE_LOCKS.setdefault(key, threading.RLock())
        self._held = threading.local()

    def begin(self, lock_type=None):
        if (lock_type or self._lock_type) == "DEFERRED":
            super().begin(lock_type)  # a reader: WAL lets it run beside the writer
            return
        # Wait as long as SQLite's busy timeout would, then fail the same way.
        if not self._write_lock.acquire(timeout=getattr(self, "_timeout", None) or 30):
            busy = OperationalError("database is locked (another thread's write transaction outlasted the busy timeout)")
            busy.sqlite_errorname = "SQLITE_BUSY"  # what SQLite's own busy timeout says (Dialect.error_code)
            raise busy
        try:
            super().begin(lock_type)
        except BaseException:
            self._write_lock.release()
            raise
        self._held.count = getattr(self._held, "count", 0) + 1

    def _release_write_lock(self) -> None:
        if getattr(self._held, "count", 0):
            self._held.count -= 1
            self._write_lock.release()

    def commit(self):
        super().commit()  # if COMMIT fails, peewee rolls back next, which releases
        self._release_write_lock()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release_write_lock()


def sqlite_path(url: str) -> str:
    """sqlite:///var/flattr.db -> var/flattr.db; sqlite:////abs/x.db -> /abs/x.db."""
    return unquote(url[len("sqlite:///") :])


def make_database(url: str):
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = sqlite_path(url)
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                # Created readable by its owner alone (SQLite's -wal and -shm
                # files copy its mode): it holds e-mails and password hashes.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return NodeSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            timeout=30,
            lock_type="IMMEDIATE",
            check_same_thread=False,
        )
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        extra = dict(parse_qsl(parts.query))  # e.g. sslmode=require, options=-csearch_path=x
        # A pool: a new PostgreSQL connection costs a TCP handshake, a backend
        # process and authentication, several milliseconds per request. The
        # app's close() after each request hands the connection back instead.
        return PooledPostgresqlDatabase(
            unquote(parts.path.lstrip("/")) or "postgres",
            max_connections=PG_POOL_SIZE,
            stale_timeout=300,
            timeout=30,  # wait this long for a free connection, then fail (503)
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname or None,
            port=parts.port or None,
            **extra,
        )
    raise ValueError(f"unsupported database URL: {url}")


def bind(url: str):
    """Point the proxy at the database of `url` and return it."""
    old = database.obj
    if isinstance(old, PooledPostgresqlDatabase):
        old.close_all()  # the pooled connections of the previous binding
    db = make_database(url)
    database.initialize(db)
    return db


def init_app(app, cfg) -> None:
    """A connection for each request (create_app binds the database)."""

    @app.before_request
    def open_connection():
        database.connect(reuse_if_open=True)

    @app.teardown_request
    def close_connection(exc):
        # PostgreSQL: hand the connection back to the pool. SQLite: keep it
        # for this thread's next request (waitress's threads are few and
        # long-lived); opening one and setting its pragmas cost about half a
        # millisecond, more than a badge's query.
        if dialect().pooled and not database.is_closed() and database.transaction_depth() == 0:
            database.close()


def is_postgres() -> bool:
    """Which engine is bound. Code of the node asks `dialect()` what to do
    instead; this stays for scripts (bench/) that build data per engine."""
    return isinstance(database.obj, PostgresqlDatabase)


class Dialect:
    """What differs between the engines, in one place: services ask the
    dialect of the bound database (`dialect()`) instead of which engine it
    is. This base is SQLite's; PostgresDialect overrides."""

    name = "sqlite"
    postgres = False
    pooled = False  # connections come from a pool: hand them back after each request
    BULK_CACHE_KIB = 100 * 1024  # SQLite's page cache during bulk work (see bulk_session)

    def lock_clause(self, share: bool = False) -> str:
        """The row-lock suffix of a SELECT: nothing on SQLite, where an
        IMMEDIATE transaction already holds the only write lock."""
        return ""

    def lock(self, query, share: bool = False):
        """A peewee SELECT with that row lock."""
        return query

    def consistent_read(self):
        """A transaction whose SELECTs all see one state of the database.
        SQLite's does; DEFERRED, so that in WAL mode it holds up no writer."""
        return database.atomic("DEFERRED")

    def advisory_lock(self, key: int) -> None:
        """Inside a transaction: one holder of `key` at a time, across
        processes. On SQLite the write transaction already is that."""

    def write_transaction(self):
        """A transaction for a writer that reads first: on SQLite the
        IMMEDIATE write transaction; PostgreSQL locks rows instead."""
        return database.atomic()

    @contextlib.contextmanager
    def bulk_session(self):
        """A connection set up for a bulk job (the month close): on SQLite a
        page cache of up to BULK_CACHE_KIB and temporary tables in memory,
        the connection's own settings back after. Memory is taken only as
        pages are read, so a small node stays small."""
        before = database.execute_sql("PRAGMA cache_size").fetchone()[0]
        temp_store = database.execute_sql("PRAGMA temp_store").fetchone()[0]
        database.execute_sql(f"PRAGMA cache_size = -{self.BULK_CACHE_KIB}")
        database.execute_sql("PRAGMA temp_store = MEMORY")
        try:
            yield
        finally:
            try:
                database.execute_sql(f"PRAGMA cache_size = {int(before)}")
                database.execute_sql(f"PRAGMA temp_store = {int(temp_store)}")
            except Exception:  # the database itself may be what failed
                pass

    def append_only_ddl(self, table: str) -> list[str]:
        """DDL: triggers that refuse UPDATE and DELETE on `table`."""
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {table} refused'); END"
            for op in ("UPDATE", "DELETE")
        ]

    def migrator(self):
        """playhouse.migrate's schema migrator for this engine."""
        from playhouse.migrate import SqliteMigrator

        return SqliteMigrator(database.obj)

    def analyze(self, table: str) -> None:
        """After a bulk write into `table`: fresh planner statistics. SQLite
        keeps none unless asked, and plans well without them."""

    def fill_pages_to(self, table: str, percent: int) -> None:
        """DDL: new rows of `table` fill its pages only to `percent`, so that
        an UPDATE of every row finds room in the row's own page. SQLite
        rewrites a row in place: nothing to do."""

    def dangling_references(self, tables) -> list[tuple]:
        """Rows of `tables` that refer to missing rows, as (table, rowid,
        parent). SQLite lets a connection turn its foreign keys off, so
        `check` reads them back; PostgreSQL checks every write."""
        found = []
        for table in tables:
            found += [(t, rowid, parent) for t, rowid, parent, _fk in database.execute_sql(f"PRAGMA foreign_key_check({table})")]
        return found

    def error_code(self, exc: BaseException) -> str | None:
        """The engine's own code of a database error: SQLite's extended
        result code name (SQLITE_BUSY ...), PostgreSQL's SQLSTATE."""
        for c in _causes(exc):
            name = getattr(c, "sqlite_errorname", None)
            if name:
                return name
        return None

    def is_retryable(self, exc: BaseException) -> bool:
        """A conflict between transactions, not a bug: retry, or answer 503."""
        return (self.error_code(exc) or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))

    def is_unavailable(self, exc: BaseException) -> bool:
        """The database cannot serve now (a conflict, a lock held too long,
        a file it cannot open, a lost connection): answer 503, not 500."""
        return self.is_retryable(exc) or (self.error_code(exc) or "").startswith("SQLITE_CANTOPEN")

    def refused_nul(self, exc: BaseException) -> bool:
        """The driver refused text holding NUL (0x00): the request's fault.
        SQLite stores it."""
        return False


class PostgresDialect(Dialect):
    name = "postgresql"
    postgres = True
    pooled = True

    def lock_clause(self, share: bool = False) -> str:
        # NO KEY UPDATE is the lock a plain UPDATE of the row takes: it keeps
        # other writers out but lets inserts that merely reference the row (a
        # posting's foreign key to its account) go on, which FOR UPDATE would block.
        return " FOR SHARE" if share else " FOR NO KEY UPDATE"

    def lock(self, query, share: bool = False):
        return query.for_update(self.lock_clause(share).strip())

    @contextlib.contextmanager
    def consistent_read(self):
        # READ COMMITTED gives each statement its own snapshot: a check
        # beside a close could see half of a batch.
        with database.atomic():
            if database.transaction_depth() == 1:
                database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def advisory_lock(self, key: int) -> None:
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (int(key),))

    @contextlib.contextmanager
    def bulk_session(self):
        yield

    def append_only_ddl(self, table: str) -> list[str]:
        return [
            "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'the ledger is append-only: %% on %% refused', TG_OP, TG_TABLE_NAME; END; "
            "$$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()",
        ]

    def migrator(self):
        from playhouse.migrate import PostgresqlMigrator

        return PostgresqlMigrator(database.obj)

    def analyze(self, table: str) -> None:
        # Without it, a table just filled (the plan rows, post_many's staging)
        # looks empty to the planner, which then loops over it once per row
        # of the other side: 19 s instead of well under one for 50,000 flattrs.
        database.execute_sql(f"ANALYZE {table}")

    def fill_pages_to(self, table: str, percent: int) -> None:
        # An UPDATE writes a new version of the row; in the same page, and
        # with no indexed column changed, it is a HOT update: no new entry in
        # any of the table's indexes (docs/performance.md).
        database.execute_sql(f"ALTER TABLE {table} SET (fillfactor = {int(percent)})")

    def dangling_references(self, tables) -> list[tuple]:
        return []

    def error_code(self, exc: BaseException) -> str | None:
        return next((c.pgcode for c in _causes(exc) if getattr(c, "pgcode", None)), None)

    def is_retryable(self, exc: BaseException) -> bool:
        # The pool's own error when every connection is in use, too.
        return self.error_code(exc) in RETRYABLE_PGCODES or isinstance(exc, MaxConnectionsExceeded)

    def is_unavailable(self, exc: BaseException) -> bool:
        if self.is_retryable(exc):
            return True
        code = self.error_code(exc)
        if code is None:
            # libpq gives a lost or refused connection no SQLSTATE: a driver
            # OperationalError without one is the connection, never the SQL.
            return any(isinstance(c, (DriverOperationalError, DriverInterfaceError)) for c in _causes(exc))
        return code.startswith(UNAVAILABLE_PGCODES)

    def refused_nul(self, exc: BaseException) -> bool:
        # psycopg2 refuses the parameter before PostgreSQL sees it, with a
        # plain ValueError and no code: its text is all there is to tell.
        return isinstance(exc, ValueError) and "NUL (0x00)" in str(exc)


_SQLITE, _POSTGRES = Dialect(), PostgresDialect()


def dialect() -> Dialect:
    """The dialect of the database bound now."""
    return _POSTGRES if isinstance(database.obj, PostgresqlDatabase) else _SQLITE


def _causes(exc: BaseException) -> tuple:
    # peewee wraps most driver errors (the driver's is in args[0]) but lets
    # psycopg2's TransactionRollbackError family through unwrapped.
    return tuple(c for c in (exc, *(exc.args[:1] if exc.args else ()), exc.__cause__, exc.__context__) if c is not None)


_COMPOSED: dict[tuple[str, type], str] = {}


def select_composed(key: str, query, params: tuple):
    """Run a peewee SELECT whose SQL text is composed once per `key` and kind
    of database, then reused with `params` (the values of its placeholders,
    in order). Rows come back as the query's own would: models, joins and all.

    For SELECTs of a fixed shape on hot paths (a thing and its owner):
    composing one costs peewee more than running it costs the database.
    The rows go through the query's `_get_cursor_wrapper`, what peewee's own
    `execute()` calls: a peewee upgrade that changes it fails the thing tests.
    """
    cache_key = (key, type(database.obj))
    sql = _COMPOSED.get(cache_key)
    if sql is None:
        sql, first = query.sql()
        if len(first) != len(params):
            raise ValueError(f"select_composed({key!r}): the query has {len(first)} parameters, {len(params)} given")
        _COMPOSED[cache_key] = sql
    return query._get_cursor_wrapper(database.execute_sql(sql, params))


def execute(sql: str, params=()):
    """Run SQL written with `?` placeholders on either database; the cursor.

    For the hot paths (the close, a badge, a flattr): peewee spends more time
    composing a small query than the database spends running it.
    """
    return database.execute_sql(sql.replace("?", database.param), params)


def one_of(field, values):
    """`field IN (values)` as one SQL node holding its parameters: for the
    lists of hundreds of values a bank import looks up per chunk, where
    peewee's node per value costs more than running the query."""
    values = list(values)
    if not values:
        return SQL("1 = 0")
    return field.in_(SQL("(" + ", ".join([database.param] * len(values)) + ")", values))


def insert_rows(model, fields: list, rows: list[tuple], ignore_conflicts: bool = False) -> None:
    """INSERT many rows of `model` (tuples in the order of `fields`, model
    fields) with the driver's executemany: for bulk work, where peewee's
    insert_many spends longer composing the SQL than the database runs it.
    Give every NOT NULL column: peewee's Python-side defaults do not apply."""
    if not rows:
        return
    table = model._meta.table_name
    columns = ", ".join(f.column_name for f in fields)
    marks = ", ".join([database.param] * len(fields))
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    database.cursor().executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks}){tail}', rows)


def locked(query, share: bool = False):
    """SELECT ... FOR NO KEY UPDATE (or FOR SHARE) on PostgreSQL; on SQLite
    the IMMEDIATE transaction already holds the only write lock.

    NO KEY UPDATE is the lock a plain UPDATE of the row takes: it keeps other
    writers out but lets inserts that merely reference the row (a posting's
    foreign key to its account) go on, which FOR UPDATE would block.
    """
    return dialect().lock(query, share)


def lock_accounts(codes) -> None:
    """Lock the ledger accounts a transaction is about to move, in id order.

    Every writer that moves money takes account locks in ascending id order
    (this, ledger.post, the close's batches), so two transactions can never
    wait for each other in a circle: no deadlock on PostgreSQL.
    """
    if not dialect().lock_clause():
        return
    from .models import Account  # models imports this module

    list(locked(Account.select(Account.id).where(Account.code.in_(list(codes))).order_by(Account.id)).tuples())


# SQLSTATEs after which running the same transaction again is the remedy.
RETRYABLE_PGCODES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
# SQLSTATE prefixes of a server the node cannot use now: connection
# exceptions (class 08), too many connections, shutting down or starting up.
UNAVAILABLE_PGCODES = ("08", "53300", "57P01", "57P02", "57P03")


def is_retryable(exc: BaseException) -> bool:
    """A conflict between transactions (not a bug): retry, or answer 503.
    Told by the engine's error code (Dialect.is_retryable), not its text."""
    return dialect().is_retryable(exc)


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot serve now: 503 and Retry-After (Dialect.is_unavailable)."""
    return dialect().is_unavailable(exc)


@contextlib.contextmanager
def consistent_read():
    """Several SELECTs that must see one state of the database (the ledger
    check). PostgreSQL's READ COMMITTED gives each statement its own
    snapshot, so a check running beside a close could see half of a batch:
    there the transaction is REPEATABLE READ. SQLite's transaction already
    sees one state; it begins DEFERRED, so that in WAL mode the check reads
    its snapshot without holding up the writers."""
    with dialect().consistent_read():
        yield
