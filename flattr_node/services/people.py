"""People: accounts, passwords (Argon2id), API tokens and settings (R4, R5)."""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from peewee import IntegrityError

from .. import ledger
from .. import scopes as scope_names
from ..config import Config
from ..db import database, select_composed
from ..errors import Forbidden, NotFound, Validation
from ..i18n import Amount, said
from ..models import ApiToken, User, utcnow
from ..urls import optional_url
from .validate import is_utf8, text, whole_number

_hasher = PasswordHasher()  # argon2-cffi's default type is Argon2id
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,190}\.[^@\s<>\"']{1,63}$")
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_username(username) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username.strip().lower()):
        raise Validation(
            said("username must be 2-40 characters: lower-case letters, digits, '.', '_' or '-'"),
            field="username",
        )
    return username.strip().lower()


def check_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise Validation(said('password must be at least %(min_password)s characters', min_password=MIN_PASSWORD), field="password")
    if not is_utf8(password):
        raise Validation(said('password must be valid Unicode text (it holds a lone surrogate)'), field="password")
    if len(password) > 1024:
        raise Validation(said('password is longer than 1024 characters'), field="password")
    return password


def check_email(email) -> str:
    if not isinstance(email, str) or not is_utf8(email) or not _EMAIL.match(email.strip()):
        raise Validation(said('email is not a valid e-mail address'), field="email")
    return email.strip()


def new_person(username: str, email: str, password: str) -> tuple[str, str, str]:
    """A new person's checked username and e-mail and password hash: the
    slow part (Argon2), to do before any transaction (`create_user`)."""
    return check_username(username), check_email(email), hash_password(check_password(password))


def create_user(cfg: Config, username: str, email: str, password: str, *, operator: bool = False) -> User:
    """Create a person: the password hashed first (Argon2, the slow part),
    then one transaction."""
    person = new_person(username, email, password)
    with database.atomic():
        return insert_user(cfg, person, operator=operator)


def insert_user(cfg: Config, person: tuple[str, str, str], *, operator: bool = False) -> User:
    """The rows of a new person (`new_person`'s result), in the caller's
    transaction: it opens none of its own."""
    username, email, password_hash = person
    if User.select().where(User.username == username).exists():
        raise Validation(said('the username %(username)s is taken', username=repr(username)), field="username")
    try:
        user = User.create(
            username=username,
            email=email,
            password_hash=password_hash,
            display_name=username,
            is_operator=operator,
            monthly_budget=cfg.min_monthly_budget,
        )
    except IntegrityError:  # a name taken meanwhile: the caller's transaction rolls back
        raise Validation(said('the username %(username)s is taken', username=repr(username)), field="username") from None
    ledger.open_user_accounts(user)
    return user


def find_user(username) -> User | None:
    """The person called `username`, or None. A name no one can have (a NUL,
    which PostgreSQL refuses even to compare) is not looked up."""
    name = str(username).strip().lower()
    if not _USERNAME.match(name):
        return None
    return User.get_or_none(User.username == name)


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise NotFound(said('no person called %(username)s on this node', username=repr(username)))
    return user


def public_user(username: str) -> User:
    """A person as others see them: a suspended person is not found, in
    the API as on their page."""
    user = find_user(username)
    if user is None or user.is_suspended:
        raise NotFound(said('no person called %(username)s on this node', username=repr(username)))
    return user


def authenticate(username: str, password: str) -> User | None:
    user = find_user(username)
    if user is None:
        _hasher.hash("x" * 12)  # same cost whether or not the name exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
    if not user.is_active:
        # Told only to whoever knows the password: it reveals nothing to a guesser.
        raise Forbidden(said("this account is suspended by the node's operator: ask them why; until then it cannot sign in"))
    return user


def set_password(user: User, password: str) -> None:
    store_password_hash(user, hash_password(check_password(password)))


def store_password_hash(user: User, password_hash: str) -> None:
    """Keep a hash made by `hash_password`: hash before a transaction, store in it."""
    User.update(password_hash=password_hash).where(User.id == user.id).execute()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str = "", scopes=None) -> str:
    """A new personal API token with `scopes` (all when None); only its
    SHA-256 is stored."""
    name = text(name, "name", 100)
    token = "fn_" + secrets.token_urlsafe(32)
    ApiToken.create(user=user, name=name, digest=_digest(token), scopes=scope_names.to_text(scope_names.parse(scopes)))
    return token


def user_for_token(token: str) -> User | None:
    """The token's person, with `token_scopes` (a frozenset) set on it; None
    if the token is unknown, revoked, expired or its person suspended."""
    # Every API call with a token starts here: the query is composed once.
    digest = _digest(token)
    query = (
        User.select(User, ApiToken.scopes, ApiToken.expires_at, ApiToken.oauth_client_id)
        .join(ApiToken)
        .where((ApiToken.digest == digest) & ApiToken.revoked_at.is_null())
    )
    user = next(iter(select_composed("people.user_for_token", query, (digest,))), None)
    if user is None or not user.is_active:
        return None
    row = user.apitoken
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    user.token_scopes = scope_names.from_text(row.scopes)
    user.oauth_client_id = row.oauth_client_id  # an app's token: what it registers is the app's
    return user


def revoke_token(user: User, token_id: int) -> None:
    updated = (
        ApiToken.update(revoked_at=utcnow())
        .where((ApiToken.id == token_id) & (ApiToken.user == user) & ApiToken.revoked_at.is_null())
        .execute()
    )
    if not updated:
        raise NotFound(said('no such token'))


def _monthly(cfg: Config, value, field: str) -> int:
    """A monthly budget, or a monthly top-up (0: none), within the node's limits."""
    cents = whole_number(value, field)
    if cfg.min_monthly_budget <= cents <= cfg.max_monthly_budget or (cents == 0 and field == "monthly_topup"):
        return cents
    least, most = Amount(cfg.min_monthly_budget, cfg.currency), Amount(cfg.max_monthly_budget, cfg.currency)
    low, high = cfg.min_monthly_budget, cfg.max_monthly_budget
    if field == "monthly_topup":
        raise Validation(
            said("monthly_topup must be 0 or between %(low)s and %(high)s cents", low=low, high=high),
            field=field,
            words=said("Monthly top-up must be between %(least)s and %(most)s, or empty for none.", least=least, most=most),
        )
    raise Validation(
        said("monthly_budget must be between %(low)s and %(high)s cents", low=low, high=high),
        field=field,
        words=said("Monthly budget must be between %(least)s and %(most)s.", least=least, most=most),
    )


def update_settings(cfg: Config, user: User, changes: dict) -> User:
    """PATCH /user: budget (R4), top-up (R5) and profile fields. All or nothing.
    The e-mail address is not one of them: it can take the account over (a
    reset goes to it), so it changes only through passwords.change_email."""
    if "email" in changes:
        raise Forbidden(
            said("email can be changed only on the node's web page (your profile), with your current password"), field="email"
        )
    allowed = {"monthly_budget", "monthly_topup", "display_name", "about", "url", "show_flattrs"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise Validation(said('%(name)s cannot be changed here', name=unknown[0]), field=unknown[0])
    values: dict = {}
    if "monthly_budget" in changes:
        values["monthly_budget"] = _monthly(cfg, changes["monthly_budget"], "monthly_budget")
    if "monthly_topup" in changes:
        topup = _monthly(cfg, changes["monthly_topup"], "monthly_topup")
        values["monthly_topup"] = topup
        if topup != user.monthly_topup:
            values["topup_set_at"] = utcnow()
    if "display_name" in changes:
        values["display_name"] = text(changes["display_name"], "display_name", 100)
    if "about" in changes:
        values["about"] = text(changes["about"], "about", 2000, single_line=False)
    if "url" in changes:
        values["url"] = optional_url(changes["url"], "url")
    if "show_flattrs" in changes:
        if not isinstance(changes["show_flattrs"], bool):
            raise Validation(said('show_flattrs must be true or false'), field="show_flattrs")
        values["show_flattrs"] = changes["show_flattrs"]
    if values:
        User.update(**values).where(User.id == user.id).execute()
    return User.get_by_id(user.id)
