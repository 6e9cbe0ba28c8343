"""Public pages of the node: thing pages, the button's confirmation page, the
badge, the oEmbed provider, auto-submit and site verification.

Views parse input, call a service, render. Money is computed in services
(`flattring.worth_now`) and only formatted here.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_login import current_user

import plugin_bridge as pb

from ..errors import FlattrError, NotFound, Validation
from ..i18n import said
from ..models import Flattr, User
from ..money import format_amount
from ..services import embeds, flattring, sites
from ..services import things as things_service

bp = Blueprint("public", __name__, template_folder="../templates")


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)

def cfg():
    return current_app.config["NODE"]


def no_session() -> None:
    """This response must not read or write the session: no Set-Cookie, no
    Vary: Cookie, so caches may share it (the badge, the scripts, oEmbed).
    Called once the view has succeeded: error pages render with the session
    like every other page (and are not cached)."""
    request_ctx._session = current_app.session_interface.make_null_session(current_app)


def me() -> User | None:
    return User.get_by_id(current_user.id) if current_user.is_authenticated else None


def popup_args() -> dict:
    """`popup` and `origin` carried from the button's script through sign-in and POST."""
    values = request.values
    out = {}
    if values.get("popup") == "1":
        out["popup"] = "1"
        origin = values.get("origin", "")
        try:
            if origin and pb.markup.origin_of(origin) == origin.lower():
                out["origin"] = origin
        except ValueError:
            pass
    return out


def message_origin(args: dict, target_url: str) -> str | None:
    """postMessage goes only to the origin of the post itself."""
    origin = args.get("origin")
    if not origin:
        return None
    try:
        return origin if pb.markup.origin_of(target_url) == origin.lower() else None
    except ValueError:
        return None


def signin_first():
    return redirect(url_for("web.signin", next=request.full_path if request.query_string else request.path))


def worth(user: User) -> dict:
    w = flattring.worth_now(cfg(), user)
    from ..web import reader_locale

    money = lambda cents: format_amount(cents, cfg().currency, reader_locale())  # noqa: E731
    return {**w, "share_text": money(w["share"]), "spend_text": money(w["spend"]), "funds_text": money(w["funds"]), "min_funds_text": money(w["min_funds"])}


# --- thing pages -------------------------------------------------------------


@bp.get("/things/<int:thing_id>")
def thing_page(thing_id):
    thing = things_service.get_thing(thing_id)
    ref = embeds.thing_ref(cfg(), thing)
    total = Flattr.select().where(Flattr.thing == thing.id).count()
    return render_template(
        "public/thing.html",
        thing=thing,
        ref=ref,
        total=total,
        button=pb.button_html(ref),
        head=pb.payment_link_head(ref) + "\n" + pb.oembed_links(ref.page, cfg().base_url),
    )


def _confirm(ref, *, post_url: str, already: bool, error: FlattrError | None = None, status: int = 200, archived: bool = False):
    user = me()
    owner = ref.user_id if isinstance(ref, pb.AutoSubmit) else ref.owner
    return (
        render_template(
            "public/confirm.html",
            ref=ref,
            owner_gave=flattring.owner_has_given(cfg(), owner),
            archived=archived,
            own=user is not None and user.username == owner,
            is_new=isinstance(ref, pb.AutoSubmit),
            worth=worth(user),
            already=already,
            error=error,
            post_url=post_url,
            popup=popup_args(),
        ),
        status,
    )


def done_page(ref, thing_id: int, status: int = 201):
    """"Thank you", with the count this month; in the button's popup it tells
    the post's page (its origin only) the new count and closes."""
    count = flattring.count_this_period(cfg(), thing_id)
    args = popup_args()
    return render_template(
        "public/done.html",
        ref=ref,
        thing_id=thing_id,
        count=count,
        popup=args,
        post_origin=message_origin(args, ref.url),
    ), status


def _already(user: User, thing_id: int) -> bool:
    from .. import periods
    from ..models import utcnow

    period = periods.name_of(utcnow(), cfg().tz)
    return Flattr.select().where((Flattr.giver == user) & (Flattr.thing == thing_id) & (Flattr.period == period)).exists()


@bp.route("/things/<int:thing_id>/flattr", methods=["GET", "POST"])
def confirm(thing_id):
    """The first-party page where a reader confirms a flattr (never framed)."""
    thing = things_service.get_thing(thing_id)
    if not current_user.is_authenticated:
        return signin_first()
    ref = embeds.thing_ref(cfg(), thing)
    user = me()
    post_url = url_for("public.confirm", thing_id=thing.id)
    if request.method == "POST":
        try:
            flattr = flattring.flattr_thing(cfg(), user, thing.id)
        except FlattrError as e:
            return _confirm(
                embeds.thing_ref(cfg(), thing), post_url=post_url, already=_already(user, thing.id), error=e, status=e.status, archived=thing.archived
            )
        return done_page(embeds.thing_ref(cfg(), thing), flattr.thing_id)
    return _confirm(ref, post_url=post_url, already=_already(user, thing.id), archived=thing.archived)


# --- auto-submit -------------------------------------------------------------

AUTOSUBMIT_KEYS = ("user_id", "url", "title", "description", "category", "language", "tags", "hidden")


@bp.route("/submit/auto", methods=["GET", "POST"])
def autosubmit():
    """Flattr's auto-submit: a button for a post not registered yet (SPEC §3)."""
    params = {k: request.args[k] for k in AUTOSUBMIT_KEYS if k in request.args}
    ref = embeds.autosubmit_ref(cfg(), params)
    if isinstance(ref, pb.ThingRef):
        return redirect(url_for("public.confirm", thing_id=ref.id, **popup_args()))
    if not current_user.is_authenticated:
        return signin_first()
    user = me()
    post_url = url_for("public.autosubmit") + "?" + urlencode(list(params.items()))
    if request.method == "POST":
        try:
            flattr = flattring.flattr_autosubmit(cfg(), user, params)
        except FlattrError as e:
            return _confirm(ref, post_url=post_url, already=False, error=e, status=e.status)
        return done_page(embeds.thing_ref(cfg(), things_service.get_thing(flattr.thing_id)), flattr.thing_id)
    return _confirm(ref, post_url=post_url, already=False)


# --- badge, scripts ----------------------------------------------------------


def _size_arg() -> str:
    size = request.args.get("size", "default")
    if size not in pb.SIZES:
        raise Validation(said('size must be one of %(sizes)s', sizes=', '.join(pb.SIZES)), field="size")
    return size


def _badge(count: int, size: str, tag: str):
    no_session()
    response = current_app.response_class(pb.badge_svg(count, size), mimetype="image/svg+xml")
    # Stored by browsers and caches, but revalidated on every view (a cheap
    # 304 thanks to the ETag): a reader who just flattred sees the new count.
    response.headers["Cache-Control"] = "public, no-cache"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.set_etag(f"{tag}-{size}-{count}")
    return response.make_conditional(request)


@bp.get("/things/<int:thing_id>/badge.svg")
def badge(thing_id):
    return _badge(flattring.count_this_period(cfg(), thing_id), _size_arg(), f"t{thing_id}")


@bp.get("/badge.svg")
def badge_by_url():
    """The badge of a URL (an auto-submit button): 0 until its first flattr."""
    url = request.args.get("url", "")
    try:
        key = pb.safe_url(url)
    except ValueError as e:
        raise Validation(str(e), field="url") from None
    import hashlib

    return _badge(embeds.badge_count(cfg(), key), _size_arg(), "u" + hashlib.sha256(key.encode()).hexdigest()[:16])


def _script(text: str):
    no_session()
    response = current_app.response_class(text, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.set_etag(str(hash(text) & 0xFFFFFFFF))
    return response.make_conditional(request)


@bp.get("/button.js")
def button_js():
    return _script(pb.popup_script())


POPUP_DONE_JS = r"""/* In the confirmation popup: tell the page that opened it the new count, then close. */
(function () {
  "use strict";
  var el = document.getElementById("flattr-result");
  if (!el) { return; }
  var origin = el.getAttribute("data-origin");
  var msg = {type: "flattr-node:flattred", thing: Number(el.getAttribute("data-thing")),
             count: Number(el.getAttribute("data-count")), url: el.getAttribute("data-url")};
  if (window.opener && origin) {
    window.opener.postMessage(msg, origin);  /* only the post's own origin receives it */
  }
  if (window.opener) { setTimeout(function () { window.close(); }, 1200); }
})();
"""


@bp.get("/button/done.js")
def done_js():
    return _script(POPUP_DONE_JS)


# --- oEmbed ------------------------------------------------------------------


def _dimension(name: str) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= 10000:
        raise Validation(said('%(name)s must be a whole number of pixels between 1 and 10000', name=name), field=name)
    return int(value)


@bp.get("/oembed")
def oembed():
    """oEmbed 1.0 provider (type rich) for thing pages, thing URLs and auto-submit URLs."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "xml"):
        abort(501, description=f"format {fmt[:20]!r} is not supported: use json or xml")
    url = request.args.get("url")
    if not url:
        raise Validation(said('url is required'), field="url")
    maxwidth, maxheight = _dimension("maxwidth"), _dimension("maxheight")
    target = embeds.resolve(cfg(), url)
    doc = pb.oembed(target, maxwidth=maxwidth, maxheight=maxheight)
    no_session()  # only now: an error page above may use the session like any page
    if fmt == "xml":
        response = current_app.response_class(pb.oembed_xml(doc), mimetype="text/xml")
    else:
        response = current_app.response_class(pb.oembed_json(doc), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# --- site verification ---------------------------------------------------------


@bp.route("/sites", methods=["GET", "POST"])
def verify_sites():
    """A person verifies their site: a rel="payment" link to their profile on its home page."""
    if not current_user.is_authenticated:
        return signin_first()
    user = me()
    error, status = None, 200
    if request.method == "POST":
        from ..web.auth import client_address, rate_limit

        try:
            rate_limit("sites-address", client_address())
            rate_limit("sites-user", str(user.id))
            site = sites.verify_site(cfg(), user, request.form.get("url", ""))
        except FlattrError as e:
            error, status = e, e.status
        else:
            flash(_("%(host)s is verified as yours: auto-submit buttons for it create things only for you.", host=site.host))
            return redirect(url_for("public.verify_sites"))
    profile = f"{cfg().base_url.rstrip('/')}/users/{user.username}"
    return render_template("public/sites.html", sites=sites.sites_of(user), error=error, profile=profile, url=request.form.get("url", "")), status


@bp.app_template_filter("host_of")
def host_of(url: str) -> str:
    return urlsplit(url).netloc


__all__ = ["bp", "NotFound"]
