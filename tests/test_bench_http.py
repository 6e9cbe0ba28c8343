"""The HTTP benchmark's short run: it drives the real `serve` on the database
under test, every request succeeds, every flattr is a committed 201, and it
reports a ratio per endpoint and round. No timing is asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PG_URL

BENCH = Path(__file__).resolve().parent.parent / "bench" / "http.py"


def test_short_run_reports_ratios_and_no_failure():
    args = [sys.executable, str(BENCH), "--json", "--rounds", "2", "--seconds", "0.5", "--people", "30", "--clients", "3"]
    if PG_URL:
        args += ["--database", PG_URL]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert report["database"] == ("postgresql" if PG_URL else "sqlite")
    for name in ("healthz", "button", "badge", "flattr"):
        result = report[name]
        assert result["failed"] == 0, result["failures"]
        assert result["requests"] > 0 and len(result["rates"]) == 2
    for name in ("button", "badge", "flattr"):
        assert len(report[name]["ratios"]) == 2 and report[name]["ratio"] > 0
    assert report["flattr"]["target"] == 0.5 and report["badge"]["target"] == 0.8
    assert "target" not in report["button"]
    for name in ("flattr_v2", "flattr_hooked"):  # /rest/v2 with an OAuth token; an owner with a webhook
        assert report[name]["failed"] == 0, report[name]["failures"]
        assert report[name]["vs_flattr"] > 0 and report[name]["vs_flattr_target"] == 0.8
