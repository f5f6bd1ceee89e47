"""Links that leave the site (in emails): built from PUBLIC_BASE_URL, never from
the request's Host header, and the signed, expiring manage token."""

from __future__ import annotations

from flask import current_app, url_for

from portal.models import ConsultationRequest
from portal.signed import Signed

MANAGE_SALT = "manage-booking"
MANAGE_LINK = Signed(MANAGE_SALT,
                     max_age=lambda: current_app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] * 86400)


def external_url(endpoint: str, **values) -> str:
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)


def manage_token(consultation: ConsultationRequest) -> str:
    return MANAGE_LINK.dumps(consultation.public_id)


def public_id_from_manage_token(token: str) -> str | None:
    """The public id in a valid, unexpired token; None otherwise."""
    value = MANAGE_LINK.loads(token)
    return value if isinstance(value, str) else None


def manage_url(consultation: ConsultationRequest) -> str:
    return external_url("public.manage", token=manage_token(consultation))


def admin_request_url(consultation: ConsultationRequest) -> str:
    return external_url("admin.request_detail", request_id=consultation.id)
