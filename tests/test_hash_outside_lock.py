"""Hashing a password (Argon2, the slowest step of any request: about
0.3 s) happens before the service's transaction, never while it holds the
write lock: on SQLite that lock is the whole node's, so a sign-up or a
password reset would stop every flattr for as long as the hash takes.

The hash here waits until someone else's flattr has gone through (or 20 s
pass): under the write lock, that flattr would wait for the hash instead,
and the order of the two would be the other way round."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher

from flattr_node.db import database
from flattr_node.services import flattring, invites, passwords, people, things


@pytest.fixture
def shop(cfg, make_user):
    ann, kim = make_user("ann"), make_user("kim", 1000)
    thing = things.register_thing(ann, {"url": "https://ann.example/post", "title": "A post"})
    return {"kim": kim, "ann": ann, "thing": thing}


def hash_waits_for_a_flattr(monkeypatch, cfg, shop, slow_step) -> list[str]:
    """Run `slow_step` in a thread; while it hashes, kim flattrs ann's
    thing here. Returns the order in which the two finished."""
    hashing, flattred, done = threading.Event(), threading.Event(), []

    class SlowHasher(PasswordHasher):  # argon2-cffi's hasher, made slow: the node's code is untouched
        def hash(self, password, *args, **kwargs):
            hashing.set()
            flattred.wait(timeout=20)
            return super().hash(password, *args, **kwargs)

    monkeypatch.setattr(people, "_hasher", SlowHasher())
    failed = []

    def run():
        try:
            slow_step()
            done.append("slow step")
        except Exception as e:  # noqa: BLE001 - reported below
            failed.append(e)
        finally:
            database.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert hashing.wait(timeout=20), "the slow step never hashed"
    flattr = flattring.flattr_thing(cfg, shop["kim"], shop["thing"].id)
    done.append("flattr")
    flattred.set()
    thread.join(timeout=60)
    assert not failed, failed
    assert flattr.id is not None
    return done


def test_a_flattr_goes_through_while_a_sign_up_hashes(monkeypatch, cfg, shop):
    order = hash_waits_for_a_flattr(monkeypatch, cfg, shop, lambda: invites.sign_up(cfg, "zoe", "zoe@example.org", "correct horse"))
    assert order == ["flattr", "slow step"]
    assert people.authenticate("zoe", "correct horse") is not None


def test_a_flattr_goes_through_while_a_password_reset_hashes(monkeypatch, cfg, shop):
    token = passwords.operator_reset_token(shop["ann"])
    order = hash_waits_for_a_flattr(monkeypatch, cfg, shop, lambda: passwords.reset_password(token, "a new password"))
    assert order == ["flattr", "slow step"]
    assert people.authenticate("ann", "a new password") is not None
