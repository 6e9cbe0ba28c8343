"""Token scopes (SPEC §8): every API route states the scope a token needs,
a token without it gets 403 insufficient_scope, and no token changes an
e-mail address. Personal tokens get scopes on the CLI and the dashboard."""

from __future__ import annotations

import pytest
from conftest import Api, assert_error
from web_helpers import parse, post, signin

from flattr_node.api import PUBLIC
from flattr_node.scopes import SCOPES
from flattr_node.services import people


def test_every_api_route_states_its_scope(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(("/api/v1", "/rest/v2")):
            continue
        view = app.view_functions[rule.endpoint]
        assert hasattr(view, "required_scope"), f"{rule.rule} states no scope: add @needs(...)"
        assert view.required_scope == PUBLIC or view.required_scope in SCOPES


@pytest.fixture
def two(make_user, client):
    giver = make_user("giver", 1000)
    owner = make_user("owner", 1000)
    thing_id = (
        Api(client, people.create_token(owner)).post("/things", {"url": "https://blog.example/a", "title": "A"}).get_json()["id"]
    )
    return giver, owner, thing_id


def test_a_token_without_the_scope_is_refused(client, two):
    giver, _, thing_id = two
    thing_only = Api(client, people.create_token(giver, "cms", ["thing"]))
    assert_error(thing_only.post(f"/things/{thing_id}/flattr"), 403, "insufficient_scope")
    assert_error(thing_only.post("/flattr", {"url": "https://blog.example/a"}), 403, "insufficient_scope")
    assert_error(thing_only.get("/user"), 403, "insufficient_scope")
    assert_error(thing_only.post("/payouts", {"amount": 1000}), 403, "insufficient_scope")
    assert thing_only.post("/things", {"url": "https://blog.example/b", "title": "B"}).status_code == 201
    assert thing_only.get(f"/things/{thing_id}").status_code == 200  # public reads need no scope
    flattr_only = Api(client, people.create_token(giver, "app", ["flattr"]))
    assert_error(flattr_only.post("/things", {"url": "https://blog.example/c", "title": "C"}), 403, "insufficient_scope")
    assert flattr_only.post(f"/things/{thing_id}/flattr").status_code == 201


def test_email_is_shown_only_with_the_email_scope(client, two):
    giver = two[0]
    without = Api(client, people.create_token(giver, "r", ["extendedread"])).get("/user").get_json()
    assert "email" not in without and without["username"] == "giver"
    with_email = Api(client, people.create_token(giver, "r", ["extendedread", "email"])).get("/user").get_json()
    assert with_email["email"] == "giver@example.org"


def test_no_token_changes_the_email_address(client, two):
    everything = Api(client, people.create_token(two[0]))
    assert_error(everything.patch("/user", {"email": "thief@example.org"}), 403, "forbidden")
    assert people.get_user("giver").email == "giver@example.org"
    assert everything.patch("/user", {"display_name": "G"}).status_code == 200


def test_a_token_made_before_scopes_existed_keeps_all_of_them(client, two):
    token = people.create_token(two[0])
    assert Api(client, token).get("/user").get_json()["email"] == "giver@example.org"


def test_unknown_scope_is_refused(two):
    from flattr_node.errors import Validation

    with pytest.raises(Validation, match="unknown scope 'admin'"):
        people.create_token(two[0], "x", ["admin"])


def test_cli_token_with_scopes(tmp_path, cfg, two, client):
    from nodeproc import cli, write_config

    config = write_config(tmp_path / "config.toml", cfg.database)
    token = cli(config, "token", "create", "giver", "--scope", "thing").stdout.strip()
    api = Api(client, token)
    assert_error(api.post(f"/things/{two[2]}/flattr"), 403, "insufficient_scope")
    assert api.post("/things", {"url": "https://blog.example/cli", "title": "CLI"}).status_code == 201
    wrong = cli(config, "token", "create", "giver", "--scope", "admin", check=False)
    assert wrong.returncode != 0 and "admin" in wrong.stderr and "Traceback" not in wrong.stderr


def test_dashboard_token_with_chosen_scopes(client, two):
    signin(client, "giver")
    page = post(client, "/dashboard/tokens", {"name": "podcast app", "scopes": ["flattr"]}, token_from="/dashboard/tokens")
    assert page.status_code == 200
    token = next(n.get("value") for n in parse(page).iter("input") if n.get("id") == "new-token")
    api = Api(client.application.test_client(), token)
    assert api.post(f"/things/{two[2]}/flattr").status_code == 201
    assert_error(api.post("/things", {"url": "https://blog.example/d", "title": "D"}), 403, "insufficient_scope")
    none = post(client, "/dashboard/tokens", {"name": "nothing"}, token_from="/dashboard/tokens")
    assert none.status_code == 422 and "choose at least one" in none.get_data(as_text=True)
