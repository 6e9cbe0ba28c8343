"""Verified sites: who may receive things for a web site.

A person verifies a site by putting a `<link rel="payment">` to their profile
on the node (`<base_url>/users/<username>`, or one of their auto-submit URLs)
in the `<head>` of the site's home page. Only the head counts: a link in the
body may be a reader's comment. The node fetches the home page through
netguard (one deadline, a size cap, public addresses only unless
`allow_private_network` is set) and follows redirects only within the site.
http and https of a host, and its www. twin, are one site.

Once a site is verified, things on it (registered by hand, through the API or
by an auto-submit button) are only for the person who verified it. Whoever
controls the home page decides: a new check moves the site to the person it
now links to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from urllib.parse import parse_qs, urljoin, urlsplit

import html5lib
from peewee import CharField, DateTimeField, ForeignKeyField

from .. import netguard
from ..config import Config
from ..db import database
from ..errors import Forbidden, RateLimited, Validation
from ..i18n import said
from ..models import BaseModel, User, utcnow
from ..netguard import FetchError
from ..urls import normalize_url, site_host

VERIFY_DEADLINE = 10.0  # seconds for the whole fetch of a home page, redirects included
MAX_HOME_PAGE = 512 * 1024  # bytes read from a home page at most
MAX_REDIRECTS = 3
MAX_RUNNING = 4  # site checks at once in one process; more are refused, not queued
_running = threading.BoundedSemaphore(MAX_RUNNING)
_running_people: set[int] = set()
_people_lock = threading.Lock()


class VerifiedSite(BaseModel):
    """A web site (host[:port] without "www.") and the person who verified it."""

    host = CharField(max_length=300, unique=True)
    user = ForeignKeyField(User, backref="sites", on_delete="RESTRICT")
    home_url = CharField(max_length=2048)
    verified_at = DateTimeField(default=utcnow)


SITE_MODELS = [VerifiedSite]


def site_of(url: str, field: str = "url") -> str:
    """The site a URL belongs to: its host[:port], lower case, without "www."."""
    return site_host(normalize_url(url, field))


def head_payment_links(page: str) -> list[str]:
    """The href of every <link rel="payment"> in the page's own <head>, as
    an HTML5 parser builds it: a link in the body (a reader's comment), in a
    comment or after the head has ended does not count."""
    doc = html5lib.parse(page, namespaceHTMLElements=False)
    head = doc.find("head")
    hrefs = []
    for link in head.iter("link") if head is not None else ():
        if "payment" in (link.get("rel") or "").lower().split() and (link.get("href") or "").strip():
            hrefs.append(link.get("href").strip())
    return hrefs


def _same_site(from_url: str, to_url: str) -> bool:
    """A home page may redirect within its site (http to https, to www.), never off it."""
    return site_host(from_url) == site_host(to_url)


def fetch_home_page(url: str, *, allow_private: bool = False) -> tuple[str, str]:
    """GET a site's home page: (final URL, text). One deadline for it all,
    redirects only within the site, size capped (see netguard)."""
    page = netguard.fetch(
        url,
        timeout=VERIFY_DEADLINE,
        max_bytes=MAX_HOME_PAGE,
        allow_private=allow_private,
        max_redirects=MAX_REDIRECTS,
        redirect_ok=_same_site,
        headers={"User-Agent": "flattr-node site verification", "Accept": "text/html"},
    )
    if page.status != 200:
        raise FetchError(said('%(url)s answered HTTP %(status)s', url=page.url, status=page.status), field="url")
    return page.url, page.text


@contextlib.contextmanager
def _one_check_at_a_time(user: User):
    """At most MAX_RUNNING checks in this process, one per person: a person
    cannot hold several worker threads on slow sites."""
    with _people_lock:
        if user.id in _running_people:
            raise RateLimited(said('a check of one of your sites is still running: wait for it to finish'))
        if not _running.acquire(blocking=False):
            raise RateLimited(said('too many sites are being checked right now: try again in a minute'))
        _running_people.add(user.id)
    try:
        yield
    finally:
        with _people_lock:
            _running_people.discard(user.id)
            _running.release()


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


def verify_site(cfg: Config, user: User, url: str, now: dt.datetime | None = None) -> VerifiedSite:
    """Fetch the home page of `url`'s site and record `user` as its owner if it links to them."""
    home = normalize_url(url)
    parts = urlsplit(home)
    home = f"{parts.scheme}://{parts.netloc}/"
    host = site_host(home)
    # Outside any transaction: it can be slow.
    with _one_check_at_a_time(user):
        final_url, text = fetch_home_page(home, allow_private=cfg.allow_private_network)
    if not _links_to(cfg, user, final_url, head_payment_links(text)):
        raise Validation(
            said('%(home)s has no rel="payment" link to %(value)s/users/%(username)s: add <link rel="payment" href="%(value)s/users/%(username)s"> to its <head> and try again', home=home, value=cfg.base_url.rstrip("/"), username=user.username),
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
            said('%(url)s is verified by another person on this node: only they can register its pages or receive flattrs for them', url=site_of(url))
        )


check_autosubmit_owner = check_site_owner


def sites_of(user: User) -> list[VerifiedSite]:
    return list(VerifiedSite.select().where(VerifiedSite.user == user).order_by(VerifiedSite.host))
