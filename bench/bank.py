"""Benchmark of the bank rails (issue "Bank rails").

1. Import: a CAMT.053 statement of N entries (default 100,000) that pays N
   pending deposits, imported by the real `flattr-node bank import` in a
   child process; its time and peak memory, and the ratio to a child that
   only parses the same file with the same library (pycamt, with the
   linear-time entry extraction of flattr_node.bank.statements). Target:
   ratio at most 2 (matching and the ledger cost at most as much again as
   the parse). Then every deposit must be confirmed and the ledger check
   must pass.
2. Export: M requested payouts (default 10,000) written by the real
   `flattr-node payout export` in a child process, against a child that
   builds the same pain.001 file with sepaxml alone (validated the same way).

    .venv/bin/python bench/bank.py             # 100,000 entries, 10,000 payouts
    .venv/bin/python bench/bank.py --small     # 2,000 entries, 500 payouts: a sanity run
    .venv/bin/python bench/bank.py --entries 20000 --payouts 5000 --json

SQLite (a temporary file). Speed is never asserted; note `uptime` beside
the figures (docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # bench/http.py would hide http
for extra in (str(ROOT), str(ROOT / "tests")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

from bank_files import NODE_BIC, NODE_IBAN, Line, camt053  # noqa: E402  (the tests' bank-written files)

from flattr_node import db as dbmod  # noqa: E402
from flattr_node import ledger, schema  # noqa: E402
from flattr_node.bank.models import PayoutTransfer  # noqa: E402
from flattr_node.bank.payouts import end_to_end_id  # noqa: E402
from flattr_node.bank.references import make_reference  # noqa: E402
from flattr_node.models import Account, Deposit, Payout, User  # noqa: E402

CLI = [sys.executable, "-m", "flattr_node.cli"]
PEOPLE = 10_000
BANK = {"bank_iban": NODE_IBAN, "bank_bic": NODE_BIC, "bank_account_name": "Flattr Node e.V."}


# Runs a child's `-m module ...` or `-c code ...` and writes its own peak
# memory (VmHWM) to the file named first when it exits. Not the rusage's
# ru_maxrss: on Linux that keeps the high-water mark of the forked copy of
# this (large, after the build) process across exec.
MEASURED = """
import atexit, runpy, sys
out = sys.argv.pop(1)
def report():
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(out, "w") as f:
        f.write(str(kb))
atexit.register(report)
how, what, *rest = sys.argv[1:]
sys.argv = [what, *rest]
if how == "-m":
    runpy.run_module(what, run_name="__main__", alter_sys=True)
else:
    exec(compile(what, "<child>", "exec"), {"__name__": "__main__"})
"""


def child(argv: list[str]) -> tuple[float, float, str]:
    """(seconds, peak MB, stdout) of one child process (`python -m` or `-c`)."""
    env = {k: v for k, v in os.environ.items() if k != "FLATTR_NODE_CONFIG"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, tempfile.NamedTemporaryFile("r") as peak:
        start = time.perf_counter()
        proc = subprocess.Popen([argv[0], "-c", MEASURED, peak.name, *argv[1:]], stdout=out, stderr=err, env=env, text=True)
        proc.wait()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:6])}... failed:\n{stdout}\n{err.read()}")
        kb = int(peak.read() or 0)
    return seconds, kb / 1024, stdout


def build(url: str, entries: int, payouts: int) -> None:
    """People, N pending deposits and M requested payouts, in bulk."""
    db = dbmod.bind(url)
    db.connect()
    schema.migrate()
    people = min(PEOPLE, max(entries, payouts, 1))
    with db.atomic():
        User.insert_many(
            [(f"p{i}", f"p{i}@example.org", "-", 200, dt.datetime(2026, 1, 1)) for i in range(people)],
            fields=[User.username, User.email, User.password_hash, User.monthly_budget, User.created_at],
        ).execute()
        ids = [u for (u,) in User.select(User.id).order_by(User.id).tuples()]
        Account.insert_many([(ledger.user_code(u, k), k, u) for u in ids for k in ("funds", "revenue")], fields=[Account.code, Account.kind, Account.user]).execute()
        for start in range(0, entries, 5000):
            Deposit.insert_many(
                [(ids[i % people], 100 + i % 5000, make_reference(f"B{i:09d}"), dt.datetime(2026, 11, 1)) for i in range(start, min(entries, start + 5000))],
                fields=[Deposit.user, Deposit.amount, Deposit.reference, Deposit.created_at],
            ).execute()
        # Revenue for the payouts (a seed transaction each: outside world -> revenue), then the requests.
        revenue = dict(Account.select(Account.user, Account.id).where(Account.kind == "revenue").tuples())
        external, held = ledger.node_account("external").id, ledger.node_account("payouts").id
        ledger.post_values("test", [(f"seed:{u}", [(external, -10**7), (revenue[u], 10**7)], "") for u in ids[: min(people, payouts)]])
        Deposit.insert_many(  # check: money from outside comes by confirmed deposits
            [(u, 10**7, make_reference(f"S{u:09d}"), "confirmed", dt.datetime(2026, 1, 1)) for u in ids[: min(people, payouts)]],
            fields=[Deposit.user, Deposit.amount, Deposit.reference, Deposit.status, Deposit.created_at],
        ).execute()
        Payout.insert_many([(ids[i % people], 1000 + i % 997) for i in range(payouts)], fields=[Payout.user, Payout.amount]).execute()
        rows = list(Payout.select(Payout.id, Payout.user, Payout.amount).tuples())
        ledger.post_values("payout", [(f"payout:{p}:request", [(revenue[u], -a), (held, a)], "") for p, u, a in rows])
        PayoutTransfer.insert_many(
            [(p, "revenue", "DE89370400440532013000", f"Person {u}", end_to_end_id(p)) for p, u, _ in rows],
            fields=[PayoutTransfer.payout, PayoutTransfer.source, PayoutTransfer.iban, PayoutTransfer.name, PayoutTransfer.end_to_end_id],
        ).execute()
    # The seed deposits stand for the seed transactions in `check`: give them those transactions.
    with db.atomic():
        db.execute_sql(
            "UPDATE deposit SET txn_id = (SELECT id FROM txn WHERE txn.key = 'seed:' || deposit.user_id), confirmed_at = created_at "
            "WHERE status = 'confirmed'"
        )
    problems = ledger.check_ledger().problems
    if problems:
        raise SystemExit(f"the built node fails its check: {problems[:3]}")
    db.close()


PARSE_ONLY = """
import sys, time
from flattr_node.bank.statements import _camt_parser
data = open(sys.argv[1], 'rb').read()
t = time.perf_counter()
rows = _camt_parser(data).get_transactions()
print(len(rows), time.perf_counter() - t)
"""

SEPAXML_ONLY = """
import datetime as dt, sys, json
from flattr_node.bank.payouts import Transfer, build_pain001
from flattr_node.config import Config, validate
cfg = validate(Config(**json.loads(sys.argv[1])))
n = int(sys.argv[2])
from flattr_node.bank.payouts import end_to_end_id
transfers = [Transfer(1000 + i % 997, "DE89370400440532013000", f"Person {i}", end_to_end_id(i + 1), f"Flattr revenue {end_to_end_id(i + 1)}") for i in range(n)]
msg, xml = build_pain001(cfg, transfers, dt.date(2026, 11, 3))
print(len(xml))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--payouts", type=int, default=10_000)
    ap.add_argument("--small", action="store_true", help="2,000 entries and 500 payouts")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.small:
        args.entries, args.payouts = 2000, 500
    tmp = Path(tempfile.mkdtemp(prefix="flattr-bank-bench-"))
    try:
        url = f"sqlite:///{tmp / 'bank.db'}"
        config = tmp / "config.toml"
        t = time.perf_counter()
        build(url, args.entries, args.payouts)
        statement = tmp / "statement.xml"
        statement.write_bytes(camt053([Line(100 + i % 5000, reference=make_reference(f"B{i:09d}"), bank_ref=f"E{i}") for i in range(args.entries)]))
        built = time.perf_counter() - t
        limit = max(50, math.ceil(statement.stat().st_size / 2**20))  # 100,000 entries are 150 MB: over the default limit
        config.write_text(
            f'database = "{url}"\nsecret_key = "bench"\nscheduler = false\nbank_max_statement_mb = {limit}\n'
            + "".join(f'{k} = "{v}"\n' for k, v in BANK.items())
        )
        print(f"built {args.entries} pending deposits, {args.payouts} payouts and a {statement.stat().st_size / 1e6:.1f} MB statement in {built:.1f} s", file=sys.stderr)

        # The parse alone before and after the import, and their mean: the
        # load of a shared machine moves between the children.
        before_s, parse_mb, out = child([sys.executable, "-c", PARSE_ONLY, str(statement)])
        parsed = int(out.split()[0])
        import_s, import_mb, out = child([*CLI, "--config", str(config), "bank", "import", "--quiet", str(statement)])
        if f"{args.entries} confirmed" not in out:
            raise SystemExit(f"not every deposit was confirmed: {out}")
        after_s, _, _ = child([sys.executable, "-c", PARSE_ONLY, str(statement)])
        parse_s = (before_s + after_s) / 2
        lib_s, lib_mb, _ = child([sys.executable, "-c", SEPAXML_ONLY, json.dumps({"database": url, **BANK}), str(args.payouts)])
        export_s, export_mb, out = child([*CLI, "--config", str(config), "payout", "export", str(tmp / "payouts.xml")])
        if f"{args.payouts} transfers" not in out:
            raise SystemExit(f"not every payout was exported: {out}")
        _, _, check = child([*CLI, "--config", str(config), "check"])
        figures = {
            "entries": args.entries,
            "parsed": parsed,
            "import_seconds": round(import_s, 2),
            "import_peak_mb": round(import_mb, 1),
            "parse_only_seconds": round(parse_s, 2),
            "parse_only_before_after_seconds": [round(before_s, 2), round(after_s, 2)],
            "parse_only_peak_mb": round(parse_mb, 1),
            "import_ratio": round(import_s / parse_s, 2),
            "payouts": args.payouts,
            "export_seconds": round(export_s, 2),
            "export_peak_mb": round(export_mb, 1),
            "sepaxml_only_seconds": round(lib_s, 2),
            "sepaxml_only_peak_mb": round(lib_mb, 1),
            "export_ratio": round(export_s / lib_s, 2),
            "ledger": check.strip(),
            "load_average": os.getloadavg()[0],
        }
        if args.json:
            print(json.dumps(figures))
        else:
            print(f"import of {args.entries} entries: {import_s:.1f} s, peak {import_mb:.0f} MB; "
                  f"pycamt parse alone {parse_s:.1f} s, {parse_mb:.0f} MB: ratio {import_s / parse_s:.2f} (target <= 2)")
            print(f"export of {args.payouts} payouts: {export_s:.1f} s; sepaxml alone {lib_s:.1f} s: ratio {export_s / lib_s:.2f}")
            print(f"{check.strip()} (load average {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
