"""The month close (SPEC R8, R9, R10): a staged, resumable state machine.

    open --claim--> closing/plan --plan--> closing/apply --batches--> closed/done

* plan: decides which flattrs count (R8), what each giver spends (R9) and
  every flattr's share and fee, set-based in SQL, and takes effect whole:
  one transaction, or on SQLite two (the plan rows, then the shares and the
  move to apply; a rerun at the plan stage makes both again).
* apply: batches of givers, each batch one transaction that writes one ledger
  transaction per giver (key `close:P:giver:G`) and marks the plan rows paid.
  A crash loses at most the batch in flight, and its rollback leaves no trace.
* done: the period is closed and its totals are frozen.

On SQLite the plan is two transactions (its rows, then the shares) and
the batches' rows are worked out from the first while the second runs, on a
second connection in a thread of its own (`_Prep`); the batches check their
own references instead of SQLite checking them row by row
(`_check_references`).

Only one runner works at a time: it claims the period row with a lease that
it renews every batch. A runner that finds the claim held by a live process
waits for it; a dead runner's claim (same host, process gone, or lease run
out) is taken over. Correctness never depends on the claim: plan rows are
marked in the same transaction as the ledger writes, and the unique
transaction keys make a second payment impossible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import logging
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

from .. import periods
from ..config import Config
from ..db import database, is_postgres, locked
from ..db import execute as _execute
from ..errors import Validation
from ..ledger import node_account
from ..models import ClosePlan, Flattr, Period, utcnow

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
CLOSE_CACHE_KIB = 100 * 1024  # SQLite page cache while closing (see _page_cache)
PREP_CACHE_KIB = 16 * 1024  # and of the connection that prepares the batches (_Prep), per database
StepHook = Callable[[str, int, int], None]


class CloseBusy(Exception):
    """Another live runner holds the period; `wait=False` callers get this."""


@contextlib.contextmanager
def _page_cache():
    """On SQLite, a page cache of up to CLOSE_CACHE_KIB for the close's
    connection, and the connection's own setting back after it.

    The close touches a month's flattrs, its postings' indexes and the
    accounts several times; with SQLite's default 2 MiB cache every touch is
    a read from the OS. Memory is taken only as pages are read, so a small
    node stays small.
    """
    if is_postgres():
        yield
        return
    before = database.execute_sql("PRAGMA cache_size").fetchone()[0]
    temp_store = database.execute_sql("PRAGMA temp_store").fetchone()[0]
    database.execute_sql(f"PRAGMA cache_size = -{CLOSE_CACHE_KIB}")
    database.execute_sql("PRAGMA temp_store = MEMORY")
    try:
        yield
    finally:
        try:
            database.execute_sql(f"PRAGMA cache_size = {int(before)}")
            database.execute_sql(f"PRAGMA temp_store = {int(temp_store)}")
        except Exception:  # the database itself may be what failed
            log.warning("could not restore the page cache size", exc_info=True)


def new_runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _runner_alive(runner: str) -> bool:
    """A runner on this host is alive while its process is; elsewhere, ask the lease."""
    try:
        host, pid, _thread, _tag = runner.rsplit(":", 3)
        pid = int(pid)
        int(_thread)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        # Another thread of this process holds it while that thread runs.
        thread = int(_thread)
        return thread != threading.get_ident() and any(t.ident == thread for t in threading.enumerate())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim(name: str, runner: str, now: dt.datetime) -> str:
    """Claim the period; return its status after the claim ('closed' = nothing to do)."""
    with database.atomic():
        Period.insert(name=name).on_conflict_ignore().execute()
        period = locked(Period.select().where(Period.name == name)).get()
        if period.status == "closed":
            return "closed"
        held = period.runner and period.runner != runner
        if held and period.lease_until and period.lease_until > utcnow() and _runner_alive(period.runner):
            raise CloseBusy(f"period {name} is being closed by {period.runner}")
        if held:
            log.warning("period %s: taking over from runner %s", name, period.runner)
        values = {"runner": runner, "lease_until": utcnow() + dt.timedelta(seconds=LEASE_SECONDS)}
        if period.status == "open":
            values.update(status="closing", stage="plan", closing_started_at=now)
            log.info("period %s: closing", name)
        Period.update(**values).where(Period.name == name).execute()
        return "closing"


def _renew(name: str, runner: str) -> None:
    """Inside a batch's transaction: keep the lease, or stop if it was taken."""
    updated = (
        Period.update(lease_until=utcnow() + dt.timedelta(seconds=LEASE_SECONDS))
        .where((Period.name == name) & (Period.runner == runner))
        .execute()
    )
    if not updated:
        raise CloseBusy(f"period {name}: another runner took over")


# A period's first and last flattr id, and its number of flattrs. Flattrs are
# numbered as they are made, so a month's flattrs are (nearly) one run of ids.
_MONTH = "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0), COUNT(*) FROM flattr WHERE period = ?"


# The index that holds a period's flattrs by giver, in order of time (migration 4).
_BY_GIVER = "flattr_period_giver_id_created_at_id_owner_id"

# R9: spend = min(budget, funds) at close time, for every giver with a
# counting flattr; n = their counting flattrs.
_SPEND = "CASE WHEN u.monthly_budget < a.balance THEN u.monthly_budget ELSE a.balance END"


def _share(f: str, c: str) -> str:
    """SQL: the share of counting flattr `f` from its giver's close_cut row `c`
    (R9): base, plus one cent if (created_at, id) <= the cut, the r-th
    earliest (on the stored values the index orders by). With r = 0 the cut
    is NULL, the comparison NULL: no extra cent."""
    return f"{c}.base + CASE WHEN ({f}.created_at, {f}.id) <= ({c}.cut_at, {c}.cut_id) THEN 1 ELSE 0 END"


def _fee(share: str, fee_percent: int) -> str:
    """SQL: floor(share * fee_percent / 100) (R9); shares are >= 0, so integer
    division is the floor. `fee_percent` is the validated integer setting."""
    return "0" if fee_percent == 0 else f"({share}) * {int(fee_percent)} / 100"


def _giver_fees(c: str, fee_percent: int) -> str:
    """SQL: the fees of a giver's counting flattrs from their close_cut row
    `c`: r shares of base + 1 and n - r of base, each with its `_fee`."""
    return f"{c}.r * ({_fee(f'{c}.base + 1', fee_percent)}) + ({c}.n - {c}.r) * ({_fee(f'{c}.base', fee_percent)})"


# R8 across nodes (federation/gave.py): a remote owner (a proxy person) gave
# if their host node said so before the plan. SQL true when owner `o` is
# among them; one parameter, the period.
_PEER_GAVE = "{}.owner_id IN (SELECT pg.user_id FROM peer_gave pg WHERE pg.period = ? AND pg.gave)"


def _counting(alias: str, cfg: Config) -> str:
    """SQL: `AND` R8's test on flattr `alias` (its owner gave this period), or nothing."""
    return f"AND {alias}.owner_id NOT IN close_nongivers" if cfg.revenue_requires_giving else ""


def _nongivers_sqlite(conn: sqlite3.Connection, cfg: Config, name: str) -> None:
    """R8 as a probe: the temporary table close_nongivers holds the owners of
    the period's flattrs who gave nothing in it; a flattr counts unless its
    owner is there. They are usually far fewer than the period's givers (in
    the benchmark 1,000 against 100,000), so they are probed, not the givers."""
    conn.execute("DROP TABLE IF EXISTS temp.close_nongivers")
    if not cfg.revenue_requires_giving:
        return
    conn.execute("CREATE TEMP TABLE close_nongivers (owner_id INTEGER PRIMARY KEY)")
    conn.execute(
        "INSERT INTO close_nongivers SELECT o.owner_id FROM ("
        "  SELECT DISTINCT owner_id FROM flattr INDEXED BY flattr_period_owner_id WHERE period = ?) o "
        f"WHERE NOT EXISTS (SELECT 1 FROM flattr g INDEXED BY {_BY_GIVER} WHERE g.period = ? AND g.giver_id = o.owner_id) "
        f"AND NOT {_PEER_GAVE.format('o')}",
        (name, name, name),
    )


def _cut_sqlite(conn: sqlite3.Connection, cfg: Config, name: str, plan: str, plan_args: tuple = ()) -> None:
    """The temporary table close_cut, one row per giver of `plan` (SQL giving
    giver_id, spend, n): base = spend / n, r = spend % n, and the cut:
    (created_at, id) of the r-th earliest counting flattr (NULL when r = 0),
    so that a counting flattr's share is `_share`.

    The plan writes every flattr's share from it and `_Prep` sums the
    postings from it. Nothing it is made of changes once the period is
    closing (its flattrs) or planned (close_plan), so it comes out the same
    every time it is made.
    """
    conn.execute("DROP TABLE IF EXISTS temp.close_cut")
    conn.execute(
        "CREATE TEMP TABLE close_cut (giver_id INTEGER PRIMARY KEY, n INTEGER NOT NULL, base INTEGER NOT NULL, "
        "r INTEGER NOT NULL, cut_at DATETIME, cut_id INTEGER)"
    )
    conn.execute(f"INSERT INTO close_cut (giver_id, n, base, r) SELECT giver_id, n, spend / n, spend % n FROM ({plan})", plan_args)
    # The cut of each giver with r > 0 (r < n, so there is an r-th counting
    # flattr): a seek into the (period, giver_id, created_at, id, owner_id)
    # index, where a giver's flattrs are in order of time, and r - 1 steps.
    # SQLite takes no column in OFFSET, so one statement per value of r, run
    # over the givers with that r (r < n: a handful of values in a month).
    # (1M flattrs: 0.3 s, where ROW_NUMBER() over the month took 0.8 s.)
    conn.execute("CREATE INDEX temp.close_cut_r ON close_cut (r)")
    rs = [(name, r - 1, r) for (r,) in conn.execute("SELECT DISTINCT r FROM close_cut WHERE r > 0").fetchall()]
    conn.executemany(
        "UPDATE close_cut SET (cut_at, cut_id) = ("
        f"  SELECT f.created_at, f.id FROM flattr f INDEXED BY {_BY_GIVER} "
        f"  WHERE f.period = ? AND f.giver_id = close_cut.giver_id {_counting('f', cfg)} "
        "  ORDER BY f.created_at, f.id LIMIT 1 OFFSET ?"
        ") WHERE r = ?",
        rs,
    )


def _plan_rows_sqlite(cfg: Config, name: str) -> None:
    """The plan's first transaction on SQLite: close_nongivers (kept for the
    second on this connection), then close_plan."""
    conn = database.connection()
    _nongivers_sqlite(conn, cfg, name)
    # R9: each giver's counting flattrs n, and spend.
    conn.execute(
        f"INSERT INTO close_plan (period, giver_id, spend, n) SELECT ?, c.giver_id, {_SPEND}, c.n "
        f"FROM (SELECT f.giver_id, COUNT(*) AS n FROM flattr f INDEXED BY {_BY_GIVER} "
        f"  WHERE f.period = ? {_counting('f', cfg)} GROUP BY f.giver_id) c "
        'JOIN "user" u ON u.id = c.giver_id '
        "JOIN account a ON a.user_id = c.giver_id AND a.kind = 'funds'",
        (name, name),
    )


def _shares_sqlite(cfg: Config, name: str, prep: _Prep) -> tuple[int, int, int, int]:
    """The plan's second transaction on SQLite: close_cut, then one UPDATE
    that walks the month in file order; no sort and no per-flattr table.
    Returns the totals (`_plan`), worked out from close_cut: a giver's
    counting flattrs take their whole spend, r shares of base + 1 and n - r
    of base, each with its fee.

    (A temporary table of every flattr's share, looked up by id in the
    UPDATE, took 4.5 s at 1M flattrs, and SQLite's UPDATE ... FROM over the
    ranked rows more than twice as long as such a lookup: docs/performance.md.)
    """
    conn = database.connection()
    _cut_sqlite(conn, cfg, name, "SELECT giver_id, spend, n FROM close_plan WHERE period = ?", (name,))
    # A counting flattr gets its share and fee, one that does not 0 and 0.
    # Exactly one of the two SELECTs finds a row: the first for a counting
    # flattr (its giver has a plan row), the second for one that does not
    # count. (LIMIT 1 only spares the second probe.) A counting flattr whose
    # giver had no plan row (no funds account) would find neither and fail
    # the NOT NULL on status, stopping the plan.
    share = _share("flattr", "c")
    not_counting = "flattr.owner_id IN close_nongivers" if cfg.revenue_requires_giving else "0"
    lo, hi, flattrs = prep.month()
    conn.execute(
        "UPDATE flattr NOT INDEXED SET (status, share, fee) = ("
        f"  SELECT 'counted', {share}, {_fee(share, cfg.fee_percent)} FROM close_cut c "
        f"  WHERE c.giver_id = flattr.giver_id {_counting('flattr', cfg)} "
        f"  UNION ALL SELECT 'not_counted', 0, 0 WHERE {not_counting} LIMIT 1"
        ") WHERE flattr.id BETWEEN ? AND ? AND flattr.period = ?",
        (lo, hi, name),
    )
    fees = _giver_fees("c", cfg.fee_percent)
    counted, spend, fees = conn.execute(
        f"SELECT COALESCE(SUM(c.n), 0), COALESCE(SUM(c.n * c.base + c.r), 0), COALESCE(SUM({fees}), 0) FROM close_cut c"
    ).fetchone()
    for temp in ("close_nongivers", "close_cut"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return flattrs, counted, spend - fees, fees


def _plan_postgres(cfg: Config, name: str, month: tuple[int, int, str]) -> None:
    """The plan on PostgreSQL: its planner hashes and sorts well, so the
    shares are one UPDATE ... FROM over the ranked month."""
    # R8: a flattr counts only if the thing's owner gave in the same period.
    # Both tests below are joins to the period's givers, linear in the
    # month: an IN or EXISTS inside a CASE stays a subplan per row on
    # PostgreSQL, rescanning the month for each flattr once the list
    # outgrows work_mem (quadratic at 1M flattrs).
    if cfg.revenue_requires_giving:
        gave = f"AND (EXISTS (SELECT 1 FROM flattr g WHERE g.period = ? AND g.giver_id = f.owner_id) OR {_PEER_GAVE.format('f')})"
        givers = (
            "LEFT JOIN (SELECT DISTINCT g.giver_id FROM flattr g WHERE g.period = ? "
            "UNION SELECT pg.user_id FROM peer_gave pg WHERE pg.period = ? AND pg.gave) gv ON gv.giver_id = f.owner_id"
        )
        counts, counts_args = "CASE WHEN gv.giver_id IS NULL THEN 0 ELSE 1 END", (name, name)
    else:
        gave = givers = ""
        counts, counts_args = "1", ()
    _execute(
        f"INSERT INTO close_plan (period, giver_id, spend, n) SELECT ?, c.giver_id, {_SPEND}, c.n "
        "FROM (SELECT f.giver_id, COUNT(*) AS n FROM flattr f "
        f"  WHERE f.id BETWEEN ? AND ? AND f.period = ? {gave} GROUP BY f.giver_id) c "
        'JOIN "user" u ON u.id = c.giver_id '
        "JOIN account a ON a.user_id = c.giver_id AND a.kind = 'funds'",
        (name, *month, *counts_args),
    )
    # Every flattr in one pass: its status (R8), and its share: base, plus
    # one cent for the r earliest counting ones (by time, then id); the
    # fee is floor(share * fee_percent / 100). Not counting: 0 and 0.
    # m is materialized so that R8's test runs once per flattr, not once per use.
    _execute(
        f"WITH m AS MATERIALIZED (SELECT f.id, f.giver_id, f.created_at, {counts} AS counts FROM flattr f "
        f"  {givers} WHERE f.id BETWEEN ? AND ? AND f.period = ?) "
        "UPDATE flattr SET status = s.status, share = s.share, fee = s.share * ? / 100 FROM ("
        "  SELECT r.id, CASE WHEN r.counts = 1 THEN 'counted' ELSE 'not_counted' END AS status, "
        "  CASE WHEN r.counts = 1 THEN r.base + CASE WHEN r.rn <= r.spend - r.base * r.n THEN 1 ELSE 0 END "
        "  ELSE 0 END AS share FROM ("
        "    SELECT m.id, m.counts, p.spend, p.n, p.spend / p.n AS base, "
        "    ROW_NUMBER() OVER (PARTITION BY m.giver_id, m.counts ORDER BY m.created_at, m.id) AS rn FROM m "
        "    LEFT JOIN close_plan p ON m.counts = 1 AND p.period = ? AND p.giver_id = m.giver_id) r"
        ") s WHERE flattr.id = s.id",
        (*counts_args, *month, cfg.fee_percent, name),
    )


def _plan(cfg: Config, name: str, runner: str, hook: StepHook | None, prep: _Prep | None) -> None:
    """Plan the close: close_plan, every flattr's status, share and fee, the
    totals.

    On SQLite in two transactions: the plan rows first, so that `prep` can
    start from them while the second writes the shares. The stage moves to
    apply only with the second; a close that stops between them is at the
    plan stage still, and its rerun makes both again (the first deletes the
    period's plan rows)."""
    if prep:
        with database.atomic():
            _renew(name, runner)
            _execute("DELETE FROM close_plan WHERE period = ?", (name,))
            _plan_rows_sqlite(cfg, name)
            if hook:
                hook("plan:rows:before-commit", 0, 0)
        if hook:
            hook("plan:rows", 0, 0)
        prep.start(month=True)
    with database.atomic():
        _renew(name, runner)
        if prep:
            flattrs, counted, distributed, fees = _shares_sqlite(cfg, name, prep)
        else:
            _execute("DELETE FROM close_plan WHERE period = ?", (name,))
            lo, hi, _ = _execute(_MONTH, (name,)).fetchone()
            month = (lo, hi, name)
            _plan_postgres(cfg, name, month)
            flattrs, distributed, fees, counted = _execute(
                "SELECT COUNT(*), COALESCE(SUM(f.share - f.fee), 0), COALESCE(SUM(f.fee), 0), "
                "SUM(CASE WHEN f.status = 'counted' THEN 1 ELSE 0 END) FROM flattr f "
                "WHERE f.id BETWEEN ? AND ? AND f.period = ?",
                month,
            ).fetchone()
        givers = ClosePlan.select().where((ClosePlan.period == name) & (ClosePlan.spend > 0)).count()
        Period.update(
            stage="apply", givers=givers, flattrs=flattrs, counted=counted or 0, distributed=distributed, fees=fees
        ).where(
            Period.name == name
        ).execute()
        if hook:
            hook("plan:before-commit", 0, givers)
    log.info("period %s: planned %d flattrs (%d counting) of %d paying givers", name, flattrs, counted or 0, givers)
    if hook:
        hook("plan", 0, givers)


def _apply(cfg: Config, name: str, runner: str, hook: StepHook | None, now: dt.datetime, prep: _Prep | None) -> None:
    """The batches (on SQLite from `prep`)."""
    total = ClosePlan.select().where((ClosePlan.period == name) & (ClosePlan.spend > 0)).count()
    done = ClosePlan.select().where((ClosePlan.period == name) & (ClosePlan.spend > 0) & ClosePlan.txn.is_null(False)).count()
    fees_id = node_account("fees").id
    if is_postgres():
        _apply_batches_postgres(cfg, name, runner, hook, now, fees_id, done, total)
    else:
        prep.ready()
        _apply_batches_sqlite(name, runner, prep, hook, now, done, total)


_SCRATCH = "flattr-close-"  # + the process id: the scratch directories of _Prep


def _remove_dead_scratch() -> None:
    """Remove the scratch directories of closes whose process is gone (killed)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), f"{_SCRATCH}*-*")):
        pid = os.path.basename(path)[len(_SCRATCH) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


class _Prep:
    """SQLite: the apply's rows, made on a second connection in a thread of
    its own, into a scratch database file that the batches attach as `prep`:

    * prep.close_batch: each paying giver still to pay, in giver order, with
      their batch, their place in it (seq), spend and funds account;
    * prep.close_amounts, keyed (batch, account_id, seq): what each giver's
      transaction credits each owner's revenue (shares less fees, summed per
      owner) and the node's fees (summed per giver). It is read off the
      (period, giver_id, created_at, id, owner_id) index in giver order with
      `_share`, the plan's own expression, never from the flattr rows: the
      index holds every column it needs, so the month is read in order and
      the table's rows not at all. The key puts each batch's postings in
      account order, so that their inserts into posting's account index go
      in order too.

    It starts from the committed plan rows (close_plan), the unpaid ones:
    after the plan's first transaction, while the second writes the shares,
    on the machine's other core; on a resumed close, before the batches. It
    only reads the node's database. A close removes its scratch directory
    when it ends (`close`), and the next close those of killed processes.
    """

    def __init__(self, cfg: Config, name: str, fees_id: int):
        self.cfg, self.name, self.fees_id = cfg, name, fees_id
        self.database = database.database
        _remove_dead_scratch()
        self.dir = tempfile.mkdtemp(prefix=f"{_SCRATCH}{os.getpid()}-")
        self.path = os.path.join(self.dir, "prep.db")
        self.batches: list[tuple[int, int]] = []  # per batch: its first and last giver
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._month = threading.Event()
        self._month_ids = (0, 0, 0)
        self._error: BaseException | None = None
        self._attached = False

    def start(self, month: bool) -> None:
        """Start the thread; with `month`, the month's bounds are the first
        thing it works out (`month()`)."""
        self._thread = threading.Thread(target=self._run, args=(month,), name=f"close-prep-{self.name}", daemon=True)
        self._thread.start()

    def month(self) -> tuple[int, int, int]:
        """The month's first and last flattr id and its number of flattrs (`_MONTH`)."""
        self._month.wait()
        if self._error:
            self._join()
        return self._month_ids

    def ready(self) -> None:
        """Wait for the rows and attach them to this connection (outside a transaction)."""
        if self._thread is None:
            self.start(month=False)
        self._join()
        _execute("ATTACH DATABASE ? AS prep", (self.path,))
        self._attached = True

    def close(self) -> None:
        """Stop the thread if it still runs, detach, remove the scratch file."""
        if self._thread is not None and self._thread.is_alive():
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.interrupt()
            self._thread.join(timeout=60)
        if self._attached and not database.in_transaction():
            with contextlib.suppress(Exception):  # the database itself may be what failed
                _execute("DETACH DATABASE prep")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _join(self) -> None:
        self._thread.join()
        if self._error:
            raise self._error

    def _run(self, month: bool) -> None:
        try:
            conn = self._conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute(f"PRAGMA cache_size = -{PREP_CACHE_KIB}")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("ATTACH DATABASE ? AS prep", (self.path,))
            conn.execute("PRAGMA prep.journal_mode = OFF")  # a scratch file: nothing to recover
            conn.execute("PRAGMA prep.synchronous = OFF")
            conn.execute(f"PRAGMA prep.cache_size = -{PREP_CACHE_KIB}")
            conn.execute("BEGIN")
            if month:
                self._month_ids = conn.execute(_MONTH, (self.name,)).fetchone()
                self._month.set()
            self.batches = self._prepare(conn)
            conn.execute("COMMIT")
        except BaseException as e:  # for the callers of month() and ready()
            self._error = e
        finally:
            self._month.set()
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _prepare(self, conn: sqlite3.Connection) -> list[tuple[int, int]]:
        cfg, name = self.cfg, self.name
        _nongivers_sqlite(conn, cfg, name)
        plan, plan_args = "SELECT giver_id, spend, n FROM close_plan WHERE period = ? AND txn_id IS NULL", (name,)
        _cut_sqlite(conn, cfg, name, plan, plan_args)
        conn.execute(
            "CREATE TABLE prep.close_batch (giver_id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "spend INTEGER NOT NULL, funds_id INTEGER NOT NULL)"
        )
        size = cfg.close_batch_size
        conn.execute(
            "INSERT INTO prep.close_batch SELECT p.giver_id, (p.rn - 1) / ?, (p.rn - 1) % ? + 1, p.spend, a.id FROM ("
            f"  SELECT giver_id, spend, ROW_NUMBER() OVER (ORDER BY giver_id) AS rn FROM ({plan}) WHERE spend > 0) p "
            "JOIN account a ON a.user_id = p.giver_id AND a.kind = 'funds'",
            (size, size, *plan_args),
        )
        conn.execute("CREATE UNIQUE INDEX prep.close_batch_seq ON close_batch (batch, seq)")
        conn.execute(
            "CREATE TABLE prep.close_amounts (batch INTEGER NOT NULL, account_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "amount INTEGER NOT NULL, PRIMARY KEY (batch, account_id, seq)) WITHOUT ROWID"
        )
        # Each person's revenue account (one per person: the unique (user_id,
        # kind) index): an integer key probed per flattr costs a third of a
        # probe of that index.
        conn.execute("CREATE TEMP TABLE close_revenue (user_id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL)")
        conn.execute("INSERT INTO close_revenue SELECT user_id, id FROM account WHERE kind = 'revenue' AND user_id IS NOT NULL")
        # Each owner's revenue gets the shares less the fee. Every share - fee
        # is >= 0 (CHECK fee <= share), so leaving out the zeros keeps each sum
        # and drops exactly the sums that are 0 (a posting is never 0).
        share = _share("f", "c")
        net = f"{share} - {_fee(share, cfg.fee_percent)}" if cfg.fee_percent else share
        conn.execute(
            f"INSERT INTO prep.close_amounts SELECT b.batch, r.account_id, b.seq, {net} "
            "FROM prep.close_batch b CROSS JOIN close_cut c ON c.giver_id = b.giver_id "
            f"CROSS JOIN flattr f INDEXED BY {_BY_GIVER} ON f.period = ? AND f.giver_id = b.giver_id "
            "JOIN close_revenue r ON r.user_id = f.owner_id "
            f"WHERE {net} > 0 {_counting('f', cfg)} "
            "ON CONFLICT (batch, account_id, seq) DO UPDATE SET amount = amount + excluded.amount",
            (name,),
        )
        # ... and the node's fee account the fees.
        if cfg.fee_percent:
            fees = _giver_fees("c", cfg.fee_percent)
            conn.execute(
                f"INSERT INTO prep.close_amounts SELECT b.batch, ?, b.seq, {fees} FROM prep.close_batch b "
                f"JOIN close_cut c ON c.giver_id = b.giver_id WHERE {fees} > 0",
                (self.fees_id,),
            )
        return [
            (lo, hi)
            for _, lo, hi in conn.execute(
                "SELECT batch, MIN(giver_id), MAX(giver_id) FROM prep.close_batch GROUP BY batch ORDER BY batch"
            ).fetchall()
        ]


@contextlib.contextmanager
def _without_foreign_keys():
    """SQLite: this connection without its per-row foreign-key checks, for
    the batches, which check the same references once per batch instead
    (`_check_references`). The pragma only takes effect outside a
    transaction, so both changes are read back; a connection that cannot be
    given its checks back is closed (it reopens with them)."""
    _execute("PRAGMA foreign_keys = OFF")
    if _execute("PRAGMA foreign_keys").fetchone()[0]:
        raise RuntimeError("could not turn foreign-key checks off: inside a transaction")
    try:
        yield
    finally:
        try:
            _execute("PRAGMA foreign_keys = ON")
            restored = _execute("PRAGMA foreign_keys").fetchone()[0] == 1
        except Exception:  # the database itself may be what failed
            restored = False
        if not restored:
            log.error("could not turn foreign-key checks back on; closing the connection")
            with contextlib.suppress(Exception):
                database.close()


def _check_references(name: str, batch: int, made: int) -> None:
    """What foreign keys would check in a batch, checked set-based before its
    commit: every account it posts to exists, and every posting's
    transaction is one the batch made (`last + seq`, for the seqs 1..made of
    its givers, one transaction each)."""
    low, high, givers = _execute(
        "SELECT MIN(seq), MAX(seq), COUNT(*) FROM prep.close_batch WHERE batch = ?", (batch,)
    ).fetchone()
    amounts_low, amounts_high = _execute("SELECT MIN(seq), MAX(seq) FROM prep.close_amounts WHERE batch = ?", (batch,)).fetchone()
    missing = _execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT account_id AS id FROM prep.close_amounts WHERE batch = ? "
        "  UNION SELECT funds_id FROM prep.close_batch WHERE batch = ?) x "
        "WHERE NOT EXISTS (SELECT 1 FROM account a WHERE a.id = x.id)",
        (batch, batch),
    ).fetchone()[0]
    seqs_ok = low == 1 and high == givers == made
    amounts_ok = amounts_low is None or (amounts_low >= 1 and amounts_high <= made)
    if not (seqs_ok and amounts_ok and missing == 0):
        raise RuntimeError(
            f"period {name}: batch {batch} would post to {missing} missing accounts or to transactions it did not make "
            f"(givers {low}..{high} of {givers}, amounts {amounts_low}..{amounts_high}, made {made})"
        )


def _apply_batches_sqlite(name: str, runner: str, prep: _Prep, hook: StepHook | None, now: dt.datetime, done: int, total: int) -> None:
    """SQLite: each batch one transaction, its rows read from `prep`.

    Its transactions get their ids here, after the last txn id (in the
    write transaction nobody else inserts), so that the postings need not
    look them up by key; the unique key still refuses a second payment, and
    close_plan is only marked for givers it has not marked yet.

    The batches run without SQLite's per-row foreign-key checks: two probes
    per posting were a tenth of the close (0.45 s of 4.6 at 1M flattrs).
    `_check_references` checks the same references once per batch, before
    it commits: every account id it posts to (about one per owner) and the
    range of its transaction ids.
    """
    with _without_foreign_keys():
        for batch, (lo, hi) in enumerate(prep.batches):
            done = _apply_batch_sqlite(name, runner, batch, lo, hi, hook, now, done, total)


def _apply_batch_sqlite(
    name: str, runner: str, batch: int, lo: int, hi: int, hook: StepHook | None, now: dt.datetime, done: int, total: int
) -> int:
    """One batch, its givers lo..hi; returns how many givers are paid after it."""
    with database.atomic():
        _renew(name, runner)
        last = _execute("SELECT COALESCE(MAX(id), 0) FROM txn").fetchone()[0]
        made = _execute(
            "INSERT INTO txn (id, key, kind, memo, created_at) "
            "SELECT ? + seq, 'close:' || ? || ':giver:' || CAST(giver_id AS VARCHAR(20)), 'close', ?, ? "
            "FROM prep.close_batch WHERE batch = ?",
            (last, name, name, now, batch),
        ).rowcount
        # The batch is the unpaid paying givers from lo to hi: any other
        # count means the plan moved under it.
        marked = _execute(
            "UPDATE close_plan SET txn_id = ? + (SELECT b.seq FROM prep.close_batch b WHERE b.giver_id = close_plan.giver_id) "
            "WHERE period = ? AND giver_id BETWEEN ? AND ? AND spend > 0 AND txn_id IS NULL",
            (last, name, lo, hi),
        ).rowcount
        if marked != made:
            raise RuntimeError(f"period {name}: batch {batch} made {made} transactions for {marked} plan rows")
        # The giver's funds pay the whole spend; the owners' revenue and
        # the node's fees get their amounts, in account order.
        _execute(
            "INSERT INTO posting (txn_id, account_id, amount) SELECT ? + seq, funds_id, -spend FROM prep.close_batch WHERE batch = ?",
            (last, batch),
        )
        _execute(
            "INSERT INTO posting (txn_id, account_id, amount) SELECT ? + seq, account_id, amount FROM prep.close_amounts WHERE batch = ?",
            (last, batch),
        )
        # Cached balances move in the same transaction as their postings.
        _execute(
            "UPDATE account SET balance = account.balance + d.delta FROM ("
            "  SELECT funds_id AS id, -spend AS delta FROM prep.close_batch WHERE batch = ? "
            "  UNION ALL SELECT account_id, SUM(amount) FROM prep.close_amounts WHERE batch = ? GROUP BY account_id"
            ") d WHERE account.id = d.id",
            (batch, batch),
        )
        _check_references(name, batch, made)
        done += made
        if hook:
            hook("apply:before-commit", done, total)
    if hook:
        hook("apply", done, total)
    return done


def _apply_batches_postgres(
    cfg: Config, name: str, runner: str, hook: StepHook | None, now: dt.datetime, fees_id: int, done: int, total: int
) -> None:
    """PostgreSQL: each batch one transaction over the next givers to pay,
    its postings read from their flattrs."""
    # The plan's fee total is the sum of every flattr's fee (all >= 0): when it
    # is 0, the fee postings below would find nothing, so they are not looked for.
    any_fees = (Period.select(Period.fees).where(Period.name == name).scalar() or 0) > 0
    # Batches go in giver order and each commits all of its givers, so the
    # next one starts after the last giver done here (a resumed close: at 0).
    after = 0
    while True:
        with database.atomic():
            _renew(name, runner)
            givers = [
                row[0]
                for row in _execute(
                    "SELECT giver_id FROM close_plan WHERE period = ? AND giver_id > ? AND spend > 0 AND txn_id IS NULL "
                    "ORDER BY giver_id LIMIT ?",
                    (name, after, cfg.close_batch_size),
                ).fetchall()
            ]
            if not givers:
                break
            lo, hi = givers[0], givers[-1]
            rng = (name, lo, hi)
            _execute(
                "INSERT INTO txn (key, kind, memo, created_at) "
                "SELECT 'close:' || period || ':giver:' || CAST(giver_id AS VARCHAR(20)), 'close', period, ? "
                "FROM close_plan WHERE period = ? AND giver_id BETWEEN ? AND ? AND spend > 0 AND txn_id IS NULL",
                (now, *rng),
            )
            _execute(
                "UPDATE close_plan SET txn_id = t.id FROM txn t "
                "WHERE t.key = 'close:' || close_plan.period || ':giver:' || CAST(close_plan.giver_id AS VARCHAR(20)) "
                "AND close_plan.period = ? AND close_plan.giver_id BETWEEN ? AND ? AND close_plan.spend > 0",
                rng,
            )
            # The giver's funds pay the whole spend ...
            _execute(
                "INSERT INTO posting (txn_id, account_id, amount) "
                "SELECT p.txn_id, a.id, -p.spend FROM close_plan p "
                "JOIN account a ON a.user_id = p.giver_id AND a.kind = 'funds' "
                "WHERE p.period = ? AND p.giver_id BETWEEN ? AND ? AND p.spend > 0",
                rng,
            )
            _post_revenue_and_fees(rng, name, fees_id, any_fees)
            # Cached balances move in the same transaction as their postings,
            # their rows locked in id order first, as every writer does (db.lock_accounts).
            _execute(
                "SELECT id FROM account WHERE id IN (SELECT x.account_id FROM posting x "
                "JOIN close_plan p ON p.txn_id = x.txn_id WHERE p.period = ? AND p.giver_id BETWEEN ? AND ?) "
                "ORDER BY id FOR NO KEY UPDATE",
                rng,
            )
            _execute(
                "UPDATE account SET balance = account.balance + d.delta FROM ("
                "SELECT x.account_id, SUM(x.amount) AS delta FROM posting x "
                "JOIN close_plan p ON p.txn_id = x.txn_id "
                "WHERE p.period = ? AND p.giver_id BETWEEN ? AND ? GROUP BY x.account_id"
                ") d WHERE account.id = d.account_id",
                rng,
            )
            after = hi
            done += len(givers)
            if hook:
                hook("apply:before-commit", done, total)
        if hook:
            hook("apply", done, total)


def _post_revenue_and_fees(rng: tuple[str, int, int], name: str, fees_id: int, any_fees: bool) -> None:
    """PostgreSQL: a batch's revenue and fee postings, read from its flattrs."""
    # Each owner's revenue gets its shares less the fee ...
    # (Summed per giver and owner first, the plan row is looked up once per sum.)
    _execute(
        "INSERT INTO posting (txn_id, account_id, amount) "
        "SELECT p.txn_id, x.account_id, x.amount FROM ("
        "  SELECT f.giver_id, a.id AS account_id, SUM(f.share - f.fee) AS amount FROM flattr f "
        "  JOIN account a ON a.user_id = f.owner_id AND a.kind = 'revenue' "
        "  WHERE f.period = ? AND f.giver_id BETWEEN ? AND ? AND f.status = 'counted' "
        "  GROUP BY f.giver_id, a.id HAVING SUM(f.share - f.fee) > 0"
        ") x JOIN close_plan p ON p.period = ? AND p.giver_id = x.giver_id AND p.spend > 0",
        (*rng, name),
    )
    # ... and the node's fee account the fees.
    if any_fees:
        _execute(
            "INSERT INTO posting (txn_id, account_id, amount) "
            "SELECT p.txn_id, ?, SUM(f.fee) FROM flattr f "
            "JOIN close_plan p ON p.period = f.period AND p.giver_id = f.giver_id "
            "WHERE f.period = ? AND f.giver_id BETWEEN ? AND ? AND f.status = 'counted' AND p.spend > 0 "
            "GROUP BY p.txn_id HAVING SUM(f.fee) > 0",
            (fees_id, *rng),
        )


def _finish(name: str, runner: str, now: dt.datetime) -> None:
    with database.atomic():
        _renew(name, runner)
        Period.update(status="closed", stage="done", closed_at=now, runner=None, lease_until=None).where(
            Period.name == name
        ).execute()
    period = Period.get_by_id(name)
    log.info(
        "period %s: closed: %d givers, %d flattrs, %d counted, %d distributed, %d fees",
        name, period.givers, period.flattrs, period.counted, period.distributed, period.fees,
    )


def _close_one(cfg: Config, name: str, now: dt.datetime, runner: str, hook: StepHook | None, wait: bool) -> None:
    while True:
        try:
            if _claim(name, runner, now) == "closed":
                return
            break
        except CloseBusy:
            if not wait:
                raise
            time.sleep(0.2)
    try:
        with _page_cache():
            stage = Period.select(Period.stage).where(Period.name == name).scalar()
            prep = None if is_postgres() or stage not in ("plan", "apply") else _Prep(cfg, name, node_account("fees").id)
            try:
                if stage == "plan":
                    _plan(cfg, name, runner, hook, prep)
                    stage = "apply"
                if stage == "apply":
                    _apply(cfg, name, runner, hook, now, prep)
            finally:
                if prep:
                    prep.close()
            _finish(name, runner, now)
    except BaseException:
        _release(name, runner)
        raise


def _release(name: str, runner: str) -> None:
    """After an error: let the next runner resume at once. (After a crash the
    claim stays, and the next runner finds its owner dead or its lease out.)"""
    try:
        if database.in_transaction():
            return
        with database.atomic():
            Period.update(runner=None, lease_until=None).where((Period.name == name) & (Period.runner == runner)).execute()
    except Exception:  # the database itself may be what failed
        log.warning("period %s: could not release the claim of %s", name, runner, exc_info=True)


def close_period(
    cfg: Config,
    name: str,
    now: dt.datetime | None = None,
    *,
    hook: StepHook | None = None,
    wait: bool = True,
) -> Period:
    """Close `name` and every earlier period still open, in order.

    Earlier periods go first because a giver's spend depends on the funds
    the previous close left. `hook(stage, done, total)` is told of progress.
    """
    now = now or utcnow()
    if not periods.is_valid(name):
        raise Validation(f"not a period (YYYY-MM): {name!r}", field="period")
    if not periods.has_ended(name, now, cfg.tz):
        raise Validation(f"period {name} has not ended yet: it ends at {periods.iso(periods.end_utc(name, cfg.tz), cfg.tz)}")
    runner = new_runner_id()
    pending = [
        p
        for (p,) in Period.select(Period.name).where((Period.status != "closed") & (Period.name < name)).order_by(Period.name).tuples()
    ]
    for earlier in [*pending, name]:
        _close_one(cfg, earlier, now, runner, hook, wait)
    return Period.get_by_id(name)


def close_due_periods(cfg: Config, now: dt.datetime | None = None) -> list[str]:
    """What the scheduler runs: close every ended period that is not closed.

    A node that was down on the 1st catches up; a period another process is
    closing is left to it.
    """
    now = now or utcnow()
    last = periods.last_ended(now, cfg.tz)
    Period.insert(name=last).on_conflict_ignore().execute()
    due = [p for (p,) in Period.select(Period.name).where((Period.status != "closed") & (Period.name <= last)).order_by(Period.name).tuples()]
    closed = []
    for name in due:
        try:
            close_period(cfg, name, now, wait=False)
            closed.append(name)
        except CloseBusy as e:
            log.info("%s; leaving it to that runner", e)
            break
    return closed


def period_summary(cfg: Config, name: str, now: dt.datetime | None = None) -> dict:
    if not periods.is_valid(name):
        raise Validation(f"not a period (YYYY-MM): {name!r}", field="period")
    period = Period.get_or_none(Period.name == name)
    if period is None:
        period = Period(name=name)
    if period.status == "open":
        givers = Flattr.select(Flattr.giver).where(Flattr.period == name).distinct().count()
        flattrs = Flattr.select().where(Flattr.period == name).count()
        counted = None
    else:
        givers, flattrs, counted = period.givers, period.flattrs, period.counted
    return {
        "period": name,
        "status": period.status,
        "stage": period.stage or None,
        "ended": periods.has_ended(name, now or utcnow(), cfg.tz),
        "closed_at": periods.iso(period.closed_at, cfg.tz),
        "givers": givers,
        "flattrs": flattrs,
        "counted": counted,
        "distributed": period.distributed,
        "fees": period.fees,
        "currency": cfg.currency,
    }
