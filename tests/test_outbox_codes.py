"""A person is waiting at the code page: through an SMTP outage their code email is
retried within seconds (never more than 15 s apart), while every other message keeps
the slow schedule. Against the real SMTP server, refusing connections or answering
451, and then taking mail again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import as_utc
from tests.conftest import mail_app_config
from tests.test_outbox import queue_plain
from tests.test_public_flow import form_data, pass_eligibility, send

app_config = mail_app_config


def rows_by_kind(app) -> dict[str, OutboxEmail]:
    with app.app_context():
        found = db.session.scalars(select(OutboxEmail)).all()
        db.session.expunge_all()
        return {row.kind: row for row in found}


@pytest.mark.parametrize("outage", ["refused", "tempfail"])
def test_a_code_email_retries_within_seconds_and_other_mail_keeps_its_schedule(
        app, client, smtp_server, therapist_id, outage, monkeypatch):
    monkeypatch.setattr(outbox.random, "uniform", lambda a, b: (a + b) / 2)  # mid-jitter
    pass_eligibility(client)
    stored = send(client, form_data(client))  # a pending request, its code email queued
    assert stored.status_code == 302 and stored.location == "/consultation/verify"
    queue_plain(app, 1)  # any other message
    if outage == "refused":
        smtp_server.stop()
    else:
        smtp_server.set_mode("tempfail")
    now = datetime.now(UTC)
    waits, other_waits = [], []
    with app.app_context():
        for _ in range(12):  # over a minute of outage, round after round
            with time_machine.travel(now, tick=False):
                outbox.deliver_due()
            rows = rows_by_kind(app)
            code, other = rows["verification_code"], rows["test"]
            assert code.status == "queued", code.last_error
            waits.append((as_utc(code.next_attempt_at) - now).total_seconds())
            if other.attempts == len(other_waits) + 1:
                other_waits.append((as_utc(other.next_attempt_at) - now).total_seconds())
            now = as_utc(code.next_attempt_at)
    assert code.attempts == 12
    # 2, 4, 8, then 15 s at most, each at 75 % (the middle of the jitter).
    assert waits == [1.5, 3, 6] + [11.25] * 9
    # The other message keeps today's schedule: 60 s, then 120 s (at 75 %).
    assert other_waits == [45, 90]
    smtp_server.reset()  # taking mail again
    with app.app_context(), time_machine.travel(now, tick=False):
        report = outbox.deliver_due()
    assert report.sent == 1
    [message] = smtp_server.messages
    assert message["Subject"] == "Your confirmation code"
    assert rows_by_kind(app)["test"].status == "queued"  # still waiting out its back-off


def test_a_code_email_keeps_trying_for_its_whole_hold(app):
    """Twenty attempts (every other message's limit) are five minutes at 15 s: a code
    email gets as many as its 30-minute hold needs."""
    with app.app_context():
        assert outbox._urgent_attempts("verification_code") * 7.5 >= 30 * 60
        assert outbox._urgent_attempts("test") == 0
        for attempts in range(1, 40):
            assert outbox.backoff(attempts, "verification_code") <= timedelta(seconds=15)
            assert outbox.backoff(attempts, "already_booked") <= timedelta(seconds=15)
        assert outbox.backoff(1, "test") >= timedelta(seconds=30)
