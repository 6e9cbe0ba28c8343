"""Community pages: a public profile per person and the directory of creators."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..models import CATEGORIES
from ..services import community
from . import bp, node


@bp.get("/users/<username>")
def profile(username: str):
    """A person's one public address: owner links, oEmbed's author_url and
    the rel="payment" link that verifies a site all point here."""
    return render_template("community/profile.html", profile=community.profile(node(), username))


@bp.get("/people/<username>")
def old_profile(username: str):
    """Where profiles first lived: links to it keep working."""
    return redirect(url_for("web.profile", username=username), 301)


@bp.get("/directory")
def directory():
    q = request.args.get("q", "")
    category = request.args.get("category", "")
    tag = request.args.get("tag", "")
    creators = community.directory(node(), q, category, tag)
    return render_template("community/directory.html", creators=creators, q=q, category=category, tag=tag, categories=CATEGORIES)
