"""The waitlist in a real Chromium: the step-2 box, the offer page (two clients open the
same offered time; the first to press "Book this time" gets it, the second reads "just
taken"), leaving the list from the manage page, and the back office's Waitlist page.
axe-core on each page; screenshots at 1280 and 375 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.booking import consultations
from portal.database import begin_write
from portal.extensions import db
from portal.links import manage_token
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.browser import check_page as axe_and_screenshots
from tests.factories import PASSWORD, future_slot, make_request, make_therapist, make_user
from tests.test_browser_public import answer_eligibility

pytestmark = pytest.mark.browser
OFFER_LINK = re.compile(r"https://portal\.example\.com(/waitlist/[A-Za-z0-9._-]+)")


def check_page(page: Page, screenshot_dir, name: str) -> None:
    axe_and_screenshots(page, name, lambda width: screenshot_dir / f"waitlist-{name}-{width}.png")


@pytest.fixture(scope="module")
def offered(live_app):
    """Two clients waiting for one therapist, a third who only waits, and the therapist's
    booking three days ahead cancelled: the first two each have an offer for that time."""
    with live_app.app_context():
        therapist = make_therapist("Noor Haddad", licence_type="LCSW", licence_number="77120")
        booked = make_request(therapist, future_slot(days=3, hour_utc=19))
        waiters = [make_request(therapist, None, waitlist=True, first_name=name,
                                email=f"{name.lower()}.waits@example.com")
                   for name in ("Jordan", "Riley")]
        make_user("waitlist-admin@example.com")
        db.session.commit()
        begin_write()
        consultations.cancel_booking(booked, by="practice", actor="system")
        db.session.commit()
        paths = []
        for waiter in waiters:
            body = db.session.scalar(select(OutboxEmail.body_text).where(
                OutboxEmail.request_id == waiter.id, OutboxEmail.kind == "waitlist_offer"))
            paths.append(OFFER_LINK.search(body).group(1))
        riley = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == "riley.waits@example.com"))
        return {"offers": paths, "riley_manage": f"/manage/{manage_token(riley)}"}


def test_first_click_books_second_gets_just_taken(browser, base_url, offered, screenshot_dir):
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    first.goto(base_url + offered["offers"][0])
    second.goto(base_url + offered["offers"][1])  # both see the time, before either books
    expect(first.get_by_role("heading", name="A time has opened")).to_be_visible()
    check_page(first, screenshot_dir, "offer")
    first.get_by_role("button", name="Book this time").click()
    expect(first.get_by_text("Your consultation is booked.")).to_be_visible()
    expect(first.get_by_role("heading", name="Your consultation")).to_be_visible()
    check_page(first, screenshot_dir, "booked-manage")

    second.get_by_role("button", name="Book this time").click()
    expect(second.get_by_role("heading", name="That time was just taken")).to_be_visible()
    expect(second.get_by_text("You're still on our waitlist")).to_be_visible()
    check_page(second, screenshot_dir, "just-taken")
    first.context.close()
    second.context.close()


def test_the_back_office_waitlist(browser, base_url, offered, screenshot_dir):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/admin/login")
    page.get_by_label("Email address").fill("waitlist-admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("link", name="Waitlist").click()
    expect(page.get_by_role("heading", name="Waitlist")).to_be_visible()
    check_page(page, screenshot_dir, "admin")
    context.close()


def test_leaving_the_waitlist_from_the_manage_page(page: Page, base_url, offered,
                                                   screenshot_dir):
    page.goto(base_url + offered["riley_manage"])
    expect(page.get_by_role("heading", name="You're on the waitlist")).to_be_visible()
    check_page(page, screenshot_dir, "manage")
    page.get_by_role("button", name="Take me off the waitlist").click()
    expect(page.get_by_text("You're off the waitlist")).to_be_visible()
    expect(page.get_by_role("heading", name="You're on the waitlist")).to_have_count(0)


def test_the_waitlist_box_opens_under_none_of_these_times(page: Page, base_url,
                                                          screenshot_dir):
    answer_eligibility(page, base_url)
    expect(page.get_by_label("Email me if an earlier time opens")).to_be_hidden()
    page.get_by_label(re.compile("None of these times work")).check()
    page.get_by_label("Email me if an earlier time opens").check()
    expect(page.get_by_label("Email me if an earlier time opens")).to_be_checked()
    page.get_by_label("Email me if an earlier time opens").scroll_into_view_if_needed()
    check_page(page, screenshot_dir, "time-waitlist")
