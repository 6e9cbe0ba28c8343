"""From things and auto-submit requests to plugin_bridge's markup inputs.

The node renders its buttons, badges and oEmbed documents with the same pure
functions that a blog platform imports (plugin_bridge); this module only looks
the thing up and hands plain values over.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from plugin_bridge import AutoSubmit, ThingRef

from ..config import Config
from ..errors import NotFound, Validation
from ..i18n import said
from ..models import Thing, User
from ..urls import normalize_url
from . import flattring, sites
from . import things as things_service

_THING_PATH = re.compile(r"^/things/(\d{1,18})(?:/flattr)?/?$")


def thing_ref(cfg: Config, thing: Thing) -> ThingRef:
    return ThingRef(
        node=cfg.base_url,
        id=thing.id,
        url=thing.url,
        title=thing.title,
        owner=User.select(User.username).where(User.id == thing.owner_id).scalar(),
        flattrs_this_period=flattring.count_this_period(cfg, thing.id),
        description=thing.description,
    )


def autosubmit_ref(cfg: Config, params: dict) -> ThingRef | AutoSubmit:
    """The thing an auto-submit request names: the registered one, else a
    not-yet-registered AutoSubmit (refused if the site belongs to someone else)."""
    existing, owner, fields = flattring.thing_for_autosubmit(params)
    if existing is not None:
        return thing_ref(cfg, existing)
    sites.check_autosubmit_owner(fields["url"], owner)
    title = fields.get("title") or fields["url"]
    if len(title) > 200 or len(fields.get("description") or "") > 5000:
        raise Validation(said('title (200) or description (5000 characters) is too long'), field="title")
    return AutoSubmit(
        node=cfg.base_url,
        user_id=owner.username,
        url=fields["url"],
        title=title,
        description=fields.get("description") or "",
    )


def resolve(cfg: Config, url: str) -> ThingRef | AutoSubmit:
    """What an oEmbed `url` names: a thing page on the node, an auto-submit URL
    or a registered thing's own URL. NotFound for anything else."""
    if not isinstance(url, str) or not url.strip():
        raise NotFound(said('url is required'))
    url = url.strip()
    try:
        normalized = normalize_url(url)
    except Validation:
        raise NotFound(said('no thing on this node for that URL')) from None
    base = urlsplit(normalize_url(cfg.base_url))
    parts = urlsplit(normalized)
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        path = parts.path[len(base.path.rstrip("/")) :] if parts.path.startswith(base.path.rstrip("/")) else parts.path
        match = _THING_PATH.match(path)
        if match:
            return thing_ref(cfg, things_service.get_thing(match.group(1)))
        params = flattring.autosubmit_params(cfg, url)
        if params is not None:
            try:
                return autosubmit_ref(cfg, params)
            except Validation as e:
                raise NotFound(said('not a valid auto-submit URL: %(description)s', description=e.description)) from None
    return thing_ref(cfg, things_service.lookup(url))


def badge_count(cfg: Config, url: str) -> int:
    """This period's count for a registered URL; 0 for one not registered yet."""
    try:
        return flattring.count_this_period(cfg, things_service.lookup(url).id)
    except NotFound:
        return 0


def snippet_for(
    cfg: Config,
    platform: str,
    *,
    thing_id=None,
    url: str | None = None,
    username: str | None = None,
    size: str = "default",
    with_script: bool = True,
) -> str:
    """The markup to paste for a thing, an auto-submit URL of `username`, or
    (with a username and no URL) a theme template for every post."""
    import plugin_bridge as pb

    if platform not in pb.PLATFORMS:
        raise Validation(said('platform must be one of %(platforms)s', platforms=', '.join(pb.PLATFORMS)), field="platform")
    if size not in pb.SIZES:
        raise Validation(said('size must be one of %(sizes)s', sizes=', '.join(pb.SIZES)), field="size")
    if (thing_id is None) == (username is None):
        raise Validation(said('give either a thing id, or a username (with a URL, or alone for a template)'), field="thing")
    if thing_id is not None:
        if url is not None:
            raise Validation(said('give a URL only with a username (auto-submit), not with a thing id'), field="url")
        return pb.snippet(platform, thing_ref(cfg, things_service.get_thing(thing_id)), size, with_script)
    owner = User.get_or_none(User.username == str(username).strip().lower())
    if owner is None:
        raise NotFound(said('no person called %(username)s on this node', username=repr(username)))
    if url is None:
        try:
            return pb.template_snippet(platform, cfg.base_url, owner.username, size)
        except ValueError as e:
            raise Validation(str(e), field="platform") from None
    target = autosubmit_ref(cfg, {"user_id": owner.username, "url": url})
    return pb.snippet(platform, target, size, with_script)
