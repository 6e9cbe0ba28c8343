"""Webhook tables (migration 41): endpoints, the durable queue of messages,
and the periods already announced."""

from __future__ import annotations

from peewee import SQL, BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from ..models import BaseModel, User, utcnow


class WebhookEndpoint(BaseModel):
    """A URL a person (or an OAuth app acting for them) wants events at."""

    user = ForeignKeyField(User, backref="webhook_endpoints", on_delete="RESTRICT")
    oauth_client_id = IntegerField(null=True)  # registered by an app with the person's token
    url = CharField(max_length=2048)
    secret = CharField(max_length=64)  # whsec_...: Standard Webhooks signs with it
    events = CharField(max_length=200)  # space separated
    enabled = BooleanField(default=True)
    disabled_reason = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    deleted_at = DateTimeField(null=True)

    class Meta:
        table_name = "webhook_endpoint"


class WebhookMessage(BaseModel):
    """One event for one endpoint: written in the event's transaction,
    delivered after it, retried with backoff. `subject` names what the event
    is about (a flattr's id, a period) and makes enqueueing idempotent."""

    endpoint = ForeignKeyField(WebhookEndpoint, backref="messages", on_delete="RESTRICT", index=False)
    event = CharField(max_length=32)
    subject = CharField(max_length=64)
    payload = TextField(null=True)  # the JSON sent, fixed at the first attempt
    status = CharField(max_length=10, default="pending")  # pending | delivered | failed
    attempts = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)
    next_attempt_at = DateTimeField(default=utcnow)
    lease_until = DateTimeField(null=True)
    last_status = IntegerField(null=True)  # the receiver's HTTP status
    last_error = TextField(default="")
    delivered_at = DateTimeField(null=True)

    class Meta:
        table_name = "webhook_message"
        indexes = (
            (("endpoint", "event", "subject"), True),
            (("status", "next_attempt_at"), False),
        )
        constraints = [SQL("CHECK (status IN ('pending', 'delivered', 'failed'))")]


class WebhookPeriod(BaseModel):
    """A closed period whose period.closed and revenue.credited events are queued."""

    name = CharField(max_length=7, primary_key=True)
    announced_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_period"


WEBHOOK_MODELS = [WebhookEndpoint, WebhookMessage, WebhookPeriod]
