"""The request journey of DESIGN "The request flow" v3 through the test client: every
step answers a POST with a redirect (errors included), so refresh, Back and Forward
repeat nothing and lose nothing; "Change" links come straight back to the check
page; video is offered only where a therapist has a video room; and the confirmation
page, email and calendar file say exactly who calls whom, where and when."""

from __future__ import annotations

import html as html_module
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from portal.booking.scheduling import PACIFIC, format_day, format_time, parse_slot_value
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.models import OutboxEmail
from tests.backoffice import sign_in
from tests.factories import make_therapist, make_user
from tests.test_public_flow import (
    ELIGIBLE,
    SLOT_VALUE,
    book,
    details_page,
    enter_code,
    form_data,
    pass_eligibility,
    requests_stored,
    send,
)

VIDEO = "https://video.example.com/maya-alvarez"


@pytest.fixture
def video_therapist_id(app):
    with app.app_context():
        therapist = make_therapist("Maya Alvarez", video_url=VIDEO)
        db.session.commit()
        return therapist.id


def answered_until_check(client, **fields) -> dict:
    data = form_data(client, **fields)
    page = send(client, {**data, "consent_privacy": ""})
    assert "<title>Error: Check your answers" in page.text
    return data


# -- Post/Redirect/Get -----------------------------------------------------------------

def test_every_step_answers_a_post_with_a_redirect_errors_included(client, therapist_id):
    steps = [("/consultation", {}), ("/consultation", ELIGIBLE)]
    for url, data in steps:
        assert client.post(url, data=data).status_code == 302
    data = form_data(client)
    for url, fields in (("/consultation/time", {}),
                        ("/consultation/time", {"therapist": "any", "slot": data["slot"]}),
                        ("/consultation/about", {}),
                        ("/consultation/about", {k: data[k] for k in (
                            "first_name", "last_name", "email", "phone", "meeting")}),
                        ("/consultation/check", {"form_token": data["form_token"]}),
                        ("/consultation/check", {k: data[k] for k in (
                            "consent_privacy", "ack_not_emergency", "form_token")}),
                        ("/consultation/verify", {"code": "12"})):
        response = client.post(url, data=fields)
        assert response.status_code == 302 or url == "/consultation/verify", (url, fields)


def test_refreshing_after_every_post_resubmits_nothing(app, client, therapist_id):
    """A refresh after a redirect is a GET of the page it showed: nothing is sent again,
    nothing is stored twice, and the page is the same."""
    pass_eligibility(client)
    data = form_data(client)
    for url, fields in (("/consultation/time", ("therapist", "slot")),
                        ("/consultation/about", ("first_name", "last_name", "email", "phone",
                                                 "meeting")),
                        ("/consultation/check", ("consent_privacy", "ack_not_emergency",
                                                 "form_token"))):
        shown = client.post(url, data={k: data[k] for k in fields}).location
        first, again = client.get(shown).text, client.get(shown).text
        assert first == again, url
    assert len(requests_stored(app)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 1


@pytest.mark.parametrize(("step", "previous", "shows"), [
    ("time", "/consultation", ['name="zip_code" type="text" value="94110"',
                               'name="adult" value="yes" checked']),
    ("about", "/consultation/time", ["{slot}\" checked"]),
    ("check", "/consultation/about", ['value="Casey"', 'value="casey@example.com"',
                                      'name="meeting" value="phone"']),
    ("verify", "/consultation/check", ["Casey Rivera", "casey@example.com"]),
])
def test_back_from_each_step_shows_the_step_before_with_its_answers(
        client, therapist_id, step, previous, shows):
    pass_eligibility(client)
    data = form_data(client)
    if step != "time":
        send(client, {**data, "consent_privacy": "" if step != "verify" else "y"})
    page = client.get(previous).text  # what Back shows: the page, as a GET
    for expected in shows:
        assert expected.format(slot=data["slot"]) in page, (step, expected)
    assert 'role="alert"' not in page


def test_a_change_link_comes_straight_back_to_the_check_page(client, therapist_id):
    pass_eligibility(client)
    data = answered_until_check(client)
    check = client.get("/consultation/check").text
    found = re.findall(r'<a href="([^"]+)">Change<span class="visually-hidden"> ([^<]+)', check)
    assert len(found) == 7  # one per answer shown
    links = dict(found)
    about = next(href for href, what in links.items() if what == "your email address")
    assert html_module.unescape(about) == "/consultation/about?from=check#email"
    page = client.get(html_module.unescape(about)).text
    assert '<input type="hidden" name="from" value="check">' in page
    response = client.post("/consultation/about", data={
        **{k: data[k] for k in ("first_name", "last_name", "phone", "meeting")},
        "email": "new@example.com", "from": "check"})
    assert response.location == "/consultation/check"
    assert "new@example.com" in client.get("/consultation/check").text
    # Eligibility and the time come back here too.
    assert client.post("/consultation", data={**ELIGIBLE, "from": "check"}).location \
        == "/consultation/check"
    assert client.post("/consultation/time", data={"therapist": "any", "slot": "none",
                                                   "from": "check"}).location \
        == "/consultation/check"


# -- how to meet ----------------------------------------------------------------------------

def test_video_is_offered_only_where_the_therapist_has_a_video_room(
        app, client, therapist_id, video_therapist_id):
    pass_eligibility(client)
    for choice, offered in ((str(video_therapist_id), True), (str(therapist_id), False),
                            ("any", False)):  # any: one of them has none
        slot = SLOT_VALUE.findall(details_page(client, choice))[0]
        client.post("/consultation/time", data={"therapist": choice, "slot": slot})
        page = client.get("/consultation/about").text
        assert ('name="meeting" value="video"' in page) is offered, choice
    # A forged "video" for a therapist without one is refused like any wrong answer.
    response = send(client, form_data(client, str(therapist_id), meeting="video"))
    assert "Video isn&#39;t offered for this time" in response.text
    assert requests_stored(app) == []


def test_phone_as_the_only_way_to_meet_is_said_not_asked(app, client, therapist_id):
    """No one-option radio group: a statement, and the answer as a hidden value."""
    pass_eligibility(client)
    data = form_data(client)
    client.post("/consultation/time", data={"therapist": "any", "slot": data["slot"]})
    page = client.get("/consultation/about").text
    assert 'type="radio"' not in page and "<legend>How would you like to meet?" not in page
    assert '<input type="hidden" name="meeting" value="phone">' in page
    assert "By phone: your therapist will call you at this number." in page
    response = send(client, {**data, "meeting": "phone"})
    assert response.location == "/consultation/verify"
    assert [row.meeting for row in requests_stored(app)] == ["phone"]


def test_phone_only_is_said_in_spanish_too(client, therapist_id):
    client.get("/?lang=es")
    pass_eligibility(client)
    data = form_data(client)
    client.post("/consultation/time", data={"therapist": "any", "slot": data["slot"]})
    page = client.get("/consultation/about").text
    assert "Por teléfono: su terapeuta le llamará a este número." in page
    assert 'type="radio"' not in page


def test_a_therapist_losing_the_video_room_sends_the_visitor_back_to_choose(
        app, client, video_therapist_id):
    pass_eligibility(client)
    data = answered_until_check(client, therapist=str(video_therapist_id), meeting="video")
    with app.app_context():
        db.session.get(Therapist, video_therapist_id).video_url = None
        db.session.commit()
    response = client.post("/consultation/check", data={
        k: data[k] for k in ("consent_privacy", "ack_not_emergency", "form_token")})
    assert response.location == "/consultation/about?from=check"
    assert "Video isn&#39;t offered" in client.get(response.location).text
    assert requests_stored(app) == []


def ics_of(app) -> str:
    with app.app_context():
        return db.session.scalar(select(OutboxEmail.ics).where(
            OutboxEmail.kind == "confirmation"))


def test_a_video_booking_gives_the_link_on_the_page_in_the_email_and_the_calendar(
        app, client, video_therapist_id):
    pass_eligibility(client)
    data = form_data(client, str(video_therapist_id))
    start = parse_slot_value(data["slot"])
    confirmed = book(client, app, therapist=str(video_therapist_id), meeting="video")
    page = client.get(confirmed.location).text
    local = start.astimezone(PACIFIC)
    sentence = (f"Join Maya Alvarez by video at {VIDEO} on {format_day(local.date())}, "
                f"{format_time(start)} PT.")
    assert f'<a href="{VIDEO}">{VIDEO}</a>' in page
    assert sentence in re.sub(r"<[^>]+>", "", page)
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.body_text).where(
            OutboxEmail.kind == "confirmation"))
    assert f"What happens next: {sentence}" in body
    ics = ics_of(app).replace("\r\n ", "")
    assert f"LOCATION:{VIDEO}" in ics
    assert [row.meeting for row in requests_stored(app)] == ["video"]


def test_a_phone_booking_says_phone_call_in_the_calendar(app, client, therapist_id):
    pass_eligibility(client)
    book(client, app)
    assert "LOCATION:Phone call" in ics_of(app)


@pytest.mark.clock
def test_nothing_promises_a_reply_later_than_the_booked_time(app, client, therapist_id):
    """At each of the seven instants: a booked time is what the page and email promise
    (who calls, at which number, when), never a reply by some later day."""
    pass_eligibility(client)
    data = form_data(client)
    start = parse_slot_value(data["slot"])
    page = html_module.unescape(client.get(book(client, app).location).text)
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.body_text).where(
            OutboxEmail.kind == "confirmation"))
    local = start.astimezone(PACIFIC)
    promise = (f"Maya Alvarez will call you at (415) 555-0123 on "
               f"{format_day(local.date())}, {format_time(start)} PT.")
    for text in (page, body):
        assert promise in text
        assert "We'll reply" not in text and "by the end of" not in text
    assert start > datetime.now(UTC)


def test_the_spanish_sentences_are_whole(app, client, therapist_id):
    client.get("/?lang=es")
    pass_eligibility(client)
    page = html_module.unescape(client.get(book(client, app, slot="none").location).text)
    assert "a más tardar al final del " in page and "al el" not in page
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.body_text).where(
            OutboxEmail.kind == "confirmation"))
    assert "a más tardar al final del " in body and "al el" not in body


def test_staff_set_a_video_room_link_https_only(app, client, therapist_id):
    with app.app_context():
        make_user("admin@example.com")
        db.session.commit()
    sign_in(client, "admin@example.com")
    url = f"/admin/therapists/{therapist_id}"
    form = {"name": "Maya Alvarez", "email": "maya@example.com", "licence_type": "LMFT",
            "licence_number": "118204", "accepting_new": "y"}
    for bad in ("http://video.example.com/maya", "video.example.com/maya",
                "javascript:alert(1)", "https://"):
        response = client.post(url, data={**form, "video_url": bad})
        assert response.status_code in (200, 400) and "starting with https://" in response.text
    assert client.post(url, data={**form, "video_url": VIDEO}).status_code == 302
    with app.app_context():
        assert db.session.get(Therapist, therapist_id).video_url == VIDEO
    assert VIDEO in client.get(url).text
    client.post(url, data={**form, "video_url": ""})
    with app.app_context():
        assert db.session.get(Therapist, therapist_id).video_url is None


def test_every_public_page_gives_the_phone_as_a_tel_link(app, client, therapist_id):
    from portal.links import manage_token
    from tests.factories import future_slot, make_request

    with app.app_context():
        row = make_request(db.session.get(Therapist, therapist_id), future_slot())
        db.session.commit()
        manage = f"/manage/{manage_token(row)}"
    pass_eligibility(client)
    send(client, form_data(client))
    for url in (manage, f"{manage}/cancel", f"{manage}/reschedule", "/consultation/verify",
                "/manage/not-a-token"):
        page = client.get(url).text
        assert 'href="tel:+15550100199">(555) 010-0199</a>' in page, url
    assert enter_code(client, app).status_code == 302
