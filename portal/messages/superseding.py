"""What a change to a booking makes pointless in the outbox while it still waits: the
reminder of a time that moved, the news of a booking since cancelled. Such rows are
kept as ``superseded`` (for the record and their event's key) and never sent; rows
already ``sending`` or ``sent`` are past stopping."""

from __future__ import annotations

from sqlalchemy import and_, select, update

from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OUT_OR_GOING, OutboxState
from portal.models import ConsultationRequest

# What a cancellation makes pointless while it still waits: the news of a booking,
# of its new time or of its coming up, and an older cancellation (after a reopen)
# that the new one repeats. Not "no longer with you": it goes to a previous
# therapist, whom the cancellation notice (to the current one) does not reach.
CANCELLATION_SUPERSEDES = ("confirmation", "therapist_notice", "rescheduled_client",
                           "rescheduled_therapist", "reopened_client", "reopened_therapist",
                           "reminder", "cancelled_client", "cancelled_therapist")


def supersede_for_cancellation(consultation: ConsultationRequest, notice: OutboxEmail) -> None:
    """Stop what ``notice`` (a just-queued cancellation) makes pointless for its recipient.

    The rule, per request and recipient (client, therapist and intake are each
    judged on their own):

    * Earlier messages of the kinds in ``CANCELLATION_SUPERSEDES`` still
      ``queued`` (waiting, or backing off after a refusal) become ``superseded``.
      Rows already ``sending`` are past stopping: they go, and the outbox's
      per-request order sends the cancellation after them.
    * The cancellation itself is superseded when the recipient has earlier
      messages about this request and none of them was ``sent`` or is
      ``sending`` (all still waiting, refused, failed or superseded). A
      therapist whose "new consultation" notice never left does not need to
      hear that it is cancelled; a client whose confirmation was never
      delivered is not told that a booking they never saw is off.
    * A recipient with no earlier message about the request at all (a request
      from before the outbox, data entered by hand) still gets it: when in
      doubt the cancellation goes, since a missed one (someone keeping a time
      that is gone) is worse than a puzzling one.

    The limit: a server that took a message but whose reply was lost (the
    connection dropped after the data) leaves the row queued for a retry, and
    such a recipient is counted as never told.
    """
    earlier = and_(OutboxEmail.request_id == consultation.id,
                   OutboxEmail.recipient == notice.recipient, OutboxEmail.id < notice.id)
    db.session.execute(
        update(OutboxEmail)
        .where(earlier, OutboxEmail.kind.in_(CANCELLATION_SUPERSEDES),
               OutboxEmail.status == OutboxState.QUEUED)
        .values(status=OutboxState.SUPERSEDED)
        .execution_options(synchronize_session=False)
    )
    told = db.session.scalar(select(OutboxEmail.id).where(
        earlier, OutboxEmail.status.in_(OUT_OR_GOING)).limit(1))
    anything = db.session.scalar(select(OutboxEmail.id).where(earlier).limit(1))
    if told is None and anything is not None:
        notice.status = OutboxState.SUPERSEDED


def supersede_reminders(consultation: ConsultationRequest) -> int:
    """Queued reminders of a request whose time changed or was cancelled never go out.

    Rows already ``sending`` or ``sent`` are past stopping; how many were stopped.
    """
    if consultation.id is None:
        return 0
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.request_id == consultation.id, OutboxEmail.kind == "reminder",
               OutboxEmail.status == OutboxState.QUEUED)
        .values(status=OutboxState.SUPERSEDED)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
