"""Races between transactions, run for real with threads: on PostgreSQL
(READ COMMITTED, row locks) when the suite runs there, and on SQLite files
(IMMEDIATE transactions) otherwise. Plus `migrate-db` from SQLite to
PostgreSQL through the real command line."""

from __future__ import annotations

import threading

import pytest
from conftest import at, ledger_snapshot, use_database
from nodeproc import cli, drop_pg_schema, need_postgres, pg_schema, seed_month, write_config

from flattr_node import closing, ledger
from flattr_node import db as dbmod
from flattr_node.config import validate
from flattr_node.errors import FlattrError, NoMoney, PeriodClosed
from flattr_node.models import Deposit, Flattr, Payout, Period, Thing, Txn
from flattr_node.services import flattring, funds, things

THREADS = 8


def race(n: int, fn) -> tuple[list, list]:
    """Run fn(i) in n threads released together; return (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []
    lock = threading.Lock()

    def run(i):
        with dbmod.database.connection_context():
            barrier.wait()
            try:
                results[i] = fn(i)
            except Exception as e:
                with lock:
                    errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def unexpected(errors, *allowed):
    return [e for e in errors if not isinstance(e, allowed)]


def with_revenue(cfg, make_user, amount: int):
    """A person whose revenue holds `amount` cents, earned in a real close."""
    kim = make_user("kim", amount * 2, budget=amount)
    ann = make_user("ann", amount * 2, budget=amount)
    t_kim = things.register_thing(kim, {"url": "https://kim.example/", "title": "kim"})
    t_ann = things.register_thing(ann, {"url": "https://ann.example/", "title": "ann"})
    flattring.flattr_thing(cfg, kim, t_ann.id, now=at("2026-01"))
    flattring.flattr_thing(cfg, ann, t_kim.id, now=at("2026-01"))
    closing.close_period(cfg, "2026-01", now=at("2026-02"))
    assert ledger.balance(kim.id, "revenue") == amount
    return kim


def test_concurrent_confirmations_credit_a_deposit_once(cfg, db, make_user):
    kim = make_user("kim")
    deposit = funds.open_deposit(kim, 500)
    results, errors = race(THREADS, lambda i: funds.confirm_deposit(deposit.reference if i % 2 else deposit.id)[1])
    assert errors == []
    assert sorted(results) == [False] * (THREADS - 1) + [True]
    assert ledger.balance(kim.id, "funds") == 500
    assert Txn.select().where(Txn.kind == "deposit").count() == 1
    assert ledger.check_ledger().ok


def test_concurrent_payouts_cannot_drain_revenue_twice(cfg, db, make_user):
    kim = with_revenue(cfg, make_user, 3000)
    results, errors = race(THREADS, lambda i: funds.request_payout(cfg, kim, 1000))
    assert unexpected(errors, NoMoney) == []
    assert len([r for r in results if r is not None]) == 3
    assert len(errors) == THREADS - 3
    assert ledger.balance(kim.id, "revenue") == 0
    assert Payout.select().where(Payout.user == kim).count() == 3
    assert ledger.check_ledger().ok


def test_payout_requests_and_settlements_do_not_deadlock(cfg, db, make_user):
    """Requests lock revenue then the payouts account; settlements the payout,
    then the payouts account and revenue: account locks in id order keep
    them from waiting on each other in a circle."""
    kim = with_revenue(cfg, make_user, 6000)
    first = [funds.request_payout(cfg, kim, 1000) for _ in range(3)]

    def work(i):
        if i < 3:
            return funds.mark_failed(first[i].id) if i % 2 else funds.mark_paid(first[i].id)
        return funds.request_payout(cfg, kim, 1000)

    for _ in range(3):
        results, errors = race(THREADS, work)
        assert unexpected(errors, NoMoney, FlattrError) == []
    assert ledger.check_ledger().ok
    assert sum(p.amount for p in Payout.select().where(Payout.status == "requested")) == ledger.node_account("payouts").balance


def test_concurrent_revenue_to_funds_with_one_key_moves_once(cfg, db, make_user):
    kim = with_revenue(cfg, make_user, 1000)
    funds_before = ledger.balance(kim.id, "funds")
    results, errors = race(THREADS, lambda i: funds.revenue_to_funds(cfg, kim, 700, "same-key"))
    assert errors == []
    assert sorted(results) == [False] * (THREADS - 1) + [True]
    assert ledger.balance(kim.id, "revenue") == 300
    assert ledger.balance(kim.id, "funds") == funds_before + 700


def test_flattrs_racing_the_close_are_counted_or_refused(cfg, db, make_user):
    """Flattrs of a period arriving while it closes: each one either made it
    before the claim (and is counted in the close) or is refused with
    period_closed. None is left pending in a closed period."""
    people = [make_user(f"u{i}", 1000, budget=500) for i in range(THREADS)]
    owned = [things.register_thing(p, {"url": f"https://u{i}.example/", "title": f"u{i}"}) for i, p in enumerate(people)]
    for i, p in enumerate(people):  # everyone gives, so every flattr can count (R8)
        flattring.flattr_thing(cfg, p, owned[(i + 1) % THREADS].id, now=at("2026-03", 2))

    def work(i):
        if i == 0:
            return closing.close_period(cfg, "2026-03", now=at("2026-04"))
        made = 0
        for k in range(2, THREADS):
            try:
                flattring.flattr_thing(cfg, people[i], owned[(i + k) % THREADS].id, now=at("2026-03", 28, 23, 59, k))
                made += 1
            except PeriodClosed:
                pass
        return made

    results, errors = race(THREADS, work)
    assert errors == []
    period = Period.get_by_id("2026-03")
    assert period.status == "closed"
    flattrs = Flattr.select().where(Flattr.period == "2026-03")
    assert flattrs.where(Flattr.status == "pending").count() == 0
    assert period.flattrs == flattrs.count() == THREADS + sum(results[1:])
    assert ledger.check_ledger().ok


def test_three_closers_of_one_month_move_money_once(cfg, db, make_user, new_database_url):
    people = [make_user(f"u{i}", 1000, budget=300) for i in range(6)]
    owned = [things.register_thing(p, {"url": f"https://u{i}.example/", "title": f"u{i}"}) for i, p in enumerate(people)]
    for i, p in enumerate(people):
        for k in (1, 2, 3):
            flattring.flattr_thing(cfg, p, owned[(i + k) % 6].id, now=at("2026-05", k))
    results, errors = race(3, lambda i: closing.close_period(cfg, "2026-05", now=at("2026-06")).name)
    assert errors == []
    assert results == ["2026-05"] * 3
    assert Txn.select().where(Txn.kind == "close").count() == 6
    assert ledger.check_ledger().ok
    for p in people:
        assert ledger.balance(p.id, "funds") == 700


def test_migrate_db_copies_a_node_from_sqlite_to_postgresql(tmp_path):
    base = need_postgres()
    source_url = f"sqlite:///{tmp_path / 'node.db'}"
    cfg = validate(write_config_cfg(source_url))
    seed_month(cfg, "2026-01", people=12)
    # A closed month, a payout and a cancelled deposit: every kind of row.
    dbmod.database.connect(reuse_if_open=True)
    closing.close_period(cfg, "2026-01", now=at("2026-02"))
    dep = Deposit.select().first()
    funds.cancel_deposit(funds.open_deposit(dep.user, 300).id)
    source = ledger_snapshot()
    things_before = Thing.select().count()
    dbmod.database.close()
    config = write_config(tmp_path / "config.toml", source_url)
    target_url, schema_name = pg_schema(base)
    try:
        result = cli(config, "migrate-db", "--to", target_url)
        assert "ledger ok on the copy" in result.stdout
        again = cli(config, "migrate-db", "--to", target_url, check=False)
        assert again.returncode == 1 and "not empty" in again.stderr and "Traceback" not in again.stderr
        use_database(target_url)
        assert ledger_snapshot() == source
        assert Thing.select().count() == things_before
        # The copy is a working node: ids continue after the copied ones.
        new = funds.open_deposit(dep.user, 500)
        assert new.id > dep.id
        funds.confirm_deposit(new.id)
        assert ledger.check_ledger().ok
        dbmod.database.close()
        pg_config = write_config(tmp_path / "pg.toml", target_url)
        assert "ledger ok" in cli(pg_config, "check").stdout
    finally:
        if not dbmod.database.is_closed():
            dbmod.database.close()
        drop_pg_schema(base, schema_name)


def write_config_cfg(url: str):
    from flattr_node.config import Config

    return Config(database=url, secret_key="x" * 32, scheduler=False, close_batch_size=5)


@pytest.mark.parametrize("bad", ["mysql://x/y", "postgresql://nobody@127.0.0.1:1/none"])
def test_migrate_db_refuses_a_bad_target_clearly(tmp_path, bad):
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'node.db'}")
    result = cli(config, "migrate-db", "--to", bad, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("flattr-node: ") and "Traceback" not in result.stderr


def real_conflict(database_url: str) -> Exception:
    """A real conflict error from the database under test: a deadlock between
    two PostgreSQL sessions, or SQLite's "database is locked"."""
    if database_url.startswith("sqlite"):
        import sqlite3

        path = dbmod.sqlite_path(database_url)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            impatient = dbmod.NodeSqliteDatabase(path, timeout=0)
            with impatient.connection_context():
                impatient.execute_sql("BEGIN IMMEDIATE")
        except Exception as e:
            return e
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        raise AssertionError("no lock error")
    import psycopg2

    dsn = database_url
    a, b = psycopg2.connect(dsn), psycopg2.connect(dsn)
    try:
        a.cursor().execute("CREATE TABLE IF NOT EXISTS conflict_probe (id int primary key)")
        a.commit()
        a.cursor().execute("INSERT INTO conflict_probe VALUES (1), (2) ON CONFLICT DO NOTHING")
        a.commit()
        a.cursor().execute("UPDATE conflict_probe SET id = id WHERE id = 1")
        b.cursor().execute("UPDATE conflict_probe SET id = id WHERE id = 2")
        errors = []

        def cross(conn, row):
            try:
                conn.cursor().execute("UPDATE conflict_probe SET id = id WHERE id = %s", (row,))
            except Exception as e:
                errors.append(e)
            conn.rollback()

        t = threading.Thread(target=cross, args=(a, 2))
        t.start()
        cross(b, 1)
        t.join()
        assert errors, "no deadlock"
        return errors[0]
    finally:
        a.close()
        b.close()


def test_database_conflicts_answer_503_with_retry_after(app, database_url):
    """A deadlock or serialization failure (PostgreSQL) or a lock timeout
    (SQLite) that escapes a service reaches the client as 503 server_busy
    with Retry-After, never as a 500."""
    error = real_conflict(database_url.split("?")[0] if database_url.startswith("sqlite") else database_url)
    assert dbmod.is_retryable(error), repr(error)

    @app.get("/api/v1/test-conflict")
    def conflict():
        raise error

    response = app.test_client().get("/api/v1/test-conflict")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.get_json()["error"] == "server_busy"
