"""Deleting or purging a request removes every trace of the person.

A request is made through the public pages with a distinct sentinel in every
personal field, its emails go out through the real SMTP server and through the
development sink, staff add notes, search for the person and export, the client
reschedules, the practice cancels. Then the request is deleted by an admin, or
purged by retention, and every text column of every table (found by reflecting
the database, so tables added later are covered too) and every file in the mail
sink's directory is searched for the sentinels: none may be left.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from sqlalchemy import MetaData, String, select, update

from portal import encryption
from portal.extensions import db
from portal.links import manage_token
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, to_db, utcnow
from tests.backoffice import sign_in
from tests.conftest import mail_app_config
from tests.factories import make_user
from tests.test_public_flow import journey_token, send

app_config = mail_app_config

FIRST, LAST = "Zyxwfirstsentinel", "Qvlastsentinel"
PREFERRED = "Wvpreferredsentinel"
EMAIL = "sentinel.mailbox.q7@example.com"
TYPED_PHONE, PHONE = "(415) 555-0199", "+14155550199"
MESSAGE = "Sentinel-message: my private worries xq9"
ZIP = "96161"
NOTE, STATUS_NOTE = "Sentinel-note: staff only zk4", "Sentinel-note: called back zk5"
ELIGIBLE = {"ca_resident": "yes", "zip_code": ZIP, "in_california": "yes", "adult": "yes"}
SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')


def sentinels(public_id: str) -> dict[str, re.Pattern]:
    """What may not survive, each as a case-insensitive pattern (the search columns
    keep lower-cased copies; the ZIP must not match inside a longer number)."""
    plain = {"first name": FIRST, "last name": LAST, "preferred name": PREFERRED,
             "email": EMAIL, "phone": PHONE,
             "phone as typed": TYPED_PHONE, "phone digits": "555-0199",
             "message": MESSAGE, "note": NOTE, "status note": STATUS_NOTE,
             "public id": public_id}
    found = {name: re.compile(re.escape(value), re.I) for name, value in plain.items()}
    found["zip"] = re.compile(rf"(?<!\d){ZIP}(?!\d)")
    return found


def book_through_the_public_pages(client, app) -> str:
    """Eligibility, details with a time, and (where the flow has it) the email code;
    the request's public id."""
    assert client.post("/consultation", data=ELIGIBLE).status_code == 302
    html = client.get("/consultation/time?therapist=any").text
    response = send(client, {
        "first_name": FIRST, "last_name": LAST, "email": EMAIL, "phone": TYPED_PHONE,
        "meeting": "phone", "therapist": "any", "slot": SLOT_VALUE.findall(html)[0],
        "consent_privacy": "y", "ack_not_emergency": "y", "website": "",
        "form_token": journey_token(client),
    })
    assert response.status_code == 302, response.text
    if response.location.startswith("/consultation/verify"):  # the email-code step
        with app.app_context():
            body = db.session.scalars(select(OutboxEmail.body_text).where(
                OutboxEmail.recipient == EMAIL).order_by(OutboxEmail.id.desc())).first()
        code = re.search(r"(?<!\d)\d{6}(?!\d)", body).group(0)
        response = client.post("/consultation/verify", data={"code": code})
        assert response.status_code == 302, response.text
    public_id = response.location.rpartition("/")[2]
    answered = client.post(f"/consultation/prepare/{public_id}", data={
        "preferred_contact": "email", "interests": ["kap", "trauma"], "message": MESSAGE,
        "preferred_name": PREFERRED, "ok_to_text": "yes", "ok_to_voicemail": "no",
        "payment": "self_pay"})
    assert answered.status_code == 302, answered.text
    assert response.location.startswith("/consultation/confirmed/")
    return response.location.rpartition("/")[2]


def deliver(app, backend: str) -> int:
    app.config["MAIL_BACKEND"] = backend
    with app.app_context():
        return outbox.deliver_due().sent


def leftovers(app, sink: Path, patterns: dict[str, re.Pattern]) -> list[str]:
    """Where any sentinel is still found: "table.column: name" or "file: name"."""
    found = []
    with app.app_context():
        # Encrypted columns count by what they hold, decrypted (portal.encryption).
        keys = encryption.keyring()
        encrypted = set(encryption.encrypted_columns(db.metadata))
        reflected = MetaData()
        reflected.reflect(bind=db.engine)
        for table in reflected.sorted_tables:
            texts = [c for c in table.columns if isinstance(c.type, String)]  # Text too
            if not texts:
                continue
            for row in db.session.execute(select(*texts)):
                for column, value in zip(texts, row, strict=True):
                    if value and (table.name, column.name) in encrypted:
                        value = keys.decrypt(value, table.name, column.name)
                    found += [f"{table.name}.{column.name}: {name}"
                              for name, pattern in patterns.items()
                              if value and pattern.search(str(value))]
    for path in sorted(sink.glob("*")) if sink.is_dir() else []:
        raw = path.read_bytes()
        # Parts may be base64 or quoted-printable: search the decoded text too.
        message = email.message_from_bytes(raw, policy=email.policy.default)
        texts = [raw.decode("utf-8", "replace")] + [
            part.get_content() for part in message.walk()
            if part.get_content_maintype() == "text" or part.get_content_type()
            == "text/calendar"]
        found += [f"{path.name}: {name}" for name, pattern in patterns.items()
                  if any(pattern.search(str(text)) for text in texts)]
    return sorted(set(found))


@pytest.fixture
def story(app, client, therapist_id, smtp_server, tmp_path):
    """The whole life of one request, with the sentinels spread everywhere; returns its
    id, public id and the sink's directory."""
    sink = tmp_path / "mail"
    app.config["MAIL_SINK_DIR"] = str(sink)
    with app.app_context():
        make_user("admin@example.com")
        db.session.commit()
    public_id = book_through_the_public_pages(client, app)
    with app.app_context():
        consultation = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.public_id == public_id))
        request_id, token = consultation.id, manage_token(consultation)
    assert deliver(app, "smtp") >= 2  # confirmation and therapist notice, over SMTP
    assert any(EMAIL in str(m["To"]) for m in smtp_server.messages)

    # The client moves the time from their email's link; the notices go to the sink.
    page = client.get(f"/manage/{token}/reschedule").text
    moved = client.post(f"/manage/{token}/reschedule",
                        data={"slot": SLOT_VALUE.findall(page)[0]})
    assert moved.status_code == 302
    assert deliver(app, "sink") >= 2

    admin = app.test_client()
    sign_in(admin, "admin@example.com")
    assert admin.post(f"/admin/requests/{request_id}/notes",
                      data={"body": NOTE}).status_code == 302
    assert admin.post(f"/admin/requests/{request_id}/status",
                      data={"status": "contacted", "note": STATUS_NOTE}).status_code == 302
    for q in (LAST, EMAIL, TYPED_PHONE):  # searches and an export, audited
        assert admin.get("/admin/requests", query_string={"q": q}).status_code == 200
    export = admin.get("/admin/requests/export.csv", query_string={"q": LAST})
    assert LAST in export.get_data(as_text=True)
    assert admin.get(f"/admin/requests/{request_id}").status_code == 200
    # The practice cancels; those notices stay queued (deleting must stop them).
    assert admin.post(f"/admin/requests/{request_id}/cancel").status_code == 302

    patterns = sentinels(public_id)
    # The scan can see them all before the request goes: it is able to fail.
    before = leftovers(app, sink, patterns)
    for name in patterns.keys() - {"phone as typed", "phone digits"}:  # never stored so
        assert any(line.endswith(f": {name}") for line in before), name
    assert any(line.startswith("outbox_email.") for line in before)
    assert any(not line.partition(".")[0].isidentifier() for line in before)  # sink files
    return request_id, patterns, sink, admin


def assert_nothing_more_is_sent(app, smtp_server):
    smtp_server.reset()
    assert deliver(app, "smtp") == 0
    assert not any(EMAIL in str(m["To"]) for m in smtp_server.messages)


def test_an_admin_delete_leaves_no_trace_of_the_person(app, story, smtp_server):
    request_id, patterns, sink, admin = story
    response = admin.post(f"/admin/requests/{request_id}/delete")
    assert response.status_code == 302
    assert leftovers(app, sink, patterns) == []
    assert_nothing_more_is_sent(app, smtp_server)


def test_a_purge_leaves_no_trace_of_the_person(app, runner, story, smtp_server):
    request_id, patterns, sink, _ = story
    with app.app_context():
        db.session.execute(update(ConsultationRequest)
                           .where(ConsultationRequest.id == request_id)
                           .values(created_at=to_db(utcnow()) .replace(year=utcnow().year - 2)))
        db.session.commit()
    result = runner.invoke(args=["purge", "--older-than-days", "365"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 request " in result.output
    assert leftovers(app, sink, patterns) == []
    assert_nothing_more_is_sent(app, smtp_server)
