"""The details form's one-time token and time trap, in one signed hidden value.

The token's random part becomes ``ConsultationRequest.submission_token``, so a
second submit of the same form (double click, back button, refresh) finds the
request the first one made. The token is bound to the browser it was issued to (a
random id in its session): replayed from another browser it is no token at all,
so it can never hand over someone else's pending request. Its start time (signed
with it) tells how fast the form was filled in: faster than a person can type is
treated like the honeypot.
"""

from __future__ import annotations

import secrets
import time

from flask import current_app, session

from portal.signed import Signed

SALT = "consultation-form"
VISITOR_KEY = "visitor"


FORM_TOKEN = Signed(SALT)  # no max_age: its own start time says how old it is


def _visitor() -> str:
    """This browser's random id, kept in its session (created on first use)."""
    visitor = session.get(VISITOR_KEY)
    if not isinstance(visitor, str) or len(visitor) != 22:
        visitor = session[VISITOR_KEY] = secrets.token_urlsafe(16)
    return visitor


def issue_form_token(*, already_filled: bool = False) -> str:
    """A fresh token. ``already_filled``: for someone whose filled-in form came back
    with an unreadable token; they have spent their time on it already, so the time
    trap starts FORM_MIN_SECONDS in the past rather than making them wait again."""
    started = time.time()
    if already_filled:
        started -= float(current_app.config["FORM_MIN_SECONDS"])
    return FORM_TOKEN.dumps([secrets.token_urlsafe(24), started, _visitor()])


def read_form_token(value: object) -> tuple[str, float] | None:
    """The token's random part and the form's age in seconds; None if forged or garbled."""
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    payload = FORM_TOKEN.loads(value)
    if not (isinstance(payload, list) and len(payload) == 3):
        return None
    nonce, started, visitor = payload
    if not isinstance(nonce, str) or len(nonce) > 64 or not isinstance(started, int | float):
        return None
    if visitor != session.get(VISITOR_KEY):  # issued to another browser
        return None
    return nonce, time.time() - started


def looks_automated(token_age: float, honeypot: object) -> bool:
    """A filled honeypot or a form completed faster than FORM_MIN_SECONDS."""
    if isinstance(honeypot, str) and honeypot.strip():
        return True
    return token_age < float(current_app.config["FORM_MIN_SECONDS"])
