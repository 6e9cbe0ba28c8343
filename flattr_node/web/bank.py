"""Bank pages: a deposit's QR code, the payout account, statements for
people; for operators the statement import, the review list, payout exports
and refunds. Views parse forms and call flattr_node.bank; nothing else."""

from __future__ import annotations

from flask import Response, abort
from flask_login import login_required

from ..bank.instructions import epc_qr_png, has_qr
from ..bank.references import pretty
from ..models import Deposit
from . import bp, me, node


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
