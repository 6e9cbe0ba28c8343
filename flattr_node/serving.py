"""Where `serve` listens and where its links point.

`serve --port 8090` on a node whose base_url points at this very server
(http on a loopback or the configured host, at the configured port: the
default "http://127.0.0.1:8080" is one) moves base_url to the new port, so
that buttons, oEmbed and the API's links reach the node. A base_url that
names this machine at another port is kept, with a one-line warning; any
other base_url (a public name behind a reverse proxy) is kept silently.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .config import Config

LOCAL_NAMES = ("127.0.0.1", "localhost", "::1", "0.0.0.0")


def _port_of(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def follow_port(cfg: Config, host: str | None, port: int | None) -> tuple[Config, str | None]:
    """The config `serve` runs with, and a warning to print (or None)."""
    new_host, new_port = host or cfg.host, port or cfg.port
    base = urlsplit(cfg.base_url)
    this_machine = (base.hostname or "") in (*LOCAL_NAMES, cfg.host.lower(), new_host.lower())
    warning = None
    base_url = cfg.base_url
    if this_machine and _port_of(base) != new_port:
        if _port_of(base) == cfg.port:  # it pointed at this server: it follows the server
            netloc = f"[{base.hostname}]" if ":" in (base.hostname or "") else base.hostname
            base_url = urlunsplit(base._replace(netloc=f"{netloc}:{new_port}"))
        else:
            warning = (
                f"base_url is {cfg.base_url} but the node listens on port {new_port}: "
                "buttons and links will point there (set base_url in the config if that is wrong)"
            )
    return cfg.with_(host=new_host, port=new_port, base_url=base_url), warning


def busy_port_message(host: str, port: int, error: OSError) -> str:
    return f"cannot listen on {host}:{port}: {error.strerror or error} (another program uses it? try serve --port with another port)"
