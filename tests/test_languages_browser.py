"""Every page in Chromium at 390 px (a phone), in English, German and
Swedish: `<html lang>` right, nothing wider than the screen, and no English
left in the German and Swedish pages: no visible text is an English message
of the catalogs that has a different translation.

Does not depend on the database engine: SQLite pass only."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from browser import chromium, need_chromium
from conftest import at
from live import serve_node

from flattr_node import closing, i18n
from flattr_node.services import flattring, funds, notices, subscriptions, things

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]
WIDTH = 390

VISIBLE_TEXT = """
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode, el = node.parentElement;
  const text = node.textContent.replace(/\\s+/g, ' ').trim();
  if (!text || !el || ['SCRIPT', 'STYLE', 'TEXTAREA', 'CODE', 'PRE'].includes(el.tagName)) continue;
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
  out.push(text);
}
for (const el of document.querySelectorAll('input[placeholder], [aria-label], button, input[type=submit]')) {
  for (const value of [el.getAttribute('placeholder'), el.getAttribute('aria-label'), el.value]) if (value) out.push(value.trim());
}
return out;
"""
WIDEST = """
// The page scrolls sideways when it is wider than the window; a table or a
// row of tabs that scrolls inside its own box does not count.
const page = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
if (page <= window.innerWidth) return [page, ''];
const scrolls = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
  if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true; } return false; };
let worst = [page, 'html'];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.right > window.innerWidth && !scrolls(el)) worst = [Math.ceil(r.right), el.tagName + '.' + el.className + '#' + el.id];
}
return worst;
"""


def english_messages(lang: str) -> set[str]:
    """Plain-text English pieces of every message translated differently."""
    with open(i18n.TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        cat = read_po(f, locale=lang)
    pieces, same = set(), {m.id for m in cat if m.id and m.string == m.id}
    for m in cat:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for english in ids:
            if not english or english in strings:
                continue
            for piece in re.split(r"%\(\w+\)[sd]|<[^>]+>", english):
                piece = " ".join(piece.split()).strip(" ,.:;·()—")
                if re.search(r"[A-Za-z]{3,}", piece) and len(piece) >= 4 and piece not in same and not any(piece in t for t in strings):
                    pieces.add(piece)
    return pieces


@pytest.fixture
def world(cfg, make_user):
    need_chromium()
    cfg = cfg.with_(revenue_requires_giving=False, min_payout=100)
    kim = make_user("kim", 2000, operator=True, budget=500)
    ann = make_user("ann", 1000)
    post = things.register_thing(ann, {"url": "https://ann.example/a-rather-long-title-of-a-post", "title": "A post with a rather long title, as posts have"})
    mine = things.register_thing(kim, {"url": "https://kim.example/1", "title": "Kim's page"})
    flattring.flattr_thing(cfg, kim, post.id, now=at("2026-09", 3))
    flattring.flattr_thing(cfg, ann, mine.id, now=at("2026-09", 4))
    closing.close_period(cfg, "2026-09", now=at("2026-10", 1, 0, 1))
    funds.open_deposit(kim, 1234)
    subscriptions.subscribe(cfg, kim, post.id, 6)
    notices.queue_closed_periods(cfg)
    funds.request_payout(cfg, kim, 150)
    return cfg, kim, ann, post, mine


def pages(post, mine) -> list[str]:
    return [
        "/", "/directory", "/users/ann", f"/things/{post.id}", f"/things/{post.id}/flattr",
        "/dashboard", "/dashboard/history", "/dashboard/deposits", "/dashboard/payouts", "/dashboard/things",
        f"/dashboard/things/{mine.id}", "/dashboard/tokens", "/dashboard/subscriptions", "/dashboard/notices",
        "/dashboard/profile", "/invites", "/account/password", "/operator", "/sites",
        "/dashboard/bank", "/dashboard/statement", "/dashboard/webhooks", "/dashboard/apps", "/operator/bank",
    ]  # fmt: skip


def test_every_page_in_each_language_at_390px(world, tmp_path):
    cfg, kim, ann, post, mine = world
    found: dict[str, list] = {"overflow": [], "english": [], "lang": []}
    with serve_node(cfg) as (live, _app):
        browser = chromium(tmp_path / "profile", window=f"{WIDTH},900")
        try:
            browser.get(live.base_url + "/signin")
            browser.find_element("name", "username").send_keys("kim")
            browser.find_element("name", "password").send_keys("correct horse")
            browser.find_element("css selector", "main form button[type=submit]").click()
            for lang in i18n.LANGUAGES:
                english = english_messages(lang) if lang != "en" else set()
                browser.get(live.base_url + "/dashboard")
                browser.find_element("css selector", f"nav.languages button[value={lang}]").click()
                for path in pages(post, mine):
                    browser.get(live.base_url + path)
                    if browser.execute_script("return document.documentElement.lang") != lang:
                        found["lang"].append((lang, path))
                    right, what = browser.execute_script(WIDEST)
                    if right > browser.execute_script("return window.innerWidth"):
                        found["overflow"].append((lang, path, right, what))
                    for text in browser.execute_script(VISIBLE_TEXT):
                        if text.strip(" ,.:;·()—") in english:
                            found["english"].append((lang, path, text))
        finally:
            browser.quit()
    for kind, items in found.items():
        print(kind, *items, sep="\n  ")
    assert found == {"overflow": [], "english": [], "lang": []}
