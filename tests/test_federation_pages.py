"""Federation's pages in the app: the operator's peers table, the host's
"flattr from your own node" form refusing what it cannot use, and the home
node's confirmation page guarded like every page that moves money."""

from __future__ import annotations

from web_helpers import errors_of, parse, post, signin, text_of

from flattr_node.federation import keys
from flattr_node.federation.models import Peer
from flattr_node.services import things


def a_peer(base: str, credit_limit=None, refusal: str = "") -> Peer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    jwk = keys.public_jwk(Ed25519PrivateKey.generate())
    return Peer.create(base_url=base, key_id=jwk["kid"], public_key=jwk["x"], inbox_url=f"{base}/federation/inbox",
                       currency="EUR", credit_limit=credit_limit, refusal=refusal)  # fmt: skip


def test_the_operator_sees_the_peers(client, make_user):
    make_user("op", operator=True)
    a_peer("https://b.example", credit_limit=5000)
    a_peer("https://c.example", refusal="pay first")
    signin(client, "op")
    doc = parse(client.get("/operator"))
    rows = [" ".join("".join(tr.itertext()).split()) for tr in doc.iter("tr") if "example" in "".join(tr.itertext())]
    assert any("https://b.example" in r and "€50.00" in r and "ok" in r for r in rows), rows
    assert any("https://c.example" in r and "refusing: pay first" in r for r in rows), rows


def test_from_your_node_refuses_bad_handles_and_non_peers(client, make_user):
    ann = make_user("ann")
    thing = things.register_thing(ann, {"url": "https://ann.example/1", "title": "Post"})
    path = f"/things/{thing.id}/from-your-node"
    page = client.get(path)
    assert page.status_code == 200 and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    bad = post(client, path, {"handle": "not a handle"}, token_from=path)
    assert bad.status_code == 422 and any("name@your-node" in e for e in errors_of(bad))
    stranger = post(client, path, {"handle": "kim@elsewhere.example"}, token_from=path)
    assert stranger.status_code == 400 and any("does not federate with this node" in e for e in errors_of(stranger))
    assert client.post(path, data={"handle": "kim@elsewhere.example"}).status_code in (400, 403)  # no CSRF token


def test_authorize_interaction_needs_a_signed_in_reader_and_a_peer_thing(client, make_user):
    make_user("kim", 500)
    uri = "https://b.example/things/7"
    r = client.get(f"/authorize_interaction?uri={uri}")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]
    signin(client, "kim")
    r = client.get(f"/authorize_interaction?uri={uri}")
    assert r.status_code == 404  # b.example is not a peer
    assert "not a thing page of a node this node federates with" in text_of(r, "main")


def test_the_dashboard_says_why_a_flattr_its_host_refused_will_not_count(client, cfg, make_user):
    """The month's estimate on the reader's dashboard: a remote flattr whose
    host refused it (the thing was archived there) shows as not counted,
    with the host's reason."""
    from flattr_node.federation import remote
    from flattr_node.federation.models import Outbox, RemoteThing
    from flattr_node.models import Thing
    from flattr_node.services import flattring

    kim = make_user("kim", 500)
    peer = a_peer("https://b.example")
    gone = Thing.create(owner=remote._proxy_owner("blo", peer), url="https://b.example/things/7", title="Archived over there")
    RemoteThing.create(thing=gone, peer=peer, remote_id=7, owner_name="blo")
    refused = flattring.flattr_thing(cfg, kim, gone.id)
    Outbox.create(flattr=refused, peer=peer, status="refused", last_error="422: this thing is archived and can no longer be flattred")
    signin(client, "kim")
    main = text_of(client.get("/dashboard"), "main")
    assert "Archived over there" in main and "not counted" in main
    assert "the owner's node (b.example) does not have this flattr, so it does not count: this thing is archived" in main


def test_the_back_link_of_the_confirmation_page_is_only_ever_a_web_address(client, make_user):
    """`back` comes from whoever made the link to the page: a javascript: or
    data: address must not become the page's "Back to the post" link."""
    from flattr_node.federation import remote
    from flattr_node.federation.models import RemoteThing
    from flattr_node.models import Thing

    make_user("kim", 500)
    peer = a_peer("https://b.example")
    known = Thing.create(owner=remote._proxy_owner("blo", peer), url="https://b.example/things/7", title="A post over there")
    RemoteThing.create(thing=known, peer=peer, remote_id=7, owner_name="blo")
    signin(client, "kim")

    def back_links(back: str) -> list[str]:
        r = client.get("/authorize_interaction", query_string={"uri": "https://b.example/things/7", "back": back})
        assert r.status_code == 200
        doc = parse(r)
        hidden = [i.get("value") for i in doc.iter("input") if i.get("name") == "back"]
        return [a.get("href") for a in doc.iter("a") if a.get("data-back") is not None] + hidden

    assert "https://blog.example/post" in back_links("https://blog.example/post")
    for hostile in ("javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>", "//evil.example/x"):
        assert not any(href.strip().lower().startswith(("javascript", "data", "//")) for href in back_links(hostile))
