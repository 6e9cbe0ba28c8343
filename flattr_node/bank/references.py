"""ISO 11649 structured creditor references (`RF…`) for deposits.

Banks carry an RF reference end to end; people may type it with spaces or in
lower case. `stdnum.iso11649` checks it; its check digits are ISO 7064
MOD 97-10 over the body followed by "RF".
"""

from __future__ import annotations

import re
import secrets

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's: no I, L, O, U to misread
BODY_LENGTH = 10
_LEGACY = re.compile(r"FN-?([0-9A-Z]{4})-?([0-9A-Z]{4})")  # deposits opened before RF references


def make_reference(body: str) -> str:
    """RF + check digits + body (compact, upper case)."""
    body = body.upper()
    return f"RF{mod_97_10.calc_check_digits(body + 'RF')}{body}"


def new_reference() -> str:
    """A fresh random RF reference, e.g. RF47 3Q8K 1VZD 0A (14 characters)."""
    return make_reference("".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH)))


def normalize(text: str) -> str | None:
    """The compact RF reference in `text` as typed (spaces, lower case,
    dashes), or None when it is not a valid one."""
    try:
        return iso11649.validate(str(text))
    except Exception:  # stdnum's ValidationError, or a string it cannot clean
        return None


def pretty(reference: str) -> str:
    """In groups of four, the way people copy it: RF47 3Q8K 1VZD 0A."""
    return iso11649.format(reference) if reference.startswith("RF") else reference


def candidates(text: str) -> list[str]:
    """Every valid RF reference (and legacy FN- reference) that a bank's
    free text may contain, spaces and case aside: 'thanks rf47 3q8k 1vzd 0a!'.

    The text is compacted (spaces and separators dropped) and every "RF" is
    tried with each length an RF reference may have; the check digits rule
    out almost every wrong cut, and the caller looks the rest up."""
    if not text:
        return []
    flat = re.sub(r"[^0-9A-Z]", "", text.upper())
    found: list[str] = []
    start = flat.find("RF")
    while start != -1:
        for end in range(min(len(flat), start + 25), start + 4, -1):
            ref = flat[start:end]
            if ref[2:4].isdigit() and iso11649.is_valid(ref) and ref not in found:
                found.append(ref)
        start = flat.find("RF", start + 1)
    for m in _LEGACY.finditer(re.sub(r"[^0-9A-Z-]", "", text.upper())):
        legacy = f"FN-{m.group(1)}-{m.group(2)}"
        if legacy not in found:
            found.append(legacy)
    return found


_DEPOSIT_LENGTH = 4 + BODY_LENGTH


def deposit_candidate(text: str) -> str | None:
    """The first thing shaped like a deposit reference (RF, two digits, our
    length; or a legacy FN-) in a bank's text, for the import's fast path:
    no check-digit test, since the caller looks it up among the deposits,
    which hold valid references only; an entry whose first candidate is no
    deposit goes the slow way (`candidates`, every valid cut)."""
    if not text:
        return None
    flat = re.sub(r"[^0-9A-Z]", "", text.upper())
    start = flat.find("RF")
    while start != -1:
        ref = flat[start : start + _DEPOSIT_LENGTH]
        if len(ref) == _DEPOSIT_LENGTH and ref[2:4].isdigit():
            return ref
        start = flat.find("RF", start + 1)
    m = _LEGACY.search(re.sub(r"[^0-9A-Z-]", "", text.upper()))
    return f"FN-{m.group(1)}-{m.group(2)}" if m else None
