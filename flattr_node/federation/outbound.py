"""Every outbound call of federation: a deadline on each, a cap on what is
read back, no redirects, and no private or loopback address unless the
operator allows it (`allow_private_network`), so that a peer URL can never
be used to reach the node's own network."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import requests

from ..config import Config
from ..errors import FlattrError
from ..i18n import said
from ..netguard import is_public_address

MAX_RESPONSE = 256 * 1024


class PeerUnreachable(FlattrError):
    code, status = "peer_unreachable", 502


def check_address(cfg: Config, url: str) -> None:
    """Refuse URLs that are not http(s) or that resolve to a private address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PeerUnreachable(said('%(url)s is not an http(s) URL', url=repr(url)))
    if cfg.allow_private_network:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise PeerUnreachable(said('cannot resolve %(hostname)s', hostname=parts.hostname)) from None
    for info in infos:
        address = info[4][0]
        if not is_public_address(address):  # the node's one rule (netguard)
            raise PeerUnreachable(
                said('%(hostname)s is a private or local address (%(address)s); set allow_private_network = true to federate inside a private network', hostname=parts.hostname, address=address)
            )


def fetch(
    cfg: Config, method: str, url: str, *, prepared: requests.PreparedRequest | None = None, session: requests.Session | None = None
) -> requests.Response:
    """One call with a deadline; the body is read up to MAX_RESPONSE bytes.
    A `session` keeps the connection for the next call (a drain's run)."""
    check_address(cfg, url)
    request = prepared or requests.Request(method, url, headers={"Accept": "application/json"}).prepare()
    own = session is None
    session = session or requests.Session()
    try:
        response = session.send(request, timeout=cfg.federation_timeout, allow_redirects=False, stream=True)
        body = response.raw.read(MAX_RESPONSE + 1, decode_content=True)
        response.close()
    except requests.RequestException as e:
        raise PeerUnreachable(said('%(netloc)s did not answer: %(name)s', netloc=urlsplit(url).netloc, name=type(e).__name__)) from None
    finally:
        if own:
            session.close()
    if len(body) > MAX_RESPONSE:
        raise PeerUnreachable(said('%(netloc)s sent more than %(max_response)s bytes', netloc=urlsplit(url).netloc, max_response=MAX_RESPONSE))
    response._content = body
    return response


def json_of(response: requests.Response) -> dict:
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise PeerUnreachable(said('%(netloc)s did not answer with a JSON object (HTTP %(status_code)s)', netloc=urlsplit(response.url).netloc, status_code=response.status_code))
    return data
