"""OAuth 2.0 (SPEC §8): /oauth/authorize with a consent page on the node,
/oauth/token, /oauth/revoke, the RFC 8414 metadata, and the dashboard page
where people register apps and see the apps they allowed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..db import database
from ..errors import FlattrError
from ..scopes import SCOPES
from ..web import form_error, me
from . import clients
from .server import make_server

bp = Blueprint("oauth", __name__)
# The token and revocation endpoints are called by apps, authenticated by
# their client secret, never with a browser's cookie: no CSRF token there.
NO_CSRF = ("/oauth/token", "/oauth/revoke")


def init_app(app, cfg=None) -> None:
    app.extensions["flattr_oauth"] = make_server(app)
    app.register_blueprint(bp)


def server():
    return current_app.extensions["flattr_oauth"]


def base_url() -> str:
    return current_app.config["NODE"].base_url.rstrip("/")


@bp.get("/.well-known/oauth-authorization-server")
def metadata():
    """RFC 8414: what an app needs to know to talk to this node."""
    base = base_url()
    response = jsonify(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        token_endpoint=f"{base}/oauth/token",
        revocation_endpoint=f"{base}/oauth/revoke",
        scopes_supported=list(SCOPES),
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token"],
        code_challenge_methods_supported=["S256"],
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        revocation_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        service_documentation=f"{base}/api/v1/openapi.json",
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _consent_or_error(user):
    """(grant, None) for a valid request, else (None, response): an error
    the app can be told (a redirect to it), or a page for the person when
    the app or its redirect URI is not to be trusted (RFC 6749 §4.1.2.1)."""
    try:
        return server().get_consent_grant(end_user=user), None
    except OAuth2Error as error:
        if getattr(error, "redirect_uri", None):
            return None, server().handle_error_response(request, error)
        page = render_template(
            "oauth/error.html", error=error.error, description=error.description or error.error.replace("_", " ")
        )
        return None, (page, 400)


@bp.get("/oauth/authorize")
def authorize():
    if not current_user.is_authenticated:
        return redirect(url_for("web.signin", next=request.full_path))
    grant, failed = _consent_or_error(me())
    if failed is not None:
        return failed
    client = grant.client.row
    asked = grant.request.scope.split()
    page = current_app.make_response(
        render_template(
            "oauth/consent.html",
            client=client,
            scopes=[(s, SCOPES[s]) for s in asked],
            redirect_host=grant.redirect_uri.split("?")[0],
            form=FlaskForm(),
        )
    )
    # The answer redirects to the app: the node's CSP (form-action 'self')
    # would stop a browser there, so this page also allows the app's origin.
    target = urlsplit(grant.redirect_uri)
    source = f"{target.scheme}://{target.netloc}" if target.scheme in ("http", "https") else f"{target.scheme}:"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:(//[A-Za-z0-9.:\[\]-]+)?", source):
        source = ""  # nothing that could end the directive
    page.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
        f"base-uri 'none'; form-action 'self' {source}; object-src 'none'"
    )
    return page


@bp.post("/oauth/authorize")
@login_required
def authorize_answer():
    """The person's answer (CSRF-checked by the app's guard): a code for the
    app, or access_denied."""
    user = me()
    grant, failed = _consent_or_error(user)
    if failed is not None:
        return failed
    allowed = request.form.get("allow") == "yes"
    with database.atomic():
        return server().create_authorization_response(grant_user=user if allowed else None, grant=grant)


@bp.post("/oauth/token")
def token():
    with database.atomic():
        return server().create_token_response()


@bp.post("/oauth/revoke")
def revoke():
    with database.atomic():
        return server().create_endpoint_response("revocation")


class ClientForm(FlaskForm):
    name = StringField(_l("Name of the app"), validators=[DataRequired(), Length(max=100)])
    redirect_uris = TextAreaField(_l("Redirect URIs (one per line)"), validators=[DataRequired(), Length(max=20000)])


class ButtonForm(FlaskForm):
    """Only the CSRF token."""


def apps_page(form=None, new_client=None, secret=None, status=200):
    user = me()
    return render_template(
        "oauth/apps.html",
        form=form or ClientForm(formdata=None),
        button_form=ButtonForm(formdata=None),
        own=clients.clients_of(user),
        allowed=clients.allowed_apps(user),
        new_client=new_client,
        secret=secret,
        scopes=SCOPES,
    ), status


@bp.get("/dashboard/apps")
@login_required
def apps():
    return apps_page()


@bp.post("/dashboard/apps")
@login_required
def register_app():
    form = ClientForm()
    if form.validate_on_submit():
        try:
            client, secret = clients.create_client(me(), form.name.data, form.redirect_uris.data)
        except FlattrError as e:
            form_error(form, e)
        else:
            return apps_page(new_client=client, secret=secret)  # the secret is shown once, here
    return apps_page(form, status=422)


@bp.post("/dashboard/apps/<int:client_pk>/delete")
@login_required
def delete_app(client_pk: int):
    if ButtonForm().validate_on_submit():
        clients.delete_client(me(), client_pk)
        flash(_("The app is removed: its tokens no longer work."))
    return redirect(url_for("oauth.apps"))


@bp.post("/dashboard/apps/access/<int:token_id>/revoke")
@login_required
def revoke_access(token_id: int):
    if ButtonForm().validate_on_submit():
        clients.revoke_app_for(me(), token_id)
        flash(_("The app can no longer act for you."))
    return redirect(url_for("oauth.apps"))
