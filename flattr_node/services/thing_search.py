"""Searching things (Flattr v2's things/search): public, visible things only."""

from __future__ import annotations

from peewee import fn

from ..errors import Validation
from ..i18n import said
from ..models import CATEGORIES, Flattr, Thing, User
from .community import _tag_filter
from .validate import text

MAX_COUNT = 100


def search(query="", url="", tags="", language="", category="", user="", sort="", page=1, count=30) -> tuple[int, list[Thing]]:
    """(total, one page of things): free text in title and description,
    filters by URL prefix, tags (all of them), languages, categories (commas:
    any of them) and owner; newest first, or most flattred (sort=flattrs)."""
    where = (~Thing.hidden) & (~Thing.archived)
    query = text(query, "query", 200)
    if query:
        for word in query.split():
            where &= Thing.title.contains(word) | Thing.description.contains(word)
    if url:
        where &= Thing.url.startswith(text(url, "url", 2048))
    for tag in [t.strip().lower() for t in text(tags, "tags", 500).split(",") if t.strip()]:
        where &= _tag_filter(tag)
    languages = [x for x in text(language, "language", 200).split(",") if x]
    if languages:
        where &= Thing.language.in_(languages)
    categories = [x for x in text(category, "category", 200).split(",") if x]
    if any(c not in CATEGORIES for c in categories):
        raise Validation(said('category must be one of %(categories)s', categories=', '.join(CATEGORIES)), field="category")
    if categories:
        where &= Thing.category.in_(categories)
    if user:
        where &= User.username == text(user, "user", 40).lower()
    page, count = _positive(page, "page", 10**6), _positive(count, "count", MAX_COUNT)
    base = Thing.select(Thing, User).join(User).where(where)
    total = base.count()
    if sort in ("flattrs", "trend", "flattrs_month", "flattrs_week", "flattrs_day"):
        flattrs = Flattr.select(fn.COUNT(Flattr.id)).where(Flattr.thing == Thing.id)
        base = base.order_by(flattrs.desc(), Thing.id.desc())
    elif sort in ("", "relevance", None):
        base = base.order_by(Thing.id.desc())
    else:
        raise Validation(said('sort must be relevance, trend, flattrs, flattrs_month, flattrs_week or flattrs_day'), field="sort")
    return total, list(base.paginate(page, count))


def _positive(value, field: str, most: int) -> int:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise Validation(said('%(field)s must be a whole number', field=field), field=field)
    number = int(value)
    if not 1 <= number <= most:
        raise Validation(said('%(field)s must be between 1 and %(most)s', field=field, most=most), field=field)
    return number
