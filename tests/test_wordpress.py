"""The WordPress plugin in a real WordPress (Debian's package, PHP 8, MariaDB,
`php -S`), pointed at a real `flattr-node serve`: its settings page, the
button under posts, both shortcodes in the themes Debian ships, the head
links of posts and of the home page (the node verifies the blog by it), the
RSS and Atom feeds, oEmbed, and a debug log with nothing from the plugin.

Pages are read with html5lib and feeds with lxml, as a reader or a feed
reader would get them. One WordPress and one node serve the whole module.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from browser import chromium, need_chromium
from lxml import etree
from nodeproc import Server, cli, free_port, write_config
from wordpress import WordPress, need_wordpress, parse

pytestmark = pytest.mark.sqlite_only  # the plugin does not depend on the node's database engine

OPTION = "flattr_node_settings"
THEMES = sorted(
    p.name for p in (Path(os.environ.get("FLATTR_WORDPRESS", "/usr/share/wordpress")) / "wp-content" / "themes").glob("twenty*")
)
# The node and the blog both live on 127.0.0.1 here: let WordPress's "safe"
# HTTP functions (oEmbed) reach the node's port, as they reach a public node.
MU_PLUGIN = """<?php
add_filter('http_request_host_is_external', function ($external, $host) { return $external || '127.0.0.1' === $host; }, 10, 2);
add_filter('http_allowed_safe_ports', function ($ports) { return array_merge($ports, array(%d)); });
"""


@pytest.fixture(scope="module")
def blog(tmp_path_factory):
    """A node with ann (a blogger with a token) and kim (a reader with money),
    and a WordPress whose plugin points at the node as ann."""
    need_wordpress()
    root = tmp_path_factory.mktemp("wordpress")
    port = free_port()
    node_url = f"http://127.0.0.1:{port}"
    # The blog is on 127.0.0.1 too: the node may fetch its home page to verify it.
    config = write_config(root / "node.toml", f"sqlite:///{root / 'node.db'}", base_url=node_url, allow_private_network=True)
    cli(config, "user", "create", "ann", "--email", "ann@example.org", "--password", "correct horse")
    cli(config, "user", "create", "kim", "--email", "kim@example.org", "--password", "correct horse")
    ann_token = cli(config, "token", "create", "ann", "--scope", "thing").stdout.strip()  # what the docs tell bloggers
    kim_token = cli(config, "token", "create", "kim").stdout.strip()
    node = Server(config, root / "serve.log", port=port)
    try:
        kim = requests.Session()
        kim.headers["Authorization"] = f"Bearer {kim_token}"
        deposit = kim.post(f"{node_url}/api/v1/deposits", json={"amount": 2000}, timeout=30)
        assert deposit.status_code == 201, deposit.text
        cli(config, "deposit", "confirm", deposit.json()["reference"])
        wp = WordPress(root, mu_plugin=MU_PLUGIN % port)
        try:
            wp.start()
            wp.install("Kim & Ann's kitchen")
            wp.activate_plugin()
            wp.submit_form(
                "options-general.php?page=flattr-node",
                "options.php",
                {
                    f"{OPTION}[node]": node_url,
                    f"{OPTION}[username]": "ann",
                    f"{OPTION}[token]": ann_token,
                    f"{OPTION}[append]": "1",
                    f"{OPTION}[script]": "1",
                },
            )
            yield SimpleNamespace(wp=wp, node=node_url, ann_token=ann_token, kim=kim, node_server=node)
        finally:
            wp.stop()
    finally:
        node.stop()


def node_thing(blog, url: str) -> dict | None:
    r = requests.get(f"{blog.node}/api/v1/things/lookup", params={"url": url}, timeout=30)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    return r.json()


def parents(doc) -> dict:
    return {child: parent for parent in doc.iter() for child in parent}


def classes(node) -> set[str]:
    return set((node.get("class") or "").split())


def buttons(doc) -> list:
    return [n for n in doc.iter("span") if "flattr-node" in classes(n)]


def content_box(doc):
    """The post's content container, in a classic theme and in a block theme."""
    boxes = [n for n in doc.iter("div") if classes(n) & {"entry-content", "wp-block-post-content"}]
    assert boxes, "no post content on the page"
    return boxes[0]


def payment_links(doc) -> list[str]:
    head = doc.find("head")
    return [n.get("href") for n in head.iter("link") if "payment" in (n.get("rel") or "").split()]


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_settings_page_never_shows_the_api_token(blog):
    wp = blog.wp
    page = wp.admin_page("options-general.php?page=flattr-node").text
    assert blog.ann_token not in page
    field = [n for n in parse(page).iter("input") if n.get("id") == "fn-token"][0]
    assert (field.get("type"), field.get("value") or "") == ("password", "")
    assert "saved" in field.get("placeholder")

    # Saving other settings with the token field left empty keeps the token:
    # a post published after it is still registered on the node.
    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[size]": "default"})
    assert blog.ann_token not in wp.admin_page("options-general.php?page=flattr-node").text
    post = wp.publish("Kept token", "<!-- wp:paragraph --><p>Still registered.</p><!-- /wp:paragraph -->")
    thing = node_thing(blog, post["link"])
    assert thing is not None and thing["owner"]["username"] == "ann"

    # "Remove the saved token": posts are not registered any more.
    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token_remove]": "1"})
    post = wp.publish("No token", "<!-- wp:paragraph --><p>Not registered.</p><!-- /wp:paragraph -->")
    assert node_thing(blog, post["link"]) is None
    field = [
        n for n in parse(wp.admin_page("options-general.php?page=flattr-node").text).iter("input") if n.get("id") == "fn-token"
    ][0]
    assert not field.get("placeholder")

    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token]": blog.ann_token})
    post = wp.publish("Token again", "<!-- wp:paragraph --><p>Registered again.</p><!-- /wp:paragraph -->")
    assert node_thing(blog, post["link"])["owner"]["username"] == "ann"


def test_a_post_reaches_the_node_with_its_title_as_text_and_shows_the_count(blog):
    wp = blog.wp
    post = wp.publish("Kim & Ann's <em>pie</em>", "<!-- wp:paragraph --><p>A recipe.</p><!-- /wp:paragraph -->")
    shown = "Kim & Ann\u2019s pie"  # as WordPress shows it (its curly apostrophe), not "&#038;" "&#8217;"
    thing = node_thing(blog, post["link"])
    assert thing["title"] == shown
    flattr = blog.kim.post(f"{blog.node}/api/v1/things/{thing['id']}/flattr", timeout=30)
    assert flattr.status_code == 201, flattr.text

    doc = parse(wp.get(post["link"]).text)
    [auto] = payment_links(doc)
    assert auto.startswith(blog.node + "/submit/auto?")
    assert query_of(auto) == {"user_id": "ann", "url": post["link"], "title": shown}

    [button] = buttons(doc)
    link = button.find("a")
    # The node knows the post as ann's thing: the button is that thing's, as on the node.
    assert link.get("href") == f"{blog.node}/things/{thing['id']}/flattr"
    assert link.get("data-flattr-thing") == str(thing["id"])
    assert link.get("data-flattr-node") == blog.node  # the origin, what the popup script compares
    assert "payment" in link.get("rel").split()
    assert link.find("img").get("src") == f"{blog.node}/things/{thing['id']}/badge.svg"
    assert link.find("img").get("alt") == f"Flattr this: {shown}"
    count = [n for n in button.iter("span") if n.get("data-flattr-count") is not None]
    assert [c.text for c in count] == ["1"]
    # Shown as the node's own button shows it (its oEmbed markup): the badge
    # carries the count for the eye, the text is for screen readers.
    own = requests.get(f"{blog.node}/oembed", params={"url": f"{blog.node}/things/{thing['id']}", "format": "json"}, timeout=30).json()
    own_count = [n for n in parse(own["html"]).iter("span") if n.get("data-flattr-count") is not None]
    assert [(c.text, c.get("style")) for c in own_count] == [("1", count[0].get("style"))]
    scripts = [s.get("src") for s in doc.iter("script") if s.get("src")]
    assert f"{blog.node}/button.js" in scripts

    # Taken back to draft and published again: the node has it already, nothing to say.
    for status in ("draft", "publish"):
        assert wp.rest("POST", f"/wp/v2/posts/{post['id']}", json={"status": status}).status_code == 200
    assert node_thing(blog, post["link"])["id"] == thing["id"]


def test_a_post_the_node_does_not_know_yet_gets_an_autosubmit_button_with_a_zero_count(blog):
    wp = blog.wp
    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token_remove]": "1"})
    try:
        post = wp.publish("Fresh & new", "<!-- wp:paragraph --><p>Nobody flattred it yet.</p><!-- /wp:paragraph -->")
        [button] = buttons(parse(wp.get(post["link"]).text))
        link = button.find("a")
        assert query_of(link.get("href")) == {"user_id": "ann", "url": post["link"], "title": "Fresh & new"}
        assert link.get("data-flattr-thing") is None
        assert [n.text for n in button.iter("span") if n.get("data-flattr-count") is not None] == ["0"]
    finally:
        wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token]": blog.ann_token})


@pytest.mark.parametrize("theme", THEMES)
def test_shortcodes_stay_inside_the_text_column(blog, theme):
    wp = blog.wp
    wp.eval_php(f"switch_theme('{theme}');")
    other = wp.publish("Another post", "<!-- wp:paragraph --><p>Registered.</p><!-- /wp:paragraph -->")
    other_thing = node_thing(blog, other["link"])
    other_id = other_thing["id"]
    block = (
        "<!-- wp:paragraph --><p>Before the button.</p><!-- /wp:paragraph -->\n\n"
        "<!-- wp:paragraph --><p>[flattr]</p><!-- /wp:paragraph -->\n\n"
        '<!-- wp:shortcode -->\n[flattr size="compact"]\n<!-- /wp:shortcode -->\n\n'
        f'<!-- wp:paragraph --><p>Inline [flattr id="{other_id}" size="compact"] and after.</p><!-- /wp:paragraph -->\n\n'
        '<!-- wp:paragraph --><p>[flattr url="https://elsewhere.example/a?b=1&amp;c=2" title="Elsewhere &amp; beyond"]</p><!-- /wp:paragraph -->'
    )
    classic = 'Before the button.\n\n[flattr]\n\nAfter the button.\n\nInline [flattr size="compact"] in a sentence.'
    for content in (block, classic):
        post = wp.publish(f"Shortcodes in {theme}", content)
        doc = parse(wp.get(post["link"]).text)
        up = parents(doc)
        box = content_box(doc)
        found = buttons(doc)
        assert len(found) == (4 if content is block else 2), post["link"]
        for button in found:
            # Inside a paragraph of the post (the theme's text column), never loose in the container.
            assert up[button].tag == "p" and up[up[button]] is box, (theme, up[button].tag, classes(up[button]))

        if content is block:
            by_id = [b.find("a") for b in found if b.find("a").get("data-flattr-thing") == str(other_id)]
            assert by_id and by_id[0].get("href") == f"{blog.node}/things/{other_id}/flattr"
            assert by_id[0].get("data-flattr-url") == other_thing["url"]  # the thing's URL, not this post's
            assert by_id[0].find("img").get("src") == f"{blog.node}/things/{other_id}/badge.svg?size=compact"
            elsewhere = [
                b.find("a") for b in found if b.find("a").get("data-flattr-url") == "https://elsewhere.example/a?b=1&c=2"
            ]
            assert query_of(elsewhere[0].get("href")) == {
                "user_id": "ann",
                "url": "https://elsewhere.example/a?b=1&c=2",
                "title": "Elsewhere & beyond",
            }


@pytest.mark.browser
@pytest.mark.parametrize("theme", THEMES)
def test_in_chromium_the_button_lines_up_with_the_text(blog, theme, tmp_path):
    """What a reader sees on a wide screen: the button of a [flattr] alone in
    its paragraph starts where the post's text starts."""
    need_chromium()
    wp = blog.wp
    wp.eval_php(f"switch_theme('{theme}');")
    post = wp.publish(
        f"Lined up in {theme}",
        "<!-- wp:paragraph --><p>The text of the post.</p><!-- /wp:paragraph -->\n\n<!-- wp:paragraph --><p>[flattr]</p><!-- /wp:paragraph -->",
    )
    driver = chromium(tmp_path / "profile", window="1280,900")
    try:
        driver.get(post["link"])
        text, button = driver.execute_script(
            "var p = Array.from(document.querySelectorAll('p')).filter(function (e) { return e.textContent.trim() === 'The text of the post.'; })[0];"
            "var b = document.querySelector('.flattr-node');"
            "return [p.getBoundingClientRect().left, b.getBoundingClientRect().left];"
        )
    finally:
        driver.quit()
    assert abs(text - button) <= 1, f"in {theme} the text starts at x={text} and the button at x={button}"


def test_shortcode_attributes_cannot_inject_markup_or_other_schemes(blog):
    wp = blog.wp
    content = (
        '<!-- wp:paragraph --><p>A [flattr url="javascript:alert(1)"] b</p><!-- /wp:paragraph -->\n\n'
        '<!-- wp:paragraph --><p>[flattr url="https://x.example/p" title="&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" size="huge\'onclick=alert(3)"]</p><!-- /wp:paragraph -->'
    )
    post = wp.publish("Hostile attributes", content)
    text = wp.get(post["link"]).text
    doc = parse(text)
    assert not [s for s in doc.iter("script") if "alert" in (s.text or "")]
    assert not [n for n in doc.iter() if any(k.startswith("on") for k in n.keys())]
    [button] = buttons(doc)  # nothing at all for the javascript: URL
    link = button.find("a")
    assert link.get("data-flattr-url") == "https://x.example/p"
    assert link.find("img").get("alt") == 'Flattr this: "><script>alert(2)</script>'  # as text
    assert query_of(link.get("href"))["title"] == '"><script>alert(2)</script>'
    assert classes(button) == {"flattr-node", "flattr-node-default"}


def test_the_home_page_links_to_the_profile_and_the_node_verifies_the_blog(blog):
    wp = blog.wp
    # The node's own word for ann's profile: the author_url of its oEmbed.
    post = wp.publish("For the profile", "<!-- wp:paragraph --><p>x</p><!-- /wp:paragraph -->")
    thing = node_thing(blog, post["link"])
    oembed = requests.get(
        f"{blog.node}/oembed", params={"url": f"{blog.node}/things/{thing['id']}", "format": "json"}, timeout=30
    )
    profile = oembed.json()["author_url"]
    assert payment_links(parse(wp.get("/").text)) == [profile]
    assert requests.get(profile, timeout=30).status_code == 200  # a page readers can open

    # ann asks the node to verify the blog: it reads the home page and finds the link.
    ann = requests.Session()
    signin = parse(ann.get(f"{blog.node}/signin", timeout=30).text)
    token = [n.get("value") for n in signin.iter("input") if n.get("name") == "csrf_token"][0]
    r = ann.post(
        f"{blog.node}/signin",
        data={"csrf_token": token, "username": "ann", "password": "correct horse"},
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    page = parse(ann.get(f"{blog.node}/sites", timeout=30).text)
    token = [n.get("value") for n in page.iter("input") if n.get("name") == "csrf_token"][0]
    r = ann.post(f"{blog.node}/sites", data={"csrf_token": token, "url": wp.url + "/"}, timeout=60, allow_redirects=False)
    assert r.status_code == 302, r.text
    assert f"127.0.0.1:{wp.port}" in ann.get(f"{blog.node}/sites", timeout=30).text


def test_feeds_carry_payment_links_with_plain_titles(blog):
    wp = blog.wp
    post = wp.publish("Feeds & <b>friends</b>", "<!-- wp:paragraph --><p>In the feeds.</p><!-- /wp:paragraph -->")
    atom_ns = "{http://www.w3.org/2005/Atom}"
    rss = etree.fromstring(wp.get("/?feed=rss2").content)
    items = {i.findtext("link"): i for i in rss.iter("item")}
    links = [a for a in items[post["link"]].iter(atom_ns + "link") if a.get("rel") == "payment"]
    assert len(links) == 1 and links[0].get("type") == "text/html"
    assert query_of(links[0].get("href")) == {"user_id": "ann", "url": post["link"], "title": "Feeds & friends"}

    atom = etree.fromstring(wp.get("/?feed=atom").content)
    entries = {e.find(atom_ns + "link[@rel='alternate']").get("href"): e for e in atom.iter(atom_ns + "entry")}
    links = [a for a in entries[post["link"]].iter(atom_ns + "link") if a.get("rel") == "payment"]
    assert len(links) == 1
    assert query_of(links[0].get("href")) == {"user_id": "ann", "url": post["link"], "title": "Feeds & friends"}


def test_a_thing_page_url_alone_on_its_line_embeds_the_nodes_button(blog):
    wp = blog.wp
    other = wp.publish("To embed", "<!-- wp:paragraph --><p>x</p><!-- /wp:paragraph -->")
    thing = node_thing(blog, other["link"])
    page_url = f"{blog.node}/things/{thing['id']}"
    post = wp.publish("Embeds", f"Look:\n\n{page_url}\n\nThat was it.")
    doc = parse(wp.get(post["link"]).text)
    embedded = [a for a in doc.iter("a") if a.get("href") == f"{page_url}/flattr"]
    assert embedded, "the node's oEmbed button is not in the post"
    assert embedded[0].find("img").get("src").startswith(f"{page_url}/badge.svg")


def test_the_debug_log_has_nothing_from_the_plugin(blog):
    wp = blog.wp
    for path in ("/", "/?feed=rss2", "/?feed=atom"):
        wp.get(path)
    wp.admin_page("options-general.php?page=flattr-node")
    assert wp.debug_messages("flattr-node") == [] and wp.debug_messages("flattr_node") == []


def test_when_the_node_sleeps_or_refuses_the_blog_works_and_the_log_says_why(blog):
    """Runs last: it leaves two lines in the debug log on purpose."""
    wp = blog.wp
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[node]": dead})
    try:
        post = wp.publish("While the node sleeps", "<!-- wp:paragraph --><p>Still published.</p><!-- /wp:paragraph -->")
        [button] = buttons(parse(wp.get(post["link"]).text))
        link = button.find("a")
        assert link.get("href").startswith(dead + "/submit/auto?") and link.get("data-flattr-node") == dead
        # The count is not known: shown empty, never a made-up 0.
        assert [n.text for n in button.iter("span") if n.get("data-flattr-count") is not None] == [None]
        [line] = wp.debug_messages("flattr-node")
        assert f"flattr-node: cannot register {post['link']} on {dead}: " in line, line
    finally:
        wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[node]": blog.node})

    wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token]": "fn_not_a_token"})
    try:
        post = wp.publish("With a wrong token", "<!-- wp:paragraph --><p>Refused.</p><!-- /wp:paragraph -->")
        assert node_thing(blog, post["link"]) is None
        line = wp.debug_messages("flattr-node")[-1]
        assert f"flattr-node: {blog.node} did not register {post['link']}: " in line and line.endswith("(HTTP 401)"), line
    finally:
        wp.submit_form("options-general.php?page=flattr-node", "options.php", {f"{OPTION}[token]": blog.ann_token})
