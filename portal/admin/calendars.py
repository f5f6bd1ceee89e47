"""A therapist's own calendar in the back office (admins only, on the therapist's page):
connect a secret iCalendar address or a CalDAV calendar, test it, disconnect it, and the
private feed of their consultations with "make a new link"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import flash

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp, own_transactions
from portal.admin.forms import CalendarForm
from portal.booking.therapists import Therapist
from portal.calendars import connections, feed
from portal.calendars.errors import CalendarError
from portal.calendars.models import TherapistCalendar
from portal.calendars.sync import CalendarProblem, is_stale, problems
from portal.extensions import db
from portal.web.transaction import flash_when_saved, writing


@dataclass
class CalendarPanel:
    """What the therapist's page shows about their calendars."""

    calendar: TherapistCalendar | None
    shown_address: str
    problem: CalendarProblem | None
    feed_url: str | None
    form: CalendarForm


def calendar_panel(therapist: Therapist, form: CalendarForm | None = None) -> CalendarPanel:
    calendar = connections.calendar_of(therapist.id)
    stored_feed = feed.feed_of(therapist.id)
    found = problems(therapist_id=therapist.id) if calendar is not None else []
    return CalendarPanel(calendar, shown_address(calendar), found[0] if found else None,
                         feed.feed_url(stored_feed.token) if stored_feed else None,
                         form if form is not None else CalendarForm())


def shown_address(calendar: TherapistCalendar | None) -> str:
    """A secret iCalendar address is a password: only its server is shown."""
    if calendar is None:
        return ""
    if calendar.kind == "ics":
        return f"a secret address at {urlsplit(calendar.url).hostname}"
    return f"{calendar.url} as {calendar.username}"


def _therapist(therapist_id: int) -> Therapist:
    from portal.admin.therapists import therapist_or_404
    return therapist_or_404(therapist_id)


def _back(therapist_id: int):
    from portal.admin.therapists import to_therapist_page
    return to_therapist_page(therapist_id)


@bp.post("/therapists/<int:therapist_id>/calendar")
@own_transactions  # the connection is committed before the test reads the network
@admin_required
def therapist_calendar_connect(therapist_id: int):
    from portal.admin.therapists import render_therapist_form
    therapist = _therapist(therapist_id)
    form = CalendarForm()
    if not form.validate_on_submit():
        return render_therapist_form(therapist, calendar_form=form)
    try:
        with writing():
            connections.connect(therapist, form.kind.data, form.url.data,
                                username=form.username.data, password=form.password.data)
            audit.record("calendar_connected", actor=actor(), therapist_id=therapist_id,
                         kind=form.kind.data)
    except CalendarError as error:
        form.url.errors.append(error.words)
        return render_therapist_form(_therapist(therapist_id), calendar_form=form)
    flash("Calendar connected. " + connections.test(therapist_id), "info")
    return _back(therapist_id)


@bp.post("/therapists/<int:therapist_id>/calendar/test")
@own_transactions  # the test stores what it read itself (connections.test)
@admin_required
def therapist_calendar_test(therapist_id: int):
    _therapist(therapist_id)
    # The write the blueprint began for this POST holds nothing: end it, so the test
    # reads the network with no lock held.
    db.session.rollback()
    flash(connections.test(therapist_id), "info")
    return _back(therapist_id)


@bp.post("/therapists/<int:therapist_id>/calendar/disconnect")
@admin_required
def therapist_calendar_disconnect(therapist_id: int):
    therapist = _therapist(therapist_id)
    if connections.disconnect(therapist):
        audit.record("calendar_disconnected", actor=actor(), therapist_id=therapist_id)
    flash_when_saved("Calendar disconnected: its busy times no longer count.", "info")
    return _back(therapist_id)


@bp.post("/therapists/<int:therapist_id>/calendar/feed")
@admin_required
def therapist_calendar_feed(therapist_id: int):
    _therapist(therapist_id)
    renewing = feed.feed_of(therapist_id) is not None
    feed.feed_token(therapist_id, new=True)
    audit.record("calendar_feed_renewed" if renewing else "calendar_feed_made",
                 actor=actor(), therapist_id=therapist_id)
    flash_when_saved("A new feed link was made; the old one no longer works." if renewing
                     else "The feed link was made.", "info")
    return _back(therapist_id)


def is_offering_no_times(calendar: TherapistCalendar | None) -> bool:
    return calendar is not None and is_stale(calendar, datetime.now(UTC))
