"""Markup for a thing: the button, the badge, rel="payment" links, oEmbed.

Pure functions of plain values (a `ThingRef` or an `AutoSubmit`): no Flask, no
database, no network. A blog platform can import them without running a
node, and the node renders its own pages with the same code.

Everything a user typed (titles, descriptions, usernames, URLs) is escaped for
the place it lands in; a URL that is not http(s) is refused with ValueError.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree as ET

SIZES = {
    # Flattr's two buttons: the tall one with the count on top, and the
    # compact one (one line, count on the right).
    "default": (56, 64),
    "compact": (110, 20),
}
MAX_TITLE = 200
CATEGORIES = ("text", "images", "video", "audio", "software", "people", "rest")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def safe_url(url: str, what: str = "url") -> str:
    """An absolute http(s) URL, else ValueError: no javascript:, data:, etc."""
    if not isinstance(url, str):
        raise ValueError(f"{what} must be a string")
    url = url.strip()
    if any(ord(c) < 32 or c in " \x7f" for c in url):
        raise ValueError(f"{what} must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        raise ValueError(f"{what} must be an http:// or https:// URL, got {url[:80]!r}")
    if len(url) > 4096:
        raise ValueError(f"{what} is longer than 4096 characters")
    return url


def origin_of(url: str) -> str:
    """scheme://host[:port] of an http(s) URL (what postMessage compares)."""
    parts = urlsplit(safe_url(url))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def clip(text: str | None, limit: int = MAX_TITLE) -> str:
    """Plain text on one line, at most `limit` characters (an ellipsis marks a cut)."""
    text = " ".join(str(text or "").split())
    text = _XML_BAD.sub("", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _node(node: str) -> str:
    return safe_url(node, "node").rstrip("/")


@dataclass(frozen=True)
class ThingRef:
    """A registered thing, as far as markup needs it."""

    node: str  # the node's base URL
    id: int
    url: str
    title: str
    owner: str  # username
    flattrs_this_period: int = 0
    description: str = ""

    @property
    def page(self) -> str:
        return f"{_node(self.node)}/things/{int(self.id)}"

    @property
    def confirm_url(self) -> str:
        return f"{self.page}/flattr"

    def badge_url(self, size: str = "default") -> str:
        return f"{self.page}/badge.svg" + ("?size=compact" if size == "compact" else "")

    @property
    def payment_url(self) -> str:
        return self.page

    @classmethod
    def from_json(cls, node: str, data: dict) -> ThingRef:
        """From the node's thing JSON (GET /api/v1/things/{id})."""
        return cls(
            node=node,
            id=int(data["id"]),
            url=data["url"],
            title=data.get("title") or data["url"],
            owner=data["owner"]["username"],
            flattrs_this_period=int(data.get("flattrs_this_period") or 0),
            description=data.get("description") or "",
        )


@dataclass(frozen=True)
class AutoSubmit:
    """A post not registered yet (Flattr's auto-submit): created on its first flattr."""

    node: str
    user_id: str  # the owner's username on the node
    url: str
    title: str = ""
    description: str = ""
    category: str = ""
    language: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    hidden: bool = False

    def params(self) -> list[tuple[str, str]]:
        if not self.user_id or not isinstance(self.user_id, str):
            raise ValueError("user_id is required")
        if self.category and self.category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        pairs = [("user_id", self.user_id), ("url", safe_url(self.url))]
        if self.title:
            pairs.append(("title", clip(self.title)))
        if self.description:
            pairs.append(("description", clip(self.description, 1000)))
        for key in ("category", "language"):
            if getattr(self, key):
                pairs.append((key, getattr(self, key)))
        if self.tags:
            pairs.append(("tags", ",".join(self.tags)))
        if self.hidden:
            pairs.append(("hidden", "1"))
        return pairs

    @property
    def confirm_url(self) -> str:
        return f"{_node(self.node)}/submit/auto?{urlencode(self.params())}"

    @property
    def payment_url(self) -> str:
        return self.confirm_url

    @property
    def display_title(self) -> str:
        return clip(self.title or self.url)

    def badge_url(self, size: str = "default") -> str:
        query = [("url", safe_url(self.url))] + ([("size", "compact")] if size == "compact" else [])
        return f"{_node(self.node)}/badge.svg?{urlencode(query)}"


Target = ThingRef | AutoSubmit


def _size(size: str) -> tuple[int, int]:
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    return SIZES[size]


def _title(target: Target) -> str:
    return clip(target.title) if isinstance(target, ThingRef) else target.display_title


def _count(target: Target) -> int:
    return int(target.flattrs_this_period) if isinstance(target, ThingRef) else 0


VISUALLY_HIDDEN = "position:absolute;width:1px;height:1px;margin:-1px;padding:0;border:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap"


def button_html(target: Target, size: str = "default", *, width: int | None = None, height: int | None = None) -> str:
    """The JavaScript-free button: a link to the confirmation page around the badge.

    A reader without JavaScript clicks through to the node; with the optional
    script (`script_tag`) the same link opens as a popup. The element with
    `data-flattr-count` holds this period's count as text (for screen readers;
    hidden from sight, as the badge shows it) and is kept up to date by the
    script.
    """
    w, h = _size(size)
    w, h = width or w, height or h
    e = html.escape
    title = _title(target)
    count = _count(target)
    thing_attr = f' data-flattr-thing="{int(target.id)}"' if isinstance(target, ThingRef) else ""
    return (
        f'<span class="flattr-node flattr-node-{size}">'
        f'<a class="flattr-node-button" href="{e(target.confirm_url)}"{thing_attr}'
        f' data-flattr-url="{e(safe_url(target.url))}" data-flattr-node="{e(origin_of(target.node))}"'
        ' rel="payment"'
        f' title="{e("Flattr " + title)}">'
        f'<img src="{e(target.badge_url(size))}" width="{int(w)}" height="{int(h)}"'
        f' alt="{e(f"Flattr this: {title}")}"></a>'
        # The badge shows the count; this copy is for screen readers and the
        # script, hidden from sight so the button does not show it twice.
        f' <span class="flattr-node-count" data-flattr-count="" style="{VISUALLY_HIDDEN}">{count}</span>'
        "</span>"
    )


def script_tag(node: str) -> str:
    """The optional script: opens the button as a popup and updates the count."""
    return f'<script src="{html.escape(_node(node))}/button.js" async></script>'


def payment_link_head(target: Target) -> str:
    """`<link rel="payment">` for an HTML head, in Flattr's form."""
    return f'<link rel="payment" href="{html.escape(target.payment_url)}" type="text/html" title="{html.escape("Flattr " + _title(target))}">'


def payment_link_rss(target: Target) -> str:
    """For an RSS 2.0 <item> (the channel declares xmlns:atom="http://www.w3.org/2005/Atom")."""
    return f'<atom:link rel="payment" href="{_xml_attr(target.payment_url)}" type="text/html"/>'


def payment_link_atom(target: Target) -> str:
    """For an Atom <entry>."""
    return f'<link rel="payment" href="{_xml_attr(target.payment_url)}" type="text/html"/>'


def _xml_attr(text: str) -> str:
    return html.escape(_XML_BAD.sub("", text), quote=True)


def oembed_links(page_url: str, node: str) -> str:
    """The discovery <link> tags for a page (oEmbed 1.0 §4)."""
    query = urlencode([("url", safe_url(page_url))])
    base = f"{_node(node)}/oembed?{query}"
    return (
        f'<link rel="alternate" type="application/json+oembed" href="{html.escape(base)}&amp;format=json" title="oEmbed (JSON)">\n'
        f'<link rel="alternate" type="text/xml+oembed" href="{html.escape(base)}&amp;format=xml" title="oEmbed (XML)">'
    )


def fit(size: str, maxwidth: int | None, maxheight: int | None) -> tuple[str, int, int]:
    """The button that fits maxwidth/maxheight: the asked size scaled down (the
    SVG badge scales), or the other size when that shows a bigger button."""
    if maxwidth is not None and maxwidth < 1 or maxheight is not None and maxheight < 1:
        raise ValueError("maxwidth and maxheight must be positive")
    _size(size)

    def scaled(name: str) -> tuple[str, int, int]:
        w, h = SIZES[name]
        scale = min(1.0, (maxwidth or w) / w, (maxheight or h) / h)
        return name, max(1, int(w * scale)), max(1, int(h * scale))

    asked = scaled(size)
    if asked[1:] == SIZES[size]:
        return asked
    other = scaled("compact" if size == "default" else "default")
    return other if other[1] * other[2] > asked[1] * asked[2] else asked


def oembed(target: Target, *, provider_name: str = "flattr-node", maxwidth: int | None = None, maxheight: int | None = None, size: str = "default") -> dict:
    """An oEmbed 1.0 `rich` response as a dict (for JSON or `oembed_xml`)."""
    size, w, h = fit(size, maxwidth, maxheight)
    node = _node(target.node)
    doc = {
        "version": "1.0",
        "type": "rich",
        "title": _title(target),
        "author_name": target.owner if isinstance(target, ThingRef) else target.user_id,
        "author_url": f"{node}/users/{_path_segment(target.owner if isinstance(target, ThingRef) else target.user_id)}",
        "provider_name": provider_name,
        "provider_url": node + "/",
        "cache_age": 300,
        "html": button_html(target, size, width=w, height=h),
        "width": w,
        "height": h,
    }
    return doc


def _path_segment(text: str) -> str:
    from urllib.parse import quote

    return quote(str(text), safe="")


def oembed_json(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False)


def oembed_xml(doc: dict) -> str:
    """The XML form (oEmbed 1.0 §2.3.4): one element per field, text escaped."""
    root = ET.Element("oembed")
    for key, value in doc.items():
        ET.SubElement(root, key).text = _XML_BAD.sub("", str(value))
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n' + body


def badge_svg(count: int, size: str = "default", label: str = "Flattr") -> str:
    """The count badge as SVG: no script, no external reference, text escaped."""
    w, h = _size(size)
    count = int(count)
    label = clip(label, 40)
    shown = str(count) if count < 100000 else f"{count // 1000}k"
    e = html.escape
    if size == "compact":
        body = (
            f'<rect width="{w}" height="{h}" rx="3" fill="#f4f4f4" stroke="#8aa33b"/>'
            f'<rect width="56" height="{h}" rx="3" fill="#8aa33b"/>'
            f'<text x="28" y="14" font-size="12" text-anchor="middle" fill="#fff">{e(label)}</text>'
            f'<text x="83" y="14" font-size="12" text-anchor="middle" fill="#333">{e(shown)}</text>'
        )
    else:
        body = (
            f'<rect width="{w}" height="{h}" rx="4" fill="#f4f4f4" stroke="#8aa33b"/>'
            f'<text x="{w // 2}" y="28" font-size="20" text-anchor="middle" fill="#333">{e(shown)}</text>'
            f'<rect y="{h - 22}" width="{w}" height="22" rx="4" fill="#8aa33b"/>'
            f'<text x="{w // 2}" y="{h - 7}" font-size="12" text-anchor="middle" fill="#fff">{e(label)}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"'
        f' aria-label="{e(f"{label}: {count} this month")}" font-family="Verdana,DejaVu Sans,sans-serif">'
        f"<title>{e(f'{label}: {count} this month')}</title>{body}</svg>"
    )


POPUP_SCRIPT = r"""/* flattr-node button: opens the confirmation page as a popup and keeps
   the count on the page up to date. Messages are accepted only from the node. */
(function () {
  "use strict";
  function nodeOf(a) { return a.getAttribute("data-flattr-node"); }
  function setCount(a, n) {
    var box = a.parentNode, el = box && box.querySelector("[data-flattr-count]");
    if (el && typeof n === "number" && isFinite(n)) { el.textContent = String(n); }
    var img = a.querySelector("img");
    if (img && typeof n === "number") {
      var src = img.src.split("#")[0];
      img.src = src + (src.indexOf("?") < 0 ? "?" : "&") + "n=" + n;
    }
  }
  function refresh(a) {
    var id = a.getAttribute("data-flattr-thing");
    if (!id || !window.fetch) { return; }
    fetch(nodeOf(a) + "/api/v1/things/" + encodeURIComponent(id), {credentials: "omit"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (t) { if (t) { setCount(a, t.flattrs_this_period); } })
      .catch(function () {});
  }
  window.addEventListener("message", function (ev) {
    var data = ev.data;
    if (!data || data.type !== "flattr-node:flattred") { return; }
    var links = document.querySelectorAll("a.flattr-node-button");
    for (var i = 0; i < links.length; i++) {
      var a = links[i];
      if (ev.origin !== nodeOf(a)) { continue; }  /* only the node may speak */
      if (String(data.thing) === a.getAttribute("data-flattr-thing") || data.url === a.getAttribute("data-flattr-url")) {
        if (data.thing) { a.setAttribute("data-flattr-thing", String(data.thing)); }
        setCount(a, data.count);
      }
    }
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest("a.flattr-node-button") : null;
    if (!a || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) { return; }
    var href = a.href + (a.href.indexOf("?") < 0 ? "?" : "&") + "popup=1&origin=" + encodeURIComponent(location.origin);
    var w = window.open(href, "flattr-node", "popup,width=480,height=640");
    if (!w) { return; }  /* popup blocked: the link opens normally */
    ev.preventDefault();
    var timer = setInterval(function () {
      if (w.closed) { clearInterval(timer); refresh(a); }
    }, 500);
  });
})();
"""


def popup_script() -> str:
    return POPUP_SCRIPT
