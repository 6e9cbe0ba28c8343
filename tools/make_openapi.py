"""Writes flattr_node/openapi.json, the OpenAPI 3.1 document of /api/v1.

Run it after changing the API: `python tools/make_openapi.py`. The document
is plain JSON in the package; tests check that it declares every route of
the API blueprint and that real responses match it (tests/test_fuzz_api.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from flattr_node import __version__
from flattr_node.models import CATEGORIES
from flattr_node.scopes import SCOPES
from flattr_node.webhooks import EVENTS

OUT = Path(__file__).resolve().parent.parent / "flattr_node" / "openapi.json"

ERROR_CODES = [
    "invalid_request", "unauthorized", "no_money", "forbidden", "flattr_owner", "not_found", "flattr_once",
    "period_closed", "validation", "rate_limit_exceeded", "server_busy", "server_error", "insufficient_scope",
]  # fmt: skip

S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741
B = {"type": "boolean"}
CENTS = {"type": "integer", "description": "minor units of `currency` (cents)"}
WHEN = {"type": "string", "format": "date-time"}
WHEN_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
PERIOD = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "description": "a month, YYYY-MM"}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}


def obj(props: dict, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required, **extra}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


user_public = {
    "username": S,
    "display_name": S,
    "about": S,
    "url": {"type": ["string", "null"]},
    "created_at": WHEN,
}
user_private = {
    **user_public,
    "email": S,
    "currency": CURRENCY,
    "funds": CENTS,
    "revenue": CENTS,
    "pending_revenue": {"type": "integer", "description": "owed to this person by peer nodes' statements, not yet paid (federation); not withdrawable"},
    "monthly_budget": CENTS,
    "monthly_topup": CENTS,
    "flattrs_this_period": I,
    "is_operator": B,
    "period": PERIOD,
    "payout_iban": {"type": ["string", "null"], "description": "where withdrawals and refunds are sent (SEPA)"},
    "payout_name": {"type": ["string", "null"], "description": "the payout account holder's name"},
}
thing = {
    "id": I,
    "url": S,
    "title": S,
    "description": S,
    "category": {"type": "string", "enum": list(CATEGORIES)},
    "language": {"type": ["string", "null"]},
    "tags": {"type": "array", "items": S},
    "hidden": B,
    "archived": B,
    "owner": obj({"username": S}),
    "flattrs": {"type": "integer", "description": "all time"},
    "flattrs_this_period": I,
    "created_at": WHEN,
    "link": {"type": "string", "description": "the thing's page on this node"},
    "flattred": {"type": "boolean", "description": "the caller flattred it this period (only when signed in)"},
}
flattr = {
    "id": I,
    "thing": obj(
        {"id": I, "url": S, "title": S, "node": {"type": "string", "description": "the host node's base URL, for a thing on a peer node"}},
        required=["id", "url", "title"],
    ),
    "giver": obj({"username": S}),
    "owner": obj({"username": S}),
    "period": PERIOD,
    "created_at": WHEN,
    "status": {"type": "string", "enum": ["pending", "counted", "not_counted"]},
    "share": {"type": ["integer", "null"], "description": "set when the period is closed"},
    "fee": {"type": ["integer", "null"], "description": "set when the period is closed"},
    "currency": CURRENCY,
    "reason": {"type": "string", "description": "why a flattr of a thing on a peer node did not count"},
}
deposit = {
    "id": I,
    "amount": CENTS,
    "currency": CURRENCY,
    "reference": {"type": "string", "description": "quote it in the bank transfer"},
    "status": {"type": "string", "enum": ["pending", "confirmed", "cancelled"]},
    "created_at": WHEN,
    "confirmed_at": WHEN_OR_NULL,
    "topup_period": {"type": ["string", "null"]},
    "instructions": S,
    "reference_formatted": {"type": "string", "description": "the reference in groups of four, as people copy it"},
    "bank": {
        "type": ["object", "null"],
        "description": "the node's account to pay to (null: see instructions)",
        "properties": {"iban": S, "iban_formatted": S, "bic": {"type": ["string", "null"]}, "account_name": S},
    },
    "qr_code": {"type": ["string", "null"], "description": "an EPC QR code (GiroCode) of the transfer, PNG, for the signed-in owner"},
}
payout = {
    "id": I,
    "amount": CENTS,
    "currency": CURRENCY,
    "status": {"type": "string", "enum": ["requested", "paid", "failed"]},
    "created_at": WHEN,
    "settled_at": WHEN_OR_NULL,
}
period = {
    "period": PERIOD,
    "status": {"type": "string", "enum": ["open", "closing", "closed"]},
    "stage": {"type": ["string", "null"]},
    "ended": B,
    "closed_at": WHEN_OR_NULL,
    "givers": I,
    "flattrs": I,
    "counted": {"type": ["integer", "null"], "description": "flattrs that took a share; null while open"},
    "distributed": CENTS,
    "fees": CENTS,
    "currency": CURRENCY,
}
movement = {
    "at": WHEN,
    "description": S,
    "kind": S,
    "funds": {"type": "integer", "description": "change of funds, cents"},
    "revenue": {"type": "integer", "description": "change of revenue, cents"},
    "funds_balance": CENTS,
    "revenue_balance": CENTS,
}
statement = {
    "year": I,
    "currency": CURRENCY,
    "opening": obj({"funds": CENTS, "revenue": CENTS}),
    "closing": obj({"funds": CENTS, "revenue": CENTS}),
    "revenue_received": {"type": "integer", "description": "revenue received from month closes in the year, cents"},
    "movements": {"type": "array", "items": obj(movement)},
}
subscription = {
    "id": I,
    "thing": obj({"id": I, "url": S, "title": S}),
    "months": {"type": "integer", "enum": [3, 6, 12]},
    "remaining": I,
    "started_period": PERIOD,
    "status": {"type": "string", "enum": ["active", "ended"]},
    "end_reason": {"type": ["string", "null"], "enum": ["done", "cancelled", "archived", "own", None]},
}
error = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "enum": ERROR_CODES},
        "error_description": S,
        "field": {"type": "string", "description": "the input field at fault, when there is one"},
    },
    "required": ["error", "error_description"],
}

TEXT = {"type": "string", "maxLength": 5000}
thing_fields = {
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": TEXT,
    "category": {"type": "string", "enum": list(CATEGORIES)},
    "language": {"type": "string", "maxLength": 35},
    "tags": {"oneOf": [{"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 10}, {"type": "string"}]},
    "hidden": B,
}
bodies = {
    "UserChanges": {
        "type": "object",
        "properties": {
            "monthly_budget": CENTS,
            "monthly_topup": CENTS,
            "display_name": {"type": "string", "maxLength": 100},
            "about": {"type": "string", "maxLength": 2000},
            "url": S,
            "show_flattrs": B,
            "payout_iban": {"type": "string", "description": "an IBAN of a SEPA country; spaces allowed"},
            "payout_name": {"type": "string", "maxLength": 70},
        },
        "additionalProperties": False,
    },
    "NewThing": obj({"url": {"type": "string", "description": "http or https"}, **thing_fields}, ["url", "title"], additionalProperties=False),
    "ThingChanges": obj(dict(thing_fields), [], additionalProperties=False),
    "FlattrUrl": obj({"url": S}, ["url"]),
    "Amount": obj({"amount": CENTS}, ["amount"]),
    "NewWebhook": obj(
        {"url": {"type": "string", "description": "http or https; a public address unless the node allows private ones"},
         "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}, "minItems": 1}},
        ["url", "events"], additionalProperties=False,
    ),
    "NewSubscription": obj({"thing_id": {"type": "integer"}, "months": {"type": "integer", "enum": [3, 6, 12]}}, ["thing_id", "months"]),
}

COMMON = {"400": "invalid_request", "401": "unauthorized", "403": "forbidden, or insufficient_scope (the token lacks the route's scope)", "404": "not_found", "422": "validation", "429": "rate_limit_exceeded", "503": "server_busy"}


def op(summary: str, ok: str, schema: dict | None, *, status: str = "200", errors=(), body: str | None = None, auth=True, params=(), tag="api"):
    responses = {status: {"description": ok, "content": {"application/json": {"schema": schema}}}}
    for code in sorted(set(COMMON) | set(errors)):
        responses[code] = {"description": COMMON.get(code) or ERRS[code], "content": {"application/json": {"schema": ref("Error")}}}
    out = {"summary": summary, "operationId": summary.lower().replace(" ", "_").replace("'", "").replace(",", ""), "tags": [tag], "responses": responses}
    if params:
        out["parameters"] = list(params)
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
    if not auth:
        out["security"] = [{}, {"bearer": []}]
    return out


ERRS = {"402": "no_money", "403": "forbidden, flattr_owner or insufficient_scope", "409": "flattr_once or period_closed", "413": "body too large", "415": "unsupported media"}


def path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query_param(name: str, schema: dict, required=False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema}


THING_ID = path_param("thing_id", {"type": "integer", "minimum": 0})
USERNAME = path_param("username", S)
PERIOD_Q = query_param("period", PERIOD)
idem = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}

paths = {
    "/user": {
        "get": op("Get oneself", "the caller", ref("UserPrivate")),
        "patch": op("Change one's settings (not the e-mail address: that only on the web, with the password)", "the caller, changed", ref("UserPrivate"), body="UserChanges", errors=["403"]),
    },
    "/users/{username}": {"get": op("Get a public profile", "a person", ref("UserPublic"), auth=False, params=[USERNAME])},
    "/users/{username}/things": {
        "get": op("List a person's things", "their things", {"type": "array", "items": ref("Thing")}, auth=False, params=[USERNAME])
    },
    "/things": {"post": op("Register a thing", "the new thing", ref("Thing"), status="201", body="NewThing", errors=["403"])},
    "/things/lookup": {
        "get": op("Look up a thing by URL", "the thing registered for the URL", ref("Thing"), auth=False, params=[query_param("url", S, True)])
    },
    "/things/{thing_id}": {
        "get": op("Get a thing", "the thing", ref("Thing"), auth=False, params=[THING_ID]),
        "patch": op("Edit a thing", "the thing, changed", ref("Thing"), body="ThingChanges", errors=["403"], params=[THING_ID]),
        "delete": op("Archive a thing", "the thing, archived (history is kept)", ref("Thing"), errors=["403"], params=[THING_ID]),
    },
    "/things/{thing_id}/flattr": {
        "post": op("Flattr a thing", "the flattr", ref("Flattr"), status="201", errors=["402", "403", "409"], params=[THING_ID])
    },
    "/flattr": {
        "post": op("Flattr a URL", "the flattr (auto-submit URLs create the thing)", ref("Flattr"), status="201", body="FlattrUrl", errors=["402", "403", "409"])
    },
    "/user/flattrs": {"get": op("List flattrs given", "flattrs given", {"type": "array", "items": ref("Flattr")}, params=[PERIOD_Q])},
    "/user/incoming": {"get": op("List flattrs received", "flattrs received", {"type": "array", "items": ref("Flattr")}, params=[PERIOD_Q])},
    "/deposits": {
        "post": op("Open a deposit", "a pending deposit with its bank reference", ref("Deposit"), status="201", body="Amount"),
        "get": op("List deposits", "one's deposits", {"type": "array", "items": ref("Deposit")}),
    },
    "/payouts": {
        "post": op("Ask for a payout", "the requested payout", ref("Payout"), status="201", body="Amount", errors=["402"]),
        "get": op("List payouts", "one's payouts", {"type": "array", "items": ref("Payout")}),
    },
    "/user/revenue-to-funds": {
        "post": op("Move revenue to funds", "the caller, after the move", ref("UserPrivate"), body="Amount", errors=["402"], params=[idem])
    },
    "/user/statement": {
        "get": op(
            "A year's statement",
            "every movement of one's money in the year, with running balances, and the revenue received",
            ref("Statement"),
            params=[query_param("year", {"type": "string", "pattern": "^[0-9]{4}$"})],
        )
    },
    "/periods/{period}": {"get": op("Get a period", "its state and totals", ref("Period"), auth=False, params=[path_param("period", S)])},
    "/admin/deposits/{id_or_reference}/confirm": {
        "post": op("Confirm a deposit", "the confirmed deposit (once)", ref("Deposit"), errors=["403"], params=[path_param("id_or_reference", S)], tag="operator")
    },
    "/admin/payouts/{payout_id}/paid": {
        "post": op("Mark a payout paid", "the payout", ref("Payout"), errors=["403"], params=[path_param("payout_id", S)], tag="operator")
    },
    "/admin/payouts/{payout_id}/failed": {
        "post": op("Mark a payout failed", "the payout; its amount is back in revenue", ref("Payout"), errors=["403"], params=[path_param("payout_id", S)], tag="operator")
    },
    "/subscriptions": {
        "post": op(
            "Subscribe to a thing", "the subscription; this period's flattr is made now if the thing was not flattred yet",
            ref("Subscription"), status="201", body="NewSubscription", errors=["403"],
        ),
        "get": op("List subscriptions", "one's subscriptions", {"type": "array", "items": ref("Subscription")}),
    },
    "/subscriptions/{sub_id}": {
        "delete": op("End a subscription", "the subscription, ended", ref("Subscription"), params=[path_param("sub_id", S)])
    },
    "/webhooks": {
        "post": op("Register a webhook endpoint", "the endpoint, with the secret its signatures are made with", ref("WebhookEndpoint"), status="201", body="NewWebhook"),
        "get": op("List webhook endpoints", "one's endpoints", {"type": "array", "items": ref("WebhookEndpoint")}),
    },
    "/webhooks/{endpoint_id}": {
        "delete": {
            **op("Delete a webhook endpoint", "", None, params=[path_param("endpoint_id", S)]),
            "responses": {
                "204": {"description": "deleted: nothing more is sent to it"},
                **{c: r for c, r in op("x", "", None)["responses"].items() if c != "200"},
            },
        }
    },
    "/webhooks/messages": {"get": op("List webhook deliveries", "the delivery log, newest first", {"type": "array", "items": ref("WebhookMessage")})},
    "/webhooks/messages/{message_id}/resend": {
        "post": op("Send a webhook message again", "the message, queued again with the same id", ref("WebhookMessage"), params=[path_param("message_id", S)])
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [{}],
            "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
}

webhook_endpoint = {
    "id": I,
    "url": S,
    "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
    "enabled": B,
    "disabled_reason": {"type": ["string", "null"], "description": "why the node stopped sending (repeated failures)"},
    "created_at": WHEN,
    "secret": {"type": "string", "description": "whsec_...: verify each delivery's webhook-signature with it (Standard Webhooks)"},
}
webhook_message = {
    "id": I,
    "webhook_id": {"type": "string", "description": "the webhook-id header: the same on every attempt"},
    "endpoint_id": I,
    "event": {"type": "string", "enum": list(EVENTS)},
    "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
    "attempts": I,
    "last_status": {"type": ["integer", "null"], "description": "the receiver's last HTTP status"},
    "last_error": {"type": ["string", "null"]},
    "created_at": WHEN,
    "next_attempt_at": WHEN_OR_NULL,
    "delivered_at": WHEN_OR_NULL,
}
SIGNED = [
    {"name": "webhook-id", "in": "header", "required": True, "schema": S, "description": "the message's id; the same when it is sent again"},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": S, "description": "unix seconds"},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": S, "description": "v1,<base64 HMAC-SHA256> (Standard Webhooks)"},
]
EVENT_DATA = {
    "flattr.created": obj({"id": I, "thing": obj({"id": I, "url": S, "title": S}), "giver": obj({"username": S}), "period": PERIOD, "created_at": WHEN}),
    "period.closed": ref("Period"),
    "revenue.credited": obj({"period": PERIOD, "amount": CENTS, "currency": CURRENCY, "flattrs": I}),
    "payout.paid": ref("Payout"),
}
webhooks = {
    event: {
        "post": {
            "summary": f"{event}: {words}",
            "operationId": "webhook_" + event.replace(".", "_"),
            "parameters": SIGNED,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": obj({"type": {"const": event}, "timestamp": WHEN, "data": EVENT_DATA[event]})}},
            },
            "responses": {"2XX": {"description": "received; any other answer (or none within 10 s) is tried again with backoff"}},
        }
    }
    for event, words in EVENTS.items()
}


def shape(path: str) -> str:
    return re.sub(r"<[^>]*>|\{[^}]*\}", "{}", path)


def route_scopes() -> dict:
    """The scope each route states in the code (flattr_node.api.needs), by (path shape, method)."""
    from flattr_node.app import create_app
    from flattr_node.config import Config

    app = create_app(Config(database="sqlite:///:memory:", secret_key="openapi"), bind_database=False)
    return {
        (shape(rule.rule.removeprefix("/api/v1")), method.lower()): getattr(app.view_functions[rule.endpoint], "required_scope", "")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def add_security(paths: dict) -> None:
    """Each operation: a personal token or an OAuth token with the route's scope."""
    scopes = route_scopes()
    for path, ops in paths.items():
        for method, operation in ops.items():
            scope = scopes[(shape(path), method)]
            if scope:
                operation["security"] = [{"bearer": []}, {"oauth2": [scope]}]
                operation["description"] = f"Needs the `{scope}` scope."
            else:
                operation["security"] = [{}, {"bearer": []}, {"oauth2": []}]


doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "flattr-node API",
        "version": __version__,
        "description": "The JSON API of a flattr-node (SPEC §3). Amounts are integers in minor units beside `currency`. "
        "Errors are `{\"error\": CODE, \"error_description\": TEXT}`.",
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "paths": paths,
    "webhooks": webhooks,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a personal API token (`flattr-node token create`), with scopes"},
            "oauth2": {
                "type": "oauth2",
                "description": "an app's token for a person (authorization code with PKCE S256); metadata at /.well-known/oauth-authorization-server",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": "/oauth/authorize",
                        "tokenUrl": "/oauth/token",
                        "refreshUrl": "/oauth/token",
                        "scopes": dict(SCOPES),
                    }
                },
            },
        },
        "schemas": {
            "UserPublic": obj(user_public),
            "UserPrivate": obj(user_private),
            "Thing": obj(thing, [k for k in thing if k != "flattred"]),
            "Flattr": obj(flattr, required=[k for k in flattr if k != "reason"]),
            "Deposit": obj(deposit),
            "Payout": obj(payout),
            "Period": obj(period),
            "Statement": obj(statement),
            "Subscription": obj(subscription),
            "WebhookEndpoint": obj(webhook_endpoint),
            "WebhookMessage": obj(webhook_message),
            "Error": error,
            **bodies,
        },
    },
}

if __name__ == "__main__":
    add_security(paths)
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {sum(len(v) for v in paths.values())} operations")
