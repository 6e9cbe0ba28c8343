"""The host node's inbox (SPEC §6): remote flattrs delivered by peers.

A delivery is an ActivityStreams `Like`, signed by the home node. The host
checks the signature (signing.verify), that the flattr's id lies under the
sender's own base URL (a peer speaks only for its own readers), that the
object is a thing of this node that can be flattred, and that the sender
is within its credit limit; then it records the flattr once, with the
owner's `flattr.created` webhook messages in the same transaction: a second
delivery of the same id is acknowledged and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from .. import periods, webhooks
from ..config import Config
from ..db import database, execute
from ..errors import FlattrError, Forbidden, Validation
from ..models import Thing, utcnow
from ..money import format_amount
from . import signing
from .models import InboxFlattr, Peer
from .peers import owed_by

MAX_TEXT = 2048


class CreditLimit(FlattrError):
    code, status = "credit_limit", 403


def _parse(cfg: Config, peer: Peer, data) -> tuple[str, int, str, str, dt.datetime]:
    if not isinstance(data, dict) or data.get("type") != "Like":
        raise Validation("the body must be a JSON object of type Like")
    fid, actor, obj, period, published = (data.get(k) for k in ("id", "actor", "object", "period", "published"))
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT for v in (fid, actor, obj, period, published)):
        raise Validation("a Like needs id, actor, object, period and published as strings")
    if not fid.startswith(peer.base_url + "/"):
        raise Forbidden("a peer can only deliver flattrs under its own base URL")
    if not actor.startswith("acct:") or not actor.endswith("@" + urlsplit(peer.base_url).netloc):
        raise Forbidden("the actor must be a person of the sending node")
    base = cfg.base_url.rstrip("/")
    found = re.match(r"^/things/(\d{1,18})$", obj[len(base) :]) if obj.startswith(base + "/") else None
    if found is None:
        raise Validation("the object must be a thing page of this node")
    if not periods.is_valid(period):
        raise Validation("period must be YYYY-MM")
    try:
        created = dt.datetime.fromisoformat(published).astimezone(dt.UTC).replace(tzinfo=None)
    except ValueError:
        raise Validation("published must be an ISO 8601 date with offset") from None
    return fid, int(found.group(1)), actor, period, created


def receive(cfg: Config, method: str, url: str, headers: dict, body: bytes, data) -> tuple[int, dict]:
    """Verify, check, record once. Returns (HTTP status, answer)."""
    peer, nonce = signing.verify(method, url, headers, body)
    fid, thing_id, actor, period, created = _parse(cfg, peer, data)
    with database.atomic():
        signing.remember_nonce(peer, nonce)
        existing = InboxFlattr.get_or_none((InboxFlattr.peer == peer) & (InboxFlattr.remote_id == fid))
        if existing is not None:
            return 200, {"status": "duplicate", "id": fid}
        thing = Thing.get_or_none(Thing.id == thing_id)
        if thing is None:
            raise Validation(f"this node has no thing {thing_id}")
        if thing.archived:
            raise Validation("this thing is archived and can no longer be flattred")
        owed = owed_by(peer)
        if peer.credit_limit is not None and owed > peer.credit_limit:
            raise CreditLimit(
                f"{urlsplit(cfg.base_url).netloc} takes no more flattrs from your node until it has paid "
                f"{format_amount(owed, cfg.currency)} it owes (its credit limit is {format_amount(peer.credit_limit, cfg.currency)})"
            )
        row = execute(
            "INSERT INTO inbox_flattr (peer_id, remote_id, thing_id, giver, period, created_at, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (peer_id, remote_id) DO NOTHING RETURNING id",
            (peer.id, fid, thing.id, actor, period, InboxFlattr.created_at.db_value(created), InboxFlattr.received_at.db_value(utcnow())),
        ).fetchone()
        if row is not None:  # recorded now, not by a concurrent delivery of the same id: the owner's webhooks, once
            webhooks.enqueue("flattr.created", thing.owner_id, f"{webhooks.INBOX_SUBJECT}{row[0]}")
    return 202, {"status": "accepted", "id": fid}
