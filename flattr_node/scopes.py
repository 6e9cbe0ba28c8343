"""Token scopes, as Flattr's OAuth had them (SPEC §8).

A token carries a set of scopes; every API route says which one it needs
(`flattr_node.api.needs`). A signed-in browser session holds every scope.
No scope lets a token change a person's e-mail address or password.
"""

from __future__ import annotations

from .errors import Validation

# In the order the consent page lists them, with what each lets an app do.
SCOPES = {
    "flattr": "flattr things for you, and manage your budget, deposits and withdrawals",
    "thing": "register things in your name and edit or archive them",
    "email": "read your e-mail address",
    "extendedread": "read your balances, settings and the flattrs you gave and received",
}
ALL = tuple(SCOPES)


def parse(value, field: str = "scope") -> tuple[str, ...]:
    """Scopes from a space- or comma-separated string or a list; none: all."""
    if value is None or value == "" or value == []:
        return ALL
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) for s in items):
        raise Validation(f"{field} must be a list of scope names", field=field)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise Validation(f"unknown scope {unknown[0]!r}: the scopes are {', '.join(SCOPES)}", field=field)
    return tuple(s for s in SCOPES if s in items)


def to_text(scopes) -> str:
    return " ".join(scopes)


def from_text(text: str | None) -> frozenset[str]:
    return frozenset((text or "").split())
