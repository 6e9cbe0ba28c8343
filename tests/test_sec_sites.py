"""Site verification under attack (issue 10, items 2, 7, 9): slow servers on
loopback (real sockets in threads) cannot hold the node past one deadline;
odd pages never give a 500; only the home page's own <head> counts and no
redirect leaves the site; the SSRF guard knows IPv6 forms of private IPv4
addresses, and private fetching is an explicit setting."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from button_helpers import form_token, parse, signin, text
from live import serve_pages

from flattr_node import netguard
from flattr_node.services import sites

once = pytest.mark.sqlite_only
HEAD_LINK = '<html><head><link rel="payment" href="http://localhost:8080/users/ann"></head><body>Ann</body></html>'


@pytest.fixture
def cfg(cfg):
    return cfg.with_(base_url="http://localhost:8080", allow_private_network=True)


@contextlib.contextmanager
def raw_server(behaviour):
    """A TCP server on 127.0.0.1 whose every connection runs behaviour(conn)
    in its own thread (after reading the request). Yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)  # accept() wakes up to see `stop`
    stop = threading.Event()

    def handle(conn):
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)
                behaviour(conn, stop)
            except OSError:
                pass  # the node hung up: what we want

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def trickle_body(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.2):
        conn.sendall(b"x")  # one byte at a time, for as long as anyone listens


def trickle_headers(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10000:
        if stop.wait(0.2):
            return
        conn.sendall(bytes([byte]))


def stall_after_headers(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 500\r\n\r\n<html>")
    stop.wait(60)


@once
@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers, stall_after_headers])
def test_a_slow_home_page_ends_at_one_deadline(client, make_user, cfg, monkeypatch, behaviour):
    make_user("ann")
    signin(client, "ann")
    monkeypatch.setattr(sites, "VERIFY_DEADLINE", 1.0)
    with raw_server(behaviour) as base:
        response = client.post("/sites", data={"url": base, "csrf_token": form_token(parse(client.get("/sites")))})
    assert response.status_code == 422
    assert "did not answer in time" in text(parse(response))


def verify(client, url):
    return client.post("/sites", data={"url": url, "csrf_token": form_token(parse(client.get("/sites")))})


def test_odd_pages_never_give_a_500(client, make_user):
    ann = make_user("ann")
    signin(client, "ann")
    pages = {
        "/": ("text/html; charset=x-no-such-charset", HEAD_LINK),
        "/marked": "<![foo[ x ]]>" + HEAD_LINK,
        "/bytes": ("text/html; charset=utf-8", HEAD_LINK.replace("<head>", "<head><title>\xff\xfe</title>").encode("latin-1")),
    }
    with serve_pages(pages) as base:
        assert verify(client, base).status_code == 302  # an unknown charset: read as UTF-8
        for path in ("/marked", "/bytes"):
            pages["/"] = pages[path]
            assert verify(client, base).status_code == 302, path
    assert len(sites.sites_of(ann)) == 1


def test_verifications_are_capped_per_person_and_per_node(client, make_user, cfg, monkeypatch):
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    monkeypatch.setattr(sites, "VERIFY_DEADLINE", 2.0)
    monkeypatch.setattr(sites, "_running", threading.BoundedSemaphore(2))
    with raw_server(stall_after_headers) as base:
        first = threading.Thread(target=lambda: pytest.raises(sites.FetchError, sites.verify_site, cfg, ann, base), daemon=True)
        first.start()
        time.sleep(0.5)
        with pytest.raises(sites.RateLimited, match="still running"):
            sites.verify_site(cfg, ann, base)  # one at a time per person
        second = threading.Thread(target=lambda: pytest.raises(sites.FetchError, sites.verify_site, cfg, bob, base), daemon=True)
        second.start()
        time.sleep(0.5)
        with pytest.raises(sites.RateLimited, match="too many sites"):
            sites.verify_site(cfg, cat, base)  # the node's cap is reached
        first.join(10)
        second.join(10)
    with serve_pages({"/": HEAD_LINK}) as base:
        assert sites.verify_site(cfg, ann, base).user_id == ann.id  # the slots are free again


def test_sites_is_rate_limited(client, make_user):
    make_user("ann")
    signin(client, "ann")
    token = form_token(parse(client.get("/sites")))
    statuses = [client.post("/sites", data={"url": "ftp://x.example/", "csrf_token": token}).status_code for _ in range(21)]
    assert statuses[:20] == [422] * 20 and statuses[20] == 429


def test_only_the_home_pages_own_head_counts(make_user, cfg):
    ann = make_user("ann")
    link = '<link rel="payment" href="http://localhost:8080/users/ann">'
    anchor = '<a rel="payment" href="http://localhost:8080/users/ann">me</a>'
    refused = {
        "a reader's comment": f"<html><head><title>Blog</title></head><body><div class=comment>{anchor}</div></body></html>",
        "a link in the body": f"<html><head></head><body><p>hi</p>{link}</body></html>",
        "a commented-out link": f"<html><head><!-- {link} --></head><body></body></html>",
        "a link after body text": f"<title>x</title><p>text</p>{link}",
    }
    pages: dict = {}
    with serve_pages(pages) as base:
        for why, page in refused.items():
            pages["/"] = page
            with pytest.raises(sites.Validation, match='no rel="payment" link'):
                sites.verify_site(cfg, ann, base)
            assert sites.sites_of(ann) == [], why
        pages["/"] = f"<!doctype html><title>Blog</title>{link}<p>hello</p>"  # an implied head counts
        assert sites.verify_site(cfg, ann, base).user_id == ann.id


def test_no_redirect_off_the_site(make_user, cfg):
    ann = make_user("ann")
    pages: dict = {}
    with serve_pages(pages) as base, serve_pages({"/": HEAD_LINK}, public_host="localhost") as elsewhere:

        def redirect(h):
            h.send_response(302)
            h.send_header("Location", elsewhere + "/")
            h.send_header("Content-Length", "0")
            h.end_headers()

        pages["/"] = redirect
        with pytest.raises(sites.Validation, match="not allowed"):
            sites.verify_site(cfg, ann, base)
    assert sites.sites_of(ann) == []


@once
def test_http_https_and_www_are_one_site():
    assert sites.site_of("https://www.ann.example/a") == sites.site_of("http://ann.example/") == "ann.example"
    assert sites.site_of("https://ann.example:8443/") != sites.site_of("https://ann.example/")


@once
@pytest.mark.parametrize(
    "ip",
    ["::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::1",
     "2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1", "::1", "fe80::1", "169.254.169.254", "not an address"],
)
def test_ipv6_forms_of_private_addresses_are_not_public(ip):
    assert not netguard.is_public_address(ip)


@once
def test_public_addresses_pass():
    for ip in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "64:ff9b::5db8:d822"):
        assert netguard.is_public_address(ip), ip


def test_private_fetching_is_a_setting_not_a_guess(make_user, cfg):
    """A node whose base_url is on localhost used to fetch private addresses;
    now only allow_private_network decides (default false)."""
    ann = make_user("ann")
    default = cfg.with_(allow_private_network=False)
    assert default.base_url.startswith("http://localhost")
    with serve_pages({"/": HEAD_LINK}) as base:
        for url in (base, "http://[::127.0.0.1]:9/", "http://[::ffff:127.0.0.1]:9/"):
            with pytest.raises(sites.Validation, match="private or local address"):
                sites.verify_site(default, ann, url)
        assert sites.verify_site(cfg, ann, base).user_id == ann.id


@once
def test_netguard_fetch_caps_size_and_reports_in_words():
    pages = {"/big": "x" * 5000, "/ok": ("text/plain; charset=latin-1", "caf\xe9".encode("latin-1"))}
    with serve_pages(pages) as base:
        with pytest.raises(netguard.FetchError, match="larger than"):
            netguard.fetch(base + "/big", max_bytes=1024, allow_private=True)
        page = netguard.fetch(base + "/ok", allow_private=True, timeout=5)
        assert (page.status, page.text) == (200, "café")
        assert netguard.fetch(base + "/missing", allow_private=True).status == 404
    with pytest.raises(netguard.FetchError, match="cannot fetch"):
        netguard.fetch("http://127.0.0.1:9/", allow_private=True)


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[::ffff:127.0.0.1]", "127.0.0.1"])
def test_federation_uses_the_same_guard(cfg, host):
    from flattr_node.federation.outbound import PeerUnreachable, check_address

    with pytest.raises(PeerUnreachable, match="private or local address"):
        check_address(cfg.with_(allow_private_network=False), f"http://{host}:9/")


@once
def test_netguard_posts_a_body_and_does_not_follow_a_post_redirect():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            data = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/moved":
                self.send_response(307)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            reply = b"got " + data
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = netguard.fetch(base + "/hook", method="POST", body=b'{"a": 1}', allow_private=True, headers={"Content-Type": "application/json"})
        assert (page.status, page.body) == (200, b'got {"a": 1}')
        moved = netguard.fetch(base + "/moved", method="POST", body=b"x", allow_private=True)
        assert moved.status == 307 and moved.url == base + "/moved"
        with pytest.raises(netguard.FetchError, match="private or local address"):
            netguard.fetch(base + "/hook", method="POST", body=b"x")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
