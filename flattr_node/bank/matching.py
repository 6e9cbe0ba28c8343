"""Importing a bank statement: each new entry goes through MATCHERS, a list
of small functions; the first that recognises the entry decides what
happens. What none recognises goes to the review list, credited nothing,
for the operator to resolve (assign to a deposit, or mark returned).

The rules (SPEC §7):
- a credit naming a pending deposit's reference (structured, or anywhere in
  the free text, spaces and case aside) with the deposit's amount confirms it;
- a credit naming a settlement reference confirms that settlement (the
  federation's `confirm_settlement`, when this node has it);
- a debit whose EndToEndId is an exported payout's marks it paid;
- a debit naming a settlement this node owes, with its total, marks that
  settlement paid (the federation's `mark_paid`);
- everything else (unknown reference, another amount, a deposit already
  confirmed or cancelled, a return or reversal, an unknown debit): review.

Idempotent: an entry is recorded under its key (statements.Entry.key) in the
same transaction as what it did, so the same entry again, from the same
file, an overlapping one or a rerun after a crash, is "already seen".
Entries are written in chunks of CHUNK, each chunk one transaction: a crash
loses at most the chunk in flight, and the rerun does exactly that chunk.
Within a chunk, the credits that simply pay a pending deposit (the bulk of
any statement) are confirmed together; the rest go through MATCHERS.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable

from ..config import Config
from ..db import database, dialect, insert_rows, one_of
from ..errors import FlattrError, NotFound, Validation
from ..i18n import said
from ..models import Deposit, Payout, utcnow
from ..money import format_amount
from . import references
from .models import BankEntry, PayoutTransfer
from .statements import Entry, Statement

log = logging.getLogger(__name__)

CHUNK = 500
IMPORT_LOCK = 7294031


@dataclasses.dataclass
class Outcome:
    status: str  # confirmed | paid | settled | review
    reason: str = ""
    deposit_id: int | None = None
    payout_id: int | None = None
    counted: bool = True  # False: recognised, but it changed nothing new (already done by hand)


Matcher = Callable[[Config, Entry], Outcome | None]


def match_reversal(cfg: Config, entry: Entry) -> Outcome | None:
    if entry.reversal:
        return Outcome("review", "a return or reversal of an earlier payment: check which, and resolve it by hand")
    return None


def match_payout(cfg: Config, entry: Entry) -> Outcome | None:
    """A debit carrying an exported payout's EndToEndId: the money left."""
    if entry.credit or not entry.end_to_end_id:
        return None
    transfer = PayoutTransfer.get_or_none(PayoutTransfer.end_to_end_id == entry.end_to_end_id.upper())
    if transfer is None:
        return None
    payout = Payout.get_by_id(transfer.payout_id)
    if transfer.export_id is None:
        return Outcome("review", f"payout {payout.id} left the account but was never exported", payout_id=payout.id)
    if entry.amount != payout.amount:
        return Outcome(
            "review",
            f"payout {payout.id} is {format_amount(payout.amount, cfg.currency)}, the bank paid {format_amount(entry.amount, cfg.currency)}",
            payout_id=payout.id,
        )
    if payout.status == "failed":
        return Outcome("review", f"payout {payout.id} was marked failed, but the bank paid it", payout_id=payout.id)
    from ..services.funds import mark_paid

    _, new = mark_paid(payout.id)
    return Outcome("paid", payout_id=payout.id, counted=new)


def match_settlement(cfg: Config, entry: Entry) -> Outcome | None:
    """A transfer naming a settlement reference (SPEC §6). A credit: a peer
    node paid the statement it owed, and the federation's
    confirm_settlement(reference, amount) turns its pending revenue into
    revenue. A debit: this node paid a statement it owes (the payout
    export's transfer carries the reference as EndToEndId, or the operator
    typed it), and mark_paid(reference, amount) records it. Each once,
    whichever comes first, the import or the operator's `settlement
    confirm` / `settlement paid`. A reference it does not know (NotFound)
    is no settlement; another amount (a domain error) sends the entry to
    review with its words."""
    try:
        from ..federation.settlement import confirm_settlement, mark_paid
    except ImportError:  # a node built without federation has no settlements
        return None
    settle = confirm_settlement if entry.credit else mark_paid
    for ref in references.candidates(entry.text + " " + entry.end_to_end_id):
        if not ref.startswith("RF"):
            continue
        try:
            _, new = settle(ref, entry.amount)
        except NotFound:
            continue
        except FlattrError as e:
            return Outcome("review", f"settlement {references.pretty(ref)}: {e.description}")
        return Outcome("settled", counted=new)
    return None


def deposit_rule(cfg: Config, deposit: Deposit, entry: Entry) -> Outcome:
    """The rule for a credit naming `deposit`: confirmed when it waits for
    exactly this amount; anything else about that deposit is for review."""
    if deposit.status != "pending":
        return Outcome("review", f"deposit {deposit.reference} is already {deposit.status}", deposit_id=deposit.id)
    if deposit.amount != entry.amount:
        return Outcome(
            "review",
            f"deposit {deposit.reference} is for {format_amount(deposit.amount, cfg.currency)}, "
            f"{format_amount(entry.amount, cfg.currency)} arrived",
            deposit_id=deposit.id,
        )
    return Outcome("confirmed", deposit_id=deposit.id)


def match_deposit(cfg: Config, entry: Entry) -> Outcome | None:
    """A credit naming a deposit's reference (structured or in free text)."""
    if not entry.credit:
        return None
    refs = references.candidates(entry.text + " " + entry.end_to_end_id)
    if not refs:
        return None
    deposits = {d.reference: d for d in Deposit.select().where(Deposit.reference.in_(refs))}
    deposit = next((deposits[r] for r in refs if r in deposits), None)
    if deposit is None:
        return None
    outcome = deposit_rule(cfg, deposit, entry)
    if outcome.status == "confirmed":
        from ..services.funds import confirm_deposit

        _, outcome.counted = confirm_deposit(deposit.id)
    return outcome


# In order; the first that answers decides. Add a matcher with one line.
MATCHERS: list[Matcher] = [match_reversal, match_payout, match_settlement, match_deposit]


def _fallback(entry: Entry) -> Outcome:
    if entry.credit:
        return Outcome("review", "names no pending deposit or settlement")
    return Outcome("review", "a debit that is no exported payout")


def match(cfg: Config, entry: Entry) -> Outcome:
    for matcher in MATCHERS:
        try:
            with database.atomic():  # a savepoint: a matcher that fails leaves nothing behind
                outcome = matcher(cfg, entry)
        except FlattrError as e:
            return Outcome("review", e.description)
        if outcome is not None:
            return outcome
    return _fallback(entry)


@dataclasses.dataclass
class ImportResult:
    format: str
    counts: Counter

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['confirmed']} deposits confirmed, {c['paid']} payouts paid, {c['settled']} settlements paid or received, "
            f"{c['review']} to review, {c['seen']} already seen"
        )


def _fast_deposits(cfg: Config, entries: list[Entry]) -> dict[str, Outcome]:
    """The bulk of a statement: credits naming a pending deposit with its
    amount, confirmed together (funds.confirm_many) under the same
    deposit_rule. Returns {entry key: outcome} for those; every other entry
    goes through MATCHERS one by one. A reference of ours found in a credit
    is a deposit's: settlement references are other random RF references."""
    wanted: dict[str, str] = {}
    for e in entries:
        if e.credit and not e.reversal:
            ref = references.deposit_candidate(e.text + " " + e.end_to_end_id)
            if ref:
                wanted[e.key] = ref
    if not wanted:
        return {}
    refs = list(set(wanted.values()))
    deposits: dict[str, Deposit] = {}
    for start in range(0, len(refs), 500):
        deposits.update((d.reference, d) for d in _deposit_rows(one_of(Deposit.reference, refs[start : start + 500])))
    chosen: dict[str, Deposit] = {}
    taken: set[int] = set()
    for e in entries:
        d = deposits.get(wanted.get(e.key, ""))
        if d is not None and d.id not in taken and deposit_rule(cfg, d, e).status == "confirmed":
            chosen[e.key] = d
            taken.add(d.id)
    from ..services.funds import confirm_many

    done = {d.id for d in confirm_many(list(chosen.values()))}
    return {key: Outcome("confirmed", deposit_id=d.id) for key, d in chosen.items() if d.id in done}


def _deposit_rows(where):
    """Deposits as light rows (id, user_id, amount, reference, status):
    a statement reads thousands."""
    return Deposit.select(Deposit.id, Deposit.user.alias("user_id"), Deposit.amount, Deposit.reference, Deposit.status).where(where).namedtuples()


def import_statement(cfg: Config, statement: Statement, progress: Callable[[int, int], None] | None = None) -> ImportResult:
    counts: Counter = Counter({k: 0 for k in ("confirmed", "paid", "settled", "review", "seen")})
    entries = statement.entries
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start : start + CHUNK]
        with database.atomic():
            dialect().advisory_lock(IMPORT_LOCK)  # one importer at a time: the second sees the first's entries
            seen = {k for (k,) in BankEntry.select(BankEntry.key).where(one_of(BankEntry.key, [e.key for e in chunk])).tuples()}
            new: list[Entry] = []
            for entry in chunk:
                if entry.key in seen:
                    counts["seen"] += 1
                else:
                    seen.add(entry.key)
                    new.append(entry)
            outcomes = _fast_deposits(cfg, new)
            rows = []
            now = BankEntry.imported_at.db_value(utcnow())
            for entry in new:
                outcome = outcomes.get(entry.key) or match(cfg, entry)
                rows.append(
                    (entry.key, now, entry.booked_on, entry.credit, entry.reversal, entry.amount, entry.currency, entry.text,
                     entry.end_to_end_id, entry.counterparty, entry.counterparty_iban, outcome.status, outcome.reason,
                     outcome.deposit_id, outcome.payout_id)
                )  # fmt: skip
                if outcome.status == "review" or outcome.counted:
                    counts[outcome.status] += 1
            insert_rows(BankEntry, _ENTRY_FIELDS, rows)
        if progress is not None:
            progress(min(start + CHUNK, len(entries)), len(entries))
    log.info("bank import (%s): %s", statement.format, dict(counts))
    return ImportResult(statement.format, counts)


_ENTRY_FIELDS = [
    BankEntry.key, BankEntry.imported_at, BankEntry.booked_on, BankEntry.credit, BankEntry.reversal, BankEntry.amount,
    BankEntry.currency, BankEntry.text, BankEntry.end_to_end_id, BankEntry.counterparty, BankEntry.counterparty_iban,
    BankEntry.status, BankEntry.reason, BankEntry.deposit, BankEntry.payout,
]  # fmt: skip


# --- the review list -------------------------------------------------------


def review_list() -> list[BankEntry]:
    return list(BankEntry.select().where(BankEntry.status == "review").order_by(BankEntry.id))


def _entry_to_resolve(entry_id) -> BankEntry:
    entry = BankEntry.get_or_none(BankEntry.id == entry_id)
    if entry is None:
        raise NotFound(said('no bank entry %(entry_id)s', entry_id=entry_id))
    if entry.status != "review":
        raise Validation(said('bank entry %(id)s is already %(status)s', id=entry.id, status=entry.status))
    return entry


def assign_to_deposit(cfg: Config, entry_id, deposit_ref) -> Deposit:
    """Credit a reviewed credit to the person of a deposit, with the amount
    that arrived: a pending deposit takes that amount and is confirmed; for a
    deposit already confirmed or cancelled, a new confirmed deposit of that
    person records the money."""
    from ..services.funds import _create_deposit, confirm_deposit, find_deposit

    with database.atomic():
        entry = _entry_to_resolve(entry_id)
        if not entry.credit or entry.amount < 1:
            raise Validation(said('only money that came in can be assigned to a deposit'))
        deposit = find_deposit(deposit_ref)
        if deposit.status == "pending":
            if deposit.amount != entry.amount:
                Deposit.update(amount=entry.amount).where(Deposit.id == deposit.id).execute()
        else:
            deposit = _create_deposit(deposit.user_id, entry.amount)
        confirmed, _ = confirm_deposit(deposit.id)
        BankEntry.update(status="assigned", deposit=confirmed.id, resolved_at=utcnow()).where(BankEntry.id == entry.id).execute()
    log.info("bank entry %d assigned to deposit %d (%d cents)", entry.id, confirmed.id, entry.amount)
    return confirmed


def mark_returned(entry_id) -> BankEntry:
    """The operator sent the money back (or otherwise dealt with the entry
    outside the node): nothing is credited, and it leaves the review list."""
    with database.atomic():
        entry = _entry_to_resolve(entry_id)
        BankEntry.update(status="returned", resolved_at=utcnow()).where(BankEntry.id == entry.id).execute()
    return BankEntry.get_by_id(entry.id)

