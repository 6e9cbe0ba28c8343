"""plugin_bridge: pure markup functions (checked with real parsers), the
platform snippets, the requests client against a live node, and the
WordPress plugin (php -l)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import html5lib
import pytest
from live import serve_node

import plugin_bridge as pb
from flattr_node.services import flattring, things
from plugin_bridge.client import NodeClient, NodeError

NODE = "https://node.example"
THING = pb.ThingRef(NODE, 7, "https://blog.example/2026/hello", "Hello world", "ann", 3)
AUTO = pb.AutoSubmit(NODE, "ann", "https://blog.example/2026/new?x=1&y=2", "New post", category="text", tags=("a", "b"))
NS = {"h": "http://www.w3.org/1999/xhtml"}


def fragment(markup: str):
    return html5lib.parseFragment(markup, namespaceHTMLElements=False)


def test_button_is_a_link_to_the_confirmation_page_around_the_badge():
    for size, (w, h) in pb.SIZES.items():
        doc = fragment(pb.button_html(THING, size))
        link = doc.find(".//a")
        assert link.get("href") == "https://node.example/things/7/flattr"
        assert link.get("data-flattr-thing") == "7"
        assert link.get("data-flattr-node") == "https://node.example"
        assert "payment" in link.get("rel").split()
        img = link.find("img")
        assert img.get("src") == "https://node.example/things/7/badge.svg" + ("?size=compact" if size == "compact" else "")
        assert (img.get("width"), img.get("height")) == (str(w), str(h))
        assert img.get("alt") == "Flattr this: Hello world"
        count = doc.find(".//span[@data-flattr-count]")
        assert count.text == "3"
    with pytest.raises(ValueError, match="size"):
        pb.button_html(THING, "huge")


def test_autosubmit_button_carries_flattrs_parameters():
    link = fragment(pb.button_html(AUTO)).find(".//a")
    parts = urlsplit(link.get("href"))
    assert parts.path == "/submit/auto"
    assert parse_qs(parts.query) == {
        "user_id": ["ann"],
        "url": ["https://blog.example/2026/new?x=1&y=2"],
        "title": ["New post"],
        "category": ["text"],
        "tags": ["a,b"],
    }
    img = link.find("img")
    assert parse_qs(urlsplit(img.get("src")).query) == {"url": ["https://blog.example/2026/new?x=1&y=2"]}


def test_payment_links_for_head_rss_and_atom():
    head = fragment(pb.payment_link_head(THING)).find("link")
    assert (head.get("rel"), head.get("href"), head.get("type")) == ("payment", "https://node.example/things/7", "text/html")
    rss = ET.fromstring(f'<item xmlns:atom="http://www.w3.org/2005/Atom">{pb.payment_link_rss(AUTO)}</item>')
    link = rss.find("{http://www.w3.org/2005/Atom}link")
    assert link.get("rel") == "payment" and link.get("type") == "text/html"
    assert parse_qs(urlsplit(link.get("href")).query)["url"] == ["https://blog.example/2026/new?x=1&y=2"]
    atom = ET.fromstring(f'<entry xmlns="http://www.w3.org/2005/Atom">{pb.payment_link_atom(THING)}</entry>')
    assert atom.find("{http://www.w3.org/2005/Atom}link").get("href") == "https://node.example/things/7"


def test_oembed_documents_json_and_xml_agree():
    doc = pb.oembed(THING)
    assert doc["version"] == "1.0" and doc["type"] == "rich"
    assert (doc["width"], doc["height"]) == pb.SIZES["default"]
    assert doc["author_url"] == "https://node.example/users/ann"
    root = ET.fromstring(pb.oembed_xml(doc).encode())
    assert root.tag == "oembed"
    assert {child.tag: child.text for child in root} == {k: str(v) for k, v in doc.items()}
    assert fragment(root.find("html").text).find(".//a").get("href") == "https://node.example/things/7/flattr"


@pytest.mark.parametrize(
    "maxwidth,maxheight,expect",
    [(None, None, ("default", 56, 64)), (200, 30, ("compact", 110, 20)), (40, None, ("default", 40, 45)), (50, 10, ("compact", 50, 9))],
)
def test_oembed_obeys_maxwidth_and_maxheight(maxwidth, maxheight, expect):
    size, w, h = pb.markup.fit("default", maxwidth, maxheight)
    assert (size, w, h) == expect
    doc = pb.oembed(THING, maxwidth=maxwidth, maxheight=maxheight)
    assert doc["width"] <= (maxwidth or 10**6) and doc["height"] <= (maxheight or 10**6)
    img = fragment(doc["html"]).find(".//img")
    assert (int(img.get("width")), int(img.get("height"))) == (doc["width"], doc["height"])


def test_badge_is_plain_svg_with_the_count():
    for size in pb.SIZES:
        root = ET.fromstring(pb.badge_svg(1234, size))
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert "1234" in texts and "Flattr" in texts
        assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


@pytest.mark.parametrize("platform", pb.PLATFORMS)
def test_every_platform_has_a_snippet_for_a_thing_and_an_autosubmit_url(platform):
    for target in (THING, AUTO):
        text = pb.snippet(platform, target)
        if platform == "wordpress":
            assert text.startswith("[flattr ")
        elif platform == "markdown":
            assert f"]({target.confirm_url})" in text.replace("%2C", ",") or target.confirm_url.split("?")[0] in text
        else:
            links = [a for a in fragment(text).iter("a")]
            assert links and links[0].get("href") == target.confirm_url
    if platform in ("html", "markdown"):
        with pytest.raises(ValueError, match="no template language"):
            pb.template_snippet(platform, NODE, "ann")
    else:
        assert "ann" in pb.template_snippet(platform, NODE, "ann")


def test_blogger_snippet_is_well_formed_xml():
    ET.fromstring(f"<div>{pb.snippet('blogger', THING, with_script=False)}</div>")


def test_template_snippets_use_the_platforms_own_placeholders():
    assert "{{ .Permalink | urlquery }}" in pb.template_snippet("hugo", NODE, "ann")
    assert "{{ page.url | absolute_url | url_encode }}" in pb.template_snippet("jekyll", NODE, "ann")
    assert "{URLEncodedPermalink}" in pb.template_snippet("tumblr", NODE, "ann")
    assert "data:post.url" in pb.template_snippet("blogger", NODE, "ann")
    ET.fromstring(f"<div xmlns:expr='x'>{pb.template_snippet('blogger', NODE, 'ann').split(chr(10), 1)[1]}</div>")


def test_markup_refuses_urls_that_are_not_http():
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example/x", "ftp://x.example/", "https://a b.example/"):
        with pytest.raises(ValueError):
            pb.button_html(pb.AutoSubmit(NODE, "ann", bad))
        with pytest.raises(ValueError):
            pb.button_html(pb.ThingRef(bad, 1, "https://x.example/", "t", "ann"))


# --- the client, against a live node ------------------------------------------


def test_client_registers_a_post_and_fetches_its_button(cfg, make_user):
    ann, kim = make_user("ann"), make_user("kim", 500)
    from flattr_node.services import people

    token = people.create_token(ann, "blog")
    with serve_node(cfg) as (live, _app):
        client = NodeClient(live.base_url, token, timeout=5)
        thing = client.register_post("https://ann.example/2026/first", "First post", description="hi")
        assert thing["owner"]["username"] == "ann" and thing["title"] == "First post"
        # Publishing again (an edit, a retry) finds the same thing.
        assert client.register_post("https://ann.example/2026/first", "First post")["id"] == thing["id"]
        flattring.flattr_thing(live, kim, thing["id"])
        markup = client.button(thing["id"], "compact")
        assert fragment(markup).find(".//span[@data-flattr-count]").text == "1"
        assert f"{live.base_url}/things/{thing['id']}/flattr" in markup

        with pytest.raises(NodeError) as e:
            client.register_post("https://ann.example/2026/x", "")
        assert (e.value.code, e.value.status) == ("validation", 422)
        with pytest.raises(NodeError) as e:
            NodeClient(live.base_url, "fn_wrong", timeout=5).register_post("https://ann.example/y", "Y")
        assert (e.value.code, e.value.status) == ("unauthorized", 401)
        with pytest.raises(NodeError) as e:
            client.thing(999999)
        assert e.value.code == "not_found"
    # The node is gone: a clear error, quickly.
    with pytest.raises(NodeError) as e:
        NodeClient(live.base_url, token, timeout=2).thing(1)
    assert e.value.code == "unreachable"
    assert things.lookup("https://ann.example/2026/first").title == "First post"


# --- the WordPress plugin ---------------------------------------------------------

PLUGIN = Path(__file__).resolve().parent.parent / "plugin_bridge" / "wordpress" / "flattr-node.php"
# PHP runs the same whatever database the node uses: once, in the SQLite pass.


@pytest.mark.sqlite_only
def test_wordpress_plugin_passes_php_lint():
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI") == "true":
            pytest.fail("php is not installed, and CI must lint the WordPress plugin")
        pytest.skip("php is not installed (apt-get install php-cli) — cannot lint the WordPress plugin")
    result = subprocess.run([php, "-l", str(PLUGIN)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax errors detected" in result.stdout


def test_wordpress_plugin_does_what_the_docs_say():
    text = PLUGIN.read_text()
    assert "Plugin Name: flattr-node" in text
    for needle in ("wp_oembed_add_provider", "add_shortcode( 'flattr'", "the_content", "wp_head", "rss2_item", "atom_entry", "esc_url", "esc_attr"):
        assert needle in text, needle


# --- flattr-node snippet -----------------------------------------------------------


def run_cli(cfg, tmp_path, *args):
    from click.testing import CliRunner

    from flattr_node.cli import main

    config = tmp_path / "node.toml"
    config.write_text(f'database = "{cfg.database}"\nbase_url = "{cfg.base_url}"\nsecret_key = "s"\nscheduler = false\n')
    return CliRunner().invoke(main, ["--config", str(config), "snippet", *args])


def test_snippet_command_prints_markup_to_paste(cfg, make_user, tmp_path):
    from flattr_node.cli import snippet as snippet_command

    assert tuple([c for c in snippet_command.params if c.name == "platform"][0].type.choices) == pb.PLATFORMS
    ann = make_user("ann")
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "Ann's <post>"})

    result = run_cli(cfg, tmp_path, "--platform", "html", "--thing", str(thing.id))
    assert result.exit_code == 0, result.output
    doc = fragment(result.output)
    assert doc.find(".//a").get("href") == f"http://node.test/things/{thing.id}/flattr"
    assert doc.find(".//script").get("src") == "http://node.test/button.js"
    assert doc.find(".//img").get("alt") == "Flattr this: Ann's <post>" and "<post>" not in result.output

    result = run_cli(cfg, tmp_path, "--platform", "markdown", "--url", "https://ann.example/new", "--user", "ann", "--size", "compact")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("[![Flattr this: https://ann.example/new](http://node.test/badge.svg?url=")
    assert "size=compact" in result.output and "/submit/auto?user_id=ann" in result.output

    result = run_cli(cfg, tmp_path, "--platform", "wordpress", "--thing", str(thing.id))
    assert result.output == f'[flattr id="{thing.id}" size="default"]\n'
    result = run_cli(cfg, tmp_path, "--platform", "hugo", "--user", "ann")
    assert result.exit_code == 0 and "{{ .Permalink | urlquery }}" in result.output
    result = run_cli(cfg, tmp_path, "--platform", "html", "--thing", str(thing.id), "--no-script")
    assert "<script" not in result.output

    # Mistakes: one clear line on stderr, exit 1, no traceback.
    for args, words in (
        (("--platform", "html"), "give either a thing id"),
        (("--platform", "html", "--thing", "999"), "no thing with id 999"),
        (("--platform", "html", "--user", "ghost", "--url", "https://x.example/"), "no person called 'ghost'"),
        (("--platform", "html", "--user", "ann", "--url", "javascript:alert(1)"), "must be an http:// or https:// URL"),
        (("--platform", "html", "--user", "ann"), "no template language"),
        (("--platform", "html", "--thing", str(thing.id), "--user", "ann"), "give either a thing id"),
    ):
        result = run_cli(cfg, tmp_path, *args)
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output and "Traceback" not in result.output, result.output
    assert run_cli(cfg, tmp_path, "--platform", "myspace", "--thing", "1").exit_code == 2


# Minimal stand-ins for the WordPress functions the plugin calls, enough to run
# its markup functions in the PHP CLI (php -l alone does not catch a wrong
# sprintf or a misspelt call). WordPress itself is not installed here.
WP_STUBS = r"""<?php
define('ABSPATH', '/');
$GLOBALS['wp_options'] = array();
$GLOBALS['wp_hooks'] = array();
function get_option($name, $default = false) { return isset($GLOBALS['wp_options'][$name]) ? $GLOBALS['wp_options'][$name] : $default; }
function wp_parse_args($args, $defaults) { return array_merge($defaults, $args); }
function untrailingslashit($s) { return rtrim($s, '/\\'); }
function esc_url_raw($url, $protocols = null) {
    $url = trim($url);
    $scheme = strtolower((string) parse_url($url, PHP_URL_SCHEME));
    return in_array($scheme, $protocols ? $protocols : array('http', 'https'), true) ? $url : '';
}
function esc_url($url) { return htmlspecialchars(esc_url_raw($url), ENT_QUOTES, 'UTF-8'); }
function esc_attr($s) { return htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8'); }
function esc_html_e($s) { echo htmlspecialchars($s, ENT_QUOTES, 'UTF-8'); }
function __($s, $domain = '') { return $s; }
function wp_strip_all_tags($s) { return trim(strip_tags($s)); }
function absint($n) { return abs(intval($n)); }
function add_shortcode($tag, $fn) { $GLOBALS['wp_hooks']['shortcode:' . $tag] = $fn; }
function add_filter($hook, $fn, $p = 10, $n = 1) { $GLOBALS['wp_hooks'][$hook] = $fn; }
function add_action($hook, $fn, $p = 10, $n = 1) { $GLOBALS['wp_hooks'][$hook] = $fn; }
function shortcode_atts($defaults, $atts, $tag = '') { return array_merge($defaults, array_intersect_key((array) $atts, $defaults)); }
function get_post() { return (object) array('ID' => 1, 'post_type' => 'post'); }
function get_permalink($post = null) { return 'https://blog.example/2026/hello?a=1&b="x"'; }
function get_the_title($post = null) { return 'Hello <script>alert(1)</script> "quoted"'; }
function get_the_title_rss() { return get_the_title(); }
function wp_enqueue_script() {}
function wp_parse_url($url, $component = -1) { return parse_url($url, $component); }
function esc_html($s) { return htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8'); }
// The node's answer, as kept by the plugin: it has no thing for the URL yet.
function get_transient($key) { return array('thing' => array('id' => 0, 'count' => 0, 'owner' => '', 'url' => '')); }
function set_transient($key, $value, $ttl = 0) {}
"""


@pytest.mark.sqlite_only
def test_wordpress_plugin_markup_runs_and_escapes(tmp_path):
    php = shutil.which("php")
    if php is None:
        if os.environ.get("CI") == "true":
            pytest.fail("php is not installed, and CI must run the WordPress plugin")
        pytest.skip("php is not installed (apt-get install php-cli)")
    script = tmp_path / "run.php"
    script.write_text(
        WP_STUBS
        + f"require '{PLUGIN}';\n"
        + r"""$GLOBALS['wp_options'][FLATTR_NODE_OPTION] = array('node' => 'https://node.example/', 'username' => 'ann');
echo flattr_node_button(get_permalink(), get_the_title(), 'default'), "\n---\n";
echo flattr_node_shortcode(array('id' => '12', 'size' => 'compact')), "\n---\n";
flattr_node_rss_item(); echo "---\n";
flattr_node_atom_entry(); echo "---\n";
$GLOBALS['wp_options'][FLATTR_NODE_OPTION]['node'] = 'https://Node.Example:8443/flattr/';
echo flattr_node_button(get_permalink(), 'x'), "\n---\n";
$GLOBALS['wp_options'][FLATTR_NODE_OPTION]['node'] = 'HTTPS://node.example:443';
echo flattr_node_button(get_permalink(), 'x'), "\n---\n";
$GLOBALS['wp_options'][FLATTR_NODE_OPTION]['node'] = 'javascript:alert(1)';
echo '[', flattr_node_button(get_permalink(), 'x'), "]\n";
"""
    )
    result = subprocess.run([php, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Warning" not in result.stdout and not result.stderr, result.stdout + result.stderr
    auto, by_id, rss, atom, under_a_path, default_port, refused = result.stdout.split("---\n")

    link = fragment(auto).find(".//a")
    query = parse_qs(urlsplit(link.get("href")).query)
    assert link.get("href").startswith("https://node.example/submit/auto?")
    assert query == {"user_id": ["ann"], "url": ['https://blog.example/2026/hello?a=1&b="x"'], "title": ['Hello alert(1) "quoted"']}
    assert fragment(auto).find(".//script") is None
    assert fragment(auto).find(".//img").get("alt") == 'Flattr this: Hello alert(1) "quoted"'
    assert link.get("data-flattr-node") == "https://node.example"  # the origin, no trailing slash
    assert fragment(auto).find(".//span[@data-flattr-count]").text == "0"

    link = fragment(by_id).find(".//a")
    assert (link.get("href"), link.get("data-flattr-thing")) == ("https://node.example/things/12/flattr", "12")
    assert link.find("img").get("src") == "https://node.example/things/12/badge.svg?size=compact"

    item = ET.fromstring(f'<item xmlns:atom="http://www.w3.org/2005/Atom">{rss}</item>').find("{http://www.w3.org/2005/Atom}link")
    assert item.get("rel") == "payment" and parse_qs(urlsplit(item.get("href")).query)["user_id"] == ["ann"]
    entry = ET.fromstring(f'<entry xmlns="http://www.w3.org/2005/Atom">{atom}</entry>').find("{http://www.w3.org/2005/Atom}link")
    assert entry.get("href") == item.get("href")
    link = fragment(under_a_path).find(".//a")
    assert link.get("href").startswith("https://Node.Example:8443/flattr/submit/auto?")
    assert link.get("data-flattr-node") == "https://node.example:8443"  # a node under a path: its origin
    assert fragment(default_port).find(".//a").get("data-flattr-node") == "https://node.example"  # as a browser writes it
    assert refused.strip() == "[]"  # a node address that is not http(s) gives no button at all
