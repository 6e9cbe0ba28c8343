"""/dashboard/webhooks: a person's endpoints, the delivery log, "send again"."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length

from .. import i18n
from ..errors import FlattrError, Validation
from ..i18n import said
from ..web import form_error, me
from . import EVENTS, delete_endpoint, enable_endpoint, live_endpoints, messages_of, send_again
from . import create_endpoint as create

bp = Blueprint("webhooks_web", __name__)


def init_app(app, cfg) -> None:
    app.register_blueprint(bp)


class EndpointForm(FlaskForm):
    url = StringField(_l("URL"), validators=[DataRequired(), Length(max=2048)])
    events = SelectMultipleField(_l("Events"), choices=list(EVENTS), default=list(EVENTS))


class ButtonForm(FlaskForm):
    """Only the CSRF token."""


@bp.app_template_filter("delivery_error")
def delivery_error(message) -> str:
    """Why a delivery failed, in the page's language (the log keeps English)."""
    if message.last_status and not 200 <= message.last_status < 300:
        return _("the endpoint answered HTTP %(status)s", status=message.last_status)
    return i18n.say(message.last_error)


def page(form=None, status=200):
    user = me()
    return render_template(
        "webhooks/index.html",
        form=form or EndpointForm(formdata=None),
        button_form=ButtonForm(formdata=None),
        endpoints=list(live_endpoints(user).order_by(live_endpoints(user).model.id)),
        messages=messages_of(user),
        events=EVENTS,
    ), status


@bp.get("/dashboard/webhooks")
@login_required
def index():
    return page()


@bp.post("/dashboard/webhooks")
@login_required
def add():
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            if not form.events.data:
                raise Validation(said('choose at least one event'), field="events")
            create(current_app.config["NODE"], me(), form.url.data, form.events.data)
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("The endpoint is added. Verify each delivery's signature with its secret."))
            return redirect(url_for("webhooks_web.index"))
    return page(form, 422)


@bp.post("/dashboard/webhooks/<int:endpoint_id>/delete")
@login_required
def delete(endpoint_id: int):
    if ButtonForm().validate_on_submit():
        delete_endpoint(me(), endpoint_id)
        flash(_("The endpoint is deleted: nothing more is sent to it."))
    return redirect(url_for("webhooks_web.index"))


@bp.post("/dashboard/webhooks/<int:endpoint_id>/enable")
@login_required
def enable(endpoint_id: int):
    if ButtonForm().validate_on_submit():
        enable_endpoint(me(), endpoint_id)
        flash(_("The endpoint is enabled again."))
    return redirect(url_for("webhooks_web.index"))


@bp.post("/dashboard/webhooks/messages/<int:message_id>/resend")
@login_required
def resend(message_id: int):
    if ButtonForm().validate_on_submit():
        send_again(me(), message_id)
        flash(_("The message is queued again, with the same webhook-id: it goes out within seconds."))
    return redirect(url_for("webhooks_web.index"))
