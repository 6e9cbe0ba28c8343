"""Pages of subscriptions and notices: the dashboard's two tabs, the
"subscribe" form on a thing's page and after a flattr, and the one-click
unsubscribe of notice e-mails (RFC 8058), which needs no sign-in."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField

from .. import i18n
from ..errors import FlattrError
from ..mailer import enabled as mail_enabled
from ..models_sup import NOTICE_KINDS, SUBSCRIPTION_MONTHS
from ..services import notices, subscriptions
from . import bp, me, node, reader_locale


class SubscribeForm(FlaskForm):
    thing_id = HiddenField()
    months = SelectField(_l("Months"), choices=[str(m) for m in SUBSCRIPTION_MONTHS], default="3")


class EmptyForm(FlaskForm):
    """A button: only the CSRF token."""


def lang() -> str:
    return i18n.clean(str(reader_locale()))


@bp.app_template_global()
def subscription_offer(thing_id: int) -> dict | None:
    """For a thing's page and the page after a flattr: the signed-in person's
    active subscription to it, or a form to start one (None if anonymous)."""
    if not current_user.is_authenticated:
        return None
    return {"active": subscriptions.active_for(current_user, thing_id), "form": SubscribeForm(formdata=None, thing_id=str(thing_id))}


def subscriptions_page(error: FlattrError | None = None, status: int = 200):
    return render_template(
        "dashboard/subscriptions.html", subs=subscriptions.list_of(me()), end_form=EmptyForm(formdata=None), error=error
    ), status


@bp.get("/dashboard/subscriptions")
@login_required
def subscriptions_tab():
    return subscriptions_page()


@bp.post("/dashboard/subscriptions")
@login_required
def subscribe():
    form = SubscribeForm()
    if not form.validate_on_submit():
        return subscriptions_page(FlattrError(_("choose 3, 6 or 12 months")), 422)
    try:
        sub = subscriptions.subscribe(node(), me(), form.thing_id.data, int(form.months.data))
    except FlattrError as e:
        return subscriptions_page(e, e.status)
    flash(_("You subscribed to “%(title)s” for %(months)s months.", title=sub.thing.title, months=sub.months))
    return redirect(url_for("web.subscriptions_tab"))


@bp.post("/dashboard/subscriptions/<int:sub_id>/end")
@login_required
def end_subscription(sub_id: int):
    if not EmptyForm().validate_on_submit():
        return subscriptions_page(FlattrError(_("the form expired: send it again")), 400)
    sub = subscriptions.cancel(me(), sub_id)  # someone else's: not_found
    flash(_("Your subscription to “%(title)s” has ended.", title=sub.thing.title))
    return redirect(url_for("web.subscriptions_tab"))


def notice_rows(user) -> list[dict]:
    language = lang()
    rows = []
    for n in notices.recent(user):
        subject, text = notices.describe(node(), n, language)
        rows.append({"notice": n, "subject": subject, "text": text})
    return rows


@bp.get("/dashboard/notices")
@login_required
def notices_tab():
    user = me()
    language = lang()
    return render_template(
        "dashboard/notices.html",
        rows=notice_rows(user),
        kinds=[(k, notices.kind_label(k, language), on) for k, on in notices.mailed_kinds(user).items()],
        mail=mail_enabled(node()),
        form=EmptyForm(formdata=None),
    )


@bp.post("/dashboard/notices")
@login_required
def notices_settings():
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("web.notices_tab"))
    user = me()
    for kind in NOTICE_KINDS:
        notices.set_mailed(user.id, kind, request.form.get(f"mail_{kind}") == "on")
    flash(_("Your e-mail choices are saved."))
    return redirect(url_for("web.notices_tab"))


@bp.route("/notices/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):
    """GET asks (a link checker that opens the link changes nothing); POST,
    from the page's button or the mail program (RFC 8058), turns the kind off.
    The signed token is the proof: no sign-in, and it works only for its owner."""
    user, kind = notices.read_token(node(), token)
    label = notices.kind_label(kind, lang())
    if request.method == "POST":
        notices.set_mailed(user.id, kind, False)
        return render_template("notices/unsubscribed.html", label=label, done=True)
    return render_template("notices/unsubscribed.html", label=label, done=False)
