"""Delivery through the outbox against a real SMTP server: outages, back-off, a
sender dying mid-batch, two senders at once, the sink, the background sender."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from portal.booking import consultations
from portal.extensions import db
from portal.messages import notifications, outbox, senders, upkeep
from portal.messages.models import OutboxEmail
from portal.messages.transport import sink_token
from portal.models import utcnow
from tests.conftest import BASE_TEST_CONFIG, mail_app_config
from tests.factories import future_slot, make_request, make_therapist, soon

app_config = mail_app_config  # the SMTP fixture's address, plus a test's own


def queue_requests(app, count: int) -> None:
    with app.app_context():
        therapist = make_therapist()
        for day in range(count):
            notifications.queue_request_received(
                make_request(therapist, future_slot(days=2 + day)))
        db.session.commit()


def queue_plain(app, count: int) -> None:
    """Bare outbox rows: cheaper than requests when only delivery matters."""
    with app.app_context():
        for n in range(count):
            db.session.add(OutboxEmail(
                key=f"test:{n}", kind="test", recipient=f"r{n}@example.com",
                subject=f"Test {n}", body_text="Hello", body_html="<p>Hello</p>",
                message_id=f"<test-{n}@example.com>",
            ))
        db.session.commit()


def statuses(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            select(OutboxEmail.status, func.count()).group_by(OutboxEmail.status)).all()
        return dict(rows)  # not the Result itself: dict() would take it for a mapping


def expire_leases() -> None:
    """What the clock does to a dead sender's leases (leases follow the real clock)."""
    db.session.execute(update(OutboxEmail).where(OutboxEmail.status == "sending")
                       .values(claimed_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def message_ids(smtp_server) -> list[str]:
    return [m["Message-ID"] for m in smtp_server.messages]


def two_senders_at_once(app) -> list:
    """``outbox.deliver_due`` in two threads at once; their reports (errors re-raised)."""
    reports, errors = [], []

    def sender():
        try:
            with app.app_context():
                reports.append(outbox.deliver_due())
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    return reports


@pytest.mark.parametrize("outage", ["refused", "tempfail"])
def test_outage_loses_nothing_and_sends_nothing_twice(app, runner, smtp_server, outage):
    if outage == "refused":
        smtp_server.stop()
    else:
        smtp_server.set_mode("tempfail")
    queue_requests(app, 10)
    down = runner.invoke(args=["outbox", "send"])
    assert down.exit_code == 0, down.output
    # Each request's first email is tried; its second waits its turn.
    assert "Sent 0, will retry 10" in down.output and "20 waiting" in down.output
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail)).all()
        assert len(rows) == 20 and all(r.status == "queued" for r in rows)
        tried = [r for r in rows if r.kind == "confirmation"]
        assert all(r.attempts == 1 and r.last_error for r in tried)
        assert all(r.next_attempt_at > utcnow() for r in tried)  # backing off
        assert all(r.attempts == 0 for r in rows if r.kind == "therapist_notice")

    smtp_server.reset()  # the server is back
    assert "Sent 0," in runner.invoke(args=["outbox", "send"]).output  # still backing off
    back = runner.invoke(args=["outbox", "send", "--now"])
    assert back.exit_code == 0 and "Sent 20," in back.output, back.output
    again = runner.invoke(args=["outbox", "send", "--now"])
    assert "Sent 0," in again.output
    assert len(smtp_server.messages) == 20
    assert len(set(message_ids(smtp_server))) == 20
    assert statuses(app) == {"sent": 20}


def test_backoff_grows_and_gives_up_after_max_attempts(app, smtp_server):
    app.config.update(OUTBOX_MAX_ATTEMPTS=3, OUTBOX_BACKOFF_BASE_SECONDS=60)
    smtp_server.set_mode("tempfail")
    queue_plain(app, 1)
    delays = []
    with app.app_context():
        for attempt in range(3):
            # The back-off counts from the clock during the run (a loaded machine may
            # take seconds): bound it by the clock before and after.
            before = datetime.now(UTC).replace(tzinfo=None)
            report = outbox.deliver_due(datetime.now(UTC), include_waiting=True)
            after = datetime.now(UTC).replace(tzinfo=None)
            row = db.session.scalars(select(OutboxEmail)).one()
            assert row.attempts == attempt + 1
            if attempt < 2:
                assert report.retrying == 1 and row.status == "queued"
                delays.append(((row.next_attempt_at - after).total_seconds(),
                               (row.next_attempt_at - before).total_seconds()))
            else:
                assert report.failed == 1 and row.status == "failed"
            assert "451" in row.last_error
            db.session.rollback()
    (shortest, longest), (second_shortest, second_longest) = delays
    assert longest >= 30 and shortest <= 60
    assert second_longest >= 60 and second_shortest <= 120


def test_a_permanent_refusal_fails_at_once_and_the_rest_still_go(app, smtp_server):
    queue_plain(app, 3)
    smtp_server.set_mode("reject")
    with app.app_context():
        report = outbox.deliver_due()
        rows = db.session.scalars(select(OutboxEmail)).all()
    assert report.failed == 3 and report.retrying == 0
    assert all(row.status == "failed" and row.attempts == 1 for row in rows)
    assert all("550" in row.last_error for row in rows)
    smtp_server.set_mode("accept")
    later = OutboxEmail(key="test:after", kind="test", recipient="x@example.com",
                                   subject="After", body_text="Hello", body_html="<p>Hello</p>",
                                   message_id="<test-after@example.com>")
    with app.app_context():
        db.session.add(later)
        db.session.commit()
        assert outbox.deliver_due(include_waiting=True).sent == 1  # failed rows stay failed
    assert statuses(app) == {"failed": 3, "sent": 1}


def test_a_sender_killed_mid_batch_loses_nothing_and_resends_at_most_one(
        app, smtp_server, monkeypatch):
    queue_plain(app, 6)
    real_mark, marks = outbox.mark_sent, []

    class Killed(BaseException):
        pass

    def mark_then_die(item, run_id, report):
        marks.append(item.id)
        if len(marks) == 3:
            raise Killed  # the process dies after the server took the 3rd message
        real_mark(item, run_id, report)

    monkeypatch.setattr(outbox, "mark_sent", mark_then_die)
    now = datetime.now(UTC)
    with app.app_context():
        with pytest.raises(Killed):
            outbox.deliver_due(now)
        db.session.rollback()
    monkeypatch.setattr(outbox, "mark_sent", real_mark)
    assert statuses(app) == {"sent": 2, "sending": 4}
    with app.app_context():
        assert outbox.deliver_due(now).sent == 0  # the lease still holds
        expire_leases()
        assert outbox.deliver_due(now).sent == 4  # taken over after expiry
    assert statuses(app) == {"sent": 6}
    ids = message_ids(smtp_server)
    assert len(set(ids)) == 6 and len(ids) == 7  # one resend, same Message-ID


def test_two_senders_at_once_deliver_each_message_exactly_once(app, smtp_server):
    app.config["OUTBOX_BATCH_SIZE"] = 10
    queue_plain(app, 200)
    reports = two_senders_at_once(app)
    assert sum(r.sent for r in reports) == 200
    assert all(r.sent > 0 for r in reports)  # both took part
    ids = message_ids(smtp_server)
    assert len(ids) == 200 and len(set(ids)) == 200
    assert statuses(app) == {"sent": 200}


SENDER_PROCESS = """
import json, sys
from portal import create_app
from portal.messages import outbox
app = create_app(json.loads(sys.argv[1]))
with app.app_context():
    print(outbox.deliver_due().sent)
"""


def test_two_sender_processes_deliver_each_message_exactly_once(app, smtp_server):
    """Real processes, as `outbox work` runs in production: no shared Python state."""
    app.config["OUTBOX_BATCH_SIZE"] = 10
    queue_plain(app, 200)
    config = {key: app.config[key] for key in BASE_TEST_CONFIG} | {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "MAIL_PORT": smtp_server.port, "OUTBOX_BATCH_SIZE": 10}
    root = Path(__file__).resolve().parent.parent
    processes = [subprocess.Popen([sys.executable, "-c", SENDER_PROCESS, json.dumps(config)],
                                  cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    sent = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(sent) == 200
    ids = message_ids(smtp_server)
    assert len(ids) == 200 and len(set(ids)) == 200
    assert statuses(app) == {"sent": 200}


# -- one request's mail in order; mail a cancellation made pointless never goes ------

def outbox_by(kind: str, request_id: int) -> OutboxEmail:
    return db.session.scalars(select(OutboxEmail).where(
        OutboxEmail.kind == kind, OutboxEmail.request_id == request_id)).one()


def test_a_later_email_of_a_request_waits_while_an_earlier_one_is_refused(app, smtp_server):
    queue_requests(app, 2)  # each: the client's confirmation, then the therapist's notice
    with app.app_context():
        held, other = db.session.scalars(
            select(OutboxEmail.request_id).distinct().order_by(OutboxEmail.request_id)).all()
        first = outbox_by("confirmation", held)
        second = outbox_by("therapist_notice", held)
        smtp_server.handler.defer_ids.add(first.message_id)  # greylisted: 451
        report = outbox.deliver_due()
        assert (report.sent, report.retrying) == (2, 1)  # the other request's two went
        report = outbox.deliver_due(include_waiting=True)  # still refused: still waiting
        assert (report.sent, report.retrying) == (0, 1)
        db.session.expire_all()
        assert (first.status, first.attempts, second.status) == ("queued", 2, "queued")
        assert {m["Message-ID"] for m in smtp_server.messages} == {
            outbox_by(kind, other).message_id for kind in ("confirmation", "therapist_notice")}

        smtp_server.handler.defer_ids.clear()
        assert outbox.deliver_due(include_waiting=True).sent == 2
        assert message_ids(smtp_server)[-2:] == [first.message_id, second.message_id]


@pytest.mark.parametrize("app_config", [{"OUTBOX_BATCH_SIZE": 4}], indirect=True)
def test_two_senders_never_send_a_request_s_later_email_first(app, smtp_server):
    """Three requests, three emails each, queued round by round: the first sender's
    batch would hold a request's first email at its end while the second sender's
    batch holds that request's second one at its start."""
    smtp_server.set_mode("slow", 0.03)
    with app.app_context():
        requests = [make_request() for _ in range(3)]
        db.session.flush()
        for step in range(3):
            for consultation in requests:
                db.session.add(OutboxEmail(
                    key=f"order:{consultation.id}:{step}", kind="test",
                    request_id=consultation.id, recipient=f"r{consultation.id}@example.com",
                    subject=f"Step {step}", body_text="Hi", body_html="<p>Hi</p>",
                    message_id=f"<order-{consultation.id}-{step}@example.com>"))
        db.session.commit()
    two_senders_at_once(app)
    with app.app_context():  # a sender may have stopped early: its last claim was empty
        outbox.deliver_due()
    assert statuses(app) == {"sent": 9}
    by_recipient: dict[str, list[str]] = {}
    for message in smtp_server.messages:
        by_recipient.setdefault(str(message["To"]), []).append(str(message["Subject"]))
    assert all(subjects == ["Step 0", "Step 1", "Step 2"]
               for subjects in by_recipient.values()), by_recipient


def test_a_confirmation_still_queued_when_the_booking_is_cancelled_is_never_sent(
        app, smtp_server):
    with app.app_context():
        consultation = make_request(make_therapist(), future_slot(days=3))
        notifications.queue_request_received(consultation)
        db.session.commit()
        assert consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
        assert outbox.deliver_due(include_waiting=True).attempted == 0
        kinds = dict(db.session.execute(select(OutboxEmail.kind, OutboxEmail.status)).all())
    # Nobody heard of the booking, so nobody needs to hear it is off.
    assert kinds == {"confirmation": "superseded", "therapist_notice": "superseded",
                     "cancelled_client": "superseded", "cancelled_therapist": "superseded"}
    assert not smtp_server.messages


def test_a_cancellation_reaches_whoever_heard_of_the_booking_and_no_one_else(
        app, smtp_server):
    """The client's confirmation went; the therapist's notice was still being
    refused when the client cancelled."""
    with app.app_context():
        therapist = make_therapist(email="t@example.com")
        consultation = make_request(therapist, future_slot(days=3), email="c@example.com")
        notifications.queue_request_received(consultation)
        db.session.commit()
        smtp_server.handler.defer_ids.add(outbox_by("therapist_notice", consultation.id)
                                          .message_id)
        assert outbox.deliver_due().sent == 1
        assert consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
        smtp_server.handler.defer_ids.clear()
        assert outbox.deliver_due(include_waiting=True).sent == 1
        kinds = dict(db.session.execute(select(OutboxEmail.kind, OutboxEmail.status)).all())
    assert kinds == {"confirmation": "sent", "therapist_notice": "superseded",
                     "cancelled_client": "sent", "cancelled_therapist": "superseded"}
    assert [(str(m["To"]), str(m["Subject"])) for m in smtp_server.messages] == [
        ("c@example.com", "Your free consultation is booked"),
        ("c@example.com", "Your consultation is canceled")]


def test_log_lines_name_id_kind_and_outcome_but_no_address(app, smtp_server, caplog):
    queue_requests(app, 1)
    with caplog.at_level(logging.INFO, logger="portal.messages.outbox"), app.app_context():
        outbox.deliver_due()
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.messages.outbox"]
    assert len(lines) == 2
    assert all("outcome=sent" in line and "kind=" in line and "id=" in line for line in lines)
    assert not any("@" in line for line in lines)


def test_sink_backend_writes_eml_files_and_sends_nothing(app, tmp_path, caplog):
    app.config.update(MAIL_BACKEND="sink", MAIL_SINK_DIR=str(tmp_path / "mail"))
    queue_requests(app, 1)
    with caplog.at_level(logging.INFO, logger="portal.mail"), app.app_context():
        assert outbox.deliver_due().sent == 2
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert {f.name.split("-")[1] for f in files} == {"confirmation", "therapist_notice"}
    with app.app_context():  # each named after its Message-ID, so it can be found again
        tokens = {sink_token(m) for m in db.session.scalars(select(OutboxEmail.message_id))}
    assert {f.stem.split("-")[2] for f in files} == tokens
    assert all(b"Message-ID: <" in f.read_bytes() for f in files)
    assert sum("mail sink wrote" in r.getMessage() for r in caplog.records) == 2


def test_sent_bodies_are_forgotten_after_the_keeping_period(app, smtp_server):
    queue_plain(app, 2)
    with app.app_context():
        outbox.deliver_due()
        db.session.execute(update(OutboxEmail).where(OutboxEmail.key == "test:0")
                           .values(sent_at=utcnow() - timedelta(days=15)))
        db.session.commit()
        assert upkeep.forget_sent_bodies() == 1
        rows = {r.key: r for r in db.session.scalars(select(OutboxEmail))}
        assert rows["test:0"].body_text is None and rows["test:0"].status == "sent"
        assert rows["test:1"].body_text == "Hello"


def test_outbox_work_queues_reminders_and_delivers(app, runner, smtp_server):
    with app.app_context():
        make_request(make_therapist(), soon(hours=5))
        db.session.commit()
    result = runner.invoke(args=["outbox", "work", "--max-loops", "1"])
    assert result.exit_code == 0, result.output
    assert "Reminders queued 1. Sent 1," in result.output
    assert smtp_server.messages[0]["Subject"] == "Reminder: your free consultation is coming up"


@pytest.mark.parametrize("app_config", [{"OUTBOX_BACKGROUND": True,
                                         "OUTBOX_POLL_SECONDS": 0.1}], indirect=True)
def test_background_sender_only_when_asked_and_delivers_within_seconds(app, smtp_server):
    assert "outbox_sender" not in app.extensions  # never on its own under tests
    sender = senders.start_background_sender(app, lazy=False)
    try:
        queue_requests(app, 1)
        deadline = time.monotonic() + 5
        while len(smtp_server.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sender.stop()
    assert len(smtp_server.messages) == 2
