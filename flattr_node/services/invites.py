"""Sign-up (SPEC §5 `signup = open | invite | closed`) and invite codes.

The first person on a fresh node becomes its operator. With `signup =
"invite"` a new person needs an unused code; every member has
`invites_per_member` codes to hand out and sees who used them.
"""

from __future__ import annotations

import secrets

from peewee import JOIN

from ..config import Config
from ..db import database, dialect
from ..errors import Forbidden, Validation
from ..i18n import said
from ..models import User, utcnow
from ..models_web import Invite
from . import people

_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # nothing to misread: no 0/O, 1/I/L, U


def new_code() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


def clean_code(code) -> str:
    text = "".join(c for c in str(code or "").upper() if c.isalnum())
    return f"{text[:5]}-{text[5:]}" if len(text) == 10 else text


def node_is_fresh() -> bool:
    return not User.select().exists()


def signup_allowed(cfg: Config) -> str:
    """What the sign-up page offers: 'open', 'invite', 'first' or 'closed'."""
    if node_is_fresh() and cfg.signup != "closed":
        return "first"
    return cfg.signup


def sign_up(cfg: Config, username: str, email: str, password: str, code: str | None = None) -> User:
    """Create a person by the node's sign-up rules, in one transaction: the
    invite code is used by exactly one person, or by nobody if anything fails.
    The password is hashed (Argon2, the slow part) before the transaction,
    never while holding the write lock."""
    person = people.new_person(username, email, password)
    with database.atomic():
        # One sign-up at a time, so that only one "first person" is made operator.
        dialect().advisory_lock(7294002)
        first = node_is_fresh()
        if cfg.signup == "closed":
            raise Forbidden(said('sign-up is closed on this node: ask its operator to add you'))
        invite = None
        if cfg.signup == "invite" and not first:
            cleaned = clean_code(code)
            if not cleaned:
                raise Validation(said('an invite code is needed to join this node'), field="code")
            invite = Invite.get_or_none(Invite.code == cleaned)
            if invite is None or invite.used_by_id is not None:
                raise Validation(said('that invite code is unknown or has been used'), field="code")
        user = people.insert_user(cfg, person, operator=first)
        if invite is not None:
            taken = (
                Invite.update(used_by=user, used_at=utcnow())
                .where((Invite.id == invite.id) & Invite.used_by.is_null())
                .execute()
            )
            if not taken:
                raise Validation(said('that invite code has just been used'), field="code")
        return user


def invites_of(cfg: Config, user: User) -> list[Invite]:
    """The member's codes, made on first sight up to `invites_per_member`."""
    with database.atomic():
        have = Invite.select().where(Invite.inviter == user).count()
        for _ in range(max(0, cfg.invites_per_member - have)):
            Invite.create(code=new_code(), inviter=user)
    return list(
        Invite.select(Invite, User)
        .join(User, on=(Invite.used_by == User.id), join_type=JOIN.LEFT_OUTER)
        .where(Invite.inviter == user)
        .order_by(Invite.id)
    )
