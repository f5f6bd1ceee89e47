"""Who may book: California residency and ZIP codes.

The practice is licensed in California only, so the first step of the
consultation request asks where the person lives, their ZIP code and whether
they will be in California during the session. This module answers those
questions from the offline ZIP data in the ``zipcodes`` package; it never
touches the network, Flask or the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import zipcodes
from flask_babel import gettext

from portal.i18n import lazy_gettext as _l

CALIFORNIA = "CA"
OUTSIDE_US = "XX"

_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas",
    "CA": "California", "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware",
    "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii",
    "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York",
    "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah",
    "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia",
    "WI": "Wisconsin", "WY": "Wyoming",
    # Inhabited territories: people there pick them as their place of residence.
    "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands",
}  # fmt: skip

# Codes that appear in the ZIP data but are not places anyone selects as home;
# they are named only so a ZIP message can say where a ZIP belongs.
_POSTAL_ONLY = {
    "AA": "Armed Forces Americas", "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific", "FM": "Federated States of Micronesia",
    "MH": "Marshall Islands", "PW": "Palau",
}  # fmt: skip

STATE_NAMES: dict[str, str] = {**_STATES, **_POSTAL_ONLY}

STATE_CHOICES: list[tuple[str, str]] = [
    *sorted(_STATES.items(), key=lambda item: item[1]),
    (OUTSIDE_US, _l("I live outside the United States")),
]

# zipcodes itself accepts "941100" and " 94110", so the shape is checked first.
# ASCII only: \d would otherwise accept digits from other scripts.
ZIP_RE = re.compile(r"^\d{5}(-\d{4})?$", re.ASCII)

ZIP_MALFORMED_MESSAGE = _l("Enter a 5-digit ZIP code, like 94110")
ZIP_UNKNOWN_MESSAGE = _l("We couldn't find that ZIP code. Check it and try again")


@dataclass(frozen=True)
class Eligibility:
    """The outcome of the eligibility step; ``reasons`` lists every failed check."""

    eligible: bool
    reasons: tuple[str, ...] = ()


def state_name(code: str) -> str | None:
    """The full name for a state or territory code, or None if it is not one."""
    return STATE_NAMES.get(code)


def normalise_zip(text: object) -> str | None:
    """The 5-digit ZIP in ``text`` (ZIP+4 allowed), or None if it is malformed."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if ZIP_RE.fullmatch(text) is None:
        return None
    return text[:5]


@cache
def _active_zip_states() -> dict[str, str]:
    # Built once per process; a duplicate build by a racing thread is harmless.
    # Decommissioned ZIPs no longer receive mail, so they count as unknown.
    return {
        record["zip_code"]: record["state"] for record in zipcodes.list_all() if record["active"]
    }


def zip_state(zip_code: object) -> str | None:
    """The state code of a real, active ZIP; None when malformed or unknown."""
    zip5 = normalise_zip(zip_code)
    if zip5 is None:
        return None
    return _active_zip_states().get(zip5)


def is_california_zip(zip_code: object) -> bool:
    """Whether ``zip_code`` is a real, active California ZIP code."""
    return zip_state(zip_code) == CALIFORNIA


def _is_yes(answer: object) -> bool:
    if isinstance(answer, bool):
        return answer
    return isinstance(answer, str) and answer.strip().lower() == "yes"


def _zip_problem(zip_code: object) -> str | None:
    if normalise_zip(zip_code) is None:
        return "zip_malformed"
    state = zip_state(zip_code)
    if state is None:
        return "zip_unknown"
    if state != CALIFORNIA:
        return "zip_not_ca"
    return None


def check_eligibility(
    state: object, zip_code: object, ca_resident: object, in_california: object
) -> Eligibility:
    """Check step 1's raw answers: state code, ZIP and the two yes/no questions."""
    reasons = []
    if not isinstance(state, str) or state.strip().upper() != CALIFORNIA:
        reasons.append("state_not_ca")
    zip_problem = _zip_problem(zip_code)
    if zip_problem is not None:
        reasons.append(zip_problem)
    if not _is_yes(ca_resident):
        reasons.append("not_resident")
    if not _is_yes(in_california):
        reasons.append("not_in_california")
    return Eligibility(eligible=not reasons, reasons=tuple(reasons))


def _with_article(name: str) -> str:
    # "an Oregon ZIP code", "a Utah ZIP code": no state name starts with a
    # vowel sound that the first letter misreports, except U ("you").
    return f"an {name}" if name[0] in "AEIO" else f"a {name}"


def zip_error_message(zip_code: object) -> str | None:
    """A message for the ZIP field, or None when it is an active California ZIP."""
    problem = _zip_problem(zip_code)
    if problem is None:
        return None
    if problem == "zip_malformed":
        return ZIP_MALFORMED_MESSAGE
    if problem == "zip_unknown":
        return ZIP_UNKNOWN_MESSAGE
    zip5 = normalise_zip(zip_code)
    state = zip_state(zip_code)
    name = STATE_NAMES.get(state, state)
    # "an Oregon" in English; other languages place the state their own way.
    article = _with_article(name).split(" ", 1)[0]
    place = gettext("%(article)s %(state)s", article=article, state=name)
    return gettext("%(zip)s is %(place)s ZIP code. We can only offer consultations to people "
                   "in California", zip=zip5, place=place)
