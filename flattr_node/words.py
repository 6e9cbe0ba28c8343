"""Small helpers for what pages say. Pure: no Flask, no database.

Strings will move to gettext (ngettext for plurals); until then `plural`
is the one place that chooses between "1 flattr" and "2 flattrs".
"""

from __future__ import annotations


def plural(n: int, one: str, many: str) -> str:
    """The word for n things: plural(1, "flattr", "flattrs") == "flattr"."""
    return one if n == 1 else many


def count(n: int, one: str, many: str) -> str:
    """n and its word: count(2, "flattr", "flattrs") == "2 flattrs"."""
    return f"{n} {plural(n, one, many)}"
