"""The language switch on every page (docs/subscriptions.md, "Languages")."""

from __future__ import annotations

from flask import abort, redirect, request
from flask_login import current_user

from .. import i18n
from ..i18n import said
from ..models import User
from . import bp


def _back() -> str:
    """Back to the page the switch was on: a path of this node only."""
    target = request.values.get("next", "") or "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _switch(lang: str):
    if lang not in i18n.LANGUAGES:
        abort(404, said("this node speaks %(languages)s", languages=", ".join(i18n.LANGUAGES)))
    response = redirect(_back())
    response.set_cookie(i18n.COOKIE, lang, max_age=i18n.COOKIE_AGE, samesite="Lax", httponly=True, secure=request.is_secure)
    return response


@bp.get("/language/<lang>")
def language_link(lang: str):
    """Anonymous visitors: a link that sets a cookie, nothing more."""
    return _switch(lang)


@bp.post("/language")
def set_language():
    """Signed-in people: a form (with its CSRF token) that also remembers it for the person."""
    lang = request.form.get("lang", "")
    response = _switch(lang)
    if current_user.is_authenticated:
        User.update(language=lang).where(User.id == current_user.id).execute()
    return response
