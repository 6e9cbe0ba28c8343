"""Importing bank statements (SPEC §7): CAMT.053 .02 and .08 and MT940 files
written the way banks write them, matched against deposits and exported
payouts; everything else to the review list; idempotent; `check` after every
import. Runs on SQLite and on PostgreSQL (it writes the ledger)."""

from __future__ import annotations

import uuid

import pytest
from bank_files import NODE_BIC, NODE_IBAN, Line, camt053, mt940
from conftest import assert_error

from flattr_node import ledger
from flattr_node.bank import matching, payouts
from flattr_node.bank.models import BankEntry
from flattr_node.bank.references import make_reference
from flattr_node.bank.statements import check_currency, parse_bytes
from flattr_node.config import Config, validate
from flattr_node.errors import Validation
from flattr_node.models import Deposit, Payout
from flattr_node.services import funds


@pytest.fixture
def cfg(database_url):
    return validate(
        Config(
            database=database_url, secret_key="t-" + uuid.uuid4().hex, base_url="http://node.test", scheduler=False,
            bank_iban=NODE_IBAN, bank_bic=NODE_BIC, bank_account_name="Flattr Node e.V.", min_payout=100,
        )
    )


def run_import(cfg, data: bytes):
    result = matching.import_statement(cfg, check_currency(parse_bytes(data), cfg.currency))
    problems = ledger.check_ledger().problems
    assert not problems, problems  # `check` holds after every import
    return result.counts


def balances(*users) -> list[tuple[int, int]]:
    return [(ledger.balance(u.id, "funds"), ledger.balance(u.id, "revenue")) for u in users]


def spaced_lower(ref: str) -> str:
    return " ".join(ref[i : i + 4] for i in range(0, len(ref), 4)).lower()


@pytest.mark.parametrize("fmt", ["camt.02", "camt.08", "mt940"])
def test_a_statement_confirms_deposits_and_reviews_the_rest(cfg, make_user, fmt):
    kim, ann = make_user("kim"), make_user("ann")
    exact = funds.open_deposit(kim, 2500)
    in_text = funds.open_deposit(ann, 1200)
    wrong_amount = funds.open_deposit(kim, 5000)
    lines = [
        Line(2500, reference=exact.reference, bank_ref="E1"),
        Line(1200, text=f"Flattr {spaced_lower(in_text.reference)} danke!", bank_ref="E2"),
        Line(4999, reference=wrong_amount.reference, bank_ref="E3"),
        Line(777, text="rent for november", bank_ref="E4"),
        Line(2500, reference=exact.reference, bank_ref="E1"),  # the same entry twice in one file
    ]
    data = mt940(lines) if fmt == "mt940" else camt053(lines, version=fmt[-2:])
    before = balances(kim, ann)
    assert before == [(0, 0), (0, 0)]
    counts = run_import(cfg, data)
    assert (counts["confirmed"], counts["review"], counts["seen"], counts["paid"]) == (2, 2, 1, 0)
    assert balances(kim, ann) == [(2500, 0), (1200, 0)]
    assert [Deposit.get_by_id(d.id).status for d in (exact, in_text, wrong_amount)] == ["confirmed", "confirmed", "pending"]
    review = matching.review_list()
    assert [(e.amount, e.deposit_id) for e in review] == [(4999, wrong_amount.id), (777, None)]
    assert "€50.00" in review[0].reason and "€49.99 arrived" in review[0].reason

    # The same statement again changes nothing.
    again = run_import(cfg, data)
    assert (again["confirmed"], again["review"], again["seen"]) == (0, 0, 5)
    assert balances(kim, ann) == [(2500, 0), (1200, 0)]
    assert BankEntry.select().count() == 4


def test_overlapping_statements_import_each_entry_once(cfg, make_user):
    kim = make_user("kim")
    d1, d2, d3 = (funds.open_deposit(kim, n) for n in (100, 200, 300))
    monday = [Line(100, reference=d1.reference, bank_ref="M1"), Line(200, reference=d2.reference, bank_ref="M2")]
    monday_to_tuesday = [*monday, Line(300, reference=d3.reference, bank_ref="T1")]
    assert run_import(cfg, camt053(monday, msg_id="S1"))["confirmed"] == 2
    counts = run_import(cfg, camt053(monday_to_tuesday, msg_id="S2"))
    assert (counts["confirmed"], counts["seen"]) == (1, 2)
    assert ledger.balance(kim.id, "funds") == 600


def test_entries_without_a_bank_reference_are_told_apart_by_content(cfg, make_user):
    """Two equal payments on one day stay two; the same file again is seen."""
    kim = make_user("kim")
    lines = [Line(500, text="gift"), Line(500, text="gift")]
    assert run_import(cfg, camt053(lines))["review"] == 2
    assert run_import(cfg, camt053(lines))["seen"] == 2
    assert ledger.balance(kim.id, "funds") == 0


def test_a_deposit_already_confirmed_or_cancelled_goes_to_review(cfg, make_user):
    kim = make_user("kim")
    confirmed, cancelled = funds.open_deposit(kim, 700), funds.open_deposit(kim, 800)
    funds.confirm_deposit(confirmed.id)
    funds.cancel_deposit(cancelled.id)
    counts = run_import(cfg, camt053([Line(700, reference=confirmed.reference, bank_ref="X1"), Line(800, reference=cancelled.reference, bank_ref="X2")]))
    assert (counts["confirmed"], counts["review"]) == (0, 2)
    assert ledger.balance(kim.id, "funds") == 700  # the second payment is credited nothing
    assert [e.reason for e in matching.review_list()] == [f"deposit {confirmed.reference} is already confirmed", f"deposit {cancelled.reference} is already cancelled"]


def test_a_return_goes_to_review(cfg, make_user):
    kim = make_user("kim")
    d = funds.open_deposit(kim, 900)
    counts = run_import(cfg, camt053([Line(900, reference=d.reference, bank_ref="R1", reversal=True)]))
    assert (counts["confirmed"], counts["review"]) == (0, 1)
    assert Deposit.get_by_id(d.id).status == "pending"
    assert "return" in matching.review_list()[0].reason


@pytest.mark.parametrize("fmt", ["camt.08", "mt940"])
def test_a_debit_of_an_exported_payout_marks_it_paid(cfg, make_user, fmt):
    ann = make_user("ann", 5000)
    ledger.post("seed", "test", [(ledger.user_account(ann.id, "funds").id, -3000), (ledger.user_account(ann.id, "revenue").id, 3000)])
    exported = funds.request_payout(cfg, ann, 1200)
    result = payouts.export_payouts(cfg)
    assert result.count == 1
    late = funds.request_payout(cfg, ann, 800)  # requested after the export: not in it
    e2e = exported.transfer.get().end_to_end_id
    lines = [
        Line(1200, credit=False, end_to_end_id=e2e, bank_ref="P1", party="Ann"),
        Line(800, credit=False, end_to_end_id=late.transfer.get().end_to_end_id, bank_ref="P2"),
        Line(55, credit=False, text="bank fees", bank_ref="P3"),
    ]
    counts = run_import(cfg, mt940(lines) if fmt == "mt940" else camt053(lines))
    assert (counts["paid"], counts["review"]) == (1, 2)
    assert Payout.get_by_id(exported.id).status == "paid"
    assert Payout.get_by_id(late.id).status == "requested"
    assert [e.reason for e in matching.review_list()] == [f"payout {late.id} left the account but was never exported", "a debit that is no exported payout"]
    assert run_import(cfg, camt053(lines) if fmt != "mt940" else mt940(lines))["seen"] == 3


def test_the_operator_assigns_a_reviewed_credit_with_the_amount_received(cfg, make_user):
    kim = make_user("kim")
    d = funds.open_deposit(kim, 5000)
    run_import(cfg, camt053([Line(4999, reference=d.reference, bank_ref="W1"), Line(300, text="for kim", bank_ref="W2")]))
    short, loose = matching.review_list()
    matching.assign_to_deposit(cfg, short.id, d.reference)
    assert Deposit.get_by_id(d.id).status == "confirmed" and Deposit.get_by_id(d.id).amount == 4999
    assert ledger.balance(kim.id, "funds") == 4999
    # A second payment for a deposit already confirmed: a new deposit records it.
    again = matching.assign_to_deposit(cfg, loose.id, d.id)
    assert again.id != d.id and again.amount == 300 and again.status == "confirmed"
    assert ledger.balance(kim.id, "funds") == 5299
    assert matching.review_list() == []
    with pytest.raises(Validation):
        matching.assign_to_deposit(cfg, short.id, d.id)  # resolved once only
    assert ledger.check_ledger().ok


def test_marking_an_entry_returned_credits_nothing(cfg, make_user):
    kim = make_user("kim")
    run_import(cfg, camt053([Line(300, text="unknown", bank_ref="U1")]))
    (entry,) = matching.review_list()
    assert matching.mark_returned(entry.id).status == "returned"
    assert matching.review_list() == [] and ledger.balance(kim.id, "funds") == 0


def _receivable_settlement(owner, total: int):
    """A peer's accepted statement owed to this node, as the federation's
    receive() books it: the peer's receivable against the owner's pending
    revenue (one line of `total`)."""
    import json

    from flattr_node.federation.models import Peer, Settlement
    from flattr_node.federation.peers import receivable_code
    from flattr_node.federation.settlement import pending_revenue_code
    from flattr_node.models import Account

    peer = Peer.create(base_url="https://b.example", key_id="k", public_key="x", inbox_url="https://b.example/federation/inbox", currency="EUR")
    Account.insert(code=receivable_code(peer.id), kind="external").execute()
    Account.insert(code=pending_revenue_code(owner.id), kind="pending_revenue", user=owner.id).execute()
    reference = make_reference("SETTLE2026100001")
    ledger.post(
        f"settle:in:{peer.id}:{reference}", "settlement",
        [(Account.get(Account.code == receivable_code(peer.id)).id, -total), (Account.get(Account.code == pending_revenue_code(owner.id)).id, total)],
    )
    Settlement.create(peer=peer, period="2026-10", direction="receivable", reference=reference, total=total, lines=json.dumps([]), status="pending")
    return reference


def test_a_settlement_credit_confirms_that_settlement(cfg, make_user):
    """The federation's settlement: a peer node's transfer with the
    statement's RF reference makes the pending revenue revenue, once; the
    wrong amount goes to review; a deposit reference is still a deposit."""
    from flattr_node.federation import settlement as fed

    ann = make_user("ann")
    reference = _receivable_settlement(ann, 12345)
    d = funds.open_deposit(ann, 300)
    lines = [
        Line(12000, text=f"Flattr settlement {spaced_lower(reference)}", bank_ref="F0"),
        Line(12345, text=f"Flattr settlement {spaced_lower(reference)}", bank_ref="F1"),
        Line(300, reference=d.reference, bank_ref="F2"),
    ]
    counts = run_import(cfg, camt053(lines))
    assert (counts["settled"], counts["confirmed"], counts["review"]) == (1, 1, 1)
    assert fed.Settlement.get(fed.Settlement.reference == reference).status == "confirmed"
    assert "is for 12345 cents, not 12000" in matching.review_list()[0].reason
    assert run_import(cfg, camt053(lines))["seen"] == 3


def test_a_payout_needs_a_payout_account(cfg, make_user, api_for):
    kim = make_user("kim", payout_account=False)
    assert_error(api_for(kim).post("/payouts", json={"amount": 1000}), 422, "validation", "payout_iban")


def test_a_settlement_this_node_owes_is_exported_once_and_paid_once(cfg, make_user):
    """A statement owed to a peer (federation): left out of the export while
    the peer's bank details are not a SEPA account, then exported once;
    `settlement paid` by hand first, the bank's debit afterwards changes
    nothing and goes to no review; a debit of another amount does."""
    import json

    from flattr_node.federation.models import Peer, Settlement
    from flattr_node.federation.peers import ledger_balance, payable_code
    from flattr_node.federation.settlement import mark_paid
    from flattr_node.models import Account

    ann = make_user("ann", 5000)
    peer = Peer.create(
        base_url="https://b.example", key_id="k", public_key="x", inbox_url="https://b.example/federation/inbox", currency="EUR",
        bank_iban="BR18 0036 0305 0000 1000 9795 493C 1", bank_account_name="B Blog",
    )  # fmt: skip
    Account.insert(code=payable_code(peer.id), kind="payable").execute()
    ledger.post("settle:2026-10:peer:1:payable", "settlement", [(ledger.user_account(ann.id, "funds").id, -1234), (Account.get(Account.code == payable_code(peer.id)).id, 1234)])
    reference = make_reference("202610000000000ABCDEF")
    Settlement.create(peer=peer, period="2026-10", direction="payable", reference=reference, total=1234, lines=json.dumps([]), status="sent")

    result = payouts.export_payouts(cfg)
    assert result.export is None and len(result.left_out) == 1
    assert "https://b.example: bank_iban BR18 0036 0305 0000 1000 9795 493C 1 is not in a SEPA country" in result.left_out[0]
    Peer.update(bank_iban="FR14 2004 1010 0505 0001 3M02 606").where(Peer.id == peer.id).execute()
    result = payouts.export_payouts(cfg)
    assert (result.count, result.total, result.left_out) == (1, 1234, [])
    assert reference in result.xml.decode() and "FR1420041010050500013M02606" in result.xml.decode()
    assert payouts.export_payouts(cfg).export is None

    assert mark_paid(reference)[1] is True  # the operator, before the statement arrives
    counts = run_import(cfg, camt053([
        Line(1234, credit=False, end_to_end_id=reference, bank_ref="S1"),
        Line(1200, credit=False, text=f"Flattr {spaced_lower(reference)}", bank_ref="S2"),
    ]))  # fmt: skip
    assert (counts["settled"], counts["review"]) == (0, 1)
    assert BankEntry.get(BankEntry.key.contains("S1")).status == "settled"
    assert "is for 1234 cents, not 1200" in matching.review_list()[0].reason
    assert ledger_balance(payable_code(peer.id)) == 0
