"""Community pages: a public profile per person and the directory of creators."""

from __future__ import annotations

from flask import render_template, request

from ..models import CATEGORIES
from ..services import community
from . import bp, node


@bp.get("/people/<username>")
def profile(username: str):
    return render_template("community/profile.html", profile=community.profile(node(), username))


@bp.get("/directory")
def directory():
    q = request.args.get("q", "")
    category = request.args.get("category", "")
    tag = request.args.get("tag", "")
    creators = community.directory(node(), q, category, tag)
    return render_template("community/directory.html", creators=creators, q=q, category=category, tag=tag, categories=CATEGORIES)
