"""Back-office words for what the database keeps as keys: email kinds, audit actions
and their details ("new → contacted", not ``{"previous_status": "new", ...}``), and
phone numbers as people write them. Used as template filters."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from portal.admin.blueprint import bp, pacific_datetime
from portal.booking.statuses import STATUS_LABELS
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.kinds import KINDS
from portal.models import AuditEvent
from portal.phones import display_phone

EMAIL_KINDS = {
    **{name: kind.label for name, kind in KINDS.items()},
    # The outbox's calendar channel (portal.calendars.writeback): "calendar:<id>" rows.
    "calendar_put": "Written into the therapist's own calendar",
    "calendar_delete": "Removed from the therapist's own calendar",
}

ACTIONS = {
    "calendar_connected": "Own calendar connected",
    "calendar_disconnected": "Own calendar disconnected",
    "calendar_feed_made": "Consultations feed link made",
    "calendar_feed_renewed": "Consultations feed: new link (the old one stopped)",
    "request_viewed": "Request viewed",
    "request_created": "Request received",
    "status_changed": "Status changed",
    "note_added": "Note added",
    "booking_cancelled": "Consultation canceled",
    "booking_rescheduled": "Time changed",
    "therapist_reassigned": "Therapist changed",
    "waitlist_offered": "Waitlist: freed time offered",
    "waitlist_booked": "Waitlist: offered time booked",
    "waitlist_left": "Left the waitlist",
    "request_deleted": "Request deleted",
    "email_retried": "Email queued again",
    "emails_retried": "Emails queued again",
    "requests_exported": "Requests exported",
    "retention_purge": "Old requests deleted",
    "intake_paused": "New requests paused",
    "intake_resumed": "New requests resumed",
    "therapist_deactivated": "Therapist deactivated",
    "user_created": "User added",
    "user_changed": "User changed",
    "user_unlocked": "User unlocked",
    "not_a_fit_told": "Client emailed: not a fit",
    "not_a_fit_not_told": "Client not emailed: not a fit",
    "missed_note_queued": "Sorry-we-missed-you note queued",
    "rebooked_after_no_show": "Client booked again",
}

# Detail keys in words; keys not listed are written with their underscores as spaces.
_KEYS = {
    "by": "by", "rows": "rows", "completed": "finished", "filter": "filter",
    "email_id": "email", "therapist_id": "therapist", "older_than_days": "older than (days)",
    "booked": "with a time",
}


def therapist_names() -> dict[int, str]:
    """Every therapist's name by id (a small table), for history lines about them."""
    return dict(db.session.execute(select(Therapist.id, Therapist.name)).tuples().all())


@bp.app_template_filter("email_kind")
def email_kind(kind: str) -> str:
    return EMAIL_KINDS.get(kind, kind.replace("_", " ").capitalize())


@bp.app_template_filter("audit_action")
def audit_action(action: str) -> str:
    return ACTIONS.get(action, action.replace("_", " ").capitalize())


@bp.app_template_filter("phone")
def phone(e164: str | None) -> str:
    return display_phone(e164)


def _status(key: object) -> str:
    return STATUS_LABELS.get(str(key), str(key).replace("_", " ")).lower() if key else "none"


def _time(value: object) -> str:
    if not value:
        return "no time"
    try:
        return pacific_datetime(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{key.replace('_', ' ')} {_value(v)}" for key, v in value.items())
    if value is None or value == "":
        return "none"
    return str(value).replace("_", " ")


@bp.app_template_filter("audit_detail")
def audit_detail(event: AuditEvent, therapists: dict[int, str] | None = None) -> str:
    """An audit line's detail as a sentence fragment: "new → contacted", "from Dec 8,
    2026, 10:00 AM PT to Dec 9, 2026, 11:00 AM PT", "by client"; "" when there is none.
    ``therapists``: names by id, for reassignments (ids otherwise)."""
    try:
        detail = json.loads(event.detail) if event.detail else {}
    except ValueError:
        return event.detail or ""
    if not isinstance(detail, dict):
        return _value(detail)
    names = therapists or {}

    def therapist(tid: object) -> str:
        return names.get(tid, f"therapist {tid}") if tid else "nobody"

    if event.action == "status_changed":
        return f"{_status(detail.get('previous_status'))} \u2192 {_status(detail.get('status'))}"
    if event.action == "booking_rescheduled":
        text = f"{_time(detail.get('previous_start'))} \u2192 {_time(detail.get('new_start'))}"
        if detail.get("previous_therapist_id") != detail.get("therapist_id"):
            text += (f", {therapist(detail.get('previous_therapist_id'))} \u2192 "
                     f"{therapist(detail.get('therapist_id'))}")
        return text
    if event.action == "therapist_reassigned":
        return (f"{therapist(detail.get('previous_therapist_id'))} \u2192 "
                f"{therapist(detail.get('therapist_id'))}")
    if event.action == "booking_cancelled":
        return (f"by {_value(detail.get('by'))}, was {_status(detail.get('previous_status'))}"
                if detail.get("previous_status") else f"by {_value(detail.get('by'))}")
    if event.action in ("waitlist_offered", "waitlist_booked"):
        start = detail.get("start") or detail.get("new_start")
        return f"{_time(start)}, {therapist(detail.get('therapist_id'))}"
    if event.action == "request_created":
        return "with a time" if detail.get("booked") else "without a time"
    return "; ".join(f"{_KEYS.get(key, key.replace('_', ' '))}: {_value(value)}"
                     for key, value in detail.items())
