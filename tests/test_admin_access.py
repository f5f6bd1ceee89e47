"""Who may open what: every /admin URL in the URL map, for GET and POST, as an
anonymous visitor, a therapist and an admin; and CSRF refusal on every POST."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.booking.therapists import TimeOff, WeeklyHours
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import utcnow
from tests.backoffice import database_snapshot, make_cast, sign_in
from tests.factories import PASSWORD, future_slot, make_request

# Every back-office endpoint and who may use it. A new route must be added here.
ADMIN_ONLY = {
    "admin.request_export", "admin.request_reassign", "admin.request_delete",
    "admin.therapist_list", "admin.therapist_new", "admin.therapist_edit",
    "admin.therapist_hours_add", "admin.therapist_hours_delete",
    "admin.therapist_time_off_add", "admin.therapist_time_off_delete",
    "admin.therapist_deactivate", "admin.therapist_activate",
    "admin.therapist_calendar_connect", "admin.therapist_calendar_test",
    "admin.therapist_calendar_disconnect", "admin.therapist_calendar_feed",
    "admin.user_list", "admin.user_new", "admin.user_edit", "admin.user_unlock",
    "admin.user_mfa_reset",
    "admin.outbox_list", "admin.outbox_retry", "admin.outbox_retry_all", "admin.audit_log",
    "admin.intake_pause",
}
STAFF = {"admin.dashboard", "admin.request_list", "admin.waitlist_list"}
PER_REQUEST = {  # a therapist may use these only on their own requests
    "admin.request_detail", "admin.request_status", "admin.request_note",
    "admin.request_cancel", "admin.request_reschedule", "admin.request_decline",
}
# The sign-in steps and password links: open to anyone (the second step and
# enrolment send a visitor without a pending sign-in back to the first).
OPEN = {"auth.login", "auth.login_code", "auth.enrol", "auth.password_forgot",
        "auth.password_set"}
SIGNED_IN = {"auth.logout"}
OWN_ACCOUNT = {"auth.password_change"}  # any signed-in user, about themselves


@pytest.fixture
def cast(app):
    cast = make_cast(app)
    with app.app_context():
        # The URLs use the other therapist, so their hours and time off are the ones found.
        hours = db.session.scalar(select(WeeklyHours.id).where(
            WeeklyHours.therapist_id == cast.other_therapist_id).limit(1))
        db.session.add(TimeOff(therapist_id=cast.other_therapist_id, starts_at=utcnow(),
                               ends_at=utcnow() + timedelta(hours=1)))
        # A staff email (no request): the POST table deletes a request before it retries
        # this, and a request's emails go with it.
        db.session.add(OutboxEmail(key="k1", kind="invite", recipient="a@example.com",
                                   subject="s", message_id="<m>", status="failed",
                                   body_text="Welcome", request_id=None))
        db.session.commit()
        cast.ids = {"hours_id": hours, "time_off_id": db.session.scalar(select(TimeOff.id)),
                    "email_id": db.session.scalar(select(OutboxEmail.id))}
    return cast


def back_office_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            for method in sorted(rule.methods & {"GET", "POST"}):
                yield rule, method


def url_for_rule(app, rule, cast, request_id):
    values = {"request_id": request_id, "therapist_id": cast.other_therapist_id,
              "user_id": cast.admin_id, "token": "not-a-real-token", **cast.ids}
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{arg: values[arg] for arg in rule.arguments})


def test_every_back_office_route_is_classified(app):
    endpoints = {rule.endpoint for rule, _ in back_office_routes(app)}
    assert endpoints == ADMIN_ONLY | STAFF | PER_REQUEST | OPEN | SIGNED_IN | OWN_ACCOUNT


def test_anonymous_is_sent_to_sign_in_everywhere(app, client, cast):
    wrong = []
    for rule, method in back_office_routes(app):
        if rule.endpoint in OPEN:
            continue
        response = client.open(url_for_rule(app, rule, cast, cast.mine), method=method)
        if response.status_code != 302 or not response.headers["Location"].startswith(
                "/admin/login"):
            wrong.append((method, rule.rule, response.status_code))
    assert wrong == []


def expected_for_therapist(endpoint: str, method: str) -> set[int]:
    if endpoint in ADMIN_ONLY:
        return {403}
    if endpoint in PER_REQUEST:
        return {403}  # the request belongs to the other therapist
    if endpoint in SIGNED_IN:
        return {302}
    if endpoint in OPEN:
        return {302, 200, 410}  # 410: the made-up password link
    if endpoint in OWN_ACCOUNT:
        return {200}  # the form again (the POST lacks its fields)
    return {200} if method == "GET" else {405}


def test_therapist_is_refused_admin_pages_and_other_therapists_requests(app, client, cast):
    sign_in(client, cast.own_email)
    wrong = []
    routes = sorted(back_office_routes(app), key=lambda pair: pair[0].endpoint == "auth.logout")
    for rule, method in routes:
        response = client.open(url_for_rule(app, rule, cast, cast.theirs), method=method)
        if response.status_code not in expected_for_therapist(rule.endpoint, method):
            wrong.append((method, rule.rule, response.status_code))
    assert wrong == []


def test_therapist_works_their_own_requests(app, client, cast):
    sign_in(client, cast.own_email)
    assert client.get(f"/admin/requests/{cast.mine}").status_code == 200
    page = client.get("/admin/requests").get_data(as_text=True)
    assert "Rosa Garcia" in page and "Luis Chen" not in page
    assert client.post(f"/admin/requests/{cast.mine}/notes",
                       data={"body": "Left a voicemail"}).status_code == 302


def test_admin_opens_every_page(app, client, cast):
    sign_in(client, cast.admin_email)
    wrong = []
    for rule, method in back_office_routes(app):
        if method != "GET" or rule.endpoint in OPEN:
            continue
        response = client.get(url_for_rule(app, rule, cast, cast.theirs))
        if response.status_code != 200:
            wrong.append((rule.rule, response.status_code))
    assert wrong == []


def test_missing_request_is_404(client, cast):
    sign_in(client, cast.admin_email)
    assert client.get("/admin/requests/99999").status_code == 404


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_post_without_a_valid_csrf_token_is_refused(app, client, cast):
    assert sign_in(client, cast.admin_email).status_code == 302
    with app.app_context():
        make_request(first_name="Spare")  # keeps some data about for the deletes to find
        db.session.commit()
    before = database_snapshot(app)
    wrong = []
    for rule, method in back_office_routes(app):
        if method != "POST":
            continue
        url = url_for_rule(app, rule, cast, cast.theirs)
        for data in ({}, {"csrf_token": "forged"}):
            response = client.post(url, data={**data, "body": "x", "status": "cancelled"})
            if response.status_code != 400:
                wrong.append((rule.rule, data, response.status_code))
    assert wrong == []
    assert database_snapshot(app) == before
    assert client.get("/admin/").status_code == 200  # still signed in: logout was refused too


def admin_post_table(cast) -> list[tuple[str, dict, int]]:
    """Every back-office POST an admin makes with valid input, in an order that works
    (the request is cancelled before it is deleted, its email retried before that,
    sign-out comes last)."""
    new_time = future_slot(days=5, hour_utc=20).isoformat()
    return [
        # Before the request is deleted: its emails go with it.
        ("admin.outbox_retry", {}, 302),
        ("admin.outbox_retry_all", {}, 302),
        ("admin.request_status", {"status": "contacted", "note": "Called"}, 302),
        ("admin.request_note", {"body": "Left a voicemail"}, 302),
        ("admin.request_reassign", {"therapist_id": cast.therapist_id}, 302),
        ("admin.request_reschedule", {"slot": new_time}, 302),
        ("admin.request_cancel", {}, 302),
        ("admin.request_decline", {"tell_client": "no", "action": "continue"}, 302),
        ("admin.request_delete", {}, 302),
        ("admin.therapist_new", {"name": "Mei Chen", "email": "mei@example.com",
                                 "licence_type": "LMFT", "licence_number": "1"}, 302),
        ("admin.therapist_edit", {"name": "Daniel O.", "email": "d@example.com",
                                  "licence_type": "LCSW", "licence_number": "2"}, 302),
        ("admin.therapist_hours_add", {"weekday": 1, "start": "09:00", "end": "12:00"}, 302),
        ("admin.therapist_hours_delete", {}, 302),
        ("admin.therapist_time_off_add", {"starts_at": "2030-01-02T09:00",
                                          "ends_at": "2030-01-02T12:00"}, 302),
        ("admin.therapist_time_off_delete", {}, 302),
        # ".invalid" never resolves: the address is refused on the page, nothing fetched.
        ("admin.therapist_calendar_connect", {"kind": "ics",
                                              "url": "https://calendar.invalid/c.ics"}, 400),
        ("admin.therapist_calendar_test", {}, 302),
        ("admin.therapist_calendar_feed", {}, 302),
        ("admin.therapist_calendar_disconnect", {}, 302),
        ("admin.therapist_deactivate", {}, 302),
        ("admin.therapist_activate", {}, 302),
        ("admin.user_new", {"email": "new@example.com", "role": "admin", "therapist_id": 0,
                            "active": "y"}, 302),
        ("admin.user_edit", {"role": "admin", "therapist_id": 0, "active": "y"}, 302),
        ("admin.user_unlock", {}, 302),
        ("admin.user_mfa_reset", {}, 302),  # their own: refused, back to the user page
        ("admin.intake_pause", {"paused": "y", "message": "Back soon"}, 302),
        ("auth.password_change", {"current_password": PASSWORD,
                                  "new_password": "a different long passphrase"}, 302),
        ("auth.password_forgot", {"email": cast.admin_email}, 200),
        ("auth.password_set", {"new_password": "another long passphrase"}, 410),
        ("auth.login", {"email": cast.admin_email, "password": "x"}, 302),
        ("auth.login_code", {"code": "123456"}, 302),  # already signed in
        ("auth.enrol", {"code": "123456"}, 302),
        ("auth.logout", {}, 302),
    ]


def test_admin_post_to_every_route_with_valid_input_never_fails(app, client, cast):
    table = admin_post_table(cast)
    posts = {rule.endpoint for rule, method in back_office_routes(app) if method == "POST"}
    assert {endpoint for endpoint, _, _ in table} == posts  # a new POST route goes here
    rules = {rule.endpoint: rule for rule, _ in back_office_routes(app)}
    sign_in(client, cast.admin_email)
    wrong = []
    for endpoint, data, expected in table:
        rule = rules[endpoint]
        response = client.post(url_for_rule(app, rule, cast, cast.theirs), data=data)
        if response.status_code != expected:
            wrong.append((endpoint, response.status_code))
    assert wrong == []
