"""Real HTTP for tests: the node on waitress in a thread, and static pages
(a "blog") on another port, both on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import waitress
from waitress import wasyncore

from flattr_node.app import create_app


def stop_waitress(server, thread) -> None:
    """Close every socket from inside the server's own loop (closing them
    from this thread races with its select()), then wait for it to end."""

    def close_all():
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
        wasyncore.close_all(server._map)

    server.trigger.pull_trigger(close_all)
    thread.join(10)


@contextlib.contextmanager
def serve_node(cfg, host: str = "127.0.0.1", public_host: str | None = None):
    """Yield (cfg with base_url of the live server, app). The app is built
    once the port is known, so every link it makes points at itself."""
    holder: dict = {}
    server = waitress.create_server(lambda env, start: holder["app"](env, start), host=host, port=0, threads=4, ident="test-node")
    cfg = cfg.with_(base_url=f"http://{public_host or host}:{server.effective_port}")
    holder["app"] = app = create_app(cfg, bind_database=False)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield cfg, app
    finally:
        stop_waitress(server, thread)


@contextlib.contextmanager
def serve_pages(pages: dict, host: str = "127.0.0.1", public_host: str | None = None):
    """Serve {path: html, (content_type, body) or handler -> either}; 404 for
    anything else. `pages` may be changed while serving. Yields the base URL
    (with `public_host` in it if given: "localhost" makes another origin than
    a node on 127.0.0.1)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            page = pages.get(self.path.split("?")[0])
            if page is None:
                self.send_response(404)
                self.end_headers()
                return
            if callable(page):
                page = page(self)
                if page is None:
                    return
            ctype, body = page if isinstance(page, tuple) else ("text/html; charset=utf-8", page)
            data = body.encode() if isinstance(body, str) else body
            try:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{public_host or host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
