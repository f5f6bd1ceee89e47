"""Error pages in the site's look, and the expired-form rescue.

A CSRF failure on a form that opts in (see :func:`rerender_on_csrf_error`)
runs the view again: its form fails validation on the token alone, so the
person sees their answers kept, a plain message and a fresh token.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

from portal.extensions import db

MESSAGES = {
    400: ("Something went wrong with that request", "Go back, reload the page and try again."),
    403: ("You can't open this page", "Your account doesn't have access to it."),
    404: ("Page not found", "Check the address, or start again from the home page."),
    405: ("Page not found", "Check the address, or start again from the home page."),
    413: ("That was too much to send", "Shorten what you wrote and try again."),
    429: ("Too many attempts", "Please wait a few minutes, then try again."),
    500: (
        "Sorry, something went wrong on our side",
        "Nothing you did caused this. Please try again in a few minutes.",
    ),
}


def rerender_on_csrf_error(view: Callable) -> Callable:
    view.rerender_on_csrf_error = True
    return view


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_server_error)


def render_error(code: int):
    title, advice = MESSAGES.get(code, MESSAGES[400])
    return render_template("errors/error.html", code=code, title=title, advice=advice), code


def handle_csrf_error(error: CSRFError):
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "rerender_on_csrf_error", False):
        g.csrf_failed = True
        return current_app.ensure_sync(view)(**(request.view_args or {}))
    return render_error(400)


def handle_http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    if error.code == 500:
        return handle_server_error(error)
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built for it, so no templated page either.
        return "Bad request: unknown host.", 400, {"Content-Type": "text/plain; charset=utf-8"}
    return render_error(error.code)  # Flask-Limiter adds Retry-After to a 429


def handle_server_error(error: InternalServerError):
    # Flask has logged the exception already; the page never shows a traceback.
    db.session.rollback()
    return render_error(500)
