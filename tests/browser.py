"""Headless Chromium for the page tests: Debian's chromium and chromedriver,
driven by Selenium, never a browser or driver downloaded by a tool."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("FLATTR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLATTR_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def need_chromium() -> None:
    """Skip without a browser on a user's machine; in CI that is a failure."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser tests: " + why)
        pytest.skip(why)


def chromium(profile: Path, *, window: str = "900,760", extra_flags: tuple[str, ...] = (), prefs: dict | None = None):
    """A new headless Chromium with its own empty profile."""
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--window-size={window}", f"--user-data-dir={profile}", *extra_flags):
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
