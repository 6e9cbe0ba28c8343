"""The bank rails' tables (migration 30)."""

from __future__ import annotations

from peewee import SQL, BigIntegerField, BooleanField, CharField, DateField, DateTimeField, ForeignKeyField, TextField

from ..models import BaseModel, Deposit, Payout, utcnow
from .accounts import PayoutAccount


class PayoutExport(BaseModel):
    """One pain.001 file: the payouts it holds point at it. The XML is kept,
    so the operator can download the same file again."""

    message_id = CharField(max_length=35, unique=True)
    created_at = DateTimeField(default=utcnow)
    count = BigIntegerField()
    total = BigIntegerField()
    xml = TextField()


class PayoutTransfer(BaseModel):
    """How a payout leaves the node: from revenue (a withdrawal, R11) or from
    funds (an operator's refund, R2), to which account, under which
    EndToEndId, and in which export (NULL: not exported yet)."""

    payout = ForeignKeyField(Payout, primary_key=True, backref="transfer", on_delete="RESTRICT")
    source = CharField(max_length=8)  # revenue | funds
    iban = CharField(max_length=34)
    name = CharField(max_length=70)
    end_to_end_id = CharField(max_length=35, unique=True)
    export = ForeignKeyField(PayoutExport, null=True, backref="transfers", on_delete="RESTRICT")

    class Meta:
        constraints = [SQL("CHECK (source IN ('revenue', 'funds'))")]


class BankEntry(BaseModel):
    """One entry of an imported bank statement, once: `key` is the bank's own
    entry reference, else a hash of its content. `status` says what the
    import (or the operator) did with it."""

    key = CharField(max_length=120, unique=True)
    imported_at = DateTimeField(default=utcnow)
    booked_on = DateField(null=True)
    credit = BooleanField()  # money in (else out)
    reversal = BooleanField(default=False)
    amount = BigIntegerField(constraints=[SQL("CHECK (amount >= 0)")])
    currency = CharField(max_length=3)
    text = TextField(default="")  # remittance information and references, as the bank gave them
    end_to_end_id = CharField(max_length=35, default="")
    counterparty = CharField(max_length=140, default="")
    counterparty_iban = CharField(max_length=34, default="")
    status = CharField(max_length=10)  # confirmed | paid | settled | review | assigned | returned
    reason = TextField(default="")  # why it is in the review list
    deposit = ForeignKeyField(Deposit, null=True, on_delete="RESTRICT")
    payout = ForeignKeyField(Payout, null=True, on_delete="RESTRICT")
    resolved_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status",), False),)
        constraints = [SQL("CHECK (status IN ('confirmed', 'paid', 'settled', 'review', 'assigned', 'returned'))")]


BANK_MODELS = [PayoutAccount, PayoutExport, PayoutTransfer, BankEntry]
