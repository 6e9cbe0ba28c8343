"""A database the node cannot use right now answers 503 server_busy with
Retry-After, never a 500: told apart by the engine's own error code
(SQLite's result code, PostgreSQL's SQLSTATE), not by the words of its
message, which depend on the engine's version and language."""

from __future__ import annotations

import os

import pytest
from conftest import PG_URL, assert_error

from flattr_node.app import create_app
from flattr_node.db import database


def ask(client):
    return client.get("/api/v1/things/1", headers={"Accept": "application/json"})


@pytest.mark.skipif(bool(PG_URL), reason="SQLite's file")
def test_a_sqlite_file_that_cannot_be_opened_answers_503(cfg, db, client, make_user):
    """The disk holding the database went away between requests (its
    directory moved): SQLITE_CANTOPEN, whose message says neither
    'locked' nor 'busy'. It was a 500 "something went wrong"."""
    path = database.obj.database
    folder = os.path.dirname(path)
    database.close()
    os.rename(folder, folder + "-away")
    try:
        response = ask(client)
        assert_error(response, 503, "server_busy")
        assert response.headers["Retry-After"] == "2"
    finally:
        database.close()
        os.rename(folder + "-away", folder)
    assert ask(client).status_code == 404  # back: no thing 1, as before


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL's server")
def test_a_postgresql_server_that_refuses_connections_answers_503(cfg):
    """The server is down (restarting, or not started yet): the driver's
    error has no SQLSTATE, which is what tells it from an error in SQL."""
    client = create_app(cfg.with_(database="postgresql://postgres@127.0.0.1:1/flattr")).test_client()
    response = ask(client)
    assert_error(response, 503, "server_busy")
    assert response.headers["Retry-After"] == "2"
