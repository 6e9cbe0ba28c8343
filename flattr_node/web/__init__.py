"""Server-rendered pages: the index, sign-up/in, the dashboard, the community
pages and the operator's pages (one blueprint, `web`). The thing pages, the
flattr confirmation page and the badge live in flattr_node/public/.

Views parse forms, call a service and render; they never compute money.
Amounts are shown in the node's currency with the reader's locale (from
Accept-Language, else "en"); dates in the node's timezone.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import closing, i18n, periods, words
from ..errors import FlattrError
from ..i18n import said
from ..models import User, utcnow
from ..money import format_amount

bp = Blueprint("web", __name__, template_folder="../templates")


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)


def node():
    return current_app.config["NODE"]


def reader_locale() -> Locale:
    """The language picked with the switch, if any; else the best locale the
    reader's browser asks for that Babel knows, else English. Parsed once
    per request: Babel is faster with a Locale object."""
    if "locale" not in g:
        g.locale = None
        chosen = i18n.chosen_language()
        if chosen is not None:
            g.locale = Locale.parse(chosen)
            return g.locale
        for value, _quality in request.accept_languages:
            if value == "*" or len(value) > 35:
                continue
            try:
                g.locale = Locale.parse(value, sep="-")
                break
            except (UnknownLocaleError, ValueError, TypeError):
                continue
        if g.locale is None:
            g.locale = Locale.parse("en")
    return g.locale


def me() -> User:
    """The signed-in person, fresh from the database (budgets change)."""
    return User.get_by_id(current_user.id)


def operator_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_operator:
            abort(403, said("only an operator of this node can see this page"))
        return view(*args, **kwargs)

    return wrapped


def form_words(e: FlattrError) -> str:
    """A service's error as a page says it: its words, in the reader's language."""
    return i18n.say(e.words, reader_locale())


def form_error(form, e: FlattrError) -> None:
    """Put a service's error next to its field, or above the form."""
    field = getattr(form, e.field, None) if e.field else None
    if field is not None and hasattr(field, "errors"):
        if not isinstance(field.errors, list):
            field.errors = list(field.errors)
        field.errors.append(form_words(e))
    else:
        form.form_errors.append(form_words(e))


@bp.app_template_filter("money")
def money_filter(cents) -> str:
    if cents is None:
        return "—"
    return format_amount(int(cents), node().currency, reader_locale())


@bp.app_template_filter("localtime")
def localtime_filter(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    return format_datetime(value.replace(tzinfo=dt.UTC), fmt, tzinfo=node().tz, locale=reader_locale())


@bp.app_template_filter("localdate")
def localdate_filter(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return "—"
    local = value.replace(tzinfo=dt.UTC).astimezone(node().tz)
    return format_date(local.date(), fmt, locale=reader_locale())


@bp.app_template_filter("month")
def month_filter(name: str, fmt: str = "MMM yyyy") -> str:
    year, month = periods.parse(name)
    return format_date(dt.date(year, month, 1), fmt, locale=reader_locale())


@bp.app_template_filter("plural")
def plural_filter(n, one: str, many: str) -> str:
    return words.plural(int(n), one, many)


@bp.app_template_filter("how_many")
def count_filter(n, one: str, many: str) -> str:
    return words.count(int(n), one, many)


@bp.app_template_filter("words")
def words_filter(e: FlattrError) -> str:
    return form_words(e)


@bp.app_context_processor
def page_context():
    return {"node_cfg": node(), "reader_locale": reader_locale}


@bp.after_request
def private_pages(response):
    """Pages for a signed-in person hold their money and e-mail: no caching."""
    if current_user.is_authenticated:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.get("/")
def index():
    cfg = node()
    period = periods.name_of(utcnow(), cfg.tz)
    return render_template("index.html", cfg=cfg, period=closing.period_summary(cfg, period))


@bp.get("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico before reading a page's <link rel="icon">."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.get("/healthz")
def healthz():
    return {"ok": True}


from . import auth, bank, community, dashboard, language, operator, subscriptions  # noqa: E402,F401  (register their routes on bp)
