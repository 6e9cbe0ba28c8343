"""Bank accounts: the node's own (config) and people's payout accounts.

IBANs and BICs are checked by schwifty (country, length, check digits, and
for payouts that the country is in the SEPA zone, since exports are SEPA
credit transfers). A person's payout account lives in its own table, one row
per person, so that a payout can be requested only with one.
"""

from __future__ import annotations

import re

from peewee import CharField, DateTimeField, ForeignKeyField
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from ..db import database
from ..errors import Validation
from ..i18n import said
from ..models import BaseModel, User, utcnow
from ..services.validate import is_utf8

MAX_NAME = 70  # what a SEPA name field holds
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]+$")


class AccountError(ValueError):
    """An IBAN, BIC or holder's name that a bank would refuse."""


class PayoutAccount(BaseModel):
    """Where a person's withdrawals and refunds are sent."""

    user = ForeignKeyField(User, primary_key=True, backref="payout_account", on_delete="RESTRICT")
    iban = CharField(max_length=34)
    name = CharField(max_length=MAX_NAME)
    updated_at = DateTimeField(default=utcnow)


def check_iban(text: str, sepa: bool = True) -> str:
    """The compact IBAN of `text` (spaces and lower case allowed)."""
    if not isinstance(text, str) or not text.strip():
        raise AccountError(said('is empty: give an IBAN such as DE89 3704 0044 0532 0130 00'))
    try:
        iban = IBAN(text.strip())
    except SchwiftyException as e:
        raise AccountError(said('%(value)s is not a valid IBAN (%(value2)s)', value=repr(text.strip()), value2=str(e).lower())) from None
    if sepa and not iban.in_sepa_zone:
        raise AccountError(said('%(formatted)s is not in a SEPA country: payouts are SEPA transfers', formatted=iban.formatted))
    return iban.compact


def check_bic(text: str) -> str:
    try:
        return str(BIC(text.strip()))
    except SchwiftyException as e:
        raise AccountError(said('%(value)s is not a valid BIC (%(value2)s)', value=repr(text.strip()), value2=str(e).lower())) from None


def check_name(text: str) -> str:
    name = " ".join(str(text).split())
    if not name:
        raise AccountError(said("is empty: give the account holder's name"))
    if not is_utf8(name):
        raise AccountError(said('holds a character that is not text (a lone surrogate)'))
    if len(name) > MAX_NAME or not _NAME_OK.match(name):
        raise AccountError(said('must be at most %(max_name)s printable characters', max_name=MAX_NAME))
    return name


def pretty_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def payout_account(user_id: int) -> PayoutAccount | None:
    return PayoutAccount.get_or_none(PayoutAccount.user == user_id)


def payout_fields(user_id: int) -> dict:
    """What GET /api/v1/user shows of the payout account (null: none yet)."""
    account = payout_account(user_id)
    return {"payout_iban": account.iban if account else None, "payout_name": account.name if account else None}


def check_payout_change(user: User, changes: dict) -> tuple[str, str] | None:
    """Validate `payout_iban` / `payout_name` of a PATCH; (iban, name) to save,
    or None when neither is given. A first account needs both."""
    if "payout_iban" not in changes and "payout_name" not in changes:
        return None
    current = payout_account(user.id)
    iban = changes.get("payout_iban", current.iban if current else None)
    name = changes.get("payout_name", current.name if current else None)
    if iban is None:
        raise Validation(said('payout_iban is needed with payout_name'), field="payout_iban")
    if name is None:
        raise Validation(said("payout_name is needed with payout_iban: the account holder's name"), field="payout_name")
    if not isinstance(iban, str):
        raise Validation(said('payout_iban must be a string'), field="payout_iban")
    if not isinstance(name, str):
        raise Validation(said('payout_name must be a string'), field="payout_name")
    try:
        iban = check_iban(iban)
    except AccountError as e:
        raise Validation(said('payout_iban %(problem)s', problem=e.args[0]), field="payout_iban") from None
    try:
        name = check_name(name)
    except AccountError as e:
        raise Validation(said('payout_name %(problem)s', problem=e.args[0]), field="payout_name") from None
    return iban, name


def save_payout_account(user: User, iban: str, name: str) -> PayoutAccount:
    """Record (or replace) where `user`'s money goes; values from check_payout_change."""
    with database.atomic():
        PayoutAccount.insert(user=user.id, iban=iban, name=name, updated_at=utcnow()).on_conflict(
            conflict_target=[PayoutAccount.user],
            update={PayoutAccount.iban: iban, PayoutAccount.name: name, PayoutAccount.updated_at: utcnow()},
        ).execute()
    return PayoutAccount.get_by_id(user.id)


def set_payout_account(user: User, iban, name) -> PayoutAccount:
    """Validate and save in one go (the dashboard's form)."""
    iban, name = check_payout_change(user, {"payout_iban": iban, "payout_name": name})
    return save_payout_account(user, iban, name)
