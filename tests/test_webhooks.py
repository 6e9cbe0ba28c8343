"""Webhooks against real processes: `flattr-node serve` (its scheduler
delivers) and a receiver on loopback that checks every signature with the
Standard Webhooks library. Each event arrives once as far as the receiver
can tell (the same webhook-id when sent again), also while the receiver is
down for a while and when the node is SIGKILLed in the middle of a delivery."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from nodeproc import Server, cli, free_port, write_config
from standardwebhooks import Webhook, WebhookVerificationError

from flattr_node import periods, webhooks
from flattr_node.models import utcnow
from flattr_node.services import flattring, people, things
from flattr_node.webhooks.models import WebhookMessage

WAIT = 60  # seconds an event may take to arrive on a busy 2-core machine


class Receiver:
    """An app's webhook endpoint: verifies, records (webhook-id, type, data)."""

    def __init__(self, port: int, secret: str | None = None):
        self.port, self.secret = port, secret
        self.got: list[tuple[str, str, dict]] = []
        self.forged = 0
        self.hold = threading.Event()
        self.hold.set()  # cleared: answer only once released
        self.arrived = threading.Event()
        self.server = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    message = Webhook(receiver.secret).verify(body, dict(self.headers))
                except WebhookVerificationError:
                    receiver.forged += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.got.append((self.headers["webhook-id"], message["type"], message["data"]))
                receiver.arrived.set()
                receiver.hold.wait(30)
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> set[str]:
        return {i for i, _, _ in self.got}

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + WAIT
        while len(self.ids()) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(self.ids()) >= count, self.got


@pytest.fixture
def world(cfg, db, make_user, tmp_path):
    cfg = cfg.with_(allow_private_network=True)  # the receiver is on loopback
    ann, kim = make_user("ann", 1000), make_user("kim", 1000)
    a = things.register_thing(ann, {"url": "https://ann.example/a", "title": "A"})
    k = things.register_thing(kim, {"url": "https://kim.example/k", "title": "K"})
    port = free_port()
    endpoint = webhooks.create_endpoint(cfg, ann, f"http://127.0.0.1:{port}/hook", list(webhooks.EVENTS))
    config = write_config(tmp_path / "config.toml", cfg.database, scheduler=True, allow_private_network=True, tick_minutes=60)
    receiver = Receiver(port, endpoint.secret)
    servers: list[Server] = []
    yield {"cfg": cfg, "ann": ann, "kim": kim, "a": a.id, "k": k.id, "config": config, "receiver": receiver, "servers": servers,
           "tmp": tmp_path, "kim_token": people.create_token(kim)}
    receiver.hold.set()
    receiver.stop()
    for server in servers:
        server.stop()


def serve(world, name="serve") -> Server:
    server = Server(world["config"], world["tmp"] / f"{name}.log")
    world["servers"].append(server)
    return server


def test_each_event_arrives_once_also_after_the_receiver_was_down(world):
    cfg, receiver = world["cfg"], world["receiver"]
    now = utcnow().replace(day=1) - dt.timedelta(days=10)
    last_month = periods.name_of(now, cfg.tz)
    # Last month: both give (R8), so Ann's revenue counts; then the month is closed.
    flattring.flattr_thing(cfg, world["kim"], world["a"], now=now)
    flattring.flattr_thing(cfg, world["ann"], world["k"], now=now)
    cli(world["config"], "close-month", last_month)

    node = serve(world)  # the receiver is down: nothing can arrive yet
    started = time.monotonic()
    answer = requests.post(f"{node.url}/api/v1/things/{world['a']}/flattr", headers={"Authorization": f"Bearer {world['kim_token']}"}, timeout=10)
    assert answer.status_code == 201, answer.text
    time.sleep(3)
    assert receiver.got == []
    receiver.start()
    receiver.wait_for(4)
    assert time.monotonic() - started < WAIT
    assert receiver.forged == 0
    by_type: dict = {}
    for msg_id, kind, data in receiver.got:
        by_type.setdefault(kind, {})[msg_id] = data
    assert sorted(by_type) == ["flattr.created", "period.closed", "revenue.credited"]
    flattrs = sorted(d["period"] for d in by_type["flattr.created"].values())
    assert flattrs == sorted([last_month, periods.name_of(utcnow(), cfg.tz)])
    assert all(d["thing"]["id"] == world["a"] and d["giver"]["username"] == "kim" for d in by_type["flattr.created"].values())
    (closed,) = by_type["period.closed"].values()
    assert closed["period"] == last_month and closed["status"] == "closed"
    (revenue,) = by_type["revenue.credited"].values()
    assert revenue == {"period": last_month, "amount": 200, "currency": "EUR", "flattrs": 1}  # Kim's €2 budget on her one flattr
    # The delivery log says the same: delivered, after more than one attempt for what waited.
    log = requests.get(f"{node.url}/api/v1/webhooks/messages", headers={"Authorization": f"Bearer {people.create_token(world['ann'])}"}, timeout=10).json()
    assert len(log) == 4 and all(m["status"] == "delivered" for m in log)
    assert max(m["attempts"] for m in log) >= 2
    assert {m["webhook_id"] for m in log} == receiver.ids()


def test_a_node_killed_mid_delivery_sends_it_again_with_the_same_id(world):
    receiver = world["receiver"]
    receiver.hold.clear()  # the receiver takes its time with the first delivery
    receiver.start()
    node = serve(world, "first")
    answer = requests.post(f"{node.url}/api/v1/things/{world['a']}/flattr", headers={"Authorization": f"Bearer {world['kim_token']}"}, timeout=10)
    assert answer.status_code == 201
    assert receiver.arrived.wait(WAIT)
    node.proc.kill()  # SIGKILL while the receiver holds the request
    node.proc.wait()
    held = receiver.got[0][0]  # the message the receiver got but the node never heard back about
    receiver.hold.set()
    serve(world, "second")
    deadline = time.monotonic() + WAIT
    while [i for i, _, _ in receiver.got].count(held) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [i for i, _, _ in receiver.got].count(held) == 2, receiver.got  # sent again, with the same id
    deadline = time.monotonic() + WAIT
    while WebhookMessage.select().where(WebhookMessage.status != "delivered").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    messages = list(WebhookMessage.select())
    assert all(m.status == "delivered" for m in messages)
    # One event per message as far as the receiver can tell: its ids are the queue's, each with one body.
    assert receiver.ids() == {webhooks.message_id(m) for m in messages}
    for msg_id in receiver.ids():
        assert len({json.dumps(d, sort_keys=True) for i, _, d in receiver.got if i == msg_id}) == 1
    assert WebhookMessage.get_by_id(int(held.removeprefix("msg_"))).attempts == 2
    created = [json.loads(m.payload)["data"] for m in messages if m.event == "flattr.created"]
    assert [d["giver"]["username"] for d in created] == ["kim"]


def test_a_failing_endpoint_is_retried_with_backoff_then_disabled(world):
    cfg = world["cfg"]
    receiver = world["receiver"]  # never started: every attempt fails
    flattring.flattr_thing(cfg, world["kim"], world["a"])
    start = utcnow()
    moment, attempts = start, 0
    while True:
        result = webhooks.drain(cfg, now=moment)
        if not result["failed"]:
            break
        attempts += 1
        message = WebhookMessage.get()
        if message.status == "failed":
            break
        assert message.next_attempt_at - moment == webhooks.BACKOFF[attempts - 1]
        assert webhooks.drain(cfg, now=message.next_attempt_at - dt.timedelta(seconds=1))["failed"] == 0  # not before its time
        moment = message.next_attempt_at
    assert attempts == len(webhooks.BACKOFF) + 1 and receiver.got == []
    endpoint = webhooks.live_endpoints(world["ann"]).get()
    assert not endpoint.enabled and "failed 9 times" in endpoint.disabled_reason
    from flattr_node.services import notices

    (notice,) = [n for n in notices.recent(world["ann"]) if n.kind == "webhook_disabled"]
    subject, text = notices.describe(cfg, notice, "en")
    assert endpoint.url in subject and "failed 9 times" in text
    # Its owner fixes the receiver and sends the message again from the log.
    receiver.start()
    webhooks.send_again(world["ann"], WebhookMessage.get().id)
    assert webhooks.drain(cfg)["delivered"] == 1 and len(receiver.ids()) == 1


def test_endpoint_urls_are_guarded(world, client):
    from flattr_node.errors import Validation

    cfg = world["cfg"].with_(allow_private_network=False)
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://[::1]/hook", "ftp://example.org/hook", "javascript:alert(1)"):
        with pytest.raises(Validation):
            webhooks.create_endpoint(cfg, world["ann"], url, ["flattr.created"])
    with pytest.raises(Validation, match="unknown event"):
        webhooks.create_endpoint(world["cfg"], world["ann"], "http://127.0.0.1:9/hook", ["flattr.deleted"])


def test_the_dashboard_page_adds_an_endpoint_shows_the_log_and_sends_again(world):
    from web_helpers import errors_of, parse, post, signin

    from flattr_node.app import create_app

    cfg, receiver = world["cfg"], world["receiver"]
    app = create_app(cfg, bind_database=False)
    app.config.update(TESTING=True)
    client = app.test_client()
    signin(client, "ann")
    bad = post(client, "/dashboard/webhooks", {"url": "ftp://ann.example/hook", "events": ["flattr.created"]}, token_from="/dashboard/webhooks")
    assert bad.status_code == 422 and any("http" in e for e in errors_of(bad))
    url = f"http://127.0.0.1:{receiver.port}/second"
    added = post(client, "/dashboard/webhooks", {"url": url, "events": ["flattr.created"]}, token_from="/dashboard/webhooks")
    assert added.status_code == 302
    row = webhooks.live_endpoints(world["ann"]).where(webhooks.WebhookEndpoint.url == url).get()
    receiver.secret = row.secret
    receiver.start()
    flattring.flattr_thing(cfg, world["kim"], world["a"])
    # Two messages: this endpoint's, and the fixture's endpoint's, signed with another secret,
    # which the receiver refuses (400): the node records that as a failure, to try again.
    assert webhooks.drain(cfg) == {"announced": [], "delivered": 1, "failed": 1}
    assert receiver.forged == 1
    page = parse(client.get("/dashboard/webhooks"))
    delivered = [r for r in page.iter("tr") if r.get("data-status") == "delivered"]
    assert delivered, "the log shows the delivery"
    message = WebhookMessage.get(WebhookMessage.endpoint == row.id)
    again = post(client, f"/dashboard/webhooks/messages/{message.id}/resend", {}, token_from="/dashboard/webhooks")
    assert again.status_code == 302 and WebhookMessage.get_by_id(message.id).status == "pending"
    webhooks.drain(cfg)
    second = [i for i, _, _ in receiver.got if i == f"msg_{message.id}"]
    assert len(second) == 2  # sent again with the same webhook-id
