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


def init_app(app, cfg) -> None:
    """Who is signed in (flask-login, a session row per sign-in) and the
    CSRF check of every request that a cookie could authorise."""
    from flask import request
    from flask_login import LoginManager
    from flask_wtf.csrf import CSRFError, CSRFProtect

    from .oauth import NO_CSRF

    csrf = CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "web.signin"

    @login_manager.user_loader
    def load_user(user_id: str):
        try:
            user = User.get_or_none(User.id == int(user_id))
        except ValueError:
            return None
        return user if user is not None and user.is_active else None

    @app.before_request
    def csrf_guard():
        """Cookie requests that change state need a CSRF token; token requests
        carry no cookie authority (the API ignores cookies when a token is sent)."""
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return None
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            # Only a token that is valid carries the request's authority; a
            # made-up one must not switch the CSRF check off for a cookie.
            from .services.people import user_for_token

            if user_for_token(request.headers["Authorization"][7:].strip()) is not None:
                return None
            if request.path.startswith("/api/"):
                return None  # the API answers 401 for that token and ignores cookies
        if request.path in NO_CSRF or request.path.startswith("/rest/"):
            return None  # apps authenticated by their secret or token, never by a cookie
        if request.endpoint == "web.unsubscribe":
            return None  # RFC 8058: the mail program posts it; its signed token is the proof
        if request.path.startswith("/federation/"):
            return None  # node-to-node requests: signed (RFC 9421), never cookie-authenticated
        from flask_login import current_user

        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return None  # the API answers 401
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError):
        from .app import error_response, wants_json
        from .i18n import said

        if wants_json():
            return error_response("forbidden", said("CSRF check failed: %(reason)s", reason=e.description), 403)
        # A person's browser: their session ended (cookies cleared, the node's
        # key changed) or the page was opened in another session. Say so in
        # words, and that nothing changed.
        if "session" in (e.description or ""):
            what = said("Your session has expired, so this form was not sent and nothing was changed. Open the page again and send the form once more.")
        else:
            what = said("This form is out of date (it was opened before you signed in or out), so it was not sent and nothing was changed. Open the page again and send the form once more.")
        return error_response("session_expired", what, 403)
