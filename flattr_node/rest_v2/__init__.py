"""Flattr's REST API v2 at /rest/v2 (SPEC §8), so that Flattr's old clients
work when pointed at a node: a translation layer over the same services as
/api/v1. Only its names and shapes live here: v2's field names, unix times,
statuses (create 201, flattr and update 200, flattr_once 403) and error body
(`error`, `error_description`, `error_uri`), form or JSON bodies,
`_method=patch`, and X-RateLimit-* headers. Every rule stays in the services.

It takes Bearer tokens only (personal or OAuth), never a browser's cookie,
so it needs no CSRF token. What v2 had and a node has not: docs/oauth.md.
"""

from __future__ import annotations

import calendar

from flask import Blueprint, current_app, g, jsonify, redirect, request
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import HTTPException

from ..api import PUBLIC, needs, token_caller
from ..db import execute
from ..errors import FlattrError, InvalidRequest, NotFound, RateLimited, Unauthorized
from ..models import Thing, User
from ..services import flattring, people, thing_search, things
from ..services.validate import row_id

bp = Blueprint("rest_v2", __name__, url_prefix="/rest/v2")


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)


RATE = parse("5000/hour")  # per token (else per address), per process, as Flattr had it
THING_FIELDS = ("url", "title", "description", "category", "language", "tags", "hidden")
# v2's names and statuses for the node's error codes (Flattr's error list).
V2_ERRORS = {
    "validation": ("invalid_parameters", 400),
    "flattr_once": ("flattr_once", 403),
    "rate_limit_exceeded": ("rate_limit_exceeded", 403),
    "no_money": ("no_means", 402),
}
MAX_IDS = 50


@bp.record_once
def _init(state) -> None:
    state.app.extensions["flattr_v2_limiter"] = MovingWindowRateLimiter(MemoryStorage())


def base() -> str:
    return current_app.config["NODE"].base_url.rstrip("/")


def unix(moment) -> int | None:
    return calendar.timegm(moment.timetuple()) if moment is not None else None


# --- requests in ----------------------------------------------------------------


@bp.before_request
def rate_limit():
    header = request.headers.get("Authorization", "")
    key = header.partition(" ")[2].strip()[-16:] or (request.remote_addr or "")
    limiter = current_app.extensions["flattr_v2_limiter"]
    allowed = limiter.hit(RATE, "v2", key)
    g.v2_remaining = max(limiter.get_window_stats(RATE, "v2", key).remaining, 0)
    if not allowed:
        raise RateLimited(f"at most {RATE.amount} requests an hour: wait and try again")


@bp.after_request
def rate_headers(response):
    response.headers["X-RateLimit-Limit"] = str(RATE.amount)
    response.headers["X-RateLimit-Remaining"] = str(g.get("v2_remaining", RATE.amount))
    return response


def me() -> User:
    user = token_caller()
    if user is None:
        raise Unauthorized("send 'Authorization: Bearer <token>' (a personal token or an OAuth access token)")
    return user


def viewer() -> User | None:
    return token_caller() if "Authorization" in request.headers else None


def fields() -> dict:
    """The body: JSON or form-encoded, as v2 clients send either."""
    if request.mimetype == "application/json":
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise InvalidRequest("the request body must be a JSON object")
        return data
    return request.form.to_dict()


def thing_fields(data: dict) -> dict:
    """What a thing is made of, of the fields a v2 client sends (it sends
    more, such as `_method` or `image`: those are not a thing's)."""
    return {k: data[k] for k in THING_FIELDS if k in data}


def page_args() -> tuple[int, int]:
    page, count = request.args.get("page", "1"), request.args.get("count", "30")
    return thing_search._positive(page, "page", 10**6), thing_search._positive(count, "count", thing_search.MAX_COUNT)


# --- objects out ------------------------------------------------------------------


def user_small(username: str) -> dict:
    return {
        "type": "user",
        "resource": f"{base()}/rest/v2/users/{username}",
        "link": f"{base()}/users/{username}",
        "username": username,
    }


def user_full(user: User, *, email: bool = False) -> dict:
    data = user_small(user.username)
    data.update(
        firstname=user.display_name,
        lastname="",
        avatar="",
        about=user.about,
        url=user.url or "",
        city="",
        country="",
        registered_at=unix(user.created_at),
    )
    if email:
        data["email"] = user.email
    return data


def thing_small(t: Thing) -> dict:
    return {
        "type": "thing",
        "resource": f"{base()}/rest/v2/things/{t.id}",
        "link": f"{base()}/things/{t.id}",
        "id": t.id,
        "url": t.url,
        "title": t.title,
        "image": "",
        "owner": user_small(t.owner.username),
    }


def things_full(page: list[Thing], who: User | None) -> list[dict]:
    """Things as v2 showed them. Their counts come from the same
    serializer as /api/v1's (api/serialize.things); each count is read
    for the whole page at once, never per thing."""
    from ..api import serialize

    v1 = serialize.things(current_app.config["NODE"], page, who)
    ids = [t.id for t in page]
    givers = {}
    if ids:
        givers = {
            thing_id: (people, last)
            for thing_id, people, last in execute(
                "SELECT thing_id, COUNT(DISTINCT giver_id), MAX(created_at) FROM flattr "
                f"WHERE thing_id IN ({serialize.id_list(ids)}) GROUP BY thing_id",
                ids,
            )
        }
    out = []
    for t, counted in zip(page, v1, strict=True):
        people, last = givers.get(t.id, (0, None))
        data = thing_small(t)
        data.update(
            description=t.description,
            category=t.category,
            language=t.language,
            tags=counted["tags"],
            hidden=t.hidden,
            archived=t.archived,
            flattrs=counted["flattrs"],
            flattrs_user_count=people,
            created_at=unix(t.created_at),
            updated_at=unix(t.created_at),
            last_flattr_at=unix(Thing.created_at.python_value(last)) if last is not None else None,
        )
        if who is not None:
            data["flattred"] = counted["flattred"]
        out.append(data)
    return out


def flattr_v2(f) -> dict:
    return {"type": "flattr", "thing": thing_small(f.thing), "owner": user_small(f.giver.username), "created_at": unix(f.created_at)}


def flattred(f):
    return jsonify(message="ok", description="Thing was successfully flattred", thing=thing_small(f.thing))


def one_page(items: list) -> list:
    page, count = page_args()
    return items[(page - 1) * count : page * count]


# --- routes -----------------------------------------------------------------------


@bp.get("/things/<ids>")
@needs(PUBLIC)
def get_things(ids: str):
    """One thing (`/things/7`), or several (`/things/7,9,12`) as a list."""
    parts = ids.split(",")
    if len(parts) > MAX_IDS or any(row_id(p) is None for p in parts):
        raise NotFound("the requested thing(s) could not be found")
    who = viewer()
    ids = [row_id(p) for p in parts]
    by_id = {t.id: t for t in Thing.select(Thing, User).join(User).where(Thing.id.in_(ids))}  # one query for all
    shown = [t for t in map(by_id.get, ids) if t is not None and (not t.hidden or (who is not None and who.id == t.owner_id))]
    if not shown:
        raise NotFound("the requested thing(s) could not be found")
    found = things_full(shown, who)
    return jsonify(found if len(parts) > 1 else found[0])


@bp.post("/things")
@bp.post("/things/")  # where Flattr's Python client posts
@needs("thing")
def create_thing():
    thing = things.register_thing(me(), thing_fields(fields()))
    return jsonify(
        id=thing.id, link=f"{base()}/rest/v2/things/{thing.id}", message="ok", description="Thing was created successfully"
    ), 201


@bp.route("/things/<int:thing_id>", methods=["PATCH", "POST"])
@needs("thing")
def update_thing(thing_id: int):
    """PATCH, or POST with `_method=patch` (v2's way for clients without PATCH)."""
    data = fields()
    method = (data.get("_method") or request.args.get("_method") or "").lower()
    if request.method == "POST" and method != "patch":
        raise InvalidRequest("POST to a thing updates it only with _method=patch")
    changes = thing_fields(data)
    changes.pop("url", None)  # v2 clients send the URL back with every update; it cannot change
    things.edit_thing(me(), thing_id, changes)
    return jsonify(message="ok", description="Thing was updated correctly")


@bp.delete("/things/<int:thing_id>")
@needs("thing")
def delete_thing(thing_id: int):
    """Archives it: its history is kept, no one can flattr it any more."""
    things.archive_thing(me(), thing_id)
    return "", 204


@bp.get("/things/lookup")
@needs(PUBLIC)
def lookup():
    """v2 answered with a redirect to the thing; clients follow it."""
    try:
        thing = things.lookup(request.args.get("url", ""))
    except NotFound:
        response = jsonify(
            error="not_found",
            error_description="No thing was found",
            error_uri=error_uri(),
            message="not_found",  # what v2 said, for clients that look for it
            description="No thing was found",
        )
        return response, 404
    return redirect(f"{base()}/rest/v2/things/{thing.id}", 302)


@bp.get("/things/search")
@needs(PUBLIC)
def search():
    args = request.args
    total, found = thing_search.search(
        args.get("query", ""),
        args.get("url", ""),
        args.get("tags", ""),
        args.get("language", ""),
        args.get("category", ""),
        args.get("user", ""),
        args.get("sort", ""),
        args.get("page", "1"),
        args.get("count", "30"),
    )
    who = viewer()
    return jsonify(
        total_items=total, items=len(found), page=int(args.get("page", "1")), things=things_full(found, who)
    )


@bp.post("/things/<int:thing_id>/flattr")
@needs("flattr")
def flattr_thing(thing_id: int):
    return flattred(flattring.flattr_thing(current_app.config["NODE"], me(), thing_id))


@bp.post("/flattr")
@needs("flattr")
def flattr_url():
    return flattred(flattring.flattr_url(current_app.config["NODE"], me(), fields().get("url")))


@bp.get("/users/<username>")
@needs(PUBLIC)
def get_user(username: str):
    return jsonify(user_full(people.get_user(username)))


@bp.get("/users/<username>/things")
@needs(PUBLIC)
def get_user_things(username: str):
    owner = people.get_user(username)
    who = viewer()
    own = who is not None and who.id == owner.id
    return jsonify(things_full(one_page(_things_of(owner, own)), who))


@bp.get("/user")
@needs(PUBLIC)
def get_me():
    user = me()
    return jsonify(user_full(user, email="email" in user.token_scopes))


@bp.get("/user/things")
@needs(PUBLIC)
def my_things():
    user = me()
    return jsonify(things_full(one_page(_things_of(user, True)), user))


@bp.get("/user/flattrs")
@needs("extendedread")
def my_flattrs():
    return jsonify([flattr_v2(f) for f in one_page(flattring.flattrs_of(me(), None))])


def _things_of(owner: User, own: bool) -> list[Thing]:
    query = Thing.select(Thing, User).join(User).where((Thing.owner == owner) & ~Thing.archived)
    if not own:
        query = query.where(~Thing.hidden)
    return list(query.order_by(Thing.id.desc()).limit(1000))


# --- errors -----------------------------------------------------------------------


def error_uri() -> str:
    return f"{base()}/api/v1/openapi.json"


def v2_error(code: str, description: str, status: int):
    code, status = V2_ERRORS.get(code, (code, status))
    response = jsonify(error=code, error_description=description, error_uri=error_uri())
    response.status_code = status
    return response


@bp.errorhandler(FlattrError)
def domain_error(e: FlattrError):
    return v2_error(e.code, e.description, e.status)


@bp.errorhandler(HTTPException)
def http_error(e: HTTPException):
    from ..app import HTTP_CODES

    return v2_error(HTTP_CODES.get(e.code or 400, "invalid_request"), e.description or e.name, e.code or 400)
