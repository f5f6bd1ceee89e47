"""Passwords by email and by hand: "Forgot your password?", the link an invite or
a reset sends, and a signed-in person changing their own.

The forgot page answers the same whether or not the address has an account. A
link works once: it is bound to the password hash it was made for (see
:mod:`portal.staff.tokens`). Changing a password ends every other session of
that person (their session token changes) and keeps this one.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from portal import audit
from portal.auth.blueprint import bp
from portal.auth.forms import ChangePasswordForm, ForgotPasswordForm, SetPasswordForm
from portal.auth.sessions import end_every_session, signed_in, signed_out, start_session
from portal.auth.views import account_key
from portal.database import KeepsChanges
from portal.extensions import db, limiter
from portal.messages.staff_emails import reset_email, stand_in_user
from portal.staff.accounts import (
    AccountError,
    find_user,
    password_matches,
    record_failed_login,
    set_password,
    staff_email_key,
)
from portal.staff.models import User
from portal.staff.tokens import user_for_token
from portal.web.transaction import writing


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=account_key)
def password_forgot():
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        return render_template("auth/forgot.html", form=form)
    with writing():
        user = find_user(form.email.data)
        known = user is not None and user.active
        # The same work either way: the email is made (link signed, both parts rendered)
        # for the account or for a stand-in that is never stored, one audit row is written
        # (admins can see someone trying addresses; the address typed is not kept) and
        # the transaction commits. Only the account's email is queued.
        message = reset_email(user if known
                              else stand_in_user(staff_email_key(form.email.data)))
        if known:
            db.session.add(message)
            audit.record("auth.reset_requested", actor=user)
        else:
            audit.record("auth.reset_unknown_address", actor="anonymous")
    # The same page either way: whether an address has an account is nobody's business.
    return render_template("auth/forgot_sent.html",
                           minutes=current_app.config["STAFF_RESET_MINUTES"])


def user_for_link(token: str, *, lock: bool = False) -> tuple[User | None, str | None]:
    for purpose in ("invite", "reset"):
        user = user_for_token(token, purpose, lock=lock)
        if user is not None:
            return user, purpose
    return None, None


@bp.route("/password/set/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def password_set(token: str):
    """Where an invite or a reset link leads: choose a password (a GET changes
    nothing, so a mail scanner opening the link uses nothing up)."""
    user, purpose = user_for_link(token)
    if user is None:
        return render_template("auth/link_invalid.html"), 410
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            with writing():
                user, purpose = user_for_link(token, lock=True)  # again, row locked: used once
                if user is None:
                    return render_template("auth/link_invalid.html"), 410
                set_password(user, form.new_password.data)
                audit.record("auth.password_set", actor=user, link=purpose)
        except AccountError as error:
            form.new_password.errors.append(error.message)
        else:
            flash("Your password is set. Sign in with it now.", "info")
            return redirect(url_for("auth.login"))
        user, purpose = user_for_link(token)
        if user is None:
            return render_template("auth/link_invalid.html"), 410
    return render_template("auth/password_set.html", form=form, email=user.email,
                           invited=purpose == "invite")


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def password_change():
    form = ChangePasswordForm()
    user: User = current_user._get_current_object()
    if form.validate_on_submit():
        try:
            with writing():
                if not password_matches(user, form.current_password.data):
                    wrong_current_password(user)
                set_password(user, form.new_password.data)  # ends every other session
                db.session.flush()
                audit.record("auth.password_changed", actor=user)
        except WrongCurrentPassword as wrong:
            if wrong.locked:
                return signed_out("You were signed out: the current password was entered "
                                  "wrongly too many times.")
            form.current_password.errors.append("That isn't your current password.")
        except AccountError as error:
            form.new_password.errors.append(error.message)
        else:
            start_session(user)  # this session, under the new token
            flash("Your password is changed. You were signed out everywhere else.", "info")
            return redirect(url_for("admin.dashboard"))
    return render_template("auth/password_change.html", form=form, email=user.email)


class WrongCurrentPassword(KeepsChanges, Exception):  # noqa: N818 - counted, then shown
    """A wrong current password, counted toward the sign-in lock (kept); ``locked``: the
    count reached the lock and every session of the person ended, this one too."""

    def __init__(self, locked: bool) -> None:
        super().__init__()
        self.locked = locked


def wrong_current_password(user: User) -> None:
    """A wrong current password counts toward the sign-in lock like one at sign-in (a
    session left open must not be a place to guess it); at the limit this session
    ends, with every other (the owner is emailed, as for any lock)."""
    # The user's row changes before any audit insert (see sessions.end_every_session).
    locked = record_failed_login(user)
    if locked is not None:
        end_every_session(user)
    audit.record("auth.password_change_refused", actor=user)
    raise WrongCurrentPassword(locked is not None)
