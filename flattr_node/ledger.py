"""The double-entry ledger (SPEC R1, R2, R12).

Append-only: a correction is a new transaction. Every transaction has a unique
idempotency key, its postings sum to zero, and the cached balance of each
account moves in the same database transaction as its postings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from peewee import JOIN, fn

from .db import consistent_read, database, dialect, execute
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


# The staging tables of `post_many`, temporary (one per connection, never
# in the node's file or schema). STAGED_TXNS holds, after a call and until
# the next one in the same transaction, each new transaction's caller
# reference, key and id.
STAGED_TXNS = "ledger_stage_txn"
_STAGED_MOVES = "ledger_stage_move"


def _stage_tables() -> None:
    execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED_TXNS} "
        "(ref BIGINT PRIMARY KEY, key VARCHAR(200) NOT NULL, txn_id BIGINT, memo TEXT)"
    )
    execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGED_MOVES} (ref BIGINT NOT NULL, account_id BIGINT, amount BIGINT NOT NULL)")
    execute(f"DELETE FROM {STAGED_TXNS}")
    execute(f"DELETE FROM {_STAGED_MOVES}")


def post_many(kind: str, memo: str, txns_sql: str, moves_sql: str, params: tuple = (), now=None) -> int:
    """Record many transactions at once, set-based; return how many were new.

    `txns_sql` is a SELECT of (ref, key): one row per transaction, `ref` an
    integer of the caller's that names it here (a giver's id, say), `key`
    its idempotency key. `moves_sql` is a SELECT of (ref, account_id,
    amount); several moves of a transaction to one account are summed, and
    a sum of 0 is left out. Both take `params`, in that order, each.

    As `post` does for one: a key already used moves nothing again; each
    transaction's moves must sum to zero and move something, and must name
    accounts that exist (an account_id of NULL: a missing account), or
    nothing is written and ValueError says which; cached balances move in
    the same database transaction, their rows locked in id order first
    (db.lock_accounts). Call it inside a write transaction. The new
    transactions' ids are in STAGED_TXNS (ref, key, txn_id) afterwards.
    """
    _stage_tables()
    execute(f"INSERT INTO {STAGED_TXNS} (ref, key) {txns_sql}", params)
    execute(
        f"INSERT INTO {_STAGED_MOVES} (ref, account_id, amount) SELECT m.ref, m.account_id, m.amount FROM ({moves_sql}) m",
        params,
    )
    return _post_staged(kind, memo, now)


def post_values(kind: str, items: list[tuple[str, list[tuple[int, int]], str]], now=None) -> dict[str, int]:
    """`post_many` for transactions given as values: (key, moves, memo) each,
    moves as (account_id, amount). Returns {key: txn id} of those made now
    (a key already used moves nothing again). For a bank statement's
    hundreds of deposits: a few statements for the lot."""
    keys = [key for key, _, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("post_values: a key appears twice")
    _stage_tables()
    cursor = database.cursor()
    cursor.executemany(
        f"INSERT INTO {STAGED_TXNS} (ref, key, memo) VALUES (?, ?, ?)".replace("?", database.param),
        [(ref, key, memo) for ref, (key, _, memo) in enumerate(items)],
    )
    cursor.executemany(
        f"INSERT INTO {_STAGED_MOVES} (ref, account_id, amount) VALUES (?, ?, ?)".replace("?", database.param),
        [(ref, account_id, amount) for ref, (_, moves, _) in enumerate(items) for account_id, amount in moves],
    )
    _post_staged(kind, "", now)
    return dict(execute(f"SELECT key, txn_id FROM {STAGED_TXNS}").fetchall())


def _post_staged(kind: str, memo: str, now) -> int:
    """Write the staged transactions whose keys are new: the checks, the
    transactions, their postings and the balance cache (see post_many)."""
    execute(f"DELETE FROM {STAGED_TXNS} WHERE EXISTS (SELECT 1 FROM txn t WHERE t.key = {STAGED_TXNS}.key)")
    execute(f"DELETE FROM {_STAGED_MOVES} WHERE ref NOT IN (SELECT ref FROM {STAGED_TXNS})")
    for table in (STAGED_TXNS, _STAGED_MOVES):
        dialect().analyze(table)
    missing = execute(f"SELECT COUNT(*) FROM {_STAGED_MOVES} WHERE account_id IS NULL").fetchone()[0]
    if missing:
        raise RuntimeError(f"{kind} transactions would post to {missing} missing accounts")
    bad = execute(
        f"SELECT t.key, COALESCE(SUM(m.amount), 0), COUNT(m.ref) FROM {STAGED_TXNS} t LEFT JOIN {_STAGED_MOVES} m ON m.ref = t.ref "
        "GROUP BY t.ref, t.key HAVING COALESCE(SUM(m.amount), 0) <> 0 OR COUNT(m.ref) = 0 "
        "OR SUM(CASE WHEN m.amount <> 0 THEN 1 ELSE 0 END) = 0"
    ).fetchone()
    if bad:
        raise ValueError(f"postings of {bad[0]} do not sum to zero or move nothing (sum {bad[1]} over {bad[2]} moves)")
    made = execute(
        f"INSERT INTO txn (key, kind, memo, created_at) SELECT key, ?, COALESCE(memo, ?), ? FROM {STAGED_TXNS} ORDER BY ref",
        (kind, memo, now or utcnow()),
    ).rowcount
    execute(f"UPDATE {STAGED_TXNS} SET txn_id = (SELECT t.id FROM txn t WHERE t.key = {STAGED_TXNS}.key)")
    execute(
        f"INSERT INTO posting (txn_id, account_id, amount) SELECT t.txn_id, m.account_id, SUM(m.amount) "
        f"FROM {_STAGED_MOVES} m JOIN {STAGED_TXNS} t ON t.ref = m.ref "
        "GROUP BY t.txn_id, m.account_id HAVING SUM(m.amount) <> 0"
    )
    deltas = f"SELECT account_id, SUM(amount) AS delta FROM {_STAGED_MOVES} GROUP BY account_id"
    lock = dialect().lock_clause()
    if lock:
        execute(f"SELECT id FROM account WHERE id IN (SELECT account_id FROM {_STAGED_MOVES}) ORDER BY id{lock}")
    execute(f"UPDATE account SET balance = account.balance + d.delta FROM ({deltas}) d WHERE account.id = d.account_id AND d.delta <> 0")
    return made


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


def _check_transactions_balance():
    """Every transaction sums to zero and moves something (R12)."""
    rows = (
        Txn.select(Txn.key, fn.COALESCE(fn.SUM(Posting.amount), 0), fn.COUNT(Posting.id))
        .join(Posting, JOIN.LEFT_OUTER)
        .group_by(Txn.id, Txn.key)
        .having((fn.COALESCE(fn.SUM(Posting.amount), 0) != 0) | (fn.COUNT(Posting.id) == 0))
        .tuples()
    )
    return [f"transaction {k} sums to {s} over {c} postings" for k, s, c in rows]


def _check_references():
    """Every posting's transaction and account, and every paid plan row's
    transaction, exist. PostgreSQL checks its foreign keys on every write; a
    SQLite connection can turn its checks off, so they are read back."""
    rows = dialect().dangling_references(("posting", "close_plan"))
    return [f"{t} row {rowid} refers to a missing {parent} row" for t, rowid, parent in rows]


def _check_balances_match_postings():
    """Every cached balance equals the sum of its postings (R12)."""
    sums = Posting.select(Posting.account, fn.SUM(Posting.amount).alias("total")).group_by(Posting.account).alias("sums")
    rows = (
        Account.select(Account.code, Account.balance, fn.COALESCE(sums.c.total, 0))
        .join(sums, JOIN.LEFT_OUTER, on=(sums.c.account_id == Account.id))
        .where(Account.balance != fn.COALESCE(sums.c.total, 0))
        .tuples()
    )
    return [f"account {c} stores {b} but its postings sum to {s}" for c, b, s in rows]


def _check_no_negative_accounts():
    """No account but the outside world is negative (R12)."""
    rows = Account.select(Account.code, Account.balance).where((Account.kind != "external") & (Account.balance < 0)).tuples()
    return [f"account {c} is negative: {b}" for c, b in rows]


def _check_money_enters_and_leaves_at_the_edges():
    """Money enters only by confirmed deposits and leaves only by paid payouts."""
    problems = []
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
    return problems


def _check_deposits_have_their_transaction():
    """A confirmed deposit has exactly its transaction; a pending one has none."""
    rows = Deposit.select(Deposit.id, Deposit.status).where(
        ((Deposit.status == "confirmed") & Deposit.txn.is_null()) | ((Deposit.status != "confirmed") & Deposit.txn.is_null(False))
    ).tuples()
    return [f"deposit {i} is {s} but its transaction says otherwise" for i, s in rows]


def _check_closed_periods_paid_their_plan():
    """A closed period paid every planned spend, and its shares add up to it (R9, R10)."""
    rows = database.execute_sql(
        "SELECT p.period, p.giver_id, p.spend, COALESCE(SUM(f.share), 0), MAX(CASE WHEN p.txn_id IS NULL THEN 1 ELSE 0 END) "
        "FROM close_plan p JOIN period pe ON pe.name = p.period "
        "LEFT JOIN flattr f ON f.period = p.period AND f.giver_id = p.giver_id AND f.status = 'counted' "
        "WHERE pe.status = 'closed' GROUP BY p.period, p.giver_id, p.spend "
        "HAVING COALESCE(SUM(f.share), 0) <> p.spend OR MAX(CASE WHEN p.txn_id IS NULL THEN 1 ELSE 0 END) = 1 "
        "AND p.spend > 0"
    ).fetchall()
    return [
        f"period {p}, giver {g}: planned {spend}, shares add up to {shares}" + (", never paid" if unpaid else "")
        for p, g, spend, shares, unpaid in rows
    ]


def _check_closed_periods_have_no_pending_flattrs():
    rows = Period.select(Period.name).where(
        (Period.status == "closed") & (Period.name.in_(Flattr.select(Flattr.period).where(Flattr.status == "pending")))
    ).tuples()
    return [f"period {p} is closed but has flattrs still pending" for (p,) in rows]


def _check_all_balances_sum_to_zero():
    """Double entry: all balances together are 0 (R12)."""
    total = Account.select(fn.COALESCE(fn.SUM(Account.balance), 0)).scalar()
    return [f"the balances of all accounts sum to {total}, not 0"] if total != 0 else []


# What `flattr-node check` runs, in order: each returns its problems as text.
CHECKS = [
    _check_transactions_balance,
    _check_references,
    _check_balances_match_postings,
    _check_no_negative_accounts,
    _check_money_enters_and_leaves_at_the_edges,
    _check_deposits_have_their_transaction,
    _check_closed_periods_paid_their_plan,
    _check_closed_periods_have_no_pending_flattrs,
    _check_all_balances_sum_to_zero,
]


def check_ledger(limit: int = 50) -> CheckResult:
    """Verify R12 and the bookkeeping around it (every check of CHECKS, in
    one snapshot, also on PostgreSQL); at most `limit` problems per check."""
    problems: list[str] = []
    with consistent_read():
        for check in CHECKS:
            problems += check()[:limit]
    return CheckResult(problems)
