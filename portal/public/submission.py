"""The details form's one-time token and time trap, in one signed hidden value.

The token's random part becomes ``ConsultationRequest.submission_token``, so a
second submit of the same form (double click, back button, refresh) finds the
request the first one made. Its signing time tells how fast the form was
filled in: faster than a person can type is treated like the honeypot.
"""

from __future__ import annotations

import secrets
import time

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "consultation-form"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue_form_token() -> str:
    return _serializer().dumps(secrets.token_urlsafe(24))


def read_form_token(value: object) -> tuple[str, float] | None:
    """The token's random part and its age in seconds; None if forged or garbled."""
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    try:
        nonce, signed_at = _serializer().loads(value, return_timestamp=True)
    except BadSignature:
        return None
    if not isinstance(nonce, str) or len(nonce) > 64:
        return None
    return nonce, time.time() - signed_at.timestamp()


def looks_automated(token_age: float, honeypot: object) -> bool:
    """A filled honeypot or a form completed faster than FORM_MIN_SECONDS."""
    if isinstance(honeypot, str) and honeypot.strip():
        return True
    return token_age < float(current_app.config["FORM_MIN_SECONDS"])
