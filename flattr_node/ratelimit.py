"""Attempt counters every process of a node shares (sign-in, sign-up,
password checks, resets, site checks).

Where they live is the `rate_limit_storage` setting:

- "database" (the default): a moving window in the node's own database
  (table rate_hit: one row per attempt, counted over the last window); every
  `serve` process sees it and a restart does not clear it;
- a Redis URL ("redis://127.0.0.1:6379/0"): the `limits` library's moving
  window on Redis;
- "memory": `limits` in this process only (lost at restart; tests, one-off runs).

Keys start with a digest of the node's secret key, so two nodes sharing a
Redis do not count for each other. If the store cannot be reached the attempt
is refused (503): a throttle that silently stops throttling would be worse.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time

from limits import RateLimitItem
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from peewee import CharField, DoubleField

from .config import Config
from .db import database
from .errors import FlattrError
from .i18n import said
from .models import BaseModel

log = logging.getLogger(__name__)


class StoreDown(FlattrError):
    code, status = "server_busy", 503


class RateHit(BaseModel):
    """One attempt under a key (migration 6); rows past `expires` are deleted now and then."""

    key = CharField(max_length=250)
    at = DoubleField()  # seconds since the epoch
    expires = DoubleField()

    class Meta:
        table_name = "rate_hit"
        indexes = ((("key", "at"), False),)


RATE_MODELS = [RateHit]


class DatabaseLimiter:
    """A moving window per key in the node's database. The attempt is written
    first and then counted, so two processes at once both see both."""

    def hit(self, item: RateLimitItem, key: str) -> bool:
        length = item.get_expiry()
        now = time.time()
        with database.atomic():
            RateHit.insert(key=key, at=now, expires=now + length).execute()
            count = RateHit.select().where((RateHit.key == key) & (RateHit.at > now - length)).count()
        if random.random() < 0.01:  # noqa: S311 (housekeeping, not security)
            RateHit.delete().where(RateHit.expires < now).execute()
        return count <= item.amount


class LimitsLimiter:
    """The `limits` library's moving window on Redis or in memory."""

    def __init__(self, uri: str):
        self.limiter = MovingWindowRateLimiter(storage_from_string(uri))

    def hit(self, item: RateLimitItem, key: str) -> bool:
        return self.limiter.hit(item, key)


class Limiter:
    def __init__(self, cfg: Config):
        self.prefix = hashlib.sha256(("flattr-node rate limits " + (cfg.secret_key or cfg.database)).encode()).hexdigest()[:12]
        storage = cfg.rate_limit_storage
        self.where = "the database" if storage == "database" else ("memory" if storage == "memory" else "Redis")
        self.backend = DatabaseLimiter() if storage == "database" else LimitsLimiter("memory://" if storage == "memory" else storage)

    def hit(self, item: RateLimitItem, name: str, *keys: str) -> bool:
        """Count one attempt under (name, *keys); False when over the limit."""
        key = ":".join([self.prefix, name, *(hashlib.sha256(k.encode("utf-8", "replace")).hexdigest()[:24] for k in keys)])
        try:
            return self.backend.hit(item, key)
        except FlattrError:
            raise
        except Exception as e:  # noqa: BLE001 (Redis down, the database locked...)
            if e.__class__.__module__.startswith("peewee"):
                raise  # the app answers a busy database itself
            log.error("rate limit store (%s) failed: %s", self.where, e)
            raise StoreDown(said('the node cannot count attempts right now (%(where)s is unreachable): try again in a moment', where=self.where)) from None
