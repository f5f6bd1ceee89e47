"""The SMTP connection Flask-Mail does not give us: a timeout, verified TLS, no debug
output, and headers that come only from validated values."""

from __future__ import annotations

import smtplib
import ssl
import time

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.messages import outbox, transport
from portal.messages.models import OutboxEmail
from tests.conftest import mail_app_config

app_config = mail_app_config  # the SMTP fixture's address, plus a test's own


def queue_one(app, **fields) -> None:
    with app.app_context():
        db.session.add(OutboxEmail(**{
            "key": "t:1", "kind": "test", "recipient": "someone@example.com",
            "subject": "Hello", "body_text": "Hi", "body_html": "<p>Hi</p>",
            "message_id": "<fixed-id@example.com>", **fields}))
        db.session.commit()


@pytest.mark.parametrize("app_config", [{"MAIL_TIMEOUT": 0.3}], indirect=True)
def test_a_server_that_never_answers_does_not_hang_the_sender(app, smtp_server):
    smtp_server.set_mode("slow", 1.5)
    queue_one(app)
    started = time.monotonic()
    with app.app_context():
        report = outbox.deliver_due()
        row = db.session.scalars(select(OutboxEmail)).one()
        assert report.retrying == 1 and row.status == "queued"
        assert "TimeoutError" in row.last_error or "timed out" in row.last_error
    assert time.monotonic() - started < 1.0
    # Let the slow server get past its pause, so nothing it does lands in the next test.
    time.sleep(max(0.0, started + 1.7 - time.monotonic()))


class RecordingSMTP:
    """Stands in for smtplib's classes to see how the connection is made."""

    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, *args, **kwargs):
        self.calls.append(("connect", args, kwargs))

    def set_debuglevel(self, level):
        self.calls.append(("debug", (level,), {}))

    def starttls(self, **kwargs):
        self.calls.append(("starttls", (), kwargs))

    def login(self, *args):
        self.calls.append(("login", (), {}))

    def quit(self):
        self.calls.append(("quit", (), {}))

    def close(self):
        pass


def open_recorded(app, monkeypatch, **config):
    RecordingSMTP.calls = []
    monkeypatch.setattr(smtplib, "SMTP", RecordingSMTP)
    monkeypatch.setattr(smtplib, "SMTP_SSL", RecordingSMTP)
    app.config.update(config)
    with app.app_context():
        state = app.extensions["mail"]
        for key, value in config.items():
            attribute = key.removeprefix("MAIL_").lower()
            if hasattr(state, attribute):
                monkeypatch.setattr(state, attribute, value)
        with transport.open_transport():
            pass
    return {name: (args, kwargs) for name, args, kwargs in RecordingSMTP.calls}


def assert_verifying(context):
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_starttls_verifies_the_certificate_and_debug_stays_off(app, monkeypatch):
    calls = open_recorded(app, monkeypatch, MAIL_USE_TLS=True, MAIL_DEBUG=True,
                          MAIL_USERNAME="u", MAIL_PASSWORD="p", MAIL_TIMEOUT=7)
    assert calls["connect"][1]["timeout"] == 7
    assert_verifying(calls["starttls"][1]["context"])
    assert calls.get("debug", ((0,), {}))[0] == (0,)  # never switched on (smtplib's default)
    assert "login" in calls and "quit" in calls


def test_ssl_connection_verifies_the_certificate(app, monkeypatch):
    calls = open_recorded(app, monkeypatch, MAIL_USE_SSL=True)
    assert_verifying(calls["connect"][1]["context"])
    assert "starttls" not in calls


def test_message_headers_come_from_the_row_and_config(app, smtp_server):
    queue_one(app, ics="BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
    with app.app_context():
        assert outbox.deliver_due().sent == 1
    [message] = smtp_server.messages
    assert message["Message-ID"] == "<fixed-id@example.com>"
    assert message["Reply-To"] == "intake@example.com"
    assert message["To"] == "someone@example.com"
    assert message.get_body(("plain",)).get_content().strip() == "Hi"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hi</p>"
    [ics] = list(message.iter_attachments())
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_filename() == "consultation.ics"


def test_an_unsendable_row_fails_alone_and_the_rest_go(app, smtp_server):
    queue_one(app, recipient="bad@example.com\r\nBcc: evil@example.com")
    with app.app_context():
        db.session.add(OutboxEmail(key="t:2", kind="test", recipient="ok@example.com",
                                   subject="Hello", body_text="Hi", body_html="<p>Hi</p>",
                                   message_id="<ok@example.com>"))
        db.session.commit()
        report = outbox.deliver_due()
    assert report.sent == 1 and report.failed == 1
    assert [str(m["To"]) for m in smtp_server.messages] == ["ok@example.com"]
