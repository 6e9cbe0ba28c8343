"""Statements for people (SPEC §7): every movement of a person's money in a
year, read from the ledger itself, with running balances of funds and
revenue that start from the ledger's balance on 1 January and end at its
balance on 31 December (or now), and the year's total of revenue received,
which creators need for their taxes.

A month close moves money in one ledger transaction per giver, so a creator
paid by 300 givers has 300 postings for a month: they are shown as one line
per month ("revenue received for 2026-10").
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

from peewee import fn

from .. import periods
from ..config import Config
from ..db import consistent_read
from ..errors import Validation
from ..i18n import said
from ..models import Account, Posting, Txn, User, utcnow


@dataclasses.dataclass
class Line:
    at: dt.datetime  # naive UTC, the ledger's time
    description: str
    kind: str
    funds: int = 0  # change
    revenue: int = 0
    funds_balance: int = 0  # after the line
    revenue_balance: int = 0


def _describe(kind: str, key: str, memo: str, account_kind: str, amount: int) -> tuple[str, str]:
    """(group, text) of a posting: postings of one group become one line."""
    if kind == "close":
        if account_kind == "funds":
            return f"close:{memo}:funds", f"Flattrs paid for {memo}"
        return f"close:{memo}:revenue", f"Revenue received for {memo}"
    number = key.split(":")[1] if key.count(":") >= 2 else ""
    if kind == "deposit":
        return key, f"Deposit {memo}".strip()
    if kind == "refund":
        return key, f"Refund {number} to your bank account"
    if kind == "payout":
        if key.endswith(":request"):
            return key, f"Withdrawal {number}"
        if key.endswith(":failed"):
            return key, f"Withdrawal {number} failed: returned"
        return key, f"Withdrawal {number}"
    if kind == "revenue_to_funds":
        return key, "Revenue moved into funds"
    return key, kind.replace("_", " ").capitalize()


def year_bounds(cfg: Config, year: int) -> tuple[dt.datetime, dt.datetime]:
    """[1 January, next 1 January) in the node's time zone, as naive UTC."""
    return periods.start_utc(f"{year:04d}-01", cfg.tz), periods.start_utc(f"{year + 1:04d}-01", cfg.tz)


def parse_year(value, now: dt.datetime | None = None) -> int:
    if value in (None, ""):
        return (now or utcnow()).year
    text = str(value)
    if not (len(text) == 4 and text.isdigit()) or not 2000 <= int(text) <= 9999:
        raise Validation(said('year must be four digits, e.g. 2026'), field="year")
    return int(text)


def statement(cfg: Config, user: User, year: int) -> dict:
    start, end = year_bounds(cfg, year)
    with consistent_read():
        accounts = dict(Account.select(Account.id, Account.kind).where(Account.user == user.id).tuples())
        opening = dict(
            Posting.select(Account.kind, fn.SUM(Posting.amount))
            .join(Txn).switch(Posting).join(Account)
            .where(Posting.account.in_(list(accounts)) & (Txn.created_at < start))
            .group_by(Account.kind)
            .tuples()
        )
        rows = (
            Posting.select(Txn.created_at, Txn.kind, Txn.key, Txn.memo, Posting.account, Posting.amount)
            .join(Txn)
            .where(Posting.account.in_(list(accounts)) & (Txn.created_at >= start) & (Txn.created_at < end))
            .order_by(Txn.id, Posting.id)
            .tuples()
        )
        lines: list[Line] = []
        index: dict[str, Line] = {}
        for at, kind, key, memo, account_id, amount in rows:
            account_kind = accounts[account_id]
            group, text = _describe(kind, key, memo, account_kind, amount)
            line = index.get(group)
            if line is None:
                line = index[group] = Line(at=at, description=text, kind=kind)
                lines.append(line)
            if account_kind == "funds":
                line.funds += amount
            elif account_kind == "revenue":
                line.revenue += amount
    # int(): PostgreSQL's SUM of a bigint is a numeric (a Decimal here), which JSON would write as a string.
    funds_balance, revenue_balance = int(opening.get("funds") or 0), int(opening.get("revenue") or 0)
    opening_balances = (funds_balance, revenue_balance)
    lines = [ln for ln in lines if ln.funds or ln.revenue]
    for line in lines:
        funds_balance += line.funds
        revenue_balance += line.revenue
        line.funds_balance, line.revenue_balance = funds_balance, revenue_balance
    received = sum(ln.revenue for ln in lines if ln.kind == "close" and ln.revenue > 0)
    return {
        "year": year,
        "currency": cfg.currency,
        "opening": {"funds": opening_balances[0], "revenue": opening_balances[1]},
        "closing": {"funds": funds_balance, "revenue": revenue_balance},
        "revenue_received": received,
        "lines": lines,
    }


def as_json(cfg: Config, data: dict) -> dict:
    return {
        **{k: v for k, v in data.items() if k != "lines"},
        "movements": [
            {
                "at": periods.iso(ln.at, cfg.tz),
                "description": ln.description,
                "kind": ln.kind,
                "funds": ln.funds,
                "revenue": ln.revenue,
                "funds_balance": ln.funds_balance,
                "revenue_balance": ln.revenue_balance,
            }
            for ln in data["lines"]
        ],
    }


def as_csv(cfg: Config, data: dict) -> str:
    """Amounts as decimal numbers of the currency (2.50), for spreadsheets."""

    def money(cents: int) -> str:
        sign = "-" if cents < 0 else ""
        return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"

    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["date", "description", "funds", "revenue", "funds balance", "revenue balance", "currency"])
    w.writerow([f"{data['year']}-01-01", "Opening balance", "", "", money(data["opening"]["funds"]), money(data["opening"]["revenue"]), cfg.currency])
    for ln in data["lines"]:
        # A description starting with =, +, - or @ would be a formula in a spreadsheet.
        text = ("'" + ln.description) if ln.description[:1] in "=+-@" else ln.description
        w.writerow([periods.iso(ln.at, cfg.tz), text, money(ln.funds), money(ln.revenue), money(ln.funds_balance), money(ln.revenue_balance), cfg.currency])
    w.writerow(["", f"Revenue received in {data['year']}", "", money(data["revenue_received"]), "", "", cfg.currency])
    return out.getvalue()



