"""Sign-in and sign-out for the back office: the password, then the second step.

The session cookie carries the user's rotating ``session_token`` (Flask-Login's
alternative id), so logging out, signing in again or changing a password on the
server makes a copied cookie worthless. Every way a sign-in can fail (an unknown
address, a wrong password, a locked or deactivated account) gets the same page,
byte for byte, after the same work (one password hash): the person at the
keyboard learns nothing about which addresses have accounts. A wrong code at the
second step (reached only with the right password) is tried again there, and
counts toward the lock like a wrong password. The lock is told to the account's
owner by email and to admins on the users page.

A code is used once: :func:`portal.staff.mfa.use_second_factor` spends it with a
conditional UPDATE, so parallel posts of one code give one session on any database.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal import audit
from portal.auth.blueprint import bp
from portal.auth.forms import CodeForm, LoginForm
from portal.auth.sessions import (
    SIGN_IN_MESSAGE,
    end_every_session,
    end_pending_sign_in,
    pending_sign_in,
    signed_out,
    start_pending_sign_in,
    start_session,
)
from portal.database import KeepsChanges
from portal.extensions import db, limiter, login_manager
from portal.staff import mfa
from portal.staff.accounts import (
    find_user,
    is_locked,
    password_matches,
    record_failed_login,
    record_successful_login,
    staff_email_key,
)
from portal.staff.models import User
from portal.web.transaction import writing

login_manager.login_view = "auth.login"
login_manager.login_message = SIGN_IN_MESSAGE
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"

WRONG_CODE = "That code didn't work. Try the newest code in your app."
GENERIC_FAILURE = ("We couldn't sign you in with those details. Check them and try again, "
                   "or use \u201cForgot your password?\u201d below.")


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    # The cookie holds the rotating session token, never the user's id.
    return db.session.scalar(
        select(User).where(User.session_token == session_token, User.active.is_(True))
    )


def account_key() -> str:
    # Per-account limit: keyed on the submitted email, whether or not it exists.
    return "login:" + staff_email_key(request.form.get("email", ""))[:254]


def pending_account_key() -> str:
    # The second step's per-account limit: keyed on the user the password was right for.
    pending = pending_sign_in() or {}
    return f"login-code:{pending.get('user')}"


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


def needs_second_factor(user: User) -> bool:
    # Someone who enrolled keeps using their second factor even where it is optional.
    return current_app.config["REQUIRE_MFA"] or user.mfa_enrolled


def failed_sign_in_page(next_url: str | None = None):
    """The one page every failure gets: an empty form (nothing typed is echoed)
    and one message."""
    form = LoginForm(formdata=None)
    form.form_errors.append(GENERIC_FAILURE)
    return render_template("auth/login.html", form=form, next_url=next_url)


class SignInFailed(KeepsChanges, Exception):  # noqa: N818 - a sign-in that goes no further
    """The sign-in goes no further; what it counted toward the lock (a wrong password or
    code) is kept. ``retry``: the password was right and the code step is tried again."""

    def __init__(self, *, retry: bool = False) -> None:
        super().__init__()
        self.retry = retry


class SignInAgain(Exception):  # noqa: N818 - an outcome, undone like any error
    """This browser's pending sign-in is no good any more: nothing is kept."""


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=account_key)
def login():
    next_url = request.values.get("next")
    if current_user.is_authenticated:
        return after_sign_in(next_url)
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form, next_url=next_url)
    usable_id, matched = hash_password_once(form.email.data, form.password.data)
    if usable_id is None:
        return failed_sign_in_page(next_url)
    enrolment = None
    try:
        with writing():
            user = password_user(usable_id, matched)
            second_step = needs_second_factor(user)
            if second_step and not user.mfa_enrolled:
                # A secret of this attempt's own: one copied from an earlier attempt dies now.
                enrolment = mfa.enrolment_fingerprint(mfa.begin_enrolment(user))
            elif not second_step:
                record_successful_login(user)
    except SignInFailed:
        return failed_sign_in_page(next_url)
    if second_step:
        start_pending_sign_in(user, next_url, enrolment)
        return redirect(url_for("auth.enrol" if enrolment else "auth.login_code"))
    start_session(user)
    return after_sign_in(next_url)


def hash_password_once(email: str, password: str) -> tuple[int | None, bool]:
    """The id of the active account with this address (None without one) and whether
    the password is its own. Exactly one password hash is checked whatever the outcome,
    before the write lock is taken, for a locked account too."""
    user = find_user(email)
    usable_id = user.id if user is not None and user.active else None
    return usable_id, password_matches(user if usable_id else None, password)


def password_user(usable_id: int, matched: bool) -> User:
    """Inside the write: the user who may go on to sign in (nothing recorded yet);
    SignInFailed otherwise, with a wrong password counted."""
    # Read again under the write lock: a racing attempt may have locked it meanwhile.
    user = db.session.get(User, usable_id, populate_existing=True)
    if user is None or not user.active or is_locked(user):
        raise SignInFailed()
    if not matched:
        record_failed_login(user)
        raise SignInFailed()
    return user


def pending_user() -> User | None:
    """The user of this browser's pending sign-in; call inside a write transaction."""
    pending = pending_sign_in()
    if pending is None:
        return None
    user = db.session.get(User, pending["user"], populate_existing=True)
    if user is None or not user.active or is_locked(user):
        return None
    return user


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=pending_account_key)
def login_code():
    """The second step: a code from the authenticator app, or a recovery code."""
    if current_user.is_authenticated:
        return after_sign_in(None)
    pending = pending_sign_in()
    if pending is None:
        end_pending_sign_in()
        flash("Please sign in again.", "info")
        return redirect(url_for("auth.login"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/code.html", form=form)
    # One hash, as the password step costs: a wrong code takes as long as a wrong password.
    password_matches(None, form.code.data)
    try:
        with writing():
            user = pending_user()
            method = second_factor_used(user, form.code.data)
    except SignInFailed as failed:
        if not failed.retry:
            end_pending_sign_in()
            return failed_sign_in_page(pending.get("next"))
        # The password was right: a mistyped or stale code is tried again here (each
        # failure still counts toward the lock).
        form = CodeForm(formdata=None)
        form.code.errors = [WRONG_CODE]
        return render_template("auth/code.html", form=form)
    start_session(user)
    if method == "recovery_code":
        flash("You signed in with a recovery code; it can't be used again. "
              "Lost your phone? Ask an admin to reset your second step.", "info")
    return after_sign_in(pending.get("next"))


def second_factor_used(user: User | None, code: str) -> str:
    """Inside the write: spend the code and record the sign-in; which kind of code it
    was. SignInFailed otherwise, the failure counted toward the lock."""
    method = mfa.use_second_factor(user, code) if user is not None else None
    if method is None:
        locked = record_failed_login(user) if user is not None else None
        raise SignInFailed(retry=user is not None and not locked)
    if method == "recovery_code":
        audit.record("auth.recovery_code_used", actor=user,
                     remaining=mfa.unused_recovery_codes(user))
    record_successful_login(user, second_factor=method)
    return method


@bp.route("/login/enrol", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def enrol():
    """First sign-in with a second factor required: set up the authenticator app,
    confirm one code, then see the recovery codes once. Only the secret this sign-in
    made is shown or accepted, and every showing of it is audited."""
    if current_user.is_authenticated:
        return after_sign_in(None)
    pending = pending_sign_in()
    form = CodeForm()
    try:
        with writing():
            user = own_enrolment_user(pending)
            codes = finish_enrolment(user, pending, form)
            if codes is None:
                secret, email = user.totp_secret, user.email
                audit.record("auth.enrollment_shown", actor=user)
    except SignInAgain as again:
        end_pending_sign_in()
        if again.args:
            flash(again.args[0], "info")
        return redirect(url_for("auth.login"))
    if codes is not None:
        start_session(user)
        next_url = pending.get("next")
        return render_template("auth/recovery_codes.html", codes=codes,
                               next_url=next_url if is_safe_next(next_url) else None)
    uri = mfa.provisioning_uri(secret, email, current_app.config["PRACTICE_NAME"])
    return render_template("auth/enrol.html", form=form, qr=mfa.qr_code(uri),
                           secret=mfa.grouped_secret(secret))


def own_enrolment_user(pending: dict | None) -> User:
    user = pending_user() if pending else None
    if user is None or user.mfa_enrolled or not mfa.is_own_enrolment(
            user, pending.get("enrollment")):
        raise SignInAgain("Please sign in again.")
    return user


def finish_enrolment(user: User, pending: dict, form: CodeForm) -> list[str] | None:
    """Inside the write: with the right code posted, enrolled and signed in (the recovery
    codes, to show once); otherwise None, the form saying why when a code was wrong."""
    if not form.validate_on_submit():
        return None
    codes = mfa.finish_enrolment(user, form.code.data)
    if codes is not None:
        audit.record("auth.mfa_enrolled", actor=user)
        record_successful_login(user, second_factor="enrolment")
        return codes
    form.code.errors.append("That code didn't match. Enter the newest 6-digit code "
                            "your app shows (your phone's clock should be set "
                            "automatically).")
    db.session.refresh(user)
    if user.mfa_enrolled or not mfa.is_own_enrolment(user, pending.get("enrollment")):
        raise SignInAgain()
    return None


@bp.post("/logout")
def logout():
    # The write begins before current_user loads the user (as login_required would),
    # so the user is not loaded in a read transaction and then again.
    with writing():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        user: User = current_user._get_current_object()
        end_every_session(user)
        audit.record("auth.logout", actor=user)
    return signed_out("You have signed out.")
