"""Things: what can be flattred (SPEC §3). History is kept: DELETE archives."""

from __future__ import annotations

from peewee import IntegrityError

from ..db import database, select_composed
from ..errors import Forbidden, NotFound, Validation
from ..i18n import said
from ..models import CATEGORIES, Thing, User
from ..urls import normalize_url, twins
from .validate import flag, row_id, text

MAX_TAGS = 10


def clean_tags(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = value
    else:
        raise Validation(said('tags must be a list of strings or a comma-separated string'), field="tags")
    tags: list[str] = []
    for item in items:
        tag = text(item, "tags", 40).lower()
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise Validation(said('at most %(max_tags)s tags', max_tags=MAX_TAGS), field="tags")
    return ",".join(tags)


def _fields(data: dict, *, creating: bool) -> dict:
    allowed = {"url", "title", "description", "category", "language", "tags", "hidden"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Validation(said('%(name)s is not a field of a thing', name=unknown[0]), field=unknown[0])
    if not creating and "url" in data:
        raise Validation(said("a thing's url cannot change: register the new URL as a new thing"), field="url")
    values: dict = {}
    if creating:
        values["url"] = normalize_url(data.get("url"))
    if creating or "title" in data:
        values["title"] = text(data.get("title"), "title", 200, required=True)
    if "description" in data:
        values["description"] = text(data["description"], "description", 5000, single_line=False)
    if "category" in data or creating:
        category = data.get("category") or "text"
        if category not in CATEGORIES:
            raise Validation(said('category must be one of %(categories)s', categories=', '.join(CATEGORIES)), field="category")
        values["category"] = category
    if "language" in data:
        values["language"] = text(data["language"], "language", 35)
    if "tags" in data:
        values["tags"] = clean_tags(data["tags"])
    if "hidden" in data:
        values["hidden"] = flag(data["hidden"], "hidden")
    return values


def by_url(url: str) -> Thing | None:
    """The thing registered for a normalised URL or one of its twins
    (http/https, www.), with its owner; the first registered wins."""
    return Thing.select(Thing, User).join(User).where(Thing.url.in_(twins(url))).order_by(Thing.id).first()


def register_thing(owner: User, data: dict) -> Thing:
    """A new thing of `owner`: checked, then one transaction."""
    values = new_thing_fields(owner, data)
    with database.atomic():
        return insert_thing(owner, values)


def new_thing_fields(owner: User, data: dict) -> dict:
    """A new thing's fields, checked (a site verified by someone else is
    refused), before any transaction."""
    from .sites import check_site_owner

    values = _fields(data, creating=True)
    check_site_owner(values["url"], owner)
    return values


def insert_thing(owner: User, values: dict) -> Thing:
    """The thing's row, in the caller's transaction (it opens none)."""
    existing = by_url(values["url"])
    if existing is not None:
        raise Validation(said('%(url)s is already registered as thing %(id)s', url=values['url'], id=existing.id), field="url")
    try:
        return Thing.create(owner=owner, **values)
    except IntegrityError:  # registered meanwhile: the caller's transaction rolls back
        raise Validation(said('%(url)s is already registered', url=values['url']), field="url") from None


def get_thing(thing_id) -> Thing:
    thing_id = row_id(thing_id)
    if thing_id is None:
        raise NotFound(said('no such thing'))
    query = Thing.select(Thing, User).join(User).where(Thing.id == thing_id)
    thing = next(iter(select_composed("things.get_thing", query, (thing_id,))), None)
    if thing is None:
        raise NotFound(said('no thing with id %(thing_id)s', thing_id=thing_id))
    return thing


def lookup(url: str) -> Thing:
    try:
        normalized = normalize_url(url)
    except Validation:
        raise NotFound(said('no thing is registered for that URL')) from None
    thing = by_url(normalized)
    if thing is None:
        raise NotFound(said('no thing is registered for that URL'))
    return thing


def _own(user: User, thing_id) -> Thing:
    thing = get_thing(thing_id)
    if thing.owner_id != user.id and not user.is_operator:
        raise Forbidden(said("only the thing's owner can change it"))
    return thing


def edit_thing(user: User, thing_id, data: dict) -> Thing:
    thing = _own(user, thing_id)
    values = _fields(data, creating=False)
    if values:
        Thing.update(**values).where(Thing.id == thing.id).execute()
    return get_thing(thing.id)


def archive_thing(user: User, thing_id) -> Thing:
    thing = _own(user, thing_id)
    Thing.update(archived=True).where(Thing.id == thing.id).execute()
    return get_thing(thing.id)
