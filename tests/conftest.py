"""Fixtures: a real database per test (a SQLite file, or a fresh PostgreSQL
schema when FLATTR_TEST_DATABASE points at a server), the app, and helpers to
make people with money."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import threading
import uuid
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import pytest

from flattr_node import db as dbmod
from flattr_node.app import create_app
from flattr_node.bank.accounts import save_payout_account
from flattr_node.config import Config, validate
from flattr_node.schema import migrate
from flattr_node.services import funds, people

PG_URL = os.environ.get("FLATTR_TEST_DATABASE", "")
CLOSE_BENCH = Path(__file__).resolve().parent.parent / "bench" / "close_month.py"


def load_close_bench():
    """bench/close_month.py as a module: its month builder and its checks."""
    spec = importlib.util.spec_from_file_location("close_month", CLOSE_BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(config, items):
    """Tests marked sqlite_only do not depend on the database engine (pages in
    a browser, languages, the WordPress plugin, bank-file parsing, pure
    functions): CI runs the suite twice, they run in the SQLite pass only."""
    if PG_URL:
        skip = pytest.mark.skip(reason="does not depend on the database engine: runs in the SQLite pass")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


def pytest_report_header(config):
    return f"database under test: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite files'}"


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def new_database_url(tmp_path):
    """new_database_url() -> a URL to a brand-new, empty database (dropped after the test)."""
    schemas: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        if not PG_URL:
            return f"sqlite:///{tmp_path / (name + '.db')}"
        import psycopg2

        with psycopg2.connect(PG_URL) as conn:
            conn.autocommit = True
            conn.cursor().execute(f"CREATE SCHEMA {name}")
        schemas.append(name)
        return _pg_schema_url(PG_URL, name)

    yield make
    if schemas:
        import psycopg2

        if dbmod.database.obj is not None and not dbmod.database.is_closed():
            dbmod.database.close()
        conn = psycopg2.connect(PG_URL)
        conn.autocommit = True
        for name in schemas:
            conn.cursor().execute(f"DROP SCHEMA {name} CASCADE")
        conn.close()


@pytest.fixture
def database_url(new_database_url):
    """The URL of this test's own empty database."""
    return new_database_url()


@pytest.fixture
def cfg(database_url, tmp_path):
    return validate(
        Config(
            database=database_url,
            secret_key="test-secret-" + uuid.uuid4().hex,
            base_url="http://node.test",
            scheduler=False,
            close_batch_size=3,
        )
    )


@pytest.fixture
def db(cfg):
    database = dbmod.bind(cfg.database)
    database.connect(reuse_if_open=True)
    migrate()
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def app(cfg, db):
    app = create_app(cfg, bind_database=False)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """A JSON client for one person's API token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, method, path, json=None, **kw):
        response = self.client.open(f"/api/v1{path}", method=method, json=json, headers=self.headers, **kw)
        return response

    def get(self, path, **kw):
        return self._call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self._call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self._call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self._call("DELETE", path, **kw)


@pytest.fixture
def make_user(cfg, db):
    """make_user('kim', funds=200) -> a person with confirmed deposits of `funds` cents
    and a payout account (payout_account=False: none)."""

    def make(name: str, funds_cents: int = 0, *, operator: bool = False, budget: int | None = None, payout_account: bool = True):
        user = people.create_user(cfg, name, f"{name}@example.org", "correct horse", operator=operator)
        if payout_account:  # SPEC §7: a payout needs one; a test IBAN (DE, valid check digits)
            save_payout_account(user, "DE89370400440532013000", name.title())
        if funds_cents:
            deposit = funds.open_deposit(user, funds_cents)
            funds.confirm_deposit(deposit.id)
        if budget is not None:
            user = people.update_settings(cfg, user, {"monthly_budget": budget})
        return user

    return make


@pytest.fixture
def api_for(client):
    def make(user) -> Api:
        return Api(client, people.create_token(user, "test") if user is not None else None)

    return make


@pytest.fixture
def anon(client):
    return Api(client, None)


def at(period: str, day: int = 15, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    """A naive-UTC moment inside `period` (tests run the node in UTC)."""
    year, month = map(int, period.split("-"))
    return dt.datetime(year, month, day, hour, minute, second)


def ledger_snapshot() -> dict:
    """Everything the money rules decide, without timestamps: to compare runs."""
    from flattr_node.models import Account, Flattr, Period, Posting, Txn

    postings = {}
    for key, code, amount in (
        Posting.select(Txn.key, Account.code, Posting.amount).join(Txn).switch(Posting).join(Account).tuples()
    ):
        postings.setdefault(key, []).append((code, amount))
    return {
        "postings": {k: sorted(v) for k, v in postings.items()},
        "balances": dict(Account.select(Account.code, Account.balance).tuples()),
        "flattrs": sorted(Flattr.select(Flattr.id, Flattr.status, Flattr.share, Flattr.fee).tuples()),
        "periods": sorted(
            Period.select(Period.name, Period.status, Period.givers, Period.flattrs, Period.counted, Period.distributed, Period.fees).tuples()
        ),
    }


def use_database(url: str):
    """Point the node at another (empty) database and migrate it."""
    if not dbmod.database.is_closed():
        dbmod.database.close()
    database = dbmod.bind(url)
    database.connect(reuse_if_open=True)
    migrate()
    return database


def assert_error(response, status, code, field=None):
    """The SPEC §3 error body: this status, this code, a description, the field."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == code, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    if field is not None:
        assert body.get("field") == field, body
    return body


class Inbox:
    """What a real SMTP server on loopback (aiosmtpd) received: (rcpt_tos, message)."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler protocol
        with self.lock:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=email_policy)))
        return "250 OK"

    def subjects(self, to: str) -> list[str]:
        return sorted(str(m["Subject"]) for rcpt, m in self.messages if rcpt == [to])


@pytest.fixture
def smtp():
    """An SMTP server on 127.0.0.1: (port, Inbox)."""
    from aiosmtpd.controller import Controller
    from nodeproc import free_port

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def mail_cfg(cfg, smtp):
    """The node's config, mailing through the `smtp` server."""
    return cfg.with_(smtp_host="127.0.0.1", smtp_port=smtp[0], smtp_from="node@node.test", smtp_starttls=False)
