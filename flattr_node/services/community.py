"""The community pages: public profiles and the directory of creators."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from peewee import JOIN, Case, fn

from .. import periods
from ..config import Config
from ..errors import NotFound, Validation
from ..i18n import said
from ..models import CATEGORIES, Flattr, Thing, User, utcnow
from .validate import text

DIRECTORY_LIMIT = 200


@dataclass
class Creator:
    user: User
    things: int
    flattrs_this_period: int


def _visible_things():
    return (~Thing.hidden) & (~Thing.archived)


def _tag_filter(tag: str):
    return (Thing.tags == tag) | Thing.tags.startswith(tag + ",") | Thing.tags.endswith("," + tag) | Thing.tags.contains("," + tag + ",")


def directory(cfg: Config, q: str = "", category: str = "", tag: str = "", now: dt.datetime | None = None) -> list[Creator]:
    """The node's creators (people with a visible thing), most flattred this
    period first, filtered by name, category and tag."""
    q = text(q, "q", 100)
    tag = text(tag, "tag", 40).lower()
    if category and category not in CATEGORIES:
        raise Validation(said('category must be one of %(categories)s', categories=', '.join(CATEGORIES)), field="category")
    period = periods.name_of(now or utcnow(), cfg.tz)
    things = Thing.select(Thing.owner, fn.COUNT(Thing.id)).where(_visible_things())
    if category:
        things = things.where(Thing.category == category)
    if tag:
        things = things.where(_tag_filter(tag))
    counts = dict(things.group_by(Thing.owner).tuples())
    if not counts:
        return []
    people = User.select().where(User.id.in_(list(counts)) & ~User.is_suspended)
    if q:
        people = people.where(User.username.contains(q) | User.display_name.contains(q))
    people = list(people)
    flattrs = dict(
        Flattr.select(Flattr.owner, fn.COUNT(Flattr.id))
        .where((Flattr.period == period) & Flattr.owner.in_([u.id for u in people]))
        .group_by(Flattr.owner)
        .tuples()
    ) if people else {}
    out = [Creator(u, counts[u.id], flattrs.get(u.id, 0)) for u in people]
    out.sort(key=lambda c: (-c.flattrs_this_period, c.user.username))
    return out[:DIRECTORY_LIMIT]


@dataclass
class Profile:
    user: User
    things: list[Thing]
    flattred: list[Flattr] | None  # None: the person does not show them


def profile(cfg: Config, username: str, now: dt.datetime | None = None) -> Profile:
    user = User.get_or_none(User.username == str(username).strip().lower())
    if user is None or user.is_suspended:
        raise NotFound(said('no person called %(username)s on this node', username=repr(username)))
    period = periods.name_of(now or utcnow(), cfg.tz)
    this_period = fn.SUM(Case(None, [((Flattr.period == period), 1)], 0))
    things = list(
        Thing.select(Thing, fn.COUNT(Flattr.id).alias("total"), fn.COALESCE(this_period, 0).alias("this_period"))
        .join(Flattr, JOIN.LEFT_OUTER, on=(Flattr.thing == Thing.id))
        .where((Thing.owner == user.id) & ~Thing.hidden)
        .group_by(Thing)
        .order_by(Thing.archived, Thing.created_at.desc(), Thing.id.desc())
    )
    flattred = None
    if user.show_flattrs:
        flattred = list(
            Flattr.select(Flattr, Thing)
            .join(Thing)
            .where((Flattr.giver == user.id) & ~Thing.hidden)
            .order_by(Flattr.created_at.desc(), Flattr.id.desc())
            .limit(50)
        )
    return Profile(user, things, flattred)
