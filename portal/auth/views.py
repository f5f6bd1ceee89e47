"""Sign-in and sign-out for the back office.

The session cookie carries the user's rotating ``session_token`` (Flask-Login's
alternative id), so logging out or changing a password on the server makes a
copied cookie worthless. Failures get one generic message; repeated failures
lock the account for a while, and both the address and the account are
rate-limited.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal import audit
from portal.accounts import (
    find_user,
    is_locked,
    normalise_email,
    password_matches,
    record_failed_login,
    record_successful_login,
)
from portal.auth import bp
from portal.auth.forms import LoginForm
from portal.extensions import db, limiter, login_manager
from portal.models import User, as_utc, new_session_token
from portal.scheduling import format_time

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"

GENERIC_FAILURE = "That email and password don't match an account. Check them and try again."


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    # The cookie holds the rotating session token, never the user's id.
    return db.session.scalar(
        select(User).where(User.session_token == session_token, User.active.is_(True))
    )


def account_key() -> str:
    # Per-account limit: keyed on the submitted email, whether or not it exists.
    return "login:" + normalise_email(request.form.get("email", ""))[:254]


def is_safe_next(target: str | None) -> bool:
    """Only a path on this site: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=account_key)
def login():
    next_url = request.values.get("next")
    if current_user.is_authenticated:
        return redirect(next_url if is_safe_next(next_url) else url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = find_user(form.email.data)
        usable = user if user is not None and user.active else None
        if usable is not None and is_locked(usable):
            form.form_errors.append(lock_message(usable.locked_until))
        # An unknown email still costs one hash check, so timing reveals nothing.
        elif password_matches(usable, form.password.data):
            return sign_in(usable, next_url)
        else:
            locked_until = note_failure(usable)
            form.form_errors.append(
                GENERIC_FAILURE if locked_until is None else lock_message(locked_until))
        db.session.commit()
    return render_template("auth/login.html", form=form, next_url=next_url)


def note_failure(user: User | None) -> object | None:
    """Count a failed attempt; returns the lock's end when this attempt locked the account."""
    if user is None or not user.active:
        return None
    if record_failed_login(user):
        audit.record("auth.locked", actor=user, until=as_utc(user.locked_until).isoformat())
        return user.locked_until
    audit.record("auth.failed", actor=user)
    return None


def lock_message(locked_until) -> str:
    return (
        "Too many failed attempts: this account is locked until "
        f"{format_time(as_utc(locked_until))} PT. Try again then, or ask an admin to unlock it."
    )


def sign_in(user: User, next_url: str | None):
    record_successful_login(user)
    audit.record("auth.login", actor=user)
    db.session.commit()
    # A fresh session: nothing planted before sign-in survives it.
    session.clear()
    login_user(user)
    session["last_seen"] = now_seconds()
    return redirect(next_url if is_safe_next(next_url) else url_for("admin.dashboard"))


def now_seconds() -> int:
    return int(time.time())


@bp.post("/logout")
@login_required
def logout():
    user = current_user._get_current_object()
    # Rotating the token makes every copy of the old cookie worthless.
    user.session_token = new_session_token()
    audit.record("auth.logout", actor=user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


def enforce_idle_timeout():
    """Called before every back-office page: sign out after SESSION_IDLE_MINUTES idle."""
    if not current_user.is_authenticated:
        return None
    now = now_seconds()
    last_seen = session.get("last_seen")
    idle_limit = current_app.config["SESSION_IDLE_MINUTES"] * 60
    if not isinstance(last_seen, int) or now - last_seen > idle_limit:
        logout_user()
        session.clear()
        flash("You were signed out after a period of inactivity. Please sign in again.", "info")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    session["last_seen"] = now
    return None
