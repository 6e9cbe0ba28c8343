"""The node's languages: English, German and Swedish (gettext catalogs in
flattr_node/translations/). Pages get theirs through Flask-Babel; e-mails
sent by the scheduler, outside any request, through `translations(lang)`."""

from __future__ import annotations

import functools
from pathlib import Path

from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "de", "sv")
NAMES = {"en": "English", "de": "Deutsch", "sv": "Svenska"}
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def clean(lang: str | None) -> str:
    """A language this node speaks, from whatever a person or browser sent."""
    lang = (lang or "").strip().lower().replace("_", "-").split("-")[0]
    return lang if lang in LANGUAGES else "en"


@functools.cache
def translations(lang: str) -> NullTranslations:
    lang = clean(lang)
    if lang == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [lang], domain="messages")


# --- pages (Flask-Babel) ----------------------------------------------------------

COOKIE = "lang"
COOKIE_AGE = 365 * 24 * 3600


def chosen_language() -> str | None:
    """The language picked with the switch: the person's, else the browser's cookie."""
    from flask import request
    from flask_login import current_user

    if current_user.is_authenticated and getattr(current_user, "language", ""):
        return clean(current_user.language)
    value = request.cookies.get(COOKIE, "")
    return value if value in LANGUAGES else None


def page_language() -> str:
    """The switch's choice, else the best of Accept-Language, else English."""
    from flask import g, request

    if "page_language" not in g:
        g.page_language = chosen_language() or request.accept_languages.best_match(LANGUAGES) or "en"
    return g.page_language


def init_app(app, cfg=None) -> None:
    from flask_babel import Babel

    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    Babel(app, locale_selector=page_language)

    app.add_template_filter(state_word, "state")

    @app.context_processor
    def language_context():
        return {"page_language": page_language, "languages": [(code, NAMES[code]) for code in LANGUAGES]}


def state_word(value) -> str:
    """A stored state or category (`pending`, `not_counted`, `images`) in the page's language."""
    from flask_babel import gettext as _

    words = {
        "pending": _("pending"), "confirmed": _("confirmed"), "cancelled": _("cancelled"),
        "requested": _("requested"), "paid": _("paid"), "failed": _("failed"),
        "open": _("open"), "closing": _("closing"), "closed": _("closed"),
        "counted": _("counted"), "not_counted": _("not counted"),
        "text": _("text"), "images": _("images"), "video": _("video"), "audio": _("audio"),
        "software": _("software"), "people": _("people"), "rest": _("other"),
    }  # fmt: skip
    return words.get(str(value), str(value))
