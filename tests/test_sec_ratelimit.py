"""Attempt counters every process shares (issue 10, item 10): in the database
by default (two real `serve` processes count together, a restart keeps the
count), in Redis when configured; and a stranger's wrong guesses never lock a
person out of their own account."""

from __future__ import annotations

import os
import socket

import pytest
import requests
from nodeproc import Server, write_config
from web_helpers import csrf_token, parse

from flattr_node import db as dbmod
from flattr_node.app import create_app
from flattr_node.schema import migrate
from flattr_node.services import people


def attempt(client, username="kim", password="wrong password", address="10.0.0.9"):
    environ = {"REMOTE_ADDR": address}
    token = csrf_token(client, "/signin") if not hasattr(client, "_token") else client._token
    return client.post(
        "/signin", data={"csrf_token": token, "username": username, "password": password}, environ_base=environ
    ).status_code


def test_a_stranger_cannot_lock_a_person_out(client, make_user):
    make_user("kim")
    stranger = [attempt(client, address="203.0.113.9") for _ in range(11)]
    assert stranger[:10] == [422] * 10 and stranger[10] == 429
    # Kim, from her own address, signs in at once.
    assert attempt(client, password="correct horse", address="198.51.100.7") == 302


def test_one_address_cannot_spray_many_accounts(client, make_user):
    for name in ("ann", "bob", "cat", "dan"):
        make_user(name)
    statuses = [attempt(client, username=name, address="203.0.113.9") for _ in range(8) for name in ("ann", "bob", "cat", "dan")]
    assert statuses[:30] == [422] * 30 and set(statuses[30:]) == {429}  # 30 a minute per address


def test_the_count_survives_a_restart(app, client, cfg, make_user):
    make_user("kim")
    assert [attempt(client) for _ in range(10)] == [422] * 10
    restarted = create_app(cfg, bind_database=False).test_client()
    assert attempt(restarted, password="correct horse") == 429


def test_two_serve_processes_share_the_count(tmp_path, database_url):
    database = dbmod.bind(database_url)
    with database.connection_context():
        migrate()
    from flattr_node.config import Config, validate

    people.create_user(validate(Config(database=database_url)), "kim", "kim@example.org", "correct horse")
    database.close()
    config = write_config(tmp_path / "config.toml", database_url)
    servers = [Server(config, tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        statuses = []
        for i in range(11):
            server = servers[i % 2]
            browser = requests.Session()
            page = browser.get(server.url + "/signin", timeout=30)
            token = next(n.get("value") for n in parse(page.text).iter("input") if n.get("name") == "csrf_token")
            response = browser.post(
                server.url + "/signin", data={"csrf_token": token, "username": "kim", "password": "wrong"}, allow_redirects=False, timeout=30
            )
            statuses.append(response.status_code)
        assert statuses[:10] == [422] * 10 and statuses[10] == 429, statuses
    finally:
        for server in servers:
            server.stop()


def redis_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
        pytest.skip("needs Redis on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/0"


def test_redis_counts_for_every_process(cfg, db, make_user):
    node = cfg.with_(rate_limit_storage=redis_url())  # the test's own secret key: its own keys in Redis
    make_user("kim")
    first, second = (create_app(node, bind_database=False).test_client() for _ in range(2))
    statuses = [attempt(first if i % 2 else second) for i in range(11)]
    assert statuses[:10] == [422] * 10 and statuses[10] == 429


def test_an_unreachable_redis_refuses_in_words(cfg, db, make_user):
    make_user("kim")
    node = cfg.with_(rate_limit_storage="redis://127.0.0.1:9/0")
    client = create_app(node, bind_database=False).test_client()
    response = client.post("/signin", data={"csrf_token": csrf_token(client), "username": "kim", "password": "x"}, headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.get_json()["error"] == "server_busy"
    assert "unreachable" in response.get_json()["error_description"]


def test_behind_a_proxy_attempts_count_per_client(cfg, db, make_user):
    make_user("kim")
    proxied = create_app(cfg.with_(proxy_hops=1), bind_database=False).test_client()

    def via_proxy(client_ip, password="wrong password"):
        token = csrf_token(proxied, "/signin")
        return proxied.post(
            "/signin",
            data={"csrf_token": token, "username": "kim", "password": password},
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
            headers={"X-Forwarded-For": client_ip},
        ).status_code

    assert [via_proxy("203.0.113.9") for _ in range(11)][10] == 429
    assert via_proxy("198.51.100.7", "correct horse") == 302  # another client behind the same proxy


def test_without_a_proxy_the_header_is_ignored(client, make_user):
    make_user("kim")
    token = csrf_token(client, "/signin")
    statuses = [
        client.post(
            "/signin",
            data={"csrf_token": token, "username": "kim", "password": "wrong"},
            environ_base={"REMOTE_ADDR": "203.0.113.9"},
            headers={"X-Forwarded-For": f"10.0.0.{i}"},  # a made-up address each time
        ).status_code
        for i in range(11)
    ]
    assert statuses[10] == 429
