"""Input checks shared by the services; each failure is a Validation naming its field."""

from __future__ import annotations

from ..errors import Validation
from ..i18n import said

MAX_AMOUNT = 10**15 - 1  # cents; as many digits as a form may send


def whole_number(value, field: str) -> int:
    """An int from JSON or a form, never a float or a bool (SPEC R1)."""
    if isinstance(value, bool) or value is None:
        raise Validation(said('%(field)s must be a whole number of cents', field=field), field=field)
    if isinstance(value, int):
        if abs(value) > MAX_AMOUNT:  # no amount is that large; Babel cannot even format it
            raise Validation(said('%(field)s is too large', field=field), field=field)
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().lstrip("-").isdigit() and len(value.strip()) <= 15:
        return int(value.strip())
    raise Validation(said('%(field)s must be a whole number of cents', field=field), field=field)


MAX_ID = 2**63 - 1  # the largest id a database row can have


def row_id(value) -> int | None:
    """An id from a URL or a form, or None if it cannot name a row (so the
    caller answers 404 rather than asking the database for 10**30)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value, field: str, max_len: int, *, required: bool = False, single_line: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Validation(said('%(field)s must be text', field=field), field=field)
    if not is_utf8(value):
        raise Validation(said('%(field)s must be valid Unicode text (it holds a lone surrogate)', field=field), field=field)
    value = value.strip()
    if required and not value:
        raise Validation(said('%(field)s is required', field=field), field=field)
    if len(value) > max_len:
        raise Validation(said('%(field)s is longer than %(max_len)s characters', field=field, max_len=max_len), field=field)
    if "\x00" in value or (single_line and any(c in value for c in "\r\n")):
        raise Validation(said('%(field)s must be a single line of text', field=field), field=field)
    return value


def flag(value, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Validation(said('%(field)s must be true or false', field=field), field=field)
