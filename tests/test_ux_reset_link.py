"""With no SMTP a person can still get back in: the operator makes a
one-time password reset link, on the command line or the operator page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from web_helpers import csrf_token, parse, post, signin

SCRIPT = Path(sys.executable).with_name("flattr-node")
BASE = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "flattr_node.cli"]


def cli(tmp_path, database_url, *args):
    config = tmp_path / "config.toml"
    config.write_text(f'database = {json.dumps(database_url)}\nsecret_key = "x"\nbase_url = "http://node.test"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("FLATTR_NODE_CONFIG", "FLATTR_NODE_LOG_LEVEL")}
    return subprocess.run([*BASE, "--config", str(config), *args], capture_output=True, text=True, timeout=120, env=env)


def use_link(client, link: str, new_password: str) -> int:
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("http", "node.test"), link
    page = client.get(parts.path)
    if page.status_code != 200:
        return page.status_code
    token = csrf_token(client, parts.path)
    return client.post(parts.path, data={"csrf_token": token, "new_password": new_password, "confirm": new_password}).status_code


def test_the_command_line_prints_a_one_time_link(client, make_user, tmp_path, database_url):
    make_user("kim")
    result = cli(tmp_path, database_url, "user", "reset-link", "kim")
    assert result.returncode == 0, result.stderr
    [link] = result.stdout.splitlines()
    assert use_link(client, link, "a new secret 1") == 302
    signin(client, "kim", "a new secret 1")
    assert use_link(client.application.test_client(), link, "another secret") == 404  # once only

    missing = cli(tmp_path, database_url, "user", "reset-link", "nobody")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "no person called 'nobody'" in missing.stderr


def test_the_operator_page_makes_a_link_shown_once(client, make_user):
    make_user("ops", operator=True)
    kim = make_user("kim")
    signin(client, "ops")
    doc = parse(client.get("/operator"))
    action = f"/operator/people/{kim.id}/reset-link"
    assert any(f.get("action") == action for f in doc.iter("form"))
    response = post(client, action, {}, token_from="/operator")
    assert response.status_code == 200
    link = parse(response).find(".//input[@id='reset-link']").get("value")
    assert "/password/reset/" not in client.get("/operator").get_data(as_text=True)  # shown once, not kept
    kims_browser = client.application.test_client()
    assert use_link(kims_browser, link, "kim chose this") == 302
    signin(kims_browser, "kim", "kim chose this")
    # Members cannot make links; an operator makes none for themselves (they change their password).
    assert post(kims_browser, action, {}, token_from="/dashboard").status_code == 403


def test_the_forgot_page_without_mail_points_at_the_operator(client):
    page = " ".join(parse(client.get("/password/forgot")).find(".//main").itertext())
    assert "ask its operator for a password reset link" in " ".join(page.split())
