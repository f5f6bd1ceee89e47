"""Links that leave the site (in emails): built from PUBLIC_BASE_URL, never from
the request's Host header, and the signed, expiring manage token."""

from __future__ import annotations

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal.models import ConsultationRequest

MANAGE_SALT = "manage-booking"


def external_url(endpoint: str, **values) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=MANAGE_SALT)


def manage_token(consultation: ConsultationRequest) -> str:
    return _serializer().dumps(consultation.public_id)


def public_id_from_manage_token(token: str) -> str | None:
    """The public id in a valid, unexpired token; None otherwise."""
    max_age = current_app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] * 86400
    try:
        value = _serializer().loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    return value if isinstance(value, str) else None


def manage_url(consultation: ConsultationRequest) -> str:
    return external_url("public.manage", token=manage_token(consultation))


def admin_request_url(consultation: ConsultationRequest) -> str:
    return external_url("admin.request_detail", request_id=consultation.id)
