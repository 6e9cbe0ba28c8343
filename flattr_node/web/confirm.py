"""Ask before acting: buttons that cannot be undone in one click (suspend,
make operator, archive, revoke a token, cancel a deposit) post first to a
question page; only its own button, which posts again with confirmed=yes,
acts. No JavaScript is needed, and the CSRF check guards both posts."""

from __future__ import annotations

from flask import flash, redirect, render_template, request


def ask_first(question: str, *, button: str, back: str, detail: str = "", danger: bool = True):
    """None when this POST is the confirmed one; else the question page to return."""
    if request.form.get("confirmed") == "yes":
        return None
    return render_template(
        "confirm_action.html", question=question, button=button, back=back, detail=detail, danger=danger, action=request.path
    )


def ask_then(question: str, *, button: str, back: str, detail: str, act, done: str):
    """A whole button that asks first: the question page, or, on the
    confirmed POST, `act()`, `done` flashed, and back to `back`."""
    asked = ask_first(question, button=button, back=back, detail=detail)
    if asked:
        return asked
    act()
    flash(done)
    return redirect(back)
