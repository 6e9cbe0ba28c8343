"""A real WordPress for tests: Debian's `wordpress` package (PHP 8), a fresh
MariaDB database of its own, served by `php -S` on a free loopback port.

The site is a hard-linked copy of /usr/share/wordpress with its own
wp-config.php and wp-content, so nothing under /etc or /var/lib is touched
and several test sessions can run side by side. WordPress is installed the
way a person does it, through wp-admin/install.php over HTTP; the admin then
signs in through wp-login.php and works through wp-admin with the nonces of
its pages. `eval_php` is the one stand-in for WP-CLI (which Debian does not
ship): it runs PHP inside the site, as `wp eval` would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import html5lib
import pytest
import requests
from nodeproc import free_port

WORDPRESS = Path(os.environ.get("FLATTR_WORDPRESS", "/usr/share/wordpress"))
MARIADB = os.environ.get("FLATTR_TEST_MARIADB", "127.0.0.1:3306")
PLUGIN_DIR = Path(__file__).resolve().parent.parent / "plugin_bridge" / "wordpress"
ADMIN, ADMIN_PASSWORD = "admin", "correct horse battery"


def _mariadb() -> tuple[str, int]:
    host, _, port = MARIADB.rpartition(":")
    return host, int(port)


def need_wordpress() -> None:
    """Skip without WordPress, PHP or MariaDB on a user's machine; in CI
    (CI=true, where .ci/run installs and starts them) that is a failure."""
    missing = []
    if not (WORDPRESS / "wp-settings.php").exists():
        missing.append(f"WordPress in {WORDPRESS} (apt-get install wordpress)")
    php = shutil.which("php")
    if php is None:
        missing.append("PHP (apt-get install php-cli php-mysql)")
    elif "mysqli" not in subprocess.run([php, "-m"], capture_output=True, text=True, timeout=60).stdout:
        missing.append("PHP's mysqli extension (apt-get install php-mysql)")
    try:
        socket.create_connection(_mariadb(), timeout=3).close()
    except OSError:
        missing.append(f"MariaDB on {MARIADB} (apt-get install mariadb-server; set FLATTR_TEST_MARIADB=host:port)")
    else:
        if php is not None and not missing:
            refused = _mariadb_run("SELECT 1")
            if refused:
                missing.append(f"MariaDB's root to sign in without a password from {MARIADB} ({refused})")
    if missing:
        why = "the WordPress test needs " + "; ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the WordPress plugin in a real WordPress: " + why)
        pytest.skip(why)


def _mariadb_run(sql: str) -> str:
    """Run one statement as MariaDB's root (no password), with PHP's mysqli:
    '' when done, else MariaDB's message."""
    host, port = _mariadb()
    code = (
        'mysqli_report(MYSQLI_REPORT_OFF); ini_set("mysqlnd.net_read_timeout", "20"); $m = mysqli_init();'
        ' $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);'
        ' if (!@$m->real_connect(getenv("H"), "root", "", "", (int) getenv("P"))) { echo mysqli_connect_error(); exit(1); }'
        ' if (!$m->query(getenv("SQL"))) { echo $m->error; exit(1); }'
    )
    env = {**os.environ, "H": host, "P": str(port), "SQL": sql}
    try:
        result = subprocess.run(["php", "-r", code], capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        return f"no answer from {host}:{port} in 60 s"
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip() or f"exit {result.returncode}"


def mariadb_sql(sql: str) -> None:
    refused = _mariadb_run(sql)
    assert not refused, f"MariaDB refused {sql!r}: {refused}"


def parse(text: str):
    return html5lib.parse(text, namespaceHTMLElements=False)


def form_fields(form) -> dict:
    """What a browser would submit for a form as it stands: text and hidden
    inputs, checked boxes, the selected option of each select."""
    data = {}
    for node in form.iter("input"):
        name, kind = node.get("name"), (node.get("type") or "text").lower()
        if not name or kind in ("submit", "button", "image", "file"):
            continue
        if kind in ("checkbox", "radio") and node.get("checked") is None:
            continue
        data[name] = node.get("value") or ("on" if kind in ("checkbox", "radio") else "")
    for select in form.iter("select"):
        options = list(select.iter("option"))
        chosen = [o for o in options if o.get("selected") is not None] or options[:1]
        if select.get("name") and chosen:
            data[select.get("name")] = chosen[0].get("value") or ""
    return data


class WordPress:
    """One WordPress site: its files in `root`, its own database, `php -S`."""

    def __init__(self, root: Path, mu_plugin: str = ""):
        self.root = root
        self.site = root / "site"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = "flattr_wp_" + uuid.uuid4().hex[:10]
        self.debug_log = root / "debug.log"
        self.server_log_path = root / "php-server.log"
        self.proc = None
        self.admin = requests.Session()
        self._copy_site(mu_plugin)
        mariadb_sql(f"CREATE DATABASE {self.database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")

    # --- files ----------------------------------------------------------------

    def _copy_site(self, mu_plugin: str) -> None:
        try:  # hard links: instant, and no 90 MB copy (same file system)
            shutil.copytree(WORDPRESS, self.site, symlinks=True, copy_function=os.link)
        except OSError:
            shutil.rmtree(self.site, ignore_errors=True)
            shutil.copytree(WORDPRESS, self.site, symlinks=True)
        (self.site / "wp-config.php").unlink()  # a link to Debian's: never write through it
        (self.site / "wp-config.php").write_text(self._config())
        content = self.site / "wp-content"
        (content / "uploads").mkdir(exist_ok=True)
        (content / "plugins" / "flattr-node").symlink_to(PLUGIN_DIR, target_is_directory=True)
        if mu_plugin:
            (content / "mu-plugins").mkdir(exist_ok=True)
            (content / "mu-plugins" / "test-environment.php").write_text(mu_plugin)

    def _config(self) -> str:
        host, port = _mariadb()
        keys = "".join(
            f"define('{name}', '{secrets.token_hex(32)}');\n"
            for name in (
                "AUTH_KEY",
                "SECURE_AUTH_KEY",
                "LOGGED_IN_KEY",
                "NONCE_KEY",
                "AUTH_SALT",
                "SECURE_AUTH_SALT",
                "LOGGED_IN_SALT",
                "NONCE_SALT",
            )
        )
        return f"""<?php
define('DB_NAME', '{self.database}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', '{host}:{port}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
{keys}$table_prefix = 'wp_';
define('WP_HOME', '{self.url}');
define('WP_SITEURL', '{self.url}');
define('WP_DEBUG', true);
define('WP_DEBUG_LOG', '{self.debug_log}');
define('WP_DEBUG_DISPLAY', false);
define('WP_ENVIRONMENT_TYPE', 'local');
// No calls to wordpress.org (update checks) from a test; loopback is allowed.
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISALLOW_FILE_MODS', true);
if (!defined('ABSPATH')) {{
    define('ABSPATH', __DIR__ . '/');
}}
require_once ABSPATH . 'wp-settings.php';
"""

    # --- the server ------------------------------------------------------------

    def start(self) -> WordPress:
        self.server_log = open(self.server_log_path, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "PHP_CLI_SERVER_WORKERS": "4"}  # WordPress may call itself
        self.proc = subprocess.Popen(
            ["php", "-d", "display_errors=stderr", "-S", f"127.0.0.1:{self.port}", "-t", str(self.site)],
            stdout=self.server_log, stderr=subprocess.STDOUT, env=env, cwd=self.site,
            start_new_session=True,  # its workers are forked children: stopped with it as a group
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.url + "/wp-login.php", timeout=5, allow_redirects=False)
                return self
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"php -S did not start:\n{self.server_log_path.read_text()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            # The whole group: terminating php -S alone leaves its workers running.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # a worker that outlived its master
            self.server_log.close()
        mariadb_sql(f"DROP DATABASE IF EXISTS {self.database}")

    # --- as a person would ------------------------------------------------------

    def install(self, title: str = "A blog") -> None:
        """wp-admin/install.php, then sign the admin in through wp-login.php."""
        r = requests.post(
            self.url + "/wp-admin/install.php?step=2",
            data={
                "weblog_title": title, "user_name": ADMIN, "admin_password": ADMIN_PASSWORD,
                "admin_password2": ADMIN_PASSWORD, "pw_weak": "on", "admin_email": "admin@example.org",
                "blog_public": "0", "language": "",
            },
            timeout=120,
        )  # fmt: skip
        assert r.status_code == 200 and "Success!" in r.text, r.text[-2000:]
        self.admin.get(self.url + "/wp-login.php", timeout=30)  # the test cookie
        r = self.admin.post(
            self.url + "/wp-login.php",
            data={
                "log": ADMIN,
                "pwd": ADMIN_PASSWORD,
                "wp-submit": "Log In",
                "redirect_to": self.url + "/wp-admin/",
                "testcookie": "1",
            },
            timeout=60,
        )
        assert r.status_code == 200 and "/wp-admin/" in r.url, f"cannot sign in to wp-admin: {r.url}\n{r.text[-1500:]}"

    def admin_page(self, path: str) -> requests.Response:
        r = self.admin.get(urljoin(self.url + "/wp-admin/", path), timeout=60)
        assert r.status_code == 200, (path, r.status_code, r.text[-1500:])
        return r

    def activate_plugin(self, plugin: str = "flattr-node/flattr-node.php") -> None:
        """Plugins > Activate, by the link (and nonce) on the Plugins page."""
        doc = parse(self.admin_page("plugins.php").text)
        quoted = plugin.replace("/", "%2F")
        links = [
            a.get("href")
            for a in doc.iter("a")
            if "action=activate&" in (a.get("href") or "") and f"plugin={quoted}" in a.get("href")
        ]
        assert links, f"no Activate link for {plugin} on the Plugins page"
        self.admin.get(urljoin(self.url + "/wp-admin/", links[0]), timeout=60)
        doc = parse(self.admin_page("plugins.php").text)
        assert any(
            "action=deactivate&" in (a.get("href") or "") and f"plugin={quoted}" in a.get("href") for a in doc.iter("a")
        ), f"{plugin} is not active"

    def submit_form(self, page: str, form_action: str, values: dict) -> requests.Response:
        """Fill the form of a wp-admin page that posts to `form_action` (its
        nonce and hidden fields as the page gives them) and submit it."""
        doc = parse(self.admin_page(page).text)
        forms = [f for f in doc.iter("form") if (f.get("action") or "").endswith(form_action)]
        assert forms, f"no form posting to {form_action} on {page}"
        data = form_fields(forms[0])
        for key, value in values.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        r = self.admin.post(urljoin(self.url + "/wp-admin/", form_action), data=data, timeout=60)
        assert r.status_code == 200, r.text[-1500:]
        return r

    def rest(self, method: str, route: str, **kw) -> requests.Response:
        """The REST API as the block editor uses it: the admin's cookie and a nonce."""
        nonce = self.admin.get(self.url + "/wp-admin/admin-ajax.php?action=rest-nonce", timeout=30).text.strip()
        return self.admin.request(
            method, self.url + "/", params={"rest_route": route}, headers={"X-WP-Nonce": nonce}, timeout=60, **kw
        )

    def publish(self, title: str, content: str) -> dict:
        r = self.rest("POST", "/wp/v2/posts", json={"title": title, "content": content, "status": "publish"})
        assert r.status_code == 201, r.text[-1500:]
        return r.json()

    def eval_php(self, code: str) -> str:
        """PHP run inside the site (what `wp eval` does), for what wp-admin only
        offers through JavaScript (switching the theme)."""
        script = f"<?php\n$_SERVER['HTTP_HOST'] = '127.0.0.1:{self.port}';\nrequire '{self.site}/wp-load.php';\n{code}\n"
        result = subprocess.run(["php"], input=script, capture_output=True, text=True, timeout=120, cwd=self.site)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def get(self, path: str = "/", **kw) -> requests.Response:
        """A page as a reader (no cookies) sees it."""
        r = requests.get(urljoin(self.url + "/", path.lstrip("/")), timeout=60, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text[-1500:])
        return r

    def debug_messages(self, needle: str) -> list[str]:
        """The lines of WordPress's debug log (WP_DEBUG_LOG) that mention `needle`."""
        if not self.debug_log.exists():
            return []
        return [line for line in self.debug_log.read_text(errors="replace").splitlines() if needle in line]
