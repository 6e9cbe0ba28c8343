"""Domain errors: each carries the SPEC §3 error code and HTTP status.

Their words are written with `i18n.said(...)`: English for the API and the
CLI, the reader's language on a page (tests/test_languages_catalogs.py
fails on a bare string).

Services raise these; the API maps them to `{"error", "error_description"}`
and the CLI prints the description on one line. Nothing else is caught.
"""

from __future__ import annotations


class FlattrError(Exception):
    code = "invalid_request"
    status = 400

    def __init__(self, description: str, *, field: str | None = None, words: str | None = None):
        super().__init__(description)
        self.description = description
        self.field = field
        # What a page says next to its form, where the API's description speaks
        # of cents, field names or endpoints: words=said("Monthly budget must be
        # between %(least)s and %(most)s.", least=Amount(200), ...). A page says
        # it in its reader's language (i18n.say); the API and the CLI keep the
        # description, in English.
        self.words = words or description


class InvalidRequest(FlattrError):
    code, status = "invalid_request", 400


class Unauthorized(FlattrError):
    code, status = "unauthorized", 401


class NoMoney(FlattrError):
    code, status = "no_money", 402


class Forbidden(FlattrError):
    code, status = "forbidden", 403


class InsufficientScope(FlattrError):
    """The token lacks the scope the route needs (SPEC §8)."""

    code, status = "insufficient_scope", 403


class FlattrOwner(FlattrError):
    code, status = "flattr_owner", 403


class NotFound(FlattrError):
    code, status = "not_found", 404


class FlattrOnce(FlattrError):
    code, status = "flattr_once", 409


class PeriodClosed(FlattrError):
    code, status = "period_closed", 409


class Validation(FlattrError):
    code, status = "validation", 422


class RateLimited(FlattrError):
    code, status = "rate_limit_exceeded", 429


class LedgerError(Exception):
    """A broken invariant of the ledger: a bug, never a user's mistake."""
