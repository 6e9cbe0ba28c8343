"""The smaller hardening items of issue 10 (item 11): files readable by their
owner alone, no caching of a signed-in person's pages and JSON, HSTS on an
https node, a CSP that also covers base-uri, form-action and object-src,
Hugo/Jekyll snippets that cannot run template code, names shown with their
username, and a suspended person's API profile gone like their page."""

from __future__ import annotations

import os
import stat

import html5lib
import pytest
from click.testing import CliRunner
from web_helpers import parse, signin

import plugin_bridge as pb
from flattr_node.app import create_app
from flattr_node.models import User
from flattr_node.services import people, things

once = pytest.mark.sqlite_only


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@once
def test_the_config_and_the_database_are_made_for_their_owner_alone(tmp_path, monkeypatch):
    from flattr_node import db as dbmod
    from flattr_node.cli import main

    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)  # the usual umask: new files readable by all
    try:
        CliRunner().invoke(main, ["--config", str(tmp_path / "config.toml"), "init"])
        database = dbmod.make_database(f"sqlite:///{tmp_path / 'data' / 'node.db'}")
        database.connect()
        database.execute_sql("CREATE TABLE t (x)")
        database.execute_sql("INSERT INTO t VALUES (1)")
    finally:
        os.umask(old)
    assert mode(tmp_path / "config.toml") == 0o600
    assert "secret_key" in (tmp_path / "config.toml").read_text()
    assert mode(tmp_path / "data" / "node.db") == 0o600
    for extra in ("node.db-wal", "node.db-shm"):
        if (tmp_path / "data" / extra).exists():
            assert mode(tmp_path / "data" / extra) == 0o600, extra
    database.close()


def test_signed_in_pages_and_cookie_json_are_not_cached(client, make_user):
    kim = make_user("kim", 500)
    ann = make_user("ann")
    thing = things.register_thing(ann, {"url": "https://ann.example/p", "title": "P"})
    assert "no-store" not in client.get(f"/things/{thing.id}").headers.get("Cache-Control", "")
    signin(client, "kim")
    for path in ("/dashboard", f"/things/{thing.id}/flattr", "/sites", "/api/v1/user", "/api/v1/user/flattrs", f"/api/v1/things/{thing.id}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("Cache-Control") == "no-store", path
    assert kim.id


def test_hsts_only_on_an_https_node_and_a_fuller_csp(cfg, db):
    plain = create_app(cfg, bind_database=False).test_client().get("/")
    assert "Strict-Transport-Security" not in plain.headers
    csp = {d.strip().split()[0]: d.strip() for d in plain.headers["Content-Security-Policy"].split(";")}
    assert csp["base-uri"] == "base-uri 'none'"
    assert csp["form-action"] == "form-action 'self'"
    assert csp["object-src"] == "object-src 'none'"
    assert csp["frame-ancestors"] == "frame-ancestors 'none'"
    secure = create_app(cfg.with_(base_url="https://flattr.example.org"), bind_database=False).test_client().get("/")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


@once
@pytest.mark.parametrize("platform", ["hugo", "jekyll"])
def test_hugo_and_jekyll_snippets_cannot_run_template_code(platform):
    title = "Costs {{ .Site.Params.secret }} and {% include secrets.txt %} {{< shortcode >}}"
    for target in (
        pb.ThingRef(node="https://node.example", id=7, url="https://blog.example/p", title=title, owner="ann"),
        pb.AutoSubmit(node="https://node.example", user_id="ann", url="https://blog.example/p", title=title),
    ):
        text = pb.snippet(platform, target)
        for syntax in ("{{", "}}", "{%", "%}"):
            assert syntax not in text, (platform, syntax)
        # A browser still reads the title as written.
        doc = html5lib.parse(text, namespaceHTMLElements=False)
        titles = [a.get("title") for a in doc.iter("a") if a.get("title")]
        assert titles and all(title in t for t in titles)


def test_two_people_with_one_display_name_are_told_apart(client, make_user, cfg):
    for name in ("alice", "alice2"):
        user = make_user(name)
        people.update_settings(cfg, user, {"display_name": "alice"})
        things.register_thing(user, {"url": f"https://{name}.example/p", "title": "Post"})
    directory = parse(client.get("/directory"))
    names = [" ".join("".join(h.itertext()).split()) for h in directory.iter("h2")]
    assert "alice @alice2" in names and "alice" in names
    thing = things.lookup("https://alice2.example/p")
    page = " ".join("".join(parse(client.get(f"/things/{thing.id}")).itertext()).split())
    assert "By alice @alice2" in page


def test_a_suspended_persons_api_profile_is_gone_like_their_page(client, make_user, anon):
    zed = make_user("zed")
    things.register_thing(zed, {"url": "https://zed.example/p", "title": "P"})
    assert anon.get("/users/zed").status_code == 200
    User.update(is_suspended=True).where(User.id == zed.id).execute()
    assert client.get("/users/zed").status_code == 404
    for path in ("/users/zed", "/users/zed/things"):
        response = anon.get(path)
        assert (response.status_code, response.get_json()["error"]) == (404, "not_found"), path
