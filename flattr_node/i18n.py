"""The node's languages: English, German and Swedish (gettext catalogs in
flattr_node/translations/). Pages get theirs through Flask-Babel; e-mails
sent by the scheduler, outside any request, through `translations(lang)`.

What the services say (an error's description) is written with `said()`:
English text, as the API, the CLI and the logs show it, that keeps its
message and values so that a page can say it in its reader's language
(`say`). `pybabel extract` finds it with `-k said -k said_n:1,2`."""

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


# --- what the services say -------------------------------------------------------


class Amount:
    """An amount inside a `said` message: in English where the API shows it,
    in the reader's locale on a page. Without a currency, the node's (a
    service that has no Config at hand)."""

    def __init__(self, cents: int, currency: str | None = None):
        self.cents, self.currency = int(cents), currency

    def __str__(self) -> str:
        return self.shown("en")

    def shown(self, locale) -> str:
        from flask import current_app, has_app_context

        from .money import format_amount

        currency = self.currency or (current_app.config["NODE"].currency if has_app_context() else "EUR")
        return format_amount(self.cents, currency, locale)


class Said(str):
    """English text (its str value) that remembers its message and values."""

    msgid: str
    plural: str | None
    num: int | None
    params: dict

    def __new__(cls, msgid: str, plural: str | None, num: int | None, params: dict):
        chosen = msgid if plural is None or num == 1 else plural
        self = super().__new__(cls, chosen % {k: _shown(v, None, "en") for k, v in params.items()} if params else chosen)
        self.msgid, self.plural, self.num, self.params = msgid, plural, num, params
        return self

    def __reduce__(self):  # copy and pickle make it again from its parts
        return Said, (self.msgid, self.plural, self.num, self.params)

    def shown(self, t: NullTranslations, locale) -> str:
        text = t.ngettext(self.msgid, self.plural, self.num) if self.plural is not None else t.gettext(self.msgid)
        return text % {k: _shown(v, t, locale) for k, v in self.params.items()} if self.params else text

    def as_dict(self) -> dict:
        """For a JSON column (a notice's params): `from_dict` makes it again."""
        params = {k: v.as_dict() if isinstance(v, Said) else v if isinstance(v, int) else str(v) for k, v in self.params.items()}
        return {"msgid": self.msgid, "plural": self.plural, "num": self.num, "params": params}


def from_dict(d: dict) -> Said:
    params = {k: from_dict(v) if isinstance(v, dict) else v for k, v in d["params"].items()}
    return Said(d["msgid"], d["plural"], d["num"], params)


def said(msgid: str, **params) -> Said:
    """`said("no deposit %(ref)s", ref=ref)`: English now, any language on a page."""
    return Said(msgid, None, None, params)


def said_n(one: str, many: str, num: int, **params) -> Said:
    """The plural form: `said_n("%(num)d tag at most", "%(num)d tags at most", 20)`."""
    params.setdefault("num", num)
    return Said(one, many, num, params)


def _shown(value, t, locale):
    if isinstance(value, Said):
        return value.shown(t, locale) if t is not None else str(value)
    if isinstance(value, Amount):
        return value.shown(locale)
    return value


def say(text, locale=None) -> str:
    """What a page shows for a service's words: a `said` message, or a plain
    string that the catalogs may know, in the page's language."""
    from flask_babel import get_locale, get_translations

    t = get_translations()
    if isinstance(text, Said):
        return text.shown(t, locale or get_locale() or "en")
    return t.gettext(str(text)) if text else ""


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
