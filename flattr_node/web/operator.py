"""The operator's pages: pending deposits, payouts, periods, the last ledger
check and people. Operators only; everyone else gets 403."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from peewee import fn

from ..money import format_amount
from ..services import funds, operator, passwords
from . import bp, me, node, operator_required, reader_locale
from .confirm import ask_then


class EmptyForm(FlaskForm):
    """A button: only the CSRF token."""


@bp.get("/operator")
@operator_required
def operator_home():
    return render_template(
        "operator/index.html",
        cfg=node(),
        deposits=operator.pending_deposits(),
        payouts=operator.requested_payouts(),
        periods=operator.recent_periods(),
        check=operator.last_check(),
        people=operator.people_with_balances(),
        btn=EmptyForm(formdata=None),
        me=me(),
        federation=_federation(),
    )


def _federation() -> dict:
    """Peers and settlements for the operator page (SPEC §6)."""
    from ..federation import peers, settlement
    from ..federation.models import Outbox

    rows = peers.list_peers()
    waiting = dict(
        Outbox.select(Outbox.peer, fn.COUNT(Outbox.id)).where(Outbox.status == "pending").group_by(Outbox.peer).tuples()
    )
    return {
        "peers": [{"peer": p, "waiting": waiting.get(p.id, 0), "owes_us": peers.owed_by(p)} for p in rows],
        "settlements": settlement.listing(),
    }


@bp.post("/operator/deposits/<int:deposit_id>/confirm")
@operator_required
def operator_confirm_deposit(deposit_id: int):
    deposit, new = funds.confirm_deposit(deposit_id)
    amount = format_amount(deposit.amount, node().currency, reader_locale())
    flash(_("Deposit %(reference)s confirmed: %(amount)s added to the funds of its owner.", reference=deposit.reference, amount=amount) if new else _("Deposit %(reference)s was already confirmed.", reference=deposit.reference))
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/payouts/<int:payout_id>/paid")
@operator_required
def operator_payout_paid(payout_id: int):
    payout, new = funds.mark_paid(payout_id)
    flash(_("Payout %(id)s marked paid.", id=payout.id) if new else _("Payout %(id)s was already paid.", id=payout.id))
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/payouts/<int:payout_id>/failed")
@operator_required
def operator_payout_failed(payout_id: int):
    payout, new = funds.mark_failed(payout_id)
    flash(_("Payout %(id)s marked failed: its amount is back in the person's revenue.", id=payout.id) if new else _("Payout %(id)s was already failed.", id=payout.id))
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/check")
@operator_required
def operator_check():
    run = operator.run_check()
    flash(_("The ledger checks out.") if run.ok else _("The ledger check found problems: see below."))
    return redirect(url_for("web.operator_home", _anchor="check"))


@bp.post("/operator/people/<int:user_id>/suspend")
@operator_required
def operator_suspend(user_id: int):
    who = operator.other_person(me(), user_id)
    return ask_then(
        _("Suspend %(username)s?", username=who.username),
        button=_("Suspend %(username)s", username=who.username),
        back=url_for("web.operator_home", _anchor="people"),
        detail=_(
            "%(username)s will not be able to sign in or use their API tokens, and their profile and things disappear from the "
            "directory, until you unsuspend them. Their money stays where it is.",
            username=who.username,
        ),
        act=lambda: operator.set_suspended(me(), user_id, True),
        done=_("%(username)s is suspended.", username=who.username),
    )


@bp.post("/operator/people/<int:user_id>/unsuspend")
@operator_required
def operator_unsuspend(user_id: int):
    user = operator.set_suspended(me(), user_id, False)
    flash(_("%(username)s is no longer suspended.", username=user.username))
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/make-operator")
@operator_required
def operator_promote(user_id: int):
    who = operator.other_person(me(), user_id)
    return ask_then(
        _("Make %(username)s an operator?", username=who.username),
        button=_("Make %(username)s an operator", username=who.username),
        back=url_for("web.operator_home", _anchor="people"),
        detail=_("%(username)s will confirm deposits, settle payouts and suspend people, as you can.", username=who.username),
        act=lambda: operator.set_operator(me(), user_id, True),
        done=_("%(username)s is now an operator.", username=who.username),
    )


@bp.post("/operator/people/<int:user_id>/revoke-operator")
@operator_required
def operator_demote(user_id: int):
    user = operator.set_operator(me(), user_id, False)
    flash(_("%(username)s is no longer an operator.", username=user.username))
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/reset-link")
@operator_required
def operator_reset_link(user_id: int):
    """A one-time password reset link, shown once on this page (never in a
    redirect or the session), for the operator to hand over."""
    who = operator.other_person(me(), user_id)
    link = passwords.reset_link(node(), passwords.operator_reset_token(who))
    return render_template("operator/reset_link.html", who=who, link=link)

