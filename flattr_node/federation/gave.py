"""R8 across nodes (SPEC §6): the host node is the authority on whether its
people gave in a period.

Before a period is closed, the home node asks each peer whose things its
readers flattred in it, signed: `POST /federation/gave {"period", "owners"}`,
and stores the answers (table peer_gave). The close itself never calls the
network: it reads the stored answers.

Our rule for a peer that does not answer (decided, deterministic, shown to
the reader): the home node first delivers everything of that period still
in its outbox; a peer that still has undelivered flattrs of the period, or
that does not answer within `federation_timeout`, is taken as "its owners
did not give": those remote flattrs are *not counted* (they take no share,
the giver's budget is split over the rest, nothing is owed to that peer),
and the reader sees why: the owner's node did not confirm in time. A later
answer changes nothing once the period is planned.
"""

from __future__ import annotations

import logging

from .. import periods
from ..config import Config
from ..db import database
from ..errors import Validation
from ..i18n import said
from ..models import Flattr, Period, User, utcnow
from . import delivery, outbound, signing
from .models import Outbox, Peer, PeerGave, RemoteThing

log = logging.getLogger("flattr_node.federation")

MAX_OWNERS = 1000


# --- the home node's side -------------------------------------------------------


def _remote_owners(period: str) -> dict[int, dict[str, int]]:
    """{peer id: {owner name on the peer: proxy user id}} of the period's remote flattrs."""
    rows = (
        Flattr.select(RemoteThing.peer, RemoteThing.owner_name, Flattr.owner)
        .join(RemoteThing, on=(RemoteThing.thing == Flattr.thing))
        .where(Flattr.period == period)
        .distinct()
        .tuples()
    )
    out: dict[int, dict[str, int]] = {}
    for peer_id, name, user_id in rows:
        out.setdefault(peer_id, {})[name] = user_id
    return out


def _undelivered(peer: Peer, period: str) -> int:
    return (
        Outbox.select()
        .join(Flattr, on=(Outbox.flattr == Flattr.id))
        .where((Outbox.peer == peer) & (Outbox.status == "pending") & (Flattr.period == period))
        .count()
    )


def prepare(cfg: Config, period: str) -> dict:
    """Deliver, then ask and store every peer's answer for `period`; no-op
    once the period is planned. Returns {peer base URL: outcome}."""
    if not periods.is_valid(period) or not periods.has_ended(period, utcnow(), cfg.tz):
        return {}
    if delivery.planned(period):
        return {}
    wanted = _remote_owners(period)
    if not wanted:
        return {}
    delivery.drain(cfg, limit=100000, force=True)
    outcome = {}
    for peer in Peer.select().where(Peer.id.in_(list(wanted))):
        owners = wanted[peer.id]
        answers, reason = {}, ""
        if peer.removed_at is not None:
            reason = "the owner's node is no longer a peer"
        elif _undelivered(peer, period):
            reason = "the owner's node did not receive every flattr in time"
        else:
            try:
                answers = _ask(cfg, peer, period, sorted(owners))
            except outbound.PeerUnreachable as e:
                reason = "the owner's node did not answer in time"
                log.warning("federation: %s did not answer for %s: %s", peer.base_url, period, e.description)
        with database.atomic():
            for name, user_id in owners.items():
                gave = bool(answers.get(name)) if not reason else False
                why = reason or ("" if gave else "the owner did not flattr anything this month")
                PeerGave.insert(period=period, user=user_id, gave=gave, reason=why, answered_at=utcnow()).on_conflict(
                    conflict_target=[PeerGave.period, PeerGave.user],
                    update={PeerGave.gave: gave, PeerGave.reason: why, PeerGave.answered_at: utcnow()},
                ).execute()
        outcome[peer.base_url] = reason or "answered"
    return outcome


def _ask(cfg: Config, peer: Peer, period: str, owners: list[str]) -> dict[str, bool]:
    answers: dict[str, bool] = {}
    for i in range(0, len(owners), MAX_OWNERS):
        response = signing.send(cfg, "POST", f"{peer.base_url}/federation/gave", {"period": period, "owners": owners[i : i + MAX_OWNERS]})
        data = outbound.json_of(response)
        if response.status_code != 200 or data.get("period") != period or not isinstance(data.get("gave"), dict):
            raise outbound.PeerUnreachable(said('%(base_url)s answered %(status_code)s: %(value)s', base_url=peer.base_url, status_code=response.status_code, value=data.get('error_description', '')))
        answers.update({k: v is True for k, v in data["gave"].items() if isinstance(k, str)})
    return answers


def prepare_due(cfg: Config, now=None) -> None:
    """Before the scheduler closes ended periods: prepare each of them."""
    now = now or utcnow()
    last = periods.last_ended(now, cfg.tz)
    for (name,) in Period.select(Period.name).where((Period.status != "closed") & (Period.name <= last)).tuples():
        prepare(cfg, name)


# --- the host node's side ------------------------------------------------------------


def answer(cfg: Config, method: str, url: str, headers: dict, body: bytes, data) -> dict:
    """POST /federation/gave: whether each named person of this node gave
    (flattred anything) in the period."""
    peer, nonce = signing.verify(method, url, headers, body)
    if not isinstance(data, dict) or not periods.is_valid(str(data.get("period"))):
        raise Validation(said('period must be YYYY-MM'))
    owners = data.get("owners")
    if not isinstance(owners, list) or len(owners) > MAX_OWNERS or not all(isinstance(o, str) and len(o) <= 40 for o in owners):
        raise Validation(said('owners must be a list of at most %(max_owners)s usernames', max_owners=MAX_OWNERS))
    period = data["period"]
    with database.atomic():
        signing.remember_nonce(peer, nonce)
    gave = set(
        name
        for (name,) in User.select(User.username)
        .where(User.username.in_(owners) & User.id.in_(Flattr.select(Flattr.giver).where(Flattr.period == period)))
        .tuples()
    )
    return {"period": period, "gave": {name: name in gave for name in owners}}
