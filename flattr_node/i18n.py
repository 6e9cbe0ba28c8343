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
