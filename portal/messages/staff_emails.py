"""Emails to staff about their own account: an invite, a password reset and a
sign-in lock. Composed like every message (:mod:`portal.messages.composer`): outbox
rows added to the caller's transaction (never sent from the web request), with a
plain-text and an HTML part; they belong to no consultation request. None carries a
password."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import current_app

from portal import links
from portal.booking.scheduling import format_time
from portal.messages.composer import compose, queue_message
from portal.messages.models import OutboxEmail
from portal.models import as_utc
from portal.staff.models import User
from portal.staff.tokens import make_token


def queue_invite(user: User, *, invited_by: User | None) -> OutboxEmail:
    hours = current_app.config["STAFF_INVITE_HOURS"]
    context = {"set_url": links.external_url("auth.password_set",
                                             token=make_token(user, "invite")),
               "hours": hours, "invited_by": invited_by.email if invited_by else None,
               "role": user.role}
    return _queue(user, "staff_invite", context)


def reset_email(user: User) -> OutboxEmail:
    """The reset email for ``user``, made (its link signed, both parts rendered) but not
    queued: "Forgot your password?" makes one for an unknown address too, for a
    stand-in user, so that both answers cost the same work."""
    return compose("staff_reset", user.email, _context(user, _reset_context(user)),
                   key=_key(user, "staff_reset"))


def stand_in_user(email: str) -> User:
    """A user that is never stored, for an address with no account."""
    return User(id=0, email=email, role="therapist", active=False,
                password_hash=secrets.token_hex(16))


def queue_locked(user: User, *, until: datetime) -> OutboxEmail:
    context = {"until": f"{format_time(as_utc(until))} PT",
               "minutes": current_app.config["LOGIN_LOCK_MINUTES"], **_reset_context(user)}
    return _queue(user, "staff_locked", context)


def _reset_context(user: User) -> dict:
    return {"reset_url": links.external_url("auth.password_set",
                                            token=make_token(user, "reset")),
            "minutes_valid": current_app.config["STAFF_RESET_MINUTES"]}


def _context(user: User, context: dict) -> dict:
    return {"email": user.email, **context}


def _key(user: User, kind: str) -> str:
    # Each of these is its own event: a second reset request is a second email.
    return f"staff:{user.id}:{kind}:{secrets.token_hex(8)}"


def _queue(user: User, kind: str, context: dict) -> OutboxEmail:
    return queue_message(kind, user.email, _context(user, context), key=_key(user, kind))
