"""How to pay a deposit: the node's account, the reference, and an EPC QR
code (EPC069-12, "GiroCode") that European banking apps scan to fill in the
transfer. segno writes the QR code; EPC QR codes exist for EUR only."""

from __future__ import annotations

import io
from decimal import Decimal

import segno.helpers

from ..config import Config
from ..models import Deposit
from .accounts import pretty_iban
from .references import pretty


def bank_details(cfg: Config) -> dict | None:
    """The node's own account, or None when the operator set none."""
    if not cfg.bank_iban:
        return None
    iban = cfg.bank_iban.replace(" ", "").upper()
    return {
        "iban": iban,
        "iban_formatted": pretty_iban(iban),
        "bic": cfg.bank_bic.replace(" ", "").upper() or None,
        "account_name": " ".join(cfg.bank_account_name.split()),
    }


def has_qr(cfg: Config) -> bool:
    return bool(cfg.bank_iban) and cfg.currency == "EUR"


def epc_qr_png(cfg: Config, deposit: Deposit, scale: int = 5) -> bytes:
    """The GiroCode of a deposit: the node's account, the exact amount and
    the RF reference in the structured reference field (older FN-
    references go in the free text)."""
    details = bank_details(cfg)
    ref = deposit.reference
    structured = ref.startswith("RF")
    qr = segno.helpers.make_epc_qr(
        name=details["account_name"],
        iban=details["iban"],
        amount=Decimal(deposit.amount) / 100,
        reference=ref if structured else None,
        text=None if structured else ref,
        bic=details["bic"],
    )
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def deposit_payment(cfg: Config, deposit: Deposit) -> dict:
    """The fields the deposit JSON adds: where to pay, and how to quote it."""
    return {
        "reference_formatted": pretty(deposit.reference),
        "bank": bank_details(cfg),
    }
