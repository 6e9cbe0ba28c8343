"""The operator's pages: what waits for them, and managing people.

Confirming deposits and settling payouts go through services/funds.py; this
module lists what is pending and changes people's roles.
"""

from __future__ import annotations

from .. import ledger
from ..db import database
from ..errors import Forbidden, NotFound
from ..i18n import said
from ..models import Account, CheckRun, Deposit, Payout, Period, User


def pending_deposits() -> list[Deposit]:
    return list(Deposit.select(Deposit, User).join(User).where(Deposit.status == "pending").order_by(Deposit.created_at, Deposit.id))


def requested_payouts() -> list[Payout]:
    return list(Payout.select(Payout, User).join(User).where(Payout.status == "requested").order_by(Payout.created_at, Payout.id))


def recent_periods(limit: int = 24) -> list[Period]:
    return list(Period.select().order_by(Period.name.desc()).limit(limit))


def last_check() -> CheckRun | None:
    return CheckRun.select().order_by(CheckRun.ran_at.desc(), CheckRun.id.desc()).first()


def run_check() -> CheckRun:
    """Verify the ledger (R12) now and keep the result for the operator page."""
    result = ledger.check_ledger()
    return CheckRun.create(ok=result.ok, problems="\n".join(result.problems))


def people_with_balances(limit: int = 500) -> list[tuple[User, int, int]]:
    users = list(User.select().order_by(User.username).limit(limit))
    balances = {
        (uid, kind): bal
        for uid, kind, bal in Account.select(Account.user, Account.kind, Account.balance)
        .where(Account.user.in_([u.id for u in users]))
        .tuples()
    } if users else {}
    return [(u, balances.get((u.id, "funds"), 0), balances.get((u.id, "revenue"), 0)) for u in users]


def _other(actor: User, user_id) -> User:
    if not actor.is_operator:
        raise Forbidden(said('only an operator of this node can do this'))
    try:
        user = User.get_or_none(User.id == int(user_id))
    except (TypeError, ValueError):
        user = None
    if user is None:
        raise NotFound(said('no such person'))
    if user.id == actor.id:
        raise Forbidden(said('you cannot change your own role or suspend yourself: ask another operator'))
    return user


def other_person(actor: User, user_id) -> User:
    """The person an operator is about to change: never the operator themselves."""
    return _other(actor, user_id)


def set_suspended(actor: User, user_id, suspended: bool) -> User:
    """A suspended person cannot sign in, use tokens or be flattred through
    auto-submit; their money stays where it is."""
    with database.atomic():
        user = _other(actor, user_id)
        User.update(is_suspended=bool(suspended)).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def set_operator(actor: User, user_id, operator: bool) -> User:
    with database.atomic():
        user = _other(actor, user_id)
        User.update(is_operator=bool(operator)).where(User.id == user.id).execute()
    return User.get_by_id(user.id)
