"""Settlements owed to peers in the payout export (SPEC §6 and §7), on two
real nodes: A (the readers' home node, PostgreSQL when under test) owes B
for its readers' flattrs. `payout export` on A puts the statement into the
same pain.001 file as A's own payouts, once, to the bank account B
publishes, with the statement's reference as EndToEndId and remittance; a
peer without valid bank details is left out with one line. A's bank import
of the debit and `settlement paid` agree (paid once); B's bank import of
the credit confirms it; `check` and `peers check` hold on both."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from bank_files import NODE_BIC, NODE_IBAN, Line, camt053
from fednodes import Clock, Node, next_month_start, peer, period_now
from lxml import etree
from test_bank_payouts import NS, transfers_in

B_IBAN, B_NAME = "DE89370400440532013000", "B Blog Collective"


@pytest.fixture
def nodes(tmp_path):
    clock = Clock(tmp_path)
    a = Node(
        tmp_path, "a", postgres=True, clock=clock.path, fee_percent=10, min_payout=100,
        bank_iban=NODE_IBAN, bank_bic=NODE_BIC, bank_account_name="Flattr Node A e.V.",
    )  # fmt: skip
    b = Node(tmp_path, "b", clock=clock.path)  # no bank details yet
    a.start(), b.start()
    peer(a, b)
    yield clock, a, b
    a.drop(), b.drop()


def flattr(node: Node, token: str, url: str) -> None:
    r = node.api(token, "POST", "/flattr", json={"url": url})
    assert r.status_code == 201, r.text


def test_settlements_owed_go_out_in_the_payout_export_once(nodes, tmp_path):
    clock, a, b = nodes
    period = period_now()
    r1, a1 = a.person("r1", funds=1000), a.person("a1", funds=500)
    assert a.api(r1, "PATCH", "/user", json={"monthly_budget": 1000}).status_code == 200
    b1, b2 = b.person("b1", funds=300), b.person("b2")
    a.thing(a1, "https://a1.example/post")
    on_b = b.thing(b1, "https://b1.example/1")
    assert b.api(b1, "POST", f"/things/{b.thing(b2, 'https://b2.example/1')}/flattr").status_code == 201  # b1 gives (R8)
    flattr(a, r1, "https://a1.example/post")
    flattr(a, r1, f"{b.url}/things/{on_b}")
    flattr(a, a1, f"{b.url}/things/{on_b}")  # a1 gives too, so a1's thing counts
    assert "delivered 2, waiting 0" in a.cli("peer", "sync", "--quiet").stdout

    clock.jump_to(next_month_start(period))
    a.cli("close-month", period, "--quiet")
    assert "statements sent 1" in a.cli("peer", "sync", "--quiet").stdout
    (line,) = [x for x in a.cli("settlement", "list").stdout.splitlines() if "we owe" in x]
    ref = re.search(r"\t(RF[0-9A-Z ]+)\tsent", line).group(1).replace(" ", "")
    total = int(Decimal(re.search(r"€([0-9.]+)", line).group(1)) * 100)
    assert total == 450 + 180  # r1's 500 and a1's 200 to B, less A's 10 %
    assert b.api(b1, "GET", "/user").json()["pending_revenue"] == total
    # a1 withdraws the revenue of r1's flattr: a payout in the same export.
    assert a.api(a1, "PATCH", "/user", json={"payout_iban": "NL91ABNA0417164300", "payout_name": "A One"}).status_code == 200
    payout = a.api(a1, "POST", "/payouts", json={"amount": 450})
    assert payout.status_code == 201, payout.text

    # B publishes no bank details: its settlement is left out, in one line; the payout goes.
    first = a.cli("payout", "export", str(tmp_path / "1.xml"))
    assert "1 transfers" in first.stdout
    assert first.stderr.count("\n") == 1 and ref[:4] in first.stderr.replace(" ", "") and "publishes no bank_iban" in first.stderr
    assert set(transfers_in((tmp_path / "1.xml").read_bytes())) == {f"FLATTR-PAYOUT-{payout.json()['id']}"}

    # B's operator sets them; A reads them at `peer sync`; the next export pays B.
    b.stop()
    with open(b.config, "a") as f:
        f.write(f'bank_iban = "{B_IBAN[:4]} {B_IBAN[4:]}"\nbank_account_name = "{B_NAME}"\n')
    b.start()
    assert f"{b.url} bank details now: {B_IBAN[:4]} {B_IBAN[4:]} ({B_NAME})" in a.cli("peer", "sync", "--quiet").stdout
    second = a.cli("payout", "export", str(tmp_path / "2.xml"))
    assert second.stderr == "" and "1 transfers" in second.stdout
    xml = (tmp_path / "2.xml").read_bytes()
    assert transfers_in(xml) == {ref: (Decimal(total) / 100, B_IBAN, B_NAME)}  # XSD-valid, sums exact
    assert etree.fromstring(xml).findtext(".//p:RmtInf/p:Ustrd", namespaces=NS) == ref
    assert "no payouts to export" in a.cli("payout", "export", str(tmp_path / "3.xml")).stdout  # once, ever
    assert "\tsent\tin payout export 2" in a.cli("settlement", "list").stdout

    # A's bank carries both transfers out; the import marks each paid, once.
    statement = tmp_path / "a-statement.xml"
    statement.write_bytes(camt053([
        Line(450, credit=False, end_to_end_id=f"FLATTR-PAYOUT-{payout.json()['id']}", party="A One", party_iban="NL91ABNA0417164300", bank_ref="A1"),
        Line(total, credit=False, end_to_end_id=ref, text=ref, party=B_NAME, party_iban=B_IBAN, bank_ref="A2"),
    ]))  # fmt: skip
    assert "1 paid, 1 settlements, 0 to review" in a.cli("bank", "import", str(statement), "--quiet").stdout
    assert "was already paid" in a.cli("settlement", "paid", ref).stdout
    assert "2 already seen" in a.cli("bank", "import", str(statement), "--quiet").stdout
    assert "\tpaid\tin payout export 2" in a.cli("settlement", "list").stdout

    # B's bank receives it: pending revenue becomes revenue, once.
    incoming = tmp_path / "b-statement.xml"
    incoming.write_bytes(camt053([Line(total, text=ref, end_to_end_id=ref, party="Flattr Node A e.V.", party_iban=NODE_IBAN, bank_ref="B1")]))
    assert "1 settlements, 0 to review" in b.cli("bank", "import", str(incoming), "--quiet").stdout
    assert "already confirmed" in b.cli("settlement", "confirm", ref).stdout
    user = b.api(b1, "GET", "/user").json()
    assert (user["revenue"], user["pending_revenue"]) == (total, 0)
    for n in (a, b):
        n.cli("check")
        assert "peers agree" in n.cli("peers", "check").stdout
