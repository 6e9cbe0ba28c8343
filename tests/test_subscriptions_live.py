"""Subscriptions in the node as it runs: two `serve` processes on one
database, under libfaketime, started in later months, the first of them
after the node was down over the 1st. Each period gets its one flattr (or
its one "could not" notice), and the close pays them as any flattr."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import requests
from conftest import at
from nodeproc import Server, cli, write_config

from flattr_node import db as dbmod
from flattr_node.config import Config, validate
from flattr_node.models import Flattr
from flattr_node.models_sup import Notice, Subscription, SubscriptionRun
from flattr_node.schema import migrate
from flattr_node.services import funds, people, subscriptions, things


def need_faketime() -> None:
    if shutil.which("faketime") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have faketime (.ci/run installs it)")
        pytest.skip("needs libfaketime (apt-get install faketime)")


class FakeTimeServer(Server):
    """`flattr-node serve` with its clock started at `start` (and running)."""

    def __init__(self, config, log, start: str):
        super().__init__(config, log, wait=False, prefix=("faketime", "-f", f"@{start}"))

    def ticked(self) -> bool:
        return "scheduler: ledger check ok" in self.log_path.read_text()


def run_month(tmp_path, config, start: str) -> None:
    """Two processes start at `start`, each runs its first tick, both stop."""
    servers = [FakeTimeServer(config, tmp_path / f"serve-{start[:10]}-{i}.log", start) for i in range(2)]
    try:
        deadline = time.monotonic() + 90
        while not all(s.ticked() for s in servers):
            for s in servers:
                assert s.proc.poll() is None, s.log_path.read_text()
            assert time.monotonic() < deadline, "\n".join(s.log_path.read_text() for s in servers)
            time.sleep(0.2)
        for s in servers:
            assert requests.get(s.url + "/healthz", timeout=10).status_code == 200
            assert "Traceback" not in s.log_path.read_text(), s.log_path.read_text()
    finally:
        for s in servers:
            s.stop()


def periods_of(user_id: int) -> list[str]:
    return [p for (p,) in Flattr.select(Flattr.period).where(Flattr.giver == user_id).order_by(Flattr.period).tuples()]


def test_two_processes_over_four_months_with_funds_running_out_and_back(tmp_path, database_url):
    need_faketime()
    config = write_config(
        tmp_path / "config.toml", database_url, scheduler=True, tick_minutes=60, log_level="INFO", revenue_requires_giving=False
    )
    cfg = validate(Config(database=database_url, secret_key="x", scheduler=False, revenue_requires_giving=False))
    database = dbmod.bind(database_url)
    database.connect(reuse_if_open=True)
    migrate()
    kim = people.create_user(cfg, "kim", "kim@example.org", "correct horse")  # budget €2 by default
    bob = people.create_user(cfg, "bob", "bob@example.org", "correct horse")
    ann = people.create_user(cfg, "ann", "ann@example.org", "correct horse")
    funds.confirm_deposit(funds.open_deposit(kim, 400).id, now=at("2027-01", 2))
    funds.confirm_deposit(funds.open_deposit(bob, 2000).id, now=at("2027-01", 2))
    post = things.register_thing(ann, {"url": "https://ann.example/1", "title": "One"})
    kims = subscriptions.subscribe(cfg, kim, post.id, 6, now=at("2027-01", 10))
    bobs = subscriptions.subscribe(cfg, bob, post.id, 3, now=at("2027-01", 11))
    database.close()

    run_month(tmp_path, config, "2027-02-03 09:00:00")  # down over the 1st
    run_month(tmp_path, config, "2027-03-01 00:10:00")  # kim's funds are used up by February's close
    database.connect(reuse_if_open=True)
    funds.confirm_deposit(funds.open_deposit(kim, 600).id, now=at("2027-03", 5))  # money back
    database.close()
    run_month(tmp_path, config, "2027-04-02 12:00:00")

    database.connect(reuse_if_open=True)
    assert periods_of(kim.id) == ["2027-01", "2027-02", "2027-04"]
    assert periods_of(bob.id) == ["2027-01", "2027-02", "2027-03"]
    runs = {
        (sub, period): outcome
        for sub, period, outcome in SubscriptionRun.select(SubscriptionRun.subscription, SubscriptionRun.period, SubscriptionRun.outcome).tuples()
    }
    assert runs == {
        (kims.id, "2027-01"): "flattred", (kims.id, "2027-02"): "flattred", (kims.id, "2027-03"): "no_money",
        (kims.id, "2027-04"): "flattred",
        (bobs.id, "2027-01"): "flattred", (bobs.id, "2027-02"): "flattred", (bobs.id, "2027-03"): "flattred",
    }  # fmt: skip
    k, b = Subscription.get_by_id(kims.id), Subscription.get_by_id(bobs.id)
    assert (k.remaining, k.status) == (2, "active")
    assert (b.remaining, b.status, b.end_reason) == (0, "ended", "done")
    told = [(n.user_id, n.key) for n in Notice.select().where(Notice.kind == "subscription")]
    assert told == [(kim.id, f"subscription:{kims.id}:2027-03")]
    # January to March closed by the two processes, each once: €2 from each
    # subscriber per month, except kim's March.
    from flattr_node import ledger

    assert ledger.balance(ann.id, "revenue") == 5 * 200
    assert ledger.balance(kim.id, "funds") == 400 - 400 + 600
    database.close()
    assert "ledger ok" in cli(config, "check").stdout
