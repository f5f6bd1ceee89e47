"""Closing a request as "not a fit", and telling the client kindly.

Staff choose whether the client hears from us. The default is yes: a person who
asked for help and hears nothing is left waiting and wondering, so a kind practice
says so, points to places that can help (the practice's ``REFERRALS``, 988 first)
and leaves the door open to questions. Staff may add a short personal line; the
back office shows the exact email before it is queued. The staff's internal notes
never reach the email: its template is given the client's first name, the
reference, the personal line and the referral list, nothing else.

Like the other domain functions this adds and flushes, raises a named error (from
:mod:`portal.booking.request_status`) and never commits.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from portal import audit
from portal.booking import request_status
from portal.booking.statuses import RequestStatus
from portal.extensions import db
from portal.messages import notifications
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from portal.staff.models import User

KIND = "declined"
PERSONAL_LINE_MAX = 300
# How the personal line is kept with the request's notes, so staff see what was said.
PERSONAL_LINE_NOTE = "Personal line in the email telling the client we're not the right fit:"


def email_context(personal_line: str) -> dict:
    return {"personal_line": personal_line.strip(),
            "referrals": current_app.config["REFERRALS"]}


def preview(consultation: ConsultationRequest, personal_line: str) -> tuple[str, str, str]:
    """The subject, text and HTML the client would get: the outbox stores the same."""
    email = notifications.preview_client_email(consultation, KIND,
                                               **email_context(personal_line))
    return email.subject, email.text, email.html


def decline(consultation: ConsultationRequest, *, actor: User | str, tell_client: bool,
            personal_line: str = "", note: str | None = None,
            now: datetime | None = None) -> bool:
    """Mark ``consultation`` not a fit (a booked time still ahead is cancelled first, as
    the status table says) and, with ``tell_client``, queue the kind email. False when
    it was not a fit already (a double click): nothing more is queued."""
    if not request_status.change_status(consultation, RequestStatus.NOT_A_FIT, actor=actor,
                                        note=note, now=now):
        return False
    line = personal_line.strip() if tell_client else ""
    if tell_client:
        # Declined, reopened and declined again is a new event with its own email.
        earlier = db.session.scalar(select(func.count(OutboxEmail.id)).where(
            OutboxEmail.request_id == consultation.id, OutboxEmail.kind == KIND))
        notifications.queue_client_email(consultation, f"declined:{earlier + 1}", KIND,
                                         **email_context(line))
    if line:
        request_status.add_note(consultation, f"{PERSONAL_LINE_NOTE}\n{line}", actor=actor)
    audit.record("not_a_fit_told" if tell_client else "not_a_fit_not_told", actor=actor,
                 request_id=consultation.id, personal_line=bool(line))
    return True
