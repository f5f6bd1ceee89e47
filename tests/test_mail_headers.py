"""Nothing a visitor typed can add a header or a line of its own to an email: the
forms refuse line breaks, and behind them the mail code checks every header value
again and keeps a stored name on its greeting's line. Checked on a real SMTP
server: what arrives, and what never does."""

from __future__ import annotations

from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.composer import check_subject
from portal.messages.models import OutboxEmail
from tests.conftest import mail_app_config
from tests.factories import future_slot, make_request, make_therapist

app_config = mail_app_config  # the SMTP fixture's address

VICTIM = "victim@example.net"


def add_row(app, key: str, **fields) -> None:
    with app.app_context():
        db.session.add(OutboxEmail(**{
            "key": key, "kind": "test", "recipient": "casey@example.com", "subject": "Hello",
            "body_text": "Hi", "body_html": "<p>Hi</p>", "message_id": f"<{key}@example.com>",
            **fields}))
        db.session.commit()


@pytest.mark.parametrize("header", [
    # Flask-Mail's has_bad_headers() lets a folded subject (CR LF, then a space) through.
    {"subject": f"Hello\r\n Bcc: {VICTIM}"},
    {"subject": f"Hello\u2028Bcc: {VICTIM}"},
    # ... and never looks at the Message-ID.
    {"message_id": f"<m@example.com>\r\nBcc: {VICTIM}"},
    {"message_id": f"<m@example.com>\nBcc: {VICTIM}"},
])
def test_a_header_with_a_line_break_is_never_sent(app, smtp_server, header):
    add_row(app, "before")
    add_row(app, "bad", **header)
    add_row(app, "after")
    with app.app_context():
        report = outbox.deliver_due()
        bad = db.session.scalar(select(OutboxEmail).where(OutboxEmail.key == "bad"))
        assert bad.status == "failed" and bad.last_error.startswith("BadHeaderError")
    assert (report.sent, report.failed) == (2, 1)
    assert len(smtp_server.messages) == 2
    assert all(VICTIM not in str(message) for message in smtp_server.messages)
    assert all(VICTIM not in recipients for _, recipients in smtp_server.handler.envelopes)


@pytest.mark.parametrize("subject", ["Hello\r\nthere", "Hello\u2028there", "Hello\u202eereht",
                                     "Hello\x85there"])
def test_a_subject_must_be_one_plain_line_to_be_queued(subject):
    with pytest.raises(ValueError, match="one line"):
        check_subject(subject)


def test_a_stored_name_with_a_line_break_stays_on_the_greetings_line(app, smtp_server):
    # As if the row came from before names were checked, or from an import.
    name = "Casey\r\nYour booking failed. Call +1 900 555 0100\u2028now"
    with app.app_context():
        consultation = make_request(make_therapist(), future_slot(days=3), first_name=name)
        notifications.queue_cancelled(consultation, by="practice")
        address = consultation.email
        db.session.commit()
        outbox.deliver_due()
    [message] = smtp_server.to(address)
    for subtype in ("plain", "html"):
        lines = message.get_body((subtype,)).get_content().splitlines()
        assert not any(line.startswith(("Your booking failed", "now")) for line in lines)
        assert any("Casey  Your booking failed. Call +1 900 555 0100 now" in line
                   for line in lines), subtype


@pytest.mark.parametrize("sender_name", [None, "Dr. Núñez & Associates"])
def test_every_email_comes_from_the_practices_name_in_every_language(app, smtp_server,
                                                                     sender_name):
    """The display name is MAIL_SENDER_NAME, by default the practice's name, for client
    and staff emails in English and Spanish; the address is MAIL_DEFAULT_SENDER's."""
    app.config["MAIL_SENDER_NAME"] = sender_name
    expected = sender_name or app.config["PRACTICE_NAME"]
    with app.app_context():
        therapist = make_therapist()
        for days, language in ((3, "en"), (4, "es")):
            consultation = make_request(therapist, future_slot(days=days), language=language)
            notifications.queue_cancelled(consultation, by="practice")
        db.session.commit()
        outbox.deliver_due()
    assert len(smtp_server.messages) >= 4  # each client and the therapist, twice
    for message in smtp_server.messages:
        name, address = parseaddr(str(message["From"]))
        assert (str(make_header(decode_header(name))), address) == (
            expected, "consultations@example.com"), message["To"]
