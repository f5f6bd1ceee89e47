"""Status changes from the detail page (portal.booking.request_status): the whole table of
moves, status by status, with the exact emails each one queues; reopening a
cancelled request as the client and therapist see it; and the audit line every
render of the detail page leaves."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from sqlalchemy import select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, RequestNote, to_db
from tests.backoffice import audit_actions
from tests.conftest import mail_app_config
from tests.factories import future_slot, make_request, soon
from tests.smtp import raw_text

app_config = mail_app_config  # the SMTP fixture's address, for the reopening story

CANCELLATION_NOTICES = ["cancelled_client", "cancelled_therapist"]
TARGETS = ["new", "contacted", "scheduled", "completed", "no_show", "cancelled", "not_a_fit"]
CANCEL = "cancel button"  # the detail page's "Cancel this consultation"

# What each move does, written out by hand (not read from the code's table): either
# ("ok", the emails it queues as (kind, to)) or ("refused", words of the reason).
TOLD_CANCELLED = (("cancelled_client", "client"), ("cancelled_therapist", "therapist"))
BACK_ON = (("reopened_client", "client"), ("reopened_therapist", "therapist"))
NONE = ()


def ok(*emails):
    return ("ok", tuple(sorted(email for group in emails for email in group)))


def refused(reason: str):
    return ("refused", reason)


NOT_YET = refused("That consultation hasn&#39;t happened yet.")
NEVER_HELD = refused("This consultation was canceled, so it didn&#39;t take place")
OVER = refused("This consultation has already taken place or was missed, so there is "
               "nothing to cancel.")
CLOSED = refused("This request is closed as not a fit, so there is nothing to cancel.")
WAITING = refused("This request is waiting for the client to confirm their email address")
OPEN_ROW = {"new": ok(), "contacted": ok(), "scheduled": ok(), "completed": NOT_YET,
            "no_show": NOT_YET, "cancelled": ok(TOLD_CANCELLED),
            "not_a_fit": ok(TOLD_CANCELLED), CANCEL: ok(TOLD_CANCELLED)}
OVER_ROW = {"new": ok(), "contacted": ok(), "scheduled": ok(), "completed": ok(),
            "no_show": ok(), "cancelled": OVER, "not_a_fit": ok(), CANCEL: OVER}
EXPECTED = {
    # A request waiting for its email confirmation: staff can't touch it.
    "pending": {**dict.fromkeys(TARGETS, WAITING), CANCEL: WAITING},
    # Open, with a time days ahead.
    "new": OPEN_ROW, "contacted": OPEN_ROW, "scheduled": OPEN_ROW,
    # Over, its time yesterday.
    "completed": OVER_ROW, "no_show": OVER_ROW,
    # Cancelled (client and therapist told), its time still ahead and free.
    "cancelled": {"new": ok(BACK_ON), "contacted": ok(BACK_ON), "scheduled": ok(BACK_ON),
                  "completed": NEVER_HELD, "no_show": NEVER_HELD, "cancelled": ok(),
                  "not_a_fit": ok(), CANCEL: ok()},
    # Not a fit, set while the time was ahead (so the booking was cancelled then).
    "not_a_fit": {"new": ok(BACK_ON), "contacted": ok(BACK_ON), "scheduled": ok(BACK_ON),
                  "completed": NEVER_HELD, "no_show": NEVER_HELD,
                  "cancelled": CLOSED, "not_a_fit": ok(), CANCEL: CLOSED},
}


def post_status(admin, request_id: int, status: str, note: str = ""):
    """Choose ``status`` in the detail page's select and save. "Not a fit" opens its own
    page first (tests/test_declines.py); this answers it without emailing the client,
    so the emails here are the status table's own."""
    response = admin.post(f"/admin/requests/{request_id}/status",
                          data={"status": status, "note": note})
    if status == "not_a_fit" and response.status_code == 200 \
            and "Tell the client?" in response.get_data(as_text=True):
        response = admin.post(f"/admin/requests/{request_id}/not-a-fit", data={
            "tell_client": "no", "note": note, "action": "continue"})
    return response


def stored(app, request_id: int) -> ConsultationRequest:
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        db.session.expunge(row)
        return row


def notices(app, request_id: int) -> list[str]:
    """The kinds of email queued about the request, sorted."""
    with app.app_context():
        return sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == request_id)))


def request_in(status: str, therapist: Therapist, n: int) -> ConsultationRequest:
    """A request of ``status`` as it would be reached, at its own time (``n``)."""
    if status in ("completed", "no_show"):
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1, hours=n)
    else:
        start = future_slot(days=6 + n, hour_utc=19)  # clear of the cast's own bookings
    row = make_request(therapist, start, status=status)
    if status in ("cancelled", "not_a_fit"):
        row.cancelled_at, row.booking_sequence = to_db(datetime.now(UTC)), 1
    return row


def emails_about(app, request_id: int, client: str, therapist: str) -> tuple:
    with app.app_context():
        rows = db.session.execute(select(OutboxEmail.kind, OutboxEmail.recipient).where(
            OutboxEmail.request_id == request_id)).all()
    who = {client: "client", therapist: "therapist"}
    return tuple(sorted((kind, who.get(recipient, recipient)) for kind, recipient in rows))


def offered(page: str) -> list[str]:
    form = re.search(r'<select[^>]*name="status".*?</select>', page, re.S)
    return re.findall(r'<option[^>]*value="([^"]+)"', form.group(0)) if form else []


@pytest.mark.parametrize("current", list(EXPECTED))
def test_every_move_from_each_status_and_the_emails_it_sends(app, admin, cast, current):
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        actions = [*TARGETS, CANCEL]
        rows = {action: request_in(current, maya, n) for n, action in enumerate(actions)}
        db.session.commit()
        ids = {action: row.id for action, row in rows.items()}
        clients = {action: row.email for action, row in rows.items()}
        therapist_email = maya.email

    # The select offers exactly the moves the table allows (none at all for pending).
    page = admin.get(f"/admin/requests/{ids['new']}")
    allowed = [t for t in TARGETS if EXPECTED[current][t][0] == "ok"]
    assert page.status_code in ((200, 404) if current == "pending" else (200,))
    actual = {"select offers": offered(page.get_data(as_text=True))}
    expected = {"select offers": allowed}
    for action in actions:
        rid, client = ids[action], clients[action]
        outcome, detail = EXPECTED[current][action]
        expected[action] = (outcome, ("cancelled" if action == CANCEL else action)
                            if outcome == "ok" else current, detail)
        if action == CANCEL:  # a redirect back to the page, with the reason flashed
            response = admin.post(f"/admin/requests/{rid}/cancel", follow_redirects=True)
        else:
            response = post_status(admin, rid, action)
        text, code = response.get_data(as_text=True), response.status_code
        # Pending requests may be hidden from staff altogether (404): refused too.
        shown = [reason for _, reason in (WAITING, NOT_YET, NEVER_HELD, OVER, CLOSED)
                 if reason in text] + (["404"] if code == 404 else [])
        if shown or code in (400, 404):
            got = ("refused", detail if detail in shown or "404" in shown else shown)
        elif code in (200, 302):
            got = ("ok", emails_about(app, rid, client, therapist_email))
        else:
            got = (f"HTTP {code}", None)
        actual[action] = (got[0], stored(app, rid).status, got[1])
        if got[0] == "refused":  # nothing was queued either
            assert emails_about(app, rid, client, therapist_email) == (), action
    assert actual == expected


def test_completed_or_no_show_need_a_time_that_has_begun(app, admin):
    with app.app_context():
        unbooked = make_request(None, None, first_name="Unbooked").id
        db.session.commit()
    response = post_status(admin, unbooked, "completed")
    assert response.status_code == 400
    assert "This request has no consultation time" in response.get_data(as_text=True)
    assert stored(app, unbooked).status == "new"


def test_not_a_fit_with_a_future_time_cancels_it_first(app, admin, cast):
    assert post_status(admin, cast.mine, "not_a_fit", "Needs inpatient care").status_code == 302
    row = stored(app, cast.mine)
    assert row.status == "not_a_fit" and row.cancelled_at is not None
    actions = audit_actions(app, cast.mine)
    assert actions.index("booking_cancelled") < actions.index("status_changed")
    with app.app_context():  # the trail names the status staff changed from
        detail = db.session.scalar(select(AuditEvent.detail).where(
            AuditEvent.request_id == cast.mine, AuditEvent.action == "status_changed"))
    assert json.loads(detail) == {"previous_status": "new", "status": "not_a_fit"}
    assert notices(app, cast.mine) == CANCELLATION_NOTICES  # client and therapist are told
    with app.app_context():  # the time is free for someone else
        maya = db.session.get(Therapist, cast.therapist_id)
        make_request(maya, row.starts_at, first_name="Next")
        db.session.commit()


def test_completed_after_the_time(app, admin):
    with app.app_context():
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        rid = make_request(None, past, first_name="Past").id
        db.session.commit()
    assert post_status(admin, rid, "completed").status_code == 302
    assert stored(app, rid).status == "completed"


def test_reopening_when_the_time_was_taken_meanwhile(app, admin, cast):
    assert post_status(admin, cast.mine, "cancelled").status_code == 302
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        make_request(maya, stored(app, cast.mine).starts_at, first_name="Taker")
        db.session.commit()
    response = post_status(admin, cast.mine, "contacted", "Client called back")
    assert response.status_code == 400
    assert "That time is now taken by another booking" in response.get_data(as_text=True)
    assert stored(app, cast.mine).status == "cancelled"
    assert notices(app, cast.mine) == CANCELLATION_NOTICES  # no "back on" email
    with app.app_context():  # nothing half-stored: not even the note
        assert db.session.scalar(select(RequestNote.id)) is None


def test_reopening_when_the_person_has_another_open_request(app, admin, cast):
    assert post_status(admin, cast.mine, "not_a_fit").status_code == 302
    mine = stored(app, cast.mine)
    with app.app_context():
        make_request(first_name="Again", email=mine.email, phone=mine.phone)
        db.session.commit()
    response = post_status(admin, cast.mine, "new")
    assert response.status_code == 400
    assert "This person has another open request" in response.get_data(as_text=True)
    assert stored(app, cast.mine).status == "not_a_fit"
    assert notices(app, cast.mine) == CANCELLATION_NOTICES


def test_reopening_after_the_time_has_passed_is_refused(app, admin):
    with app.app_context():
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        rid = make_request(None, past, status="cancelled", cancelled_at=to_db(past)).id
        db.session.commit()
    page = admin.get(f"/admin/requests/{rid}").get_data(as_text=True)
    assert offered(page) == ["cancelled", "not_a_fit"]
    response = post_status(admin, rid, "scheduled")
    assert response.status_code == 400
    assert "This consultation&#39;s time has passed" in response.get_data(as_text=True)
    assert stored(app, rid).status == "cancelled"
    assert notices(app, rid) == []


def test_reopening_tells_client_and_therapist_with_the_same_calendar_event(
        app, admin, cast, smtp_server):
    start = soon(6)  # inside the reminder window: the reopened time earns its reminder
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        row = make_request(maya, start, first_name="Zebulonia", last_name="Quixotrane",
                           email="zebulonia@example.com", phone="+14155550187",
                           message="SENTINEL private", zip_code="95971")
        db.session.commit()
        rid, reference, therapist_email = row.id, row.reference, maya.email
        assert notifications.queue_due_reminders() == 1
        db.session.commit()
        # The client has heard of the booking, so the cancellation goes to them too.
        assert outbox.deliver_due().sent == 1
    assert admin.post(f"/admin/requests/{rid}/cancel").status_code == 302
    assert post_status(admin, rid, "scheduled").status_code == 302
    row = stored(app, rid)
    assert row.status == "scheduled" and row.cancelled_at is None
    assert row.reminder_queued_at is None and row.booking_sequence == 2
    with app.app_context():
        assert notifications.queue_due_reminders() == 1  # a fresh reminder for the time
        db.session.commit()
        kinds = list(db.session.execute(select(OutboxEmail.kind, OutboxEmail.recipient,
                                               OutboxEmail.status)
                                        .where(OutboxEmail.request_id == rid)
                                        .order_by(OutboxEmail.id)))
        assert [tuple(k) for k in kinds] == [
            ("reminder", "zebulonia@example.com", "sent"),
            ("cancelled_client", "zebulonia@example.com", "queued"),
            ("cancelled_therapist", therapist_email, "queued"),
            ("reopened_client", "zebulonia@example.com", "queued"),
            ("reopened_therapist", therapist_email, "queued"),
            ("reminder", "zebulonia@example.com", "queued"),
        ]
        assert outbox.deliver_due().sent == 5

    [back_on] = [m for m in smtp_server.to("zebulonia@example.com")
                 if m["Subject"] == "Your consultation is back on"]
    assert "Good news: your free consultation is back on." in back_on.get_body(
        ("plain",)).get_content()
    events = {}
    for message in smtp_server.to("zebulonia@example.com"):
        for part in message.iter_attachments():
            if part.get_content_type() == "text/calendar":
                [event] = icalendar.Calendar.from_ical(part.get_payload(decode=True)).walk(
                    "VEVENT")
                events[message["Subject"]] = event
    cancelled, reopened = (events["Your consultation is canceled"],
                           events["Your consultation is back on"])
    assert str(reopened["UID"]) == str(cancelled["UID"])
    assert int(reopened["SEQUENCE"]) > int(cancelled["SEQUENCE"])
    assert (str(cancelled["STATUS"]), str(reopened["STATUS"])) == ("CANCELLED", "CONFIRMED")
    assert reopened.decoded("DTSTART").astimezone(UTC) == start

    [notice] = [m for m in smtp_server.to(therapist_email)
                if m["Subject"] == f"Consultation {reference} is back on"]
    raw = raw_text(notice)
    text = notice.get_body(("plain",)).get_content()
    assert reference in text and f"https://portal.example.com/admin/requests/{rid}" in text
    assert "Time: " in text
    for private in ("Zebulonia", "Quixotrane", "zebulonia@", "555-0187", "5550187",
                    "SENTINEL", "95971"):
        assert private not in raw and private not in text


def test_every_render_of_the_detail_page_is_audited(app, admin, cast):
    assert admin.get(f"/admin/requests/{cast.mine}").status_code == 200
    bad = admin.post(f"/admin/requests/{cast.mine}/status", data={"status": "bogus"})
    assert bad.status_code == 400 and "Rosa Garcia" in bad.get_data(as_text=True)
    assert admin.post(f"/admin/requests/{cast.mine}/notes", data={"body": ""}).status_code == 400
    assert audit_actions(app, cast.mine).count("request_viewed") == 3


def test_no_staff_move_leads_to_pending(app, admin, cast):
    response = post_status(admin, cast.mine, "pending")
    assert response.status_code == 400
    assert stored(app, cast.mine).status == "new"
    assert notices(app, cast.mine) == []
