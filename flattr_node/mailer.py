"""Mail goes out after the response, from one background thread.

A request that sends mail (a password reset, a notice that an e-mail address
changed) only puts the message on a queue: the answer does not wait for the
SMTP server, does not fail when it is down, and takes the same time whether
a message was queued or not (so it cannot tell who has an account). The
thread sends each message with smtplib; a failure is logged with the
recipient, never shown to the person who asked. The same thread sends the
notices a request queued (`run_later`), right after its commit.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
from email.message import EmailMessage

from .config import Config

log = logging.getLogger(__name__)
_queue: queue.Queue = queue.Queue()
_lock = threading.Lock()
_worker: threading.Thread | None = None


def enabled(cfg: Config) -> bool:
    return bool(cfg.smtp_host)


def send_now(cfg: Config, to: str, subject: str, body: str) -> None:
    """Send one message (raises smtplib/OS errors); the worker calls this."""
    message = EmailMessage()
    message["From"] = cfg.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=20) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_user:
            smtp.login(cfg.smtp_user, cfg.smtp_password)
        smtp.send_message(message)


def _work() -> None:
    while True:
        job, what = _queue.get()
        try:
            job()
        except Exception as e:  # noqa: BLE001 (any failure: logged, the next message goes on)
            log.error("could not send %s: %s", what, e)
        finally:
            _queue.task_done()


def run_later(cfg: Config, job, what: str) -> None:
    """Run `job()` on the background thread (nothing when mail is off);
    `what` names it in the log if it fails."""
    global _worker
    if not enabled(cfg):
        return
    with _lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="flattr-node-mailer", daemon=True)
            _worker.start()
    _queue.put((job, what))


def send_later(cfg: Config, to: str, subject: str, body: str) -> None:
    """Queue a message for the background thread (nothing when mail is off)."""
    what = f"the mail {subject!r} to {to} through {cfg.smtp_host}:{cfg.smtp_port}"
    run_later(cfg, lambda: send_now(cfg, to, subject, body), what)


def wait(timeout: float = 30.0) -> bool:
    """Wait until every queued message is sent or has failed (tests, shutdown)."""
    done = threading.Event()

    def join():
        _queue.join()
        done.set()

    threading.Thread(target=join, daemon=True).start()
    return done.wait(timeout)
