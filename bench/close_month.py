"""Benchmark of the month close (the issue "The node's heart").

Builds a month of flattrs through the real schema, closes it with the real
code (`closing.close_period`) in a child process, and prints the time, the
child's peak memory and the ratio to a plain `sqlite3` baseline that writes
as many rows, in as many transactions, in the same run. Then it checks the
ledger and the sums, and exits 1 if anything is wrong.

    .venv/bin/python bench/close_month.py            # 1,000,000 flattrs
    .venv/bin/python bench/close_month.py --small    # 10,000 flattrs, a sanity run
    .venv/bin/python bench/close_month.py --database postgresql://postgres@127.0.0.1:5432/test

Target (SQLite, 2 cores): under 20 s, under 300 MB, ratio under 3.
See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ comes first on sys.path, where bench/http.py would
# hide the standard library's http package from what we import.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flattr_node import db as dbmod  # noqa: E402
from flattr_node import ledger, schema  # noqa: E402
from flattr_node.config import Config, validate  # noqa: E402
from flattr_node.federation.models import Outbox, Peer, PeerGave, RemoteThing  # noqa: E402
from flattr_node.federation.peers import payable_code, receivable_code  # noqa: E402
from flattr_node.models import Account, ClosePlan, Deposit, Flattr, Period, Posting, Thing, Txn, User  # noqa: E402

PERIOD = "2026-10"
MONTH_START = dt.datetime(2026, 10, 1)
MONTH_SECONDS = 31 * 86400
CLOSE_AT = dt.datetime(2026, 11, 1, 0, 5)
HOME_URL = "https://home.example"  # the readers' home node, in the statements' flattr ids
BUILT_AT = dt.datetime(2026, 9, 30, 12, 0)
TARGET_SECONDS, TARGET_MB, TARGET_RATIO = 20.0, 300.0, 3.0
REMOTE_TARGET = 1.2  # the close with 20 % remote flattrs against the same month all local (issue 12)
CHUNK = 20000
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# -- the database under test ---------------------------------------------------------------


class Target:
    """A fresh database for one run: a SQLite file, or a new PostgreSQL schema."""

    def __init__(self, url: str | None, keep: bool):
        self.keep = keep
        self.tmpdir = None
        self.schema = None
        self.base = url
        if not url or urlsplit(url).scheme == "sqlite":
            if url:
                path = Path(dbmod.sqlite_path(url))
                if path.exists():
                    raise SystemExit(f"{path} exists: the bench needs a new file")
            else:
                self.tmpdir = tempfile.mkdtemp(prefix="flattr-bench-")
                path = Path(self.tmpdir) / "close_month.db"
            self.path = path
            self.url = f"sqlite:///{path}"
        elif urlsplit(url).scheme in ("postgresql", "postgres"):
            import psycopg2

            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg2.connect(url) as conn:
                conn.autocommit = True
                conn.cursor().execute(f"CREATE SCHEMA {self.schema}")
            sep = "&" if "?" in url else "?"
            self.url = f"{url}{sep}options={quote('-csearch_path=' + self.schema)}"
        else:
            raise SystemExit(f"unsupported database URL: {url}")

    @property
    def is_sqlite(self) -> bool:
        return self.schema is None

    def where(self) -> str:
        return str(self.path) if self.is_sqlite else f"schema {self.schema} of {self.base}"

    def drop(self) -> None:
        if self.keep:
            return
        if self.schema:
            import psycopg2

            conn = psycopg2.connect(self.base)
            conn.autocommit = True
            conn.cursor().execute(f"DROP SCHEMA {self.schema} CASCADE")
            conn.close()
        elif self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)


# -- building the month ----------------------------------------------------------------------


def _reference(n: int) -> str:
    chars = ""
    for _ in range(8):
        n, r = divmod(n, 32)
        chars += _CROCKFORD[r]
    return f"FN-{chars[:4]}-{chars[4:]}"


def _bulk(model, fields: list[str], rows, postgres: bool) -> None:
    """Insert rows (tuples in `fields` order) in chunks through the raw driver."""
    table = model._meta.table_name
    columns = ", ".join(model._meta.fields[f].column_name for f in fields)
    cursor = dbmod.database.cursor()
    chunk: list[tuple] = []

    def flush():
        if not chunk:
            return
        if postgres:
            from psycopg2.extras import execute_values

            execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s', chunk, page_size=5000)
        else:
            marks = ", ".join("?" * len(fields))
            cursor.executemany(f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', chunk)
        chunk.clear()

    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            flush()
    flush()


def _fix_sequences(postgres: bool) -> None:
    """The build chose ids itself; PostgreSQL's sequences must follow."""
    if not postgres:
        return
    for model in (User, Account, Txn, Posting, Thing, Flattr, Deposit, Peer, RemoteThing, Outbox):
        table = model._meta.table_name
        dbmod.database.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))"
        )


def is_remote(t: int, remote_share: float) -> bool:
    """Whether thing number `t` (0-based) is hosted on a peer: one in
    100 * remote_share, spread evenly over the things."""
    return (t * 37) % 100 < round(remote_share * 100)


def build(people: int, things: int, per_person: int, postgres: bool, remote_share: float = 0.0, peers: int = 4) -> dict:
    """Fill the bound, migrated, empty database with one month; return what the
    close must do, computed here independently of the closing code.

    With `remote_share`, that share of the things is hosted on `peers` peer
    nodes, as flattr_node/federation keeps them on the readers' home node: a
    thing row owned by a proxy person `name@host` (suspended, no budget)
    with its RemoteThing row; each flattr of one has its outbox row,
    delivered; the peers' R8 answers are stored (peer_gave: one proxy in 20
    did not give); each peer has its payable and receivable accounts. The
    same people flattr the same things in the same order as without."""
    if things < per_person + 1:
        raise SystemExit("--things must exceed --flattrs-per-person")
    database = dbmod.database
    owners_pool = max(2, people // 10 + 7)  # givers who also own things (not a divisor of --things)
    loners = max(1, people // 100)  # people who own things but give nothing (R8)
    proxies = max(peers, owners_pool // 5) if remote_share else 0  # remote owners, spread over the peers
    first_proxy = people + loners + 1
    stamp = BUILT_AT if postgres else BUILT_AT.isoformat(" ")

    def proxy_peer(u: int) -> int:
        return (u - first_proxy) % peers + 1

    def proxy_gave(u: int) -> bool:
        return (u - first_proxy) % 20 != 7

    def when(seconds: int):
        moment = MONTH_START + dt.timedelta(seconds=seconds)
        return moment if postgres else moment.isoformat(" ")

    budgets, funds = {}, {}
    for g in range(1, people + 1):
        budgets[g] = 200 + (g * 37) % 9801
        if g % 100 == 1:
            funds[g] = 0  # gives, but has no money: spends nothing
        elif g % 7 == 0:
            funds[g] = budgets[g] // 2 + 1  # less than the budget
        else:
            funds[g] = budgets[g] + (g % 500) * 10

    def owner_of(t: int) -> int:
        if proxies and is_remote(t, remote_share):
            return first_proxy + (t * 7919) % proxies
        if t % 20 == 0:
            return people + 1 + (t // 20) % loners
        return (t * 7919) % owners_pool + 1

    if not postgres:  # only to build faster: the close runs in another process, with its own settings
        database.execute_sql("PRAGMA cache_size = -262144")
    with database.atomic():
        node = dict(Account.select(Account.kind, Account.id).where(Account.user.is_null()).tuples())
        first_account = (Account.select(Account.id).order_by(Account.id.desc()).scalar() or 0) + 1

        def account_id(user_id: int, kind: str) -> int:
            return first_account + 2 * (user_id - 1) + (kind == "revenue")

        everyone = people + loners + proxies

        def person(u: int) -> tuple:
            if u < first_proxy:
                return (u, f"u{u}", f"u{u}@bench.example", "!bench: no password", "", "", "", False, False, False,
                        budgets.get(u, 200), 0, stamp, "")  # fmt: skip
            name = f"o{u}@peer{proxy_peer(u)}.example"  # federation/remote.py: proxy_name
            return (u, name, "", "!remote", name, "", f"https://peer{proxy_peer(u)}.example", False, True, False, 0, 0, stamp, "")

        _bulk(
            User,
            ["id", "username", "email", "password_hash", "display_name", "about", "url", "is_operator",
             "is_suspended", "show_flattrs", "monthly_budget", "monthly_topup", "created_at", "language"],
            (person(u) for u in range(1, everyone + 1)),
            postgres,
        )
        _bulk(
            Account,
            ["id", "code", "kind", "user", "balance"],
            (
                (account_id(u, kind), f"user:{u}:{kind}", kind, u, funds.get(u, 0) if kind == "funds" else 0)
                for u in range(1, everyone + 1)
                for kind in ("funds", "revenue")
            ),
            postgres,
        )
        depositors = [g for g in range(1, people + 1) if funds[g] > 0]
        _bulk(Txn, ["id", "key", "kind", "memo", "created_at"],
              ((i, f"deposit:{i}:confirm", "deposit", _reference(i), stamp) for i in range(1, len(depositors) + 1)), postgres)
        _bulk(
            Posting,
            ["id", "txn", "account", "amount"],
            (
                row
                for i, g in enumerate(depositors, 1)
                for row in ((2 * i - 1, i, node["external"], -funds[g]), (2 * i, i, account_id(g, "funds"), funds[g]))
            ),
            postgres,
        )
        _bulk(
            Deposit,
            ["id", "user", "amount", "reference", "status", "created_at", "confirmed_at", "txn"],
            ((i, g, funds[g], _reference(i), "confirmed", stamp, stamp, i) for i, g in enumerate(depositors, 1)),
            postgres,
        )
        deposited = sum(funds.values())
        Account.update(balance=Account.balance - deposited).where(Account.id == node["external"]).execute()
        _bulk(
            Thing,
            ["id", "owner", "url", "title", "description", "category", "language", "tags", "hidden", "archived", "created_at"],
            ((t + 1, owner_of(t), f"https://bench.example/t/{t + 1}", f"Thing {t + 1}", "", "text", "", "", False, False, stamp)
             for t in range(things)),
            postgres,
        )

        stride = things // per_person
        counted = 0
        spend = 0
        paying = 0
        remote_flattrs: list[tuple[int, int]] = []  # (flattr id, peer id)

        def gives(owner: int) -> bool:
            """R8: local givers gave; a remote owner, when its peer said so."""
            return owner <= people or (owner >= first_proxy and proxy_gave(owner))

        def flattrs():
            """Every giver's flattrs, then numbered in the order of time, as a
            month of clicks would have numbered them."""
            nonlocal counted, spend, paying
            month = []
            for g in range(1, people + 1):
                chosen: set[int] = set()
                counts = 0
                for j in range(per_person):
                    t = (g * 131 + j * stride) % things
                    while owner_of(t) == g or t in chosen:
                        t = (t + 1) % things
                    chosen.add(t)
                    owner = owner_of(t)
                    if gives(owner):  # the owner gives this month: it counts (R8)
                        counts += 1
                    month.append(((g * 7919 + j * 104729) % MONTH_SECONDS, g, t + 1, owner))
                counted += counts
                if counts:
                    s = min(budgets[g], funds[g])
                    spend += s
                    paying += s > 0
            month.sort()
            for fid, (seconds, g, thing, owner) in enumerate(month, 1):
                if owner >= first_proxy:
                    remote_flattrs.append((fid, proxy_peer(owner)))
                yield (fid, g, thing, owner, PERIOD, when(seconds), "pending")

        _bulk(Flattr, ["id", "giver", "thing", "owner", "period", "created_at", "status"], flattrs(), postgres)
        if proxies:
            _bulk(Peer, ["id", "base_url", "key_id", "public_key", "inbox_url", "currency", "added_at", "refusal",
                         "bank_iban", "bank_bic", "bank_account_name"],
                  ((p, f"https://peer{p}.example", f"kid{p}", "x", f"https://peer{p}.example/federation/inbox", "EUR", stamp, "",
                    "", "", "") for p in range(1, peers + 1)), postgres)  # fmt: skip
            next_account = first_account + 2 * everyone
            _bulk(Account, ["id", "code", "kind", "balance"],
                  ((next_account + 2 * (p - 1) + i, code, kind, 0) for p in range(1, peers + 1)
                   for i, (code, kind) in enumerate(((payable_code(p), "payable"), (receivable_code(p), "external")))),
                  postgres)  # fmt: skip
            _bulk(RemoteThing, ["id", "thing", "peer", "remote_id", "owner_name", "page_url"],
                  ((t + 1, t + 1, proxy_peer(owner_of(t)), t + 1, f"o{owner_of(t)}", "") for t in range(things) if is_remote(t, remote_share)),
                  postgres)  # fmt: skip
            _bulk(Outbox, ["id", "flattr", "peer", "status", "attempts", "next_attempt_at", "last_error", "created_at", "delivered_at"],
                  ((fid, fid, p, "delivered", 1, stamp, "", stamp, stamp) for fid, p in remote_flattrs), postgres)
            flattred = {owner_of(t) for t in range(things) if is_remote(t, remote_share)}
            _bulk(PeerGave, ["period", "user", "gave", "reason", "answered_at"],
                  ((PERIOD, u, proxy_gave(u), "" if proxy_gave(u) else "the owner did not flattr anything this month", stamp)
                   for u in sorted(flattred)), postgres)  # fmt: skip
        Period.insert(name=PERIOD).on_conflict_ignore().execute()
        _fix_sequences(postgres)
    if postgres:
        database.execute_sql("ANALYZE")
    return {
        "people": everyone,
        "givers": people,
        "things": things,
        "flattrs": people * per_person,
        "counted": counted,
        "paying_givers": paying,
        "spend": spend,
        "deposited": deposited,
        "remote_flattrs": len(remote_flattrs),
        "peers": peers if proxies else 0,
    }


# -- the close, in a child process ---------------------------------------------------------------


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process's address space, in KiB.

    Not ru_maxrss: on Linux that survives exec, so a child started by a big
    parent would report the parent's size at the fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _cpu() -> float:
    """This process's CPU time (user + system): less at the mercy of a busy machine than the clock."""
    t = os.times()
    return t.user + t.system


def _server_cpu(database) -> float | None:
    """CPU time (user + system) of this connection's PostgreSQL backend so
    far, read from /proc when the server runs on this machine; else None.
    On PostgreSQL the close's work is done there, not in the close process."""
    if not dbmod.is_postgres():
        return None
    pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def close_child(url: str, batch_size: int, fee_percent: int) -> None:
    """Runs in a fresh interpreter: bind, close the month, then make the
    statements owed to peers (as `flattr-node close-month` does: nothing
    when no flattr is remote), report as JSON."""
    from flattr_node import closing
    from flattr_node.federation.settlement import make_statements

    cfg = validate(Config(database=url, scheduler=False, close_batch_size=batch_size, fee_percent=fee_percent, base_url=HOME_URL))
    database = dbmod.bind(url)
    database.connect()
    rss_before = _status_kb("VmRSS")
    cpu_before, server_before = _cpu(), _server_cpu(database)
    started = time.perf_counter()
    period = closing.close_period(cfg, PERIOD, CLOSE_AT)
    seconds = time.perf_counter() - started
    cpu = _cpu() - cpu_before
    server_after = _server_cpu(database)
    started = time.perf_counter()
    statements = len(make_statements(cfg, PERIOD))
    statements_seconds = time.perf_counter() - started
    statements_cpu = _cpu() - cpu_before - cpu
    database.close()
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": cpu,
        "server_cpu_seconds": None if server_before is None or server_after is None else server_after - server_before,
        "statements": statements,
        "statements_seconds": statements_seconds,
        "statements_cpu_seconds": statements_cpu,
        "rss_before_kb": rss_before,
        "peak_rss_kb": _status_kb("VmHWM"),
        "status": period.status,
    }))


def run_close(url: str, batch_size: int, fee_percent: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--close-child", url, "--batch-size", str(batch_size), "--fee-percent", str(fee_percent)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"FAIL: the close exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- after the close: the ledger and the sums -------------------------------------------------------


def rows_written() -> dict:
    """What the close wrote, counted in the closed database."""
    db = dbmod.database
    close_txns = f"SELECT id FROM txn WHERE kind = 'close' AND memo = {db.param}"

    def one(sql, *params):
        return db.execute_sql(sql, params).fetchone()[0]

    return {
        "flattr_updates": Flattr.select().where(Flattr.period == PERIOD).count(),
        "close_plan": ClosePlan.select().where(ClosePlan.period == PERIOD).count(),
        "txn": Txn.select().where((Txn.kind == "close") & (Txn.memo == PERIOD)).count(),
        "posting": one(f"SELECT COUNT(*) FROM posting WHERE txn_id IN ({close_txns})", PERIOD),
        "account_updates": one(f"SELECT COUNT(DISTINCT account_id) FROM posting WHERE txn_id IN ({close_txns})", PERIOD),
    }


def verify(expected: dict, fee_percent: int) -> dict:
    """Check the ledger and the close's sums; `problems` lists what is wrong."""
    db = dbmod.database
    p = db.param
    started = time.perf_counter()
    problems = list(ledger.check_ledger().problems)
    by_kind = {
        kind: int(total)  # PostgreSQL sums to Decimal
        for kind, total in db.execute_sql(
            "SELECT a.kind, COALESCE(SUM(x.amount), 0) FROM posting x JOIN txn t ON t.id = x.txn_id "
            f"JOIN account a ON a.id = x.account_id WHERE t.kind = 'close' AND t.memo = {p} GROUP BY a.kind",
            (PERIOD,),
        ).fetchall()
    }
    spent = -by_kind.get("funds", 0)
    distributed = by_kind.get("revenue", 0)
    fees = by_kind.get("fees", 0)
    planned = ClosePlan.select(ClosePlan.spend).where(ClosePlan.period == PERIOD).tuples()
    planned = int(sum(s for (s,) in planned))
    period = Period.get_or_none(Period.name == PERIOD)
    if period is None or period.status != "closed":
        problems.append(f"period {PERIOD} is not closed")
    else:
        if (period.distributed, period.fees) != (distributed, fees):
            problems.append(
                f"period says distributed {period.distributed} + fees {period.fees}, "
                f"the ledger says {distributed} + {fees}"
            )
        if (period.flattrs, period.counted, period.givers) != (expected["flattrs"], expected["counted"], expected["paying_givers"]):
            problems.append(
                f"period counts flattrs/counted/givers {period.flattrs}/{period.counted}/{period.givers}, "
                f"expected {expected['flattrs']}/{expected['counted']}/{expected['paying_givers']}"
            )
    if distributed + fees != spent:
        problems.append(f"distributed {distributed} + fees {fees} = {distributed + fees} != givers' spends {spent}")
    if spent != planned or spent != expected["spend"]:
        problems.append(f"givers spent {spent}; the plan says {planned}; min(budget, funds) says {expected['spend']}")
    if fee_percent == 0 and fees != 0:
        problems.append(f"fees {fees} with fee_percent 0")
    unpaid = ClosePlan.select().where((ClosePlan.period == PERIOD) & (ClosePlan.spend > 0) & ClosePlan.txn.is_null()).count()
    if unpaid:
        problems.append(f"{unpaid} planned givers were not paid")
    if expected.get("remote_flattrs"):
        # What the peers' owners got, less the fee, is owed to the peers: on
        # their payable accounts and in one statement per peer, nothing left
        # on the proxies' revenue.
        owed = int(db.execute_sql(
            "SELECT COALESCE(SUM(f.share - f.fee), 0) FROM flattr f JOIN remote_thing r ON r.thing_id = f.thing_id "
            f"WHERE f.period = {p} AND f.status = 'counted'", (PERIOD,)).fetchone()[0])  # fmt: skip
        payable = int(db.execute_sql("SELECT COALESCE(SUM(balance), 0) FROM account WHERE kind = 'payable'").fetchone()[0])
        stated = int(db.execute_sql(f"SELECT COALESCE(SUM(total), 0) FROM settlement WHERE period = {p} AND direction = 'payable'", (PERIOD,)).fetchone()[0])
        left = int(db.execute_sql(
            "SELECT COALESCE(SUM(balance), 0) FROM account WHERE kind = 'revenue' "
            "AND user_id IN (SELECT t.owner_id FROM thing t JOIN remote_thing r ON r.thing_id = t.id)").fetchone()[0])  # fmt: skip
        if not (owed == payable == stated) or owed <= 0 or left:
            problems.append(f"remote shares less fees {owed}, peers' payable {payable}, statements {stated}, left on proxies {left}")
    return {
        "ok": not problems,
        "problems": problems,
        "spent": spent,
        "distributed": distributed,
        "fees": fees,
        "seconds": time.perf_counter() - started,
    }


# -- the baseline ------------------------------------------------------------------------------------


def baseline(plan: list[int], rest: int, batches: int) -> float:
    """Plain stdlib sqlite3: write the plan's rows in as many transactions
    (`plan`: the rows of each), then `rest` rows spread over `batches`
    transactions (the apply), into a fresh WAL file with synchronous=FULL.
    Returns (seconds, CPU seconds)."""
    tmp = tempfile.mkdtemp(prefix="flattr-baseline-")
    try:
        conn = sqlite3.connect(os.path.join(tmp, "baseline.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, a INTEGER NOT NULL, b INTEGER NOT NULL, c INTEGER NOT NULL)")
        sizes = plan + [rest // batches + (i < rest % batches) for i in range(batches)]
        started, cpu_before = time.perf_counter(), _cpu()
        n = 0
        for size in sizes:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO row (id, a, b, c) VALUES (?, ?, ?, ?)", ((n + i, i, i * 7, i % 1000) for i in range(size)))
            conn.execute("COMMIT")
            n += size
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu_before
        conn.close()
        return seconds, cpu
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hand_loop(path: str) -> tuple[float, float]:
    """The obvious program a user would write over raw sqlite3, on a copy of
    the month (`path`): read the month's flattrs joined to their things in
    (giver, time, id) order, split each giver's min(budget, funds) with the
    extra cents to the earliest, insert one transaction per giver with one
    posting per flattr and one for the giver, update the balances; one
    transaction, no R8, no fees, no statuses. Returns (seconds, CPU seconds)."""
    from collections import defaultdict
    from itertools import groupby

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    started, cpu_before = time.perf_counter(), _cpu()
    conn.execute("BEGIN IMMEDIATE")
    funds = {u: (min(budget, balance), a) for u, budget, balance, a in conn.execute(
        "SELECT u.id, u.monthly_budget, a.balance, a.id FROM \"user\" u JOIN account a ON a.user_id = u.id AND a.kind = 'funds'")}
    revenue = dict(conn.execute("SELECT user_id, id FROM account WHERE kind = 'revenue'"))
    month = conn.execute(
        "SELECT f.giver_id, t.owner_id FROM flattr f JOIN thing t ON t.id = f.thing_id WHERE f.period = ? "
        "ORDER BY f.giver_id, f.created_at, f.id", (PERIOD,))
    postings, deltas = [], defaultdict(int)
    for giver, flattrs in groupby(month, key=lambda row: row[0]):
        owners = [owner for _, owner in flattrs]
        spend, account = funds[giver]
        if spend <= 0:
            continue
        txn = conn.execute("INSERT INTO txn (key, kind, memo, created_at) VALUES (?, 'hand', ?, ?)",
                           (f"hand:{giver}", PERIOD, CLOSE_AT.isoformat(" "))).lastrowid
        postings.append((txn, account, -spend))
        deltas[account] -= spend
        base, extra = divmod(spend, len(owners))
        for i, owner in enumerate(owners):
            share = base + (i < extra)
            if share:
                postings.append((txn, revenue[owner], share))
                deltas[revenue[owner]] += share
    conn.executemany("INSERT INTO posting (txn_id, account_id, amount) VALUES (?, ?, ?)", postings)
    conn.executemany("UPDATE account SET balance = balance + ? WHERE id = ?", [(d, a) for a, d in deltas.items()])
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu_before
    conn.close()
    return seconds, cpu


def copy_sqlite(path: Path) -> str:
    """A copy of the month (SQLite's backup API) for the hand loop."""
    copy = str(path) + ".hand.db"
    src, dst = sqlite3.connect(str(path)), sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    return copy


# -- the run ------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000, help="people who give (default 100000)")
    parser.add_argument("--things", type=int, default=20_000, help="things (default 20000)")
    parser.add_argument("--flattrs-per-person", type=int, default=10, help="distinct things each person flattrs (default 10)")
    parser.add_argument("--batch-size", type=int, default=None, help="close_batch_size (default: the config default)")
    parser.add_argument("--fee-percent", type=int, default=0, help="the node's fee (default 0, the config default)")
    parser.add_argument("--database", default=None, help="sqlite:///new-file.db or a postgresql:// URL (a fresh schema is made and dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the database after the run")
    parser.add_argument("--small", action="store_true", help="a quick sanity run: 1000 people, 200 things, 10,000 flattrs")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--remote-share", type=float, default=0.0,
                        help="build the month with this share of its things (so of its flattrs) on peer nodes, and compare its close "
                             "with the same month all local, built and closed in the same run (e.g. 0.2)")
    parser.add_argument("--peers", type=int, default=4, help="peer nodes hosting the remote things (default 4)")
    parser.add_argument("--rounds", type=int, default=1, help="with --remote-share: months built and closed in turn (default 1)")
    parser.add_argument("--close-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small:
        args.people, args.things = 1000, 200
    if args.batch_size is None:
        args.batch_size = Config().close_batch_size
    return args


def measure(args, remote_share: float, say) -> dict:
    """Build one month (with `remote_share` of its things on peers), close it
    in a child, check it, time the baselines; the figures as a dict."""
    load = os.getloadavg()
    target = Target(args.database, args.keep)
    try:
        database = dbmod.bind(target.url)
        database.connect()
        started = time.perf_counter()
        schema.migrate()
        expected = build(args.people, args.things, args.flattrs_per_person, not target.is_sqlite, remote_share, args.peers)
        build_seconds = time.perf_counter() - started
        database.close()
        say(f"built {expected['flattrs']:,} flattrs by {expected['givers']:,} people on {expected['things']:,} things "
            f"({expected['remote_flattrs']:,} of the flattrs on {expected['peers']} peers) in {build_seconds:.1f} s ({target.where()})")

        hand_copy = copy_sqlite(target.path) if target.is_sqlite else None
        close = run_close(target.url, args.batch_size, args.fee_percent)
        say(f"close (batch size {args.batch_size}): {close['seconds']:.2f} s ({close['cpu_seconds']:.1f} s CPU in this process), peak RSS {close['peak_rss_kb'] / 1024:.0f} MB "
            f"(RSS {close['rss_before_kb'] / 1024:.0f} MB before the close); statements to peers: {close['statements']} in {close['statements_seconds']:.2f} s")
        database.connect()
        written = rows_written()
        check = verify(expected, args.fee_percent)
        database.close()

        paying = written["txn"]
        batches = max(1, -(-paying // args.batch_size))
        total_rows = sum(written.values())
        # SQLite's plan commits its rows, then the flattrs' shares; PostgreSQL's, both at once.
        planned = written["close_plan"] + written["flattr_updates"]
        plan = [written["close_plan"], written["flattr_updates"]] if target.is_sqlite else [planned]
        base, base_cpu = baseline(plan, total_rows - planned, batches)
        ratio = close["seconds"] / base
        hand = hand_cpu = None
        if hand_copy:
            hand, hand_cpu = hand_loop(hand_copy)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(hand_copy + suffix)
            say(f"hand loop (raw sqlite3, one transaction, no R8/fees/statuses): {hand:.2f} s ({hand_cpu:.1f} s CPU); "
                f"close / hand loop {close['seconds'] / hand:.2f}")
        cpu_ratio = close["cpu_seconds"] / base_cpu if base_cpu else float("nan")
        load_after = os.getloadavg()
        say(f"rows written: {total_rows:,} ({', '.join(f'{k} {v:,}' for k, v in written.items())}) in {len(plan) + batches} transactions")
        if target.is_sqlite:
            say(f"baseline (plain sqlite3, same rows and transactions): {base:.2f} s ({base_cpu:.1f} s CPU); "
                f"ratio {ratio:.2f} (CPU time ratio {cpu_ratio:.2f})")
        else:  # the server does the work: the client's CPU time says nothing
            say(f"baseline (plain sqlite3, same rows and transactions): {base:.2f} s; ratio {ratio:.2f}")
        say(f"sums: givers spent {check['spent']:,} = distributed {check['distributed']:,} + fees {check['fees']:,}; "
            f"expected spend {expected['spend']:,}; ledger checked in {check['seconds']:.1f} s")
        say(f"load average before {load[0]:.2f}, after {load_after[0]:.2f}")
        result = {
            "ok": check["ok"],
            "problems": check["problems"],
            "database": "sqlite" if target.is_sqlite else "postgresql",
            "people": expected["people"],
            "givers": expected["givers"],
            "things": expected["things"],
            "flattrs": expected["flattrs"],
            "counted": expected["counted"],
            "batch_size": args.batch_size,
            "fee_percent": args.fee_percent,
            "build_seconds": round(build_seconds, 2),
            "close_seconds": round(close["seconds"], 3),
            "peak_rss_mb": round(close["peak_rss_kb"] / 1024, 1),
            "rss_before_close_mb": round(close["rss_before_kb"] / 1024, 1),
            "rows_written": written,
            "rows_total": total_rows,
            "transactions": len(plan) + batches,
            "close_cpu_seconds": round(close["cpu_seconds"], 2),
            # PostgreSQL on this machine: the CPU time of the server process that ran the close.
            "server_cpu_seconds": None if close["server_cpu_seconds"] is None else round(close["server_cpu_seconds"], 2),
            "baseline_seconds": round(base, 3),
            "baseline_cpu_seconds": round(base_cpu, 2),
            "ratio": round(ratio, 2),
            "hand_loop_seconds": round(hand, 3) if hand else None,
            "hand_loop_cpu_seconds": round(hand_cpu, 2) if hand else None,
            "hand_loop_ratio": round(close["seconds"] / hand, 2) if hand else None,
            "cpu_ratio": round(cpu_ratio, 2),
            "spent": check["spent"],
            "distributed": check["distributed"],
            "fees": check["fees"],
            "expected_spend": expected["spend"],
            "load": [round(load[0], 2), round(load_after[0], 2)],
            "statements": close["statements"],
            "statements_seconds": round(close["statements_seconds"], 3),
            "statements_cpu_seconds": round(close["statements_cpu_seconds"], 2),
            "remote_flattrs": expected["remote_flattrs"],
            "peers": expected["peers"],
        }
        return result
    finally:
        if not dbmod.database.is_closed():
            dbmod.database.close()
        target.drop()
        if args.keep:
            say(f"kept {target.where()}")


def prefixed(say, prefix: str):
    return lambda *a: say(prefix, *a)


def compare_remote(args, say) -> dict:
    """The issue's federation figure: the month with `--remote-share` of its
    flattrs on peers against the same month all local, built and closed in
    the same run, `--rounds` times in turn; the median ratio of the close
    (with the statements, as `close-month` makes them) is reported with the
    remote month's figures."""
    rounds = []
    for i in range(args.rounds):
        local = measure(args, 0.0, prefixed(say, f"round {i + 1}, all local:"))
        remote = measure(args, args.remote_share, prefixed(say, f"round {i + 1}, {args.remote_share:.0%} remote:"))
        whole = [r["close_seconds"] + r["statements_seconds"] for r in (local, remote)]
        cpu = [r["close_cpu_seconds"] + r["statements_cpu_seconds"] for r in (local, remote)]
        on_sqlite = local["database"] == "sqlite"  # on PostgreSQL the server does the work: the child's CPU says nothing
        rounds.append((local, remote, whole[1] / whole[0], cpu[1] / cpu[0] if on_sqlite and cpu[0] else None))
        say(f"round {i + 1}: close + statements {whole[1]:.2f} s against {whole[0]:.2f} s all local: ratio {rounds[-1][2]:.2f}"
            + (f" (CPU {cpu[1]:.1f} s against {cpu[0]:.1f} s: {rounds[-1][3]:.2f})" if rounds[-1][3] else ""))
    local, remote, _, _ = rounds[-1]
    result = dict(remote)
    result.update(
        ok=all(lo["ok"] and re["ok"] for lo, re, _, _ in rounds),
        problems=[p for lo, re, _, _ in rounds for p in lo["problems"] + re["problems"]],
        remote_share=round(remote["remote_flattrs"] / remote["flattrs"], 3),
        local_close_seconds=round(statistics.median(lo["close_seconds"] + lo["statements_seconds"] for lo, *_ in rounds), 3),
        remote_close_seconds=round(statistics.median(re["close_seconds"] + re["statements_seconds"] for _, re, *_ in rounds), 3),
        remote_ratio=round(statistics.median(r for *_, r, _ in rounds), 2),
        remote_cpu_ratio=round(statistics.median(c for *_, c in rounds), 2) if rounds[0][3] else None,
        remote_rounds=[[round(r, 2), round(c, 2) if c else None] for *_, r, c in rounds],
        remote_target=REMOTE_TARGET,
    )
    cpu = f", CPU {result['remote_cpu_ratio']:.2f}" if result["remote_cpu_ratio"] else ""
    say(f"{result['remote_share']:.0%} remote flattrs: close ratio {result['remote_ratio']:.2f} (median of {args.rounds}{cpu}), "
        f"target <= {REMOTE_TARGET}")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.close_child:
        close_child(args.close_child, args.batch_size, args.fee_percent)
        return 0
    say = (lambda *a: None) if args.json else print
    result = compare_remote(args, say) if args.remote_share else measure(args, 0.0, say)
    if args.json:
        print(json.dumps(result))
    if not result["ok"]:
        print("FAIL: the ledger is wrong after the close:", file=sys.stderr)
        for problem in result["problems"]:
            print("  " + problem, file=sys.stderr)
        return 1
    if result["database"] == "sqlite" and not args.small and not args.remote_share:
        misses = [
            name for name, value, limit in (
                ("time", result["close_seconds"], TARGET_SECONDS),
                ("memory", result["peak_rss_mb"], TARGET_MB),
                ("ratio", result["ratio"], TARGET_RATIO),
            ) if value >= limit
        ]
        say(f"targets (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB, ratio < {TARGET_RATIO:.0f}): "
            + ("met" if not misses else "MISSED: " + ", ".join(misses)))
    say("ledger OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
