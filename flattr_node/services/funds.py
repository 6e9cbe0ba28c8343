"""Money in and out: deposits (R5), payouts (R11) and revenue-to-funds (R2)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid

from .. import ledger, periods, webhooks
from ..bank import payouts as bank_payouts
from ..bank import references
from ..config import Config
from ..db import database, execute, lock_accounts, locked, one_of
from ..errors import NoMoney, NotFound, Validation
from ..i18n import Amount, said, said_n
from ..models import Account, Deposit, Payout, User, utcnow
from . import notices
from .validate import row_id, whole_number

log = logging.getLogger(__name__)

MAX_DEPOSIT = 10_000_000
MAX_PENDING_DEPOSITS = 20
_REFERENCE = re.compile(r"^FN-[0-9A-Z]{4}-[0-9A-Z]{4}$")


def new_reference() -> str:
    """An ISO 11649 creditor reference (RF…), which banks carry end to end."""
    return references.new_reference()


def _clean_reference(text: str) -> str:
    """The stored form of a reference as typed: RF references compact and
    upper case; the FN-XXXX-XXXX of older deposits with its dashes."""
    # O for 0, I or l for 1 first: deposit references have none of these
    # letters, and RF check digits over a misread letter can hold by chance.
    text = re.sub(r"[\s-]", "", str(text).upper()).translate(str.maketrans("OIL", "011"))
    if text.startswith("RF"):
        return references.normalize(text) or text
    if text.startswith("FN") and len(text) == 10:
        return f"FN-{text[2:6]}-{text[6:]}"
    return text


def _create_deposit(user_id: int, amount: int, topup_period: str | None = None) -> Deposit | None:
    """A new pending deposit, in the caller's transaction. A reference that
    is taken already inserts nothing (no error, so no savepoint is needed),
    and a new one is drawn; None if this month's top-up is open already."""
    for _ in range(5):
        row = execute(
            "INSERT INTO deposit (user_id, amount, reference, status, topup_period, created_at) "
            "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING RETURNING id",
            (user_id, amount, new_reference(), topup_period, Deposit.created_at.db_value(utcnow())),
        ).fetchone()
        if row is not None:
            return Deposit.get_by_id(row[0])
        if topup_period is not None and Deposit.select().where(
            (Deposit.user == user_id) & (Deposit.topup_period == topup_period)
        ).exists():
            return None  # this month's top-up is already open
    raise RuntimeError("could not find a free deposit reference")


def open_deposit(user: User, amount) -> Deposit:
    amount = whole_number(amount, "amount")
    if not 1 <= amount <= MAX_DEPOSIT:
        raise Validation(
            said('amount must be between 1 and %(max_deposit)s cents', max_deposit=MAX_DEPOSIT), field="amount",
            words=said("A deposit must be between %(least)s and %(most)s.", least=Amount(1), most=Amount(MAX_DEPOSIT)),
        )
    with database.atomic():
        pending = Deposit.select().where((Deposit.user == user) & (Deposit.status == "pending")).count()
        if pending >= MAX_PENDING_DEPOSITS:
            raise Validation(said_n(
                    "you have %(num)d deposit waiting for payment: pay or cancel it first",
                    "you have %(num)d deposits waiting for payment: pay or cancel some first",
                    pending,
                ), field="amount")
        return _create_deposit(user.id, amount)


def find_deposit(id_or_reference) -> Deposit:
    text = str(id_or_reference).strip()
    query = Deposit.select()
    if text.isascii() and text.isdigit():
        query = query.where(Deposit.id == (row_id(text) or 0))
    elif _REFERENCE.match(_clean_reference(text)) or references.normalize(_clean_reference(text)):
        query = query.where(Deposit.reference == _clean_reference(text))
    else:  # not a reference (a NUL would even upset PostgreSQL): nothing to find
        raise NotFound(said('no deposit %(text)s', text=repr(text)))
    deposit = locked(query).first()
    if deposit is None:
        raise NotFound(said('no deposit %(text)s', text=repr(text)))
    return deposit


def confirm_deposit(id_or_reference, now: dt.datetime | None = None) -> tuple[Deposit, bool]:
    """The money arrived. Returns (deposit, newly_confirmed); a second call credits nothing."""
    with database.atomic():
        deposit = find_deposit(id_or_reference)
        if deposit.status == "confirmed":
            return deposit, False
        if deposit.status == "cancelled":
            raise Validation(said('deposit %(reference)s was cancelled and cannot be confirmed', reference=deposit.reference))
        lock_accounts(["node:external", ledger.user_code(deposit.user_id, "funds")])
        txn, _ = ledger.post(
            f"deposit:{deposit.id}:confirm",
            "deposit",
            [(ledger.node_account("external").id, -deposit.amount), (ledger.user_account(deposit.user_id, "funds").id, deposit.amount)],
            memo=deposit.reference,
            now=now,
        )
        Deposit.update(status="confirmed", confirmed_at=now or utcnow(), txn=txn).where(Deposit.id == deposit.id).execute()
        notices.queue(deposit.user_id, "deposit_confirmed", f"deposit:{deposit.id}", {"amount": deposit.amount, "reference": deposit.reference})
    log.info("deposit %d (%s) confirmed: %d cents to user %d", deposit.id, deposit.reference, deposit.amount, deposit.user_id)
    return Deposit.get_by_id(deposit.id), True


def confirm_many(deposits: list, now: dt.datetime | None = None) -> list:
    """Confirm many pending deposits in the caller's transaction, exactly as
    confirm_deposit confirms one (same ledger key, memo and notice), in a
    few statements: a bank statement's hundreds of deposits. Deposits no
    longer pending (another process confirmed or cancelled them first) are
    left alone; returns those confirmed now (rows with id, user_id, amount
    and reference)."""
    if not deposits:
        return []
    at = now or utcnow()
    ids = [d.id for d in deposits]
    fields = (Deposit.id, Deposit.user.alias("user_id"), Deposit.amount, Deposit.reference)
    pending = {d.id: d for d in locked(Deposit.select(*fields).where(one_of(Deposit.id, ids) & (Deposit.status == "pending"))).namedtuples()}
    todo = [pending[i] for i in ids if i in pending]
    if not todo:
        return []
    codes = {ledger.user_code(d.user_id, "funds") for d in todo}
    lock_accounts(["node:external", *codes])
    funds_ids = dict(Account.select(Account.user, Account.id).where(one_of(Account.user, {d.user_id for d in todo}) & (Account.kind == "funds")).tuples())
    external = ledger.node_account("external").id
    txns = ledger.post_values(
        "deposit", [(f"deposit:{d.id}:confirm", [(external, -d.amount), (funds_ids[d.user_id], d.amount)], d.reference) for d in todo], now=at
    )
    done = [d for d in todo if f"deposit:{d.id}:confirm" in txns]
    database.cursor().executemany(
        f"UPDATE deposit SET status = 'confirmed', confirmed_at = {database.param}, txn_id = {database.param} WHERE id = {database.param}",
        [(Deposit.confirmed_at.db_value(at), txns[f"deposit:{d.id}:confirm"], d.id) for d in done],
    )
    notices.queue_many("deposit_confirmed", [(d.user_id, f"deposit:{d.id}", {"amount": d.amount, "reference": d.reference}) for d in done], now=at)
    log.info("%d deposits confirmed at once", len(done))
    return done


def cancel_deposit(id_or_reference, user: User | None = None) -> Deposit:
    """A pending deposit that will not be paid. `user` limits it to their own."""
    with database.atomic():
        deposit = find_deposit(id_or_reference)
        if user is not None and deposit.user_id != user.id:
            raise NotFound(said('no deposit %(id_or_reference)s', id_or_reference=repr(id_or_reference)))
        if deposit.status != "pending":
            raise Validation(said('deposit %(reference)s is %(status)s, not pending', reference=deposit.reference, status=deposit.status))
        Deposit.update(status="cancelled").where(Deposit.id == deposit.id).execute()
        return Deposit.get_by_id(deposit.id)


def open_topups(cfg: Config, now: dt.datetime | None = None) -> int:
    """R5: open this month's top-up deposit for everyone who asked for one
    before the month began. Idempotent: one per person per period."""
    now = now or utcnow()
    period = periods.name_of(now, cfg.tz)
    start = periods.start_utc(period, cfg.tz)
    users = (
        User.select(User.id, User.monthly_topup)
        .where((User.monthly_topup > 0) & ~User.is_suspended & (User.topup_set_at.is_null() | (User.topup_set_at < start)))
        .tuples()
    )
    opened = 0
    for user_id, topup in users:
        if not Deposit.select().where((Deposit.user == user_id) & (Deposit.topup_period == period)).exists():
            with database.atomic():
                if _create_deposit(user_id, topup, topup_period=period) is not None:
                    opened += 1
    return opened


def request_payout(cfg: Config, user: User, amount) -> Payout:
    amount = whole_number(amount, "amount")
    if amount < cfg.min_payout:
        raise Validation(said('the smallest payout is %(min_payout)s', min_payout=Amount(cfg.min_payout, cfg.currency)), field="amount")
    account = bank_payouts.require_account(user)  # SPEC §7: no payout without a payout account
    with database.atomic():
        lock_accounts([ledger.user_code(user.id, "revenue"), "node:payouts"])  # two requests cannot both spend it
        revenue = locked(Account.select(Account.balance).where(Account.code == ledger.user_code(user.id, "revenue"))).scalar() or 0
        if amount > revenue:
            raise NoMoney(said('your revenue is %(revenue)s: you cannot withdraw %(amount)s', revenue=Amount(revenue, cfg.currency), amount=Amount(amount, cfg.currency)))
        payout = Payout.create(user=user, amount=amount)
        bank_payouts.record_transfer(payout, "revenue", account)
        ledger.post(
            f"payout:{payout.id}:request",
            "payout",
            [(ledger.user_account(user.id, "revenue").id, -amount), (ledger.node_account("payouts").id, amount)],
        )
    log.info("payout %d requested: %d cents from user %d", payout.id, amount, user.id)
    return payout


def _settle(payout_id, status: str) -> tuple[Payout, bool]:
    payout_id = row_id(payout_id)
    if payout_id is None:
        raise NotFound(said('no such payout'))
    with database.atomic():
        payout = locked(Payout.select().where(Payout.id == payout_id)).first()
        if payout is None:
            raise NotFound(said('no payout %(payout_id)s', payout_id=payout_id))
        if payout.status == status:
            return payout, False
        if payout.status != "requested":
            raise Validation(said('payout %(id)s is already %(status)s', id=payout.id, status=payout.status))
        source = bank_payouts.source_of(payout.id)  # revenue, or funds for a refund: where a failed one returns
        lock_accounts(["node:payouts", "node:external" if status == "paid" else ledger.user_code(payout.user_id, source)])
        back_to = ledger.node_account("external") if status == "paid" else ledger.user_account(payout.user_id, source)
        ledger.post(
            f"payout:{payout.id}:{status}",
            "payout",
            [(ledger.node_account("payouts").id, -payout.amount), (back_to.id, payout.amount)],
        )
        Payout.update(status=status, settled_at=utcnow()).where(Payout.id == payout.id).execute()
        notices.queue(payout.user_id, "payout", f"payout:{payout.id}:{status}", {"amount": payout.amount, "status": status})
        if status == "paid":
            webhooks.enqueue("payout.paid", payout.user_id, str(payout.id))
    log.info("payout %d %s: %d cents", payout.id, status, payout.amount)
    return Payout.get_by_id(payout.id), True


def mark_paid(payout_id) -> tuple[Payout, bool]:
    return _settle(payout_id, "paid")


def mark_failed(payout_id) -> tuple[Payout, bool]:
    """A failed payout returns its amount to the person's revenue (R11), a
    failed refund to their funds."""
    return _settle(payout_id, "failed")


def revenue_to_funds(cfg: Config, user: User, amount, idempotency_key: str | None = None) -> bool:
    amount = whole_number(amount, "amount")
    if amount < 1:
        raise Validation(said('amount must be at least 1 cent'), field="amount", words=said("Amount must be at least %(least)s.", least=Amount(1)))
    if idempotency_key is not None and (not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 64):
        raise Validation(said('Idempotency-Key must be 1-64 characters'), field="Idempotency-Key")
    key = f"revenue-to-funds:{user.id}:{idempotency_key or uuid.uuid4().hex}"
    with database.atomic():
        lock_accounts([ledger.user_code(user.id, "funds"), ledger.user_code(user.id, "revenue")])
        revenue = locked(Account.select(Account.balance).where(Account.code == ledger.user_code(user.id, "revenue"))).scalar() or 0
        earlier = ledger.Txn.get_or_none(ledger.Txn.key == key)
        if earlier is not None:
            moved = (
                ledger.Posting.select(ledger.Posting.amount)
                .where((ledger.Posting.txn == earlier) & (ledger.Posting.amount > 0))
                .scalar()
            )
            if moved != amount:  # a retry must repeat the request, as with Stripe
                raise Validation(
                    said('this Idempotency-Key was used to move %(value)s, not %(amount)s: use a new key for a new move', value=Amount(moved or 0, cfg.currency), amount=Amount(amount, cfg.currency)),
                    field="Idempotency-Key",
                )
            return False
        if amount > revenue:
            raise NoMoney(said('your revenue is %(revenue)s: you cannot move %(amount)s', revenue=Amount(revenue, cfg.currency), amount=Amount(amount, cfg.currency)))
        _, created = ledger.post(
            key,
            "revenue_to_funds",
            [(ledger.user_account(user.id, "revenue").id, -amount), (ledger.user_account(user.id, "funds").id, amount)],
        )
        return created
