"""Hostile titles, descriptions, usernames and URLs come out escaped or
refused in every output: node pages, the button, the badge, oEmbed JSON and
XML, feed links and snippets. Checked with real parsers (html5lib, ElementTree):
no element or attribute the attacker wrote may exist in the parsed result."""

from __future__ import annotations

import json
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import html5lib
import pytest
from button_helpers import confirm_form, signin

import plugin_bridge as pb
from flattr_node.errors import Validation
from flattr_node.services import things

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)' x='",
    "</title><script>alert(1)</script>",
    "A & B ]]> <!-- --> <![CDATA[x]]> \"]\" [flattr]",
    "{{ 7*7 }} {% raw %} ${x} `x`",
    "\u202egnp.exe \u0000\x01\x0b",
]
NODE = "https://node.example"


def html_doc(markup: str):
    return html5lib.parse(markup, namespaceHTMLElements=False)


def assert_inert(doc, allowed_scripts=()):
    """Nothing executable that we did not write: scripts only from the node,
    no event-handler attribute, every link/src http(s) or a path."""
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag in ("script", "iframe", "object", "embed"):
            assert el.tag == "script" and el.get("src") in allowed_scripts and not (el.text or "").strip(), ET.tostring(el)
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), (el.tag, name, value)
            if name in ("href", "src", "action"):
                assert value.startswith(("http://", "https://", "/")) or value.startswith("#"), (el.tag, name, value)


def thing_ref(title: str, owner: str = "ann", url: str = "https://blog.example/p") -> pb.ThingRef:
    return pb.ThingRef(NODE, 1, url, title, owner, 2, description=title)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_button_links_and_snippets_escape_everything(hostile):
    in_url = "".join(c for c in hostile if ord(c) >= 32).replace(" ", "%20")  # raw quotes and brackets stay
    targets = [thing_ref(hostile, owner=hostile), pb.AutoSubmit(NODE, hostile, "https://blog.example/p?q=" + in_url, hostile)]
    if in_url != hostile:
        with pytest.raises(ValueError):  # spaces and control characters: refused
            pb.button_html(pb.AutoSubmit(NODE, "ann", "https://blog.example/p?q=" + hostile))
    allowed = (f"{NODE}/button.js",)
    for target in targets:
        for size in pb.SIZES:
            doc = html_doc(pb.button_html(target, size))
            assert_inert(doc, allowed)
            img = doc.find(".//img")
            assert img.get("alt").startswith("Flattr this: ") and len(img.get("alt")) <= 215
        head = html_doc(pb.payment_link_head(target))
        assert_inert(head)
        assert [link.get("rel") for link in head.iter("link")] == ["payment"]
        # Feed links are well-formed XML whatever the URL holds.
        ET.fromstring(f'<item xmlns:atom="http://www.w3.org/2005/Atom">{pb.payment_link_rss(target)}</item>')
        ET.fromstring(f'<entry xmlns="http://www.w3.org/2005/Atom">{pb.payment_link_atom(target)}</entry>')
        for platform in pb.PLATFORMS:
            text = pb.snippet(platform, target)
            if platform == "wordpress":
                inner = text.strip()[len("[flattr ") : -1]
                assert "[" not in inner and "]" not in inner and inner.count('"') in (4, 6), text
            elif platform == "markdown":
                assert "<" not in text and "\n" not in text.strip()
            else:
                assert_inert(html_doc(text), allowed)
    for platform in ("hugo", "jekyll", "tumblr", "blogger", "wordpress"):
        with pytest.raises(ValueError, match="user_id must be a username"):
            pb.template_snippet(platform, NODE, hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_oembed_json_and_xml_escape_everything(hostile):
    doc = pb.oembed(thing_ref(hostile, owner=hostile))
    parsed = json.loads(pb.oembed_json(doc))
    assert_inert(html_doc(parsed["html"]), ())
    root = ET.fromstring(pb.oembed_xml(doc).encode())
    assert [child.tag for child in root] == list(doc)
    assert_inert(html_doc(root.find("html").text), ())
    assert root.find("title").text == pb.markup.clip(hostile)
    assert "/users/" in root.find("author_url").text and "<" not in root.find("author_url").text


def test_badge_escapes_its_label():
    for hostile in HOSTILE:
        root = ET.fromstring(pb.badge_svg(3, "compact", label=hostile))
        assert not [el for el in root.iter() if el.tag.endswith(("script", "foreignObject", "image"))]
        assert all(not k.startswith("on") for el in root.iter() for k in el.attrib)


def test_urls_that_are_not_http_are_refused_everywhere(client, make_user):
    ann = make_user("ann")
    for bad in ("javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,<script>x</script>", "vbscript:x", "//evil.example/"):
        with pytest.raises(ValueError):
            pb.safe_url(bad)
        with pytest.raises(Validation):
            things.register_thing(ann, {"url": bad, "title": "x"})
        assert client.get("/submit/auto?" + urlencode({"user_id": "ann", "url": bad})).status_code in (302, 422)
        assert client.get("/oembed?" + urlencode({"url": bad})).status_code == 404
        assert client.get("/badge.svg?" + urlencode({"url": bad})).status_code == 422


def test_very_long_text_is_clipped_or_refused(client, make_user):
    ann = make_user("ann")
    with pytest.raises(Validation):
        things.register_thing(ann, {"url": "https://ann.example/long", "title": "t" * 201})
    thing = things.register_thing(ann, {"url": "https://ann.example/long", "title": "t" * 200, "description": "d" * 5000})
    assert client.get(f"/things/{thing.id}").status_code == 200
    doc = client.get("/oembed?" + urlencode({"url": f"http://node.test/things/{thing.id}"})).json
    assert len(doc["title"]) <= 200 and len(doc["html"]) < 2000
    assert len(pb.markup.clip("x" * 10000)) == 200


def test_node_pages_escape_hostile_titles_and_descriptions(client, make_user):
    ann = make_user("ann")
    make_user("kim", 5000)
    allowed = ("/button.js", "/button/done.js", "/static/app.js")
    signin(client, "kim")
    for i, hostile in enumerate(HOSTILE):
        clean = hostile.replace("\x00", "").replace("\x01", "").replace("\x0b", "")
        thing = things.register_thing(ann, {"url": f"https://ann.example/{i}", "title": clean[:200], "description": clean})
        page = client.get(f"/things/{thing.id}")
        doc = html_doc(page.get_data(as_text=True))
        assert_inert(doc, allowed)
        assert doc.find(".//h1").text == clean.strip()
        assert doc.find(".//title").text.startswith(clean.strip())

        confirm = client.get(f"/things/{thing.id}/flattr")
        doc = html_doc(confirm.get_data(as_text=True))
        assert_inert(doc, allowed)
        action, fields = confirm_form(doc)
        done = client.post(action, data=fields)
        assert done.status_code == 201
        assert_inert(html_doc(done.get_data(as_text=True)), allowed)

        # The auto-submit page shows a title straight from the query string.
        auto = client.get("/submit/auto?" + urlencode({"user_id": "ann", "url": f"https://ann.example/new{i}", "title": clean[:200]}))
        assert auto.status_code == 200
        doc = html_doc(auto.get_data(as_text=True))
        assert_inert(doc, allowed)
        assert doc.find(".//h1").text == f"Flattr “{pb.markup.clip(clean)}”?"

        for fmt in ("json", "xml"):
            response = client.get("/oembed?" + urlencode({"url": f"http://node.test/things/{thing.id}", "format": fmt}))
            assert response.status_code == 200
            html_field = response.json["html"] if fmt == "json" else ET.fromstring(response.data).find("html").text
            assert_inert(html_doc(html_field), ())
