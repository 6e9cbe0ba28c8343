"""Payout accounts, refunds and the pain.001 export (SPEC §7): the file is
valid against the pain.001.001.03 XSD, amounts, NbOfTxs and CtrlSum exact,
one EndToEndId per payout, and no payout is ever in two exports, also when
two exports run at once (real processes)."""

from __future__ import annotations

import os
import subprocess
import uuid
from decimal import Decimal

import pytest
import sepaxml
from bank_files import NODE_BIC, NODE_IBAN
from conftest import assert_error
from lxml import etree
from nodeproc import CLI, child_env, write_config

from flattr_node import ledger
from flattr_node.bank import payouts
from flattr_node.bank.models import PayoutTransfer
from flattr_node.config import Config, validate
from flattr_node.errors import NoMoney, Validation
from flattr_node.models import Payout
from flattr_node.services import funds

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
BANK = {"bank_iban": NODE_IBAN, "bank_bic": NODE_BIC, "bank_account_name": "Flattr Node e.V."}


@pytest.fixture
def cfg(database_url):
    return validate(Config(database=database_url, secret_key="t-" + uuid.uuid4().hex, base_url="http://node.test", scheduler=False, min_payout=100, **BANK))


def with_revenue(user, cents):
    ledger.post(f"seed:{user.id}", "test", [(ledger.user_account(user.id, "funds").id, -cents), (ledger.user_account(user.id, "revenue").id, cents)])
    return user


def pain_schema():
    path = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", "pain.001.001.03.xsd")
    return etree.XMLSchema(etree.parse(path))


def transfers_in(xml: bytes) -> dict[str, tuple[Decimal, str, str]]:
    doc = etree.fromstring(xml)
    assert pain_schema().validate(doc), pain_schema().error_log.last_error
    out = {}
    for tx in doc.iterfind(".//p:CdtTrfTxInf", NS):
        e2e = tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS)
        assert e2e not in out
        out[e2e] = (Decimal(tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)), tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS), tx.findtext("p:Cdtr/p:Nm", namespaces=NS))
    header = doc.find(".//p:GrpHdr", NS)
    assert int(header.findtext("p:NbOfTxs", namespaces=NS)) == len(out)
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS)) == sum(v[0] for v in out.values())
    assert doc.findtext(".//p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == NODE_IBAN
    return out


def test_payout_account_through_the_api(cfg, make_user, api_for):
    kim = make_user("kim", payout_account=False)
    api = api_for(kim)
    assert api.get("/user").get_json()["payout_iban"] is None
    assert_error(api.patch("/user", json={"payout_iban": "DE89 3704 0044 0532 0130 01", "payout_name": "Kim"}), 422, "validation", "payout_iban")
    assert_error(api.patch("/user", json={"payout_iban": "US64SVBKUS6S3300958879", "payout_name": "Kim"}), 422, "validation", "payout_iban")
    assert_error(api.patch("/user", json={"payout_iban": "SA0380000000608010167519", "payout_name": "Kim"}), 422, "validation", "payout_iban")
    assert_error(api.patch("/user", json={"payout_iban": "de89 3704 0044 0532 0130 00"}), 422, "validation", "payout_name")
    assert_error(api.patch("/user", json={"payout_iban": 12, "payout_name": "Kim"}), 422, "validation", "payout_iban")
    # All or nothing: a bad budget beside a good account saves neither.
    assert_error(api.patch("/user", json={"payout_iban": "DE89370400440532013000", "payout_name": "Kim", "monthly_budget": 1}), 422, "validation", "monthly_budget")
    assert api.get("/user").get_json()["payout_iban"] is None
    r = api.patch("/user", json={"payout_iban": "de89 3704 0044 0532 0130 00", "payout_name": "  Kim   Reader "})
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["payout_iban"], r.get_json()["payout_name"]) == ("DE89370400440532013000", "Kim Reader")
    assert api.patch("/user", json={"payout_name": "K. Reader"}).get_json()["payout_name"] == "K. Reader"


def test_a_payout_without_an_account_is_refused(cfg, make_user):
    kim = with_revenue(make_user("kim", 3000, payout_account=False), 3000)
    with pytest.raises(Validation, match="payout account"):
        funds.request_payout(cfg, kim, 1000)
    assert ledger.balance(kim.id, "revenue") == 3000 and Payout.select().count() == 0


def test_the_export_holds_every_requested_payout_once(cfg, make_user):
    ann, bob = with_revenue(make_user("ann", 50000), 40000), with_revenue(make_user("bob", 9000), 5000)
    requested = [funds.request_payout(cfg, ann, 12345), funds.request_payout(cfg, bob, 101), funds.request_payout(cfg, ann, 1000)]
    refund = payouts.refund(cfg, "bob", 999)
    funds.mark_failed(requested[2].id)  # failed before export: not exported, back in revenue
    result = payouts.export_payouts(cfg)
    got = transfers_in(result.xml)
    assert (result.count, result.total) == (3, 12345 + 101 + 999)
    want = {p.transfer.get().end_to_end_id: p for p in (requested[0], requested[1], refund)}
    assert set(got) == set(want)
    for e2e, payout in want.items():
        assert got[e2e][0] * 100 == payout.amount
        assert got[e2e][1] == "DE89370400440532013000"
    assert got[requested[0].transfer.get().end_to_end_id][2] == "Ann"
    assert payouts.export_payouts(cfg).export is None  # nothing twice
    assert ledger.balance(ann.id, "revenue") == 40000 - 12345
    assert ledger.check_ledger().ok


def test_a_failed_refund_returns_to_funds(cfg, make_user):
    kim = make_user("kim", 2000)
    refund = payouts.refund(cfg, "kim", 1500)
    assert ledger.balance(kim.id, "funds") == 500
    with pytest.raises(NoMoney):
        payouts.refund(cfg, "kim", 501)
    funds.mark_failed(refund.id)
    assert ledger.balance(kim.id, "funds") == 2000 and ledger.balance(kim.id, "revenue") == 0
    assert ledger.check_ledger().ok


def test_two_exports_at_once_never_share_a_payout(tmp_path, cfg, make_user, database_url):
    people = [with_revenue(make_user(f"p{i}", 20000), 20000) for i in range(6)]
    ids = {funds.request_payout(cfg, p, 100 + j).id for p in people for j in range(5)}
    config = write_config(tmp_path / "c.toml", database_url, **BANK)
    procs = [
        subprocess.Popen([*CLI, "--config", str(config), "payout", "export", str(tmp_path / f"{n}.xml")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        for n in ("a", "b", "c")
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    seen: dict[str, str] = {}
    for n in ("a", "b", "c"):
        path = tmp_path / f"{n}.xml"
        if path.exists():
            for e2e in transfers_in(path.read_bytes()):
                assert e2e not in seen, f"{e2e} in {seen.get(e2e)} and {n}"
                seen[e2e] = n
    assert set(seen) == {f"FLATTR-PAYOUT-{i}" for i in ids}
    assert PayoutTransfer.select().where(PayoutTransfer.export.is_null()).count() == 0
