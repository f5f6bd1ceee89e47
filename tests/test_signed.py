"""portal.signed: one way to sign what the portal hands out. Links already emailed,
made with itsdangerous directly before Signed existed, keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from portal import links
from portal.admin import declines
from portal.booking import rebooking, waitlist
from portal.public import submission
from portal.signed import Signed
from portal.staff import tokens

KINDS = [  # (the Signed, its salt as emailed before, whether it expires)
    (links.MANAGE_LINK, "manage-booking", True),
    (rebooking.REBOOK_LINK, "rebook-after-no-show", True),
    (waitlist.OFFER_LINK, "waitlist-offer", True),
    (tokens._link("reset"), "staff-password", True),
    (tokens._link("invite"), "staff-password", True),
    (submission.FORM_TOKEN, "consultation-form", False),
    (declines.PREVIEWED, "decline-preview", False),
]


def made_the_old_way(app, salt: str, expires: bool, value):
    kind = URLSafeTimedSerializer if expires else URLSafeSerializer
    return kind(app.config["SECRET_KEY"], salt=salt).dumps(value)


@pytest.mark.parametrize(("signed", "salt", "expires"), KINDS)
def test_a_value_signed_the_old_way_still_reads(app, signed, salt, expires):
    with app.app_context():
        assert signed.salt == salt and signed.expires is expires
        old = made_the_old_way(app, salt, expires, ["C-1", 2])
        assert signed.loads(old) == ["C-1", 2]
        # And the other way round: the same format, byte for byte where nothing is timed.
        new = signed.dumps(["C-1", 2])
        if not expires:
            assert new == old
        kind = URLSafeTimedSerializer if expires else URLSafeSerializer
        assert kind(app.config["SECRET_KEY"], salt=salt).loads(new) == ["C-1", 2]


def test_a_manage_link_emailed_before_opens_its_request(app):
    with app.app_context():
        token = made_the_old_way(app, "manage-booking", True, "abc123")
        assert links.public_id_from_manage_token(token) == "abc123"


@pytest.mark.parametrize("hostile", ["", "x", "a.b.c", "\x00", "é" * 300,
                                     "eyJ0eXAiOiJKV1QifQ.e30.", "..", "A" * 5000])
def test_anything_forged_or_garbled_reads_as_none(app, hostile):
    with app.app_context():
        for signed, _, _ in KINDS:
            assert signed.loads(hostile) is None


def test_one_kind_is_never_read_as_another(app):
    with app.app_context():
        offer = waitlist.OFFER_LINK.dumps(7)
        assert waitlist.OFFER_LINK.loads(offer) == 7
        assert links.MANAGE_LINK.loads(offer) is None
        assert rebooking.REBOOK_LINK.loads(links.MANAGE_LINK.dumps("abc")) is None


def test_another_secret_key_signs_nothing_we_read(app):
    with app.app_context():
        forged = URLSafeTimedSerializer("another key, long and varied 0123456789",
                                        salt="manage-booking").dumps("abc123")
        assert links.MANAGE_LINK.loads(forged) is None


def test_a_value_expires_after_max_age_read_when_it_is_read(app):
    signed = Signed("a-test-kind", max_age=lambda: app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] * 86400)
    made = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with app.app_context(), time_machine.travel(made, tick=False) as traveller:
        token = signed.dumps("abc")
        days = app.config["MANAGE_TOKEN_MAX_AGE_DAYS"]
        traveller.move_to(made + timedelta(days=days) - timedelta(seconds=1))
        assert signed.loads(token) == "abc"
        traveller.move_to(made + timedelta(days=days, seconds=2))
        assert signed.loads(token) is None
        app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] = days + 1  # read afresh on every read
        assert signed.loads(token) == "abc"


def test_without_max_age_a_value_never_expires(app):
    signed = Signed("a-test-kind")
    made = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with app.app_context(), time_machine.travel(made, tick=False) as traveller:
        token = signed.dumps({"a": 1})
        traveller.move_to(made + timedelta(days=3650))
        assert signed.loads(token) == {"a": 1}
