"""A small client for a blog platform: register a post on publish, fetch its button.

    client = NodeClient("https://flattr.example.org", token="fn_...")
    thing = client.register_post("https://blog.example.org/2026/hello", "Hello")
    html = client.button(thing["id"])

Every call has a timeout; every failure is a NodeError with the node's error
code and description (or `unreachable` / `bad_response`).
"""

from __future__ import annotations

import requests

from .markup import ThingRef, button_html, safe_url

DEFAULT_TIMEOUT = (3.05, 10)  # (connect, read) seconds


class NodeError(Exception):
    def __init__(self, code: str, description: str, status: int | None = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status


class NodeClient:
    def __init__(self, node: str, token: str | None = None, *, timeout=DEFAULT_TIMEOUT, session: requests.Session | None = None):
        self.node = safe_url(node, "node").rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "flattr-node-plugin-bridge"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kw) -> dict:
        try:
            response = self.session.request(method, f"{self.node}/api/v1{path}", timeout=self.timeout, allow_redirects=False, **kw)
        except requests.Timeout:
            raise NodeError("unreachable", f"the node at {self.node} did not answer in time") from None
        except requests.RequestException as e:
            raise NodeError("unreachable", f"cannot reach the node at {self.node}: {e.__class__.__name__}") from None
        try:
            data = response.json()
        except ValueError:
            raise NodeError("bad_response", f"the node answered {response.status_code} without JSON", response.status_code) from None
        if response.status_code >= 400:
            if isinstance(data, dict) and "error" in data:
                raise NodeError(str(data["error"]), str(data.get("error_description", "")), response.status_code)
            raise NodeError("bad_response", f"the node answered {response.status_code}", response.status_code)
        return data

    def thing(self, thing_id: int) -> dict:
        return self._call("GET", f"/things/{int(thing_id)}")

    def lookup(self, url: str) -> dict:
        return self._call("GET", "/things/lookup", params={"url": safe_url(url)})

    def register_post(self, url: str, title: str, **fields) -> dict:
        """Register a post as a thing (on publish); an already registered URL returns its thing."""
        payload = {"url": safe_url(url), "title": title, **fields}
        try:
            return self._call("POST", "/things", json=payload)
        except NodeError as e:
            if e.status == 422 and "already registered" in e.description:
                return self.lookup(url)
            raise

    def button(self, thing_id: int, size: str = "default") -> str:
        """The button markup for a thing, with its current count."""
        return button_html(ThingRef.from_json(self.node, self.thing(thing_id)), size)
