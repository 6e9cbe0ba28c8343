"""Reading bank files, without a database: the statements the tests use are
valid against the official CAMT.053 XSDs, both formats are told apart by
content, amounts are exact, and hostile files (malformed XML, entity bombs,
external entities, 100 MB, another currency) are refused with one line and
nothing imported. The CLI runs as a real process. These do not depend on the
database engine, so they run in the SQLite pass only."""

from __future__ import annotations

import subprocess

import pytest
from bank_files import Line, camt053, camt_schema, mt940
from lxml import etree
from test_cli import BASE, write_config

from flattr_node.bank import references
from flattr_node.bank.statements import StatementError, check_currency, parse_bytes, read_statement

pytestmark = pytest.mark.sqlite_only  # parsing bank files does not depend on the database engine

LINES = [
    Line(2500, reference="RF18539007547034", bank_ref="A1"),
    Line(1, credit=False, end_to_end_id="FLATTR-PAYOUT-7", bank_ref="A2", text="Flattr revenue"),
    Line(123456789, text="danke rf18 5390 0754 7034", reversal=True),
]


@pytest.mark.parametrize("version", ["02", "08"])
def test_the_test_statements_are_valid_camt053(version):
    schema = camt_schema(version)
    doc = etree.fromstring(camt053(LINES, version=version))
    assert schema.validate(doc), schema.error_log.last_error


@pytest.mark.parametrize("fmt", ["camt.053.001.02", "camt.053.001.08", "mt940"])
def test_entries_are_read_exactly(fmt):
    data = mt940(LINES) if fmt == "mt940" else camt053(LINES, version=fmt[-2:])
    statement = parse_bytes(data)
    assert statement.format == fmt
    got = [(e.credit, e.amount, e.currency, e.reversal) for e in statement.entries]
    assert got == [(True, 2500, "EUR", False), (False, 1, "EUR", False), (True, 123456789, "EUR", True)]
    assert statement.entries[1].end_to_end_id == "FLATTR-PAYOUT-7"
    assert "RF18539007547034" in references.candidates(statement.entries[0].text + statement.entries[2].text)
    assert statement.entries[0].key != statement.entries[1].key


def test_references_are_found_in_free_text():
    # Text that runs on after a reference may make a longer cut whose check
    # digits also hold (about 1 in 97 per length): such a cut is a candidate
    # too, and the import looks every candidate up, so only "found, and every
    # candidate valid" is the contract. Many references, so that both happen.
    from stdnum.iso11649 import is_valid

    for _ in range(300):
        ref = references.new_reference()
        spaced = " ".join(ref[i : i + 4] for i in range(0, len(ref), 4)).lower()
        for text in (f"Ueberweisung {spaced} vielen Dank", f"SVWZ+{ref}EREF+NOTPROVIDED"):
            found = references.candidates(text)
            assert ref in found and all(is_valid(c) for c in found if c.startswith("RF")), (text, found)
    assert references.candidates("Ueberweisung rf18 5390 0754 7034") == ["RF18539007547034"]
    assert references.candidates("RF00 nothing here RF19 1234") == []
    assert references.normalize(spaced) == ref and references.normalize(ref[:-1] + "X") is None


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>&lol4;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>&x;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""


@pytest.mark.parametrize(
    "data, message",
    [
        (BOMB, "document type or entities"),
        (XXE, "document type or entities"),
        (camt053(LINES)[:-40], "not well-formed XML"),
        (b"<html><body>Your session expired</body></html>", "not a CAMT.053 statement"),
        (b"Datum;Betrag;Verwendungszweck\n2026-11-02;25,00;RF18\n", "neither a CAMT.053"),
        (b"", "empty"),
        (b":20:X\r\n:25:Y\r\n:61:garbage\r\n-\r\n", "MT940"),
    ],
    ids=["billion-laughs", "xxe", "truncated", "html", "csv", "empty", "bad-mt940"],
)
def test_hostile_or_broken_files_are_refused(data, message):
    with pytest.raises(StatementError, match=message) as e:
        parse_bytes(data)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("maker", [camt053, mt940], ids=["camt", "mt940"])
def test_another_currency_is_refused_whole(maker):
    with pytest.raises(StatementError, match="USD; this node keeps EUR"):
        check_currency(parse_bytes(maker([Line(100, text="x", bank_ref="C1")], currency="USD")), "EUR")


def test_a_file_over_the_limit_is_refused_unread(tmp_path):
    big = tmp_path / "big.xml"
    with open(big, "wb") as f:  # 100 MB, sparse: the size alone refuses it
        f.truncate(100 * 1024 * 1024)
    with pytest.raises(StatementError, match="100 MB; the largest statement accepted is 50 MB"):
        read_statement(str(big), "EUR", 50)


def test_the_cli_says_one_line_and_imports_nothing(tmp_path, database_url, db):
    config = write_config(tmp_path / "config.toml", database_url)
    files = {"bomb.xml": BOMB, "xxe.xml": XXE, "usd.xml": camt053([Line(100, bank_ref="U")], currency="USD")}
    big = tmp_path / "huge.xml"
    with open(big, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for name in [*files, "huge.xml", "missing.xml"]:
        r = subprocess.run([*BASE, "--config", str(config), "bank", "import", str(tmp_path / name)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("flattr-node: ") and "Traceback" not in r.stderr, r.stderr
    from flattr_node.bank.models import BankEntry

    assert BankEntry.select().count() == 0
