"""The JSON API (SPEC §3). Views parse input, call a service, shape output."""

from __future__ import annotations

import json
from importlib import resources

from flask import Blueprint, current_app, g, jsonify, request
from flask_login import current_user

from .. import closing, periods
from .. import scopes as scope_names
from ..bank import accounts as payout_accounts
from ..bank import statement
from ..errors import Forbidden, InsufficientScope, InvalidRequest, Unauthorized, Validation
from ..models import Deposit, Payout, Thing, User, utcnow
from ..services import flattring, funds, people, things
from . import serialize

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)


def cfg():
    return current_app.config["NODE"]


def token_user() -> User | None:
    """Bearer token if the request carries one (then cookies are ignored)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    user = people.user_for_token(token.strip())
    if user is None:
        raise Unauthorized("the API token is unknown, revoked, or its owner is suspended")
    return user


PUBLIC = ""  # the scope of a route anyone may read


def needs(scope: str):
    """Declare the scope a token needs for this route (PUBLIC: none). Every
    route of the API declares one; tests/test_scopes.py checks that."""
    if scope != PUBLIC and scope not in scope_names.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view):
        view.required_scope = scope
        return view

    return mark


def required_scope() -> str:
    view = current_app.view_functions.get(request.endpoint)
    return getattr(view, "required_scope", PUBLIC)


def caller() -> User:
    """The person the request speaks for. A token must carry the route's
    scope (403 insufficient_scope); a browser session carries all."""
    if "caller" not in g:
        user = token_caller()
        if user is None and current_user.is_authenticated:
            user = User.get_by_id(current_user.id)
            user.token_scopes = frozenset(scope_names.ALL)
        if user is None:
            raise Unauthorized("sign in, or send 'Authorization: Bearer <token>'")
        g.caller = user
    return g.caller


def token_caller() -> User | None:
    """The token's person if the request carries one, checked against the
    route's scope (403 insufficient_scope); /rest/v2 knows only this way."""
    user = token_user()
    if user is not None:
        scope = required_scope()
        if scope and scope not in user.token_scopes:
            raise InsufficientScope(f"this token lacks the scope '{scope}' that this request needs")
    return user


def by_token() -> bool:
    """Whether the request is authorised by a token (not a browser session)."""
    return "Authorization" in request.headers


def maybe_caller() -> User | None:
    try:
        return caller()
    except Unauthorized:
        return None


def operator() -> User:
    user = caller()
    if not user.is_operator:
        raise Forbidden("only an operator of this node can do this")
    return user


MONEY_FIELDS = frozenset({"amount", "monthly_budget", "monthly_topup"})


def body() -> dict:
    try:
        data = request.get_json(silent=True, force=True) if request.data else {}
    except RecursionError:  # [[[[...]]]]: json gives up, and so do we
        raise InvalidRequest("the request body is nested too deeply") from None
    if data is None:
        raise InvalidRequest("the request body is not valid JSON")
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    for field in MONEY_FIELDS & data.keys():
        # R1: in JSON an amount is an integer; not a float, a string or a bool.
        if type(data[field]) is not int:
            raise Validation(f"{field} must be a whole number of cents (a JSON integer)", field=field)
    return data


def period_arg() -> str | None:
    value = request.args.get("period")
    if value is None or value == "":
        return None
    if not periods.is_valid(value):
        raise Validation("period must be YYYY-MM", field="period")
    return value


@bp.get("/openapi.json")
@needs(PUBLIC)
def openapi():
    text = resources.files("flattr_node").joinpath("openapi.json").read_text()
    return current_app.response_class(text, mimetype="application/json")


@bp.get("/user")
@needs("extendedread")
def get_user():
    return jsonify(private(caller()))


def private(user: User) -> dict:
    """Oneself; the e-mail address only with the `email` scope."""
    data = serialize.user_private(cfg(), user)
    if "email" not in getattr(g.caller, "token_scopes", scope_names.ALL):
        del data["email"]
    return data


@bp.patch("/user")
@needs("flattr")
def patch_user():
    user, changes = caller(), body()  # "email" is refused by update_settings, whoever asks (issue 10)
    payout = payout_accounts.check_payout_change(user, changes)  # validated before anything is saved
    changes = {k: v for k, v in changes.items() if k not in ("payout_iban", "payout_name")}
    user = people.update_settings(cfg(), user, changes)
    if payout is not None:
        payout_accounts.save_payout_account(user, *payout)
    return jsonify(private(user))


@bp.get("/users/<username>")
@needs(PUBLIC)
def get_public_user(username):
    return jsonify(serialize.user_public(cfg(), people.public_user(username)))


@bp.get("/users/<username>/things")
@needs(PUBLIC)
def get_user_things(username):
    owner = people.public_user(username)
    viewer = maybe_caller()
    query = Thing.select(Thing, User).join(User).where((Thing.owner == owner) & ~Thing.archived)
    if viewer is None or viewer.id != owner.id:
        query = query.where(~Thing.hidden)
    return jsonify(serialize.things(cfg(), list(query.order_by(Thing.id.desc()).limit(500)), viewer))


@bp.post("/things")
@needs("thing")
def post_thing():
    thing = things.register_thing(caller(), body())
    return jsonify(serialize.thing(cfg(), things.get_thing(thing.id), caller())), 201


@bp.get("/things/lookup")
@needs(PUBLIC)
def lookup_thing():
    return public(jsonify(serialize.thing(cfg(), things.lookup(request.args.get("url", "")), maybe_caller())))


@bp.get("/things/<int:thing_id>")
@needs(PUBLIC)
def get_thing(thing_id):
    return public(jsonify(serialize.thing(cfg(), things.get_thing(thing_id), maybe_caller())))


def public(response):
    """A thing's public JSON may be read by a button's script on any blog
    (CORS without credentials: a browser sends no cookie with it)."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.patch("/things/<int:thing_id>")
@needs("thing")
def patch_thing(thing_id):
    return jsonify(serialize.thing(cfg(), things.edit_thing(caller(), thing_id, body()), caller()))


@bp.delete("/things/<int:thing_id>")
@needs("thing")
def delete_thing(thing_id):
    return jsonify(serialize.thing(cfg(), things.archive_thing(caller(), thing_id), caller()))


@bp.post("/things/<int:thing_id>/flattr")
@needs("flattr")
def flattr_thing(thing_id):
    f = flattring.flattr_thing(cfg(), caller(), thing_id)
    return jsonify(serialize.flattr(cfg(), f)), 201


@bp.post("/flattr")
@needs("flattr")
def flattr_url():
    f = flattring.flattr_url(cfg(), caller(), body().get("url"))
    return jsonify(serialize.flattr(cfg(), f)), 201


@bp.get("/user/flattrs")
@needs("extendedread")
def my_flattrs():
    return jsonify([serialize.flattr(cfg(), f) for f in flattring.flattrs_of(caller(), period_arg())])


@bp.get("/user/incoming")
@needs("extendedread")
def my_incoming():
    return jsonify([serialize.flattr(cfg(), f) for f in flattring.flattrs_of(caller(), period_arg(), incoming=True)])


@bp.post("/deposits")
@needs("flattr")
def post_deposit():
    deposit = funds.open_deposit(caller(), body().get("amount"))
    return jsonify(serialize.deposit(cfg(), deposit)), 201


@bp.get("/deposits")
@needs("extendedread")
def get_deposits():
    rows = Deposit.select().where(Deposit.user == caller()).order_by(Deposit.id.desc()).limit(500)
    return jsonify([serialize.deposit(cfg(), d) for d in rows])


@bp.post("/payouts")
@needs("flattr")
def post_payout():
    payout = funds.request_payout(cfg(), caller(), body().get("amount"))
    return jsonify(serialize.payout(cfg(), payout)), 201


@bp.get("/payouts")
@needs("extendedread")
def get_payouts():
    rows = Payout.select().where(Payout.user == caller()).order_by(Payout.id.desc()).limit(500)
    return jsonify([serialize.payout(cfg(), p) for p in rows])


@bp.post("/user/revenue-to-funds")
@needs("flattr")
def post_revenue_to_funds():
    user = caller()
    funds.revenue_to_funds(cfg(), user, body().get("amount"), request.headers.get("Idempotency-Key"))
    return jsonify(private(user))


@bp.get("/user/statement")
@needs("extendedread")
def my_statement():
    year = statement.parse_year(request.args.get("year"))
    return jsonify(statement.as_json(cfg(), statement.statement(cfg(), caller(), year)))


@bp.get("/periods/<name>")
@needs(PUBLIC)
def get_period(name):
    return jsonify(closing.period_summary(cfg(), name, utcnow()))


@bp.post("/admin/deposits/<id_or_reference>/confirm")
@needs("flattr")
def admin_confirm_deposit(id_or_reference):
    operator()
    deposit, _ = funds.confirm_deposit(id_or_reference)
    return jsonify(serialize.deposit(cfg(), deposit))


@bp.post("/admin/payouts/<payout_id>/paid")
@needs("flattr")
def admin_payout_paid(payout_id):
    operator()
    payout, _ = funds.mark_paid(payout_id)
    return jsonify(serialize.payout(cfg(), payout))


@bp.post("/admin/payouts/<payout_id>/failed")
@needs("flattr")
def admin_payout_failed(payout_id):
    operator()
    payout, _ = funds.mark_failed(payout_id)
    return jsonify(serialize.payout(cfg(), payout))


def openapi_paths() -> set[str]:
    """The paths the OpenAPI document declares (tests compare with the URL map)."""
    text = resources.files("flattr_node").joinpath("openapi.json").read_text()
    return set(json.loads(text)["paths"])


from . import subscriptions as _subscriptions  # noqa: E402,F401  (registers /subscriptions on bp)
from . import webhooks as _webhooks  # noqa: E402,F401  (registers /webhooks on bp)
