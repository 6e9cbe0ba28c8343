"""Money arithmetic, pure: no Flask, no database.

Every amount is an int of minor units (SPEC R1). Nothing here accepts or
returns a float.
"""

from __future__ import annotations

import re

from babel.numbers import format_currency, get_currency_precision

_AMOUNT = re.compile(r"^\s*([0-9]{1,12})(?:[.,]([0-9]{1,2}))?\s*\Z")  # ASCII digits only: not ², ٢ or １


def split_evenly(amount: int, n: int) -> list[int]:
    """Split `amount` into `n` shares that add up to it exactly (SPEC R9).

    Every share is `amount // n`; the first `amount % n` shares (the earliest
    flattrs, when the caller orders them so) get one more cent.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if amount < 0:
        raise ValueError("amount must not be negative")
    base, extra = divmod(amount, n)
    return [base + 1] * extra + [base] * (n - extra)


def fee_of(share: int, fee_percent: int) -> int:
    """The node's fee on one share: floor(share * fee_percent / 100)."""
    if not 0 <= fee_percent <= 100:
        raise ValueError("fee_percent must be between 0 and 100")
    return share * fee_percent // 100


def parse_amount(text: str, currency: str = "EUR") -> int:
    """'2', '2.5', '2,50' -> minor units. Raises ValueError on anything else."""
    match = _AMOUNT.match(str(text))
    if not match:
        raise ValueError(f"not an amount: {text!r}")
    whole, frac = match.groups()
    digits = get_currency_precision(currency)
    frac = (frac or "").ljust(digits, "0")
    if len(frac) > digits:
        raise ValueError(f"{currency} has {digits} decimal places: {text!r}")
    return int(whole) * 10**digits + (int(frac) if frac else 0)


def format_amount(cents: int, currency: str = "EUR", locale: str = "en") -> str:
    """Minor units -> '€1.00' in the given locale, without going through float."""
    from decimal import Decimal

    digits = get_currency_precision(currency)
    return format_currency(Decimal(cents).scaleb(-digits), currency, locale=locale)
