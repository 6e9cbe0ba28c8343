"""Configuration (SPEC §5): validated at start; a bad value names its key."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from flattr_node import config as configmod
from flattr_node.config import KEYS, Config, ConfigError, from_mapping, load

EXAMPLE = Path(configmod.__file__).with_name("config.example.toml")


def test_every_key_is_documented_in_the_example_with_its_default():
    """Fails when a key is added to Config without a line in config.example.toml."""
    documented = tomllib.loads(EXAMPLE.read_text())
    missing = [k for k in KEYS if k not in documented]
    assert not missing, f"undocumented config keys: {missing}"
    assert set(documented) <= set(KEYS), f"documented but unknown: {set(documented) - set(KEYS)}"
    defaults = Config()
    for key in KEYS:
        assert documented[key] == getattr(defaults, key), f"{key}: example says {documented[key]!r}"


def test_the_repository_example_is_the_packaged_one():
    """config.example.toml at the top of the repository is what people read;
    the packaged copy is what `init` writes: they must not drift apart."""
    top = Path(__file__).resolve().parent.parent / "config.example.toml"
    assert top.read_text() == EXAMPLE.read_text()


def test_every_key_has_a_comment_above_it():
    lines = EXAMPLE.read_text().splitlines()
    for key in KEYS:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
        above = lines[:index]
        # walk up over sibling keys of one group (host/port) to the comment
        while above and above[-1] and not above[-1].startswith("#"):
            above.pop()
        assert above and above[-1].startswith("#"), f"{key} has no comment"


def test_spec_keys_exist():
    for key in (
        "database", "secret_key", "base_url", "currency", "timezone", "min_monthly_budget",
        "max_monthly_budget", "fee_percent", "revenue_requires_giving", "min_payout", "signup",
        "invites_per_member",
    ):
        assert key in KEYS


def test_the_example_file_loads_as_it_is():
    cfg = load(str(EXAMPLE))
    assert cfg.currency == "EUR" and cfg.min_monthly_budget == 200 and cfg.max_monthly_budget == 10000
    assert cfg.fee_percent == 0 and cfg.revenue_requires_giving is True and cfg.min_payout == 1000
    assert cfg.signup == "open" and cfg.timezone == "UTC"


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(configmod.ENV_VAR, raising=False)
    cfg = load(None)
    assert cfg.database == "sqlite:///var/flattr.db"
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8080)
    assert cfg.source is None


def test_file_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text('currency = "USD"\n')
    env_file = tmp_path / "env.toml"
    env_file.write_text('currency = "GBP"\n')
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('currency = "CHF"\n')
    monkeypatch.delenv(configmod.ENV_VAR, raising=False)
    assert load(None).currency == "USD"
    monkeypatch.setenv(configmod.ENV_VAR, str(env_file))
    assert load(None).currency == "GBP"
    assert load(str(explicit)).currency == "CHF"
    assert load(str(explicit)).source == str(explicit)


BAD_VALUES = [
    ("database", "mysql://x/y"),
    ("database", 5),
    ("database", "sqlite:///"),
    ("database", "sqlite://var/flattr.db"),
    ("database", "sqlite:var/flattr.db"),
    ("database", "sqlite:///:memory:"),
    ("secret_key", 123),
    ("base_url", "ftp://node.example"),
    ("base_url", "node.example"),
    ("host", ["127.0.0.1"]),
    ("port", 0),
    ("port", 70000),
    ("port", "8080"),
    ("port", 80.5),
    ("port", True),
    ("threads", 0),
    ("currency", "EURO"),
    ("currency", "eur"),
    ("currency", "BHD"),  # three decimals
    ("timezone", "Mars/Olympus"),
    ("timezone", ""),
    ("timezone", "../../etc/passwd"),
    ("min_monthly_budget", 0),
    ("min_monthly_budget", 2.5),
    ("max_monthly_budget", 100),  # below the default min of 200
    ("fee_percent", -1),
    ("fee_percent", 101),
    ("fee_percent", 10.5),
    ("revenue_requires_giving", "yes"),
    ("revenue_requires_giving", 1),
    ("min_payout", 0),
    ("signup", "maybe"),
    ("invites_per_member", -1),
    ("bank_instructions", None),
    ("scheduler", "on"),
    ("tick_minutes", 0),
    ("close_batch_size", 0),
    ("log_level", "LOUD"),
]


@pytest.mark.parametrize("key, value", BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_a_bad_value_names_its_key(key, value):
    with pytest.raises(ConfigError) as info:
        from_mapping({key: value})
    assert repr(key) in str(info.value)


@pytest.mark.parametrize("key, value", [k for k in BAD_VALUES if k[1] is not None and not isinstance(k[1], list)])
def test_a_bad_value_in_a_file_names_its_key(tmp_path, key, value):
    path = tmp_path / "config.toml"
    rendered = {str: lambda v: f'"{v}"', bool: lambda v: str(v).lower()}.get(type(value), repr)(value)
    path.write_text(f"{key} = {rendered}\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert repr(key) in str(info.value)


def test_an_unknown_key_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('currency = "EUR"\nmin_montly_budget = 100\n')
    with pytest.raises(ConfigError, match="min_montly_budget"):
        load(str(path))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(str(tmp_path / "nope.toml"))


def test_unreadable_toml_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("currency = \n[[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(str(path))


def test_a_section_is_not_a_setting(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[server]\nport = 80\n")
    with pytest.raises(ConfigError, match="server"):
        load(str(path))


def test_good_values_pass():
    cfg = from_mapping(
        {
            "database": "postgresql://u:p@db:5432/flattr",
            "currency": "JPY",
            "timezone": "Europe/Berlin",
            "min_monthly_budget": 100,
            "max_monthly_budget": 100,
            "fee_percent": 10,
            "revenue_requires_giving": False,
            "signup": "invite",
        }
    )
    assert cfg.tz.key == "Europe/Berlin"
    assert cfg.with_(fee_percent=0).fee_percent == 0
    with pytest.raises(ConfigError, match="fee_percent"):
        cfg.with_(fee_percent=200)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().currency = "USD"  # type: ignore[misc]


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(str(path))


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load(str(tmp_path))
