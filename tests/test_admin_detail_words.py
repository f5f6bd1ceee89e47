"""The request page in words: one "viewed" line per visit, statuses as "new →
contacted", phones as written, email kinds and audit details without keys or
JSON; the back office's own 403 and 404 pages."""

from __future__ import annotations

import re

from portal.extensions import db
from portal.models import ConsultationRequest
from tests.backoffice import audit_actions, sign_in


def history(page: str) -> str:
    return page.split('id="history-title"', 1)[1]


def test_a_change_and_the_page_it_returns_to_are_one_visit(app, admin, cast):
    """The GET a change redirects to is not another view; the next visit is."""
    assert admin.get(f"/admin/requests/{cast.mine}").status_code == 200
    changed = admin.post(f"/admin/requests/{cast.mine}/status",
                         data={"status": "contacted", "note": ""}, follow_redirects=True)
    assert changed.status_code == 200
    noted = admin.post(f"/admin/requests/{cast.mine}/notes", data={"body": "Left a message"},
                       follow_redirects=True)
    assert noted.status_code == 200
    actions = audit_actions(app, cast.mine)
    assert actions.count("request_viewed") == 1
    assert {"status_changed", "note_added"} <= set(actions)
    assert admin.get(f"/admin/requests/{cast.mine}").status_code == 200  # a new visit
    assert audit_actions(app, cast.mine).count("request_viewed") == 2


def test_a_change_to_one_request_does_not_hide_a_view_of_another(app, admin, cast):
    admin.post(f"/admin/requests/{cast.mine}/notes", data={"body": "Called"})
    assert admin.get(f"/admin/requests/{cast.theirs}").status_code == 200
    assert audit_actions(app, cast.theirs).count("request_viewed") == 1


def test_history_and_emails_read_in_words(app, admin, cast):
    admin.post(f"/admin/requests/{cast.mine}/status", data={"status": "contacted", "note": ""})
    admin.post(f"/admin/requests/{cast.mine}/reassign",
               data={"therapist_id": str(cast.other_therapist_id)})
    page = admin.get(f"/admin/requests/{cast.mine}").get_data(as_text=True)
    said = history(page)
    assert "Status changed</strong> (new \u2192 contacted)" in said
    with app.app_context():
        other = db.session.get(ConsultationRequest, cast.theirs).therapist.name
    assert re.search(r"Therapist changed</strong> \([^)]* \u2192 " + re.escape(other), said)
    assert "{" not in said and "_" not in re.sub(r"<[^>]+>", "", said)
    emails = page.split('id="emails-title"', 1)[1].split('id="history-title"', 1)[0]
    assert "No longer with you, to the previous therapist" in emails
    assert "no_longer_with_you" not in emails and "therapist_notice" not in emails


def test_the_audit_log_reads_in_words(app, admin, cast):
    admin.post(f"/admin/requests/{cast.mine}/status", data={"status": "contacted", "note": ""})
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "new \u2192 contacted" in page and "previous_status" not in page


def test_phone_is_shown_as_written(app, admin, cast):
    with app.app_context():
        db.session.get(ConsultationRequest, cast.mine).phone = "+14155550123"
        db.session.commit()
    page = admin.get(f"/admin/requests/{cast.mine}").get_data(as_text=True)
    assert '<a href="tel:+14155550123">(415) 555-0123</a>' in page


def test_missing_and_forbidden_pages_keep_the_back_office(client, cast):
    sign_in(client, cast.own_email)  # a therapist: the other request is not theirs
    for url, code in ((f"/admin/requests/{cast.theirs}", 403), ("/admin/requests/999999", 404),
                      ("/admin/no-such-page", 404), ("/admin/users", 403)):
        response = client.get(url)
        page = response.get_data(as_text=True)
        assert response.status_code == code, url
        assert 'aria-label="Back office"' in page, url
        assert 'href="/admin/requests"' in page, url


def test_signed_out_missing_page_is_the_public_one(client):
    page = client.get("/admin/no-such-page").get_data(as_text=True)
    assert 'aria-label="Back office"' not in page and "home page" in page


def test_notes_say_who_wrote_them_when_no_staff_member_did(app, admin, cast):
    """A note the client left when cancelling reads "The client"; a note whose author's
    account was deleted reads "A former staff member"."""
    from portal.booking import request_status
    from portal.models import CLIENT_CANCEL_NOTE_HEADING

    admin.post(f"/admin/requests/{cast.mine}/notes", data={"body": "Left a message"})
    with app.app_context():
        consultation = db.session.get(ConsultationRequest, cast.mine)
        request_status.add_note(consultation, f"{CLIENT_CANCEL_NOTE_HEADING}\nMoving away",
                                actor="client")
        db.session.commit()
    page = admin.get(f"/admin/requests/{cast.mine}").get_data(as_text=True)
    notes = page.split('id="notes-title"', 1)[1].split("</ol>", 1)[0]
    assert "The client," in notes and "admin@" in notes and "Former user" not in notes
    with app.app_context():
        consultation = db.session.get(ConsultationRequest, cast.mine)
        staff_note = next(n for n in consultation.notes if n.author_id is not None)
        staff_note.author_id = None  # the staff member's account was deleted (SET NULL)
        db.session.commit()
    page = admin.get(f"/admin/requests/{cast.mine}").get_data(as_text=True)
    notes = page.split('id="notes-title"', 1)[1].split("</ol>", 1)[0]
    assert "A former staff member," in notes and "The client," in notes
