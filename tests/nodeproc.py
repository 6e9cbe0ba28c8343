"""Helpers for tests that run the real `flattr-node` command in subprocesses:
a config file, the CLI, `serve` on a free port, a PostgreSQL schema of its own,
and a month of data made with the services."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from flattr_node import db as dbmod
from flattr_node.schema import migrate

PG_UNDER_TEST = os.environ.get("FLATTR_TEST_DATABASE", "")
PG_ANY = PG_UNDER_TEST or os.environ.get("FLATTR_TEST_POSTGRES", "")
CLI = [sys.executable, "-m", "flattr_node.cli"]


def need_postgres() -> str:
    """The PostgreSQL server to use; skip without one (fail in CI)."""
    if PG_ANY:
        return PG_ANY
    if os.environ.get("CI") == "true":
        pytest.fail("CI: FLATTR_TEST_POSTGRES / FLATTR_TEST_DATABASE is not set")
    pytest.skip("needs PostgreSQL: set FLATTR_TEST_POSTGRES=postgresql://user@host:5432/db")


def pg_schema(base: str) -> tuple[str, str]:
    """A new empty schema on `base`: (url, schema name)."""
    import psycopg2

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(base)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {name}")
    conn.close()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{name}", name


def drop_pg_schema(base: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(base)
    conn.autocommit = True
    conn.cursor().execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    conn.close()


def need_pg_dump() -> None:
    """Skip without pg_dump and pg_restore (fail in CI, where .ci/run installs them)."""
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if not missing:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {' and '.join(missing)} not found: .ci/run installs postgresql-client")
    pytest.skip(f"needs {' and '.join(missing)} (the PostgreSQL client tools: apt install postgresql-client)")


@contextlib.contextmanager
def restored_pg_dump(archive: Path, node_url: str):
    """Restore the `flattr-node backup` archive of the node at `node_url` into
    a brand-new database on the same server, with pg_restore; yield the URL of
    the restored node (the same search_path options). Dropped after."""
    import psycopg2

    parts = urlsplit(node_url)
    server = urlunsplit(parts._replace(query=""))
    name = f"r_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(server)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    try:
        target = urlunsplit(parts._replace(path="/" + name, query=""))
        restore = subprocess.run(
            ["pg_restore", "--exit-on-error", "--no-owner", "--dbname", target, str(archive)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert restore.returncode == 0, f"pg_restore failed:\n{restore.stderr}"
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.close()


def copy_rows(url: str, sql: str) -> list[tuple]:
    """The rows of `sql` in the database at `url` (a backup's copy), read with
    the driver alone so that the node's own binding is left as it is."""
    if url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(dbmod.sqlite_path(url))) as conn:
            return conn.execute(sql).fetchall()
    import psycopg2

    with contextlib.closing(psycopg2.connect(url)) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def write_config(path: Path, database: str, **extra) -> Path:
    values = {
        "database": database,
        "secret_key": "test-" + uuid.uuid4().hex,
        "base_url": "http://127.0.0.1:8080",
        "scheduler": False,
        "log_level": "WARNING",
        **extra,
    }
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(config: Path, *args, check: bool = True, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=timeout, env=child_env(), **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(f"flattr-node {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def child_env() -> dict:
    env = dict(os.environ)
    env.pop("FLATTR_NODE_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_stale_faketime() -> None:
    """libfaketime keeps a semaphore and a shared-memory file per process in
    /dev/shm, named by its pid; a process killed with SIGKILL (the crash
    tests) leaves them, and a later faketime process that gets the same pid
    then fails ("sem_open: File exists"). Remove those of dead processes."""
    import glob

    for path in glob.glob("/dev/shm/faketime_shm_*") + glob.glob("/dev/shm/sem.faketime_sem_*"):
        pid = path.rsplit("_", 1)[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                os.remove(path)


class Server:
    """`flattr-node serve` (waitress) in a subprocess on a free port."""

    def __init__(self, config: Path, log: Path, wait: bool = True, port: int | None = None, prefix: tuple[str, ...] = ()):
        """`prefix`: a command the node runs under (`faketime -f @...`)."""
        if prefix[:1] == ("faketime",):
            clear_stale_faketime()
        self.port = port or free_port()  # give the port when base_url must name it
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*prefix, *CLI, "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
        self.log_path = log
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"serve did not start:\n{Path(self.log_path).read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def seed_month(cfg, period: str, people: int, things_per_person: int = 2, flattrs_per_person: int = 6, seed: int = 7) -> dict:
    """Make `people` people with money, things and flattrs in `period`, with
    the services, in the database `cfg` names. Returns their names and tokens."""
    import datetime as dt

    from flattr_node.services import flattring, funds, things
    from flattr_node.services import people as people_service

    database = dbmod.bind(cfg.database)
    database.connect(reuse_if_open=True)
    migrate()
    rng = random.Random(seed)
    year, month = map(int, period.split("-"))
    users, thing_ids = [], []
    hash_ = people_service.hash_password("correct horse")
    from flattr_node.models import User

    with database.atomic():
        for i in range(people):
            user = User.create(
                username=f"p{i:05d}", email=f"p{i}@example.org", password_hash=hash_, display_name=f"p{i}",
                monthly_budget=rng.choice([200, 300, 500, 1000]),
            )
            from flattr_node import ledger

            ledger.open_user_accounts(user)
            users.append(user)
    for user in users:
        dep = funds.open_deposit(user, rng.choice([200, 400, 2000]))
        funds.confirm_deposit(dep.id, now=dt.datetime(year, month, 1, 1))
        for j in range(things_per_person):
            thing_ids.append((user.id, things.register_thing(user, {"url": f"https://{user.username}.example/{j}", "title": f"t{j}"}).id))
    for user in users:
        targets = rng.sample(thing_ids, min(flattrs_per_person, len(thing_ids)))
        for owner_id, thing_id in targets:
            if owner_id == user.id:
                continue
            flattring.flattr_thing(cfg, user, thing_id, now=dt.datetime(year, month, rng.randint(1, 27), rng.randint(0, 23), rng.randint(0, 59)))
    tokens = {u.username: people_service.create_token(u, "test") for u in users[:5]}
    database.close()
    return {"users": [u.username for u in users], "things": [t for _, t in thing_ids], "tokens": tokens}


def seed_people(cfg, people: int, things_per_person: int = 2, funds_cents: int = 2000) -> dict:
    """People with money, a token each and things, made with the services now
    (for load tests: their flattrs happen over HTTP)."""
    from flattr_node import ledger
    from flattr_node.models import User
    from flattr_node.services import funds, things
    from flattr_node.services import people as people_service

    database = dbmod.bind(cfg.database)
    database.connect(reuse_if_open=True)
    migrate()
    hash_ = people_service.hash_password("correct horse")
    tokens, thing_ids = {}, []
    for i in range(people):
        with database.atomic():
            user = User.create(username=f"r{i:04d}", email=f"r{i}@example.org", password_hash=hash_, monthly_budget=200)
            ledger.open_user_accounts(user)
        funds.confirm_deposit(funds.open_deposit(user, funds_cents).id)
        tokens[user.id] = people_service.create_token(user, "load")
        for j in range(things_per_person):
            thing_ids.append(things.register_thing(user, {"url": f"https://{user.username}.example/{j}", "title": f"t{j}"}).id)
    database.close()
    return {"tokens": tokens, "things": thing_ids}


class Load:
    """Bounded concurrent traffic against a server: flattrs (duplicates
    included) and button reads, from `workers` threads, each with its own
    HTTP session. Every answer is recorded with the moment it arrived."""

    def __init__(self, url: str, tokens: dict, things: list[int], *, workers: int = 12, requests_each: int = 150, seed: int = 1, badge: bool = False):
        import threading

        self.url, self.tokens, self.things = url, tokens, things
        self.workers, self.requests_each, self.seed, self.badge = workers, requests_each, seed, badge
        self.records: list[tuple] = []  # (kind, user_id, thing_id, status, body, acked_at)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._work, args=(i,)) for i in range(workers)]

    def _work(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        users = sorted(self.tokens)
        session = requests.Session()
        for _ in range(self.requests_each):
            user = rng.choice(users[: max(2, len(users) // 2)]) if rng.random() < 0.5 else rng.choice(users)
            thing = rng.choice(self.things[: max(2, len(self.things) // 4)]) if rng.random() < 0.5 else rng.choice(self.things)
            roll = rng.random()
            headers = {"Authorization": f"Bearer {self.tokens[user]}"}
            if roll < 0.45:
                kind, r = "flattr", session.post(f"{self.url}/api/v1/things/{thing}/flattr", headers=headers, timeout=120)
            elif roll < 0.75 or not self.badge:
                kind, r = "button", session.get(f"{self.url}/api/v1/things/{thing}", headers=headers if roll < 0.6 else None, timeout=120)
            else:
                kind, r = "badge", session.get(f"{self.url}/things/{thing}/badge.svg", timeout=120)
            acked = time.monotonic()
            with self.lock:
                self.records.append((kind, user, thing, r.status_code, r.text[:2000], acked))
        session.close()

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def join(self) -> Load:
        for t in self.threads:
            t.join()
        return self


def badge_exists(url: str, thing_id: int) -> bool:
    r = requests.get(f"{url}/things/{thing_id}/badge.svg", timeout=30)
    return r.status_code == 200 and r.headers.get("Content-Type", "").startswith("image/svg+xml")
