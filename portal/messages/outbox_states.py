"""The states of an outbox row, as one type, with the groups delivery and retention
ask about. The values are what the ``status`` column of ``outbox_email`` stores."""

from __future__ import annotations

from enum import StrEnum


class OutboxState(StrEnum):
    QUEUED = "queued"  # waiting: due, or backing off after a refusal
    SENDING = "sending"  # leased by a sender
    SENT = "sent"
    FAILED = "failed"  # out of attempts, or refused for good; shown to admins
    # Made pointless while it waited (a reminder for a changed time, news of a booking
    # cancelled before it went out; see portal.messages.superseding); never sent.
    SUPERSEDED = "superseded"


# In the order the back office's outbox filter lists them.
OUTBOX_STATES = tuple(OutboxState)
# A row that may still go out: a later row of its request waits for it.
UNSENT = (OutboxState.QUEUED, OutboxState.SENDING)
# Past stopping: it went, or is going now.
OUT_OR_GOING = (OutboxState.SENT, OutboxState.SENDING)
# Not delivered, and not given up by the portal: what deleting a request would lose.
UNDELIVERED = (OutboxState.QUEUED, OutboxState.SENDING, OutboxState.FAILED)
# Never sent and no longer going to be: their content is forgotten after a while.
NEVER_SENT = (OutboxState.FAILED, OutboxState.SUPERSEDED)
