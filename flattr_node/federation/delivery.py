"""Draining the outbox (SPEC §6): each remote flattr is delivered to its
host's inbox, signed, until the host acknowledges it.

* 2xx: delivered (the host de-duplicates by the flattr's id, so a delivery
  whose answer was lost is simply sent again).
* 403 `credit_limit`: the peer takes no more flattrs for now; the row waits
  and is retried, and the peer's reason is kept to tell readers at once.
* other 4xx (the thing is gone or archived): refused for good; the flattr
  never counts (a remote flattr counts only once its host has it: rules.py).
* a flattr of a month this node has already planned its close of is not
  sent any more, and one acknowledged only after the plan is recorded as
  refused too: the close decided it did not count, and what the close
  planned never changes (the period row is locked while the outcome is
  written, as the plan holds it while it plans).
* no answer, 5xx, 401 (clocks apart): retried with exponential backoff,
  30 s doubling up to 6 hours, for ever; a restart loses nothing because
  the rows are in the database.

No database transaction is held while a peer is called.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

import requests

from .. import periods
from ..config import Config
from ..db import database, locked
from ..models import Flattr, Period, User, utcnow
from . import outbound, signing
from .models import Outbox, Peer, RemoteThing

log = logging.getLogger("flattr_node.federation")

FIRST_RETRY = 30  # seconds
LAST_RETRY = 6 * 3600


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY))


def flattr_uri(cfg: Config, flattr_id: int) -> str:
    return f"{cfg.base_url.rstrip('/')}/federation/flattrs/{flattr_id}"


def like(cfg: Config, flattr: Flattr, giver: str, thing_url: str) -> dict:
    """The ActivityStreams Like that carries one remote flattr."""
    from urllib.parse import urlsplit

    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Like",
        "id": flattr_uri(cfg, flattr.id),
        "actor": f"acct:{giver}@{urlsplit(cfg.base_url).netloc}",
        "object": thing_url,
        "period": flattr.period,
        "published": periods.iso(flattr.created_at, dt.UTC),
    }


@dataclass
class Due:
    id: int
    attempts: int
    peer: Peer
    flattr: Flattr
    username: str
    remote_id: int


def due(limit: int, force: bool = False, flattr_id: int | None = None) -> list[Due]:
    now = utcnow()
    query = (
        Outbox.select(Outbox.id, Outbox.attempts, Outbox.peer, Flattr.id, Flattr.period, Flattr.created_at, User.username, RemoteThing.remote_id)
        .join(Flattr, on=(Outbox.flattr == Flattr.id))
        .join(User, on=(Flattr.giver == User.id))
        .switch(Flattr)
        .join(RemoteThing, on=(RemoteThing.thing == Flattr.thing))
        .where(Outbox.status == "pending")
        .order_by(Outbox.id)
        .limit(limit)
    )
    if not force:
        query = query.where(Outbox.next_attempt_at <= now)
    if flattr_id is not None:
        query = query.where(Outbox.flattr == flattr_id)
    peers = {p.id: p for p in Peer.select().where(Peer.removed_at.is_null())}
    return [
        Due(oid, attempts, peers[peer_id], Flattr(id=fid, period=period, created_at=created), username, remote_id)
        for oid, attempts, peer_id, fid, period, created, username, remote_id in query.tuples()
        if peer_id in peers
    ]


def planned(period: str, lock: bool = False) -> bool:
    """Has this node's close of `period` planned it (what counts is decided)?
    With `lock`, inside a transaction: the period row is locked."""
    query = Period.select(Period.status, Period.stage).where(Period.name == period)
    state = (locked(query) if lock else query).first()
    return state is not None and (state.status == "closed" or (state.status == "closing" and state.stage != "plan"))


def too_late(period: str) -> str:
    return f"this node closed {period} before the owner's node had it"


def deliver_one(cfg: Config, row: Due, down: set | None = None, session=None) -> str:
    """Send one row; record the outcome. Returns delivered | waiting | refused.
    A peer that did not answer in this run (`down`) is not called again in it."""
    peer = row.peer
    flattr = row.flattr
    body = like(cfg, flattr, row.username, f"{peer.base_url}/things/{row.remote_id}")
    if planned(flattr.period):
        Outbox.update(status="refused", last_error=too_late(flattr.period)).where((Outbox.id == row.id) & (Outbox.status == "pending")).execute()
        return "refused"
    if down is not None and peer.id in down:
        status, answer = 0, {"error_description": "did not answer earlier in this run"}
    else:
        try:
            response = signing.send(cfg, "POST", peer.inbox_url, body, session=session)
            status, answer = response.status_code, _answer(response)
        except outbound.PeerUnreachable as e:
            status, answer = 0, {"error": "peer_unreachable", "error_description": e.description}
            if down is not None:
                down.add(peer.id)
    now = utcnow()
    with database.atomic():
        if 200 <= status < 300 and planned(flattr.period, lock=True):
            Outbox.update(status="refused", attempts=Outbox.attempts + 1, last_error=too_late(flattr.period)).where(Outbox.id == row.id).execute()
            return "refused"
        if 200 <= status < 300:
            Outbox.update(status="delivered", delivered_at=now, attempts=Outbox.attempts + 1, last_error="").where(Outbox.id == row.id).execute()
            if peer.refusal:
                Peer.update(refusal="").where(Peer.id == peer.id).execute()
                peer.refusal = ""
            return "delivered"
        why = f"{status or 'no answer'}: {answer.get('error_description') or answer.get('error') or ''}"[:500]
        if status == 403 and answer.get("error") == "credit_limit":
            Peer.update(refusal=str(answer.get("error_description", "its credit limit is reached"))[:500]).where(Peer.id == peer.id).execute()
        elif status in (404, 409, 413, 422):
            Outbox.update(status="refused", attempts=Outbox.attempts + 1, last_error=why).where(Outbox.id == row.id).execute()
            return "refused"
        Outbox.update(attempts=Outbox.attempts + 1, last_error=why, next_attempt_at=now + backoff(row.attempts + 1)).where(Outbox.id == row.id).execute()
    log.info("federation: delivery of flattr %s to %s failed (%s); retrying later", flattr.id, peer.base_url, why)
    return "waiting"


def deliver_now(cfg: Config, flattr_id: int) -> str:
    """Deliver one remote flattr at once (the popup flow, after the flattr's
    transaction committed); what it cannot deliver waits in the outbox."""
    rows = due(1, force=True, flattr_id=flattr_id)
    return deliver_one(cfg, rows[0]) if rows else "waiting"


def states(flattr_ids) -> dict[int, tuple[str, str]]:
    """{flattr id: (delivery status, last error)} of those that are remote."""
    ids = [int(i) for i in flattr_ids]
    if not ids:
        return {}
    rows = Outbox.select(Outbox.flattr, Outbox.status, Outbox.last_error).where(Outbox.flattr.in_(ids)).tuples()
    return {fid: (status, error) for fid, status, error in rows}


def not_held_reason(status: str, last_error: str, host: str) -> str:
    """What the reader is told of a remote flattr its host does not have."""
    if status == "pending":
        return f"the owner's node ({host}) had not received this flattr when this node closed the month"
    detail = re.sub(r"^(\d{3}|no answer): ", "", last_error).strip() or "it refused it"
    return f"the owner's node ({host}) does not have this flattr, so it does not count: {detail}"


def _answer(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def drain(cfg: Config, limit: int = 1000, force: bool = False, progress=None) -> dict:
    """Deliver what is due (everything pending with `force`, as `peer sync`)."""
    counts = {"delivered": 0, "waiting": 0, "refused": 0}
    rows = due(limit, force)
    down: set = set()
    with requests.Session() as session:  # one connection per peer for the run
        for i, row in enumerate(rows, 1):
            counts[deliver_one(cfg, row, down, session)] += 1
            if progress:
                progress(i, len(rows))
    return counts


def pending_count() -> int:
    return Outbox.select().where(Outbox.status == "pending").count()
