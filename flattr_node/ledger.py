"""The double-entry ledger (SPEC R1, R2, R12).

Append-only: a correction is a new transaction. Every transaction has a unique
idempotency key, its postings sum to zero, and the cached balance of each
account moves in the same database transaction as its postings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from peewee import JOIN, fn

from .db import consistent_read, database, execute, insert_rows, is_postgres
from .models import Account, Deposit, Flattr, Payout, Period, Posting, Txn, User, utcnow

NODE_ACCOUNTS = ("external", "fees", "payouts")
USER_KINDS = ("funds", "revenue")


def user_code(user_id: int, kind: str) -> str:
    """The code of a person's account of `kind` (funds or revenue)."""
    return f"user:{user_id}:{kind}"


def node_account(kind: str) -> Account:
    return Account.get(Account.code == f"node:{kind}")


def user_account(user_id: int, kind: str) -> Account:
    return Account.get(Account.code == user_code(user_id, kind))


def balance(user_id: int, kind: str) -> int:
    row = execute("SELECT balance FROM account WHERE code = ?", (user_code(user_id, kind),)).fetchone()
    return row[0] if row else 0


def ensure_node_accounts() -> None:
    for kind in NODE_ACCOUNTS:
        Account.insert(code=f"node:{kind}", kind=kind).on_conflict_ignore().execute()


def open_user_accounts(user: User) -> None:
    for kind in USER_KINDS:
        Account.insert(code=user_code(user.id, kind), kind=kind, user=user).on_conflict_ignore().execute()


def post(key: str, kind: str, moves: list[tuple[int, int]], memo: str = "", now=None) -> tuple[Txn, bool]:
    """Record one transaction; return (txn, created).

    `moves` is a list of (account_id, amount); they must sum to zero. A key
    already used returns the first transaction and moves nothing: that is
    what makes retries safe. Call it inside a write transaction.
    """
    existing = Txn.get_or_none(Txn.key == key)
    if existing is not None:
        return existing, False
    amounts: dict[int, int] = defaultdict(int)
    for account_id, amount in moves:
        amounts[account_id] += amount
    amounts = {a: v for a, v in amounts.items() if v != 0}
    if sum(amounts.values()) != 0:
        raise ValueError(f"postings of {key} do not sum to zero")
    if not amounts:
        raise ValueError(f"transaction {key} moves nothing")
    txn = Txn.create(key=key, kind=kind, memo=memo, created_at=now or utcnow())
    Posting.insert_many(
        [(txn.id, account_id, amount) for account_id, amount in amounts.items()],
        fields=[Posting.txn, Posting.account, Posting.amount],
    ).execute()
    for account_id, amount in amounts.items():
        Account.update(balance=Account.balance + amount).where(Account.id == account_id).execute()
    return txn, True


def post_many(items: list[tuple[str, str, list[tuple[int, int]], str]], now=None) -> dict[str, int]:
    """Record many transactions at once, each as `post` would: (key, kind,
    moves, memo) each, moves summing to zero; a key already used moves
    nothing again. Returns {key: txn id} of the transactions made now.

    For bulk work (a bank statement's deposits): a few statements for the
    lot instead of a handful per transaction. Call it inside a write
    transaction, with the accounts locked (db.lock_accounts) on PostgreSQL.
    """
    if not items:
        return {}
    keys = [key for key, *_ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("post_many: a key appears twice")
    used: set[str] = set()
    for start in range(0, len(keys), 500):
        used.update(k for (k,) in Txn.select(Txn.key).where(Txn.key.in_(keys[start : start + 500])).tuples())
    todo = []
    totals: dict[int, int] = defaultdict(int)
    for key, kind, moves, memo in items:
        if key in used:
            continue
        amounts: dict[int, int] = defaultdict(int)
        for account_id, amount in moves:
            amounts[account_id] += amount
        amounts = {a: v for a, v in amounts.items() if v != 0}
        if sum(amounts.values()) != 0:
            raise ValueError(f"postings of {key} do not sum to zero")
        if not amounts:
            raise ValueError(f"transaction {key} moves nothing")
        todo.append((key, kind, memo, amounts))
        for account_id, amount in amounts.items():
            totals[account_id] += amount
    if not todo:
        return {}
    at = now or utcnow()
    ids: dict[str, int] = {}
    when = Txn.created_at.db_value(at)
    for start in range(0, len(todo), 500):
        part = todo[start : start + 500]
        insert_rows(Txn, [Txn.key, Txn.kind, Txn.memo, Txn.created_at], [(k, kind, memo, when) for k, kind, memo, _ in part])
        marks = ", ".join([database.param] * len(part))
        ids.update(database.execute_sql(f"SELECT key, id FROM txn WHERE key IN ({marks})", [k for k, *_ in part]).fetchall())
        insert_rows(
            Posting,
            [Posting.txn, Posting.account, Posting.amount],
            [(ids[k], account_id, amount) for k, _, _, amounts in part for account_id, amount in amounts.items()],
        )
    cursor = database.cursor()
    cursor.executemany(
        f"UPDATE account SET balance = balance + {database.param} WHERE id = {database.param}",
        [(amount, account_id) for account_id, amount in sorted(totals.items()) if amount],
    )
    return ids


def _settlements() -> tuple[int, int]:
    """(confirmed received, paid out) statement totals between nodes."""
    from .federation.models import Settlement

    def total(direction: str, status: str) -> int:
        return Settlement.select(fn.COALESCE(fn.SUM(Settlement.total), 0)).where(
            (Settlement.direction == direction) & (Settlement.status == status)
        ).scalar()

    return total("receivable", "confirmed"), total("payable", "paid")


@dataclass
class CheckResult:
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(limit: int = 50) -> CheckResult:
    """Verify R12 and the bookkeeping around it; return every problem found."""
    problems: list[str] = []

    def add(rows, fmt):
        for row in rows[:limit]:
            problems.append(fmt(*row))

    with consistent_read():  # one snapshot, also on PostgreSQL
        # Every transaction sums to zero and moves something.
        rows = list(
            Txn.select(Txn.key, fn.COALESCE(fn.SUM(Posting.amount), 0), fn.COUNT(Posting.id))
            .join(Posting, JOIN.LEFT_OUTER)
            .group_by(Txn.id, Txn.key)
            .having((fn.COALESCE(fn.SUM(Posting.amount), 0) != 0) | (fn.COUNT(Posting.id) == 0))
            .tuples()
        )
        add(rows, lambda k, s, c: f"transaction {k} sums to {s} over {c} postings")

        # Every posting's transaction and account, and every paid plan row's
        # transaction, exist. PostgreSQL checks its foreign keys on every
        # write; SQLite's month close checks these once per batch instead
        # (services/closing.py), so they are read back here.
        if not is_postgres():
            for table in ("posting", "close_plan"):
                rows = execute(f"PRAGMA foreign_key_check({table})").fetchall()
                add(rows, lambda t, rowid, parent, _fk: f"{t} row {rowid} refers to a missing {parent} row")

        # Every cached balance equals the sum of its postings.
        sums = (
            Posting.select(Posting.account, fn.SUM(Posting.amount).alias("total"))
            .group_by(Posting.account)
            .alias("sums")
        )
        rows = list(
            Account.select(Account.code, Account.balance, fn.COALESCE(sums.c.total, 0))
            .join(sums, JOIN.LEFT_OUTER, on=(sums.c.account_id == Account.id))
            .where(Account.balance != fn.COALESCE(sums.c.total, 0))
            .tuples()
        )
        add(rows, lambda c, b, s: f"account {c} stores {b} but its postings sum to {s}")

        # No account but the outside world is negative.
        rows = list(Account.select(Account.code, Account.balance).where((Account.kind != "external") & (Account.balance < 0)).tuples())
        add(rows, lambda c, b: f"account {c} is negative: {b}")

        # Money enters only by confirmed deposits and leaves only by paid payouts.
        deposited = Deposit.select(fn.COALESCE(fn.SUM(Deposit.amount), 0)).where(Deposit.status == "confirmed").scalar()
        paid = Payout.select(fn.COALESCE(fn.SUM(Payout.amount), 0)).where(Payout.status == "paid").scalar()
        external = Account.select(Account.balance).where(Account.code == "node:external").scalar() or 0
        # Federation: statements paid to peers leave, statements confirmed arrive (SPEC §6).
        settled_in, settled_out = _settlements()
        if -external != deposited - paid + settled_in - settled_out:
            problems.append(
                f"money created or destroyed: deposits {deposited} - payouts {paid} + settlements received {settled_in} "
                f"- settlements paid {settled_out} = {deposited - paid + settled_in - settled_out}, "
                f"but the outside world gave {-external}"
            )
        held = Account.select(Account.balance).where(Account.code == "node:payouts").scalar() or 0
        requested = Payout.select(fn.COALESCE(fn.SUM(Payout.amount), 0)).where(Payout.status == "requested").scalar()
        if held != requested:
            problems.append(f"pending payouts hold {held} but requested payouts add up to {requested}")

        # A confirmed deposit has exactly its transaction; a pending one has none.
        rows = list(
            Deposit.select(Deposit.id, Deposit.status)
            .where(((Deposit.status == "confirmed") & Deposit.txn.is_null()) | ((Deposit.status != "confirmed") & Deposit.txn.is_null(False)))
            .tuples()
        )
        add(rows, lambda i, s: f"deposit {i} is {s} but its transaction says otherwise")

        # A closed period paid every planned spend, and its shares add up to it (R9, R10).
        rows = database.execute_sql(
            "SELECT p.period, p.giver_id, p.spend, COALESCE(SUM(f.share), 0), MAX(CASE WHEN p.txn_id IS NULL THEN 1 ELSE 0 END) "
            "FROM close_plan p JOIN period pe ON pe.name = p.period "
            "LEFT JOIN flattr f ON f.period = p.period AND f.giver_id = p.giver_id AND f.status = 'counted' "
            "WHERE pe.status = 'closed' GROUP BY p.period, p.giver_id, p.spend "
            "HAVING COALESCE(SUM(f.share), 0) <> p.spend OR MAX(CASE WHEN p.txn_id IS NULL THEN 1 ELSE 0 END) = 1 "
            "AND p.spend > 0"
        ).fetchall()
        add(rows, lambda p, g, spend, shares, unpaid: f"period {p}, giver {g}: planned {spend}, shares add up to {shares}"
            + (", never paid" if unpaid else ""))
        rows = list(
            Period.select(Period.name).where((Period.status == "closed") & (Period.name.in_(
                Flattr.select(Flattr.period).where(Flattr.status == "pending")
            ))).tuples()
        )
        add(rows, lambda p: f"period {p} is closed but has flattrs still pending")

        total = Account.select(fn.COALESCE(fn.SUM(Account.balance), 0)).scalar()
        if total != 0:
            problems.append(f"the balances of all accounts sum to {total}, not 0")
    return CheckResult(problems)
