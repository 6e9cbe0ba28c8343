"""plugin_bridge: markup for Flattr buttons, importable without running a node.

Pure functions from a thing (`ThingRef`) or an auto-submit request
(`AutoSubmit`) to markup: the button, the badge, rel="payment" links, oEmbed
documents and platform snippets; plus `NodeClient`, a small requests client
for blog platforms. See docs/buttons.md.
"""

from .markup import (
    SIZES,
    AutoSubmit,
    ThingRef,
    badge_svg,
    button_html,
    oembed,
    oembed_json,
    oembed_links,
    oembed_xml,
    payment_link_atom,
    payment_link_head,
    payment_link_rss,
    popup_script,
    safe_url,
    script_tag,
)
from .snippets import PLATFORMS, snippet, template_snippet

__all__ = [
    "PLATFORMS",
    "SIZES",
    "AutoSubmit",
    "ThingRef",
    "badge_svg",
    "button_html",
    "oembed",
    "oembed_json",
    "oembed_links",
    "oembed_xml",
    "payment_link_atom",
    "payment_link_head",
    "payment_link_rss",
    "popup_script",
    "safe_url",
    "script_tag",
    "snippet",
    "template_snippet",
]
