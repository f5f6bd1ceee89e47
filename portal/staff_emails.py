"""Emails to staff about their own account: an invite, a password reset and a
sign-in lock. Like :mod:`portal.notifications` they are outbox rows added to the
caller's transaction (never sent from the web request), with a plain-text and an
HTML part; they belong to no consultation request. None carries a password."""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import make_msgid

from flask import current_app, render_template

from portal import links
from portal.addresses import clean_address
from portal.extensions import db
from portal.models import OutboxEmail, User, as_utc
from portal.notifications import _practice, _sender_domain, check_subject
from portal.scheduling import format_time
from portal.staff_tokens import make_token


def queue_invite(user: User, *, invited_by: User | None) -> OutboxEmail:
    hours = current_app.config["STAFF_INVITE_HOURS"]
    context = {"set_url": links.external_url("auth.password_set",
                                             token=make_token(user, "invite")),
               "hours": hours, "invited_by": invited_by.email if invited_by else None,
               "role": user.role}
    return _queue(user, "staff_invite", "Your back-office account", "staff_invite", context)


def reset_email(user: User) -> OutboxEmail:
    """The reset email for ``user``, made (its link signed, both parts rendered) but not
    queued: "Forgot your password?" makes one for an unknown address too, for a
    stand-in user, so that both answers cost the same work."""
    return _message(user, "staff_reset", "Reset your back-office password", "staff_reset",
                    _reset_context(user))


def stand_in_user(email: str) -> User:
    """A user that is never stored, for an address with no account."""
    return User(id=0, email=email, role="therapist", active=False,
                password_hash=secrets.token_hex(16))


def queue_locked(user: User, *, until: datetime) -> OutboxEmail:
    context = {"until": f"{format_time(as_utc(until))} PT",
               "minutes": current_app.config["LOGIN_LOCK_MINUTES"], **_reset_context(user)}
    return _queue(user, "staff_locked", "Your back-office account was locked", "staff_locked",
                  context)


def _reset_context(user: User) -> dict:
    return {"reset_url": links.external_url("auth.password_set",
                                            token=make_token(user, "reset")),
            "minutes_valid": current_app.config["STAFF_RESET_MINUTES"]}


def _queue(user: User, kind: str, subject: str, template: str, context: dict) -> OutboxEmail:
    row = _message(user, kind, subject, template, context)
    db.session.add(row)
    return row


def _message(user: User, kind: str, subject: str, template: str,
             context: dict) -> OutboxEmail:
    check_subject(subject)
    context = {"practice": _practice(), "email": user.email, **context}
    row = OutboxEmail(
        # Each of these is its own event: a second reset request is a second email.
        key=f"staff:{user.id}:{kind}:{secrets.token_hex(8)}", kind=kind, request_id=None,
        recipient=clean_address(user.email), subject=subject,
        message_id=make_msgid(domain=_sender_domain()),
        body_text=render_template(f"email/{template}.txt", **context),
        body_html=render_template(f"email/{template}.html", **context),
    )
    return row
