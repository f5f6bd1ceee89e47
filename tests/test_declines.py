"""Marking a request "not a fit" (portal.booking.declines, portal.admin.declines): staff choose
whether to tell the client, see the exact email first, and the email carries the
practice's referral list and 988, the personal line, and never an internal note."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, RequestNote
from tests.backoffice import audit_actions
from tests.conftest import mail_app_config
from tests.factories import make_request
from tests.smtp import raw_text

app_config = mail_app_config

NOTE = "SENTINEL-internal-7731 drinks heavily, see intake call"
LINE = "I think a program with in-person groups would suit you better."
PREVIEWED = re.compile(r'name="previewed"[^>]*value="([^"]*)"')


@pytest.fixture
def declinable(app, cast):
    """An open request with no time booked, and an internal note already on it."""
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        row = make_request(maya, None, first_name="Rosalind", email="rosalind@example.com")
        db.session.add(RequestNote(request_id=row.id, body=NOTE))
        db.session.commit()
        return row.id


def decline_url(rid: int) -> str:
    return f"/admin/requests/{rid}/not-a-fit"


def status_of(app, rid: int) -> str:
    with app.app_context():
        return db.session.get(ConsultationRequest, rid).status


def emails(app, rid: int, kind: str = "declined") -> list[OutboxEmail]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail).where(
            OutboxEmail.request_id == rid, OutboxEmail.kind == kind)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def preview(admin, rid: int, line: str = LINE, note: str = NOTE):
    return admin.post(decline_url(rid), data={
        "tell_client": "yes", "personal_line": line, "note": note, "action": "continue"})


def send(admin, rid: int, previewed: str, line: str = LINE, note: str = NOTE):
    return admin.post(decline_url(rid), data={
        "tell_client": "yes", "personal_line": line, "note": note, "action": "send",
        "previewed": previewed})


def test_choosing_not_a_fit_opens_its_page_and_changes_nothing_yet(app, admin, declinable):
    response = admin.post(f"/admin/requests/{declinable}/status",
                          data={"status": "not_a_fit", "note": "typed in the status form"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Tell the client?" in page
    assert re.search(r'value="yes"\s+checked', page)  # telling them is the default
    assert "typed in the status form" in page  # the note comes along
    assert status_of(app, declinable) == "new" and emails(app, declinable) == []


def test_the_client_gets_the_previewed_email_with_referrals_and_never_the_note(
        app, admin, declinable, smtp_server):
    shown = preview(admin, declinable)
    page = unescape(shown.get_data(as_text=True))
    assert shown.status_code == 200 and "Check the email before it's sent" in page
    assert LINE in page and "SAMHSA National Helpline" in page and "988" in page
    assert status_of(app, declinable) == "new" and emails(app, declinable) == []

    [token] = PREVIEWED.findall(shown.get_data(as_text=True))
    response = send(admin, declinable, token)
    assert response.status_code == 302
    assert response.location == f"/admin/requests/{declinable}"
    assert status_of(app, declinable) == "not_a_fit"
    [row] = emails(app, declinable)
    # The preview showed exactly the text that was queued.
    preview_text = re.search(r'<pre class="email-text"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert preview_text == row.body_text

    with app.app_context():
        assert outbox.deliver_due().sent == 1
        referrals = app.config["REFERRALS"]
    [message] = smtp_server.to("rosalind@example.com")
    assert message["Subject"] == "An update on your consultation request"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Rosalind" in body and "988" in body and "911" in body
        assert all(item["name"].replace("&", "&amp;" if body is html else "&") in body
                   for item in referrals)
    assert LINE in text and LINE in html
    assert "1-800-662-4357" in text and "https://findtreatment.gov/" in text
    assert "SENTINEL" not in raw_text(message)
    assert "typed" not in raw_text(message)

    with app.app_context():  # the personal line is kept with the request, for staff
        bodies = db.session.scalars(select(RequestNote.body).where(
            RequestNote.request_id == declinable)).all()
    assert any(LINE in body for body in bodies)
    assert "not_a_fit_told" in audit_actions(app, declinable)


def test_nothing_is_sent_unseen(app, admin, declinable):
    # "Send" without a preview, with a forged one, or after the line changed: the
    # preview again, nothing changed or queued.
    [token] = PREVIEWED.findall(preview(admin, declinable).get_data(as_text=True))
    for previewed, line in (("", LINE), ("forged", LINE), (token, LINE + " And more.")):
        response = send(admin, declinable, previewed, line=line)
        assert response.status_code == 200, previewed
        assert "Check the email before it's sent" in unescape(response.get_data(as_text=True))
    assert status_of(app, declinable) == "new" and emails(app, declinable) == []


def test_staff_can_choose_not_to_tell_the_client(app, admin, declinable):
    response = admin.post(decline_url(declinable), data={
        "tell_client": "no", "personal_line": LINE, "note": "", "action": "continue"})
    assert response.status_code == 302
    assert status_of(app, declinable) == "not_a_fit"
    with app.app_context():
        assert db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == declinable)).all() == []
    assert "not_a_fit_not_told" in audit_actions(app, declinable)


def test_a_second_send_queues_nothing_more(app, admin, declinable):
    [token] = PREVIEWED.findall(preview(admin, declinable).get_data(as_text=True))
    assert send(admin, declinable, token).status_code == 302
    assert send(admin, declinable, token).status_code == 302  # a double click
    assert len(emails(app, declinable)) == 1
    assert admin.get(decline_url(declinable)).status_code == 302


@pytest.mark.parametrize("line, error", [
    ("Take care.\nBest wishes", "Enter the personal line on one line"),
    ("Take\u200b care", "The personal line contains invisible characters"),
    ("x" * 301, "Keep the personal line to 300 characters or fewer."),
])
def test_a_personal_line_follows_the_text_rules(app, admin, declinable, line, error):
    response = preview(admin, declinable, line=line)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert error in unescape(page) and 'aria-invalid="true"' in page
    assert status_of(app, declinable) == "new" and emails(app, declinable) == []


def test_a_therapist_cannot_decline_another_therapists_request(app, client, cast):
    from tests.backoffice import sign_in
    sign_in(client, cast.own_email)
    assert client.get(decline_url(cast.theirs)).status_code in (403, 404)
    assert client.post(decline_url(cast.theirs), data={
        "tell_client": "no", "action": "continue"}).status_code in (403, 404)
    assert status_of(app, cast.theirs) == "new"


def test_the_not_eligible_page_lists_the_configured_referrals(app, client):
    page = client.get("/consultation/not-eligible").get_data(as_text=True)
    assert "SAMHSA National Helpline" in page and 'href="tel:+18006624357"' in page
    assert "Open Path Collective" in page and 'href="tel:988"' in page
    app.config["REFERRALS"] = [{"name": "Sunrise County Warmline", "phone": "(555) 010-0142",
                                "tel": "+15550100142", "about": "Someone to talk to."}]
    page = client.get("/consultation/not-eligible").get_data(as_text=True)
    assert "Sunrise County Warmline" in page and "SAMHSA" not in page
