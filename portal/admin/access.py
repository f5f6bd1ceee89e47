"""Who may see what in the back office.

Admins see every request but pending ones (not yet verified by the client). A
therapist sees only the requests assigned to them; another therapist's request is
answered with 403 and a page that says it is not theirs, a missing or pending one
with 404.
"""

from __future__ import annotations

from functools import wraps

from flask import abort, make_response, render_template
from flask_login import current_user
from sqlalchemy import Select, false

from portal.booking.statuses import RequestStatus
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.staff.models import User


def actor() -> User:
    """The signed-in user as a plain model object, for audit rows and note authors
    (``current_user`` is a proxy, which the session and ``isinstance`` don't see through)."""
    return current_user._get_current_object()


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def visible_requests(stmt: Select) -> Select:
    """Narrow a query on ConsultationRequest to what the current user may see. Nobody
    sees a pending request: its address is not confirmed, and it may never be."""
    stmt = stmt.where(ConsultationRequest.status != RequestStatus.PENDING)
    if current_user.is_admin:
        return stmt
    if current_user.therapist_id is None:
        return stmt.where(false())
    return stmt.where(ConsultationRequest.therapist_id == current_user.therapist_id)


def visible_request_or_abort(request_id: int) -> ConsultationRequest:
    """The request, if the current user may see it: 404 when missing, 403 when another
    therapist's."""
    consultation = db.session.get(ConsultationRequest, request_id)
    if consultation is None or consultation.is_pending:
        abort(404)
    if not current_user.is_admin and (
        current_user.therapist_id is None
        or consultation.therapist_id != current_user.therapist_id
    ):
        # Still a 403, but a page that says why: a therapist following an old notice
        # for a request since moved to a colleague should not think the site broke.
        page = render_template("admin/not_yours.html", reference=consultation.reference,
                               linked=current_user.therapist_id is not None)
        abort(make_response(page, 403))
    return consultation
