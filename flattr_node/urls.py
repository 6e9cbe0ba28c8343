"""URLs from users: http/https only, normalised so that one post is one thing."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import Validation
from .i18n import said

MAX_URL = 2048
_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")


def normalize_url(url: str, field: str = "url") -> str:
    """Lower-case scheme and host, IDNA host, no default port, no fragment,
    no tracking parameters, no trailing slash but on the root.

    Raises Validation for anything that is not an absolute http(s) URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise Validation(said('%(field)s is required', field=field), field=field)
    url = url.strip()
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise Validation(said('%(field)s must be valid Unicode text (it holds a lone surrogate)', field=field), field=field) from None
    if len(url) > MAX_URL:
        raise Validation(said('%(field)s is longer than %(max_url)s characters', field=field, max_url=MAX_URL), field=field)
    if any(ord(c) < 32 or c in " \x7f" for c in url):
        raise Validation(said('%(field)s must not contain spaces or control characters', field=field), field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Validation(said('%(field)s is not a valid URL', field=field), field=field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Validation(said('%(field)s must be an http:// or https:// URL', field=field), field=field)
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username or parts.password:
        raise Validation(said('%(field)s must have a host and no user name or password', field=field), field=field)
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.startswith("[") and ":" not in host else host.lower()
    except UnicodeError:
        raise Validation(said('%(field)s has an invalid host name', field=field), field=field) from None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, 80 if scheme == "http" else 443) else f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/:@!$&'()*+,;=-._~%") or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)])
    normalized = urlunsplit((scheme, netloc, path, query, ""))
    if len(normalized) > MAX_URL:
        raise Validation(said('%(field)s is longer than %(max_url)s characters', field=field, max_url=MAX_URL), field=field)
    return normalized


def twins(url: str) -> list[str]:
    """The URLs that name the same post as a normalised `url`: its http:// and
    https:// forms (when no port is given) and its host with and without
    "www.". One post is one thing, whichever of them was registered first."""
    parts = urlsplit(url)
    host = parts.netloc
    bare = host[4:] if host.startswith("www.") else host
    hosts = [bare, "www." + bare] if not bare.startswith("[") else [bare]
    schemes = [parts.scheme] if parts.port is not None else ["https", "http"]
    return [urlunsplit((scheme, h, parts.path, parts.query, "")) for scheme in schemes for h in hosts]


def site_host(url: str) -> str:
    """The site of a normalised URL: its host[:port] without "www." (http
    and https of a host, and its www. twin, are one site)."""
    host = urlsplit(url).netloc
    return host[4:] if host.startswith("www.") else host


def optional_url(url: str | None, field: str = "url") -> str:
    """A profile URL: empty is fine, else it must pass normalize_url."""
    if url is None or str(url).strip() == "":
        return ""
    return normalize_url(url, field)
