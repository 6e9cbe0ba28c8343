"""Sign-in and sign-out (flask-login sessions, Flask-WTF CSRF)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..services import people
from . import bp


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=40)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


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
    next_url = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        user = people.authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            return redirect(next_url)
        form.password.errors.append("That username and password do not match.")
    return render_template("signin.html", form=form, next_url=next_url), (200 if not form.errors else 422)


@bp.post("/signout")
def signout():
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("web.index"))
