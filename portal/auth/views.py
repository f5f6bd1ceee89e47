"""Sign-in and sign-out for the back office.

The session cookie carries the user's rotating ``session_token`` (Flask-Login's
alternative id), so logging out or changing a password on the server makes a
copied cookie worthless. Failures get one generic message; repeated failures
lock the account for a while, and both the address and the account are
rate-limited.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
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
from portal.auth.blueprint import bp
from portal.auth.forms import LoginForm
from portal.auth.sessions import SIGN_IN_MESSAGE, start_session
from portal.database import begin_write
from portal.extensions import db, limiter, login_manager
from portal.models import User, as_utc, new_session_token
from portal.scheduling import format_time

login_manager.login_view = "auth.login"
login_manager.login_message = SIGN_IN_MESSAGE
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


def after_sign_in(next_url: str | None):
    return redirect(next_url if is_safe_next(next_url) else url_for("admin.dashboard"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=account_key)
def login():
    next_url = request.values.get("next")
    if current_user.is_authenticated:
        return after_sign_in(next_url)
    form = LoginForm()
    if form.validate_on_submit():
        outcome = check_sign_in(form.email.data, form.password.data)
        if isinstance(outcome, User):
            start_session(outcome)
            return after_sign_in(next_url)
        form.form_errors.append(outcome)
    return render_template("auth/login.html", form=form, next_url=next_url)


def check_sign_in(email: str, password: str) -> User | str:
    """The signed-in user, or the message to show. Commits what it records."""
    user = find_user(email)
    if user is not None and user.active and is_locked(user):
        db.session.rollback()
        return lock_message(user.locked_until)
    usable_id = user.id if user is not None and user.active else None
    # The slow hash runs before the write lock is taken; an unknown email still
    # costs one hash check, so timing reveals nothing.
    matched = password_matches(user if usable_id else None, password)
    if usable_id is None:
        db.session.rollback()
        return GENERIC_FAILURE
    begin_write()
    # Read again under the write lock: a racing attempt may have locked it meanwhile.
    user = db.session.get(User, usable_id, populate_existing=True)
    if user is None or not user.active:
        db.session.rollback()
        return GENERIC_FAILURE
    if is_locked(user):
        db.session.rollback()
        return lock_message(user.locked_until)
    if matched:
        record_successful_login(user)
        db.session.commit()
        return user
    locked_until = record_failed_login(user)
    db.session.commit()
    return GENERIC_FAILURE if locked_until is None else lock_message(locked_until)


def lock_message(locked_until) -> str:
    return (
        "Too many failed attempts: this account is locked until "
        f"{format_time(as_utc(locked_until))} PT. Try again then, or ask an admin to unlock it."
    )


@bp.post("/logout")
def logout():
    # The write begins before current_user loads the user (as login_required would),
    # so the user is not loaded in a read transaction and then again.
    begin_write()
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    user: User = current_user._get_current_object()
    # Rotating the token makes every copy of the old cookie worthless.
    user.session_token = new_session_token()
    # The row update goes out before the audit insert: that insert's foreign-key check
    # share-locks the user row on PostgreSQL, and two sign-outs each holding that lock
    # while waiting to change the (unique, so key) token column would deadlock.
    db.session.flush()
    audit.record("auth.logout", actor=user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))
