"""Ask before acting: suspend, make operator, archive, revoke a token and
cancel a deposit do nothing on the first click; a question page (a plain
form, no JavaScript) asks, and only its own button acts."""

from __future__ import annotations

from web_helpers import parse, post, signin

from flattr_node.models import ApiToken, Deposit, Thing, User
from flattr_node.services import funds, people, things


def ask_then_confirm(client, path: str, question: str, changed) -> None:
    first = post(client, path, {}, token_from="/dashboard")
    assert first.status_code == 200, first.get_data(as_text=True)[:300]
    doc = parse(first)
    assert question in "".join(doc.find(".//h1").itertext())
    assert not changed(), f"{path} acted on the first click"
    form = doc.find(f".//form[@action='{path}']")
    fields = {i.get("name"): i.get("value") for i in form.iter("input")}
    assert fields["confirmed"] == "yes" and form.find(".//button[@id='confirm-yes']") is not None
    assert doc.find(".//a[@id='confirm-no']").get("href")  # a way back that changes nothing
    done = client.post(path, data=fields)
    assert done.status_code == 302
    assert changed()


def test_operator_actions_ask_first(client, make_user):
    make_user("ops", operator=True)
    kim, ann = make_user("kim"), make_user("ann")
    signin(client, "ops")
    ask_then_confirm(client, f"/operator/people/{kim.id}/suspend", "Suspend kim?", lambda: User.get_by_id(kim.id).is_suspended)
    ask_then_confirm(client, f"/operator/people/{ann.id}/make-operator", "Make ann an operator?", lambda: User.get_by_id(ann.id).is_operator)


def test_member_actions_ask_first(client, make_user):
    kim = make_user("kim")
    thing = things.register_thing(kim, {"url": "https://kim.example/p", "title": "Kim's post"})
    people.create_token(kim, "blog plugin")
    token = ApiToken.get(ApiToken.user == kim)
    deposit = funds.open_deposit(kim, 500)
    signin(client, "kim")
    ask_then_confirm(client, f"/dashboard/things/{thing.id}/archive", "Archive Kim's post?", lambda: Thing.get_by_id(thing.id).archived)
    ask_then_confirm(client, f"/dashboard/tokens/{token.id}/revoke", "Revoke the token “blog plugin”?",
                     lambda: ApiToken.get_by_id(token.id).revoked_at is not None)
    ask_then_confirm(client, f"/dashboard/deposits/{deposit.id}/cancel", f"Cancel deposit {deposit.reference}?",
                     lambda: Deposit.get_by_id(deposit.id).status == "cancelled")


def test_no_question_about_someone_elses_things(client, make_user):
    make_user("kim")
    ann = make_user("ann")
    deposit = funds.open_deposit(ann, 500)
    people.create_token(ann, "ann's")
    signin(client, "kim")
    for path in (f"/dashboard/deposits/{deposit.id}/cancel", f"/dashboard/tokens/{ApiToken.get(ApiToken.user == ann).id}/revoke"):
        response = post(client, path, {}, token_from="/dashboard")
        assert response.status_code == 404, path
        assert "ann" not in response.get_data(as_text=True).split("<main", 1)[1].split("</main>")[0]
