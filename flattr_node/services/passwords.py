"""Password change and reset by e-mail.

A reset token is random, sent by e-mail, stored only as its SHA-256, valid
for RESET_VALID and usable once. Asking for a reset says the same whether or
not the address has an account, so the page cannot be used to find members.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets

from .. import i18n, mailer
from ..config import Config
from ..db import database
from ..errors import Validation
from ..i18n import said
from ..models import User, utcnow
from ..models_web import PasswordReset
from . import people

log = logging.getLogger(__name__)
RESET_VALID = dt.timedelta(hours=1)
MAX_OPEN_RESETS = 3  # per person per RESET_VALID: no mail bombing


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _words(user: User):
    """gettext in the person's language: a mail goes to them, whoever asked."""
    return i18n.translations(user.language or "en").gettext


def _check_current(user: User, current: str) -> None:
    if people.authenticate(user.username, current or "") is None:
        raise Validation(said('that is not your current password'), field="current_password")


def change_password(user: User, current: str, new: str, cfg: Config | None = None) -> None:
    _check_current(user, current)
    people.set_password(user, new)
    if cfg is not None:
        _ = _words(user)
        mailer.send_later(
            cfg,
            user.email,
            _("Your flattr-node password was changed"),
            _("The password of %(username)s on %(node)s was just changed, and its other sessions signed out.") % {"username": user.username, "node": cfg.base_url}
            + "\n\n"
            + _("If you did not change it, reset it now with “Forgot your password?” on the sign-in page, and tell the node's operator.")
            + "\n",
        )


def change_email(cfg: Config, user: User, current: str, new_email: str) -> User:
    """The one way to change a person's e-mail address: with their current
    password. The old address is told (a taken-over session cannot quietly
    redirect password resets)."""
    new_email = people.check_email(new_email)
    _check_current(user, current)
    old = user.email
    if new_email == old:
        return user
    User.update(email=new_email).where(User.id == user.id).execute()
    _ = _words(user)
    mailer.send_later(
        cfg,
        old,
        _("Your flattr-node e-mail address was changed"),
        _("The e-mail address of %(username)s on %(node)s was just changed from %(old)s to %(new)s.")
        % {"username": user.username, "node": cfg.base_url, "old": old, "new": new_email}
        + "\n\n"
        + _("Password resets now go to the new address. If you did not change it, tell the node's operator at once.")
        + "\n",
    )
    return User.get_by_id(user.id)


mail_enabled = mailer.enabled


def request_reset(cfg: Config, email: str, link_for, now: dt.datetime | None = None) -> bool:
    """E-mail a reset link to every person with that address. `link_for(token)`
    makes the link. The mail is queued (mailer): the answer is the same, and
    as quick, whether or not the address has an account or the SMTP server
    is up. Returns whether a mail was queued (not for the page to say)."""
    if not mail_enabled(cfg):
        raise Validation(said('this node sends no e-mail: ask its operator to reset your password'), field="email")
    email = people.check_email(email)
    now = now or utcnow()
    sent = False
    for user in User.select().where(User.email == email):
        if user.is_suspended:
            continue
        with database.atomic():
            recent = (
                PasswordReset.select()
                .where((PasswordReset.user == user) & (PasswordReset.created_at > now - RESET_VALID))
                .count()
            )
            if recent >= MAX_OPEN_RESETS:
                log.info("password reset for %s: too many recent requests", user.username)
                continue
            token = secrets.token_urlsafe(32)
            PasswordReset.create(user=user, digest=_digest(token), created_at=now, expires_at=now + RESET_VALID)
        _ = _words(user)
        body = (
            _("Someone (we hope you) asked to reset the password of %(username)s on %(node)s.") % {"username": user.username, "node": cfg.base_url}
            + "\n\n"
            + _("Choose a new password here within the next hour:")
            + f"\n\n{link_for(token)}\n\n"
            + _("The link works once. If you did not ask for it, ignore this mail: your password stays as it is.")
            + "\n"
        )
        mailer.send_later(cfg, user.email, _("Reset your flattr-node password"), body)
        sent = True
    return sent


def reset_user(token: str, now: dt.datetime | None = None) -> User:
    """The person a token resets, if it is valid (not used, not expired)."""
    now = now or utcnow()
    row = PasswordReset.get_or_none(PasswordReset.digest == _digest(str(token or "")))
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise Validation(said('this reset link is unknown, used or expired: ask for a new one'), field="token")
    return row.user


def reset_password(token: str, new: str, now: dt.datetime | None = None) -> User:
    """Use the token once: set the password and burn every open token of the person."""
    now = now or utcnow()
    reset_user(token, now)  # a bad link is refused before the slow part
    password_hash = people.hash_password(people.check_password(new))  # Argon2: before the transaction
    with database.atomic():
        user = reset_user(token, now)
        burned = (
            PasswordReset.update(used_at=now)
            .where((PasswordReset.digest == _digest(token)) & PasswordReset.used_at.is_null())
            .execute()
        )
        if not burned:
            raise Validation(said('this reset link has just been used'), field="token")
        PasswordReset.update(used_at=now).where((PasswordReset.user == user) & PasswordReset.used_at.is_null()).execute()
        people.store_password_hash(user, password_hash)
    return user


OPERATOR_RESET_VALID = dt.timedelta(hours=24)


def operator_reset_token(user: User, now: dt.datetime | None = None) -> str:
    """A one-time reset token made by an operator, who hands its link to the
    person another way (a node without SMTP sends no mail). Valid for a day;
    the first reset with any of the person's tokens burns them all."""
    if user.is_suspended:
        raise Validation(said('%(username)s is suspended: unsuspend them first', username=user.username))
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    PasswordReset.create(user=user, digest=_digest(token), created_at=now, expires_at=now + OPERATOR_RESET_VALID)
    log.info("password reset link made by an operator for %s", user.username)
    return token


def reset_link(cfg: Config, token: str) -> str:
    """The page where a reset token is used (web.password_reset)."""
    return f"{cfg.base_url.rstrip('/')}/password/reset/{token}"

