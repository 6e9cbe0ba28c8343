"""Faults across nodes: the home node SIGKILLed while it drains its outbox,
a host down when the home node closes the month (and back after it), a
delivery the host refuses for good. (A host SIGKILLed with
deliveries pending: tests/test_federation.py.)"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from fednodes import Clock, Node, next_month_start, peer, period_now
from nodeproc import CLI, copy_rows


@pytest.fixture
def pair(tmp_path):
    clock = Clock(tmp_path)
    a = Node(tmp_path, "a", clock=clock.path).start()
    b = Node(tmp_path, "b", postgres=True, clock=clock.path).start()
    peer(a, b)
    yield clock, a, b
    a.drop()
    b.drop()


def test_home_node_killed_while_draining_delivers_every_flattr_once(pair):
    _, a, b = pair
    reader, blogger = a.person("rea", funds=500), b.person("blo")
    things = [b.thing(blogger, f"https://blog.example/{i}") for i in range(60)]
    for thing in things:
        assert a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{thing}"}).status_code == 201
    sync = subprocess.Popen([*CLI, "--config", str(a.config), "peer", "sync", "--quiet"], env=a.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    received = 0
    deadline = time.monotonic() + 60
    while received < 3 and time.monotonic() < deadline and sync.poll() is None:
        received = copy_rows(b.database, "SELECT COUNT(*) FROM inbox_flattr")[0][0]
        time.sleep(0.01)
    sync.send_signal(signal.SIGKILL)
    sync.wait(10)
    received = copy_rows(b.database, "SELECT COUNT(*) FROM inbox_flattr")[0][0]
    assert 0 < received < len(things), f"the kill should land mid-drain ({received} received)"
    assert "waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    assert copy_rows(b.database, "SELECT COUNT(*), COUNT(DISTINCT remote_id) FROM inbox_flattr")[0] == (60, 60)
    assert [b.count(t) for t in things] == [1] * 60
    a.cli("check")


def test_a_host_down_at_close_time_is_not_paid_and_the_reader_sees_why(pair):
    clock, a, b = pair
    period = period_now()
    reader, local_owner, blogger = a.person("rea", funds=400), a.person("own", funds=300), b.person("blo", funds=300)
    assert a.api(reader, "PATCH", "/user", json={"monthly_budget": 400}).status_code == 200
    local = a.thing(local_owner, "https://own.example/1")
    remote = b.thing(blogger, "https://blog.example/1")
    assert a.api(local_owner, "POST", "/flattr", json={"url": f"{b.url}/things/{remote}"}).status_code == 201  # own gives
    assert a.api(reader, "POST", f"/things/{local}/flattr").status_code == 201
    flattr = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{remote}"}).json()
    b.stop(kill=True)  # down before anything was delivered, and at close time
    clock.jump_to(next_month_start(period))
    a.cli("close-month", period, "--quiet")
    mine = {f["id"]: f for f in a.api(reader, "GET", f"/user/flattrs?period={period}").json()}
    assert mine[flattr["id"]]["status"] == "not_counted" and mine[flattr["id"]]["share"] == 0
    assert "did not receive every flattr in time" in mine[flattr["id"]]["reason"]
    counted = [f for f in mine.values() if f["status"] == "counted"]
    assert [f["share"] for f in counted] == [400]  # the whole budget goes to what counted
    assert "no settlements" in a.cli("settlement", "list").stdout
    a.cli("check")
    # B is back: what the close decided stays decided. The flattrs of the
    # closed month are not sent any more (B would count what nobody pays).
    b.start()
    assert "refused 2" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(remote) == 0 and copy_rows(b.database, "SELECT COUNT(*) FROM inbox_flattr")[0][0] == 0
    again = a.api(reader, "GET", f"/user/flattrs?period={period}").json()
    assert {f["id"]: (f["status"], f["share"]) for f in again} == {f["id"]: (f["status"], f["share"]) for f in mine.values()}
    assert [f["delivery"] for f in again if f["id"] == flattr["id"]] == ["refused"]
    a.cli("check")


def test_a_flattr_its_host_refused_does_not_count_and_the_statement_is_accepted(pair):
    """The thing was archived on B after A's reader flattred it, before the
    flattr reached B: B refuses the delivery for good, so the flattr never
    counts at A (the reader is told why), A's budget goes to what counted,
    and the statement B receives has only lines B knows: accepted."""
    clock, a, b = pair
    period = period_now()
    reader, other = a.person("rea", funds=400), a.person("oth", funds=300)
    blogger, friend = b.person("blo", funds=300), b.person("fri")
    for token, budget in ((reader, 400), (other, 300)):
        assert a.api(token, "PATCH", "/user", json={"monthly_budget": budget}).status_code == 200
    kept, archived = b.thing(blogger, "https://blog.example/kept"), b.thing(blogger, "https://blog.example/gone")
    assert b.api(blogger, "POST", f"/things/{b.thing(friend, 'https://fri.example/1')}/flattr").status_code == 201  # blo gives (R8)
    assert a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{kept}"}).status_code == 201
    assert a.api(other, "POST", "/flattr", json={"url": f"{b.url}/things/{archived}"}).status_code == 201
    assert "delivered 2, waiting 0" in a.cli("peer", "sync", "--quiet").stdout
    b.stop()  # A knows the thing; the reader's flattr waits in A's outbox
    late = a.api(reader, "POST", "/flattr", json={"url": f"{b.url}/things/{archived}"}).json()
    b.start()
    assert b.api(blogger, "DELETE", f"/things/{archived}").json()["archived"] is True
    assert "refused 1" in a.cli("peer", "sync", "--quiet").stdout
    assert b.count(archived) == 1  # only the other reader's flattr, delivered before

    mine = {f["id"]: f for f in a.api(reader, "GET", "/user/flattrs").json()}
    assert mine[late["id"]]["delivery"] == "refused" and "archived" in mine[late["id"]]["reason"]

    clock.jump_to(next_month_start(period))
    a.cli("close-month", period, "--quiet")
    mine = {f["id"]: f for f in a.api(reader, "GET", f"/user/flattrs?period={period}").json()}
    assert (mine[late["id"]]["status"], mine[late["id"]]["share"]) == ("not_counted", 0)
    assert "does not have this flattr" in mine[late["id"]]["reason"] and "archived" in mine[late["id"]]["reason"]
    assert sorted(f["share"] for f in mine.values() if f["status"] == "counted") == [400]  # the whole budget on what counted

    assert "statements sent 1" in a.cli("peer", "sync", "--quiet").stdout
    assert "\tsent" in a.cli("settlement", "list").stdout
    assert b.api(blogger, "GET", "/user").json()["pending_revenue"] == 400 + 300
    for node in (a, b):
        node.cli("check")
        assert "peers agree" in node.cli("peers", "check").stdout
