"""The home node's side of a remote flattr (SPEC §6): a reader flattrs a
thing hosted on a peer with their one budget.

The remote thing is an ordinary `thing` row (url = its page on the peer)
owned by a proxy person `name@host` that nobody can sign in as, so R3, R6
and R7 are the very same code as for local things and the month close
splits budgets over local and remote flattrs alike. The flattr and its
outbox row are written in one transaction (the transactional outbox): the
click never waits for the peer.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from .. import ledger
from ..config import Config
from ..db import database, execute
from ..errors import Forbidden, NotFound
from ..models import Flattr, Thing, User, utcnow
from ..services import flattring
from . import outbound
from .models import Outbox, Peer, RemoteThing
from .peers import active_peer_for

THING_PATH = re.compile(r"^/things/(\d{1,18})/?$")


def match(url: str) -> tuple[Peer, int] | None:
    """(peer, thing id on it) if `url` is a thing page of an active peer."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    peer = active_peer_for(url)
    if peer is None:
        return None
    rest = urlsplit(url[len(peer.base_url) :] or "/")
    found = THING_PATH.match(rest.path)
    if found is None or rest.query or rest.fragment:
        return None
    return peer, int(found.group(1))


def proxy_name(owner: str, peer: Peer) -> str:
    """The proxy person of a remote owner: `name@host[:port]`. Local names
    cannot contain '@', so the two never meet."""
    return f"{owner}@{urlsplit(peer.base_url).netloc}"[:40]


def _proxy_owner(owner: str, peer: Peer) -> User:
    name = proxy_name(owner, peer)
    user = User.get_or_none(User.username == name)
    if user is None:
        user = User.create(
            username=name, email="", password_hash="!remote", display_name=name, is_suspended=True, monthly_budget=0,
            url=peer.base_url,
        )  # fmt: skip
        ledger.open_user_accounts(user)
    return user


def page_of(thing: Thing) -> str:
    row = RemoteThing.get_or_none(RemoteThing.thing == thing.id)
    return row.page_url if row is not None else ""


def known_thing(peer: Peer, remote_id: int) -> Thing | None:
    return (
        Thing.select()
        .join(RemoteThing, on=(RemoteThing.thing == Thing.id))
        .where((RemoteThing.peer == peer) & (RemoteThing.remote_id == remote_id))
        .first()
    )


def learn_thing(cfg: Config, peer: Peer, remote_id: int) -> Thing:
    """Fetch a thing from its host (before any transaction) and keep it."""
    response = outbound.fetch(cfg, "GET", f"{peer.base_url}/api/v1/things/{remote_id}")
    if response.status_code == 404:
        raise NotFound(f"{urlsplit(peer.base_url).netloc} has no thing {remote_id}")
    data = outbound.json_of(response)
    owner = (data.get("owner") or {}).get("username")
    title = data.get("title")
    if response.status_code != 200 or not isinstance(owner, str) or not isinstance(title, str) or data.get("id") != remote_id:
        raise outbound.PeerUnreachable(f"{urlsplit(peer.base_url).netloc} did not describe thing {remote_id}")
    with database.atomic():
        thing = known_thing(peer, remote_id)
        if thing is None:
            proxy = _proxy_owner(owner[:40], peer)
            thing = Thing.create(
                owner=proxy, url=f"{peer.base_url}/things/{remote_id}", title=title[:200],
                description=str(data.get("description") or "")[:2000], archived=bool(data.get("archived")),
            )  # fmt: skip
            page = data.get("url") if isinstance(data.get("url"), str) and data["url"].startswith(("https://", "http://")) else ""
            RemoteThing.create(thing=thing, peer=peer, remote_id=remote_id, owner_name=owner[:40], page_url=page[:2048])
    return thing


def flattr_remote(cfg: Config, giver: User, peer: Peer, remote_id: int, now: dt.datetime | None = None) -> Flattr:
    """R3, R6, R7 as for a local thing; the outbox row in the same transaction."""
    if peer.refusal:
        raise Forbidden(f"{urlsplit(peer.base_url).netloc} does not take flattrs from this node right now: {peer.refusal}")
    thing = known_thing(peer, remote_id) or learn_thing(cfg, peer, remote_id)
    with database.atomic():
        flattr = flattring.record(cfg, giver, thing.id, now or utcnow())
        now = Outbox.created_at.db_value(utcnow())
        execute(  # SQL text: this is every remote click's extra write (bench/federation.py)
            "INSERT INTO outbox (flattr_id, peer_id, status, attempts, next_attempt_at, last_error, created_at) "
            "VALUES (?, ?, 'pending', 0, ?, '', ?)",
            (flattr.id, peer.id, now, now),
        )
    return flattr


def describe_remote(data: dict, flattr: Flattr) -> None:
    """Add to a flattr's JSON its host node and its delivery (pending,
    delivered, refused), and, when it does not count, why: its host does
    not have it (rules.py: held), or R8 across nodes (the host's answer, or
    the lack of one)."""
    from . import delivery
    from .models import PeerGave

    url = data["thing"]["url"]
    node = data["thing"]["node"] = url.rsplit("/things/", 1)[0]
    status, error = delivery.states([flattr.id]).get(flattr.id, ("delivered", ""))
    data["delivery"] = status
    if status == "refused":
        data["reason"] = delivery.not_held_reason(status, error, urlsplit(node).netloc)
    elif data["status"] == "not_counted":
        row = PeerGave.get_or_none((PeerGave.period == flattr.period) & (PeerGave.user == flattr.owner_id))
        if row is not None and row.reason:
            data["reason"] = row.reason
        elif status == "pending":
            data["reason"] = delivery.not_held_reason(status, error, urlsplit(node).netloc)
        else:
            data["reason"] = "the owner's node did not confirm in time"
