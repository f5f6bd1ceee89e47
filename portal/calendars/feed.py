"""A therapist's private feed of their consultations, ``/calendar/<token>.ics``: any
calendar program can subscribe to it. Each consultation is "Free consultation C-…"
with the link to its back-office page (sign-in required) and nothing about the client,
under the same UID as the client's own calendar file (portal.messages.calendar_invite) so that
a calendar holding both shows one event. ``METHOD:PUBLISH``: a feed, not an invitation.

The token is 32 random bytes; the database finds it by its SHA-256 and keeps the token
itself encrypted (so the back office can show the address again). A new token replaces
the old one, which then stops working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, current_app
from icalendar import Calendar, Event
from sqlalchemy import select

from portal.booking.statuses import OPEN_STATUSES
from portal.calendars.models import CalendarFeed
from portal.extensions import db
from portal.links import admin_request_url, external_url
from portal.messages.calendar_invite import PRODID, event_uid
from portal.models import ConsultationRequest, to_db, utcnow

bp = Blueprint("calendar_feed", __name__)
# Past consultations stay in the feed this long (a calendar keeps what it was sent).
KEEP_PAST = timedelta(days=30)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_token(therapist_id: int, *, new: bool = False) -> str:
    """The therapist's feed token, made on first use; ``new``: a fresh one (the old
    stops working). The caller commits."""
    feed = feed_of(therapist_id)
    if feed is not None and not new:
        return feed.token
    token = secrets.token_urlsafe(32)
    if feed is None:
        db.session.add(CalendarFeed(therapist_id=therapist_id, token=token,
                                    token_hash=_hash(token)))
    else:
        feed.token, feed.token_hash, feed.created_at = token, _hash(token), utcnow()
    db.session.flush()
    return token


def feed_of(therapist_id: int) -> CalendarFeed | None:
    return db.session.scalar(select(CalendarFeed).where(CalendarFeed.therapist_id == therapist_id))


def feed_url(token: str) -> str:
    return external_url("calendar_feed.feed", token=token)


def therapist_for_token(token: str) -> int | None:
    if not 20 <= len(token) <= 100 or not token.isascii():
        return None
    return db.session.scalar(
        select(CalendarFeed.therapist_id).where(CalendarFeed.token_hash == _hash(token)))


def build_feed(therapist_id: int, now: datetime | None = None) -> str:
    """The therapist's open consultations with a time, as a PUBLISH calendar."""
    now = now or datetime.now(UTC)
    domain = current_app.config["CALENDAR_UID_DOMAIN"]
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "Free consultations")
    for consultation in db.session.scalars(
            select(ConsultationRequest).where(
                ConsultationRequest.therapist_id == therapist_id,
                ConsultationRequest.status.in_(OPEN_STATUSES),
                ConsultationRequest.slot_start >= to_db(now - KEEP_PAST))
            .order_by(ConsultationRequest.slot_start)):
        calendar.add_component(consultation_event(consultation, domain, now))
    return calendar.to_ical().decode("utf-8")


def consultation_event(consultation: ConsultationRequest, domain: str, now: datetime,
                       *, cancelled: bool = False) -> Event:
    """The event a therapist's calendar holds for one consultation: no client detail."""
    link = admin_request_url(consultation)
    event = Event()
    event.add("uid", event_uid(consultation.reference, domain))
    event.add("dtstamp", now)
    event.add("dtstart", consultation.starts_at)
    event.add("dtend", consultation.ends_at or consultation.starts_at + timedelta(minutes=30))
    event.add("sequence", consultation.booking_sequence or 0)
    event.add("summary", f"Free consultation {consultation.reference}")
    event.add("description", f"Open it in the back office (sign-in required): {link}")
    event.add("url", link)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


@bp.get("/calendar/<token>.ics")
def feed(token: str):
    therapist_id = therapist_for_token(token)
    if therapist_id is None:
        abort(404)
    body = build_feed(therapist_id)
    db.session.rollback()
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="consultations.ics"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
