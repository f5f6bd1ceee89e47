"""Numbers from query strings and URLs: one parser, hostile input, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.web.numbers import MAX_ID, MAX_PAGE, arg_number, parse_id, parse_number
from tests.test_admin_list import names

HUGE = "1" + "0" * 23  # 10**23: past any database integer


@pytest.mark.parametrize("text", ["¹", "٣", "３", " 3", "3 ", "+3", "-3", "1_0", "3.0", "1e5",
                                  "", "0x1", "\u00a03", None, 3])
def test_only_ascii_digits_are_numbers(text):
    assert parse_number(text, maximum=100) is None
    assert arg_number({"page": text}, "page", 7, maximum=100) == 7


def test_numbers_are_bounded():
    assert parse_number("007", maximum=100) == 7
    assert parse_number("101", maximum=100) is None
    assert parse_number("0" * 50 + "9", maximum=100) == 9
    assert parse_id(str(MAX_ID)) == MAX_ID
    assert parse_id(str(MAX_ID + 1)) is None and parse_id(HUGE) is None
    assert parse_id("0") is None
    assert arg_number({"page": HUGE}, "page", 1, maximum=MAX_PAGE) == MAX_PAGE
    assert arg_number({"page": "9" * 10_000}, "page", 1, maximum=MAX_PAGE) == MAX_PAGE
    assert arg_number({"page": "0"}, "page", 1, maximum=MAX_PAGE) == 1
    assert arg_number({}, "page", 1, maximum=MAX_PAGE) == 1


@given(st.text())
def test_any_text_gives_a_number_in_range(text):
    value = arg_number({"page": text}, "page", 1, maximum=MAX_PAGE)
    assert 1 <= value <= MAX_PAGE
    found = parse_id(text)
    assert found is None or 1 <= found <= MAX_ID


# -- the pages that read them ---------------------------------------------------------

HOSTILE_QUERIES = [
    "/admin/requests?page=¹", "/admin/requests?page=٣", f"/admin/requests?page={HUGE}",
    "/admin/requests?per_page=¹", f"/admin/requests?per_page={HUGE}",
    "/admin/requests?therapist=¹", f"/admin/requests?therapist={HUGE}",
    "/admin/outbox?page=¹", f"/admin/outbox?page={HUGE}", "/admin/outbox?page=-1",
    "/admin/audit?page=¹", f"/admin/audit?page={HUGE}",
    "/admin/audit?request_id=¹", f"/admin/audit?request_id={HUGE}",
    "/admin/audit?request_id=99999999999",
    "/admin/requests/export.csv?therapist=¹", f"/admin/requests/export.csv?page={HUGE}",
]


def test_hostile_numbers_in_the_query_string_get_a_page(admin):
    answered = {url: admin.get(url).status_code for url in HOSTILE_QUERIES}
    assert answered == dict.fromkeys(HOSTILE_QUERIES, 200)


def test_a_number_that_is_not_one_means_the_first_page(admin):
    for page in ("¹", "٣", "-1", "1e5", ""):
        assert sorted(names(admin, "/admin/requests", page=page)) == [
            "Luis Chen", "Rosa Garcia"], page
    assert names(admin, "/admin/requests", page=HUGE) == []  # far past the end
    assert "No entries match" in admin.get(f"/admin/audit?page={HUGE}").text
    assert len(names(admin, "/admin/requests", per_page=HUGE)) == 2


def test_hostile_ids_in_the_url_are_not_found(admin):
    urls = [path.format(value)
            for path in ("/admin/requests/{}", "/admin/therapists/{}",
                         "/admin/therapists/{}/deactivate")
            for value in ("¹", "٣", HUGE, str(MAX_ID + 1), "9" * 5000)]
    answered = {url[:60]: admin.get(url).status_code for url in urls}
    assert answered == {url[:60]: 404 for url in urls}
