"""Writes flattr_node/openapi.json, the OpenAPI 3.1 document of /api/v1.

Run it after changing the API: `python tools/make_openapi.py`. The document
is plain JSON in the package; tests check that it declares every route of
the API blueprint and that real responses match it (tests/test_fuzz_api.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from flattr_node import __version__
from flattr_node.models import CATEGORIES

OUT = Path(__file__).resolve().parent.parent / "flattr_node" / "openapi.json"

ERROR_CODES = [
    "invalid_request", "unauthorized", "no_money", "forbidden", "flattr_owner", "not_found", "flattr_once",
    "period_closed", "validation", "rate_limit_exceeded", "server_busy", "server_error",
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
    "monthly_budget": CENTS,
    "monthly_topup": CENTS,
    "flattrs_this_period": I,
    "is_operator": B,
    "period": PERIOD,
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
    "thing": obj({"id": I, "url": S, "title": S}),
    "giver": obj({"username": S}),
    "owner": obj({"username": S}),
    "period": PERIOD,
    "created_at": WHEN,
    "status": {"type": "string", "enum": ["pending", "counted", "not_counted"]},
    "share": {"type": ["integer", "null"], "description": "set when the period is closed"},
    "fee": {"type": ["integer", "null"], "description": "set when the period is closed"},
    "currency": CURRENCY,
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
        },
        "additionalProperties": False,
    },
    "NewThing": obj({"url": {"type": "string", "description": "http or https"}, **thing_fields}, ["url", "title"], additionalProperties=False),
    "ThingChanges": obj(dict(thing_fields), [], additionalProperties=False),
    "FlattrUrl": obj({"url": S}, ["url"]),
    "Amount": obj({"amount": CENTS}, ["amount"]),
    "NewSubscription": obj({"thing_id": {"type": "integer"}, "months": {"type": "integer", "enum": [3, 6, 12]}}, ["thing_id", "months"]),
}

COMMON = {"400": "invalid_request", "401": "unauthorized", "404": "not_found", "422": "validation", "429": "rate_limit_exceeded", "503": "server_busy"}


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


ERRS = {"402": "no_money", "403": "forbidden or flattr_owner", "409": "flattr_once or period_closed", "413": "body too large", "415": "unsupported media"}


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
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "security": [{}],
            "responses": {"200": {"description": "the OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    },
}

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
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a personal API token (`flattr-node token create`)"}},
        "schemas": {
            "UserPublic": obj(user_public),
            "UserPrivate": obj(user_private),
            "Thing": obj(thing, [k for k in thing if k != "flattred"]),
            "Flattr": obj(flattr),
            "Deposit": obj(deposit),
            "Payout": obj(payout),
            "Period": obj(period),
            "Subscription": obj(subscription),
            "Error": error,
            **bodies,
        },
    },
}

if __name__ == "__main__":
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {sum(len(v) for v in paths.values())} operations")
