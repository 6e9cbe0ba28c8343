"""Verified sites: who may receive auto-submitted things for a web site.

A person verifies a site by putting a `rel="payment"` link to their profile on
the node (`<base_url>/users/<username>`, or one of their auto-submit URLs) on
the site's home page. The node fetches the home page with requests: http and
https only, short timeouts, a size cap, redirects followed by hand and only to
http(s), and, on a node with a public address, never to a private or local
address (no reaching into the node's own network). Once a site is verified, an auto-submit button for a URL on it creates
a thing only for the person who verified it; anyone else is refused.
Whoever controls the home page decides: a new check moves the site to the
person it now links to.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from peewee import CharField, DateTimeField, ForeignKeyField

from ..config import Config
from ..db import database
from ..errors import Forbidden, Validation
from ..models import BaseModel, User, utcnow
from ..urls import normalize_url, site_host

FETCH_TIMEOUT = (3.05, 5)  # (connect, read) seconds
MAX_HOME_PAGE = 512 * 1024  # bytes read from a home page at most
MAX_REDIRECTS = 3


class VerifiedSite(BaseModel):
    """A web site (scheme-less host[:port]) and the person who verified it."""

    host = CharField(max_length=300, unique=True)
    user = ForeignKeyField(User, backref="sites", on_delete="RESTRICT")
    home_url = CharField(max_length=2048)
    verified_at = DateTimeField(default=utcnow)


SITE_MODELS = [VerifiedSite]


def site_of(url: str, field: str = "url") -> str:
    """The site a URL belongs to: its host[:port], lower case, without "www."."""
    return site_host(normalize_url(url, field))


class _PaymentLinks(HTMLParser):
    """Collects the href of every <link> and <a> whose rel has `payment`."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("link", "a"):
            return
        values = dict(attrs)
        rels = (values.get("rel") or "").lower().split()
        if "payment" in rels and values.get("href"):
            self.hrefs.append(values["href"].strip())

    handle_startendtag = handle_starttag


class FetchError(Validation):
    """The home page could not be fetched (field: url)."""


def _is_private(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    return not address.is_global or address.is_multicast


def node_is_private(cfg: Config) -> bool:
    """A node whose own address is localhost or a private IP (a test or LAN
    node) may verify sites on private addresses; a public node may not."""
    host = (urlsplit(cfg.base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _is_private(host)
    except ValueError:
        return False


def _check_address(url: str, allow_private: bool) -> None:
    """Refuse hosts that resolve to loopback, private or link-local addresses
    (a server-side fetch must not reach the node's own network)."""
    if allow_private:
        return
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"cannot fetch {url}: its host name does not resolve", field="url") from None
    if any(_is_private(info[4][0]) for info in infos):
        raise FetchError(f"{parts.hostname} is a private or local address: the node does not fetch those", field="url")


def fetch_home_page(url: str, session: requests.Session | None = None, *, allow_private: bool = False) -> tuple[str, str]:
    """GET an http(s) page: (final URL, text). Redirects only to http(s) and
    public addresses (unless allow_private), size capped."""
    http = session or requests.Session()
    for _ in range(MAX_REDIRECTS + 1):
        _check_address(url, allow_private)
        try:
            response = http.get(
                url,
                timeout=FETCH_TIMEOUT,
                allow_redirects=False,
                stream=True,
                headers={"User-Agent": "flattr-node site verification", "Accept": "text/html"},
            )
        except requests.Timeout:
            raise FetchError(f"{url} did not answer in time", field="url") from None
        except requests.RequestException as e:
            raise FetchError(f"cannot fetch {url}: {e.__class__.__name__}", field="url") from None
        with response:
            if response.is_redirect:
                target = urljoin(url, response.headers.get("Location", ""))
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise FetchError(f"{url} redirects to a URL that is not http(s)", field="url")
                url = normalize_url(target)
                continue
            if response.status_code != 200:
                raise FetchError(f"{url} answered HTTP {response.status_code}", field="url")
            body = b""
            for chunk in response.iter_content(16384):
                body += chunk
                if len(body) > MAX_HOME_PAGE:
                    raise FetchError(f"{url} is larger than {MAX_HOME_PAGE // 1024} KiB", field="url")
            return url, body.decode(response.encoding or "utf-8", errors="replace")
    raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times", field="url")


def _links_to(cfg: Config, user: User, page_url: str, hrefs: list[str]) -> bool:
    base = cfg.base_url.rstrip("/")
    profile = normalize_url(f"{base}/users/{user.username}")
    for href in hrefs:
        try:
            target = normalize_url(urljoin(page_url, href))
        except Validation:
            continue
        if target == profile:
            return True
        parts = urlsplit(target)
        if f"{parts.scheme}://{parts.netloc}{parts.path}" == normalize_url(f"{base}/submit/auto"):
            if parse_qs(parts.query).get("user_id", [""])[0].strip().lower() == user.username:
                return True
    return False


def verify_site(cfg: Config, user: User, url: str, now: dt.datetime | None = None, session=None) -> VerifiedSite:
    """Fetch the home page of `url`'s site and record `user` as its owner if it links to them."""
    home = normalize_url(url)
    parts = urlsplit(home)
    home = f"{parts.scheme}://{parts.netloc}/"
    host = site_host(home)
    # Outside any transaction: it can be slow.
    final_url, text = fetch_home_page(home, session, allow_private=node_is_private(cfg))
    parser = _PaymentLinks()
    parser.feed(text)
    if not _links_to(cfg, user, final_url, parser.hrefs):
        raise Validation(
            f'{home} has no rel="payment" link to {cfg.base_url.rstrip("/")}/users/{user.username}: '
            f'add <link rel="payment" href="{cfg.base_url.rstrip("/")}/users/{user.username}"> to its <head> and try again',
            field="url",
        )
    now = now or utcnow()
    with database.atomic():
        VerifiedSite.insert(host=host, user=user, home_url=home, verified_at=now).on_conflict(
            conflict_target=[VerifiedSite.host],
            update={VerifiedSite.user: user.id, VerifiedSite.home_url: home, VerifiedSite.verified_at: now},
        ).execute()
    return VerifiedSite.get(VerifiedSite.host == host)


def verifier_of(url: str) -> User | None:
    """The person who verified the site of `url`, if anyone did."""
    try:
        host = site_of(url)
    except Validation:
        return None
    # "www." + host: a row verified before www. and the bare host were one site.
    row = (
        VerifiedSite.select(VerifiedSite, User)
        .join(User)
        .where(VerifiedSite.host.in_([host, "www." + host]))
        .order_by(VerifiedSite.verified_at.desc())
        .first()
    )
    return row.user if row is not None else None


def check_site_owner(url: str, owner: User) -> None:
    """A thing on a site verified by someone else is refused (Forbidden):
    registered by hand, through the API or by an auto-submit button."""
    verifier = verifier_of(url)
    if verifier is not None and verifier.id != owner.id:
        raise Forbidden(
            f"{site_of(url)} is verified by another person on this node: "
            f"only they can register its pages or receive flattrs for them"
        )


check_autosubmit_owner = check_site_owner


def sites_of(user: User) -> list[VerifiedSite]:
    return list(VerifiedSite.select().where(VerifiedSite.user == user).order_by(VerifiedSite.host))
