"""Property-based: whatever arrives in the two steps' POSTs (any text, fields
missing, repeated), the site never answers 5xx and never stores a row that its own
validation would refuse or that does not fit its columns. Step 2 changes one or
two fields of an otherwise valid form, so most examples reach the database.
Runs on every configured database (PostgreSQL enforces the column lengths)."""

from __future__ import annotations

import itertools
import unicodedata

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, select

from portal.booking.answers import CONTACT_METHODS, INTERESTS, PAYMENT_METHODS
from portal.booking.residency import is_california_zip
from portal.extensions import db
from portal.models import ConsultationRequest, normalise_name
from portal.text_rules import multi_line_problem, name_problem
from tests.factories import make_therapist
from tests.test_public_flow import ELIGIBLE, form_data, pass_eligibility, send

STEP_ONE_FIELDS = list(ELIGIBLE)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
MISSING = "<missing>"
_people = itertools.count()

any_text = st.text(max_size=300)
blank = st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", min_size=1, max_size=20)
# Letters whose lower or case-folded forms are longer ("\u0130", "\u00df", "\ufb03").
long_unicode = st.text(alphabet=st.sampled_from("\u0130\u00df\ufb03\u0149\u1e9e\u00e9\u4e2dAz -'"),
                       min_size=60, max_size=100)
name_values = st.one_of(any_text, blank, long_unicode, st.just("\u0130" * 80))
interest_values = st.lists(st.one_of(st.sampled_from(sorted(INTERESTS)), st.text(max_size=20)),
                           max_size=80)
STEP_TWO_VALUES = {
    "first_name": name_values, "last_name": name_values,
    "email": st.one_of(any_text, st.just("a@" + "b" * 250 + ".com"),
                       st.emails().map(lambda e: e.replace("@", "\u0130@", 1))),
    "email_as_typed": any_text, "phone": any_text,
    "meeting": st.one_of(st.sampled_from(["phone", "video"]), any_text),
    "therapist": any_text, "slot": any_text, "waitlist": any_text,
    "consent_privacy": any_text, "ack_not_emergency": any_text, "website": any_text,
    "form_token": any_text,
}
# "Help us prepare", after the code.
LATER_VALUES = {
    "preferred_contact": st.one_of(st.sampled_from(sorted(CONTACT_METHODS)), any_text),
    "interests": interest_values, "message": st.one_of(any_text, st.text(min_size=1990,
                                                                          max_size=2010)),
    "preferred_name": name_values, "ok_to_text": any_text, "ok_to_voicemail": any_text,
    "payment": any_text,
}
VALID_LATER = {"preferred_contact": "phone", "interests": ["kap"], "message": "Evenings",
               "preferred_name": "Sam", "ok_to_text": "yes", "ok_to_voicemail": "no",
               "payment": "insurance"}
step_one_changes = st.one_of(st.just(None), st.just(MISSING), any_text)


def edits_of(values: dict):
    @st.composite
    def edits(draw) -> dict:
        """One or two fields changed (or removed); the rest stay valid."""
        names = draw(st.lists(st.sampled_from(sorted(values)), min_size=1, max_size=2,
                              unique=True))
        return {name: draw(st.one_of(st.just(MISSING), values[name])) for name in names}
    return edits()


def step_two_edits():
    return edits_of(STEP_TWO_VALUES)


def assert_fits_its_columns(row: ConsultationRequest) -> None:
    for column in ConsultationRequest.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(column.type, String) and column.type.length and value is not None:
            assert len(value) <= column.type.length, column.key


def assert_valid(row: ConsultationRequest) -> None:
    for name in (row.first_name, row.last_name):
        assert 0 < len(name) <= 80 and name == name.strip()
        assert name_problem(name) is None and unicodedata.is_normalized("NFC", name)
    # Stored for search casefolded and without accents ("maria" finds "María").
    assert row.first_name_normalised == normalise_name(row.first_name)[:80]
    assert row.last_name_normalised == normalise_name(row.last_name)[:80]
    assert validate_email(row.email, check_deliverability=False).normalized == row.email
    assert row.email_normalised == row.email.casefold()[:254]
    number = phonenumbers.parse(row.phone)
    assert phonenumbers.is_valid_number(number)
    assert phonenumbers.region_code_for_number(number) == "US"
    assert row.phone == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert row.preferred_contact in (*CONTACT_METHODS, None)
    assert row.preferred_name is None or (
        0 < len(row.preferred_name) <= 80 and name_problem(row.preferred_name) is None)
    assert row.adult is True and row.payment in (*PAYMENT_METHODS, None)
    assert row.ok_to_text in (True, False, None) and row.ok_to_voicemail in (True, False, None)
    assert not (row.preferred_contact == "text" and row.ok_to_text is False)
    assert row.meeting == "phone"  # this therapist has no video room: video is never stored
    keys = row.interest_keys
    assert set(keys) <= set(INTERESTS) and len(keys) == len(set(keys))
    assert len(row.message) <= 2000 and multi_line_problem(row.message) is None
    assert row.state == "CA" and is_california_zip(row.zip_code)
    assert row.consent_at and row.ack_not_emergency_at
    assert (row.slot_start is None) or (row.therapist_id is not None)
    assert_fits_its_columns(row)


def apply(data: dict, edits: dict) -> dict:
    data = dict(data)
    for name, change in edits.items():
        if change == MISSING:
            data.pop(name, None)
        elif change is not None:
            data[name] = change
    return data


def holds_nul(data: dict) -> bool:
    """NUL anywhere in a posted name or value: refused before the form
    (portal/web/edge.py) with the 400 page."""
    return any("\x00" in str(key) or any("\x00" in str(one) for one in
                                         (value if isinstance(value, list) else [value]))
               for key, value in data.items())


@pytest.fixture
def seeded(app):
    with app.app_context():
        make_therapist()
        db.session.commit()
    return app


def test_step_one_never_fails(seeded):
    client = seeded.test_client()

    @SETTINGS
    @given(st.fixed_dictionaries(dict.fromkeys(STEP_ONE_FIELDS, step_one_changes)))
    def check(edits):
        data = apply(ELIGIBLE, edits)
        response = client.post("/consultation", data=data)
        assert response.status_code in ((400,) if holds_nul(data) else (200, 302))

    check()


def test_step_two_never_fails_or_stores_invalid_rows(seeded):
    redirects = []

    @SETTINGS
    @given(step_two_edits())
    def check(edits):
        client = seeded.test_client()  # a new visitor: their own pending request
        pass_eligibility(client)
        n = next(_people)
        valid = form_data(client, email=f"person{n}@example.com",
                          phone=f"(415) 555-{n % 10000:04d}")
        data = apply(valid, edits)
        response = send(client, data)
        assert response.status_code in ((400,) if holds_nul(data) else (200, 302))
        if response.status_code == 302:
            assert response.location == "/consultation/verify"
            with client.session_transaction() as session:
                if "pending" in session:  # not so for a filled honeypot: nothing stored
                    redirects.append(session["pending"])

    check()
    # Every example is a new person (its own email and phone) on a new form, so
    # every redirect is its own stored request, and every stored request had one.
    with seeded.app_context():
        rows = db.session.scalars(select(ConsultationRequest)).all()
        assert rows and {row.public_id for row in rows} == set(redirects)
        for row in rows:
            assert_valid(row)


def test_help_us_prepare_never_fails_or_stores_invalid_answers(seeded):
    from tests.test_public_flow import enter_code

    client = seeded.test_client()
    pass_eligibility(client)
    assert send(client, form_data(client, email="later@example.com")).status_code == 302
    public_id = enter_code(client, seeded, "later@example.com").location.rpartition("/")[2]

    @SETTINGS
    @given(edits_of(LATER_VALUES))
    def check(edits):
        data = apply(VALID_LATER, edits)
        response = client.post(f"/consultation/prepare/{public_id}", data=data)
        assert response.status_code == (400 if holds_nul(data) else 302)
        with seeded.app_context():
            assert_valid(db.session.scalar(select(ConsultationRequest)))

    check()
