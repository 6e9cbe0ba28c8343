"""Server-rendered pages. The dashboard and thing pages grow here."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from .. import periods
from ..models import utcnow
from ..services import closing

bp = Blueprint("web", __name__, template_folder="../templates")


@bp.get("/")
def index():
    cfg = current_app.config["NODE"]
    period = periods.name_of(utcnow(), cfg.tz)
    return render_template("index.html", cfg=cfg, period=closing.period_summary(cfg, period))


@bp.get("/healthz")
def healthz():
    return {"ok": True}


from . import auth  # noqa: E402,F401  (registers its routes on bp)
