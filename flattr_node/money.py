"""Money arithmetic, pure: no Flask, no database.

Every amount is an int of minor units (SPEC R1). Nothing here accepts or
returns a float.
"""

from __future__ import annotations

import re

from babel.numbers import format_currency, get_currency_precision

from .rules import fee_of, split_evenly  # noqa: F401  (R9 lives in rules.py; kept importable here)

_AMOUNT = re.compile(r"^\s*([0-9]{1,12})(?:[.,]([0-9]{1,2}))?\s*\Z")  # ASCII digits only: not ², ٢ or １


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
