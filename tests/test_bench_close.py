"""The month-close benchmark's small mode: it builds a month through the real
schema, closes it with the real code and reports a correct ledger; and its
check fails when the ledger is wrong. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import CLOSE_BENCH, PG_URL, load_close_bench

from flattr_node import closing, ledger
from flattr_node.db import is_postgres
from flattr_node.models import Account, Period


def small_run(*extra: str) -> dict:
    """bench/close_month.py --small on the database under test: its JSON report."""
    args = [sys.executable, str(CLOSE_BENCH), "--small", "--json", "--fee-percent", "7", *extra]
    if PG_URL:
        args += ["--database", PG_URL]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_small_mode_reports_a_correct_ledger():
    report = small_run()
    assert report["ok"] and report["problems"] == []
    assert report["database"] == ("postgresql" if PG_URL else "sqlite")
    assert report["flattrs"] == 10_000 and 0 < report["counted"] < report["flattrs"]
    assert report["spent"] == report["expected_spend"] > 0
    assert report["distributed"] + report["fees"] == report["spent"]
    assert report["fees"] > 0
    written = report["rows_written"]
    assert written["flattr_updates"] == 10_000
    # A giver with counting flattrs but no money has a plan row and pays nothing (1 in 100 here).
    assert written["txn"] == written["close_plan"] - report["givers"] // 100
    assert report["rows_total"] == sum(written.values())
    assert report["baseline_seconds"] > 0 and report["close_seconds"] > 0 and report["peak_rss_mb"] > 0


def test_the_check_fails_when_the_ledger_is_wrong(cfg, db):
    """The bench's own check, on a month it built here: right, then tampered with."""
    bench = load_close_bench()
    expected = bench.build(100, 40, 5, postgres=is_postgres())
    closing.close_period(cfg.with_(fee_percent=3, close_batch_size=7), bench.PERIOD, bench.CLOSE_AT)
    good = bench.verify(expected, 3)
    assert good["ok"], good["problems"]
    assert good["spent"] == expected["spend"] == good["distributed"] + good["fees"]

    # A revenue balance that moved without a posting.
    account = Account.select().where((Account.kind == "revenue") & (Account.balance > 0)).first()
    Account.update(balance=Account.balance + 1).where(Account.id == account.id).execute()
    bad = bench.verify(expected, 3)
    assert not bad["ok"] and any(account.code in p for p in bad["problems"])
    Account.update(balance=Account.balance - 1).where(Account.id == account.id).execute()
    assert ledger.check_ledger().ok

    # A period whose totals disagree with the ledger.
    Period.update(fees=Period.fees + 1).where(Period.name == bench.PERIOD).execute()
    bad = bench.verify(expected, 3)
    assert not bad["ok"] and any("period says" in p for p in bad["problems"])


def test_remote_share_mode_closes_a_federated_month_correctly():
    """--remote-share 0.2: the same month with a fifth of its flattrs on peer
    nodes, closed beside the all-local one; both ledgers right, what the
    peers' owners earned owed to the peers in one statement each."""
    report = small_run("--remote-share", "0.2")
    assert report["ok"] and report["problems"] == []
    assert (report["remote_share"], report["remote_flattrs"], report["peers"], report["statements"]) == (0.2, 2000, 4, 4)
    assert report["flattrs"] == 10_000 and report["spent"] == report["expected_spend"] == report["distributed"] + report["fees"]
    assert report["remote_ratio"] > 0 and report["local_close_seconds"] > 0 and report["ratio"] > 0


def test_the_check_fails_when_a_statement_is_wrong(cfg, db):
    from flattr_node.federation.models import Settlement
    from flattr_node.federation.settlement import make_statements

    bench = load_close_bench()
    expected = bench.build(100, 40, 5, postgres=is_postgres(), remote_share=0.2, peers=2)
    closing.close_period(cfg.with_(fee_percent=3), bench.PERIOD, bench.CLOSE_AT)
    assert len(make_statements(cfg.with_(base_url=bench.HOME_URL), bench.PERIOD)) == 2
    good = bench.verify(expected, 3)
    assert good["ok"], good["problems"]
    Settlement.update(total=Settlement.total + 1).where(Settlement.id == Settlement.select(Settlement.id).limit(1)).execute()
    bad = bench.verify(expected, 3)
    assert not bad["ok"] and any("statements" in p for p in bad["problems"])
