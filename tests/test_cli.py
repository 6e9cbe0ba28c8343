"""The command line (SPEC §4), run as a real subprocess against the test's
database: help everywhere, one clear line on failure, tokens alone on stdout,
deposits confirmed once, `check` catching tampering, `backup`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import pytest
from conftest import PG_URL
from nodeproc import copy_rows, need_pg_dump, restored_pg_dump

from flattr_node import cli, ledger
from flattr_node.db import database
from flattr_node.models import Account, Deposit, Payout, Posting, Txn, User
from flattr_node.services import funds, people, things

SCRIPT = Path(sys.executable).with_name("flattr-node")
BASE = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "flattr_node.cli"]


def write_config(path: Path, database_url: str, **extra) -> Path:
    lines = [f"database = {json.dumps(database_url)}", 'secret_key = "cli-test"', 'base_url = "http://node.test"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config_file(tmp_path, database_url):
    return write_config(tmp_path / "config.toml", database_url)


@pytest.fixture
def node(config_file, db):
    """run('check') -> CompletedProcess of `flattr-node --config ... check`."""

    def run(*args, input=None, config=config_file, cwd=None):
        env = {k: v for k, v in os.environ.items() if k not in ("FLATTR_NODE_CONFIG", "FLATTR_NODE_LOG_LEVEL")}
        argv = [*BASE, "--config", str(config), *args] if config else [*BASE, *args]
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)

    run.config = config_file
    return run


def assert_ok(result):
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    return result


def assert_fails(result, *words):
    """Exit 1, one line on stderr that names the problem, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flattr-node: "), lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    return lines[0]


def command_paths(group=cli.main, prefix=()):
    """Every command and subcommand, found by walking the click tree."""
    yield prefix
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            if name.startswith("_"):
                continue
            yield from command_paths(command, (*prefix, name))


ALL_COMMANDS = list(command_paths())


def test_the_tree_has_the_specs_commands():
    names = {" ".join(p) for p in ALL_COMMANDS}
    for spec in ("init", "serve", "user create", "token create", "deposit confirm", "close-month", "check", "backup"):
        assert spec in names, spec


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=[" ".join(p) or "flattr-node" for p in ALL_COMMANDS])
def test_help_on_every_command(tmp_path, path):
    result = subprocess.run([*BASE, *path, "--help"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert_ok(result)
    assert result.stdout.startswith("Usage: "), result.stdout
    command = cli.main
    for name in path:
        command = command.commands[name]
    summary = (command.help or "").strip().splitlines()[0]
    assert summary and summary.split(":")[0].rstrip(".") in result.stdout.replace("\n  ", " "), summary
    assert result.stderr == ""


def test_version(tmp_path):
    from flattr_node import __version__

    result = assert_ok(subprocess.run([*BASE, "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path))
    assert __version__ in result.stdout


# --- failures: one line, exit 1 -----------------------------------------------


def test_unknown_user(node):
    assert_fails(node("token", "create", "nobody"), "nobody")


def test_bad_deposit_reference(node):
    assert_fails(node("deposit", "confirm", "FN-ZZZZ-ZZZZ"), "FN-ZZZZ-ZZZZ")
    assert_fails(node("deposit", "confirm", "99999999999999999999999"), "no deposit")
    assert_fails(node("deposit", "confirm", "not a reference"), "no deposit")


def test_close_of_a_period_that_has_not_ended(node):
    assert_fails(node("close-month", "2999-01"), "2999-01", "not ended")
    assert_fails(node("close-month", "2026-13"), "YYYY-MM")


def test_bad_config_value_names_the_key(node, tmp_path, database_url):
    bad = write_config(tmp_path / "bad.toml", database_url, fee_percent=200)
    assert_fails(node("check", config=bad), "fee_percent")
    bad2 = write_config(tmp_path / "bad2.toml", database_url, timezone="Mars/Olympus")
    assert_fails(node("check", config=bad2), "timezone")
    bad3 = write_config(tmp_path / "bad3.toml", database_url, montly_budget=5)
    assert_fails(node("check", config=bad3), "montly_budget")


def test_missing_config_file(node, tmp_path):
    assert_fails(node("check", config=tmp_path / "nope.toml"), "nope.toml", "does not exist")


def test_config_file_from_the_environment(node, tmp_path, config_file):
    env = {**os.environ, "FLATTR_NODE_CONFIG": str(tmp_path / "missing.toml")}
    result = subprocess.run([*BASE, "check"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert_fails(result, "missing.toml")
    env["FLATTR_NODE_CONFIG"] = str(config_file)
    assert_ok(subprocess.run([*BASE, "check"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path))


def test_unreadable_toml(node, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('database = "sqlite:///x.db\n[[[')
    assert_fails(node("check", config=broken), "not valid TOML")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert_fails(node("check", config=binary), "binary.toml")


def test_unreachable_database(node, tmp_path):
    down = write_config(tmp_path / "down.toml", "postgresql://postgres@127.0.0.1:1/nothing")
    assert_fails(node("check", config=down), "database")


def test_user_create_mistakes(node, make_user):
    make_user("ann")
    assert_fails(node("user", "create", "ann", "--email", "a@example.org", "--password", "long enough"), "taken")
    assert_fails(node("user", "create", "Bad Name!", "--email", "a@example.org", "--password", "long enough"), "username")
    assert_fails(node("user", "create", "bob", "--email", "nope", "--password", "long enough"), "email")
    assert_fails(node("user", "create", "bob", "--email", "b@example.org", "--password", "short"), "password")
    assert User.select().count() == 1


def test_payout_commands_on_unknown_payouts(node):
    assert_fails(node("payout", "paid", "4242"), "4242")
    assert_fails(node("payout", "failed", "99999999999999999999999"), "payout")


def test_backup_to_an_existing_path(node, tmp_path):
    target = tmp_path / "exists.db"
    target.write_text("precious")
    assert_fails(node("backup", str(target)), "exists")
    assert target.read_text() == "precious"


# --- what the commands do ---------------------------------------------------------


def test_user_create_and_token_create(node):
    result = assert_ok(node("user", "create", "kim", "--email", "kim@example.org", "--password", "correct horse", "--operator"))
    assert "kim" in result.stdout
    kim = User.get(User.username == "kim")
    assert kim.is_operator and people.authenticate("kim", "correct horse") is not None
    token = assert_ok(node("token", "create", "kim"))
    # The token alone on stdout, so that `TOKEN=$(flattr-node token create kim)` works.
    assert token.stdout.endswith("\n") and token.stdout.count("\n") == 1
    value = token.stdout.strip()
    assert value.startswith("fn_") and " " not in value
    assert token.stderr == ""
    assert people.user_for_token(value).id == kim.id


def test_user_create_asks_for_the_password(node):
    assert_ok(node("user", "create", "ann", "--email", "ann@example.org", input="correct horse\ncorrect horse\n"))
    assert people.authenticate("ann", "correct horse") is not None


def test_deposit_confirm_twice_credits_once(node, make_user):
    kim = make_user("kim")
    d1 = funds.open_deposit(kim, 1500)
    d2 = funds.open_deposit(kim, 700)
    first = assert_ok(node("deposit", "confirm", str(d1.id)))
    assert "confirmed" in first.stdout and "15.00" in first.stdout
    again = assert_ok(node("deposit", "confirm", str(d1.id)))
    assert "already confirmed" in again.stdout
    assert ledger.balance(kim.id, "funds") == 1500
    # By reference, in lower case, with spaces instead of dashes: also once.
    sloppy = d2.reference.lower().replace("-", " ")
    assert "confirmed deposit" in assert_ok(node("deposit", "confirm", sloppy)).stdout
    assert "already confirmed" in assert_ok(node("deposit", "confirm", d2.reference)).stdout
    assert ledger.balance(kim.id, "funds") == 2200
    assert Txn.select().where(Txn.kind == "deposit").count() == 2
    assert ledger.check_ledger().ok


def test_deposit_list_and_cancel(node, make_user):
    kim = make_user("kim")
    d = funds.open_deposit(kim, 1234)
    listed = assert_ok(node("deposit", "list"))
    assert d.reference in listed.stdout and "kim" in listed.stdout
    assert_ok(node("deposit", "cancel", d.reference))
    assert Deposit.get_by_id(d.id).status == "cancelled"
    assert d.reference not in assert_ok(node("deposit", "list")).stdout
    assert_fails(node("deposit", "confirm", d.reference), "cancelled")
    assert ledger.balance(kim.id, "funds") == 0


def test_payout_paid_and_failed(cfg, node, make_user):
    ann = make_user("ann")
    giver = make_user("giver", 5000, budget=5000)
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    from conftest import at

    from flattr_node import closing
    from flattr_node.services import flattring

    flattring.flattr_thing(cfg, giver, thing.id, at("2026-09", 3))
    closing.close_period(cfg.with_(revenue_requires_giving=False), "2026-09", at("2026-10", 2))
    p1 = funds.request_payout(cfg, ann, 2000)
    p2 = funds.request_payout(cfg, ann, 3000)
    assert "marked paid" in assert_ok(node("payout", "paid", str(p1.id))).stdout
    assert "already paid" in assert_ok(node("payout", "paid", str(p1.id))).stdout
    assert "back in revenue" in assert_ok(node("payout", "failed", str(p2.id))).stdout
    assert_fails(node("payout", "paid", str(p2.id)), "failed")
    assert [Payout.get_by_id(p.id).status for p in (p1, p2)] == ["paid", "failed"]
    assert ledger.balance(ann.id, "revenue") == 3000
    assert ledger.check_ledger().ok


def test_close_month(cfg, node, make_user):
    from conftest import at

    from flattr_node.services import flattring

    kim = make_user("kim", 200, budget=200)
    ann = make_user("ann", 200)
    kims = things.register_thing(kim, {"url": "https://kim.example/p", "title": "p"})
    anns = things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    flattring.flattr_thing(cfg, kim, anns.id, at("2026-09", 3))
    flattring.flattr_thing(cfg, ann, kims.id, at("2026-09", 4))
    result = assert_ok(node("close-month", "2026-09", "--quiet"))
    assert "2026-09 closed" in result.stdout and "€4.00" in result.stdout
    assert ledger.balance(ann.id, "revenue") == 200 and ledger.balance(kim.id, "revenue") == 200
    again = assert_ok(node("close-month", "2026-09"))
    assert "2026-09 closed" in again.stdout
    assert ledger.balance(ann.id, "revenue") == 200
    assert "ledger ok" in assert_ok(node("check")).stdout


# --- check ----------------------------------------------------------------------------


def test_check_passes_on_a_clean_ledger(node, make_user):
    make_user("kim", 500)
    result = assert_ok(node("check"))
    assert "ledger ok" in result.stdout


def test_check_fails_on_a_changed_balance(node, make_user):
    kim = make_user("kim", 500)
    with database.atomic():
        database.execute_sql(f"UPDATE account SET balance = 1000000 WHERE code = 'user:{kim.id}:funds'")
    result = node("check")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"user:{kim.id}:funds stores 1000000 but its postings sum to 500" in result.stderr


def test_check_fails_on_an_unbalanced_transaction(node, make_user):
    kim = make_user("kim", 500)
    with database.atomic():
        txn = Txn.create(key="forged:gift", kind="forged")
        Posting.insert(txn=txn, account=Account.get(Account.code == f"user:{kim.id}:funds"), amount=100).execute()
    result = node("check")
    assert result.returncode == 1
    assert "transaction forged:gift sums to 100" in result.stderr


def test_check_fails_on_a_forged_deposit(node, make_user):
    kim = make_user("kim")
    d = funds.open_deposit(kim, 500)
    with database.atomic():
        database.execute_sql(f"UPDATE deposit SET status = 'confirmed' WHERE id = {d.id}")
    result = node("check")
    assert result.returncode == 1
    assert "money created or destroyed" in result.stderr


# --- backup ----------------------------------------------------------------------------


def test_backup_is_a_checked_copy_with_the_same_data(node, tmp_path, make_user, cfg):
    """SQLite: a database file. PostgreSQL: a pg_dump archive, restored with
    pg_restore into a new database on the same server."""
    if PG_URL:
        need_pg_dump()
    kim = make_user("kim", 500)
    ann = make_user("ann", 300)
    things.register_thing(ann, {"url": "https://ann.example/p", "title": "p"})
    funds.open_deposit(kim, 99)
    target = tmp_path / "backups" / ("copy.dump" if PG_URL else "copy.db")
    result = assert_ok(node("backup", str(target)))
    assert f"backup written to {target}" in result.stdout
    if PG_URL:
        assert result.stderr == ""  # not a terminal: no status line
        assert oct(target.stat().st_mode & 0o777) == "0o600"  # it holds password hashes
        with restored_pg_dump(target, cfg.database) as copy_url:
            assert_copy_is_the_node(node, tmp_path, copy_url)
    else:
        with sqlite3.connect(target) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert_copy_is_the_node(node, tmp_path, f"sqlite:///{target}")


def assert_copy_is_the_node(node, tmp_path, copy_url):
    for table in ("user", "account", "txn", "posting", "deposit", "thing", "schema_version"):
        live = database.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        assert copy_rows(copy_url, f'SELECT COUNT(*) FROM "{table}"')[0][0] == live, table
    balances = dict(Account.select(Account.code, Account.balance).tuples())
    assert balances and dict(copy_rows(copy_url, "SELECT code, balance FROM account")) == balances
    copy_config = write_config(tmp_path / "copy.toml", copy_url)
    assert "ledger ok" in assert_ok(node("check", config=copy_config)).stdout


def test_backup_on_postgresql_without_pg_dump(node, tmp_path):
    """No PostgreSQL client tools on the PATH: one line that says what to install, no file."""
    if not PG_URL:
        pytest.skip("runs only against PostgreSQL (FLATTR_TEST_DATABASE)")
    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FLATTR_NODE_CONFIG", "FLATTR_NODE_LOG_LEVEL")}
    env["PATH"] = str(tmp_path / "empty")
    target = tmp_path / "copy.dump"
    result = subprocess.run(
        [*BASE, "--config", str(node.config), "backup", str(target)], capture_output=True, text=True, timeout=120, env=env
    )
    assert_fails(result, "pg_dump", "PostgreSQL client tools")
    assert not target.exists()


def test_backup_when_pg_dump_fails(node, tmp_path):
    """pg_dump starts, then fails (a table in the node's schema that the node's
    role may not read): its error in one line, exit 1, no file left behind."""
    if not PG_URL:
        pytest.skip("runs only against PostgreSQL (FLATTR_TEST_DATABASE)")
    need_pg_dump()
    import psycopg2

    suffix = uuid.uuid4().hex[:12]
    role, schema = f"t_role_{suffix}", f"t_{suffix}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute(f"CREATE ROLE {role} LOGIN")
    cur.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {role}")
    try:
        parts = urlsplit(PG_URL)
        netloc = f"{role}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        sep = "&" if parts.query else ""
        url = urlunsplit(parts._replace(netloc=netloc, query=f"{parts.query}{sep}options=-csearch_path%3D{schema}"))
        config = write_config(tmp_path / "role.toml", url)
        assert_ok(node("check", config=config))  # the node's tables, made by its role
        cur.execute(f"CREATE TABLE {schema}.operators_notes (note text)")  # the superuser's, unreadable to the role
        target = tmp_path / "copy.dump"
        line = assert_fails(node("backup", str(target), config=config), "pg_dump failed", "permission denied", "operators_notes")
        assert "Query was" not in line  # the error, not pg_dump's detail line after it
        assert not target.exists()
        cur.execute(f"DROP TABLE {schema}.operators_notes")
        assert "backup written" in assert_ok(node("backup", str(target), config=config)).stdout
    finally:
        cur.execute(f"DROP SCHEMA {schema} CASCADE")
        cur.execute(f"DROP ROLE {role}")
        admin.close()


def test_pg_dump_gets_the_password_in_its_environment_only():
    from flattr_node.pgbackup import pg_dump_command, sets_search_path

    url = "postgresql://kim:s%40cr%27t@db.example:5433/flattr?sslmode=require&options=-csearch_path%3Dnode1"
    argv, env = pg_dump_command(url, "node1")
    assert not [arg for arg in argv if "s@cr't" in arg or "s%40cr" in arg], argv
    assert env["PGPASSWORD"] == "s@cr't"
    assert argv[:2] == ["pg_dump", "--format=custom"]
    assert '--schema="node1"' in argv
    conninfo = argv[-1].removeprefix("--dbname=")
    for part in ("dbname='flattr'", "host='db.example'", "port='5433'", "user='kim'", "sslmode='require'"):
        assert part in conninfo, conninfo
    assert sets_search_path(url) and not sets_search_path("postgresql://kim@db.example/flattr")
    argv, env = pg_dump_command("postgresql://kim@db.example/flattr")
    assert not [arg for arg in argv if arg.startswith("--schema")]


def test_init_in_an_empty_directory(tmp_path):
    if PG_URL:
        pytest.skip("init's default config is a SQLite node in the current directory")
    env = {k: v for k, v in os.environ.items() if k != "FLATTR_NODE_CONFIG"}
    result = assert_ok(subprocess.run([*BASE, "init"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env))
    assert "config.toml" in result.stdout
    written = (tmp_path / "config.toml").read_text()
    assert 'secret_key = ""' not in written
    assert (tmp_path / "var" / "flattr.db").exists()
    assert oct((tmp_path / "config.toml").stat().st_mode & 0o777) == "0o600"
    # Again: the config is kept, the database is already there.
    assert_ok(subprocess.run([*BASE, "init"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env))
    assert (tmp_path / "config.toml").read_text() == written
    assert_ok(subprocess.run([*BASE, "check"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env))


def test_a_directory_as_config(node, tmp_path):
    """click itself refuses it as a usage error (exit 2), without a traceback."""
    result = node("check", config=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is a directory" in result.stderr


def test_arguments_that_are_not_utf8(node, make_user):
    """A shell can pass any bytes: they are refused with a line, never a traceback."""
    make_user("kim")
    assert_fails(node("user", "create", "bob", "--email", "b@example.org", "--password", b"long enough \xff"), "password")
    assert_fails(node("user", "create", "bob", "--email", b"b\xff@example.org", "--password", "long enough"), "email")
    assert_fails(node("user", "create", b"b\xffb", "--email", "b@example.org", "--password", "long enough"), "username")
    assert_fails(node("token", "create", b"kim\xff"), "no person")
    assert_fails(node("deposit", "confirm", b"FN-\xff"), "no deposit")
    assert_fails(node("close-month", b"2026-\xff"), "YYYY-MM")
    assert User.select().count() == 1


def test_paths_that_cannot_be_written(node, tmp_path, database_url):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    assert_fails(node("init", config=a_file / "config.toml"), "a-file")
    broken = write_config(tmp_path / "broken-db.toml", f"sqlite:///{a_file}/node.db")
    assert_fails(node("check", config=broken), "a-file")
    assert_fails(node("backup", str(a_file / "copy.db")), "a-file")
    assert a_file.read_text() == "not a directory"


def test_close_month_defaults_to_the_last_ended_period(node, cfg):
    from flattr_node import periods
    from flattr_node.models import Period, utcnow

    last = periods.last_ended(utcnow(), cfg.tz)
    result = assert_ok(node("close-month", "--quiet"))
    assert f"period {last} closed" in result.stdout
    assert Period.get_by_id(last).status == "closed"
    current = periods.name_of(utcnow(), cfg.tz)
    assert_fails(node("close-month", current), current, "not ended")
