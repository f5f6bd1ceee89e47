"""Step 3: the emailed code that makes a request real, and the promise that the web
never tells a stranger whether an address or phone already has a request."""

from __future__ import annotations

import html
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.booking import verification
from portal.booking.intake_tables import AnonymousCount
from portal.booking.scheduling import format_time
from portal.extensions import db
from portal.messages import outbox, upkeep
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, EmailVerification
from tests.factories import make_request
from tests.test_public_flow import (
    details_page,
    enter_code,
    form_data,
    latest_code,
    outbox_kinds,
    pass_eligibility,
    requests_stored,
    send,
)

# Everything that differs between two identical requests only by chance: CSRF and
# form tokens, and the session cookie that carries a random public id.
VOLATILE = [
    re.compile(r'(name="(?:csrf_token|form_token)" type="hidden" value=")[^"]+'),
    re.compile(r'(value=")[A-Za-z0-9._-]{40,}'),
]


def scrub(text: str) -> str:
    for pattern in VOLATILE:
        text = pattern.sub(r"\1TOKEN", text)
    return text


def headers_of(response) -> list[tuple[str, str]]:
    """Headers but the session cookie (random ids) and the length (the page shows the
    address typed, and the two addresses differ in length)."""
    return sorted((k, v) for k, v in response.headers.items()
                  if k.lower() not in ("set-cookie", "content-length"))


def said(response) -> str:
    """A page's text as read: entities such as &#39; undone."""
    return html.unescape(response.text)


def submit(client, **fields):
    response = send(client, form_data(client, **fields))
    assert response.status_code == 302, response.text
    return response


def drop_pending(app) -> None:
    """Delete every pending request, freeing the times they held."""
    with app.app_context():
        for pending in db.session.scalars(select(ConsultationRequest).where(
                ConsultationRequest.status == "pending")).all():
            verification.drop(pending, now=datetime.now(UTC))
        db.session.commit()


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def unverified_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.coalesce(func.sum(AnonymousCount.count), 0))
                                 .where(AnonymousCount.kind == "unverified"))


# -- the code -------------------------------------------------------------------------

def test_the_code_email_is_neutral_and_carries_nothing_typed(app, client, therapist_id):
    pass_eligibility(client)
    submit(client, first_name="Sentinelfirst", last_name="Sentinellast",
           message="Sentinelmessage", phone="(415) 867-5309")
    with app.app_context():
        [email] = db.session.scalars(select(OutboxEmail)).all()
        code = latest_code(app)
        assert email.kind == "verification_code" and email.recipient == "casey@example.com"
        assert email.subject == "Your confirmation code"
        for body in (email.body_text, email.body_html):
            assert code in body and "988" in body and "30 minutes" in body
            assert "ignore this email" in body
            for typed in ("Sentinel", "867", "5309", "94110", "Casey", "Rivera"):
                assert typed not in body
        # Stored hashed: the code itself is nowhere but in the email.
        [stored] = db.session.scalars(select(EmailVerification)).all()
        assert code not in stored.code_hash and len(stored.code_hash) == 64


def test_a_wrong_code_says_so_and_the_fifth_drops_the_request(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    send(client, data)
    right = latest_code(app)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for tries_left in (4, 3, 2, 1):
        page = enter_code(client, app, code=wrong)
        assert page.status_code == 200
        assert "That code doesn't match" in said(page)
        assert f"You have {tries_left} more tr" in said(page)
        assert 'aria-invalid="true"' in page.text and 'id="code-error"' in page.text
    last = enter_code(client, app, code=wrong)
    assert "We couldn't confirm your email" in said(last)
    # No trace but an anonymous count; the time is free again; the right code is too late.
    assert requests_stored(app) == []
    with app.app_context():
        assert count(OutboxEmail) == 0 and count(EmailVerification) == 0
        assert count(AuditEvent) == 0
    assert unverified_count(app) == 1
    assert "timed out" in enter_code(client, app, code=right).text
    stranger = app.test_client()
    pass_eligibility(stranger)
    assert data["slot"] in details_page(stranger)


def tabs_of(client, count: int) -> list:
    """``count`` tabs of the browser ``client`` is: the same session cookie each."""
    cookie = client.get_cookie("session").value
    tabs = []
    for _ in range(count):
        tab = client.application.test_client()
        tab.set_cookie("session", cookie)
        tabs.append(tab)
    return tabs


@pytest.mark.slow
@pytest.mark.postgres
def test_wrong_codes_sent_at_once_all_say_too_many_tries(app, client, therapist_id):
    """Ten tabs post a wrong code at the same moment: four are told how many tries are
    left, the fifth drops the request, and the five that find it gone say the same as
    the fifth (too many tries; start again), not that the request timed out."""
    pass_eligibility(client)
    submit(client)
    assert client.get("/consultation/verify").status_code == 200  # where the redirect leads
    right = latest_code(app)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    tabs = tabs_of(client, 10)
    start = threading.Barrier(len(tabs))

    def guess(tab):
        start.wait()
        return tab.post("/consultation/verify", data={"code": wrong})

    with ThreadPoolExecutor(len(tabs)) as pool:
        responses = list(pool.map(guess, tabs))
    assert [r.status_code for r in responses] == [200] * len(tabs)
    texts = [said(r) for r in responses]
    assert not [t for t in texts if "timed out" in t]
    assert sum("more tr" in t for t in texts) == 4
    assert sum("We couldn't confirm your email" in t and "five times" in t
               for t in texts) == len(tabs) - 4
    assert requests_stored(app) == []


def test_a_wrong_code_after_another_tab_verified_shows_the_confirmation(app, client,
                                                                        therapist_id):
    pass_eligibility(client)
    submit(client)
    client.get("/consultation/verify")
    [other_tab] = tabs_of(client, 1)
    done = enter_code(client, app)
    assert done.status_code == 302
    late = enter_code(other_tab, app, code="000000")
    assert late.status_code == 302 and late.location == done.location
    assert "timed out" not in other_tab.get(late.location).text


ARABIC_INDIC_DIGITS = "\u0661\u0662\u0663\u0664\u0665\u0666"


@pytest.mark.parametrize("typed", ["12345", "1234567", "abcdef", ARABIC_INDIC_DIGITS, "",
                                   "x" * 500])
def test_a_code_that_is_not_six_digits_is_a_field_error_not_a_try(app, client, therapist_id,
                                                                   typed):
    pass_eligibility(client)
    submit(client)
    page = enter_code(client, app, code=typed)
    assert page.status_code == 200 and 'id="code-error"' in page.text
    with app.app_context():
        assert db.session.scalars(select(EmailVerification.wrong_tries)).one() == 0


def test_a_code_typed_with_spaces_works(app, client, therapist_id):
    pass_eligibility(client)
    submit(client)
    code = latest_code(app)
    response = enter_code(client, app, code=f" {code[:3]} {code[3:]} ")
    assert response.status_code == 302 and "/consultation/confirmed/" in response.location


def test_a_new_code_replaces_the_old_one_three_times_at_most(app, client, therapist_id):
    pass_eligibility(client)
    submit(client)
    codes = [latest_code(app)]
    for _ in range(3):
        response = client.post("/consultation/verify", data={"resend": "1", "code": ""})
        assert response.status_code == 302 and response.location == "/consultation/verify"
        assert "We've sent a new code" in said(client.get("/consultation/verify"))
        codes.append(latest_code(app))
    refused = client.post("/consultation/verify", data={"resend": "1"})
    assert "We've sent as many new codes as we can" in said(refused)
    assert outbox_kinds(app) == ["verification_code"] * 4
    older = [code for code in codes[:-1] if code != codes[-1]]
    if older:
        assert "doesn't match" in said(enter_code(client, app, code=older[0]))
    assert enter_code(client, app, code=codes[-1]).status_code == 302


def test_change_my_email_goes_back_with_the_answers_kept(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="Ana María")
    send(client, data)
    response = client.post("/consultation/verify", data={"change_email": "1"})
    assert response.status_code == 302
    assert response.location == "/consultation/about?from=check#email"
    page = client.get("/consultation/about?from=check").text
    assert 'value="Ana María"' in page
    assert 'value="casey@example.com"' in page and 'value="(415) 555-0123"' in page
    assert '<input type="hidden" name="from" value="check">' in page  # back to the check page
    page = client.get("/consultation/time").text
    assert f'value="{data["slot"]}" checked' in page  # its own held time is still offered
    [old] = requests_stored(app)
    resent = form_data(client, first_name="Ana María", email="ana@example.com",
                       slot=data["slot"])
    assert send(client, resent).location == "/consultation/verify"
    [new] = requests_stored(app)
    assert new.public_id != old.public_id
    assert new.email == "ana@example.com" and new.status == "pending"
    assert new.starts_at == old.starts_at
    with app.app_context():
        assert db.session.scalars(select(OutboxEmail.recipient)).all() == ["ana@example.com"]
    assert "ana@example.com" in client.get("/consultation/verify").text
    assert enter_code(client, app, email="ana@example.com").status_code == 302


@pytest.mark.clock
def test_the_hold_runs_out(app, client, therapist_id):
    pass_eligibility(client)
    submit(client)
    code = latest_code(app)
    with app.app_context():
        [email] = db.session.scalars(select(OutboxEmail.body_text)).all()
    until = datetime.now(UTC) + timedelta(minutes=30)
    assert f"until {format_time(until)} PT" in email.replace("\n", " ")
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=31), tick=False):
        assert "Your request has timed out" in client.get("/consultation/verify").text
        assert "Your request has timed out" in enter_code(client, app, code=code).text
    assert requests_stored(app) == []
    assert unverified_count(app) == 1


def test_expired_holds_are_released_by_the_sender_and_by_purge(app, runner, therapist_id):
    clients = [app.test_client() for _ in range(3)]
    for n, client in enumerate(clients):
        pass_eligibility(client)
        submit(client, email=f"person{n}@example.com", slot_index=n)
    later = datetime.now(UTC) + timedelta(minutes=31)
    with app.app_context():
        assert verification.release_expired(datetime.now(UTC)) == 0
        db.session.commit()
        with time_machine.travel(later, tick=False):
            upkeep.work_once()
        assert count(ConsultationRequest) == 0 and count(OutboxEmail) == 0
    assert unverified_count(app) == 3
    pass_eligibility(clients[0])
    submit(clients[0])
    with time_machine.travel(later, tick=False):
        result = runner.invoke(args=["purge", "--older-than-days", "30"])
    assert result.exit_code == 0, result.output
    assert requests_stored(app) == []


def test_the_right_code_after_another_tab_confirmed_the_same_address(app, therapist_id):
    """Two pending requests for one address, both with codes (neither was open yet): the
    second confirmed is dropped and its owner, proven by the code, is told by email."""
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        pass_eligibility(client)
    submit(first, slot_index=0)
    first_code = latest_code(app)
    submit(second, slot_index=1)
    second_code = latest_code(app)
    assert enter_code(first, app, code=first_code).status_code == 302
    page = enter_code(second, app, code=second_code)
    assert "You already have a request with us" in said(page)
    [kept] = requests_stored(app)
    assert kept.status == "new"
    with app.app_context():
        kinds = db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == kept.id).order_by(OutboxEmail.id)).all()
    assert kinds[-1] == "already_booked"


# -- no oracle ---------------------------------------------------------------------

def test_the_web_says_the_same_for_a_known_and_an_unknown_address(app, therapist_id):
    """CMIA: whether a named person asked for therapy here is itself confidential."""
    with app.app_context():
        existing = make_request(email="known@example.com", first_name="Known")
        db.session.commit()
        existing_id = existing.id

    sent = {}

    def walk(email: str) -> list[tuple]:
        client = app.test_client()
        pass_eligibility(client)
        data = form_data(client, email=email)
        posted = send(client, data)
        page = client.get("/consultation/verify")
        wrong = client.post("/consultation/verify", data={"code": "000000"})
        resend = client.post("/consultation/verify", data={"resend": "1"})
        back = client.post("/consultation/verify", data={"change_email": "1"})
        form = client.get("/consultation/time")
        with app.app_context():
            sent[email] = [(e.kind, e.request_id, e.body_text) for e in db.session.scalars(
                select(OutboxEmail).where(OutboxEmail.recipient == email)
                .order_by(OutboxEmail.id))]
        drop_pending(app)  # so that the next walk sees the same free times
        return [(r.status_code, r.location, headers_of(r), scrub(r.text.replace(email, "ADDR")))
                for r in (posted, page, wrong, resend, back, form)]

    known, unknown = walk("known@example.com"), walk("unknown@example.com")
    assert known[0][:2] == (302, "/consultation/verify")
    assert known == unknown
    # Only the mail differs: the known address is told it has a request, with its link.
    told, coded = sent["known@example.com"], sent["unknown@example.com"]
    assert [kind for kind, _, _ in told] == ["already_booked"] * 2
    assert all(request_id == existing_id and "/manage/" in body for _, request_id, body in told)
    assert "Known" not in told[0][2] and "Casey" not in told[0][2]  # nothing typed at all
    assert [kind for kind, _, _ in coded] == ["verification_code"] * 2
    with app.app_context():
        assert db.session.get(ConsultationRequest, existing_id).status == "new"


def test_a_known_address_can_never_be_verified_even_with_a_guessed_code(app, therapist_id):
    with app.app_context():
        make_request(email="known@example.com")
        db.session.commit()
    client = app.test_client()
    pass_eligibility(client)
    submit(client, email="known@example.com")
    with app.app_context():
        pending = db.session.scalars(select(ConsultationRequest).where(
            ConsultationRequest.status == "pending")).one()
        verification_row = pending.verification
        # Whatever the stored hash matches, a duplicate is never confirmed.
        for code in ("000000", "123456"):
            verification_row.code_hash = verification.hash_code(pending, code)
            db.session.commit()
            assert "doesn't match" in said(enter_code(client, app, code=code))


def test_a_replayed_form_token_tells_nothing_about_the_new_address(app, therapist_id):
    with app.app_context():
        make_request(email="known@example.com")
        db.session.commit()

    recipients = []

    def replay(second_email: str):
        client = app.test_client()
        pass_eligibility(client)
        data = form_data(client, email="first@example.com")
        assert send(client, data).status_code == 302
        # The token is spent; a prober reuses it, from a fresh browser, with another address.
        prober = app.test_client()
        pass_eligibility(prober)
        answer = send(prober, {**data, "email": second_email})
        # Nor does it hand over the first person's pending request.
        for page in (prober.get("/consultation/verify"), prober.get("/consultation/time")):
            assert "first@example.com" not in page.text
        with app.app_context():
            recipients.extend(db.session.scalars(select(OutboxEmail.recipient)))
        drop_pending(app)
        return answer

    known, unknown = replay("known@example.com"), replay("unknown@example.com")
    assert known.status_code == unknown.status_code == 200
    assert "Please check your answers and submit again" in known.text
    assert scrub(known.text.replace("known@", "X@")) == scrub(
        unknown.text.replace("unknown@", "X@"))
    assert headers_of(known) == headers_of(unknown)
    # Nothing was stored or sent for either replay: only each first person's code.
    assert recipients == ["first@example.com", "first@example.com"]


def test_a_shared_phone_is_accepted_and_flagged_to_staff_on_both(app, client, admin, cast):
    with app.app_context():
        earlier = make_request(email="first@example.com", phone="+14155550123")
        db.session.commit()
        earlier_id, earlier_ref = earlier.id, earlier.reference
    visitor = app.test_client()
    pass_eligibility(visitor)
    submit(visitor, email="second@example.com", phone="(415) 555-0123")
    assert enter_code(visitor, app, email="second@example.com").status_code == 302
    with app.app_context():
        later = db.session.scalars(select(ConsultationRequest).where(
            ConsultationRequest.email == "second@example.com")).one()
        later_id, later_ref = later.id, later.reference
    assert f"Possible duplicate of <a href=\"/admin/requests/{earlier_id}\">{earlier_ref}</a>" \
        in admin.get(f"/admin/requests/{later_id}").text
    assert f"Possible duplicate of <a href=\"/admin/requests/{later_id}\">{later_ref}</a>" \
        in admin.get(f"/admin/requests/{earlier_id}").text


def test_pending_requests_are_invisible_to_staff(app, client, admin, cast):
    pass_eligibility(client)
    submit(client, first_name="Pendingperson")
    [pending] = [r for r in requests_stored(app) if r.status == "pending"]
    assert "Pendingperson" not in admin.get("/admin/requests").text
    assert "Pendingperson" not in admin.get("/admin/requests?status=").text
    assert "Pendingperson" not in admin.get("/admin/requests/export.csv").text
    assert admin.get(f"/admin/requests/{pending.id}").status_code == 404
    dashboard = admin.get("/admin/").text
    assert "Pendingperson" not in dashboard and "Waiting now: 1." in dashboard
    with app.app_context():
        # No notice to any therapist or to intake: only the code went out.
        assert db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == pending.id)).all() == ["verification_code"]


def test_dropped_and_expired_requests_take_their_sink_copies_along(app, therapist_id, tmp_path):
    """The code emails' .eml copies go with the pending request, once its deletion
    commits: the fifth wrong code, the hold running out (the sender's round), and not
    when the deletion is rolled back."""
    sink = tmp_path / "mail"
    app.config.update(MAIL_BACKEND="sink", MAIL_SINK_DIR=str(sink))
    clients = [app.test_client() for _ in range(3)]
    for n, client in enumerate(clients):
        pass_eligibility(client)
        submit(client, email=f"person{n}@example.com", slot_index=n)
    with app.app_context():
        assert outbox.deliver_due().sent == 3
    assert len(list(sink.glob("*.eml"))) == 3
    for _ in range(verification.MAX_WRONG_TRIES):
        enter_code(clients[0], app, email="person0@example.com", code="000000")
    assert len(list(sink.glob("*.eml"))) == 2
    with app.app_context():  # rolled back: the request and its copy stay
        pending = db.session.scalars(select(ConsultationRequest)).first()
        verification.drop(pending, now=datetime.now(UTC))
        db.session.rollback()
        db.session.commit()
    assert len(list(sink.glob("*.eml"))) == 2
    with app.app_context(), time_machine.travel(datetime.now(UTC) + timedelta(minutes=31),
                                                tick=False):
        upkeep.work_once()
        assert count(ConsultationRequest) == 0
    assert list(sink.glob("*.eml")) == []
