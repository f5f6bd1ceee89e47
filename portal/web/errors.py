"""Error pages in the site's look, and the expired-form rescue.

A database that cannot be reached (a restart, an outage) gets a kind 503 page
with Retry-After and one log line, never a 500 with a traceback; the pool
(with portal.database's check of pooled connections) reconnects by itself once the
database is back.

Error handlers never call views. A public form that keeps the visitor's answers
when its token has expired (see :func:`rerender_on_csrf_error`) checks the
token itself, as a form error, and the rest of Flask-WTF's check (the https
Referer) runs before the view; every other POST is refused by CSRFProtect.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from functools import wraps

from flask import Flask, current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, same_origin
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

from portal.extensions import csrf, db
from portal.i18n import lazy_gettext as _l

MESSAGES = {
    400: (_l("Something went wrong with that request"),
          _l("Go back, reload the page and try again.")),
    403: (_l("You can't open this page"), _l("Your account doesn't have access to it.")),
    404: (_l("Page not found"), _l("Check the address, or start again from the home page.")),
    405: (_l("That can't be done from this page"),
          _l("Go back and try again, or start again from the home page.")),
    413: (_l("That was too much to send"), _l("Shorten what you wrote and try again.")),
    415: (_l("That can't be sent this way"),
          _l("Go back, reload the page and fill out the form there.")),
    429: (_l("Too many attempts"), _l("Please wait a few minutes, then try again.")),
    500: (
        _l("Sorry, something went wrong on our side"),
        _l("Nothing you did caused this. Please try again in a few minutes."),
    ),
}


# Long enough for a restart to finish, short enough that a person waiting tries again.
RETRY_AFTER_SECONDS = 30


def rerender_on_csrf_error(view: Callable) -> Callable:
    """For a public form whose expired token must not cost the visitor their answers.

    CSRFProtect's global check would refuse such a POST before the view could
    re-render it, so the view is exempt from that check and its FlaskForm checks
    the token instead: a bad or missing token is then a form error, and the page
    comes back with the answers, a fresh token and a plain message
    (``friendly_csrf_error``). What the global check does besides the token, the
    same-origin Referer over https, is done here before the view runs. A view
    marked so must validate its form before it changes anything on every POST.
    """
    @wraps(view)
    def checked(*args, **kwargs):
        require_same_origin_referer()
        return view(*args, **kwargs)
    return csrf.exempt(checked)


def require_same_origin_referer() -> None:
    """Flask-WTF's strict SSL check, as CSRFProtect makes it: over https a POST must
    name one of this site's pages as its Referer (Referrer-Policy is same-origin)."""
    config = current_app.config
    if not config["WTF_CSRF_ENABLED"] or request.method not in config["WTF_CSRF_METHODS"]:
        return
    if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
        if not request.referrer:
            raise CSRFError("The referrer header is missing.")
        if not same_origin(request.referrer, f"https://{request.host}/"):
            raise CSRFError("The referrer does not match the host.")


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_server_error)


# Inside the back office a signed-in person keeps its layout and a way back to it.
BACK_OFFICE_MESSAGES = {
    403: ("You can't open this page", "Your account doesn't have access to it."),
    404: ("Page not found",
          "The request or page may have been deleted, or the address may be mistyped."),
}


def render_error(code: int, headers: dict[str, str] | None = None):
    if code in BACK_OFFICE_MESSAGES and in_back_office():
        title, advice = BACK_OFFICE_MESSAGES[code]
        page = render_template("admin/error.html", code=code, title=title, advice=advice)
        return page, code, headers or {}
    title, advice = MESSAGES.get(code, MESSAGES[400])
    page = render_template("errors/error.html", code=code, title=title, advice=advice)
    return page, code, headers or {}


def in_back_office() -> bool:
    # An unknown address under /admin has no blueprint (no route matched): the path says it.
    inside = request.blueprint == "admin" or request.path.startswith("/admin/")
    return inside and current_user.is_authenticated


def handle_csrf_error(error: CSRFError):
    return render_error(400)


def handle_http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    if error.code == 500:
        return handle_server_error(error)
    if isinstance(error, SecurityError):
        # An untrusted Host: no URL can be built for it, so no templated page either.
        return "Bad request: unknown host.", 400, {"Content-Type": "text/plain; charset=utf-8"}
    if error.code == 429 and error.response is not None:
        # A public form's own limited page (portal.public.rate_limits), made by
        # Flask-Limiter's on_breach: the form with its answers, status 429.
        return error.response
    # The headers HTTP asks for with the code (a 405's Allow) stay on the page that
    # replaces Werkzeug's; Flask-Limiter adds Retry-After to a 429 itself.
    kept = {name: value for name, value in error.get_headers() if name.lower() == "allow"}
    return render_error(error.code, kept)


def handle_server_error(error: InternalServerError):
    # Flask has logged the exception already; the page never shows a traceback.
    db.session.rollback()
    return render_error(500)


def handle_database_error(error: DBAPIError):
    """A lost or refused database connection: the 503 page. Any other database error
    (a constraint, bad SQL) is a bug and goes on to the 500 page."""
    if not (error.connection_invalidated or isinstance(error, (OperationalError, InterfaceError))):
        raise error
    with suppress(SQLAlchemyError):  # the connection may be gone; teardown removes the session
        db.session.rollback()
    current_app.logger.warning("database unavailable, answered 503 (%s): %s",
                               request.endpoint or "no endpoint", outage_reason(error))
    page = render_template("errors/unavailable.html", retry_after=RETRY_AFTER_SECONDS)
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def handle_data_error(error: DataError):
    """A value the database refuses (a NUL byte in text, a number out of range): the
    request's fault, whatever let it through the edge and the forms. The 400 page and
    one log line with the driver's code, never the value."""
    with suppress(SQLAlchemyError):
        db.session.rollback()
    current_app.logger.warning("database refused a value, answered 400 (%s): %s",
                               request.endpoint or "no endpoint", outage_reason(error))
    return render_error(400)


def outage_reason(error: DBAPIError) -> str:
    """What the driver said, without the statement or its values: the error's class and
    code; and for a connection that failed before any statement, libpq's first line
    (host and port, nothing a visitor typed)."""
    orig = error.orig
    reason = type(orig).__name__
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    if code:
        return f"{reason} {code}"
    if type(orig).__module__.startswith("psycopg") and str(orig).startswith("connection"):
        return f"{reason}: {str(orig).splitlines()[0][:200]}"
    return reason
