"""The bank commands as real processes: `bank import` prints its counts,
`payout export` writes a pain.001 file, `refund`, and an import killed with
SIGKILL mid-way, rerun, gives the ledger of one clean import."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from bank_files import NODE_BIC, NODE_IBAN, Line, camt053
from conftest import ledger_snapshot
from nodeproc import CLI, child_env, cli, write_config

from flattr_node import db as dbmod
from flattr_node import ledger
from flattr_node.bank.models import BankEntry
from flattr_node.bank.references import make_reference
from flattr_node.config import Config, validate
from flattr_node.models import Deposit, Payout
from flattr_node.services import funds, people

BANK = {"bank_iban": NODE_IBAN, "bank_bic": NODE_BIC, "bank_account_name": "Flattr Node e.V."}


@pytest.fixture
def config(tmp_path, database_url, db):
    return write_config(tmp_path / "config.toml", database_url, **BANK)


def test_import_export_and_refund_from_the_command_line(tmp_path, config, make_user, cfg):
    kim, ann = make_user("kim"), make_user("ann", 3000)
    d = funds.open_deposit(kim, 2500)
    statement = tmp_path / "2026-11-02.xml"
    statement.write_bytes(camt053([Line(2500, reference=d.reference, bank_ref="K1"), Line(10, text="?", bank_ref="K2")]))
    out = cli(config, "bank", "import", str(statement)).stdout
    assert "1 confirmed, 0 paid, 0 settlements, 1 to review, 0 already seen" in out, out
    assert "0 confirmed, 0 paid, 0 settlements, 0 to review, 2 already seen" in cli(config, "bank", "import", str(statement)).stdout
    assert "names no pending deposit" in cli(config, "bank", "review").stdout

    assert "refund" in cli(config, "refund", "ann", "1200").stdout
    failed = cli(config, "refund", "ann", "999999", check=False)
    assert failed.returncode == 1 and "ann's funds are €18.00" in failed.stderr
    target = tmp_path / "payouts.xml"
    out = cli(config, "payout", "export", str(target)).stdout
    assert "1 transfers, €12.00" in out and target.exists()
    again = cli(config, "payout", "export", str(tmp_path / "again.xml")).stdout
    assert "no payouts to export" in again and not (tmp_path / "again.xml").exists()
    exists = cli(config, "payout", "export", str(target), check=False)
    assert exists.returncode == 1 and "exists" in exists.stderr
    assert "ledger ok" in cli(config, "check").stdout
    assert ledger.balance(ann.id, "funds") == 1800


def _seed(url: str, n: int) -> None:
    """`n` pending deposits with fixed references, spread over a few people."""
    cfg = validate(Config(database=url, secret_key="x" * 32, scheduler=False))
    database = dbmod.bind(url)
    with database.connection_context():
        from flattr_node.schema import migrate

        migrate()
        users = [people.create_user(cfg, f"p{i}", f"p{i}@example.org", "correct horse") for i in range(5)]
        rows = [{"user": users[i % 5].id, "amount": 100 + i, "reference": make_reference(f"K{i:09d}")} for i in range(n)]
        with database.atomic():
            for start in range(0, n, 500):
                Deposit.insert_many(rows[start : start + 500]).execute()


def _state(url: str) -> dict:
    database = dbmod.bind(url)
    with database.connection_context():
        snap = ledger_snapshot()
        snap["entries"] = sorted(BankEntry.select(BankEntry.key, BankEntry.status, BankEntry.deposit).tuples())
        snap["check"] = ledger.check_ledger().problems
        return snap


def _entries(url: str) -> int:
    database = dbmod.bind(url)
    with database.connection_context():
        return BankEntry.select().count()


@pytest.mark.slow
def test_an_import_killed_mid_way_and_rerun_equals_one_clean_import(tmp_path, new_database_url):
    n = 1500  # three chunks of 500: killed after the first and the second
    reference, crashed = new_database_url(), new_database_url()
    for url in (reference, crashed):
        _seed(url, n)
    lines = [Line(100 + i, reference=make_reference(f"K{i:09d}"), bank_ref=f"B{i}") for i in range(n)]
    lines += [Line(5, text="unknown payer", bank_ref="U1")]
    statement = tmp_path / "big.xml"
    statement.write_bytes(camt053(lines))
    cli(write_config(tmp_path / "ref.toml", reference), "bank", "import", "--quiet", str(statement))
    expected = _state(reference)
    assert expected["check"] == [] and len(expected["entries"]) == n + 1

    crash_config = write_config(tmp_path / "crash.toml", crashed)
    kills = 0
    for target in (1, 600):  # killed once one, then two chunks are committed
        proc = subprocess.Popen([*CLI, "--config", str(crash_config), "bank", "import", "--quiet", str(statement)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
        while proc.poll() is None and _entries(crashed) < target:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 1
    assert _entries(crashed) < n + 1  # the rerun has work left
    out = cli(crash_config, "bank", "import", "--quiet", str(statement)).stdout
    assert "already seen" in out
    assert _state(crashed) == expected
    assert "ledger ok" in cli(crash_config, "check").stdout


def test_payout_export_needs_the_nodes_account(tmp_path, database_url, db, make_user, cfg):
    config = write_config(tmp_path / "plain.toml", database_url)
    ann = make_user("ann", 2000)
    ledger.post("seed", "test", [(ledger.user_account(ann.id, "funds").id, -2000), (ledger.user_account(ann.id, "revenue").id, 2000)])
    funds.request_payout(cfg, ann, 1500)
    r = cli(config, "payout", "export", str(tmp_path / "x.xml"), check=False)
    assert r.returncode == 1 and "set bank_iban and bank_account_name" in r.stderr and not (tmp_path / "x.xml").exists()
    assert Payout.select().where(Payout.status == "requested").count() == 1
