"""The request list's pages: read from a position (keyset), so that every request is
listed once however the list changes between pages; page numbers for short lists;
``?page=N`` still answered."""

from __future__ import annotations

import html
import re
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select

from portal.admin import requests as list_view
from portal.admin.listing import SORTS, Position
from portal.extensions import db
from portal.models import ConsultationRequest, utcnow
from tests.factories import future_slot, make_request, make_therapist

NAME = re.compile(r'<a href="/admin/requests/\d+">([^<]+)</a>')
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
PREVIOUS = re.compile(r'<a href="([^"]+)" rel="prev">')
PER_PAGE = 4


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def link(pattern: re.Pattern, text: str) -> str | None:
    found = pattern.search(text)
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def tied(app, cast):
    """Nineteen requests besides the cast's two: received at five instants (three or
    four at each), booked at times two therapists share, or not booked."""
    with app.app_context():
        first, second = make_therapist(), make_therapist()
        start = utcnow().replace(microsecond=0) - timedelta(days=3)
        for n in range(19):
            therapist, slot = None, None
            if n % 4:  # every fourth without a time
                therapist = (first, second)[n % 2]
                slot = future_slot(days=2 + n // 2)  # pairs at the same time
            row = make_request(therapist, slot, first_name=f"Seek{n:02d}", last_name="Tied")
            row.created_at = start + timedelta(hours=n // 4)
        db.session.commit()


def everyone(client, sort: str) -> list[str]:
    return NAME.findall(page(client, f"/admin/requests?sort={sort}&per_page=200"))


class Arrivals:
    """New requests between pages: one received now, one received at the same instant
    as a request already listed (a tie), one booked at a time already taken by the
    other therapist (a tie on the booked time), one without a time."""

    def __init__(self, app):
        self.app = app
        self.count = 0

    def arrive(self) -> None:
        with self.app.app_context():
            listed = db.session.scalar(select(ConsultationRequest).where(
                ConsultationRequest.last_name == "Tied", ConsultationRequest.slot_start
                .is_not(None)).order_by(ConsultationRequest.id).offset(self.count % 7))
            other = make_therapist()
            self.count += 1
            new = [make_request(first_name=f"New{self.count}", last_name="Now"),
                   make_request(first_name=f"New{self.count}", last_name="Tie"),
                   make_request(other, None, first_name=f"New{self.count}", last_name="Slot"),
                   make_request(first_name=f"New{self.count}", last_name="Notime")]
            new[1].created_at = listed.created_at
            new[2].slot_start, new[2].slot_end = listed.slot_start, listed.slot_end
            new[2].therapist_id = other.id
            db.session.commit()


def walk(client, url: str, pattern: re.Pattern, between=None, limit: int = 60) -> list[str]:
    """The names on each page, following ``pattern``'s link to the end."""
    seen: list[str] = []
    for _ in range(limit):
        text = page(client, url)
        seen += NAME.findall(text)
        url = link(pattern, text)
        if url is None:
            return seen
        if between is not None:
            between()
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("sort", list(SORTS))
def test_every_request_is_listed_once_while_new_ones_arrive(app, admin, tied, sort):
    before = everyone(admin, sort)
    assert len(before) == 21
    arrivals = Arrivals(app)
    seen = walk(admin, f"/admin/requests?sort={sort}&per_page={PER_PAGE}", NEXT,
                between=arrivals.arrive)
    assert arrivals.count >= 5
    twice = [name for name, times in Counter(seen).items() if times > 1]
    assert twice == []
    assert set(before) <= set(seen)
    # In the order the whole list has them (arrivals aside).
    assert [name for name in seen if name in before] == before


@pytest.mark.parametrize("sort", list(SORTS))
def test_no_request_is_skipped_when_one_already_listed_is_deleted(app, admin, tied, sort):
    before = everyone(admin, sort)
    listed: list[str] = []

    def delete_one_listed() -> None:
        first, last = listed[-1].split(" ")
        with app.app_context():
            db.session.execute(delete(ConsultationRequest).where(
                ConsultationRequest.first_name == first, ConsultationRequest.last_name == last))
            db.session.commit()

    url = f"/admin/requests?sort={sort}&per_page={PER_PAGE}"
    while url:
        text = page(admin, url)
        listed += NAME.findall(text)
        url = link(NEXT, text)
        if url:
            delete_one_listed()
    assert listed == before


@pytest.mark.parametrize("sort", list(SORTS))
def test_previous_pages_walk_back_the_same_way(app, admin, tied, sort):
    forwards: list[list[str]] = []
    url = f"/admin/requests?sort={sort}&per_page={PER_PAGE}"
    while url:
        text = page(admin, url)
        forwards.append(NAME.findall(text))
        url = link(NEXT, text)
    backwards: list[list[str]] = []
    url = f"/admin/requests?sort={sort}&per_page={PER_PAGE}&before=end"
    while url:
        text = page(admin, url)
        backwards.append(NAME.findall(text))
        url = link(PREVIOUS, text)
    # From the end, four rows a page, each page the four rows before the last one; at
    # the top, the first page, full (it may repeat rows of the page before it).
    flat = [name for names in forwards for name in names]
    below_top = [name for names in reversed(backwards[:-1]) for name in names]
    assert all(len(names) == PER_PAGE for names in backwards)
    assert below_top == flat[-len(below_top):]
    assert set(flat) == set(below_top) | set(backwards[-1])
    assert backwards[-1] == forwards[0]  # back at the top: the first page, full


def test_previous_pages_reach_a_full_first_page_with_new_arrivals(app, admin, tied):
    first = page(admin, f"/admin/requests?per_page={PER_PAGE}")
    second = page(admin, link(NEXT, first))
    Arrivals(app).arrive()  # three at the top, one received three days ago
    again = page(admin, link(PREVIOUS, second))
    assert NAME.findall(again) == NAME.findall(first)  # the rows just before the second
    top = page(admin, link(PREVIOUS, again))
    assert NAME.findall(top) == ["New1 Notime", "New1 Slot", "New1 Now",
                                 NAME.findall(first)[0]]
    assert 'rel="prev"' not in top and f"1–{PER_PAGE} of 25" in top


def test_a_short_list_numbers_its_pages_wherever_they_start(app, admin, tied):
    first = page(admin, f"/admin/requests?per_page={PER_PAGE}")
    assert "1–4 of 21" in first and "(page 1 of 6)" in first
    second = page(admin, link(NEXT, first))
    assert "after=" in link(NEXT, first)
    assert "5–8 of 21" in second and "(page 2 of 6)" in second
    assert NAME.findall(second) == NAME.findall(page(admin, f"/admin/requests?per_page="
                                                            f"{PER_PAGE}&page=2"))
    assert re.search(r'href="[^"]*page=6[^"]*"', second)  # the last page by number
    assert 'aria-current="page">2<' in second


def test_a_page_number_in_a_long_list_moves_to_its_position(app, admin, tied, monkeypatch):
    monkeypatch.setattr(list_view, "NUMBERED_UP_TO", 10)
    numbered = NAME.findall(page(admin, "/admin/requests?sort=booked&per_page=200"))
    response = admin.get(f"/admin/requests?sort=booked&per_page={PER_PAGE}&page=3&status=new")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "after=" in location and "status=new" in location and "sort=booked" in location
    text = page(admin, location)
    assert NAME.findall(text) == numbered[8:12]
    assert "4 of 21" in text and "page 3" not in text  # deep in a long list: no number
    assert "First page" in text and "Last page" in text
    # Past the end: said on the page, not a redirect.
    past = admin.get(f"/admin/requests?per_page={PER_PAGE}&page=7")
    assert past.status_code == 200
    assert "There are no requests on page 7" in past.get_data(as_text=True)
    # The last page of a long list: its last rows.
    last = page(admin, f"/admin/requests?sort=booked&per_page={PER_PAGE}&before=end")
    assert NAME.findall(last) == numbered[-4:]
    assert "18–21 of 21" in last and 'rel="next"' not in last


@pytest.mark.parametrize("value", [
    "garbage", "", "20261399T000000.000000_5", "20260101T000000.000000_0",
    "20260101T000000.000000_99999999999", "none_5", "none_", "_5", "20260101T000000_5",
    "２０２６0101T000000.000000_5", "20260101T000000.000000_٣",
])
def test_a_position_that_is_not_one_means_the_first_page(admin, cast, value):
    expected = NAME.findall(page(admin, "/admin/requests"))
    for name in ("after", "before"):
        assert NAME.findall(page(admin, f"/admin/requests?{name}={value}")) == expected


def test_positions_read_back_as_written():
    when = datetime(2026, 12, 1, 18, 0, 0, 5)
    for position in (Position(when, 42), Position(None, 7)):
        assert Position.parse(position.as_arg()) == position
    assert Position(when, 42).as_arg() == "20261201T180000.000005_42"
