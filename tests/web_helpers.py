"""Helpers for the web page tests: real HTML parsing (html5lib), CSRF tokens
taken from the pages themselves, sign-in through the sign-in form."""

from __future__ import annotations

import html5lib

NS = {"h": "http://www.w3.org/1999/xhtml"}


def parse(response_or_text):
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    return html5lib.parse(text, namespaceHTMLElements=False)


def csrf_token(client, path: str = "/signin") -> str:
    """The CSRF token of this client's session, read from a page's form."""
    doc = parse(client.get(path))
    for node in doc.iter("input"):
        if node.get("name") == "csrf_token":
            return node.get("value")
    raise AssertionError(f"no csrf_token on {path}")


def post(client, path: str, data: dict | None = None, *, token_from: str = "/signin", **kw):
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client, token_from))
    return client.post(path, data=data, **kw)


def signin(client, username: str, password: str = "correct horse"):
    response = post(client, "/signin", {"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def text_of(response_or_doc, element_id: str) -> str:
    doc = response_or_doc if not hasattr(response_or_doc, "get_data") else parse(response_or_doc)
    for node in doc.iter():
        if node.get("id") == element_id:
            return " ".join("".join(node.itertext()).split())
    raise AssertionError(f"no element with id {element_id!r}")


def errors_of(response) -> list[str]:
    """The error messages shown next to fields or above a form."""
    doc = parse(response)
    return [" ".join("".join(n.itertext()).split()) for n in doc.iter() if "error" in (n.get("class") or "").split()]
