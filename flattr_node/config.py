"""Configuration (SPEC §5): a flat TOML file, validated when the node starts.

Every key, its default and its meaning are in `config.example.toml`; a test
keeps the two in step. A bad value raises ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import get_currency_precision, list_currencies

ENV_VAR = "FLATTR_NODE_CONFIG"
DEFAULT_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Config:
    database: str = "sqlite:///var/flattr.db"
    secret_key: str = ""
    allow_private_network: bool = False  # outbound fetches: sites and peer nodes (netguard)
    rate_limit_storage: str = "database"
    proxy_hops: int = 0
    base_url: str = "http://127.0.0.1:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    threads: int = 8
    currency: str = "EUR"
    timezone: str = "UTC"
    min_monthly_budget: int = 200
    max_monthly_budget: int = 10000
    fee_percent: int = 0
    revenue_requires_giving: bool = True
    min_payout: int = 1000
    signup: str = "open"
    invites_per_member: int = 5
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    bank_instructions: str = "Pay by bank transfer to the node's operator, quoting the reference."
    bank_iban: str = ""
    bank_bic: str = ""
    bank_account_name: str = ""
    bank_max_statement_mb: int = 50
    scheduler: bool = True
    tick_minutes: int = 5
    close_batch_size: int = 20000
    log_level: str = "INFO"
    federation_timeout: int = 10
    source: str | None = None  # the file it came from, not a key

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_(self, **changes) -> Config:
        return validate(dataclasses.replace(self, **changes))


KEYS = [f.name for f in dataclasses.fields(Config) if f.name != "source"]


def _fail(key: str, why: str) -> None:
    raise ConfigError(f"config key {key!r}: {why}")


def validate(cfg: Config) -> Config:
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    for key in KEYS:
        value = getattr(cfg, key)
        want = types[key]
        if want == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            _fail(key, f"must be a whole number, got {value!r}")
        if want == "bool" and not isinstance(value, bool):
            _fail(key, f"must be true or false, got {value!r}")
        if want == "str" and not isinstance(value, str):
            _fail(key, f"must be a string, got {value!r}")
    scheme = urlsplit(cfg.database).scheme
    if scheme not in ("sqlite", "postgresql", "postgres"):
        _fail("database", "must start with sqlite:/// or postgresql://")
    if scheme == "sqlite" and (not cfg.database.startswith("sqlite:///") or cfg.database[len("sqlite:///") :] in ("", ":memory:")):
        # sqlite:// (two slashes) would lose a character of the path, and an
        # empty path or :memory: a database that vanishes when the node stops.
        _fail("database", f"must be sqlite:///relative/path.db or sqlite:////absolute/path.db, got {cfg.database!r}")
    base = urlsplit(cfg.base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        _fail("base_url", f"must be an http(s) URL, got {cfg.base_url!r}")
    if not 0 < cfg.port < 65536:
        _fail("port", "must be between 1 and 65535")
    if not 1 <= cfg.threads <= 256:
        _fail("threads", "must be between 1 and 256")
    if cfg.currency not in list_currencies():
        _fail("currency", f"{cfg.currency!r} is not an ISO 4217 code")
    if get_currency_precision(cfg.currency) > 2:
        _fail("currency", "currencies with more than 2 decimals are not supported")
    try:
        ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        _fail("timezone", f"{cfg.timezone!r} is not an IANA time zone")
    if cfg.min_monthly_budget < 1:
        _fail("min_monthly_budget", "must be at least 1")
    if cfg.max_monthly_budget < cfg.min_monthly_budget:
        _fail("max_monthly_budget", "must not be below min_monthly_budget")
    if not 0 <= cfg.fee_percent <= 100:
        _fail("fee_percent", "must be between 0 and 100")
    if cfg.min_payout < 1:
        _fail("min_payout", "must be at least 1")
    if cfg.signup not in ("open", "invite", "closed"):
        _fail("signup", "must be one of open, invite, closed")
    if cfg.invites_per_member < 0:
        _fail("invites_per_member", "must not be negative")
    if not 0 < cfg.smtp_port < 65536:
        _fail("smtp_port", "must be between 1 and 65535")
    if cfg.smtp_host and "@" not in cfg.smtp_from:
        _fail("smtp_from", "must be an e-mail address when smtp_host is set")
    _validate_bank(cfg)
    if not 1 <= cfg.tick_minutes <= 1440:
        _fail("tick_minutes", "must be between 1 and 1440")
    if not 1 <= cfg.close_batch_size <= 100000:
        _fail("close_batch_size", "must be between 1 and 100000")
    if not 0 <= cfg.proxy_hops <= 5:
        _fail("proxy_hops", "must be between 0 and 5")
    if cfg.rate_limit_storage not in ("database", "memory") and urlsplit(cfg.rate_limit_storage).scheme not in ("redis", "rediss"):
        _fail("rate_limit_storage", "must be database, memory, or a redis:// URL")
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        _fail("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    if not 1 <= cfg.federation_timeout <= 120:
        _fail("federation_timeout", "must be between 1 and 120 seconds")
    return cfg


def _validate_bank(cfg: Config) -> None:
    """The node's own account (SPEC §7): a valid IBAN, BIC and holder's name."""
    from .bank.accounts import AccountError, check_bic, check_iban, check_name

    try:
        if cfg.bank_iban:
            check_iban(cfg.bank_iban)
    except AccountError as e:
        _fail("bank_iban", str(e))
    try:
        if cfg.bank_bic:
            check_bic(cfg.bank_bic)
    except AccountError as e:
        _fail("bank_bic", str(e))
    if cfg.bank_iban and not cfg.bank_account_name.strip():
        _fail("bank_account_name", "must name the account's holder when bank_iban is set")
    try:
        if cfg.bank_account_name:
            check_name(cfg.bank_account_name)
    except AccountError as e:
        _fail("bank_account_name", str(e))
    if not 1 <= cfg.bank_max_statement_mb <= 1024:
        _fail("bank_max_statement_mb", "must be between 1 and 1024")


def from_mapping(data: dict, source: str | None = None) -> Config:
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        _fail(unknown[0], "is not a known setting (see config.example.toml)")
    return validate(Config(**data, source=source))


def find_config_file(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    if Path(DEFAULT_FILE).exists():
        return Path(DEFAULT_FILE)
    return None


def load(explicit: str | None = None) -> Config:
    """--config PATH, else $FLATTR_NODE_CONFIG, else ./config.toml, else defaults."""
    path = find_config_file(explicit)
    if path is None:
        return validate(Config())
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: not UTF-8 text ({e.reason})") from None
    except OSError as e:  # a directory, no permission, ...
        raise ConfigError(f"config file {str(path)!r} cannot be read: {e.strerror or e}") from None
    return from_mapping(data, source=str(path))
