"""The federated button in a real browser (headless Chromium, Selenium): a
blog on a fourth origin shows B's button; a reader who has an account only
on A clicks it, gives their handle on B, confirms on A (first-party, CSRF),
goes back to the blog, and the count there goes up once A delivers; a second
try says "already flattred this month". JavaScript off: every step is a
plain link or form."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from browser import chromium, need_chromium
from fednodes import Node, peer
from live import serve_pages

import plugin_bridge as pb
from plugin_bridge.client import NodeClient

pytestmark = pytest.mark.browser

WAIT = 30

BLOG = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><article><h1>{title}</h1><p>A post on a blog whose node is B.</p>{button}</article></body></html>"""


@contextlib.contextmanager
def blog_with_bs_button(tmp_path, path: str, title: str, *, script: bool, javascript: bool = True):
    """A (PostgreSQL) peered with B; kim on A with money, ann on B with a
    post on a blog at a fourth origin showing B's button (and B's script when
    `script`); Chromium signed in on A only. Yields what a test needs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # A on 127.0.0.1, B on localhost, the blog on 127.0.0.2: three origins, and
    # two cookie jars for the nodes (a browser keeps cookies per host, not port).
    a = Node(tmp_path, "a", postgres=True).start()
    b = Node(tmp_path, "b", hostname="localhost").start()
    driver = None
    try:
        peer(a, b)
        a.person("kim", funds=500)
        blogger = b.person("ann")
        pages: dict = {}
        with serve_pages(pages, host="127.0.0.2") as blog:
            post = f"{blog}{path}"
            thing = b.thing(blogger, post, title)

            def page(_request):
                ref = pb.ThingRef.from_json(b.url, NodeClient(b.url, timeout=5).thing(thing))
                return BLOG.format(title=ref.title, button=pb.button_html(ref) + (pb.script_tag(b.url) if script else ""))

            pages[path] = page
            driver = chromium(tmp_path / "profile", prefs=None if javascript else {"profile.managed_default_content_settings.javascript": 2})
            driver.get(f"{a.url}/signin")  # the reader is signed in on A only
            driver.find_element(By.NAME, "username").send_keys("kim")
            driver.find_element(By.NAME, "password").send_keys("correct horse battery")
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            wait = WebDriverWait(driver, WAIT)
            wait.until(lambda d: "/signin" not in d.current_url)
            yield SimpleNamespace(
                a=a, b=b, driver=driver, wait=wait, post=post, thing=thing,
                count=lambda: driver.find_element(By.CSS_SELECTOR, "[data-flattr-count]").text,
            )  # fmt: skip
    finally:
        if driver is not None:
            driver.quit()
        a.drop()
        b.drop()


def test_a_reader_of_another_node_flattrs_from_their_own_node(tmp_path):
    need_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    with blog_with_bs_button(tmp_path, "/2026/11/federated.html", "One account, every node", script=False, javascript=False) as t:
        a, driver, wait, post, count = t.a, t.driver, t.wait, t.post, t.count

        def flattr_from_a():
            driver.get(post)
            driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()
            wait.until(ec.element_to_be_clickable((By.ID, "from-your-node"))).click()  # on B's sign-in page
            field = wait.until(ec.presence_of_element_located((By.ID, "handle")))
            field.send_keys(f"kim@{a.url.split('//')[1]}")
            driver.find_element(By.ID, "go-home").click()
            wait.until(lambda d: d.current_url.startswith(f"{a.url}/authorize_interaction?uri="))

        flattr_from_a()
        assert driver.title.startswith("Flattr a post on") and "One account, every node" in driver.page_source
        driver.find_element(By.ID, "confirm-flattr").click()
        done = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-flattred]")))
        assert "from your own node" in done.text
        driver.find_element(By.CSS_SELECTOR, "[data-back]").click()
        wait.until(lambda d: d.current_url == post)
        assert count() == "0"  # recorded on A, not yet delivered to B
        assert "delivered 1" in a.cli("peer", "sync", "--quiet").stdout
        driver.refresh()
        assert count() == "1"

        flattr_from_a()  # a second try
        already = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".already")))
        assert "already flattred this thing this month" in already.text
        assert not driver.find_elements(By.ID, "confirm-flattr")
        assert "delivered 0" in a.cli("peer", "sync", "--quiet").stdout
        driver.get(post)
        assert count() == "1"


def test_the_popup_flattrs_from_your_own_node_and_the_blog_learns_the_count(tmp_path):
    """The button's script opens the popup on B; the reader gives their
    handle, confirms on A; A delivers at once and sends the popup back to B,
    which tells the blog page (its origin only) the new count and closes."""
    need_chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    with blog_with_bs_button(tmp_path, "/2026/11/popup.html", "The popup, federated", script=True) as t:
        a, b, driver, wait, post, count = t.a, t.b, t.driver, t.wait, t.post, t.count
        driver.get(post)
        assert count() == "0"
        blog_window = driver.current_window_handle
        driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()
        wait.until(ec.number_of_windows_to_be(2))
        driver.switch_to.window(next(h for h in driver.window_handles if h != blog_window))
        wait.until(ec.element_to_be_clickable((By.ID, "from-your-node"))).click()  # on B's sign-in page
        wait.until(ec.presence_of_element_located((By.ID, "handle"))).send_keys(f"kim@{a.url.split('//')[1]}")
        driver.find_element(By.ID, "go-home").click()
        wait.until(ec.element_to_be_clickable((By.ID, "confirm-flattr")))
        assert driver.current_url.startswith(f"{a.url}/authorize_interaction?")
        driver.find_element(By.ID, "confirm-flattr").click()
        wait.until(ec.number_of_windows_to_be(1))  # back on B, the popup told the blog and closed itself

        driver.switch_to.window(blog_window)
        wait.until(lambda d: count() == "1")
        assert b.count(t.thing) == 1
        assert "delivered 0" in a.cli("peer", "sync", "--quiet").stdout  # delivered by the confirmation itself
