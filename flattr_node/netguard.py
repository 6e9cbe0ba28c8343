"""Outbound HTTP that cannot be turned against the node or its network.

Every fetch the node makes on someone's behalf (a site's home page today;
federation peers and webhooks may use it too) goes through `fetch()`:

- http and https only; redirects are followed by hand, each hop checked again;
- the host is resolved once, every address it resolves to must be public
  (`is_public_address`), and the connection goes to that checked address, so
  a second DNS answer cannot point it elsewhere (DNS rebinding);
- one overall deadline for the whole fetch, redirects included: every read
  and write on the socket gets only the time that is left, so a server that
  trickles a byte at a time, or stalls after its headers, cannot hold a
  worker thread for longer than the deadline;
- a size cap on the body (a larger Content-Length is refused before reading).

Private addresses (loopback, RFC 1918, link-local, unique-local, and IPv6
forms that carry such an IPv4 address: mapped, compatible, NAT64, 6to4,
Teredo) are refused unless the caller passes `allow_private=True`, which the
node does only when its operator sets `allow_private_network = true`.
"""

from __future__ import annotations

import codecs
import http.client
import io
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin, urlsplit

from .errors import Validation
from .i18n import said
from .urls import normalize_url

USER_AGENT = "flattr-node"
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d


class FetchError(Validation):
    """A fetch failed or was refused; the description says why in words."""

    def __init__(self, description: str, *, field: str | None = "url"):
        super().__init__(description, field=field)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address reaches by translation or tunnel."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def is_public_address(ip: str) -> bool:
    """Whether an address is on the public Internet, and so is every IPv4
    address it stands for ([::127.0.0.1], [64:ff9b::7f00:1] are not)."""
    try:
        address = ipaddress.ip_address(ip.split("%")[0].strip("[]"))
    except ValueError:
        return False
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        return all(v4.is_global and not v4.is_multicast for v4 in _embedded_ipv4(address))
    return True


def resolve(host: str, port: int, *, allow_private: bool) -> list[tuple]:
    """getaddrinfo for a TCP connection; FetchError if the name does not
    resolve or (unless allow_private) any of its addresses is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise FetchError(said('cannot fetch from %(host)s: its host name does not resolve', host=host)) from None
    if not allow_private and not all(is_public_address(info[4][0]) for info in infos):
        raise FetchError(said('%(host)s is a private or local address: the node does not fetch those', host=host))
    return infos


@dataclass
class Fetched:
    url: str  # the final URL, after redirects
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        """The body as text, in its declared charset if Python knows it, else UTF-8."""
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return self.body.decode(charset, errors="replace")


class _Deadline:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline")
        return remaining


class _DeadlineReader(io.RawIOBase):
    """The socket's read side: each recv may wait only for the time left."""

    def __init__(self, sock: socket.socket, deadline: _Deadline):
        self.sock, self.deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.sock.settimeout(self.deadline.left())
        return self.sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client needs of a socket, every call bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline):
        self.sock, self.deadline = sock, deadline

    def sendall(self, data) -> None:
        self.sock.settimeout(self.deadline.left())
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self.sock, self.deadline))

    def close(self) -> None:
        pass  # the response may still read: fetch() closes the socket when done


class _Connection(http.client.HTTPConnection):
    def __init__(self, parts, infos: list[tuple], deadline: _Deadline):
        super().__init__(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self.infos, self.deadline, self.tls = infos, deadline, parts.scheme == "https"
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        error: OSError | None = None
        for family, kind, proto, _name, address in self.infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.deadline.left())
                sock.connect(address)  # the checked address, not a fresh DNS answer
                if self.tls:
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
                self.raw, self.sock = sock, _DeadlineSocket(sock, self.deadline)
                return
            except TimeoutError:
                sock.close()
                raise
            except OSError as e:
                sock.close()
                error = e
        raise error or OSError("no address to connect to")


def _any_redirect(_from: str, _to: str) -> bool:
    return True


def fetch(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 512 * 1024,
    allow_private: bool = False,
    max_redirects: int = 3,
    redirect_ok: Callable[[str, str], bool] = _any_redirect,
    headers: dict | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Fetched:
    """GET `url` (or `method` with `body`: a webhook's POST) within `timeout` seconds overall, at most `max_bytes` of
    body, following up to `max_redirects` redirects that `redirect_ok(from,
    to)` accepts. Returns the final response whatever its status; raises
    FetchError (a 422 validation error on field "url") when it cannot."""
    deadline = _Deadline(timeout)
    url = normalize_url(url)
    send = {"User-Agent": USER_AGENT, **(headers or {})}
    for _ in range(max_redirects + 1):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        connection = _Connection(parts, resolve(parts.hostname, port, allow_private=allow_private), deadline)
        try:
            connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=send)
            response = connection.getresponse()
            if method == "GET" and response.status in (301, 302, 303, 307, 308) and response.getheader("Location"):
                target = urljoin(url, response.getheader("Location").strip())
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    raise FetchError(said('%(url)s redirects to a URL that is not http(s)', url=url))
                target = normalize_url(target)
                if not redirect_ok(url, target):
                    raise FetchError(said('%(url)s redirects to %(target)s, which is not allowed here', url=url, target=target))
                url = target
                continue
            length = response.getheader("Content-Length", "") if method != "HEAD" else "0"
            if length.isascii() and length.isdigit() and int(length) > max_bytes:
                raise FetchError(said('%(url)s is larger than %(value)s KiB', url=url, value=max_bytes // 1024))
            data = b""
            while len(data) <= max_bytes:
                chunk = response.read(min(65536, max_bytes + 1 - len(data)))
                if not chunk:
                    break
                data += chunk
            if len(data) > max_bytes:
                raise FetchError(said('%(url)s is larger than %(value)s KiB', url=url, value=max_bytes // 1024))
            return Fetched(url, response.status, response.msg, data)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(said('%(url)s did not answer in time (the limit is %(seconds)s seconds in all)', url=url, seconds=f"{deadline.seconds:g}")) from None
        except ssl.SSLError as e:
            raise FetchError(said('cannot fetch %(url)s: its TLS failed (%(value)s)', url=url, value=e.reason or e.__class__.__name__)) from None
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise FetchError(said('cannot fetch %(url)s: %(name)s', url=url, name=e.__class__.__name__)) from None
        finally:
            connection.close()
            if connection.raw is not None:
                connection.raw.close()
    raise FetchError(said('%(url)s redirects more than %(max_redirects)s times', url=url, max_redirects=max_redirects))
