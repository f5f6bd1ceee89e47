"""Writing the outbox's ``calendar`` rows into therapists' CalDAV calendars (see
portal.calendars.writeback): claimed, leased, marked and retried exactly as emails are
(portal.messages.outbox), one PUT or DELETE each. A PUT of the same UID replaces the event and
a DELETE of an event already gone counts as done, so a row written twice (a sender that
died after the server took it) changes nothing. A therapist whose CalDAV calendar was
disconnected meanwhile has nothing to write: the row is marked sent and logged."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import quote

from flask import current_app

from portal.calendars.connections import calendar_of
from portal.calendars.errors import CalendarError, for_status
from portal.calendars.reading import Limits, caldav_calendar
from portal.calendars.writeback import CHANNEL, DELETE, therapist_of
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail

log = logging.getLogger("portal.calendars")
# Refusals a retry will not change: the row fails at once, for the admins to see.
PERMANENT = ("bad_address", "not_https", "refused_address", "forbidden")


def deliver_due(now: datetime | None = None) -> outbox.DeliveryReport:
    """Write every calendar row due at ``now``."""
    now = now or datetime.now(UTC)
    run_id = outbox.new_run_id()
    size = int(current_app.config["OUTBOX_BATCH_SIZE"])
    report = outbox.DeliveryReport()
    while batch := outbox.claim_batch(now, run_id, size, report=report, channel=CHANNEL):
        leased_until = batch.leased_until
        for n, item in enumerate(batch):
            # As email does: renew the rest of the batch's lease before a write that
            # might outlast it (a write may take CALENDAR_TIMEOUT_SECONDS).
            if outbox.running_out(leased_until):
                leased_until = outbox.renew_leases(batch[n:], run_id)
            if item.lost:
                continue  # another writer took it over
            write_one(item, now, run_id, report)
    return report


def write_one(item: outbox.Claimed, now: datetime, run_id: str,
              report: outbox.DeliveryReport) -> None:
    row = db.session.get(OutboxEmail, item.id)
    kind, recipient, ics, uid = row.kind, row.recipient, row.ics, row.message_id
    therapist_id = therapist_of(recipient)
    calendar = calendar_of(therapist_id) if therapist_id is not None else None
    source = (calendar.url, calendar.username, calendar.password) \
        if calendar is not None and calendar.kind == "caldav" else None
    db.session.rollback()  # nothing held while the calendar server is asked
    if source is None:
        log.info("outbox id=%s kind=%s outcome=skipped reason=no-caldav-calendar",
                 item.id, item.kind)
        outbox.mark_sent(item, run_id, report)
        return
    try:
        write(kind, *source, ics, uid)
    except CalendarError as error:
        outbox.record_failure([item], error, now, run_id, report,
                              permanent=error.code in PERMANENT)
    else:
        outbox.mark_sent(item, run_id, report)


def write(kind: str, url: str, username: str | None, password: str | None, ics: str | None,
          uid: str) -> None:
    """One PUT (``ics``) or DELETE of the event ``uid`` in the calendar at ``url``, at a
    path named after the UID (so a repeat replaces or finds the same object). Plain
    requests through the CalDAV client: its own save raises SEQUENCE by itself, and the
    SEQUENCE must stay the booking's (the client's calendar file carries the same)."""
    from portal.calendars.reading import caldav_error

    limits = Limits.from_config(current_app.config)
    deadline = time.monotonic() + limits.timeout
    calendar = caldav_calendar(url, username, password, limits, deadline)
    address = str(calendar.url.join(quote(uid, safe="@") + ".ics"))
    try:
        if kind == DELETE:
            response = calendar.client.delete(address)
            done = response.status in (200, 204, 404, 410)  # gone already: done
        else:
            response = calendar.client.put(
                address, ics, {"Content-Type": 'text/calendar; charset="utf-8"'})
            done = 200 <= response.status < 300
    except CalendarError:
        raise
    except Exception as error:
        raise caldav_error(error) from None
    if not done:
        raise for_status(response.status)
