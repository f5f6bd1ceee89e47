"""The ``.ics`` attached to a client's emails: one event per booking, in Pacific time.

The UID stays the same for the life of a booking so that calendar programs
update the event instead of adding a second one; SEQUENCE is the booking's
``booking_sequence`` (raised on every reschedule and cancellation). The UID's
domain is the setting ``CALENDAR_UID_DOMAIN``, not the sender's, so changing the
sender address does not turn every booking into a new event.

The files are iTIP messages (RFC 5546, carried by email as RFC 6047 says): a
booking or a new time is ``METHOD:REQUEST`` and a cancellation ``METHOD:CANCEL``
with the same UID, a higher SEQUENCE and STATUS:CANCELLED. Both name the
practice's intake address as ORGANIZER and the client as the one ATTENDEE: a
CANCEL from the organizer of an event the attendee was invited to is what
Google Calendar, Apple Calendar and Outlook act on by removing the event; a
PUBLISH file (what this was before) is only ever imported, and its "cancel"
left the event in place. RSVP=FALSE: we don't ask for a reply (the manage link
is how to change a booking). The mail part's ``method=`` parameter must match
(see ``calendar_method``). The event carries no client details but the
attendee's address (the calendar is the client's own), never their name, and no
manage link (calendars get shared and synced; the link is a key to the booking).

``consultation_invite`` makes the file for a stored request, its words in the
client's language; ``build_ics`` is the file itself, from plain values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import gettext
from icalendar import Calendar, Event, Timezone, vCalAddress

from portal.booking import next_step
from portal.booking.scheduling import PACIFIC, SLOT_LENGTH
from portal.i18n import in_language
from portal.messages.addresses import clean_address
from portal.models import ConsultationRequest

PRODID = "-//Consultation portal//EN"
REQUEST = "REQUEST"
CANCEL = "CANCEL"


def event_uid(reference: str, domain: str) -> str:
    return f"consultation-{reference}@{domain}"


def consultation_invite(consultation: ConsultationRequest, *, cancelled: bool = False) -> str:
    """The calendar file attached to a client's email about ``consultation`` (booked):
    the event, or its cancellation, in the client's language."""
    config = current_app.config
    with in_language(consultation.language):
        return build_ics(
            reference=consultation.reference, domain=config["CALENDAR_UID_DOMAIN"],
            starts_at=consultation.starts_at, ends_at=consultation.ends_at,
            sequence=consultation.booking_sequence,
            summary=gettext("Free consultation"),
            description=_description(consultation, cancelled=cancelled),
            location=next_step.location(consultation),
            organizer_email=config["PRACTICE_NOTIFY_EMAIL"],
            organizer_name=config["PRACTICE_NAME"],
            attendee_email=clean_address(consultation.email), cancelled=cancelled,
        )


def _description(consultation: ConsultationRequest, *, cancelled: bool) -> str:
    therapist = consultation.therapist
    reference = consultation.reference
    with_whom = f"{therapist.name}, {therapist.licence}" if therapist else None
    if cancelled and with_whom:
        # The calendar program removes the event; its text says why, nothing to do.
        what = gettext("Canceled: free 30-minute consultation with %(therapist)s. "
                       "Reference %(reference)s.", therapist=with_whom, reference=reference)
    elif cancelled:
        what = gettext("Canceled: free 30-minute consultation. Reference %(reference)s.",
                       reference=reference)
    elif with_whom:
        what = gettext("Free 30-minute consultation with %(therapist)s. Reference "
                       "%(reference)s. To change the time or cancel, use the link in your "
                       "email.", therapist=with_whom, reference=reference)
    else:
        what = gettext("Free 30-minute consultation. Reference %(reference)s. To change the "
                       "time or cancel, use the link in your email.", reference=reference)
    how = () if cancelled else (next_step.sentence(consultation),)
    return " ".join((*how, what, gettext("Not for emergencies: call or text 988, or call 911.")))


def build_ics(*, reference: str, domain: str, starts_at: datetime, ends_at: datetime | None,
              sequence: int, summary: str, description: str, organizer_email: str,
              attendee_email: str, organizer_name: str | None = None,
              cancelled: bool = False, stamp: datetime | None = None,
              location: str | None = None) -> str:
    """The calendar for one booking as text (CRLF line endings, as RFC 5545 wants)."""
    start = starts_at.astimezone(PACIFIC)
    end = (ends_at or starts_at + SLOT_LENGTH).astimezone(PACIFIC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", CANCEL if cancelled else REQUEST)
    # A VTIMEZONE lets every client place the time correctly, DST included.
    calendar.add_component(Timezone.from_tzid("America/Los_Angeles",
                                              first_date=start.date() - timedelta(days=366),
                                              last_date=end.date() + timedelta(days=366)))
    event = Event()
    event.add("uid", event_uid(reference, domain))
    event.add("dtstamp", stamp or datetime.now(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("sequence", sequence)
    event.add("summary", summary)
    event.add("description", description)
    if location:
        event.add("location", location)
    organizer = vCalAddress(f"mailto:{organizer_email}")
    if organizer_name:
        organizer.params["CN"] = organizer_name
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{attendee_email}")
    attendee.params.update({"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT",
                            "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"})
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def calendar_method(ics: str) -> str:
    """The METHOD of a stored calendar file, for its mail part's ``method=`` parameter
    (RFC 6047: the two must agree, or mail programs won't apply it). PUBLISH for a
    file that names none."""
    for line in ics.splitlines():
        name, _, value = line.partition(":")
        if name.upper() == "METHOD" and value.strip().isalpha():
            return value.strip().upper()
    return "PUBLISH"
