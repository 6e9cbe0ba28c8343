"""Webhooks (SPEC §8): people, and OAuth apps acting for them, register
URLs for events; the node POSTs each event there, signed as the Standard
Webhooks specification says (with its own library, `standardwebhooks`).

The queue is a table (WebhookMessage). A flattr.created or payout.paid
message is written in the same transaction as its flattr or payout: if the
event commits, so does its message. Closed periods are announced from the
facts the close stored (period.closed to every endpoint that wants it,
revenue.credited to each owner's), in one transaction with a marker row.
Delivery happens after the response, from the scheduler: each message is
claimed with a lease (two processes never send it at once), POSTed through
the node's guarded outbound HTTP (http/https, a deadline, no private
address unless `allow_private_network`), and marked delivered on a 2xx.
Otherwise it is tried again with backoff; a message that fails its last
attempt disables its endpoint, and its owner gets a notice (dashboard, and
e-mail if they want that kind).

Delivery is at least once: a node killed after the receiver answered but
before it recorded the answer sends the message again, with the same
`webhook-id`, so the receiver can tell it already has it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from .. import netguard, periods
from ..config import Config
from ..db import database, execute
from ..errors import NotFound, Validation
from ..i18n import said
from ..models import Flattr, Period, Thing, User, utcnow
from ..services import notices
from ..urls import normalize_url
from .models import WebhookEndpoint, WebhookMessage, WebhookPeriod

log = logging.getLogger(__name__)

EVENTS = {
    "flattr.created": "someone flattred one of your things",
    "period.closed": "a month was closed on the node",
    "revenue.credited": "a month's close credited revenue to you",
    "payout.paid": "one of your withdrawals was paid",
}
# After attempt n fails, the next one waits BACKOFF[n - 1]; after the last, the message has failed.
BACKOFF = [dt.timedelta(seconds=s) for s in (2, 10, 60, 300, 1800, 7200, 18000, 36000)]
LEASE = dt.timedelta(seconds=15)  # longer than a delivery may take (TIMEOUT)
TIMEOUT = 10.0  # seconds for a whole delivery
MAX_ENDPOINTS = 10
BATCH = 50


# --- endpoints ------------------------------------------------------------------


def check_url(cfg: Config, url) -> str:
    """http/https, and (unless the node allows private networks) a host on the public Internet."""
    url = normalize_url(url)
    parts = urlsplit(url)
    netguard.resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private=cfg.allow_private_network)
    return url


def check_events(events) -> list[str]:
    if isinstance(events, str):
        events = events.replace(",", " ").split()
    if not isinstance(events, (list, tuple)) or not events or not all(isinstance(e, str) for e in events):
        raise Validation(said('events must be a list of: %(events)s', events=', '.join(EVENTS)), field="events")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise Validation(said('unknown event %(name)s: the events are %(events)s', name=repr(unknown[0]), events=', '.join(EVENTS)), field="events")
    return [e for e in EVENTS if e in events]


def create_endpoint(cfg: Config, user: User, url, events, oauth_client_id: int | None = None) -> WebhookEndpoint:
    url, events = check_url(cfg, url), check_events(events)  # resolving is slow: before the transaction
    with database.atomic():
        if live_endpoints(user).count() >= MAX_ENDPOINTS:
            raise Validation(said('at most %(max_endpoints)s webhook endpoints per person', max_endpoints=MAX_ENDPOINTS), field="url")
        return WebhookEndpoint.create(
            user=user,
            url=url,
            events=" ".join(events),
            secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            oauth_client_id=oauth_client_id,
        )


def live_endpoints(user: User):
    return WebhookEndpoint.select().where((WebhookEndpoint.user == user) & WebhookEndpoint.deleted_at.is_null())


def endpoint_of(user: User, endpoint_id) -> WebhookEndpoint:
    try:
        number = int(endpoint_id)
    except (TypeError, ValueError):
        number = None
    found = live_endpoints(user).where(WebhookEndpoint.id == number).first() if number is not None and number < 2**62 else None
    if found is None:
        raise NotFound(said('no such webhook endpoint'))
    return found


def delete_endpoint(user: User, endpoint_id) -> None:
    """It stops receiving; pending messages to it are dropped (marked failed)."""
    endpoint = endpoint_of(user, endpoint_id)
    with database.atomic():
        WebhookEndpoint.update(deleted_at=utcnow(), enabled=False).where(WebhookEndpoint.id == endpoint.id).execute()
        WebhookMessage.update(status="failed", last_error=said("the endpoint was deleted")).where(
            (WebhookMessage.endpoint == endpoint.id) & (WebhookMessage.status == "pending")
        ).execute()


def enable_endpoint(user: User, endpoint_id) -> WebhookEndpoint:
    endpoint = endpoint_of(user, endpoint_id)
    WebhookEndpoint.update(enabled=True, disabled_reason="").where(WebhookEndpoint.id == endpoint.id).execute()
    return WebhookEndpoint.get_by_id(endpoint.id)


def messages_of(user: User, endpoint_id=None, limit: int = 100) -> list[WebhookMessage]:
    """The delivery log: newest first."""
    query = (
        WebhookMessage.select(WebhookMessage, WebhookEndpoint)
        .join(WebhookEndpoint)
        .where(WebhookEndpoint.user == user)
        .order_by(WebhookMessage.id.desc())
        .limit(limit)
    )
    if endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == endpoint_of(user, endpoint_id).id)
    return list(query)


def send_again(user: User, message_id) -> WebhookMessage:
    """Queue a message again, now, with the same id and body (the receiver can tell it is the same)."""
    try:
        number = int(message_id)
    except (TypeError, ValueError):
        raise NotFound(said('no such webhook message')) from None
    message = (
        WebhookMessage.select(WebhookMessage, WebhookEndpoint)
        .join(WebhookEndpoint)
        .where((WebhookMessage.id == number) & (WebhookEndpoint.user == user) & WebhookEndpoint.deleted_at.is_null())
        .first()
        if number < 2**62
        else None
    )
    if message is None:
        raise NotFound(said('no such webhook message'))
    now = utcnow()
    WebhookMessage.update(status="pending", next_attempt_at=now, lease_until=None).where(WebhookMessage.id == message.id).execute()
    if not message.endpoint.enabled:
        WebhookEndpoint.update(enabled=True, disabled_reason="").where(WebhookEndpoint.id == message.endpoint.id).execute()
    return WebhookMessage.get_by_id(message.id)


# --- events into the queue ------------------------------------------------------------


def _enqueue_sql() -> str:
    return (
        "INSERT INTO webhook_message (endpoint_id, event, subject, status, attempts, created_at, next_attempt_at, last_error) "
        "SELECT e.id, ?, ?, 'pending', 0, ?, ?, '' FROM webhook_endpoint e "
        "WHERE e.user_id = ? AND e.enabled = ? AND e.deleted_at IS NULL AND e.events LIKE ? "
        "ON CONFLICT (endpoint_id, event, subject) DO NOTHING"
    )


_ENQUEUE_ALL = (
    "INSERT INTO webhook_message (endpoint_id, event, subject, status, attempts, created_at, next_attempt_at, last_error) "
    "SELECT e.id, ?, ?, 'pending', 0, ?, ?, '' FROM webhook_endpoint e "
    "WHERE e.enabled = ? AND e.deleted_at IS NULL AND e.events LIKE ?{only} "
    "ON CONFLICT (endpoint_id, event, subject) DO NOTHING"
)
_EARNED = " AND EXISTS (SELECT 1 FROM flattr f WHERE f.period = ? AND f.owner_id = e.user_id AND f.status = 'counted')"


def enqueue(event: str, user_id: int, subject: str, now: dt.datetime | None = None) -> None:
    """Inside the event's transaction: a message for each of the person's endpoints that wants it."""
    assert event in EVENTS, event
    when = WebhookMessage.created_at.db_value(now or utcnow())
    execute(_enqueue_sql(), (event, subject, when, when, user_id, True, f"%{event}%"))


def has_endpoints(user_id: int) -> bool:
    return execute(
        "SELECT 1 FROM webhook_endpoint WHERE user_id = ? AND enabled = ? AND deleted_at IS NULL LIMIT 1", (user_id, True)
    ).fetchone() is not None


def announce_closed_periods(cfg: Config, now: dt.datetime | None = None) -> list[str]:
    """period.closed and revenue.credited for every closed period not
    announced yet: the messages and the marker row in one transaction (and
    enqueueing is idempotent, should two processes race)."""
    done = []
    announced = WebhookPeriod.select(WebhookPeriod.name)
    due = Period.select(Period.name).where((Period.status == "closed") & Period.name.not_in(announced)).order_by(Period.name)
    for (name,) in due.tuples():
        when = now or utcnow()
        with database.atomic():
            WebhookPeriod.insert(name=name, announced_at=when).on_conflict_ignore().execute()
            # One statement per event for every endpoint: owners with revenue are found by the flattrs' index.
            stamp = WebhookMessage.created_at.db_value(when)
            execute(_ENQUEUE_ALL.format(only=""), ("period.closed", name, stamp, stamp, True, "%period.closed%"))
            execute(_ENQUEUE_ALL.format(only=_EARNED), ("revenue.credited", name, stamp, stamp, True, "%revenue.credited%", name))
        done.append(name)
    return done


# --- payloads -----------------------------------------------------------------------

# The subject of flattr.created for a flattr a peer delivered (SPEC §6): its
# inbox_flattr row, not a flattr row of this node.
INBOX_SUBJECT = "inbox:"


def _remote_flattr(cfg: Config, inbox_id: int) -> dict:
    """A flattr from a reader of another node, shaped as a local one: its id
    is its URI on the giver's node, the giver `name@their-node`."""
    from ..federation.models import InboxFlattr

    f = InboxFlattr.select(InboxFlattr, Thing).join(Thing).where(InboxFlattr.id == inbox_id).get()
    return {
        "id": f.remote_id,
        "thing": {"id": f.thing.id, "url": f.thing.url, "title": f.thing.title},
        "giver": {"username": f.giver.removeprefix("acct:")},
        "period": f.period,
        "created_at": periods.iso(f.created_at, cfg.tz),
    }



def payload(cfg: Config, message: WebhookMessage) -> dict:
    """What the event says, from the stored facts (Standard Webhooks' shape: type, timestamp, data)."""
    data: dict
    if message.event == "flattr.created" and message.subject.startswith(INBOX_SUBJECT):
        data = _remote_flattr(cfg, int(message.subject[len(INBOX_SUBJECT) :]))
    elif message.event == "flattr.created":
        f = Flattr.select(Flattr, Thing, User).join(Thing).switch(Flattr).join(User, on=(Flattr.giver == User.id)).where(
            Flattr.id == int(message.subject)
        ).first()
        data = {
            "id": f.id,
            "thing": {"id": f.thing.id, "url": f.thing.url, "title": f.thing.title},
            "giver": {"username": f.giver.username},
            "period": f.period,
            "created_at": periods.iso(f.created_at, cfg.tz),
        }
    elif message.event == "period.closed":
        from .. import closing

        data = closing.period_summary(cfg, message.subject, utcnow())
    elif message.event == "revenue.credited":
        owner_id = message.endpoint.user_id
        amount, count = execute(
            "SELECT COALESCE(SUM(share - fee), 0), COUNT(*) FROM flattr WHERE period = ? AND owner_id = ? AND status = 'counted'",
            (message.subject, owner_id),
        ).fetchone()
        data = {"period": message.subject, "amount": int(amount), "currency": cfg.currency, "flattrs": count}
    else:  # payout.paid
        from ..api import serialize
        from ..models import Payout

        data = serialize.payout(cfg, Payout.get_by_id(int(message.subject)))
    return {"type": message.event, "timestamp": periods.iso(message.created_at, dt.UTC), "data": data}


# --- delivery ------------------------------------------------------------------------


def message_id(message: WebhookMessage) -> str:
    return f"msg_{message.id}"


def _claim(now: dt.datetime) -> list[int]:
    """Due messages, each leased to this process alone (a conditional UPDATE)."""
    due = list(
        WebhookMessage.select(WebhookMessage.id)
        .join(WebhookEndpoint)
        .where(
            (WebhookMessage.status == "pending")
            & (WebhookMessage.next_attempt_at <= now)
            & (WebhookMessage.lease_until.is_null() | (WebhookMessage.lease_until < now))
            & WebhookEndpoint.enabled
        )
        .order_by(WebhookMessage.id)
        .limit(BATCH)
        .tuples()
    )
    claimed = []
    for (number,) in due:
        won = (
            WebhookMessage.update(lease_until=now + LEASE, attempts=WebhookMessage.attempts + 1)
            .where(
                (WebhookMessage.id == number)
                & (WebhookMessage.status == "pending")
                & (WebhookMessage.lease_until.is_null() | (WebhookMessage.lease_until < now))
            )
            .execute()
        )
        if won:
            claimed.append(number)
    return claimed


def post(cfg: Config, url: str, msg_id: str, body: str, secret: str, now: dt.datetime) -> int:
    """Sign and POST one message; the receiver's HTTP status. The one place the
    node sends a webhook: netguard's guarded fetch, without redirects."""
    signature = Webhook(secret).sign(msg_id, now.replace(tzinfo=dt.UTC), body)
    answer = netguard.fetch(
        url,
        method="POST",
        body=body.encode(),
        timeout=TIMEOUT,
        max_bytes=64 * 1024,
        max_redirects=0,
        allow_private=cfg.allow_private_network,
        headers={
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.replace(tzinfo=dt.UTC).timestamp())),
            "webhook-signature": signature,
        },
    )
    return answer.status


def deliver_one(cfg: Config, number: int, now: dt.datetime) -> bool:
    message = WebhookMessage.select(WebhookMessage, WebhookEndpoint).join(WebhookEndpoint).where(WebhookMessage.id == number).first()
    endpoint = message.endpoint
    if message.payload is None:  # fixed at the first attempt: every retry sends the same bytes
        message.payload = json.dumps(payload(cfg, message), separators=(",", ":"))
        WebhookMessage.update(payload=message.payload).where(WebhookMessage.id == number).execute()
    status, error = None, ""
    try:
        status = post(cfg, endpoint.url, message_id(message), message.payload, endpoint.secret, now)
        if not 200 <= status < 300:
            error = said("the endpoint answered HTTP %(status)s", status=status)
    except netguard.FetchError as e:
        error = e.description
    if not error:
        WebhookMessage.update(status="delivered", delivered_at=utcnow(), last_status=status, last_error="", lease_until=None).where(
            WebhookMessage.id == number
        ).execute()
        return True
    with database.atomic():
        if message.attempts > len(BACKOFF):
            WebhookMessage.update(status="failed", last_status=status, last_error=error, lease_until=None).where(
                WebhookMessage.id == number
            ).execute()
            reason = f"disabled on {now:%Y-%m-%d %H:%M} UTC: message {message_id(message)} failed {message.attempts} times ({error})"
            WebhookEndpoint.update(enabled=False, disabled_reason=reason).where(WebhookEndpoint.id == endpoint.id).execute()
            notices.queue(
                endpoint.user_id,
                "webhook_disabled",
                f"webhook:{endpoint.id}:disabled:{number}",
                {"url": endpoint.url, "attempts": message.attempts, "error": error, "error_said": error.as_dict()},
            )
            log.warning("webhook endpoint %d (%s) %s", endpoint.id, endpoint.url, reason)
        else:
            WebhookMessage.update(
                next_attempt_at=now + BACKOFF[message.attempts - 1], last_status=status, last_error=error, lease_until=None
            ).where(WebhookMessage.id == number).execute()
    return False


def drain(cfg: Config, now: dt.datetime | None = None) -> dict:
    """Announce closed periods, then deliver what is due. Safe from several processes."""
    now = now or utcnow()
    announced = announce_closed_periods(cfg, now)
    delivered = failed = 0
    with database.atomic():
        claimed = _claim(now)
    for number in claimed:
        if deliver_one(cfg, number, now):
            delivered += 1
        else:
            failed += 1
    return {"announced": announced, "delivered": delivered, "failed": failed}
