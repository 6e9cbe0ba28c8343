"""HTTP of federation: the well-known document, WebFinger, the inbox, the
"gave" query, the first-party confirmation page for remote things
(/authorize_interaction) and, on the host, "flattr from your own node"."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from .. import public
from ..errors import FlattrError, NotFound, Validation
from ..i18n import said
from ..models import User
from ..services import embeds, flattring
from ..services import things as things_service
from . import delivery, inbox, outbound, peers, remote, signing, webfinger

bp = Blueprint("federation", __name__, template_folder="../templates")


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)


def cfg():
    return current_app.config["NODE"]


def json_response(data, status=200, content_type="application/json"):
    response = current_app.response_class(json.dumps(data), status=status, mimetype=content_type)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/flattr-node")
def well_known():
    return json_response(peers.document(cfg()))


@bp.get("/.well-known/webfinger")
def webfinger_view():
    resource = request.args.get("resource", "")
    return json_response(webfinger.describe(cfg(), resource), content_type="application/jrd+json")


class TooLarge(FlattrError):
    code, status = "invalid_request", 413


def _signed_body(cap: int = signing.MAX_BODY) -> bytes:
    """The raw body, refused (413) past the cap before it is read whole."""
    length = request.content_length
    if length is not None and length > cap:
        raise TooLarge(f"the body is larger than {cap} bytes")
    body = request.stream.read(cap + 1)
    if len(body) > cap:
        raise TooLarge(f"the body is larger than {cap} bytes")
    return body


def _json(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        return None


def _target_uri() -> str:
    """The URI the sender signed: this node's base URL and the request path."""
    query = request.query_string.decode("latin-1")
    return cfg().base_url.rstrip("/") + request.path + (f"?{query}" if query else "")


@bp.post("/federation/inbox")
def inbox_view():
    body = _signed_body()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    status, answer = inbox.receive(cfg(), request.method, _target_uri(), dict(request.headers), body, data)
    return json_response(answer, status)


@bp.post("/federation/gave")
def gave_view():
    from . import gave

    body = _signed_body()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return json_response(gave.answer(cfg(), request.method, _target_uri(), dict(request.headers), body, data))


@bp.post("/federation/statements")
def statements_view():
    from . import settlement

    body = _signed_body(settlement.MAX_STATEMENT_BODY)
    status, answer = settlement.receive(cfg(), request.method, _target_uri(), dict(request.headers), body, _json(body))
    return json_response(answer, status)


@bp.post("/federation/settlements")
def settlements_view():
    from . import settlement

    body = _signed_body()
    return json_response(settlement.answer_query(cfg(), request.method, _target_uri(), dict(request.headers), body))


# --- the reader's pages ----------------------------------------------------------


class ConfirmForm(FlaskForm):
    """The confirmation button: only the CSRF token."""


def _web_address(url: str) -> str:
    """`url` if it is an http(s) address to link to, else "" (a `back` link
    given by whoever made the link: never javascript: or data:)."""
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else ""


@bp.route("/authorize_interaction", methods=["GET", "POST"])
def authorize_interaction():
    """The home node's first-party page where a reader confirms a flattr of a
    thing on a peer (the WebFinger interaction template). Never framed."""
    uri = request.values.get("uri", "")
    if not current_user.is_authenticated:
        return redirect(url_for("web.signin", next=request.full_path))
    user = User.get_by_id(current_user.id)
    found = remote.match(uri)
    if found is None:
        raise NotFound("that is not a thing page of a node this node federates with")
    peer, remote_id = found
    form = ConfirmForm()
    error, flattr, popup_return, refused = None, None, "", ""
    popup = public.popup_args()
    thing = remote.known_thing(peer, remote_id)
    if request.method == "POST":
        if not form.validate_on_submit():
            raise FlattrError(said("the form expired: go back and try again"))
        try:
            flattr = remote.flattr_remote(cfg(), user, peer, remote_id)
        except FlattrError as e:
            error = e
        thing = remote.known_thing(peer, remote_id)
        outcome = delivery.deliver_now(cfg(), flattr.id) if flattr is not None and popup else ""
        if outcome == "delivered":
            # Started from the button's popup: back to the host, which has the
            # flattr now and tells the post's page its new count.
            popup_return = f"{peer.base_url}/things/{remote_id}/from-your-node/done?{urlencode(popup)}"
        elif outcome == "refused":
            status_, error_ = delivery.states([flattr.id])[flattr.id]
            refused = delivery.not_held_reason(status_, error_, urlsplit(peer.base_url).netloc)
    elif thing is None:
        try:
            thing = remote.learn_thing(cfg(), peer, remote_id)
        except FlattrError as e:
            error = e
    already = thing is not None and flattr is None and _already(user, thing.id)
    status = error.status if error is not None else (201 if flattr else 200)
    return render_template(
        "federation/authorize.html", uri=uri, thing=thing, host=urlsplit(peer.base_url).netloc, form=form,
        error=error, flattr=flattr, already=already, back=_web_address(request.values.get("back", "")), page_of=remote.page_of,
        popup=popup, popup_return=popup_return, refused=refused,
    ), status  # fmt: skip


def _already(user: User, thing_id: int) -> bool:
    from .. import periods
    from ..models import Flattr, utcnow

    period = periods.name_of(utcnow(), cfg().tz)
    return Flattr.select().where((Flattr.giver == user) & (Flattr.thing == thing_id) & (Flattr.period == period)).exists()


HANDLE = re.compile(r"^@?([A-Za-z0-9_.-]{1,40})@([A-Za-z0-9.-]{1,253}(?::\d{1,5})?)$")


@bp.route("/things/<int:thing_id>/from-your-node", methods=["GET", "POST"])
def from_your_node(thing_id):
    """On the host: a reader whose account is on a peer gives their handle;
    WebFinger finds their node's interaction template; off they go."""
    thing = things_service.get_thing(thing_id)
    form = ConfirmForm()
    error = None
    if request.method == "POST":
        try:
            if not form.validate_on_submit():
                raise FlattrError(said("the form expired: go back and try again"))
            target = _interaction_url(request.form.get("handle", ""), thing_id, public.popup_args())
            # A page that moves on by itself, not a redirect: the page's CSP
            # (form-action 'self') forbids a form to end up on another origin.
            return render_template("federation/continue.html", target=target, host=urlsplit(target).netloc)
        except FlattrError as e:
            error = e
    return render_template(
        "federation/from_your_node.html", thing=thing, form=form, error=error, handle=request.form.get("handle", ""),
        peers=[urlsplit(p.base_url).netloc for p in peers.list_peers()], popup=public.popup_args(),
    ), (error.status if error else 200)  # fmt: skip


@bp.get("/things/<int:thing_id>/from-your-node/done")
def from_your_node_done(thing_id):
    """On the host, the end of the popup flow: the reader's node delivered the
    flattr and sent the popup back here; as after a local flattr, the page
    tells the post's page (its origin only) the new count, then closes."""
    thing = things_service.get_thing(thing_id)
    return public.done_page(embeds.thing_ref(cfg(), thing), thing.id, status=200)


def _interaction_url(handle: str, thing_id: int, popup: dict) -> str:
    found = HANDLE.match(handle.strip())
    if found is None:
        raise Validation(said("give your handle as name@your-node (for example kim@flattr.example.org)"), field="handle")
    name, host = found.groups()
    peer = next((p for p in peers.list_peers() if urlsplit(p.base_url).netloc == host.lower()), None)
    if peer is None:
        raise FlattrError(f"{host} does not federate with this node, so it cannot flattr things here")
    template = webfinger.interaction_template(cfg(), peer, f"{name}@{host}")
    uri = f"{cfg().base_url.rstrip('/')}/things/{thing_id}"
    if "{uri}" not in template or not template.startswith(peer.base_url + "/"):
        raise outbound.PeerUnreachable(f"{host} gave no usable interaction template")
    url = template.replace("{uri}", urlencode({"u": uri})[2:])
    # Started from the button's popup: the reader's node sends the popup back
    # (popup=1, origin: the post's origin; docs/federation.md).
    return url + ("&" if "?" in url else "?") + urlencode(popup) if popup else url


__all__ = ["bp", "flattring"]
