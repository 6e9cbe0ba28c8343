"""Every page of the `web` blueprint is in docs/dashboard.md."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "dashboard.md"


def test_every_web_route_is_documented(app):
    doc = DOC.read_text()
    documented = set(re.findall(r"`(?:POST )?(/[^` ]*)`", doc))
    # "/operator/people/<id>/suspend`, `/unsuspend`": suffixes stand for the same prefix
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.") or rule.rule in ("/", "/healthz"):
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", r"<\1>", rule.rule).replace("<deposit_id>", "<id>").replace("<payout_id>", "<id>")
        path = path.replace("<thing_id>", "<id>").replace("<token_id>", "<id>").replace("<user_id>", "<id>")
        short = path.startswith("/operator/people/") and "/" + path.rsplit("/", 1)[1] in documented
        if path not in documented and not short:
            missing.append(path)
    assert not missing, f"routes missing from docs/dashboard.md: {missing}"


def test_readme_has_the_dashboard_section_and_its_screenshots():
    readme = (DOC.parent.parent / "README.md").read_text()
    section = readme.split("## The dashboard", 1)[1]
    for image in re.findall(r"\]\((docs/img/[^)]+)\)", section):
        assert (DOC.parent.parent / image).is_file(), image
    assert "docs/img/dashboard.png" in section and "docs/img/directory.png" in section
