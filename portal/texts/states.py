"""The states of a text after its outbox row, as one type, and how the provider's
delivery reports map onto them. The values are what ``text_message.state`` stores."""

from __future__ import annotations

from enum import StrEnum


class TextState(StrEnum):
    QUEUED = "queued"  # in the outbox
    DROPPED = "dropped"  # never sent: opted out, or its moment passed in quiet hours
    SENT = "sent"  # the provider took it
    DELIVERED = "delivered"  # from here on, from the delivery reports
    UNDELIVERED = "undelivered"
    FAILED = "failed"


TEXT_STATES = tuple(TextState)
# Nothing after these: a late report never moves a text back.
FINAL = (TextState.DELIVERED, TextState.UNDELIVERED, TextState.FAILED)
# It left the portal (whatever happened next).
HANDED_OVER = (TextState.SENT, *FINAL)
# It did not arrive.
NOT_ARRIVED = (TextState.UNDELIVERED, TextState.FAILED)
# Twilio's ``MessageStatus`` words (its vocabulary, not ours) -> the state they mean here.
REPORTED = {"queued": TextState.SENT, "accepted": TextState.SENT,
            "sending": TextState.SENT, "sent": TextState.SENT,
            "delivered": TextState.DELIVERED, "undelivered": TextState.UNDELIVERED,
            "failed": TextState.FAILED}
