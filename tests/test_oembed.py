"""The oEmbed provider (SPEC §3): real consumers from PyPI discover and render
the button from a thing page served by waitress; the XML form parses with a
real XML parser; maxwidth/maxheight, 404 and 501 as the oEmbed spec says."""

from __future__ import annotations

from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import html5lib
import micawber
import pyoembed
import requests
from live import serve_node

from flattr_node.services import flattring, things


def register(owner, slug="p", title=None):
    return things.register_thing(owner, {"url": f"https://{owner.username}.example/{slug}", "title": title or f"{owner.username}'s {slug}"})


def button_of(markup: str):
    return html5lib.parseFragment(markup, namespaceHTMLElements=False).find(".//a[@class='flattr-node-button']")


def test_a_real_consumer_discovers_and_renders_the_button(cfg, make_user):
    ann, kim = make_user("ann"), make_user("kim", 500)
    thing = register(ann, "post", "Ann's post")
    with serve_node(cfg) as (live, _app):
        flattring.flattr_thing(live, kim, thing.id)
        page = f"{live.base_url}/things/{thing.id}"

        # pyoembed: autodiscovery from the <link> tags of the thing page.
        data = pyoembed.oEmbed(page)
        assert (data["type"], data["version"], data["title"], data["author_name"]) == ("rich", "1.0", "Ann's post", "ann")
        link = button_of(data["html"])
        assert link.get("href") == f"{live.base_url}/things/{thing.id}/flattr"
        assert link.find(".//img").get("src") == f"{live.base_url}/things/{thing.id}/badge.svg"

        small = pyoembed.oEmbed(page, maxwidth=120, maxheight=30)
        assert small["width"] <= 120 and small["height"] <= 30

        # micawber: renders a blog text that names the thing page on its own line.
        registry = micawber.ProviderRegistry()
        registry.register(rf"{live.base_url}/things/\d+", micawber.Provider(f"{live.base_url}/oembed", timeout=5))
        rendered = registry.parse_text(f"A post I like:\n\n{page}\n\nThanks!")
        assert button_of(rendered).get("href") == f"{live.base_url}/things/{thing.id}/flattr"
        assert html5lib.parseFragment(rendered, namespaceHTMLElements=False).find(".//span[@data-flattr-count]").text == "1"


def test_xml_form_parses_and_matches_json(cfg, make_user):
    ann = make_user("ann")
    thing = register(ann, "x", 'Quotes " and <tags> & ampersands')
    with serve_node(cfg) as (live, _app):
        query = {"url": f"{live.base_url}/things/{thing.id}"}
        as_json = requests.get(f"{live.base_url}/oembed", params=query, timeout=10)
        as_xml = requests.get(f"{live.base_url}/oembed", params={**query, "format": "xml"}, timeout=10)
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert as_xml.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(as_xml.content)
    assert root.tag == "oembed"
    fields = {child.tag: child.text for child in root}
    assert fields == {k: str(v) for k, v in as_json.json().items()}
    assert fields["title"] == 'Quotes " and <tags> & ampersands'
    assert button_of(fields["html"]).get("title") == 'Flattr Quotes " and <tags> & ampersands'


def test_urls_formats_and_sizes(client, make_user):
    ann = make_user("ann")
    thing = register(ann)

    def get(**params):
        return client.get("/oembed?" + urlencode(params))

    # A thing page, the thing's own URL and an auto-submit URL all embed.
    for url in (f"http://node.test/things/{thing.id}", "https://ann.example/p", f"http://node.test/things/{thing.id}/flattr"):
        response = get(url=url)
        assert response.status_code == 200, url
        assert button_of(response.json["html"]).get("href") == f"http://node.test/things/{thing.id}/flattr"
    auto = "http://node.test/submit/auto?" + urlencode({"user_id": "ann", "url": "https://ann.example/new", "title": "New"})
    response = get(url=auto)
    assert response.status_code == 200 and response.json["title"] == "New"
    assert button_of(response.json["html"]).get("href") == auto

    # maxwidth/maxheight are obeyed; the compact button when it fits better.
    for maxwidth, maxheight in ((30, None), (None, 30), (120, 25), (10, 10)):
        params = {k: v for k, v in (("maxwidth", maxwidth), ("maxheight", maxheight)) if v}
        doc = get(url=f"http://node.test/things/{thing.id}", **params).json
        assert doc["width"] <= (maxwidth or 10**6) and doc["height"] <= (maxheight or 10**6)
    assert get(url=f"http://node.test/things/{thing.id}", maxwidth=120, maxheight=25).json["width"] == 110

    # Unknown URLs are 404, unknown formats 501, nonsense sizes 422: never a 500.
    assert get(url="https://nobody.example/x").status_code == 404
    assert get(url="http://node.test/things/999999").status_code == 404
    assert get(url="http://node.test/submit/auto?user_id=ghost&url=https://x.example/").status_code == 404
    assert get(url="javascript:alert(1)").status_code == 404
    unknown = get(url=f"http://node.test/things/{thing.id}", format="yaml")
    assert unknown.status_code == 501 and unknown.json["error"] == "invalid_request"
    assert get(url=f"http://node.test/things/{thing.id}", maxwidth="-5").status_code == 422
    assert get(url=f"http://node.test/things/{thing.id}", maxwidth="1e9").status_code == 422
    assert get().status_code == 422
