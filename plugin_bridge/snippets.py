"""Snippets to paste into a blog platform, for one post or for every post.

`snippet(platform, target)` gives the markup for one thing or one auto-submit
URL. `template_snippet(platform, node, user_id)` gives a theme/template
fragment that makes an auto-submit button for every post, with the platform's
own placeholders for the post's URL and title.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from .markup import AutoSubmit, ThingRef, _node, button_html, payment_link_head, script_tag

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")  # the node's rule for usernames
PLATFORMS = ("html", "markdown", "wordpress", "blogger", "tumblr", "hugo", "jekyll")


def _check(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}")


def _md_text(text: str) -> str:
    """Text inside Markdown link brackets: escape brackets, backslashes and HTML."""
    text = html.escape(text, quote=True)
    for ch in "\\[]()*_`":
        text = text.replace(ch, "\\" + ch)
    return text


def _sc(text: str) -> str:
    """A WordPress shortcode attribute value: quotes and brackets would end it."""
    return html.escape(text, quote=True).replace("[", "&#91;").replace("]", "&#93;")


def _md_url(url: str) -> str:
    return quote(url, safe=":/?&=%#+,;@!$'*~.-_")  # no spaces, no parentheses


def snippet(platform: str, target: ThingRef | AutoSubmit, size: str = "default", with_script: bool = True) -> str:
    """What to paste for one post."""
    _check(platform)
    title = target.title if isinstance(target, ThingRef) else target.display_title
    if platform == "markdown":
        return f"[![{_md_text('Flattr this: ' + title)}]({_md_url(target.badge_url(size))})]({_md_url(target.confirm_url)})\n"
    if platform == "wordpress":
        # With the plugin, a shortcode; the attributes are quoted and escaped.
        if isinstance(target, ThingRef):
            return f'[flattr id="{int(target.id)}" size="{size}"]\n'
        return f'[flattr url="{_sc(target.url)}" title="{_sc(title)}" size="{size}"]\n'
    parts = [payment_link_head(target), button_html(target, size)]
    if with_script:
        parts.append(script_tag(target.node))
    if platform in ("hugo", "jekyll"):
        # Pasted into a post, text in {{ }} or {% %} would run as Go template
        # or Liquid: a title's braces become character references, which a
        # browser reads back as braces. The snippet's own markup has none.
        return "\n".join(parts).replace("{", "&#123;").replace("}", "&#125;") + "\n"
    if platform == "html":
        return "\n".join(parts) + "\n"
    if platform == "blogger":
        # Blogger's layout editor is XHTML: close the void elements.
        # Attribute values are escaped, so no raw '>' sits inside a tag.
        return re.sub(r"(<(?:link|img)\b[^>]*?)>", r"\1/>", "\n".join(parts)) + "\n"
    # tumblr: the same markup in a text post's HTML
    return "\n".join(parts) + "\n"


def template_snippet(platform: str, node: str, user_id: str, size: str = "default") -> str:
    """A theme fragment that puts an auto-submit button on every post."""
    _check(platform)
    node = _node(node)
    if not isinstance(user_id, str) or not USERNAME.match(user_id):
        raise ValueError("user_id must be a username on the node (2-40 of a-z 0-9 . _ -)")
    user = quote(user_id, safe="")
    base = f"{node}/submit/auto?user_id={user}"
    badge = f"{node}/badge.svg"
    img = '"56" height="64"' if size == "default" else '"110" height="20"'
    compact = "&amp;size=compact" if size == "compact" else ""
    if platform == "hugo":
        return (
            "{{/* layouts/partials/flattr.html: {{ partial \"flattr.html\" . }} in single.html */}}\n"
            f'<link rel="payment" type="text/html" href="{html.escape(base)}&amp;url={{{{ .Permalink | urlquery }}}}&amp;title={{{{ .Title | urlquery }}}}">\n'
            f'<a class="flattr-node-button" rel="payment" data-flattr-node="{html.escape(node)}" data-flattr-url="{{{{ .Permalink }}}}"'
            f' href="{html.escape(base)}&amp;url={{{{ .Permalink | urlquery }}}}&amp;title={{{{ .Title | urlquery }}}}">'
            f'<img src="{html.escape(badge)}?url={{{{ .Permalink | urlquery }}}}{compact}" width={img} alt="Flattr this"></a>\n'
            f'<script src="{html.escape(node)}/button.js" async></script>\n'
        )
    if platform == "jekyll":
        return (
            "{% comment %} _includes/flattr.html: {% include flattr.html %} in _layouts/post.html {% endcomment %}\n"
            f'<link rel="payment" type="text/html" href="{html.escape(base)}&amp;url={{{{ page.url | absolute_url | url_encode }}}}&amp;title={{{{ page.title | url_encode }}}}">\n'
            f'<a class="flattr-node-button" rel="payment" data-flattr-node="{html.escape(node)}" data-flattr-url="{{{{ page.url | absolute_url }}}}"'
            f' href="{html.escape(base)}&amp;url={{{{ page.url | absolute_url | url_encode }}}}&amp;title={{{{ page.title | url_encode }}}}">'
            f'<img src="{html.escape(badge)}?url={{{{ page.url | absolute_url | url_encode }}}}{compact}" width={img} alt="Flattr this"></a>\n'
            f'<script src="{html.escape(node)}/button.js" async></script>\n'
        )
    if platform == "tumblr":
        return (
            "<!-- Theme HTML, inside {block:Posts}: Tumblr gives the permalink URL-encoded -->\n"
            f'<a class="flattr-node-button" rel="payment" data-flattr-node="{html.escape(node)}" data-flattr-url="{{Permalink}}"'
            f' href="{html.escape(base)}&amp;url={{URLEncodedPermalink}}">'
            f'<img src="{html.escape(badge)}?url={{URLEncodedPermalink}}{compact}" width={img} alt="Flattr this"/></a>\n'
            f'<script src="{html.escape(node)}/button.js" async></script>\n'
        )
    if platform == "blogger":
        return (
            "<!-- Layout > Edit HTML, inside the post template (b:includable id='post') -->\n"
            f"<a class='flattr-node-button' rel='payment' data-flattr-node='{html.escape(node)}' expr:data-flattr-url='data:post.url'"
            f" expr:href='&quot;{html.escape(base)}&amp;url=&quot; + data:post.url.escaped + &quot;&amp;title=&quot; + data:post.title.escaped'>"
            f"<img expr:src='&quot;{html.escape(badge)}?url=&quot; + data:post.url.escaped' width={img.replace(chr(34), chr(39))} alt='Flattr this'/></a>\n"
            f"<script async='async' src='{html.escape(node)}/button.js'/>\n"
        )
    if platform == "wordpress":
        return (
            "Install plugin_bridge/wordpress/flattr-node.php (Plugins > Add New > Upload),\n"
            f"then under Settings > flattr-node set the node to {node} and your username to {user_id}.\n"
            "Every post then gets the button and rel=\"payment\" links in its head and feeds.\n"
        )
    # html / markdown: no template language, so one URL per post
    raise ValueError(f"{platform} has no template language: make one snippet per post with --url")
