"""Reading bank statements: CAMT.053 (ISO 20022, versions .02 to .08 and
later) with pycamt, SWIFT MT940 with mt-940. The format is told by content,
never by the file's name.

Statements come from outside, so the reader is careful: the size is capped
before anything is read, XML with a document type declaration (where entity
bombs and external entities live) is refused before parsing, and lxml (under
pycamt) runs with entities unresolved and no network. Any problem is one
StatementError with one line of text, raised before anything is imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
from decimal import Decimal, InvalidOperation

from ..i18n import said

RETURN_SUBFAMILIES = {"RRTN", "ARET"}  # ISO 20022 bank transaction codes for returned payments


class StatementError(Exception):
    """The file cannot be imported; the message says why, in one line."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One booked movement on the node's account."""

    key: str  # de-duplication: the bank's own entry reference, else a hash of the content
    booked_on: dt.date | None
    credit: bool  # money in
    amount: int  # cents, > 0... or 0 for an odd bank line
    currency: str
    text: str = ""  # remittance information, structured reference, additional information
    end_to_end_id: str = ""
    counterparty: str = ""
    counterparty_iban: str = ""
    reversal: bool = False


@dataclasses.dataclass
class Statement:
    format: str  # "camt.053.001.08", "mt940"
    entries: list[Entry]


def _cents(value, what: str) -> int:
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise StatementError(said('%(what)s: %(value)s is not an amount', what=what, value=repr(value))) from None
    cents = amount * 100
    if cents != cents.to_integral_value() or not amount.is_finite():
        raise StatementError(said('%(what)s: %(value)s has more than two decimals', what=what, value=repr(value)))
    return abs(int(cents))


def _date(text) -> dt.date | None:
    if not text:
        return None
    if isinstance(text, dt.date):
        return dt.date(text.year, text.month, text.day)
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


class _Keys:
    """De-duplication keys. With the bank's own reference the key is that
    reference (plus what tells the transactions of one batch entry apart),
    so the same entry twice, in one file or in overlapping ones, is one.
    Without one, a hash of the content, numbered by its occurrence in the
    file: two equal payments on one day stay two, and the same statement
    imported again gives the same keys."""

    def __init__(self, account: str):
        self.account = account
        self.seen: dict[str, int] = {}

    def __call__(self, bank_ref: str | None, *content) -> str:
        digest = hashlib.sha256("\x1f".join(str(c) for c in content).encode()).hexdigest()[:24]
        if bank_ref:
            return f"ref:{self.account[:34]}:{bank_ref[:35]}:{digest[:16]}"
        n = self.seen.get(digest, 0)
        self.seen[digest] = n + 1
        return f"hash:{self.account[:34]}:{digest}:{n}"


def _check_xml(data: bytes) -> None:
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise StatementError(said('the XML declares a document type or entities, which bank statements never do: refused'))


def _camt_parser(data: bytes):
    """pycamt's parser, with its entry extraction given each statement's
    account header instead of the whole statement: pycamt 1.1 searches the
    whole statement for the account's IBAN once per entry, which makes a
    statement of n entries cost n² (1,000 entries: 45 s; 100,000: days).
    Every field is still extracted by pycamt's own code."""
    from copy import deepcopy

    from lxml import etree
    from pycamt.parser import Camt053Parser

    class Parser(Camt053Parser):
        def get_transactions(self):
            transactions = []
            for statement in self._find_statements_or_reports():
                head = etree.Element(statement.tag)
                account = statement.find("Acct", self.namespaces)
                if account is not None:
                    head.append(deepcopy(account))
                for entry in statement.findall(".//Ntry", self.namespaces):
                    transactions.extend(self._extract_transaction(entry, head))
            return transactions

    return Parser(data)


def parse_camt(data: bytes) -> Statement:
    from lxml import etree
    from pycamt.parser import Camt053ParseError

    _check_xml(data)
    try:
        parser = _camt_parser(data)
    except etree.XMLSyntaxError as e:
        raise StatementError(said('not well-formed XML: %(e)s', e=e)) from None
    if "camt.053" not in parser.tree.tag:
        raise StatementError(said('an XML file, but not a CAMT.053 statement (root element %(tag)s)', tag=repr(parser.tree.tag)))
    version = re.search(r"camt\.053\.\d{3}\.\d{2}", parser.tree.tag)
    try:
        infos = parser.get_statement_info()
        rows = parser.get_transactions()
    except (Camt053ParseError, AttributeError) as e:
        raise StatementError(said('a CAMT.053 file without statement entries (%(name)s)', name=type(e).__name__)) from None
    account = next((i["IBAN"] for i in infos if i.get("IBAN")), "") or ""
    keys = _Keys(account)
    entries = []
    for n, row in enumerate(rows, 1):
        if row.get("Status") not in (None, "BOOK"):
            continue  # pending or informational: it comes again, booked, in a later statement
        credit = row.get("CreditDebitIndicator")
        if credit not in ("CRDT", "DBIT"):
            raise StatementError(said('entry %(n)s: no credit/debit indicator', n=n))
        if row.get("Amount") is None or not row.get("Currency"):
            raise StatementError(said('entry %(n)s: no amount or currency', n=n))
        parts = (
            row.get("RemittanceInformation"),
            row.get("RemittanceInformationFull"),
            row.get("AdditionalRemittanceInformation"),
            row.get("AdditionalEntryInformation"),
        )
        text = " ".join(dict.fromkeys(t.strip() for t in parts if t and t.strip()))  # each once, in order
        is_credit = credit == "CRDT"
        e2e = (row.get("EndToEndId") or "").strip()
        if e2e.upper() == "NOTPROVIDED":
            e2e = ""
        party = row.get("DebtorName" if is_credit else "CreditorName") or ""
        party_iban = row.get("DebtorIBAN" if is_credit else "CreditorIBAN") or ""
        amount = _cents(row["Amount"], f"entry {n}")
        entries.append(
            Entry(
                key=keys(row.get("TransactionID"), row.get("BookingDate"), credit, amount, row["Currency"], e2e, text, party_iban),
                booked_on=_date(row.get("BookingDate")),
                credit=is_credit,
                amount=amount,
                currency=row["Currency"],
                text=text[:2000],
                end_to_end_id=e2e[:35],
                counterparty=party[:140],
                counterparty_iban=party_iban[:34],
                reversal=(row.get("ReversalIndicator") or "").lower() == "true"
                or row.get("TransactionSubFamilyCode") in RETURN_SUBFAMILIES,
            )
        )
    return Statement(version.group(0) if version else "camt.053", entries)


def parse_mt940(data: bytes) -> Statement:
    import mt940

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # MT940 is ASCII, some banks write Latin-1 names
    try:
        transactions = mt940.models.Transactions()
        transactions.parse(text)
    except Exception as e:  # mt-940 raises plain exceptions for bad lines
        raise StatementError(said('not a readable MT940 statement: %(value)s', value=' '.join(str(e).split())[:200])) from None
    if not len(transactions):
        raise StatementError(said('an MT940 file without transactions'))
    account = str(transactions.data.get("account_identification") or "")
    keys = _Keys(account)
    entries = []
    for n, t in enumerate(transactions, 1):
        d = t.data
        status = d.get("status") or ""
        amount = d.get("amount")
        if amount is None:
            raise StatementError(said('transaction %(n)s: no amount', n=n))
        currency = d.get("currency") or getattr(amount, "currency", "") or ""
        cents = _cents(amount.amount, f"transaction {n}")
        credit = status in ("C", "RD")  # RD: reversal of a debit, money back in
        text = " ".join(
            str(v).strip() for v in (d.get("end_to_end_reference"), d.get("purpose"), d.get("additional_purpose"), d.get("extra_details"))
            if v and str(v).strip()
        )
        e2e = str(d.get("end_to_end_reference") or "").strip()
        if e2e.upper() in ("NOTPROVIDED", "NONREF"):
            e2e = ""
        bank_ref = d.get("bank_reference")
        booked = _date(d.get("entry_date") or d.get("date"))
        entries.append(
            Entry(
                key=keys(bank_ref, booked, status, cents, currency, e2e, text, d.get("applicant_iban") or ""),
                booked_on=booked,
                credit=credit,
                amount=cents,
                currency=currency,
                text=text[:2000],
                end_to_end_id=e2e[:35],
                counterparty=str(d.get("applicant_name") or "")[:140],
                counterparty_iban=str(d.get("applicant_iban") or "")[:34],
                reversal=status.startswith("R"),
            )
        )
    return Statement("mt940", entries)


def parse_bytes(data: bytes) -> Statement:
    """CAMT.053 or MT940, told apart by content."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body.startswith(b"<"):
        return parse_camt(body)
    if re.search(rb"(^|\n):20:", body[:4096]) and b":61:" in body or b":60F:" in body[:8192]:
        return parse_mt940(body)
    if not body:
        raise StatementError(said('the file is empty'))
    raise StatementError(said('neither a CAMT.053 (XML) nor an MT940 statement'))


def read_statement(path: str, currency: str, max_mb: int) -> Statement:
    """Parse the file at `path`; every entry must be in the node's currency."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise StatementError(said('cannot read %(path)s: %(value)s', path=path, value=e.strerror or e)) from None
    if size > max_mb * 1024 * 1024:
        raise StatementError(said('%(path)s is %(value)s MB; the largest statement accepted is %(max_mb)s MB (bank_max_statement_mb)', path=path, value=f"{size / 1048576:.0f}", max_mb=max_mb))
    try:
        with open(path, "rb") as f:
            data = f.read(max_mb * 1024 * 1024 + 1)
    except OSError as e:
        raise StatementError(said('cannot read %(path)s: %(value)s', path=path, value=e.strerror or e)) from None
    return check_currency(parse_bytes(data), currency)


def check_currency(statement: Statement, currency: str) -> Statement:
    other = next((e for e in statement.entries if e.currency != currency), None)
    if other is not None:
        raise StatementError(said('the statement has an entry in %(value)s; this node keeps %(currency)s: nothing imported', value=other.currency or 'no currency', currency=currency))
    return statement
