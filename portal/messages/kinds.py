"""Every kind of message the portal sends, in one registry.

A kind's ``name`` is what the outbox stores in its ``kind`` column (so names never
change once used) and names its templates: ``templates/<channel>/<audience>/<name>``
with ``.txt`` and ``.html``. Its ``subject`` is the default one: client subjects are
translated into the client's language, and ``%(reference)s`` and the like are filled
from the message's context. Subjects show on lock screens and shared inboxes, so they
stay neutral (``composer.check_subject``).

``audience`` says who reads it and so what it may carry: a client's messages speak
their language; a therapist's carry no client details (the reference, the time and a
back-office link only) and go to the practice's intake address when nobody is
assigned; staff messages are about the staff member's own account.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from portal.i18n import lazy_gettext as _l


class Audience(StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"  # or the practice's intake address when nobody is assigned
    STAFF = "staff"  # a back-office user, about their own account
    PRACTICE = "practice"  # the practice's intake address itself


class Channel(StrEnum):
    """The outbox's channels (its ``channel`` column). Calendar rows are writes into a
    therapist's own calendar (portal.calendars.writeback), not messages: no kind here
    uses that channel."""

    EMAIL = "email"
    CALENDAR = "calendar"
    SMS = "sms"  # texts (portal.texts): their wording lives in portal.texts.compose


@dataclass(frozen=True)
class MessageKind:
    name: str
    audience: Audience
    subject: str
    label: str  # what the back office calls it (the outbox page, a request's history)
    channel: Channel = Channel.EMAIL
    # Someone is waiting at the code page for it: it retries within seconds.
    urgent: bool = False

    @property
    def template(self) -> str:
        """Its templates' path without the ending (``.txt``, ``.html``)."""
        return f"{self.channel}/{self.audience}/{self.name}"


_CLIENT, _THERAPIST, _STAFF = Audience.CLIENT, Audience.THERAPIST, Audience.STAFF

KINDS: dict[str, MessageKind] = {kind.name: kind for kind in (
    # To the client (in their language).
    MessageKind("verification_code", _CLIENT, _l("Your confirmation code"),
                "Email check code", urgent=True),
    MessageKind("already_booked", _CLIENT, _l("About your consultation request"),
                "Already has a request", urgent=True),
    MessageKind("confirmation", _CLIENT, _l("Your free consultation is booked"),
                "Confirmation to the client"),
    MessageKind("rescheduled_client", _CLIENT, _l("Your consultation has a new time"),
                "New time, to the client"),
    MessageKind("reopened_client", _CLIENT, _l("Your consultation is back on"),
                "Back on, to the client"),
    MessageKind("cancelled_client", _CLIENT, _l("Your consultation is canceled"),
                "Canceled, to the client"),
    MessageKind("reminder", _CLIENT, _l("Reminder: your free consultation is coming up"),
                "Reminder to the client"),
    MessageKind("declined", _CLIENT, _l("An update on your consultation request"),
                "Not a fit, to the client"),
    MessageKind("missed_note", _CLIENT, _l("Sorry we missed you"),
                "Sorry we missed you, to the client"),
    MessageKind("waitlist_offer", _CLIENT, _l("An earlier consultation time is open"),
                "Waitlist: a freed time, to the client"),
    MessageKind("text_fallback", _CLIENT, _l("About your consultation"),
                "A text that could not be delivered, by email"),
    # To the therapist or the intake address (English; no client details).
    MessageKind("therapist_notice", _THERAPIST, "New consultation %(reference)s",
                "New consultation, to the therapist"),
    MessageKind("rescheduled_therapist", _THERAPIST,
                "Consultation %(reference)s has a new time", "New time, to the therapist"),
    MessageKind("reopened_therapist", _THERAPIST, "Consultation %(reference)s is back on",
                "Back on, to the therapist"),
    MessageKind("cancelled_therapist", _THERAPIST, "Consultation %(reference)s was canceled",
                "Canceled, to the therapist"),
    MessageKind("no_longer_with_you", _THERAPIST,
                "Consultation %(reference)s is no longer with you",
                "No longer with you, to the previous therapist"),
    # To a back-office user about their account (English; never a password).
    MessageKind("staff_invite", _STAFF, "Your back-office account", "Staff invite"),
    MessageKind("staff_reset", _STAFF, "Reset your back-office password", "Staff reset"),
    MessageKind("staff_locked", _STAFF, "Your back-office account was locked",
                "Staff locked"),
)}

# Kinds a person waits for at the code page (the outbox retries them within seconds).
URGENT_KINDS = frozenset(name for name, kind in KINDS.items() if kind.urgent)

