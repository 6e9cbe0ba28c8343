"""The dashboard: funds, revenue, budget and top-up, this month's flattrs with
what each is worth now, past months, deposits, withdrawals, things, tokens
and the profile. Every route works on the signed-in person's own data only.
"""

from __future__ import annotations

from babel.numbers import get_currency_precision
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from markupsafe import escape
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField, URLField
from wtforms.validators import DataRequired, Length

from .. import ledger, periods
from ..bank.instructions import bank_details, has_qr
from ..errors import FlattrError, NotFound, RateLimited, Validation
from ..i18n import said
from ..models import CATEGORIES, ApiToken, Deposit, Payout, Thing
from ..money import format_amount, parse_amount
from ..scopes import SCOPES
from ..services import flattring, funds, passwords, people, reports, things
from . import bp, form_error, me, node, reader_locale
from .charts import month_chart
from .confirm import ask_then


class AmountForm(FlaskForm):
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=20)])


class BudgetForm(FlaskForm):
    monthly_budget = StringField(_l("Monthly budget"), validators=[DataRequired(), Length(max=20)])


class TopupForm(FlaskForm):
    monthly_topup = StringField(_l("Monthly top-up"), validators=[Length(max=20)])


class FlattrUrlForm(FlaskForm):
    url = URLField(_l("Address of the post"), validators=[DataRequired(), Length(max=2048)])


def category_choices() -> list:
    """The categories with their names in the page's language (lazy: read when shown)."""
    labels = {
        "text": _l("text"), "images": _l("images"), "video": _l("video"), "audio": _l("audio"),
        "software": _l("software"), "people": _l("people"), "rest": _l("other"),
    }  # fmt: skip
    try:
        from wtforms.fields.choices import SelectChoice  # WTForms 3.3 and later
    except ImportError:
        return [(c, labels[c]) for c in CATEGORIES]
    return [SelectChoice(c, labels[c]) for c in CATEGORIES]


class ThingForm(FlaskForm):
    url = URLField(_l("Address (URL)"), validators=[Length(max=2048)])
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])
    category = SelectField(_l("Category"), choices=category_choices())
    language = StringField(_l("Language"), validators=[Length(max=35)])
    tags = StringField(_l("Tags (comma separated)"), validators=[Length(max=500)])
    hidden = BooleanField(_l("Hidden from the directory and my profile"))


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    scopes = SelectMultipleField(_l("It may"), choices=list(SCOPES), default=list(SCOPES))


class ProfileForm(FlaskForm):
    display_name = StringField(_l("Display name"), validators=[Length(max=100)])
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    url = URLField(_l("Web site"), validators=[Length(max=2048)])
    about = TextAreaField(_l("About you"), validators=[Length(max=2000)])
    show_flattrs = BooleanField(_l("Show what I flattr on my public profile"))
    current_password = PasswordField(_l("Current password (needed to change your e-mail)"), validators=[Length(max=1024)])


class EmptyForm(FlaskForm):
    """A button: only the CSRF token."""


def cents(form, field_name: str, *, allow_empty: bool = False) -> int | None:
    """A form's amount ("2", "2.50", "2,50") in cents, or a field error."""
    field = getattr(form, field_name)
    value = (field.data or "").strip()
    if allow_empty and value == "":
        return 0
    try:
        return parse_amount(value, node().currency)
    except ValueError:
        raise Validation(said('write an amount such as 2.50 (%(currency)s)', currency=node().currency), field=field_name) from None


def as_amount(value: int) -> str:
    """Cents back into the text a form field shows."""
    digits = get_currency_precision(node().currency)
    if digits == 0:
        return str(value)
    return f"{value // 10**digits}.{value % 10**digits:0{digits}d}"


def overview(**forms):
    cfg = node()
    user = me()
    budget_form = forms.get("budget_form") or BudgetForm(formdata=None, monthly_budget=as_amount(user.monthly_budget))
    topup_form = forms.get("topup_form") or TopupForm(formdata=None, monthly_topup=as_amount(user.monthly_topup) if user.monthly_topup else "")
    flattr_form = forms.get("flattr_form") or FlattrUrlForm(formdata=None)
    status = 422 if any(f.errors for f in forms.values()) else 200
    return render_template(
        "dashboard/overview.html",
        cfg=cfg,
        user=user,
        funds=ledger.balance(user.id, "funds"),
        revenue=ledger.balance(user.id, "revenue"),
        pending_revenue=ledger.balance(user.id, "pending_revenue"),
        projection=reports.projection(cfg, user),
        budget_form=budget_form,
        topup_form=topup_form,
        flattr_form=flattr_form,
        pending=Deposit.select().where((Deposit.user == user.id) & (Deposit.status == "pending")).count(),
    ), status


@bp.get("/dashboard")
@login_required
def dashboard():
    return overview()


@bp.post("/dashboard/budget")
@login_required
def set_budget():
    form = BudgetForm()
    if form.validate_on_submit():
        try:
            people.update_settings(node(), me(), {"monthly_budget": cents(form, "monthly_budget")})
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Your monthly budget is now %(amount)s.", amount=format_amount(me().monthly_budget, node().currency, reader_locale())))
            return redirect(url_for("web.dashboard"))
    return overview(budget_form=form)


@bp.post("/dashboard/topup")
@login_required
def set_topup():
    form = TopupForm()
    if form.validate_on_submit():
        try:
            people.update_settings(node(), me(), {"monthly_topup": cents(form, "monthly_topup", allow_empty=True)})
        except FlattrError as e:
            form_error(form, e)
        else:
            topup = me().monthly_topup
            flash(
                _("Every month from the next one, a deposit of %(amount)s will be opened for you.", amount=format_amount(topup, node().currency, reader_locale()))
                if topup else _("Your automatic top-up is off.")
            )
            return redirect(url_for("web.dashboard"))
    return overview(topup_form=form)


@bp.post("/dashboard/flattr")
@login_required
def flattr_url():
    form = FlattrUrlForm()
    if form.validate_on_submit():
        try:
            flattr = flattring.flattr_url(node(), me(), form.url.data)
        except FlattrError as e:
            if e.field != "url":
                e.field = "url"
            form_error(form, e)
        else:
            flash(_("You flattred %(title)s.", title=flattr.thing.title))
            return redirect(url_for("web.dashboard"))
    return overview(flattr_form=form)


@bp.get("/dashboard/history")
@login_required
def history():
    cfg = node()
    user = me()
    months = reports.months(cfg, user)
    selected = request.args.get("period") or next((m.period for m in reversed(months) if m.status == "closed"), months[-1].period)
    if not periods.is_valid(selected):
        raise Validation(said('period must be YYYY-MM'), field="period")
    return render_template(
        "dashboard/history.html",
        cfg=cfg,
        months=months,
        chart=month_chart(months),
        selected=selected,
        received=reports.received_per_thing(user, selected),
        given=reports.given_in(user, selected),
    )


def deposits_page(form=None):
    cfg = node()
    user = me()
    form = form or AmountForm(formdata=None)
    rows = list(Deposit.select().where(Deposit.user == user.id).order_by(Deposit.created_at.desc(), Deposit.id.desc()).limit(200))
    return render_template(
        "dashboard/deposits.html", cfg=cfg, form=form, deposits=rows, cancel_form=EmptyForm(formdata=None),
        bank=bank_details(cfg), qr=has_qr(cfg),
    ), (
        422 if form.errors else 200
    )


@bp.get("/dashboard/deposits")
@login_required
def deposits():
    return deposits_page()


@bp.post("/dashboard/deposits")
@login_required
def open_deposit():
    form = AmountForm()
    if form.validate_on_submit():
        try:
            deposit = funds.open_deposit(me(), cents(form, "amount"))
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Deposit %(reference)s opened: pay %(amount)s quoting the reference.", reference=deposit.reference, amount=format_amount(deposit.amount, node().currency, reader_locale())))
            return redirect(url_for("web.deposits", _anchor=f"deposit-{deposit.id}"))
    return deposits_page(form)


@bp.post("/dashboard/deposits/<int:deposit_id>/cancel")
@login_required
def cancel_deposit(deposit_id: int):
    deposit = Deposit.get_or_none((Deposit.id == deposit_id) & (Deposit.user == me().id))
    if deposit is None:
        raise NotFound(said('you have no deposit with that id'))
    return ask_then(
        _("Cancel deposit %(reference)s?", reference=deposit.reference),
        button=_("Cancel this deposit"),
        back=url_for("web.deposits"),
        detail=_(
            "Only if you will not pay its %(amount)s: money sent quoting a cancelled reference cannot be credited to you automatically.",
            amount=format_amount(deposit.amount, node().currency, reader_locale()),
        ),
        act=lambda: funds.cancel_deposit(deposit_id, user=me()),  # someone else's deposit: not_found
        done=_("The deposit is cancelled."),
    )


def payouts_page(payout_form=None, move_form=None):
    cfg = node()
    user = me()
    payout_form = payout_form or AmountForm(formdata=None, prefix="payout")
    move_form = move_form or AmountForm(formdata=None, prefix="move")
    rows = list(Payout.select().where(Payout.user == user.id).order_by(Payout.created_at.desc(), Payout.id.desc()).limit(200))
    status = 422 if payout_form.errors or move_form.errors else 200
    return render_template(
        "dashboard/payouts.html",
        cfg=cfg,
        revenue=ledger.balance(user.id, "revenue"),
        funds=ledger.balance(user.id, "funds"),
        payout_form=payout_form,
        move_form=move_form,
        payouts=rows,
    ), status


@bp.get("/dashboard/payouts")
@login_required
def payouts():
    return payouts_page()


@bp.post("/dashboard/payouts")
@login_required
def request_payout():
    form = AmountForm(prefix="payout")
    if form.validate_on_submit():
        try:
            payout = funds.request_payout(node(), me(), cents(form, "amount"))
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Withdrawal of %(amount)s requested: the operator will pay it.", amount=format_amount(payout.amount, node().currency, reader_locale())))
            return redirect(url_for("web.payouts"))
    return payouts_page(payout_form=form)


@bp.post("/dashboard/revenue-to-funds")
@login_required
def revenue_to_funds():
    form = AmountForm(prefix="move")
    if form.validate_on_submit():
        try:
            amount = cents(form, "amount")
            funds.revenue_to_funds(node(), me(), amount)
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("%(amount)s moved from your revenue into your funds.", amount=format_amount(amount, node().currency, reader_locale())))
            return redirect(url_for("web.payouts"))
    return payouts_page(move_form=form)


def embed_snippets(thing: Thing) -> list[tuple[str, str]]:
    """(platform, markup) to paste for a thing: plugin_bridge's snippets when
    it is installed, else a plain link to the thing's page."""
    cfg = node()
    page = f"{cfg.base_url.rstrip('/')}/things/{thing.id}"
    try:
        from plugin_bridge import PLATFORMS, ThingRef, snippet
    except ImportError:
        return [("html", f'<a href="{escape(page)}" rel="payment">Flattr this: {escape(thing.title)}</a>')]
    ref = ThingRef(node=cfg.base_url, id=thing.id, url=thing.url, title=thing.title, owner=thing.owner.username)
    return [(platform, snippet(platform, ref)) for platform in PLATFORMS]


def every_post_snippets(username: str) -> list[tuple[str, str]]:
    """(platform, theme fragment) that puts an auto-submit button under every
    post: a post gets its thing on its first flattr. Empty without plugin_bridge."""
    try:
        from plugin_bridge import PLATFORMS, template_snippet
    except ImportError:
        return []
    out = []
    for platform in PLATFORMS:
        try:
            out.append((platform, template_snippet(platform, node().base_url, username)))
        except ValueError:  # a platform with no template form
            continue
    return out


def thing_form_data(form: ThingForm, creating: bool) -> dict:
    data = {
        "title": form.title.data,
        "description": form.description.data or "",
        "category": form.category.data,
        "language": form.language.data or "",
        "tags": form.tags.data or "",
        "hidden": bool(form.hidden.data),
    }
    if creating:
        data["url"] = form.url.data
    return data


def things_page(form=None):
    user = me()
    form = form or ThingForm(formdata=None)
    rows = list(Thing.select().where(Thing.owner == user.id).order_by(Thing.archived, Thing.created_at.desc(), Thing.id.desc()))
    return render_template(
        "dashboard/things.html", form=form, things=rows, archive_form=EmptyForm(formdata=None), every_post=every_post_snippets(user.username)
    ), (
        422 if form.errors else 200
    )


@bp.get("/dashboard/things")
@login_required
def my_things():
    return things_page()


@bp.post("/dashboard/things")
@login_required
def register_thing():
    form = ThingForm()
    if form.validate_on_submit():
        try:
            thing = things.register_thing(me(), thing_form_data(form, creating=True))
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("%(title)s is registered: paste its button into your post.", title=thing.title))
            return redirect(url_for("web.edit_thing", thing_id=thing.id))
    return things_page(form)


def own_thing(thing_id: int) -> Thing:
    """The signed-in person's thing; anyone else's is not_found here."""
    thing = Thing.get_or_none((Thing.id == thing_id) & (Thing.owner == me().id))
    if thing is None:
        raise NotFound(said('you have no thing with that id'))
    return thing


@bp.route("/dashboard/things/<int:thing_id>", methods=["GET", "POST"])
@login_required
def edit_thing(thing_id: int):
    thing = own_thing(thing_id)
    form = ThingForm(obj=thing if request.method == "GET" else None)
    if request.method == "GET":
        form.tags.data = thing.tags.replace(",", ", ")
    elif form.validate_on_submit():
        try:
            things.edit_thing(me(), thing.id, thing_form_data(form, creating=False))
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Saved."))
            return redirect(url_for("web.edit_thing", thing_id=thing.id))
    return render_template(
        "dashboard/thing_edit.html", thing=thing, form=form, snippets=embed_snippets(thing), archive_form=EmptyForm(formdata=None)
    ), (422 if form.errors else 200)


@bp.post("/dashboard/things/<int:thing_id>/archive")
@login_required
def archive_thing(thing_id: int):
    thing = own_thing(thing_id)
    return ask_then(
        _("Archive %(title)s?", title=thing.title),
        button=_("Archive it"),
        back=url_for("web.my_things"),
        detail=_("It keeps its history, but nobody can flattr it any more, and this cannot be undone."),
        act=lambda: things.archive_thing(me(), thing.id),
        done=_("%(title)s is archived: it keeps its history and can no longer be flattred.", title=thing.title),
    )


def tokens_page(form=None, new_token: str | None = None):
    user = me()
    form = form or TokenForm(formdata=None)
    rows = list(
        ApiToken.select()
        .where((ApiToken.user == user.id) & ApiToken.oauth_client_id.is_null())  # apps' tokens: /dashboard/apps
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return render_template(
        "dashboard/tokens.html",
        form=form,
        tokens=rows,
        new_token=new_token,
        revoke_form=EmptyForm(formdata=None),
        scopes=SCOPES,
    ), (422 if form.errors else 200)


@bp.get("/dashboard/tokens")
@login_required
def tokens():
    return tokens_page()


@bp.post("/dashboard/tokens")
@login_required
def create_token():
    form = TokenForm()
    if form.validate_on_submit():
        try:
            if not form.scopes.data:
                raise Validation(said('choose at least one thing the token may do'), field="scopes")
            token = people.create_token(me(), form.name.data, form.scopes.data)
        except FlattrError as e:
            form_error(form, e)
        else:
            # Shown once, in this response only: never in a redirect or the session.
            return tokens_page(new_token=token)
    return tokens_page(form)


@bp.post("/dashboard/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = ApiToken.get_or_none((ApiToken.id == token_id) & (ApiToken.user == me().id) & ApiToken.revoked_at.is_null())
    if token is None:
        raise NotFound(said('no such token'))
    return ask_then(
        _("Revoke the token “%(name)s”?", name=token.name),
        button=_("Revoke it"),
        back=url_for("web.tokens"),
        detail=_("Whatever uses it (a blog plugin, a script) stops working at once; this cannot be undone."),
        act=lambda: people.revoke_token(me(), token_id),  # someone else's token: not_found
        done=_("The token is revoked."),
    )


@bp.route("/dashboard/profile", methods=["GET", "POST"])
@login_required
def profile_settings():
    user = me()
    form = ProfileForm(obj=user if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            people.update_settings(
                node(),
                user,
                {
                    "display_name": form.display_name.data or "",
                    "url": form.url.data or "",
                    "about": form.about.data or "",
                    "show_flattrs": bool(form.show_flattrs.data),
                },
            )
            if (form.email.data or "").strip() != user.email:
                from .auth import rate_limit

                rate_limit("password-check", str(user.id))
                passwords.change_email(node(), user, form.current_password.data or "", form.email.data)
        except RateLimited:
            raise  # a 429 page, not a field error
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Your profile is saved."))
            return redirect(url_for("web.profile_settings"))
    return render_template("dashboard/profile.html", form=form, user=user), (422 if form.errors else 200)
