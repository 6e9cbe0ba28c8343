"""Bank pages: a deposit's QR code, the payout account, statements for
people; for operators the statement import, the review list, payout exports
and refunds. Views parse forms and call flattr_node.bank; nothing else."""

from __future__ import annotations

import tempfile

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from .. import i18n
from ..bank import accounts, matching, payouts, statement, statements
from ..bank.instructions import epc_qr_png, has_qr
from ..bank.references import pretty
from ..errors import FlattrError, Validation
from ..i18n import said
from ..models import Deposit, utcnow
from ..money import format_amount, parse_amount
from . import bp, form_error, me, node, operator_required


@bp.app_template_filter("rf")
def rf_filter(reference: str) -> str:
    """An RF reference in groups of four, the way people copy it."""
    return pretty(reference or "")


@bp.get("/dashboard/deposits/<int:deposit_id>/qr.png")
@login_required
def deposit_qr(deposit_id: int):
    cfg = node()
    deposit = Deposit.get_or_none((Deposit.id == deposit_id) & (Deposit.user == me().id))
    if deposit is None or deposit.status != "pending" or not has_qr(cfg):
        abort(404)
    return Response(epc_qr_png(cfg, deposit), mimetype="image/png", headers={"Cache-Control": "private, no-store"})


# --- the person's side: payout account and statements ------------------------


class PayoutAccountForm(FlaskForm):
    payout_iban = StringField(_l("IBAN"), validators=[DataRequired(), Length(max=50)])
    payout_name = StringField(_l("Account holder"), validators=[DataRequired(), Length(max=100)])


def bank_page(form=None):
    user = me()
    account = accounts.payout_account(user.id)
    if form is None:
        form = PayoutAccountForm(formdata=None, data={"payout_iban": accounts.pretty_iban(account.iban) if account else "", "payout_name": account.name if account else ""})
    year = utcnow().year
    return render_template("dashboard/bank.html", cfg=node(), form=form, account=account, years=list(range(year, year - 5, -1))), (422 if form.errors else 200)


@bp.get("/dashboard/bank")
@login_required
def bank_settings():
    return bank_page()


@bp.post("/dashboard/bank")
@login_required
def save_payout_account():
    form = PayoutAccountForm()
    if form.validate_on_submit():
        try:
            accounts.set_payout_account(me(), form.payout_iban.data, form.payout_name.data)
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Your payout account is saved: withdrawals and refunds go there."))
            return redirect(url_for("web.bank_settings"))
    return bank_page(form)


@bp.get("/dashboard/statement")
@login_required
def statement_page():
    cfg = node()
    data = statement.statement(cfg, me(), statement.parse_year(request.args.get("year")))
    return render_template("dashboard/statement.html", cfg=cfg, st=data, user=me())


@bp.get("/dashboard/statement.csv")
@login_required
def statement_csv():
    cfg = node()
    data = statement.statement(cfg, me(), statement.parse_year(request.args.get("year")))
    return Response(
        statement.as_csv(cfg, data),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="flattr-statement-{data["year"]}.csv"', "Cache-Control": "private, no-store"},
    )


# --- the operator's side ------------------------------------------------------


class EmptyForm(FlaskForm):
    """A button: only the CSRF token."""


class AssignForm(FlaskForm):
    deposit = StringField(_l("Deposit (id or reference)"), validators=[DataRequired(), Length(max=40)])


class RefundForm(FlaskForm):
    username = StringField(_l("Person"), validators=[DataRequired(), Length(max=40)])
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=20)])


def operator_bank_page(refund_form=None, status=200):
    cfg = node()
    return render_template(
        "operator/bank.html",
        cfg=cfg,
        review=matching.review_list(),
        waiting=payouts.unexported_payouts(),
        exports=payouts.recent_exports(),
        btn=EmptyForm(formdata=None),
        assign=AssignForm(formdata=None),
        refund_form=refund_form or RefundForm(formdata=None),
        can_export=bool(cfg.bank_iban and cfg.bank_account_name and cfg.currency == "EUR"),
    ), status


@bp.get("/operator/bank")
@operator_required
def operator_bank():
    return operator_bank_page()


@bp.post("/operator/bank/import")
@operator_required
def operator_bank_import():
    cfg = node()
    upload = request.files.get("statement")
    if upload is None or not upload.filename:
        flash(_("Choose a statement file to import."))
        return redirect(url_for("web.operator_bank"))
    with tempfile.NamedTemporaryFile(prefix="statement-", suffix=".upload") as tmp:
        upload.save(tmp)
        tmp.flush()
        try:
            parsed = statements.read_statement(tmp.name, cfg.currency, cfg.bank_max_statement_mb)
        except statements.StatementError as e:
            flash(_("Nothing imported from %(filename)s: %(e)s", filename=upload.filename, e=i18n.say(e.args[0])))
            return redirect(url_for("web.operator_bank"))
    result = matching.import_statement(cfg, parsed)
    flash(_("Imported %(filename)s (%(format)s, %(len)s entries): %(summary)s.", filename=upload.filename, format=result.format, len=len(parsed.entries), summary=result.summary()))
    return redirect(url_for("web.operator_bank"))


@bp.post("/operator/bank/entries/<int:entry_id>/assign")
@operator_required
def operator_bank_assign(entry_id: int):
    form = AssignForm()
    if not form.validate_on_submit():
        flash(_("Give the deposit's id or reference."))
        return redirect(url_for("web.operator_bank", _anchor="review"))
    deposit = matching.assign_to_deposit(node(), entry_id, form.deposit.data)
    flash(_("%(amount)s added to %(username)s's funds (deposit %(reference)s).", amount=format_amount(deposit.amount, node().currency), username=deposit.user.username, reference=deposit.reference))
    return redirect(url_for("web.operator_bank", _anchor="review"))


@bp.post("/operator/bank/entries/<int:entry_id>/returned")
@operator_required
def operator_bank_returned(entry_id: int):
    matching.mark_returned(entry_id)
    flash(_("Entry %(entry_id)s marked returned: nothing was credited.", entry_id=entry_id))
    return redirect(url_for("web.operator_bank", _anchor="review"))


@bp.post("/operator/bank/export")
@operator_required
def operator_bank_export():
    result = payouts.export_payouts(node())
    for line in result.left_out:
        flash(line)
    if result.export is None:
        flash(_("No payouts waiting for export."))
        return redirect(url_for("web.operator_bank", _anchor="exports"))
    return _xml_download(result.export)


@bp.get("/operator/bank/exports/<int:export_id>.xml")
@operator_required
def operator_bank_export_file(export_id: int):
    return _xml_download(payouts.get_export(export_id))


def _xml_download(export):
    return Response(
        export.xml,
        mimetype="application/xml",
        headers={"Content-Disposition": f'attachment; filename="payouts-{export.id}-pain.001.xml"', "Cache-Control": "private, no-store"},
    )


@bp.post("/operator/bank/refund")
@operator_required
def operator_refund():
    form = RefundForm()
    if form.validate_on_submit():
        try:
            try:
                amount = parse_amount(form.amount.data, node().currency)
            except ValueError:
                raise Validation(said('amount: give an amount such as 12.50'), field="amount") from None
            payout = payouts.refund(node(), form.username.data.strip(), amount)
        except FlattrError as e:
            form_error(form, e)
        else:
            flash(_("Refund %(id)s of %(amount)s to %(strip)s: it goes out with the next export.", id=payout.id, amount=format_amount(payout.amount, node().currency), strip=form.username.data.strip()))
            return redirect(url_for("web.operator_bank", _anchor="exports"))
    return operator_bank_page(form, 422)
