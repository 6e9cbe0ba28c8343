"""Every periodic job of the node, registered in one visible block.

The scheduler only *triggers*: correctness lives in the database. Each job is
idempotent and safe to run from several processes at once, so a node that
was down on the 1st catches up on start, and three `serve` processes firing
together do no harm.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from flattr_node.config import Config
from flattr_node.db import database

log = logging.getLogger("flattr_node.schedules")


def run_tick(cfg: Config) -> dict:
    """One tick: close ended periods, open this month's top-ups, check the ledger."""
    from flattr_node import closing
    from flattr_node.ledger import check_ledger
    from flattr_node.models import CheckRun
    from flattr_node.services import funds

    result: dict = {}
    with database.connection_context():
        try:  # federation: the peers' answers for R8, stored before the close plans
            from flattr_node.federation import gave

            gave.prepare_due(cfg)
        except Exception:
            log.exception("scheduler: asking peers for R8 failed; their flattrs will not count")
        try:
            result["closed"] = closing.close_due_periods(cfg)
            for name in result["closed"]:
                log.info("scheduler: closed period %s", name)
        except Exception:
            log.exception("scheduler: closing ended periods failed; will retry next tick")
        try:  # federation: statements for closed periods, sent to the peers
            from flattr_node.federation import settlement

            settlement.settle_after_close(cfg)
        except Exception:
            log.exception("scheduler: sending statements to peers failed; will retry next tick")
        try:
            result["topups"] = funds.open_topups(cfg)
            if result["topups"]:
                log.info("scheduler: opened %d top-up deposits", result["topups"])
        except Exception:
            log.exception("scheduler: opening top-up deposits failed; will retry next tick")
        result.update(run_subscriptions_and_notices(cfg))
        check = check_ledger()
        CheckRun.create(ok=check.ok, problems="\n".join(check.problems))
        result["check_ok"] = check.ok
        if check.ok:
            log.info("scheduler: ledger check ok")
        else:
            for problem in check.problems:
                log.critical("LEDGER CHECK FAILED: %s", problem)
    return result


def run_subscriptions_and_notices(cfg: Config) -> dict:
    """Inside run_tick's connection. This period's subscription flattrs (after the close above, so that a
    node that was down on the 1st first closes the old month), then the
    notices of closed months, then e-mail for every pending notice."""
    from flattr_node.services import notices, subscriptions

    result: dict = {}
    for name, job in (
        ("subscriptions", subscriptions.run_due),
        ("notices_queued", notices.queue_closed_periods),
        ("mailed", notices.send_pending),
    ):
        try:
            result[name] = job(cfg)
        except Exception:
            log.exception("scheduler: %s failed; will retry next tick", name)
    if result.get("subscriptions"):
        log.info("scheduler: subscriptions %s", result["subscriptions"])
    return result


def send_notices(cfg: Config) -> None:
    """E-mail pending notices soon after their event, between ticks."""
    from flattr_node.services import notices

    with database.connection_context():
        try:
            notices.send_pending(cfg)
        except Exception:
            log.exception("scheduler: sending notices failed; will retry")


def run_deliveries(cfg: Config) -> dict:
    """Deliver remote flattrs that are due (federation's outbox, with backoff)."""
    from flattr_node.federation import delivery

    with database.connection_context():
        try:
            return delivery.drain(cfg)
        except Exception:
            log.exception("scheduler: delivering remote flattrs failed; will retry")
            return {}


def run_webhooks(cfg: Config) -> dict:
    """Announce closed periods to webhooks and deliver what is due (with backoff)."""
    from flattr_node import webhooks
    from flattr_node.services import notices

    with database.connection_context():
        try:
            return webhooks.drain(cfg)
        except Exception:
            log.exception("scheduler: delivering webhooks failed; will retry")
            return {}
        finally:
            notices.kick(cfg)  # an endpoint disabled: its owner hears of it now, not in a minute


def start_scheduler(cfg: Config) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        timezone=cfg.timezone,
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
    )
    # --- every periodic job, in one block ---------------------------------
    scheduler.add_job(run_tick, "interval", minutes=cfg.tick_minutes, args=[cfg], id="tick", next_run_time=_now())
    scheduler.add_job(run_tick, "cron", day=1, hour=0, minute=0, second=30, args=[cfg], id="month-start")
    scheduler.add_job(send_notices, "interval", minutes=1, args=[cfg], id="notices")
    scheduler.add_job(run_deliveries, "interval", seconds=20, args=[cfg], id="federation-outbox", next_run_time=_now())
    scheduler.add_job(run_webhooks, "interval", seconds=2, args=[cfg], id="webhooks", next_run_time=_now())
    # -----------------------------------------------------------------------
    scheduler.start()
    log.info("scheduler: started (tick every %d minutes, timezone %s)", cfg.tick_minutes, cfg.timezone)
    return scheduler


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)
