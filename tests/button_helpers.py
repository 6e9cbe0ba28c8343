"""Helpers for the button tests: html5lib parsing, CSRF tokens read from the
pages themselves, sign-in through the sign-in form."""

from __future__ import annotations

import html5lib


def parse(response_or_text):
    text = response_or_text if isinstance(response_or_text, str) else response_or_text.get_data(as_text=True)
    return html5lib.parse(text, namespaceHTMLElements=False)


def form_token(doc) -> str:
    for node in doc.iter("input"):
        if node.get("name") == "csrf_token":
            return node.get("value")
    raise AssertionError("no csrf_token in the page")


def signin(client, username: str, password: str = "correct horse", next_url: str | None = None):
    page = client.get("/signin" + (f"?next={next_url}" if next_url else ""))
    response = client.post(
        "/signin" + (f"?next={next_url}" if next_url else ""),
        data={"username": username, "password": password, "csrf_token": form_token(parse(page))},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def confirm_form(doc):
    """(action, fields) of the confirmation form."""
    for form in doc.iter("form"):
        if form.find(".//button[@id='confirm-flattr']") is not None:
            return form.get("action"), {i.get("name"): i.get("value") for i in form.iter("input")}
    raise AssertionError("no confirmation form in the page")


def text(doc) -> str:
    return " ".join("".join(doc.itertext()).split())
