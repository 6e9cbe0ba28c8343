"""Notices (SPEC §9): what a person is told, on the dashboard and by e-mail.

The queue is a table. A notice is written in the same transaction as its
event (a deposit confirmed, a payout paid or failed, a subscription that
could not flattr): if the event commits, so does its notice, and if it
rolls back, nobody hears of it. A month close tells givers and owners from
the facts it stored: `queue_closed_periods` writes every notice of a closed
period in one transaction with a marker row (NoticeScan), so a crash before
it only delays them to the next tick.

E-mail goes out after the commit (`send_pending`): `kick`, called when a
request, a scheduler job or a command is done, hands it to the mailer's
thread at once if that thread queued a notice; the scheduler's one-minute
job sends what a kick missed (SMTP down, a process killed). Each notice is
claimed with a lease so that two processes never send it
both, and marked sent after the SMTP server accepted it. A process killed
between the two resends it once its lease ends; the Message-ID stays the
same, so mail software can drop the copy. Every e-mail has a one-click
unsubscribe (RFC 8058) for its kind: a signed token, no sign-in needed, that
works only for the person it was sent to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import smtplib
import threading
from email.message import EmailMessage
from urllib.parse import urlsplit

from babel.dates import format_date
from itsdangerous import BadSignature, URLSafeSerializer

from .. import i18n, periods
from ..config import Config
from ..db import database, execute, insert_rows
from ..errors import NotFound, Validation
from ..i18n import said
from ..models import User, utcnow
from ..models_sup import NOTICE_KINDS, Notice, NoticeOptOut, NoticeScan
from ..money import format_amount

log = logging.getLogger(__name__)
LEASE = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5
MAIL_MAX_AGE = dt.timedelta(days=3)  # older notices are not mailed late (SMTP set up afterwards)
BATCH = 50
CLOSE_LIST = 20  # things named in a month's notice; the rest are counted
_queued = threading.local()  # this thread queued a notice since its last kick


def queue(user_id: int, kind: str, key: str, params: dict, now: dt.datetime | None = None) -> None:
    """Inside the event's transaction. Idempotent by `key`."""
    assert kind in NOTICE_KINDS, kind
    mail = (
        "none"
        if NoticeOptOut.select().where((NoticeOptOut.user == user_id) & (NoticeOptOut.kind == kind)).exists()
        else "pending"
    )
    Notice.insert(
        user=user_id, kind=kind, key=key, params=json.dumps(params), created_at=now or utcnow(), mail=mail
    ).on_conflict_ignore().execute()
    _queued.any = True


def queue_many(kind: str, items: list[tuple[int, str, dict]], now: dt.datetime | None = None) -> None:
    """`queue` for many people at once (user_id, key, params): a bank
    statement's confirmed deposits. Inside the event's transaction."""
    assert kind in NOTICE_KINDS, kind
    if not items:
        return
    out = _opted_out(kind)
    at = now or utcnow()
    when = Notice.created_at.db_value(at)
    rows = [(u, kind, key, json.dumps(params), when, "none" if u in out else "pending", 0) for u, key, params in items]
    fields = [Notice.user, Notice.kind, Notice.key, Notice.params, Notice.created_at, Notice.mail, Notice.attempts]
    insert_rows(Notice, fields, rows, ignore_conflicts=True)
    _queued.any = True


# --- the month close ----------------------------------------------------------


def queue_closed_periods(cfg: Config, now: dt.datetime | None = None) -> list[str]:
    """Tell givers and owners of every closed period not told yet."""
    done = NoticeScan.select(NoticeScan.name)
    todo = [
        name
        for (name,) in execute("SELECT name FROM period WHERE status = 'closed' ORDER BY name").fetchall()
        if not done.where(NoticeScan.name == f"close:{name}").exists()
    ]
    for name in todo:
        _queue_closed(cfg, name, now or utcnow())
    return todo


def _opted_out(kind: str) -> set[int]:
    return {u for (u,) in NoticeOptOut.select(NoticeOptOut.user).where(NoticeOptOut.kind == kind).tuples()}


def _queue_closed(cfg: Config, name: str, now: dt.datetime) -> None:
    with database.atomic():
        marked = execute(
            "INSERT INTO notice_scan (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
            (f"close:{name}", NoticeScan.created_at.db_value(now)),
        ).fetchone()
        if marked is None:  # another process told them
            return
        givers: dict[int, dict] = {}
        rows = execute(
            "SELECT f.giver_id, t.title, f.status, COALESCE(f.share, 0) FROM flattr f JOIN thing t ON t.id = f.thing_id "
            "WHERE f.period = ? ORDER BY f.giver_id, f.created_at, f.id",
            (name,),
        )
        for giver, title, status, share in rows:
            g = givers.setdefault(giver, {"period": name, "spend": 0, "counted": 0, "not_counted": 0, "things": []})
            if status == "counted":
                g["spend"] += share
                g["counted"] += 1
                if len(g["things"]) < CLOSE_LIST:
                    g["things"].append([title, share])
            else:
                g["not_counted"] += 1
        owners = execute(
            "SELECT owner_id, SUM(share - fee), COUNT(*), COUNT(DISTINCT thing_id) FROM flattr "
            "WHERE period = ? AND status = 'counted' GROUP BY owner_id",
            (name,),
        ).fetchall()
        _insert_many("month_closed", [(u, f"close:{name}:giver:{u}", p) for u, p in givers.items()], now)
        _insert_many(
            "revenue",
            [
                (u, f"close:{name}:owner:{u}", {"period": name, "amount": int(a), "flattrs": n, "things": t})
                for u, a, n, t in owners
            ],
            now,
        )


def _insert_many(kind: str, items: list[tuple[int, str, dict]], now: dt.datetime) -> None:
    off = _opted_out(kind)
    rows = [
        {
            "user": u,
            "kind": kind,
            "key": key,
            "params": json.dumps(p),
            "created_at": now,
            "mail": "none" if u in off else "pending",
        }
        for u, key, p in items
    ]
    for i in range(0, len(rows), 500):
        Notice.insert_many(rows[i : i + 500]).on_conflict_ignore().execute()
    if rows:
        _queued.any = True


# --- words ----------------------------------------------------------------------


def _month(name: str, lang: str) -> str:
    year, month = periods.parse(name)
    return format_date(dt.date(year, month, 1), "MMMM yyyy", locale=lang)


def describe(cfg: Config, notice: Notice, lang: str) -> tuple[str, str]:
    """(subject, text) of a notice in a language, from its stored facts."""
    t = i18n.translations(lang)
    _, n_ = t.gettext, t.ngettext
    p = json.loads(notice.params)
    money = lambda cents: format_amount(int(cents), cfg.currency, lang)  # noqa: E731
    if notice.kind == "deposit_confirmed":
        subject = _("Your deposit of %(amount)s arrived") % {"amount": money(p["amount"])}
        text = _("Your deposit %(reference)s of %(amount)s is confirmed: the money is in your funds now.") % {
            "reference": p["reference"], "amount": money(p["amount"])}  # fmt: skip
    elif notice.kind == "payout":
        if p["status"] == "paid":
            subject = _("Your withdrawal of %(amount)s was paid") % {"amount": money(p["amount"])}
            text = _("The node's operator paid out your withdrawal of %(amount)s.") % {"amount": money(p["amount"])}
        else:
            subject = _("Your withdrawal of %(amount)s failed") % {"amount": money(p["amount"])}
            text = _("Your withdrawal of %(amount)s could not be paid out: the amount is back in your revenue.") % {
                "amount": money(p["amount"])}  # fmt: skip
    elif notice.kind == "month_closed":
        month = _month(p["period"], lang)
        subject = _("%(month)s is closed: you gave %(amount)s") % {"month": month, "amount": money(p["spend"])}
        lines = [
            n_(
                "In %(month)s you gave %(amount)s to %(num)d thing:",
                "In %(month)s you gave %(amount)s to %(num)d things:",
                p["counted"],
            )
            % {"month": month, "amount": money(p["spend"]), "num": p["counted"]}
        ]
        lines += [f"- {title}: {money(share)}" for title, share in p["things"]]
        if p["counted"] > len(p["things"]):
            more = p["counted"] - len(p["things"])
            lines.append(n_("… and %(num)d more.", "… and %(num)d more.", more) % {"num": more})
        if p["not_counted"]:
            lines.append(
                n_(
                    "%(num)d flattr did not count: its owner gave no flattr that month.",
                    "%(num)d flattrs did not count: their owners gave no flattr that month.",
                    p["not_counted"],
                )
                % {"num": p["not_counted"]}
            )
        text = "\n".join(lines)
    elif notice.kind == "revenue":
        month = _month(p["period"], lang)
        flattrs = n_("%(num)d flattr", "%(num)d flattrs", p["flattrs"]) % {"num": p["flattrs"]}
        things = n_("%(num)d thing", "%(num)d things", p["things"]) % {"num": p["things"]}
        subject = _("%(amount)s from %(flattrs)s on %(things)s") % {
            "amount": money(p["amount"]),
            "flattrs": flattrs,
            "things": things,
        }
        text = _("In %(month)s you received %(amount)s from %(flattrs)s on %(things)s. It is in your revenue now.") % {
            "month": month, "amount": money(p["amount"]), "flattrs": flattrs, "things": things}  # fmt: skip
    elif notice.kind == "webhook_disabled":
        subject = _("Your webhook endpoint %(url)s is disabled") % {"url": p["url"]}
        error = i18n.from_dict(p["error_said"]).shown(t, lang) if p.get("error_said") else p["error"]
        text = n_(
            "The node stopped sending events to %(url)s: a message failed %(num)d time (%(error)s). "
            "Fix the endpoint, then enable it again or send the message again on your dashboard's Webhooks page.",
            "The node stopped sending events to %(url)s: a message failed %(num)d times (%(error)s). "
            "Fix the endpoint, then enable it again or send the message again on your dashboard's Webhooks page.",
            p["attempts"],
        ) % {"url": p["url"], "num": p["attempts"], "error": error}
    else:  # subscription
        month = _month(p["period"], lang)
        subject = _("Your subscription could not flattr “%(thing)s”") % {"thing": p["thing"]}
        text = _(
            "Your subscription could not flattr “%(thing)s” in %(month)s: you need at least %(amount)s in your funds. "
            "The month still counts."
        ) % {"thing": p["thing"], "month": month, "amount": money(p["min_funds"])}
        text += " " + n_("%(num)d month is left.", "%(num)d months are left.", p["remaining"]) % {"num": p["remaining"]}
    return subject, text


def kind_label(kind: str, lang: str) -> str:
    _ = i18n.translations(lang).gettext
    return {
        "deposit_confirmed": _("A deposit arrived"),
        "month_closed": _("A month closed: what I gave, and to whom"),
        "revenue": _("Revenue received"),
        "payout": _("A withdrawal was paid or failed"),
        "subscription": _("A subscription could not flattr"),
        "webhook_disabled": _("A webhook endpoint was disabled"),
    }[kind]


# --- the person's choices --------------------------------------------------------


def recent(user: User, limit: int = 50) -> list[Notice]:
    return list(Notice.select().where(Notice.user == user.id).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit))


def mailed_kinds(user: User) -> dict[str, bool]:
    off = {k for (k,) in NoticeOptOut.select(NoticeOptOut.kind).where(NoticeOptOut.user == user.id).tuples()}
    return {k: k not in off for k in NOTICE_KINDS}


def set_mailed(user_id: int, kind: str, on: bool) -> None:
    if kind not in NOTICE_KINDS:
        raise Validation(said('there is no kind of notice called %(kind)s', kind=repr(kind)), field="kind")
    with database.atomic():
        if on:
            NoticeOptOut.delete().where((NoticeOptOut.user == user_id) & (NoticeOptOut.kind == kind)).execute()
        else:
            NoticeOptOut.insert(user=user_id, kind=kind).on_conflict_ignore().execute()
            # Not yet sent: they stay on the dashboard, but are not mailed.
            Notice.update(mail="none").where(
                (Notice.user == user_id) & (Notice.kind == kind) & (Notice.mail == "pending")
            ).execute()


def _serializer(cfg: Config) -> URLSafeSerializer:
    from ..app import secret_key_for

    return URLSafeSerializer(secret_key_for(cfg), salt="notice-unsubscribe")


def unsubscribe_token(cfg: Config, user_id: int, kind: str) -> str:
    return _serializer(cfg).dumps([user_id, kind])


def unsubscribe_url(cfg: Config, user_id: int, kind: str) -> str:
    return f"{cfg.base_url.rstrip('/')}/notices/unsubscribe/{unsubscribe_token(cfg, user_id, kind)}"


def read_token(cfg: Config, token: str) -> tuple[User, str]:
    """The person and kind a token was made for; NotFound for anything else."""
    try:
        user_id, kind = _serializer(cfg).loads(str(token))
    except (BadSignature, ValueError, TypeError, UnicodeError):
        raise NotFound(said('this unsubscribe link is not valid: use the link of the e-mail as it came')) from None
    user = User.get_or_none(User.id == user_id) if isinstance(user_id, int) and kind in NOTICE_KINDS else None
    if user is None:
        raise NotFound(said('this unsubscribe link is not valid: use the link of the e-mail as it came'))
    return user, kind


# --- sending ------------------------------------------------------------------------


def _claim(now: dt.datetime) -> list[int]:
    """Up to BATCH pending notices, each leased to this sender alone."""
    with database.atomic():
        Notice.update(mail="none").where((Notice.mail == "pending") & (Notice.created_at < now - MAIL_MAX_AGE)).execute()
        free = (Notice.mail == "pending") & (Notice.lease_until.is_null() | (Notice.lease_until < now))
        ids = [i for (i,) in Notice.select(Notice.id).where(free).order_by(Notice.id).limit(BATCH).tuples()]
        mine = []
        for notice_id in ids:
            got = (
                Notice.update(lease_until=now + LEASE, attempts=Notice.attempts + 1)
                .where(free & (Notice.id == notice_id))
                .execute()
            )
            if got:
                mine.append(notice_id)
        return mine


def message_for(cfg: Config, notice: Notice, user: User) -> EmailMessage:
    lang = i18n.clean(getattr(user, "language", "") or "en")
    _ = i18n.translations(lang).gettext
    subject, text = describe(cfg, notice, lang)
    link = unsubscribe_url(cfg, user.id, notice.kind)
    host = urlsplit(cfg.base_url).hostname or "localhost"
    message = EmailMessage()
    message["From"] = cfg.smtp_from
    message["To"] = user.email
    message["Subject"] = subject
    digest = hashlib.sha256(f"{cfg.base_url}:{notice.key}".encode()).hexdigest()[:24]
    message["Message-ID"] = f"<notice-{notice.id}.{digest}@{host}>"
    message["List-Unsubscribe"] = f"<{link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    footer = _("You get this e-mail because of your account %(username)s on %(node)s.") % {
        "username": user.username, "node": cfg.base_url}  # fmt: skip
    stop = _("To stop e-mails of this kind, open: %(link)s") % {"link": link}
    message.set_content(f"{text}\n\n-- \n{footer}\n{stop}\n")
    return message


def kick(cfg: Config) -> None:
    """After the commit: if this thread queued notices, mail them now from
    the mailer's thread. Sending twice is impossible (the claim decides);
    a notice whose transaction rolled back is simply not there."""
    from .. import mailer

    if not getattr(_queued, "any", False):
        return
    _queued.any = False

    def send():
        with database.connection_context():
            send_pending(cfg)

    mailer.run_later(cfg, send, "the pending notices")


def send_pending(cfg: Config, now: dt.datetime | None = None) -> int:
    """Mail what is pending; returns how many were sent. Without SMTP
    nothing is mailed: notices stay on the dashboard."""
    from ..mailer import enabled as mail_enabled

    if not mail_enabled(cfg):
        return 0
    now = now or utcnow()
    sent = 0
    while ids := _claim(now):
        notices = (
            Notice.select(Notice, User).join(User, on=(Notice.user == User.id)).where(Notice.id.in_(ids)).order_by(Notice.id)
        )
        try:
            smtp = _connect(cfg)
        except (OSError, smtplib.SMTPException) as e:
            log.warning("notices: SMTP server unavailable (%s); will retry", e)
            return sent
        with smtp:
            for notice in notices:
                sent += _send_one(cfg, smtp, notice)
    return sent


def _connect(cfg: Config) -> smtplib.SMTP:
    smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=20)
    if cfg.smtp_starttls:
        smtp.starttls()
    if cfg.smtp_user:
        smtp.login(cfg.smtp_user, cfg.smtp_password)
    return smtp


def _send_one(cfg: Config, smtp: smtplib.SMTP, notice: Notice) -> int:
    user = notice.user
    if NoticeOptOut.select().where((NoticeOptOut.user == user.id) & (NoticeOptOut.kind == notice.kind)).exists():
        Notice.update(mail="none").where(Notice.id == notice.id).execute()
        return 0
    try:
        smtp.send_message(message_for(cfg, notice, user))
    except (OSError, smtplib.SMTPException) as e:
        status = "failed" if notice.attempts >= MAX_ATTEMPTS else "pending"
        Notice.update(mail=status).where(Notice.id == notice.id).execute()
        log.warning("notices: mail %d to user %d not sent (%s)", notice.id, user.id, e)
        return 0
    Notice.update(mail="sent", sent_at=utcnow(), lease_until=None).where(Notice.id == notice.id).execute()
    return 1
