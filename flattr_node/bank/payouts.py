"""Money out by SEPA credit transfer: the account a payout goes to, refunds
of funds (R2), and the pain.001 export.

Every payout requested from now on has a PayoutTransfer row made in the same
transaction: the account it goes to (a copy, so a later change of the
person's account does not redirect money already on its way), where the money
came from (revenue, or funds for a refund) and its EndToEndId, which the bank
carries back in the statement's debit entry (bank import marks it paid).

`export_payouts` puts every requested payout not yet exported into one
pain.001.001.03 file built by sepaxml and validated against the XSD sepaxml
ships, and records the export in the same database transaction that claims
the payouts: two exports at once never share a payout.

Other things this node pays by bank transfer (the settlements it owes peer
nodes, see the federation) join the same file through EXPORT_SOURCES: a
function (cfg, export_id) that, inside the export's transaction, claims what
it owes for `export_id` and returns (Transfer items, lines saying what it
left out and why). Appending one function is enough.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable

from peewee import JOIN

from .. import ledger
from ..config import Config
from ..db import database, dialect, lock_accounts, locked
from ..errors import NoMoney, NotFound, Validation
from ..i18n import Amount, said
from ..models import Account, Payout, User, utcnow
from .accounts import PayoutAccount, payout_account
from .models import PayoutExport, PayoutTransfer

log = logging.getLogger(__name__)

EXPORT_LOCK = 7294030
PAIN_SCHEMA = "pain.001.001.03"  # what every SEPA bank accepts; sepaxml ships its XSD


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One credit transfer of an export."""

    amount: int  # cents
    iban: str
    name: str
    end_to_end_id: str
    description: str
    bic: str | None = None


def _settlements_owed(cfg: Config, export_id: int) -> tuple[list[Transfer], list[str]]:
    """The statements this node owes its peers (federation/settlement.py)."""
    from ..federation.settlement import export_owed

    return export_owed(cfg, export_id)


# Functions (cfg, export_id) -> (transfers, left-out lines), called inside
# the export's transaction after the payouts are claimed.
EXPORT_SOURCES: list[Callable[[Config, int], tuple[list[Transfer], list[str]]]] = [_settlements_owed]


def end_to_end_id(payout_id: int) -> str:
    return f"FLATTR-PAYOUT-{payout_id}"


def require_account(user: User) -> PayoutAccount:
    account = payout_account(user.id)
    if account is None:
        raise Validation(
            said('give your payout account first (payout_iban and payout_name; on the dashboard: Revenue, payout account)'),
            field="payout_iban",
        )
    return account


def record_transfer(payout: Payout, source: str, account: PayoutAccount) -> PayoutTransfer:
    """Inside the transaction that creates `payout`."""
    return PayoutTransfer.create(
        payout=payout.id, source=source, iban=account.iban, name=account.name, end_to_end_id=end_to_end_id(payout.id)
    )


def source_of(payout_id: int) -> str:
    """Where a payout's money came from, and goes back to if it fails."""
    row = PayoutTransfer.select(PayoutTransfer.source).where(PayoutTransfer.payout == payout_id).scalar()
    return row or "revenue"


def refund(cfg: Config, username: str, amount) -> Payout:
    """R2: the operator gives back `amount` of a person's unspent funds, as a
    payout from funds to their payout account (exported like a withdrawal)."""
    from ..services.people import get_user
    from ..services.validate import whole_number

    user = get_user(username)
    amount = whole_number(amount, "amount")
    if amount < 1:
        raise Validation(said('amount must be at least 1 cent'), field="amount")
    account = payout_account(user.id)
    if account is None:
        raise Validation(said('%(username)s has no payout account: they must give one before a refund', username=user.username), field="payout_iban")
    with database.atomic():
        funds_code = ledger.user_code(user.id, "funds")
        lock_accounts([funds_code, "node:payouts"])
        funds = locked(Account.select(Account.balance).where(Account.code == funds_code)).scalar() or 0
        if amount > funds:
            raise NoMoney(
                said("%(username)s's funds are %(funds)s: you cannot refund %(amount)s", username=user.username, funds=Amount(funds, cfg.currency), amount=Amount(amount, cfg.currency))
            )
        payout = Payout.create(user=user, amount=amount)
        record_transfer(payout, "funds", account)
        ledger.post(
            f"payout:{payout.id}:request",
            "refund",
            [(ledger.user_account(user.id, "funds").id, -amount), (ledger.node_account("payouts").id, amount)],
            memo=f"refund to {account.iban}",
        )
    log.info("refund %d: %d cents from user %d's funds", payout.id, amount, user.id)
    return payout


@dataclasses.dataclass
class ExportResult:
    export: PayoutExport | None  # None: nothing to export
    xml: bytes
    count: int
    total: int
    left_out: list[str] = dataclasses.field(default_factory=list)  # one line each: what waits, and why


def _claim_payouts(export_id: int) -> list[Transfer]:
    """Mark every requested, unexported payout as part of `export_id`; return them."""
    pending = (
        PayoutTransfer.select(PayoutTransfer.payout)
        .join(Payout)
        .where(PayoutTransfer.export.is_null() & (Payout.status == "requested"))
        .order_by(PayoutTransfer.payout)
    )
    ids = [pid for (pid,) in locked(pending).tuples()]
    if not ids:
        return []
    PayoutTransfer.update(export=export_id).where(PayoutTransfer.payout.in_(ids) & PayoutTransfer.export.is_null()).execute()
    rows = (
        PayoutTransfer.select(PayoutTransfer, Payout.amount)
        .join(Payout)
        .where(PayoutTransfer.export == export_id)
        .order_by(PayoutTransfer.payout)
        .objects()
    )
    return [
        Transfer(
            amount=t.amount,
            iban=t.iban,
            name=t.name,
            end_to_end_id=t.end_to_end_id,
            description=("Refund" if t.source == "funds" else "Flattr revenue") + f" {t.end_to_end_id}",
        )
        for t in rows
    ]


def build_pain001(cfg: Config, transfers: list[Transfer], today: dt.date, msg_id: str | None = None) -> tuple[str, bytes]:
    """(message id, the XML), validated against the pain.001.001.03 XSD by sepaxml."""
    from sepaxml import SepaTransfer

    sepa = SepaTransfer(
        {
            "name": " ".join(cfg.bank_account_name.split()),
            "IBAN": cfg.bank_iban.replace(" ", "").upper(),
            "BIC": cfg.bank_bic.replace(" ", "").upper(),
            "batch": True,
            "currency": cfg.currency,
        },
        schema=PAIN_SCHEMA,
    )
    if msg_id:
        sepa.msg_id = msg_id
    for t in transfers:
        payment = {
            "name": t.name,
            "IBAN": t.iban,
            "amount": t.amount,
            "execution_date": today,
            "description": t.description,
            "endtoend_id": t.end_to_end_id,
        }
        if t.bic:
            payment["BIC"] = t.bic
        sepa.add_payment(payment)
    return sepa.msg_id, sepa.export(validate=True)


def check_can_export(cfg: Config) -> None:
    if not cfg.bank_iban or not cfg.bank_account_name:
        raise Validation(said('set bank_iban and bank_account_name in the config: the export pays from that account'))
    if cfg.currency != "EUR":
        raise Validation(said("SEPA credit transfers are in EUR; this node's currency is %(currency)s", currency=cfg.currency))


def export_payouts(cfg: Config, now: dt.datetime | None = None) -> ExportResult:
    """One pain.001 file with every requested payout not exported yet; each
    payout is in exactly one export, ever."""
    check_can_export(cfg)
    now = now or utcnow()
    today = now.replace(tzinfo=dt.UTC).astimezone(cfg.tz).date()
    with database.atomic():
        dialect().advisory_lock(EXPORT_LOCK)  # exports queue behind each other; payouts being requested go on
        export = PayoutExport.create(message_id=f"pending-{uuid.uuid4().hex[:24]}", created_at=now, count=0, total=0, xml="")
        transfers, left_out = _claim_payouts(export.id), []
        for source in EXPORT_SOURCES:
            more, skipped = source(cfg, export.id)
            transfers.extend(more)
            left_out.extend(skipped)
        if not transfers:
            PayoutExport.delete().where(PayoutExport.id == export.id).execute()
            return ExportResult(None, b"", 0, 0, left_out)
        msg_id, xml = build_pain001(cfg, transfers, today)
        total = sum(t.amount for t in transfers)
        PayoutExport.update(message_id=msg_id, count=len(transfers), total=total, xml=xml.decode()).where(
            PayoutExport.id == export.id
        ).execute()
    log.info("payout export %d: %d transfers, %d cents", export.id, len(transfers), total)
    return ExportResult(PayoutExport.get_by_id(export.id), xml, len(transfers), total, left_out)


def get_export(export_id: int) -> PayoutExport:
    export = PayoutExport.get_or_none(PayoutExport.id == export_id)
    if export is None:
        raise NotFound(said('no payout export %(export_id)s', export_id=export_id))
    return export


def recent_exports(limit: int = 20) -> list[PayoutExport]:
    return list(PayoutExport.select().order_by(PayoutExport.id.desc()).limit(limit))


def unexported_payouts() -> list[tuple]:
    """Every requested payout not exported yet, with `.account` (its
    PayoutTransfer; None for a payout requested before bank rails) and `.user`."""
    return list(
        Payout.select(Payout, PayoutTransfer, User)
        .join(PayoutTransfer, JOIN.LEFT_OUTER, on=(PayoutTransfer.payout == Payout.id), attr="account")
        .switch(Payout)
        .join(User)
        .where((Payout.status == "requested") & PayoutTransfer.export.is_null())
        .order_by(Payout.id)
    )
