"""Several flattr-node `serve` processes, each with its own database, that
federate over loopback: what tests/test_federation*.py run against."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from pathlib import Path

import requests
from nodeproc import CLI, PG_UNDER_TEST, child_env, cli, drop_pg_schema, free_port, pg_schema, write_config


class Node:
    """One node: config, database, a `serve` process on a fixed port (so a
    restart keeps its base URL) and helpers for its CLI and API."""

    def __init__(self, tmp: Path, name: str, *, postgres: bool = False, clock: Path | None = None, hostname: str = "127.0.0.1", **settings):
        """`clock`: a libfaketime timestamp file shared by the nodes of a test
        (Clock), so that their clocks move together."""
        self.name, self.tmp, self.clock = name, tmp, clock
        self.port = free_port()
        self.url = f"http://{hostname}:{self.port}"  # another name (localhost) is another cookie jar in a browser
        self.schema = None
        if postgres and PG_UNDER_TEST:
            self.database, self.schema = pg_schema(PG_UNDER_TEST)
        else:
            self.database = f"sqlite:///{tmp / (name + '.db')}"
        self.config = write_config(
            tmp / f"{name}.toml", self.database, base_url=self.url, port=self.port, allow_private_network=True,
            federation_timeout=5, **settings,
        )  # fmt: skip
        self.proc = None
        self.cli("init")

    def env(self) -> dict:
        env = child_env()
        if self.clock:
            env.update(LD_PRELOAD=faketime_lib(), FAKETIME_TIMESTAMP_FILE=str(self.clock), FAKETIME_NO_CACHE="1")
        return env

    def cli(self, *args, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        if not self.clock:
            return cli(self.config, *args, check=check, timeout=timeout)
        result = subprocess.run([*CLI, "--config", str(self.config), *args], capture_output=True, text=True, timeout=timeout, env=self.env())
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: flattr-node {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self) -> Node:
        log = open(self.tmp / f"{self.name}.log", "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [*CLI, "--config", str(self.config), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(),
        )  # fmt: skip
        log.close()
        import time

        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{(self.tmp / f'{self.name}.log').read_text()}")
            time.sleep(0.1)

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None

    def drop(self) -> None:
        self.stop()
        if self.schema:
            drop_pg_schema(PG_UNDER_TEST, self.schema)

    # --- people ---------------------------------------------------------
    def person(self, name: str, funds: int = 0) -> str:
        """A person with `funds` cents confirmed; returns their API token."""
        self.cli("user", "create", name, "--email", f"{name}@example.org", "--password", "correct horse battery")
        token = self.cli("token", "create", name).stdout.strip()
        if funds:
            r = self.api(token, "POST", "/deposits", json={"amount": funds})
            assert r.status_code == 201, r.text
            self.cli("deposit", "confirm", r.json()["reference"])
        return token

    def api(self, token: str | None, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kw)

    def thing(self, token: str, url: str, title: str = "A post") -> int:
        r = self.api(token, "POST", "/things", json={"url": url, "title": title})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def count(self, thing_id: int) -> int:
        return requests.get(f"{self.url}/api/v1/things/{thing_id}", timeout=30).json()["flattrs_this_period"]


def peer(a: Node, b: Node, *extra) -> None:
    a.cli("peer", "add", b.url, *extra)
    b.cli("peer", "add", a.url)


class Clock:
    """One libfaketime clock for several processes: a timestamp file they
    all read on every call (FAKETIME_NO_CACHE), moved by `jump_to`."""

    def __init__(self, tmp: Path):
        import shutil

        import pytest

        if not faketime_lib():
            if os.environ.get("CI") == "true" or shutil.which("faketime"):
                pytest.fail("libfaketime.so.1 not found (.ci/run installs faketime)")
            pytest.skip("needs libfaketime (apt-get install faketime)")
        self.path = tmp / "clock"
        self.path.write_text("+0\n")

    def jump_to(self, moment: dt.datetime) -> None:
        """Every node's clock now reads `moment` (naive UTC) and runs on."""
        offset = int((moment - dt.datetime.now(dt.UTC).replace(tzinfo=None)).total_seconds())
        self.path.write_text(f"{offset:+d}\n")


def next_month_start(period: str, minutes: int = 5) -> dt.datetime:
    year, month = map(int, period.split("-"))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dt.datetime(year, month, 1, 0, minutes)


def faketime_lib() -> str:
    for candidate in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(candidate):
            return candidate
    import glob

    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    return found[0] if found else ""


def period_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")
