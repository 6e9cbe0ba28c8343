"""/api/v1/webhooks: a person's (or an OAuth app's, with their token)
webhook endpoints and their delivery log. The scope is `extendedread`: the
events tell about the person's flattrs, revenue and payouts."""

from __future__ import annotations

from flask import jsonify

from .. import periods, webhooks
from . import body, bp, caller, cfg, needs


def endpoint_json(e, *, secret: bool = True) -> dict:
    data = {
        "id": e.id,
        "url": e.url,
        "events": e.events.split(),
        "enabled": e.enabled,
        "disabled_reason": e.disabled_reason or None,
        "created_at": periods.iso(e.created_at, cfg().tz),
    }
    if secret:
        data["secret"] = e.secret  # to verify signatures (Standard Webhooks); only for its owner
    return data


def message_json(m) -> dict:
    return {
        "id": m.id,
        "webhook_id": webhooks.message_id(m),
        "endpoint_id": m.endpoint_id,
        "event": m.event,
        "status": m.status,
        "attempts": m.attempts,
        "last_status": m.last_status,
        "last_error": m.last_error or None,
        "created_at": periods.iso(m.created_at, cfg().tz),
        "next_attempt_at": periods.iso(m.next_attempt_at, cfg().tz) if m.status == "pending" else None,
        "delivered_at": periods.iso(m.delivered_at, cfg().tz),
    }


@bp.post("/webhooks")
@needs("extendedread")
def post_webhook():
    user, data = caller(), body()
    endpoint = webhooks.create_endpoint(cfg(), user, data.get("url"), data.get("events"), getattr(user, "oauth_client_id", None))
    return jsonify(endpoint_json(endpoint)), 201


@bp.get("/webhooks")
@needs("extendedread")
def get_webhooks():
    return jsonify([endpoint_json(e) for e in webhooks.live_endpoints(caller()).order_by(webhooks.WebhookEndpoint.id)])


@bp.delete("/webhooks/<endpoint_id>")
@needs("extendedread")
def delete_webhook(endpoint_id):
    webhooks.delete_endpoint(caller(), endpoint_id)
    return "", 204


@bp.get("/webhooks/messages")
@needs("extendedread")
def get_webhook_messages():
    return jsonify([message_json(m) for m in webhooks.messages_of(caller())])


@bp.post("/webhooks/messages/<message_id>/resend")
@needs("extendedread")
def resend_webhook_message(message_id):
    return jsonify(message_json(webhooks.send_again(caller(), message_id)))
