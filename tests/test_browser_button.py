"""The button in a real 2026 browser: headless Chromium (Debian's) driven by
Selenium. A blog page on another origin embeds the button; the reader clicks,
signs in and confirms in the first-party popup; the count on the blog page goes
up; a second click says "already flattred this month". Then the same without
JavaScript, by links.

Set FLATTR_SCREENSHOT=docs/img/button.png to save the blog page after the
flattr (that is how the README's screenshot is made)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import chromium, need_chromium
from live import serve_node, serve_pages

import plugin_bridge as pb
from flattr_node.models import Flattr
from flattr_node.services import things
from plugin_bridge.client import NodeClient

pytestmark = pytest.mark.browser

WAIT = 20  # seconds a step may take on a busy 2-core machine before it is a failure


def make_driver(profile: Path, javascript: bool = True):
    prefs = None if javascript else {"profile.managed_default_content_settings.javascript": 2}
    return chromium(profile, prefs=prefs)


BLOG = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — Ann's blog</title>
{payment}
<style>
 body {{ font: 17px/1.55 Georgia, serif; color: #222; background: #fbfaf7; margin: 0; }}
 header {{ background: #2d3a4a; color: #fff; padding: 14px 32px; font: 600 18px system-ui, sans-serif; }}
 article {{ max-width: 640px; margin: 28px auto; padding: 0 24px; }}
 h1 {{ font-size: 30px; margin-bottom: 4px; }} .meta {{ color: #777; font: 14px system-ui, sans-serif; }}
 .support {{ margin-top: 28px; padding: 14px 18px; border-top: 1px solid #ddd; display: flex; gap: 14px; align-items: center;
            font: 15px system-ui, sans-serif; }}
 .flattr-node {{ display: inline-flex; align-items: center; gap: 12px; }}
 .flattr-node-count {{ font-weight: 700; font-size: 22px; }}
</style></head>
<body><header>Ann's blog</header>
<article>
<h1>{title}</h1><p class="meta">November 2026 · by Ann</p>
<p>Third-party cookies are gone, and that is a good thing. This post explains how a Flattr button still works:
the button only starts a flattr, and a page on the reader's own node confirms it.</p>
<p>If you liked it, the button below sends me a share of your monthly budget.</p>
<div class="support">{button} <span>flattrs this month</span></div>
</article>
{extra}
{script}
</body></html>
"""

# A page on a third origin, framed by the blog (an ad, a comment widget):
# it pretends to be the node and announces a count of 999.
FORGER = """<!doctype html><html><body><p id="state">waiting</p><script>
window.addEventListener("message", function (ev) {
  if (ev.data !== "go") { return; }
  parent.postMessage({type: "flattr-node:flattred", thing: THING_ID, count: 999, url: "POST_URL"}, "*");
  parent.postMessage("forger-done", "*");  /* delivered after the forged one */
  document.getElementById("state").textContent = "sent";
});
</script></body></html>
"""


def blog_page(node: str, thing_id: int, title: str, extra: str = ""):
    """A blog platform's page handler: the button comes from the node through
    plugin_bridge's client, with the count as it is now."""

    def handler(_request):
        client = NodeClient(node, timeout=5)
        ref = pb.ThingRef.from_json(node, client.thing(thing_id))
        return BLOG.format(title=title, payment=pb.payment_link_head(ref), button=pb.button_html(ref), script=pb.script_tag(node), extra=extra)

    return handler


@pytest.fixture
def world(cfg, make_user, tmp_path):
    need_chromium()
    ann = make_user("ann")
    make_user("kim", 500)
    make_user("lea", 500)
    pages: dict = {}
    third: dict = {}
    with serve_node(cfg) as (live, _app), serve_pages(pages, public_host="localhost") as blog, serve_pages(third) as other:
        post = f"{blog}/2026/11/buttons.html"
        thing = things.register_thing(ann, {"url": post, "title": "How a Flattr button works in 2026"})
        third["/forger.html"] = FORGER.replace("THING_ID", str(thing.id)).replace("POST_URL", post)
        pages["/2026/11/buttons.html"] = blog_page(live.base_url, thing.id, thing.title)
        pages["/2026/11/with-widget.html"] = blog_page(
            live.base_url, thing.id, thing.title, f'<iframe id="widget" src="{other}/forger.html" width="200" height="40"></iframe>'
        )
        yield {"node": live.base_url, "post": post, "blog": blog, "thing": thing, "tmp": tmp_path}


def count_on(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "[data-flattr-count]").get_attribute("textContent")  # hidden from sight: the badge shows it


def sign_in(driver, wait, username):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait.until(ec.presence_of_element_located((By.NAME, "username")))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys("correct horse")
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def test_popup_flattr_updates_the_count_on_the_blog(world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = make_driver(world["tmp"] / "profile-js")
    try:
        wait = WebDriverWait(driver, WAIT)
        driver.get(world["post"])
        assert driver.title.startswith("How a Flattr button works in 2026")
        assert count_on(driver) == "0"
        blog_window = driver.current_window_handle

        driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()
        wait.until(ec.number_of_windows_to_be(2))
        popup = next(h for h in driver.window_handles if h != blog_window)
        driver.switch_to.window(popup)
        assert driver.current_url.startswith(world["node"] + "/signin")  # first-party, on the node
        sign_in(driver, wait, "kim")
        wait.until(ec.element_to_be_clickable((By.ID, "confirm-flattr")))
        # ann has given nothing this month: the page says so before the click (R8)
        assert "will not count" in driver.find_element(By.ID, "will-not-count").text
        driver.find_element(By.ID, "confirm-flattr").click()
        wait.until(ec.number_of_windows_to_be(1))  # the popup tells the blog and closes itself

        driver.switch_to.window(blog_window)
        wait.until(lambda d: count_on(d) == "1")
        assert Flattr.select().where(Flattr.thing == world["thing"].id).count() == 1
        if os.environ.get("FLATTR_SCREENSHOT"):
            driver.get(world["post"])  # fresh badge image too
            wait.until(lambda d: d.execute_script("return document.querySelector('.flattr-node-button img').complete"))
            driver.save_screenshot(os.environ["FLATTR_SCREENSHOT"])

        # A second click: the node says so, nothing is recorded.
        driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()
        wait.until(ec.number_of_windows_to_be(2))
        driver.switch_to.window(next(h for h in driver.window_handles if h != blog_window))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".already")))
        assert "already flattred this thing this month" in driver.find_element(By.CSS_SELECTOR, ".already").text
        assert not driver.find_elements(By.ID, "confirm-flattr")
        driver.close()
        driver.switch_to.window(blog_window)
        assert count_on(driver) == "1"
        assert Flattr.select().where(Flattr.thing == world["thing"].id).count() == 1
    finally:
        driver.quit()


def test_without_javascript_by_links(world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = make_driver(world["tmp"] / "profile-nojs", javascript=False)
    try:
        wait = WebDriverWait(driver, WAIT)
        driver.get(world["post"])
        assert count_on(driver) == "0"
        driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()  # a plain link: same tab
        sign_in(driver, wait, "lea")
        wait.until(ec.element_to_be_clickable((By.ID, "confirm-flattr")))
        driver.find_element(By.ID, "confirm-flattr").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[role=status] [data-count]")))
        assert driver.find_element(By.CSS_SELECTOR, "[data-count]").text == "1"
        driver.find_element(By.LINK_TEXT, "Back to the post").click()
        wait.until(lambda d: d.current_url == world["post"])
        assert count_on(driver) == "1"  # the page as the blog renders it now

        driver.find_element(By.CSS_SELECTOR, "a.flattr-node-button").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".already")))
        assert "already flattred this thing this month" in driver.find_element(By.CSS_SELECTOR, ".already").text
        assert Flattr.select().where(Flattr.thing == world["thing"].id).count() == 1
    finally:
        driver.quit()


def test_the_script_ignores_counts_from_other_origins(world):
    """postMessage with checked origins: a framed page on another origin
    cannot change the count shown on the blog."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = make_driver(world["tmp"] / "profile-forger")
    try:
        wait = WebDriverWait(driver, WAIT)
        driver.get(world["blog"] + "/2026/11/with-widget.html")
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")  # button.js and the frame loaded
        driver.set_script_timeout(WAIT)
        # Ask the widget to forge; wait until its marker, sent after the forged
        # message, arrives: by then the button script has seen the forgery.
        got = driver.execute_async_script(
            """var done = arguments[arguments.length - 1];
            window.addEventListener("message", function (ev) { if (ev.data === "forger-done") { done(ev.origin); } });
            document.getElementById("widget").contentWindow.postMessage("go", "*");"""
        )
        assert got.startswith("http://127.0.0.1:") and got != world["node"]
        driver.switch_to.frame(driver.find_element(By.ID, "widget"))
        assert driver.find_element(By.ID, "state").text == "sent"
        driver.switch_to.default_content()
        assert count_on(driver) == "0"
        assert driver.execute_script("return document.querySelector('[data-flattr-count]').textContent") == "0"
    finally:
        driver.quit()


def test_the_confirmation_page_cannot_be_framed(world):
    """Clickjacking: a page on another origin frames the confirmation page of a
    signed-in reader; the browser refuses to show it (frame-ancestors 'none')."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = make_driver(world["tmp"] / "profile-frame")
    try:
        wait = WebDriverWait(driver, WAIT)
        confirm = f"{world['node']}/things/{world['thing'].id}/flattr"
        driver.get(confirm)
        sign_in(driver, wait, "kim")
        wait.until(ec.element_to_be_clickable((By.ID, "confirm-flattr")))  # top-level: shown

        driver.get(world["blog"] + "/2026/11/buttons.html")
        driver.execute_script(
            "var f = document.createElement('iframe'); f.id = 'trap'; f.src = arguments[0];"
            "f.onload = function () { document.body.setAttribute('data-trap', 'loaded'); }; document.body.appendChild(f);",
            confirm,
        )
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-trap") == "loaded")
        driver.switch_to.frame(driver.find_element(By.ID, "trap"))
        assert not driver.find_elements(By.ID, "confirm-flattr")
        assert not driver.find_elements(By.NAME, "username")
        driver.switch_to.default_content()
        assert Flattr.select().where(Flattr.thing == world["thing"].id).count() == 0

        # The same way of looking does see into a page that allows framing.
        driver.execute_script(
            "var f = document.createElement('iframe'); f.id = 'open'; f.src = arguments[0];"
            "f.onload = function () { document.body.setAttribute('data-open', 'loaded'); }; document.body.appendChild(f);",
            world["post"],
        )
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-open") == "loaded")
        driver.switch_to.frame(driver.find_element(By.ID, "open"))
        assert driver.find_elements(By.CSS_SELECTOR, "a.flattr-node-button")
        driver.switch_to.default_content()
    finally:
        driver.quit()
