"""Abuse guards on the public forms: honeypot, time trap, one-time token and the
CSRF rescue. The rate limit has its own module (it needs its own config)."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.test_public_flow import (
    ELIGIBLE,
    form_data,
    outbox_count,
    pass_eligibility,
    requests_stored,
    send,
)

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
pytestmark = pytest.mark.usefixtures("therapist_id")


def test_a_filled_honeypot_looks_like_success_but_stores_nothing(app, client):
    pass_eligibility(client)
    response = send(client, form_data(client, website="http://spam.example.com"))
    # The same next step a person gets; there is just nothing to verify behind it.
    assert response.status_code == 302 and response.location == "/consultation/verify"
    assert requests_stored(app) == [] and outbox_count(app) == 0


def test_the_honeypot_is_hidden_by_css_not_type_hidden(client):
    pass_eligibility(client)
    send(client, form_data(client, consent_privacy=""))
    html = client.get("/consultation/check").text
    field = re.search(r'<input[^>]*name="website"[^>]*>', html).group(0)
    assert 'type="text"' in field and 'tabindex="-1"' in field and 'autocomplete="off"' in field
    assert '<label for="website">' in html and 'class="honeypot"' in html


@pytest.mark.parametrize("app_config", [{"FORM_MIN_SECONDS": 30}])
def test_a_form_filled_faster_than_a_person_types_stores_nothing(app, client):
    pass_eligibility(client)
    response = send(client, form_data(client))
    # A person who is this quick reads "please try again", not "your request has timed out".
    assert response.status_code == 200 and "<title>Error: Check your answers" in response.text
    assert "Please check your answers and try again." in response.text
    assert "timed out" not in response.text
    assert requests_stored(app) == [] and outbox_count(app) == 0
    # Their next try is not held back again.
    response = send(client, form_data(client))
    assert response.status_code == 302 and response.location == "/consultation/verify"
    assert len(requests_stored(app)) == 1


def test_a_forged_form_token_asks_to_submit_again(app, client):
    pass_eligibility(client)
    data = form_data(client, form_token="forged")
    html = send(client, data).text
    assert "Please check your answers and submit again" in html
    assert "Casey Rivera" in html and requests_stored(app) == []
    fresh = re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)
    response = send(client, {**data, "form_token": fresh})
    assert response.status_code == 302 and len(requests_stored(app)) == 1


@pytest.mark.parametrize("app_config", [{"FORM_MIN_SECONDS": 30}])
def test_resubmitting_after_an_unreadable_form_token_is_not_taken_for_a_robot(app, client):
    """The person has filled the form in once already: the fresh token must not
    start the time trap again and silently drop their second submit."""
    pass_eligibility(client)
    data = form_data(client, form_token="garbled")
    html = send(client, data).text
    assert "Please check your answers and submit again" in html
    fresh = re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)
    response = send(client, {**data, "form_token": fresh})
    assert response.status_code == 302 and len(requests_stored(app)) == 1


class SignedTwoHoursAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 7200


def expired_csrf_token(app, client) -> str:
    """A genuine CSRF token for this session, signed longer ago than WTF_CSRF_TIME_LIMIT."""
    with client.session_transaction() as session:
        raw = session["csrf_token"]
    serializer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token",
                                        signer=SignedTwoHoursAgo)
    return serializer.dumps(raw)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True, "WTF_CSRF_TIME_LIMIT": 3600}])
def test_an_expired_csrf_token_keeps_everything_typed(app, client):
    token = CSRF.search(client.get("/consultation").text).group(1)
    client.post("/consultation", data={**ELIGIBLE, "csrf_token": token})
    data = form_data(client, first_name="Jordan", csrf_token=expired_csrf_token(app, client))
    response = send(client, data)
    html = response.text
    assert response.status_code == 200
    assert "This page was open for a while" in html and "still here" in html
    assert f'value="{data["slot"]}" checked' in html and requests_stored(app) == []
    fresh = CSRF.search(html).group(1)
    response = send(client, {**data, "csrf_token": fresh})
    assert response.status_code == 302 and len(requests_stored(app)) == 1


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_a_forged_csrf_token_keeps_everything_typed(app, client):
    token = CSRF.search(client.get("/consultation").text).group(1)
    client.post("/consultation", data={**ELIGIBLE, "csrf_token": token})
    data = form_data(client, first_name="Jordan", csrf_token="forged")
    html = send(client, data).text
    assert "This page was open for a while" in html
    assert f'value="{data["slot"]}" checked' in html and requests_stored(app) == []


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_cancel_with_an_expired_csrf_token_asks_to_send_again_with_the_reason_kept(
        app, client):
    from portal.extensions import db
    from portal.links import manage_token
    from tests.factories import future_slot, make_request

    with app.app_context():
        consultation = make_request(slot_start=future_slot())
        db.session.commit()
        url = f"/manage/{manage_token(consultation)}"
    client.get(url + "/cancel")  # the "Are you sure?" page that set the session's token
    response = client.post(url + "/cancel", data={"csrf_token": expired_csrf_token(app, client),
                                                  "reason": "Found another practice"})
    assert response.status_code == 200
    assert "submit again" in response.text and 'role="alert"' in response.text
    assert "Found another practice</textarea>" in response.text
    assert requests_stored(app)[0].status == "new"
    fresh = CSRF.search(response.text).group(1)
    response = client.post(url + "/cancel", data={"csrf_token": fresh})
    assert response.status_code == 302 and requests_stored(app)[0].status == "cancelled"
