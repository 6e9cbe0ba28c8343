"""Sign-up, sign-in, sign-out, invites, password change and reset.

Sign-in, sign-up, reset and password checks are rate-limited (ratelimit.py:
counters every process shares, in the database or Redis). A sign-in counts
per client address, and per (username, address): a stranger's wrong guesses
slow down the stranger, never lock the person out from their own address.

Sessions are rows (sessions.py): signing out, a new password and "sign out
everywhere" end them on the server, so a copied cookie stops working.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from limits import parse
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .. import sessions
from ..errors import FlattrError, RateLimited
from ..i18n import said
from ..ratelimit import Limiter
from ..services import invites, passwords, people
from . import bp, form_error, form_words, me, node

LIMITS = {
    "signin-address": parse("30/minute"),
    "signin-user": parse("10/minute"),  # per (username, client address)
    "signup-address": parse("20/hour"),
    "reset-address": parse("10/hour"),
    "password-check": parse("10/hour"),
    "sites-user": parse("20/hour"),
    "sites-address": parse("60/hour"),
}


@bp.record_once
def _init_limiter(state) -> None:
    state.app.extensions["flattr_limiter"] = Limiter(state.app.config["NODE"])


def rate_limit(name: str, *key: str) -> None:
    """Count one attempt; refuse with rate_limit_exceeded (429) over the limit."""
    limiter = current_app.extensions["flattr_limiter"]
    item = LIMITS[name]
    if not limiter.hit(item, name, *key):
        raise RateLimited(said('too many attempts: wait a minute and try again (at most %(amount)s per %(name)s)', amount=item.amount, name=item.GRANULARITY.name))


def start_session(user) -> None:
    """Sign in: a new server-side session, and a new CSRF token (one a page
    handed out before sign-in is not the signed-in person's)."""
    session.pop("csrf_token", None)
    login_user(user)
    session["sid"] = sessions.start(user)


def end_session() -> None:
    sessions.end(session.get("sid"))
    session.pop("sid", None)
    session.pop("csrf_token", None)
    logout_user()


@bp.record_once
def _end_stale_sessions(state) -> None:
    """A cookie whose session has ended loads no one: the app's user loader
    is wrapped, so the check runs only when a page asks who is signed in
    (cookie-free pages such as the badge never do)."""
    manager = state.app.login_manager
    load = manager._user_callback  # the loader app.py registered

    def load_if_current(user_id: str):
        user = load(user_id)
        if user is None or not sessions.is_live(session.get("sid"), user.id):
            return None
        return user

    manager.user_loader(load_if_current)


def client_address() -> str:
    return request.remote_addr or "unknown"


class SignInForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


class SignUpForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(min=2, max=40)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=1024)])
    code = StringField(_l("Invite code"), validators=[Length(max=40)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=8, max=1024)])
    confirm = PasswordField(_l("New password again"), validators=[EqualTo("new_password", _l("the two new passwords differ"))])


class ResetRequestForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])


class ResetForm(FlaskForm):
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=8, max=1024)])
    confirm = PasswordField(_l("New password again"), validators=[EqualTo("new_password", _l("the two new passwords differ"))])


def safe_next(target: str | None) -> str:
    """Only a path on this node: never an open redirect."""
    if not target:
        return url_for("web.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("web.index")
    return target


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    form = SignInForm()
    next_url = safe_next(request.args.get("next") or url_for("web.dashboard"))
    if request.method == "POST":
        rate_limit("signin-address", client_address())
        rate_limit("signin-user", str(form.username.data or "").strip().lower()[:40], client_address())
    if form.validate_on_submit():
        try:
            user = people.authenticate(form.username.data, form.password.data)
        except FlattrError as e:  # a suspended account, with the right password
            words = form_words(e)
            form.form_errors.append(words[0].upper() + words[1:] + ".")
        else:
            if user is not None:
                start_session(user)
                return redirect(next_url)
            form.password.errors.append("That username and password do not match.")
    return render_template("signin.html", form=form, next_url=next_url), (200 if not form.errors else 422)


@bp.post("/signout")
def signout():
    end_session()
    flash(_("You are signed out."))
    return redirect(url_for("web.index"))


@bp.post("/signout/everywhere")
@login_required
def signout_everywhere():
    """End every session of this person, on every device, this one too."""
    sessions.end_all(current_user.id)
    end_session()
    flash(_("You are signed out everywhere: every browser must sign in again."))
    return redirect(url_for("web.signin"))


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    cfg = node()
    mode = invites.signup_allowed(cfg)
    form = SignUpForm()
    if request.method == "GET" and request.args.get("code"):
        form.code.data = request.args["code"]
    status = 200
    if mode == "closed":
        status = 403
    elif form.validate_on_submit():
        rate_limit("signup-address", client_address())
        try:
            user = invites.sign_up(cfg, form.username.data, form.email.data, form.password.data, form.code.data)
        except FlattrError as e:
            form_error(form, e)
        else:
            start_session(user)
            if user.is_operator:
                flash(_("Welcome! You are the first person on this node, so you are its operator."))
            else:
                flash(_("Welcome! Open a deposit to start flattring."))
            return redirect(url_for("web.dashboard"))
    if form.errors:
        status = 422
    return render_template("signup.html", form=form, mode=mode), status


@bp.get("/invites")
@login_required
def invite_codes():
    cfg = node()
    return render_template("invites.html", invites=invites.invites_of(cfg, me()), cfg=cfg)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password_change():
    form = PasswordChangeForm()
    if request.method == "POST":
        rate_limit("password-check", str(current_user.id))
    if form.validate_on_submit():
        try:
            passwords.change_password(me(), form.current_password.data, form.new_password.data, node())
        except FlattrError as e:
            if e.field == "password":
                e.field = "new_password"
            form_error(form, e)
        else:
            sessions.end_all(current_user.id, keep=session.get("sid"))  # this session stays; the others end
            flash(_("Your password is changed: your other sessions are signed out."))
            return redirect(url_for("web.dashboard"))
    return render_template("password_change.html", form=form), (422 if form.errors else 200)


@bp.route("/password/forgot", methods=["GET", "POST"])
def password_forgot():
    cfg = node()
    form = ResetRequestForm()
    sent = False
    if form.validate_on_submit():
        rate_limit("reset-address", client_address())
        try:
            passwords.request_reset(cfg, form.email.data, lambda token: cfg.base_url.rstrip("/") + url_for("web.password_reset", token=token))
        except FlattrError as e:
            form_error(form, e)
        else:
            sent = True
    return render_template(
        "password_forgot.html", form=form, sent=sent, mail=passwords.mail_enabled(cfg)
    ), (422 if form.errors else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def password_reset(token: str):
    form = ResetForm()
    try:
        passwords.reset_user(token)
    except FlattrError as e:
        return render_template("password_reset.html", form=None, problem=form_words(e)), 404
    if form.validate_on_submit():
        try:
            reset = passwords.reset_password(token, form.new_password.data)
        except FlattrError as e:
            if e.field == "password":
                e.field = "new_password"
            form_error(form, e)
        else:
            sessions.end_all(reset.id)
            if current_user.is_authenticated:
                end_session()
            flash(_("Your password is changed: sign in with it."))
            return redirect(url_for("web.signin"))
    return render_template("password_reset.html", form=form, problem=None), (422 if form.errors else 200)
