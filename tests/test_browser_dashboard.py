"""The seed's story through the pages alone, in headless Chromium (Selenium),
against the node served by waitress on a free localhost port and a real
database file.

Kim signs up with an invite, opens a €2 deposit, the operator confirms it,
Kim sets her budget, flattrs two posts and sees each worth €1.00; the month
closes; the two bloggers see €1.00 of revenue and withdraw it. The bloggers
give too (each flattrs Kim's post), so that Kim's flattrs count (R8).

The close is `closing.close_period(cfg, period, now)` for the
current period, with `now` one minute into the next month: the service's
own clock argument, not a mock. Set FLATTR_SCREENSHOT_DIR to keep the
screenshots (the README's come from here).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading

import pytest
from browser import chromium, need_chromium
from nodeproc import free_port

from flattr_node import db as dbmod
from flattr_node import ledger, periods
from flattr_node.app import create_app
from flattr_node.closing import close_period
from flattr_node.config import Config, validate
from flattr_node.models import Deposit, Payout, User, utcnow
from flattr_node.schema import migrate

pytestmark = pytest.mark.browser


@pytest.fixture
def node(database_url, tmp_path):
    need_chromium()
    from waitress import create_server

    port = free_port()
    cfg = validate(
        Config(
            database=database_url,
            secret_key="browser-test",
            base_url=f"http://127.0.0.1:{port}",
            signup="invite",
            invites_per_member=5,
            min_payout=100,
            scheduler=False,
        )
    )
    database = dbmod.bind(cfg.database)
    with database.connection_context():
        migrate()
    app = create_app(cfg, bind_database=False)
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield cfg
    server.close()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    driver = chromium(
        tmp_path / "chromium", window="1280,1000", extra_flags=("--lang=en-US",), prefs={"intl.accept_languages": "en-US,en"}
    )
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Pages:
    """What a person does in the browser: open pages, fill forms, read text."""

    def __init__(self, driver, cfg, shots):
        from selenium.webdriver.common.by import By

        self.d, self.cfg, self.By, self.shots = driver, cfg, By, shots

    def go(self, path):
        self.d.get(self.cfg.base_url + path)

    def form(self, action):
        return self.d.find_element(self.By.CSS_SELECTOR, f'form[action="{action}"]')

    def submit(self, action, **fields):
        form = self.form(action)
        for name, value in fields.items():
            box = form.find_element(self.By.NAME, name)
            box.clear()
            box.send_keys(value)
        self.click(form.find_element(self.By.CSS_SELECTOR, "button[type=submit]"))

    def click(self, element):
        """Click and wait until the next page has loaded (a form post and its
        redirect): the marker set on the old page's window is gone."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        self.d.execute_script("window.__before_click = true")
        element.click()
        WebDriverWait(self.d, 20, ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return window.__before_click === undefined && document.readyState === 'complete'")
        )

    def text(self, css="main"):
        return self.d.find_element(self.By.CSS_SELECTOR, css).text

    def flash(self):
        return " ".join(e.text for e in self.d.find_elements(self.By.CSS_SELECTOR, ".flash"))

    def errors(self):
        return " ".join(e.text for e in self.d.find_elements(self.By.CSS_SELECTOR, ".error"))

    def sign_in(self, username):
        self.go("/signin")
        self.submit("/signin?next=/dashboard", username=username, password="correct horse")
        assert self.d.current_url.endswith("/dashboard"), self.text()

    def sign_out(self):
        self.click(self.d.find_element(self.By.CSS_SELECTOR, 'form[action="/signout"] button'))

    def sign_up(self, username, code=None):
        self.go("/signup" + (f"?code={code}" if code else ""))
        fields = {"username": username, "email": f"{username}@example.org", "password": "correct horse"}
        self.submit("/signup", **fields)
        assert self.d.current_url.endswith("/dashboard"), self.errors() or self.text()

    def register(self, url, title, tags=""):
        self.go("/dashboard/things")
        self.submit("/dashboard/things", url=url, title=title, tags=tags)
        assert "is registered" in self.flash(), self.errors()

    def deposit(self, amount):
        self.go("/dashboard/deposits")
        self.submit("/dashboard/deposits", amount=amount)
        assert "opened" in self.flash(), self.errors()
        return re.search(r"RF[0-9A-Z]{12}", self.flash()).group(0)

    def flattr(self, url):
        self.go("/dashboard")
        self.submit("/dashboard/flattr", url=url)
        assert "You flattred" in self.flash(), self.errors()

    def shot(self, name):
        """A screenshot of the whole page."""
        path = os.path.join(self.shots, f"{name}.png")
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1280, max(700, min(height, 2400)))
        assert self.d.save_screenshot(path)
        self.d.set_window_size(1280, 1000)
        return path


def test_the_seed_story_in_chromium(node, browser, tmp_path):
    cfg = node
    shots = os.environ.get("FLATTR_SCREENSHOT_DIR") or str(tmp_path)
    p = Pages(browser, cfg, shots)
    period = periods.name_of(utcnow(), cfg.tz)

    # The operator opens the fresh node and hands out invites.
    p.sign_up("ops")
    assert "you are its operator" in p.flash()
    p.go("/invites")
    codes = re.findall(r"[0-9A-Z]{5}-[0-9A-Z]{5}", p.text("table"))
    assert len(codes) == 5
    p.sign_out()

    # Kim and the two bloggers join with invites; a wrong code is refused.
    p.go("/signup")
    p.submit("/signup", username="kim", email="kim@example.org", password="correct horse", code="AAAAA-BBBBB")
    assert "unknown or has been used" in p.errors()
    p.sign_up("kim", codes[0])
    p.register("https://kim.example/hello", "Kim says hello", "welcome")
    kims_ref = p.deposit("2")
    assert kims_ref in p.text("#deposits") and "quoting the reference" in p.text("#deposits")
    p.sign_out()
    profiles = {"ann": ("Ann Archer", "Songs and field recordings from the coast."), "bob": ("Bob Builder", "Notes on free software.")}
    for name, code in (("ann", codes[1]), ("bob", codes[2])):
        p.sign_up(name, code)
        p.go("/dashboard/profile")
        p.submit("/dashboard/profile", display_name=profiles[name][0], about=profiles[name][1])
        assert "saved" in p.flash()
        p.register(f"https://{name}.example/post", f"{name.title()}'s post", "music")
        p.deposit("2.00")
        p.sign_out()

    # The operator sees the money arrive and confirms the three deposits.
    p.sign_in("ops")
    p.go("/operator")
    assert kims_ref in p.text("#deposits")
    for _ in range(3):
        p.click(p.d.find_element(p.By.CSS_SELECTOR, '#deposits form[action$="/confirm"] button'))
        assert "confirmed" in p.flash()
    assert Deposit.select().where(Deposit.status == "confirmed").count() == 3
    p.sign_out()

    # Kim sets her budget and flattrs the two posts.
    p.sign_in("kim")
    assert p.text("#funds") == "€2.00"
    p.submit("/dashboard/budget", monthly_budget="1")
    assert "between" in p.errors()  # below the minimum: refused, next to the field
    p.submit("/dashboard/budget", monthly_budget="2.00")
    assert "€2.00" in p.flash()
    p.flattr("https://ann.example/post")
    p.flattr("https://bob.example/post")
    table = p.text("#this-month")
    assert table.count("not counted") == 2  # Ann and Bob have not given yet (R8)
    p.sign_out()

    # The bloggers give too: each flattrs Kim's post.
    for name in ("ann", "bob"):
        p.sign_in(name)
        p.flattr("https://kim.example/hello")
        p.sign_out()

    p.sign_in("kim")
    rows = p.d.find_elements(p.By.CSS_SELECTOR, "#this-month tbody tr")
    assert [r.find_element(p.By.CSS_SELECTOR, ".worth").text for r in rows] == ["€1.00", "€1.00"]
    p.shot("dashboard")
    p.go("/directory")
    assert "Ann Archer" in p.text() and "Songs and field recordings" in p.text()
    p.shot("directory")
    anns_thing = User.get(User.username == "ann").things.get()
    if any(r.rule == "/things/<int:thing_id>" for r in create_app(cfg, bind_database=False).url_map.iter_rules()):
        p.go(f"/things/{anns_thing.id}")
        p.shot("thing")
    p.sign_out()

    # The month closes.
    closed = close_period(cfg, period, periods.end_utc(period, cfg.tz) + dt.timedelta(minutes=1))
    assert (closed.status, closed.flattrs, closed.counted, closed.distributed) == ("closed", 4, 4, 600)

    # The bloggers see €1.00 of revenue and withdraw it.
    for name in ("ann", "bob"):
        p.sign_in(name)
        assert p.text("#revenue") == "€1.00"
        p.go("/dashboard/history")
        assert "€1.00" in p.text("#months")
        if name == "ann":
            p.shot("history")
        # Where the money goes: a payout account first (SEPA), on the Bank tab.
        p.go("/dashboard/bank")
        p.submit("/dashboard/bank", payout_iban="DE89 3704 0044 0532 0130 00", payout_name=name.title())
        p.go("/dashboard/payouts")
        p.submit("/dashboard/payouts", **{"payout-amount": "1.00"})
        assert "Withdrawal of €1.00 requested" in p.flash()
        assert p.text("#revenue") == "€0.00"
        p.sign_out()
    user_ids = [User.get(User.username == n).id for n in ("ann", "bob")]
    assert [(x.user_id, x.amount, x.status) for x in Payout.select().order_by(Payout.id)] == [(user_ids[0], 100, "requested"), (user_ids[1], 100, "requested")]

    # The operator pays them.
    p.sign_in("ops")
    p.go("/operator")
    p.shot("operator")
    for _ in range(2):
        p.click(p.d.find_element(p.By.CSS_SELECTOR, '#payouts form[action$="/paid"] button'))
        assert "marked paid" in p.flash()
    p.click(p.d.find_element(p.By.CSS_SELECTOR, 'form[action="/operator/check"] button'))
    assert "checks out" in p.flash()
    assert ledger.check_ledger().ok
    assert [ledger.balance(u, "revenue") for u in user_ids] == [0, 0]
