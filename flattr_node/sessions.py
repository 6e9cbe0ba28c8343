"""Sign-in sessions the node can end (migration 5).

The session cookie is signed, so the node cannot take one back by itself: a
cookie copied before sign-out would still work. So each sign-in gets a row
here, the cookie carries its random id, and a cookie whose row has ended
(signed out, password changed or reset, "sign out everywhere") loads no one.
Only the id's SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets

from peewee import CharField, DateTimeField, ForeignKeyField

from .models import BaseModel, User, utcnow


class UserSession(BaseModel):
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    digest = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    ended_at = DateTimeField(null=True)

    class Meta:
        table_name = "user_session"


SESSION_MODELS = [UserSession]


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "replace")).hexdigest()


def start(user: User) -> str:
    """A new session for `user`: its id, for the cookie."""
    sid = secrets.token_urlsafe(32)
    UserSession.create(user=user.id, digest=_digest(sid))
    return sid


def is_live(sid, user_id: int) -> bool:
    if not isinstance(sid, str) or not sid:
        return False
    return (
        UserSession.select()
        .where((UserSession.digest == _digest(sid)) & (UserSession.user == user_id) & UserSession.ended_at.is_null())
        .exists()
    )


def end(sid) -> None:
    if isinstance(sid, str) and sid:
        UserSession.update(ended_at=utcnow()).where((UserSession.digest == _digest(sid)) & UserSession.ended_at.is_null()).execute()


def end_all(user_id: int, keep: str | None = None) -> int:
    """End every session of a person but `keep` (the one asking); how many ended."""
    query = UserSession.update(ended_at=utcnow()).where((UserSession.user == user_id) & UserSession.ended_at.is_null())
    if keep:
        query = query.where(UserSession.digest != _digest(keep))
    return query.execute()
