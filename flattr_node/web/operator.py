"""The operator's pages: pending deposits, payouts, periods, the last ledger
check and people. Operators only; everyone else gets 403."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from peewee import fn

from ..money import format_amount
from ..services import funds, operator, passwords
from . import bp, me, node, operator_required
from .confirm import ask_first


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
    amount = format_amount(deposit.amount, node().currency)
    flash(f"Deposit {deposit.reference} confirmed: {amount} added to the funds of its owner." if new else f"Deposit {deposit.reference} was already confirmed.")
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/payouts/<int:payout_id>/paid")
@operator_required
def operator_payout_paid(payout_id: int):
    payout, new = funds.mark_paid(payout_id)
    flash(f"Payout {payout.id} marked paid." if new else f"Payout {payout.id} was already paid.")
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/payouts/<int:payout_id>/failed")
@operator_required
def operator_payout_failed(payout_id: int):
    payout, new = funds.mark_failed(payout_id)
    flash(f"Payout {payout.id} marked failed: its amount is back in the person's revenue." if new else f"Payout {payout.id} was already failed.")
    return redirect(url_for("web.operator_home"))


@bp.post("/operator/check")
@operator_required
def operator_check():
    run = operator.run_check()
    flash("The ledger checks out." if run.ok else "The ledger check found problems: see below.")
    return redirect(url_for("web.operator_home", _anchor="check"))


@bp.post("/operator/people/<int:user_id>/suspend")
@operator_required
def operator_suspend(user_id: int):
    who = operator.other_person(me(), user_id)
    asked = ask_first(
        f"Suspend {who.username}?",
        button=f"Suspend {who.username}",
        back=url_for("web.operator_home", _anchor="people"),
        detail=f"{who.username} will not be able to sign in or use their API tokens, and their profile and things disappear from the "
        "directory, until you unsuspend them. Their money stays where it is.",
    )
    if asked:
        return asked
    user = operator.set_suspended(me(), user_id, True)
    flash(f"{user.username} is suspended.")
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/unsuspend")
@operator_required
def operator_unsuspend(user_id: int):
    user = operator.set_suspended(me(), user_id, False)
    flash(f"{user.username} is no longer suspended.")
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/make-operator")
@operator_required
def operator_promote(user_id: int):
    who = operator.other_person(me(), user_id)
    asked = ask_first(
        f"Make {who.username} an operator?",
        button=f"Make {who.username} an operator",
        back=url_for("web.operator_home", _anchor="people"),
        detail=f"{who.username} will confirm deposits, settle payouts and suspend people, as you can.",
    )
    if asked:
        return asked
    user = operator.set_operator(me(), user_id, True)
    flash(f"{user.username} is now an operator.")
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/revoke-operator")
@operator_required
def operator_demote(user_id: int):
    user = operator.set_operator(me(), user_id, False)
    flash(f"{user.username} is no longer an operator.")
    return redirect(url_for("web.operator_home", _anchor="people"))


@bp.post("/operator/people/<int:user_id>/reset-link")
@operator_required
def operator_reset_link(user_id: int):
    """A one-time password reset link, shown once on this page (never in a
    redirect or the session), for the operator to hand over."""
    who = operator.other_person(me(), user_id)
    link = passwords.reset_link(node(), passwords.operator_reset_token(who))
    return render_template("operator/reset_link.html", who=who, link=link)

