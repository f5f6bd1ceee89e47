"""Property-based: whatever arrives in the two steps' POSTs (any text, fields
missing), the site never answers 5xx and never stores a row that its own
validation would refuse."""

from __future__ import annotations

import itertools

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.extensions import db
from portal.models import CONTACT_METHODS, INTERESTS, ConsultationRequest
from portal.public.forms import CONTROL_CHARACTERS
from portal.residency import is_california_zip
from tests.factories import make_therapist
from tests.test_public_flow import ELIGIBLE, form_data, pass_eligibility

STEP_ONE_FIELDS = list(ELIGIBLE)
STEP_TWO_FIELDS = ["first_name", "last_name", "email", "email_as_typed", "phone",
                   "preferred_contact", "interests", "message", "therapist", "slot",
                   "consent_privacy", "ack_not_emergency", "website", "form_token"]
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
_people = itertools.count()

# Each field: left as a valid value, removed, or replaced by arbitrary text.
changes = st.one_of(st.just(None), st.just("<missing>"), st.text(max_size=300))


def assert_valid(row: ConsultationRequest) -> None:
    for name in (row.first_name, row.last_name):
        assert 0 < len(name) <= 80 and name == name.strip()
        assert not CONTROL_CHARACTERS.search(name)
    assert row.first_name_normalised == row.first_name.lower()
    assert validate_email(row.email, check_deliverability=False).normalized == row.email
    assert row.email_normalised == row.email.lower()
    number = phonenumbers.parse(row.phone)
    assert phonenumbers.is_valid_number(number)
    assert phonenumbers.region_code_for_number(number) == "US"
    assert row.phone == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert row.preferred_contact in CONTACT_METHODS
    assert set(row.interest_keys) <= set(INTERESTS)
    assert len(row.message) <= 2000 and not CONTROL_CHARACTERS.search(row.message)
    assert row.state == "CA" and is_california_zip(row.zip_code)
    assert row.consent_at and row.ack_not_emergency_at
    assert (row.slot_start is None) or (row.therapist_id is not None)


def apply(data: dict, edits: dict) -> dict:
    data = dict(data)
    for name, change in edits.items():
        if change == "<missing>":
            data.pop(name, None)
        elif change is not None:
            data[name] = change
    return data


@pytest.fixture
def seeded(app):
    with app.app_context():
        make_therapist()
        db.session.commit()
    return app


def test_step_one_never_fails(seeded):
    client = seeded.test_client()

    @SETTINGS
    @given(st.fixed_dictionaries(dict.fromkeys(STEP_ONE_FIELDS, changes)))
    def check(edits):
        response = client.post("/consultation", data=apply(ELIGIBLE, edits))
        assert response.status_code in (200, 302)

    check()


def test_step_two_never_fails_or_stores_invalid_rows(seeded):
    client = seeded.test_client()

    @SETTINGS
    @given(st.fixed_dictionaries(dict.fromkeys(STEP_TWO_FIELDS, changes)))
    def check(edits):
        pass_eligibility(client)
        n = next(_people)
        valid = form_data(client, email=f"person{n}@example.com",
                          phone=f"(415) 555-{n % 10000:04d}")
        response = client.post("/consultation/details", data=apply(valid, edits))
        assert response.status_code in (200, 302)

    check()
    with seeded.app_context():
        rows = db.session.scalars(select(ConsultationRequest)).all()
        assert rows  # the unchanged examples were stored
        for row in rows:
            assert_valid(row)
