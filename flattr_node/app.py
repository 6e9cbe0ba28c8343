"""The Flask application factory: web pages and the JSON API in one app."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from flask import Flask, g, jsonify, request
from peewee import OperationalError
from werkzeug.exceptions import HTTPException

from . import db as dbmod
from . import i18n
from .config import Config, ConfigError
from .errors import FlattrError
from .i18n import said

log = logging.getLogger(__name__)
access = logging.getLogger("flattr_node.access")

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "invalid_request",
    409: "invalid_request",
    413: "invalid_request",
    415: "invalid_request",
    422: "validation",
    429: "rate_limit_exceeded",
}
# Werkzeug's own sentences are English only: the node says these instead.
HTTP_WORDS = {
    400: said("The request could not be understood: check what was sent."),
    401: said("Sign in first."),
    403: said("You are not allowed to do this."),
    404: said("There is nothing at this address: check it, or start again from the home page."),
    405: said("This address does not take that kind of request."),
    413: said("What was sent is too large."),
    415: said("What was sent is not in a form this address reads."),
}


def secret_key_for(cfg: Config) -> str:
    """The configured key, else one kept beside the SQLite file (made once)."""
    if cfg.secret_key:
        return cfg.secret_key
    if not cfg.database.startswith("sqlite:///"):
        raise ConfigError("config key 'secret_key': must be set when the database is not SQLite")
    path = Path(os.path.dirname(os.path.abspath(dbmod.sqlite_path(cfg.database)))) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def wants_json() -> bool:
    if request.path.startswith(("/.well-known/", "/federation/")):  # server-to-server (federation)
        return True
    return request.path.startswith(("/api/", "/rest/")) or request.path.startswith("/oembed") or request.accept_mimetypes.best == "application/json"


def error_response(code: str, description: str, status: int, field: str | None = None):
    payload = {"error": code, "error_description": description}
    if field:
        payload["field"] = field
    if wants_json():
        response = jsonify(payload)
    else:
        from flask import render_template

        words = i18n.say(description)  # in the page's language; the JSON body stays English (SPEC §3)
        response = Flask.response_class(render_template("error.html", status=status, code=code, description=words))
    response.status_code = status
    return response


def create_app(cfg: Config, *, bind_database: bool = True) -> Flask:
    """The node's web app: each module registers what it owns, in this order
    (before-request hooks run in it, after-request hooks the other way)."""
    app = Flask(__name__)
    app.config.update(
        NODE=cfg,
        SECRET_KEY=secret_key_for(cfg),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg.base_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    if bind_database:
        dbmod.bind(cfg.database)
    from . import api, bank, oauth, public, rest_v2, sessions, web
    from .federation import views as federation_views
    from .webhooks import views as webhooks_views

    for init_app in (
        init_proxies,  # the client's address, before anything reads it
        dbmod.init_app,  # a connection per request
        bank.init_app,  # a bank statement's upload limit
        i18n.init_app,
        sessions.init_app,  # who is signed in; CSRF for cookie requests
        init_access_log,
        init_security_headers,
        init_error_pages,
        api.init_app,
        web.init_app,
        public.init_app,
        oauth.init_app,
        rest_v2.init_app,
        webhooks_views.init_app,
        federation_views.init_app,
    ):
        init_app(app, cfg)
    return app


def init_proxies(app: Flask, cfg: Config) -> None:
    if cfg.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address from the proxies' X-Forwarded-For (rate limits count per client).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.proxy_hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)


def init_access_log(app: Flask, cfg: Config) -> None:
    @app.before_request
    def start_timer():
        request.environ["flattr_node.start"] = time.perf_counter()

    @app.after_request
    def mail_notices(response):
        # The view's transactions are committed: its notices go out now.
        from .services import notices

        notices.kick(cfg)
        return response

    @app.after_request
    def access_log(response):
        started = request.environ.get("flattr_node.start")
        if started is not None:
            access.info(
                "%s %s %d %.1fms", request.method, request.path, response.status_code, (time.perf_counter() - started) * 1000
            )
        return response


def init_security_headers(app: Flask, cfg: Config) -> None:
    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("X-Frame-Options", "DENY")
            # base-uri, form-action and object-src: no default-src fallback covers them.
            # A page whose form must lead off the node (an OAuth consent that
            # redirects to its client) sets its own policy before this runs.
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'self'; object-src 'none'",
            )
        if cfg.base_url.startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        login = g.get("_login_user")  # only if this request asked who is signed in
        if login is not None and login.is_authenticated:
            # A signed-in person's page or JSON: their money and e-mail, for no cache.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def init_error_pages(app: Flask, cfg: Config) -> None:
    """Every error as SPEC §3's body (JSON, or a page for a browser); a
    database that cannot serve now is a 503, anything unforeseen a logged 500."""

    @app.errorhandler(FlattrError)
    def domain_error(e: FlattrError):
        return error_response(e.code, e.description, e.status, e.field)

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        status = e.code or 500
        if status >= 500:
            log.error("HTTP %s on %s %s: %s", status, request.method, request.path, e.description)
        words = HTTP_WORDS.get(status, e.description) if e.description == type(e).description else e.description
        return error_response(HTTP_CODES.get(status, "invalid_request"), words or e.name, status)

    @app.errorhandler(OperationalError)
    def db_busy(e: OperationalError):
        # A lock, a lost connection, or a conflict between transactions on
        # PostgreSQL (deadlock, serialization failure): retrying is the remedy.
        if not dbmod.is_unavailable(e):  # told by SQLite's error code or PostgreSQL's SQLSTATE
            return unexpected(e)
        log.error("database unavailable on %s %s: %s", request.method, request.path, e)
        response = error_response("server_busy", said("the node is busy: try again in a moment"), 503)
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(dbmod.DriverOperationalError)
    def db_conflict(e):
        return db_busy(e)  # psycopg2's deadlock/serialization errors arrive unwrapped

    @app.errorhandler(ValueError)
    def nul_in_text(e: ValueError):
        if dbmod.is_unavailable(e):  # the connection pool is exhausted: busy, not broken
            return db_busy(e)
        if not dbmod.dialect().refused_nul(e):  # PostgreSQL cannot hold NUL in text
            return unexpected(e)
        return error_response("invalid_request", said("text must not contain NUL (0x00) characters"), 400)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response("server_error", said("something went wrong on the node; it has been logged"), 500)
