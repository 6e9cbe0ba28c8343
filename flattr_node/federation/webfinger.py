"""WebFinger (RFC 7033) for the people of this node, and its client side
(finding a reader's home node from their handle)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from ..config import Config
from ..errors import NotFound, Validation
from ..models import User
from . import outbound
from .models import Peer

SUBSCRIBE = "http://ostatus.org/schema/1.0/subscribe"
PROFILE = "http://webfinger.net/rel/profile-page"


def describe(cfg: Config, resource: str) -> dict:
    if not resource:
        raise Validation("resource is required (acct:name@host)", field="resource")
    if not resource.startswith("acct:") or resource.count("@") != 1:
        raise NotFound("this node answers only for acct:name@host resources")
    name, host = resource[5:].split("@")
    base = cfg.base_url.rstrip("/")
    if host.lower() != urlsplit(base).netloc.lower():
        raise NotFound(f"{host} is not this node")
    user = User.get_or_none(User.username == name) if "\x00" not in name else None
    if user is None or user.is_suspended:
        raise NotFound(f"no person called {name!r} on this node")
    profile = f"{base}/users/{user.username}"
    return {
        "subject": f"acct:{user.username}@{urlsplit(base).netloc}",
        "aliases": [profile],
        "links": [
            {"rel": PROFILE, "type": "text/html", "href": profile},
            {"rel": SUBSCRIBE, "template": f"{base}/authorize_interaction?uri={{uri}}"},
        ],
    }


def interaction_template(cfg: Config, peer: Peer, handle: str) -> str:
    """Ask the reader's home node (a peer) for their interaction template."""
    url = f"{peer.base_url}/.well-known/webfinger?{urlencode({'resource': 'acct:' + handle})}"
    response = outbound.fetch(cfg, "GET", url)
    if response.status_code == 404:
        raise NotFound(f"{handle} has no account on {urlsplit(peer.base_url).netloc}")
    data = outbound.json_of(response)
    for link in data.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == SUBSCRIBE and isinstance(link.get("template"), str):
            return link["template"]
    raise outbound.PeerUnreachable(f"{urlsplit(peer.base_url).netloc} gave no interaction template for {handle}")
