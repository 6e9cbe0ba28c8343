"""Every page fits a phone: headless Chromium at 390 CSS pixels wide (an
iPhone 12-15) over every page a visitor, a member and an operator see, with
data in every table and a long title without spaces. On each page nothing
is wider than the screen: the document does not scroll sideways and no
element reaches past its right edge (except inside a box that scrolls by
itself, such as a textarea holding a snippet). The dashboard's tabs take at
most two rows."""

from __future__ import annotations

import pytest
from browser import chromium, need_chromium
from live import serve_node

from flattr_node.services import flattring, funds, people, things

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

WIDTH = 390

LONG_TITLE = "Supercalifragilisticexpialidocious" * 4  # 136 letters, no space to break at

# Everything wider than the viewport, outside boxes that scroll themselves.
OVERFLOW_JS = """
const width = arguments[0];
const out = [];
const scrolls = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
  const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } return false; };
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (getComputedStyle(el).position === 'absolute' && r.width <= 1) continue;  // visually hidden text
  if ((r.right > width + 0.5 || r.width > width) && !scrolls(el)) {
    out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined ? '.' + el.className : '')
             + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
}
return [document.documentElement.scrollWidth, out.slice(0, 8)];
"""


@pytest.fixture
def world(cfg, make_user):
    """A node with something in every table."""
    need_chromium()
    ops = make_user("ops", 5000, operator=True)
    kim = make_user("kim", 5000, budget=3000)
    ann = make_user("ann", 1000)
    people.update_settings(cfg, ann, {"display_name": "Ann Archer", "about": "Writes " + LONG_TITLE, "url": "https://ann.example/" + "x" * 80})
    long_post = things.register_thing(ann, {"url": "https://ann.example/" + "p" * 200, "title": LONG_TITLE, "tags": "music,live"})
    posts = [things.register_thing(ann, {"url": f"https://ann.example/post{i}", "title": f"Post number {i}"}) for i in range(3)]
    kims = things.register_thing(kim, {"url": "https://kim.example/notes", "title": "Kim's notes"})
    for thing in (long_post, *posts):
        flattring.flattr_thing(cfg, kim, thing.id)
    flattring.flattr_thing(cfg, ann, kims.id)
    flattring.flattr_thing(cfg, ops, kims.id)
    funds.open_deposit(kim, 123456)
    funds.open_deposit(ann, 2500)
    people.create_token(kim, "my blog's plugin on " + "a" * 60)
    from flattr_node import ledger
    from flattr_node.db import database

    with database.atomic():  # some revenue for kim to withdraw: R10's account, through the ledger
        ledger.post("test:revenue:kim", "test", [(ledger.node_account("external").id, -5000), (ledger.user_account(kim.id, "revenue").id, 5000)])
    funds.request_payout(cfg, kim, 1200)
    with serve_node(cfg) as (live, app):
        yield {"cfg": live, "app": app, "thing": long_post, "kims": kims, "kim": kim}


@pytest.fixture
def phone(tmp_path):
    driver = chromium(tmp_path / "chromium", window=f"{WIDTH},844", extra_flags=("--lang=en-US", "--force-device-scale-factor=1", "--hide-scrollbars"))  # overlay scrollbars, as on a phone
    driver.set_page_load_timeout(30)
    driver.set_window_size(WIDTH, 844)
    yield driver
    driver.quit()


def sign_in(driver, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(base + "/signin")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys("correct horse")
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:  # the click starts the page load; it may not have ended yet
        WebDriverWait(driver, 30).until(lambda d: "/signin" not in d.current_url)
    except TimeoutException:
        raise AssertionError(driver.page_source[:500]) from None


def check(driver, url: str | None, problems: list) -> None:
    if url:
        driver.get(url)
    if driver.execute_script("return document.contentType") != "text/html":
        return  # a redirect to something that is not a page
    viewport = driver.execute_script("return document.documentElement.clientWidth")
    assert viewport == WIDTH, viewport  # the page is laid out at the phone's width
    scroll_width, wide = driver.execute_script(OVERFLOW_JS, WIDTH)
    if scroll_width > WIDTH or wide:
        problems.append((driver.current_url, scroll_width, wide))


def click(driver, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def every_page(app, fill: dict) -> list[str]:
    """Every GET route of the node's pages (found in its URL map, so a page
    added later is tested too), arguments filled in; not the APIs, scripts,
    images or feeds."""
    import re

    skip_prefixes = ("/api/", "/rest/", "/.well-known/", "/static/")
    paths = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(skip_prefixes) or rule.rule in ("/healthz", "/oembed", "/favicon.ico"):
            continue
        if rule.rule.endswith((".js", ".svg", ".png", ".json", ".xml")):
            continue
        paths.add(re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(fill[m.group(1)]), rule.rule))
    return sorted(paths)


def test_every_page_fits_a_390_pixel_phone(world, phone):
    base = world["cfg"].base_url
    thing, kims = world["thing"], world["kims"]
    problems: list = []
    fill = {"thing_id": thing.id, "username": "ann", "token": "no-such-token", "ids": thing.id, "lang": "de"}  # German from there on
    pages = every_page(world["app"], fill)
    assert len(pages) >= 20 and "/dashboard" in pages and "/operator" in pages
    for path in pages:
        check(phone, base + path, problems)

    sign_in(phone, base, "kim")
    for path in [*pages, f"/dashboard/things/{kims.id}", "/users/kim"]:
        check(phone, base + path, problems)
    phone.get(base + "/dashboard/deposits")
    click(phone, "#deposits form.inline button")  # cancel: the question page
    from selenium.webdriver.support.ui import WebDriverWait

    # "Cancel deposit …?" in German, the language chosen above; the click's page load may still be on its way.
    WebDriverWait(phone, 30).until(lambda d: "stornieren" in d.title)
    check(phone, None, problems)
    phone.get(base + "/dashboard/budget")  # a GET on a POST route: the error page
    check(phone, None, problems)

    sign_in(phone, base, "ops")
    check(phone, base + "/operator", problems)
    click(phone, f"form[action='/operator/people/{world['kim'].id}/reset-link'] button")
    check(phone, None, problems)
    assert not problems, "\n".join(f"{url}: scrollWidth {sw}; too wide: {wide}" for url, sw, wide in problems)


def test_the_dashboard_tabs_are_one_row_with_the_current_tab_in_view(world, phone):
    base = world["cfg"].base_url
    sign_in(phone, base, "kim")
    tabs_js = "return [...document.querySelectorAll('nav.tabs a')].map(a => { const r = a.getBoundingClientRect(); return [Math.round(r.top), r.left, r.right, a.textContent, a.hasAttribute('aria-current')]; })"
    for path in ("/dashboard", "/dashboard/profile", "/account/password"):
        phone.get(base + path)
        tabs = phone.execute_script(tabs_js)
        assert len(tabs) >= 10 and len({top for top, *_ in tabs}) == 1, tabs  # one row, not three
        [current] = [t for t in tabs if t[4]]
        assert current[1] >= 0 and current[2] <= WIDTH, (path, current)  # the current tab is wholly on screen
        nav = phone.execute_script("const n = document.querySelector('nav.tabs'); const r = n.getBoundingClientRect(); return [r.right, n.scrollWidth, n.clientWidth]")
        assert nav[0] <= WIDTH  # the row itself fits; the other tabs are a swipe away
    # Every tab can be reached: scrolled to the end, the last one is on screen.
    phone.execute_script("document.querySelector('nav.tabs').scrollLeft = 1e6")
    last = phone.execute_script(tabs_js)[-1]
    assert last[2] <= WIDTH + 0.5 and last[3] == "Password"


def test_a_long_title_wraps_on_the_thing_page(world, phone):
    base = world["cfg"].base_url
    phone.get(f"{base}/things/{world['thing'].id}")
    h1 = phone.execute_script("const r = document.querySelector('h1').getBoundingClientRect(); return [r.right, r.height]")
    assert h1[0] <= WIDTH and h1[1] > 60  # within the screen, on several lines


def test_the_plain_button_shows_its_count_once(world, phone):
    """On a blog, without the script: the badge shows the count; the count's
    text copy (for screen readers and the script) is not shown beside it."""
    from live import serve_pages

    import plugin_bridge as pb

    cfg = world["cfg"]
    from flattr_node.services import embeds

    ref = embeds.thing_ref(cfg, world["thing"])  # flattred once, by kim
    page = f"<!doctype html><html><body><p>Liked it?</p>{pb.button_html(ref)}</body></html>"
    with serve_pages({"/post": page}) as blog:
        phone.get(blog + "/post")
        shown = phone.execute_script(
            "const c = document.querySelector('[data-flattr-count]').getBoundingClientRect();"
            "const i = document.querySelector('a.flattr-node-button img');"
            "return [c.width, c.height, i.complete && i.naturalWidth > 0, document.querySelector('[data-flattr-count]').textContent]"
        )
    assert shown[0] <= 1 and shown[1] <= 1, shown  # the text copy takes no room on the screen
    assert shown[2] is True and shown[3] == "1"  # the badge (with the count) is there
