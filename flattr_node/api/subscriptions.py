"""/api/v1/subscriptions (SPEC §9): start, list and end subscriptions."""

from __future__ import annotations

from flask import jsonify

from ..services import subscriptions
from . import body, bp, caller, cfg, needs


def subscription_json(sub) -> dict:
    thing = sub.thing
    return {
        "id": sub.id,
        "thing": {"id": thing.id, "url": thing.url, "title": thing.title},
        "months": sub.months,
        "remaining": sub.remaining,
        "started_period": sub.started_period,
        "status": sub.status,
        "end_reason": sub.end_reason or None,
    }


@bp.post("/subscriptions")
@needs("flattr")
def post_subscription():
    data = body()
    sub = subscriptions.subscribe(cfg(), caller(), data.get("thing_id"), data.get("months"))
    return jsonify(subscription_json(sub)), 201


@bp.get("/subscriptions")
@needs("extendedread")
def get_subscriptions():
    return jsonify([subscription_json(s) for s in subscriptions.list_of(caller())])


@bp.delete("/subscriptions/<sub_id>")
@needs("flattr")
def delete_subscription(sub_id):
    return jsonify(subscription_json(subscriptions.cancel(caller(), sub_id)))
