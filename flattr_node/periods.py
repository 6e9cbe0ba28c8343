"""Periods are calendar months in the node's timezone, named YYYY-MM (SPEC R7)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

_NAME = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# Periods a node can hold: a month, the one after it and its bounds in any
# timezone must be dates Python can hold (0000-01 and 9999-12 are not).
FIRST_YEAR, LAST_YEAR = 1970, 9998


def parse(name: str) -> tuple[int, int]:
    match = _NAME.fullmatch(name if isinstance(name, str) else "")
    if not match or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
        raise ValueError(f"not a period (YYYY-MM between {FIRST_YEAR}-01 and {LAST_YEAR}-12): {name!r}")
    return int(match.group(1)), int(match.group(2))


def is_valid(name: str) -> bool:
    try:
        parse(name)
    except ValueError:
        return False
    return True


def name_of(utc_naive: dt.datetime, tz: ZoneInfo) -> str:
    """The period a moment (naive UTC) belongs to, in the node's timezone."""
    local = utc_naive.replace(tzinfo=dt.UTC).astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def shift(name: str, months: int) -> str:
    year, month = parse(name)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def start_utc(name: str, tz: ZoneInfo) -> dt.datetime:
    """The first instant of a period, as naive UTC."""
    year, month = parse(name)
    local = dt.datetime(year, month, 1, tzinfo=tz)
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def end_utc(name: str, tz: ZoneInfo) -> dt.datetime:
    return start_utc(shift(name, 1), tz)


def has_ended(name: str, now_utc: dt.datetime, tz: ZoneInfo) -> bool:
    return now_utc >= end_utc(name, tz)


def last_ended(now_utc: dt.datetime, tz: ZoneInfo) -> str:
    return shift(name_of(now_utc, tz), -1)


def iso(utc_naive: dt.datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the offset of the node's timezone (SPEC §3)."""
    if utc_naive is None:
        return None
    return utc_naive.replace(tzinfo=dt.UTC).astimezone(tz).isoformat()
