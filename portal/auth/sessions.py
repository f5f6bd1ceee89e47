"""How long a back-office session lasts: an idle limit (SESSION_IDLE_MINUTES) and
an absolute one from sign-in (PERMANENT_SESSION_LIFETIME), whichever ends first.

Both times live in the signed session cookie; a session without them (from
before these limits, or forged without the key) counts as expired.
"""

from __future__ import annotations

import time
from functools import wraps

from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.database import begin_write
from portal.extensions import db
from portal.staff.models import User, new_session_token

SIGN_IN_MESSAGE = "Please sign in to continue."


def now_seconds() -> int:
    return int(time.time())


def start_session(user: User) -> None:
    # A fresh session: nothing planted before sign-in survives it.
    session.clear()
    login_user(user)
    session["signed_in_at"] = session["last_seen"] = now_seconds()


def end_every_session(user: User) -> None:
    """Sign ``user`` out everywhere: a new session token makes every copy of every
    cookie they had worthless. The row update goes out at once, before any audit
    insert: that insert's foreign-key check share-locks the user row on PostgreSQL,
    and two sign-outs each holding that lock while waiting to change the (unique, so
    key) token column would deadlock."""
    user.session_token = new_session_token()
    db.session.flush()


def forget_sign_in() -> None:
    """This browser is signed out: nothing of its session stays."""
    logout_user()
    session.clear()


def signed_out(message: str):
    """After the sign-out is saved: forget it here, say why, and go to the sign-in page."""
    forget_sign_in()
    flash(message, "info")
    return redirect(url_for("auth.login"))


def send_to_sign_in(message: str = SIGN_IN_MESSAGE):
    """To the sign-in page, coming back here afterwards only for a GET: a POST-only
    URL as ``next`` would answer 405 once the person has signed in."""
    flash(message, "info")
    if request.method == "GET":
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.login"))


def session_expired(now: int) -> str | None:
    """Why the current session is over, or None while it is within both limits."""
    config = current_app.config
    signed_in_at, last_seen = session.get("signed_in_at"), session.get("last_seen")
    if not isinstance(signed_in_at, int) or not isinstance(last_seen, int):
        return "Please sign in again."
    if now - signed_in_at > current_app.permanent_session_lifetime.total_seconds():
        return ("You were signed out because your session reached its time limit. "
                "Please sign in again.")
    if now - last_seen > config["SESSION_IDLE_MINUTES"] * 60:
        return "You were signed out after a period of inactivity. Please sign in again."
    return None


def enforce_session_limits():
    """Before every back-office page: sign out a session past either limit."""
    now = now_seconds()
    reason = session_expired(now)
    if reason is not None:
        forget_sign_in()
        return send_to_sign_in(reason)
    session["last_seen"] = now
    return None


# -- between the password and the second step ----------------------------------------

PENDING = "pending_sign_in"


def start_pending_sign_in(user: User, next_url: str | None,
                          enrolment: str | None = None) -> None:
    """The password was right; the second step is still to come. Only the user's id
    is kept (the cookie is signed, not encrypted), for SIGN_IN_STEP_MINUTES, and
    for a first sign-in the fingerprint of the enrolment secret this attempt made
    (:func:`portal.staff.mfa.enrolment_fingerprint`)."""
    session.clear()
    session[PENDING] = {"user": user.id, "at": now_seconds(), "next": next_url,
                        "enrollment": enrolment}


def pending_sign_in() -> dict | None:
    """The unexpired pending sign-in of this browser, or None."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("user"), int) \
            or not isinstance(pending.get("at"), int):
        return None
    if now_seconds() - pending["at"] > current_app.config["SIGN_IN_STEP_MINUTES"] * 60:
        return None
    return pending


def end_pending_sign_in() -> None:
    session.pop(PENDING, None)


def signed_in(view):
    """For the few pages outside /admin's blueprint that need a signed-in user
    (their own password): what the back office's ``before_request`` does."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        refused = require_signed_in(write=request.method == "POST")
        return refused if refused is not None else view(*args, **kwargs)

    return wrapped


def require_signed_in(*, write: bool):
    """None for a signed-in user whose session is still good, else the response that
    sends them to sign in. ``write``: begin the write transaction first (before
    current_user is loaded, so that beginning it later does not load the user again)."""
    if write:
        begin_write()
    if not current_user.is_authenticated:
        return send_to_sign_in()
    return enforce_session_limits()
