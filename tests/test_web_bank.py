"""The bank pages: a deposit's instructions with the node's account and a
GiroCode that decodes to the EPC069-12 payload, the payout account form,
statements (JSON, printable, CSV) whose balances equal the ledger, and the
operator's import, review list, export download and refund."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
import zxingcpp
from bank_files import NODE_BIC, NODE_IBAN, Line, camt053
from conftest import assert_error, at
from lxml import etree
from PIL import Image
from web_helpers import csrf_token, parse, post, signin, text_of

from flattr_node import ledger
from flattr_node.bank.models import BankEntry
from flattr_node.closing import close_period
from flattr_node.config import Config, validate
from flattr_node.models import Deposit, Payout
from flattr_node.services import flattring, funds, things


@pytest.fixture
def cfg(database_url):
    return validate(
        Config(
            database=database_url, secret_key="t-" + uuid.uuid4().hex, base_url="http://node.test", scheduler=False,
            bank_iban="de02 1203 0000 0000 2020 51", bank_bic=NODE_BIC, bank_account_name="Flattr Node e.V.", min_payout=100,
        )
    )


def decode_qr(png: bytes) -> str:
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return code.text


def test_deposit_instructions_show_the_account_and_a_girocode(client, make_user, api_for):
    kim = make_user("kim")
    d = api_for(kim).post("/deposits", json={"amount": 2550}).get_json()
    assert d["bank"] == {"iban": NODE_IBAN, "iban_formatted": "DE02 1203 0000 0000 2020 51", "bic": NODE_BIC, "account_name": "Flattr Node e.V."}
    assert d["reference_formatted"].replace(" ", "") == d["reference"]
    assert d["qr_code"] == f"http://node.test/dashboard/deposits/{d['id']}/qr.png"

    signin(client, "kim")
    page = client.get("/dashboard/deposits")
    text = text_of(page, f"deposit-{d['id']}") + " " + " ".join(parse(page).find(".//tr[@class='instructions']").itertext())
    assert "DE02 1203 0000 0000 2020 51" in text and "Flattr Node e.V." in text and d["reference_formatted"] in text
    png = client.get(f"/dashboard/deposits/{d['id']}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    # EPC069-12: service tag, version, character set, SCT, BIC, name, IBAN, amount, purpose, reference.
    lines = decode_qr(png.data).split("\n")
    assert lines[:8] == ["BCD", "002", "2", "SCT", NODE_BIC, "Flattr Node e.V.", NODE_IBAN, "EUR25.5"]
    assert lines[9] == d["reference"]


def test_someone_elses_qr_code_is_not_found(client, make_user):
    make_user("ann")
    d = funds.open_deposit(make_user("kim"), 100)
    signin(client, "ann")
    assert client.get(f"/dashboard/deposits/{d.id}/qr.png").status_code == 404


def test_the_payout_account_form(client, make_user):
    make_user("kim", payout_account=False)
    signin(client, "kim")
    bad = post(client, "/dashboard/bank", {"payout_iban": "DE89 3704 0044 0532 0130 01", "payout_name": "Kim"}, token_from="/dashboard/bank")
    assert bad.status_code == 422 and "not a valid IBAN" in bad.get_data(as_text=True)
    ok = post(client, "/dashboard/bank", {"payout_iban": "de89 3704 0044 0532 0130 00", "payout_name": "Kim Reader"}, token_from="/dashboard/bank")
    assert ok.status_code == 302
    page = client.get("/dashboard/bank").get_data(as_text=True)
    assert 'value="DE89 3704 0044 0532 0130 00"' in page
    assert client.post("/dashboard/bank", data={"payout_iban": "x", "payout_name": "y"}).status_code == 403  # no CSRF token


def test_statements_follow_the_ledger(client, cfg, make_user, api_for):
    kim = make_user("kim", 3000, budget=2000)
    ann = make_user("ann", 1000, budget=200)
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-10", 2))
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-10", 3))
    close_period(cfg, "2026-10", at("2026-11", 1, 1))
    funds.request_payout(cfg, ann, 1500)
    funds.revenue_to_funds(cfg, ann, 300)
    from flattr_node.bank import payouts

    payouts.refund(cfg, "ann", 200)
    year = int(api_for(ann).get("/user").get_json()["created_at"][:4])
    st = api_for(ann).get(f"/user/statement?year={year}").get_json()
    # Kim gave ann 20.00 at the close; ann gave kim 2.00.
    assert st["opening"] == {"funds": 0, "revenue": 0}
    assert st["closing"] == {"funds": ledger.balance(ann.id, "funds"), "revenue": ledger.balance(ann.id, "revenue")}
    assert st["revenue_received"] == 2000
    descriptions = [m["description"] for m in st["movements"]]
    assert descriptions[-3:] == [descriptions[-3], "Revenue moved into funds", descriptions[-1]]
    assert any(d.startswith("Flattrs paid for 2026-10") for d in descriptions)
    assert any(d.startswith("Revenue received for 2026-10") for d in descriptions)
    assert any(d.startswith("Withdrawal") for d in descriptions) and descriptions[-1].startswith("Refund")
    funds_run = revenue_run = 0
    for m in st["movements"]:
        funds_run += m["funds"]
        revenue_run += m["revenue"]
        assert (m["funds_balance"], m["revenue_balance"]) == (funds_run, revenue_run)
    assert api_for(ann).get(f"/user/statement?year={year - 1}").get_json()["movements"] == []
    later = api_for(ann).get(f"/user/statement?year={year + 1}").get_json()  # the year's balances carried over
    assert later["opening"] == st["closing"] == later["closing"] and later["movements"] == []
    assert all(type(v) is int for v in (*later["opening"].values(), *later["closing"].values()))  # cents, not "5000"
    assert_error(api_for(ann).get("/user/statement?year=26"), 422, "validation", "year")

    signin(client, "ann")
    rows = list(csv.reader(io.StringIO(client.get(f"/dashboard/statement.csv?year={year}").get_data(as_text=True))))
    assert rows[0][:4] == ["date", "description", "funds", "revenue"]
    assert rows[-2][4:6] == [f"{st['closing']['funds'] / 100:.2f}", f"{st['closing']['revenue'] / 100:.2f}"]
    assert rows[-1][1:4] == [f"Revenue received in {year}", "", "20.00"]
    page = client.get(f"/dashboard/statement?year={year}")
    assert "€20.00" in text_of(page, "revenue-received")
    assert "€" in text_of(page, "closing")


def test_the_operator_imports_reviews_exports_and_refunds(client, cfg, make_user):
    make_user("ops", operator=True)
    kim = make_user("kim", 5000)
    d = funds.open_deposit(kim, 2500)
    statement = camt053([Line(2500, reference=d.reference, bank_ref="W1"), Line(700, text="from kim's dad", bank_ref="W2")])
    signin(client, "kim")
    assert client.get("/operator/bank").status_code == 403
    signin(client, "ops")
    token = csrf_token(client, "/operator/bank")
    r = client.post("/operator/bank/import", data={"csrf_token": token, "statement": (io.BytesIO(statement), "nov.xml")}, content_type="multipart/form-data", follow_redirects=True)
    assert "1 deposits confirmed" in r.get_data(as_text=True) and "1 to review" in r.get_data(as_text=True)
    again = client.post("/operator/bank/import", data={"csrf_token": token, "statement": (io.BytesIO(statement), "nov.xml")}, content_type="multipart/form-data", follow_redirects=True)
    assert "2 already seen" in again.get_data(as_text=True)
    bomb = client.post("/operator/bank/import", data={"csrf_token": token, "statement": (io.BytesIO(b"<!DOCTYPE x [<!ENTITY a 'a'>]><x>&a;</x>"), "x.xml")}, content_type="multipart/form-data", follow_redirects=True)
    assert "Nothing imported from x.xml" in bomb.get_data(as_text=True)
    entry = BankEntry.get(BankEntry.status == "review")
    assert "from kim's dad" in text_of(client.get("/operator/bank"), "review")
    assert post(client, f"/operator/bank/entries/{entry.id}/assign", {"deposit": d.reference}, token_from="/operator/bank").status_code == 302
    assert ledger.balance(kim.id, "funds") == 5000 + 2500 + 700

    assert post(client, "/operator/bank/refund", {"username": "kim", "amount": "12.5"}, token_from="/operator/bank").status_code == 302
    too_much = post(client, "/operator/bank/refund", {"username": "kim", "amount": "1000"}, token_from="/operator/bank")
    assert too_much.status_code == 422 and "you cannot refund" in too_much.get_data(as_text=True)
    exported = post(client, "/operator/bank/export", {}, token_from="/operator/bank")
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    doc = etree.fromstring(exported.data)
    assert doc.findtext(".//{*}GrpHdr/{*}CtrlSum") == "12.50"
    again = client.get("/operator/bank/exports/1.xml")
    assert again.data == exported.data
    assert Payout.get().status == "requested" and Deposit.get_by_id(d.id).status == "confirmed"
    assert ledger.check_ledger().ok
