"""Residency: who may book, judged from state, ZIP code and two yes/no answers."""

import dataclasses
import itertools

import pytest
import zipcodes

from portal.booking.residency import (
    STATE_CHOICES,
    STATE_NAMES,
    ZIP_RE,
    Eligibility,
    check_eligibility,
    is_california_zip,
    normalise_zip,
    state_name,
    zip_error_message,
    zip_state,
)

# San Francisco's old downtown ZIP: still in the zipcodes data, but decommissioned
# (active False) — zipcodes.is_real() says True for it, which is the trap.
DECOMMISSIONED_CA_ZIP = "94101"
NEVADA_BORDER_ZIP = "89439"  # Verdi, NV, a few miles from Truckee
TRUCKEE_ZIP = "96161"


class TestStateChoices:
    def test_every_state_and_dc_by_code_and_name(self):
        choices = dict(STATE_CHOICES)
        assert choices["CA"] == "California"
        assert choices["NV"] == "Nevada"
        assert choices["DC"] == "District of Columbia"
        assert choices["WY"] == "Wyoming"
        fifty_states = set(choices) - {"DC", "XX", "AS", "GU", "MP", "PR", "VI"}
        assert len(fifty_states) == 50

    def test_sorted_by_name_with_outside_us_last(self):
        names = [label for _, label in STATE_CHOICES[:-1]]
        assert names == sorted(names)
        assert STATE_CHOICES[-1] == ("XX", "I live outside the United States")

    def test_no_placeholder_and_no_duplicates(self):
        values = [value for value, _ in STATE_CHOICES]
        assert "" not in values
        assert len(values) == len(set(values))
        assert all(len(value) == 2 and value.isupper() for value in values)

    def test_state_names(self):
        assert state_name("CA") == "California"
        assert state_name("NV") == "Nevada"
        assert state_name("ZZ") is None
        assert STATE_NAMES["OR"] == "Oregon"


class TestNormaliseZip:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("94110", "94110"),
            (" 94110 ", "94110"),
            ("94110\n", "94110"),
            ("94110-1234", "94110"),
            ("01230", "01230"),
        ],
    )
    def test_accepted(self, text, expected):
        assert normalise_zip(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "9411",
            "941100",
            "abcde",
            "",
            "   ",
            "94110-123",
            "94110 1234",
            "94110-",
            "9411O",
            "\u0669\u0664\u0661\u0661\u0660",  # Arabic-Indic digits
            None,
            94110,
        ],
    )
    def test_malformed(self, text):
        assert normalise_zip(text) is None

    def test_zip_re_takes_five_digits_or_zip_plus_four(self):
        for text in ("94110", "94110-1234"):
            assert ZIP_RE.match(text), text
        for text in ("941100", "9411", "94110-123", "94110-12345", "94110 1234", "a4110"):
            assert not ZIP_RE.match(text), text


class TestZipLookup:
    @pytest.mark.parametrize("zip_code", ["94110", "90210", "95814", TRUCKEE_ZIP, "94110-1234"])
    def test_california_zips(self, zip_code):
        assert zip_state(zip_code) == "CA"
        assert is_california_zip(zip_code)

    def test_border_zip_in_nevada(self):
        assert zip_state(NEVADA_BORDER_ZIP) == "NV"
        assert not is_california_zip(NEVADA_BORDER_ZIP)

    def test_other_states(self):
        assert zip_state("10001") == "NY"
        assert zip_state("97201") == "OR"

    def test_decommissioned_zip_is_unknown(self):
        assert zip_state(DECOMMISSIONED_CA_ZIP) is None
        assert not is_california_zip(DECOMMISSIONED_CA_ZIP)

    @pytest.mark.parametrize("zip_code", ["00000", "99999"])
    def test_unknown(self, zip_code):
        assert zip_state(zip_code) is None
        assert not is_california_zip(zip_code)

    @pytest.mark.parametrize("zip_code", ["9411", "941100", "abcde", "", None])
    def test_malformed_is_not_looked_up(self, zip_code):
        # zipcodes itself would match "941100" to 94110.
        assert zip_state(zip_code) is None
        assert not is_california_zip(zip_code)


def _answers(**changes):
    answers = {"state": "CA", "zip_code": "94110", "ca_resident": "yes", "in_california": "yes"}
    return answers | changes


class TestCheckEligibility:
    def test_all_yes_in_california(self):
        assert check_eligibility(**_answers()) == Eligibility(eligible=True, reasons=())

    def test_booleans_work_like_yes_and_no(self):
        assert check_eligibility("CA", "95814", True, True).eligible
        result = check_eligibility("CA", "95814", True, False)
        assert result.reasons == ("not_in_california",)

    @pytest.mark.parametrize(
        ("changes", "reasons"),
        [
            ({"state": "NV"}, ("state_not_ca",)),
            ({"state": "XX"}, ("state_not_ca",)),
            ({"state": ""}, ("state_not_ca",)),
            ({"zip_code": NEVADA_BORDER_ZIP}, ("zip_not_ca",)),
            ({"zip_code": "00000"}, ("zip_unknown",)),
            ({"zip_code": DECOMMISSIONED_CA_ZIP}, ("zip_unknown",)),
            ({"zip_code": "9411"}, ("zip_malformed",)),
            ({"zip_code": ""}, ("zip_malformed",)),
            ({"ca_resident": "no"}, ("not_resident",)),
            ({"ca_resident": None}, ("not_resident",)),
            ({"in_california": "no"}, ("not_in_california",)),
            ({"in_california": ""}, ("not_in_california",)),
        ],
    )
    def test_each_failed_check_is_named(self, changes, reasons):
        result = check_eligibility(**_answers(**changes))
        assert not result.eligible
        assert result.reasons == reasons

    def test_a_traveler_from_nevada_gets_every_reason(self):
        result = check_eligibility("NV", NEVADA_BORDER_ZIP, "no", "yes")
        assert result == Eligibility(False, ("state_not_ca", "zip_not_ca", "not_resident"))

    @pytest.mark.parametrize(
        ("state", "zip_code", "ca_resident", "in_california"),
        list(
            itertools.product(
                ["CA", "NV"], ["96161", "89439", "00000", "abc"], ["yes", "no"], ["yes", "no"]
            )
        ),
    )
    def test_eligible_only_when_everything_says_california(
        self, state, zip_code, ca_resident, in_california
    ):
        result = check_eligibility(state, zip_code, ca_resident, in_california)
        everything_ca = (state, zip_code, ca_resident, in_california) == (
            "CA", "96161", "yes", "yes"
        )  # fmt: skip
        assert result.eligible is everything_ca
        assert bool(result.reasons) is not everything_ca

    def test_result_is_frozen(self):
        result = check_eligibility(**_answers())
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.eligible = False


class TestZipErrorMessage:
    @pytest.mark.parametrize("zip_code", ["94110", "90210", "95814", TRUCKEE_ZIP, " 94110-1234 "])
    def test_no_message_for_california(self, zip_code):
        assert zip_error_message(zip_code) is None

    @pytest.mark.parametrize("zip_code", ["9411", "941100", "abcde", ""])
    def test_malformed(self, zip_code):
        assert zip_error_message(zip_code) == "Enter a 5-digit ZIP code, like 94110"

    @pytest.mark.parametrize("zip_code", ["00000", DECOMMISSIONED_CA_ZIP])
    def test_unknown(self, zip_code):
        assert (
            zip_error_message(zip_code) == "We couldn't find that ZIP code. Check it and try again"
        )

    def test_names_the_other_state(self):
        assert zip_error_message(NEVADA_BORDER_ZIP) == (
            "89439 is a Nevada ZIP code. We can only offer consultations to people in California"
        )

    def test_uses_the_five_digit_zip_and_the_right_article(self):
        assert zip_error_message("97201-1234").startswith("97201 is an Oregon ZIP code.")
        assert zip_error_message("84101").startswith("84101 is a Utah ZIP code.")


def test_every_zip_state_in_the_data_is_named_in_full():
    first_active_zip = {}
    for record in zipcodes.list_all():
        if record["active"]:
            first_active_zip.setdefault(record["state"], record["zip_code"])
    for code, zip_code in first_active_zip.items():
        if code != "CA":
            assert f" {STATE_NAMES[code]} ZIP code." in zip_error_message(zip_code)
