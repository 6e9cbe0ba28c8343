"""The Flask application factory: web pages and the JSON API in one app."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from flask import Flask, g, jsonify, request
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from peewee import OperationalError
from werkzeug.exceptions import HTTPException

from . import db as dbmod
from . import i18n
from .config import Config, ConfigError
from .errors import FlattrError
from .i18n import said
from .models import User

log = logging.getLogger(__name__)
access = logging.getLogger("flattr_node.access")
csrf = CSRFProtect()
login_manager = LoginManager()

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
    if cfg.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address from the proxies' X-Forwarded-For (rate limits count per client).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.proxy_hops, x_proto=0, x_host=0, x_port=0, x_prefix=0)

    csrf.init_app(app)
    i18n.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "web.signin"

    @login_manager.user_loader
    def load_user(user_id: str):
        try:
            user = User.get_or_none(User.id == int(user_id))
        except ValueError:
            return None
        return user if user is not None and user.is_active else None

    @app.before_request
    def open_connection():
        dbmod.database.connect(reuse_if_open=True)

    @app.teardown_request
    def close_connection(exc):
        # PostgreSQL: hand the connection back to the pool. SQLite: keep it
        # for this thread's next request (waitress's threads are few and
        # long-lived); opening one and setting its pragmas cost about half a
        # millisecond, more than a badge's query.
        database = dbmod.database
        if dbmod.dialect().pooled and not database.is_closed() and database.transaction_depth() == 0:
            database.close()

    @app.before_request
    def statement_upload_limit():
        """A bank statement (operator pages) may be larger than any other request."""
        if request.path == "/operator/bank/import":
            request.max_content_length = cfg.bank_max_statement_mb * 1024 * 1024

    @app.before_request
    def csrf_guard():
        """Cookie requests that change state need a CSRF token; token requests
        carry no cookie authority (the API ignores cookies when a token is sent)."""
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return None
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            # Only a token that is valid carries the request's authority; a
            # made-up one must not switch the CSRF check off for a cookie.
            from .services.people import user_for_token

            if user_for_token(request.headers["Authorization"][7:].strip()) is not None:
                return None
            if request.path.startswith("/api/"):
                return None  # the API answers 401 for that token and ignores cookies
        if request.path in NO_CSRF or request.path.startswith("/rest/"):
            return None  # apps authenticated by their secret or token, never by a cookie
        if request.endpoint == "web.unsubscribe":
            return None  # RFC 8058: the mail program posts it; its signed token is the proof
        if request.path.startswith("/federation/"):
            return None  # node-to-node requests: signed (RFC 9421), never cookie-authenticated
        from flask_login import current_user

        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return None  # the API answers 401
        csrf.protect()
        return None

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

    @app.errorhandler(FlattrError)
    def domain_error(e: FlattrError):
        return error_response(e.code, e.description, e.status, e.field)

    @app.errorhandler(CSRFError)
    def csrf_error(e: CSRFError):
        if wants_json():
            return error_response("forbidden", said("CSRF check failed: %(reason)s", reason=e.description), 403)
        # A person's browser: their session ended (cookies cleared, the node's
        # key changed) or the page was opened in another session. Say so in
        # words, and that nothing changed.
        if "session" in (e.description or ""):
            what = said("Your session has expired, so this form was not sent and nothing was changed. Open the page again and send the form once more.")
        else:
            what = said("This form is out of date (it was opened before you signed in or out), so it was not sent and nothing was changed. Open the page again and send the form once more.")
        return error_response("session_expired", what, 403)

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
        if not dbmod.is_retryable(e) and "locked" not in str(e) and "connect" not in str(e) and "busy" not in str(e):
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
        if dbmod.is_retryable(e):  # the connection pool is exhausted: busy, not broken
            return db_busy(e)
        # PostgreSQL cannot hold NUL in text: psycopg2 refuses such a parameter.
        if "NUL (0x00)" not in str(e):
            return unexpected(e)
        return error_response("invalid_request", said("text must not contain NUL (0x00) characters"), 400)

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response("server_error", said("something went wrong on the node; it has been logged"), 500)

    from .api import bp as api_bp
    from .oauth import NO_CSRF
    from .oauth import init_app as init_oauth
    from .public import bp as public_bp
    from .web import bp as web_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(public_bp)
    init_oauth(app)
    from .rest_v2 import bp as rest_v2_bp

    app.register_blueprint(rest_v2_bp)
    from .webhooks.views import bp as webhooks_web_bp

    app.register_blueprint(webhooks_web_bp)
    from .federation.views import bp as federation_bp

    app.register_blueprint(federation_bp)
    return app
