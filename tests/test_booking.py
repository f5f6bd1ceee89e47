"""The booking domain: free times from the database, new requests, cancel,
reschedule and reassign, with the database's unique indexes as the last word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal.booking import consultations, rebooking, unique_rules, waitlist
from portal.booking.intake_tables import Setting
from portal.booking.scheduling import PACIFIC
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest
from tests.factories import future_slot, make_request, make_therapist, make_time_off


def details(**fields) -> consultations.RequestDetails:
    values = {
        "first_name": "Casey", "last_name": "Rivera", "email": "casey@example.com",
        "phone": "+14155550123", "preferred_contact": "email", "state": "CA",
        "zip_code": "94110", "ca_resident": True, "in_california": True,
        "therapist_choice": "any", "slot_start": None, "interests": ["kap"],
        "submission_token": None,
    }
    return consultations.RequestDetails(**{**values, **fields})


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def test_available_slots_leave_out_bookings_and_time_off(ctx):
    therapist = make_therapist()
    slot = future_slot(days=3)
    free = consultations.available_slots(str(therapist.id))
    assert slot in free and free[slot] == [therapist.id]
    make_request(therapist, slot)
    make_time_off(therapist, slot + timedelta(hours=1), slot + timedelta(hours=2))
    free = consultations.available_slots(str(therapist.id))
    assert slot not in free
    assert slot + timedelta(hours=1) not in free
    assert slot + timedelta(minutes=30) in free


def test_cancelled_bookings_free_their_time(ctx):
    therapist = make_therapist()
    slot = future_slot(days=3)
    make_request(therapist, slot, status="cancelled")
    assert slot in consultations.available_slots("any")


@pytest.mark.clock
def test_available_slots_respect_notice_horizon_and_inactive_therapists(ctx, app):
    make_therapist()
    make_therapist(active=False)
    now = datetime.now(UTC)
    free = consultations.available_slots("any", now)
    assert free
    assert min(free) >= now + timedelta(hours=app.config["MIN_NOTICE_HOURS"])
    assert max(free) < now + timedelta(days=app.config["BOOKING_HORIZON_DAYS"])
    assert all(len(ids) == 1 for ids in free.values())
    assert consultations.available_slots("999999") == {}


def test_one_time_is_checked_as_the_full_list_would_answer(ctx, app):
    """free_therapists_at reads around one time only, yet agrees with available_slots."""
    first = make_therapist(hours=[(d, "09:00", "12:00") for d in range(7)])
    second = make_therapist()
    make_therapist(accepting_new=False)
    slot = future_slot(days=3)
    make_request(first, slot)
    moved = make_request(second, slot + timedelta(hours=1))
    make_time_off(second, slot - timedelta(minutes=15), slot + timedelta(minutes=15))
    now = datetime.now(UTC)
    notice = timedelta(hours=app.config["MIN_NOTICE_HOURS"])
    horizon = timedelta(days=app.config["BOOKING_HORIZON_DAYS"])
    for choice in ("any", str(first.id), str(second.id)):
        for exclude in (None, moved.id):
            free = consultations.available_slots(choice, now, exclude_request_id=exclude)
            assert free
            times = set(free) | {s + timedelta(minutes=15) for s in free} | {
                now + notice - timedelta(minutes=30), now + horizon, slot,
                slot + timedelta(hours=1), slot + timedelta(days=60)}
            for start in sorted(times):
                assert consultations.free_therapists_at(
                    choice, start, now, exclude_request_id=exclude) == free.get(start, []), (
                    choice, exclude, start)


def test_create_request_books_any_with_the_least_busy_therapist(ctx):
    busy, quiet = make_therapist(), make_therapist()
    make_request(busy, future_slot(days=4))
    slot = future_slot(days=3)
    db.session.commit()
    consultation = consultations.create_request(details(slot_start=slot))
    assert consultation.therapist_id == quiet.id
    assert consultation.starts_at == slot
    assert consultation.email_normalised == "casey@example.com"
    assert consultation.first_name_normalised == "casey"
    # Pending until the emailed code comes back: no trail and no notice yet.
    assert consultation.status == "pending"
    assert count(AuditEvent, AuditEvent.action == "request_created") == 0
    assert sorted(db.session.scalars(select(OutboxEmail.kind).where(
        OutboxEmail.request_id == consultation.id))) == ["verification_code"]


def test_any_tries_the_next_therapist_when_the_first_is_taken(ctx, monkeypatch):
    first, second = make_therapist(), make_therapist()
    slot = future_slot(days=3)
    make_request(first, slot)  # invisible to the check below, as if committed a moment ago
    monkeypatch.setattr(consultations, "free_therapists_at",
                        lambda choice, start, now=None, **kw: [first.id, second.id])
    db.session.commit()
    consultation = consultations.create_request(details(slot_start=slot))
    assert consultation.therapist_id == second.id


def test_slot_taken_when_every_free_therapist_is_taken(ctx, monkeypatch):
    therapist = make_therapist()
    slot = future_slot(days=3)
    make_request(therapist, slot)
    monkeypatch.setattr(consultations, "free_therapists_at",
                        lambda choice, start, now=None, **kw: [therapist.id])
    db.session.commit()
    with pytest.raises(consultations.SlotTaken):
        consultations.create_request(details(slot_start=slot))


def test_a_time_not_offered_is_refused(ctx):
    therapist = make_therapist(hours=[(0, "09:00", "10:00")])
    db.session.commit()
    with pytest.raises(consultations.SlotTaken):
        consultations.create_request(details(therapist_choice=str(therapist.id),
                                       slot_start=future_slot(days=1)))


def test_an_address_with_an_open_request_is_told_so_by_email_not_refused(ctx):
    existing = make_request(email="Casey@Example.com")
    db.session.commit()
    consultation = consultations.create_request(details(email="casey@example.com"))
    assert consultation.status == "pending"
    assert consultation.verification.duplicate_of_id == existing.id
    [email] = db.session.scalars(select(OutboxEmail).where(
        OutboxEmail.key.like(f"verify:{consultation.public_id}:%"))).all()
    assert (email.kind, email.request_id, email.recipient) == (
        "already_booked", existing.id, "Casey@Example.com")


def test_a_shared_phone_is_accepted(ctx):
    make_request(phone="+14155550999")
    db.session.commit()
    consultation = consultations.create_request(details(email="other@example.com",
                                                  phone="+14155550999"))
    assert consultation.verification.duplicate_of_id is None
    db.session.commit()


def test_a_closed_request_does_not_block_a_new_one(ctx):
    make_request(email="casey@example.com", phone="+14155550123", status="completed")
    db.session.commit()
    assert consultations.create_request(details()).id


def test_a_resubmitted_form_returns_the_first_request(ctx):
    db.session.commit()
    first = consultations.create_request(details(submission_token="tok-1"))
    db.session.commit()
    again = consultations.create_request(details(submission_token="tok-1"))
    assert again.id == first.id
    assert count(ConsultationRequest) == 1


def test_not_eligible_answers_are_refused(ctx):
    db.session.commit()
    with pytest.raises(consultations.NotEligible):
        consultations.create_request(details(zip_code="97201"))
    db.session.commit()
    with pytest.raises(consultations.NotEligible):
        consultations.create_request(details(in_california=False))


def test_no_time_with_a_chosen_therapist(ctx):
    therapist = make_therapist()
    db.session.commit()
    consultation = consultations.create_request(details(therapist_choice=str(therapist.id)))
    assert consultation.therapist_id == therapist.id and consultation.slot_start is None
    db.session.commit()
    with pytest.raises(consultations.UnknownTherapist):
        consultations.create_request(details(therapist_choice="424242", email="x@example.com",
                                       phone="+14155550111"))


def test_cancel_frees_the_time_once(ctx):
    therapist = make_therapist()
    slot = future_slot(days=3)
    consultation = make_request(therapist, slot)
    assert consultations.cancel_booking(consultation, by="client", actor="client") is True
    assert consultation.status == "cancelled" and consultation.cancelled_at
    assert consultations.cancel_booking(consultation, by="client", actor="client") is False
    assert slot in consultations.available_slots(str(therapist.id))
    with pytest.raises(ValueError):
        consultations.cancel_booking(consultation, by="someone", actor=None)


def test_reschedule_moves_the_time_and_bumps_the_sequence(ctx):
    therapist = make_therapist()
    old, new = future_slot(days=3), future_slot(days=4)
    consultation = make_request(therapist, old)
    consultations.reschedule_booking(consultation, new, actor="client")
    assert consultation.starts_at == new and consultation.booking_sequence == 1
    assert old in consultations.available_slots(str(therapist.id))
    assert count(AuditEvent, AuditEvent.action == "booking_rescheduled") == 1


def test_reschedule_refuses_a_taken_time_and_closed_requests(ctx):
    therapist = make_therapist()
    old, new = future_slot(days=3), future_slot(days=4)
    consultation = make_request(therapist, old)
    make_request(therapist, new)
    with pytest.raises(consultations.SlotTaken):
        consultations.reschedule_booking(consultation, new, actor="client")
    consultation.status = "cancelled"
    with pytest.raises(consultations.BookingClosed):
        consultations.reschedule_booking(consultation, future_slot(days=5), actor="client")


def test_reschedule_with_any_therapist_moves_to_a_free_one(ctx):
    mine, other = make_therapist(), make_therapist()
    old, new = future_slot(days=3), future_slot(days=4)
    consultation = make_request(mine, old)
    make_request(mine, new)
    consultations.reschedule_booking(consultation, new, actor="client", any_therapist=True)
    assert consultation.therapist_id == other.id
    assert consultation.therapist is other


def test_reassign_checks_the_constraint(ctx):
    first, second = make_therapist(), make_therapist()
    slot = future_slot(days=3)
    consultation = make_request(first, slot)
    make_request(second, slot)
    with pytest.raises(consultations.SlotTaken):
        consultations.reassign_therapist(consultation, second.id, actor="system")
    assert consultation.therapist_id == first.id
    third = make_therapist()
    consultations.reassign_therapist(consultation, third.id, actor="system")
    assert consultation.therapist is third
    with pytest.raises(consultations.UnknownTherapist):
        consultations.reassign_therapist(consultation, 424242, actor="system")


def test_a_not_a_fit_request_frees_its_time(ctx):
    therapist = make_therapist()
    slot = future_slot(days=3)
    make_request(therapist, slot, status="not_a_fit")
    db.session.commit()
    assert slot in consultations.available_slots(str(therapist.id))
    consultation = consultations.create_request(details(therapist_choice=str(therapist.id),
                                                  slot_start=slot))
    assert consultation.therapist_id == therapist.id


def test_create_request_leaves_the_callers_transaction_alone(ctx):
    """The view owns the transaction: work already flushed in it must survive."""
    db.session.add(Setting(key="flushed-by-the-caller", value="1"))
    db.session.flush()
    consultations.create_request(details())
    db.session.commit()
    assert db.session.get(Setting, "flushed-by-the-caller") is not None


def test_a_request_cancelled_after_it_was_loaded_is_not_moved(ctx):
    therapist = make_therapist()
    old = future_slot(days=3)
    consultation = make_request(therapist, old)
    db.session.commit()
    assert consultation.is_open  # loaded as open ...
    db.session.execute(  # ... then cancelled by another request, behind this object's back
        text("UPDATE consultation_request SET status = 'cancelled' WHERE id = :id"),
        {"id": consultation.id})
    with pytest.raises(consultations.BookingClosed):
        consultations.reschedule_booking(consultation, future_slot(days=4), actor="client")
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(ConsultationRequest, consultation.id)
    assert row.status == "cancelled" and row.starts_at == old and row.booking_sequence == 0
    assert count(AuditEvent, AuditEvent.action == "booking_rescheduled") == 0


def test_a_duplicate_email_is_told_apart_from_a_taken_slot_whatever_the_values(ctx):
    """PostgreSQL quotes the values in its message; only the index name may decide."""
    make_request(email="slot_start@example.com")
    db.session.commit()
    with pytest.raises(IntegrityError) as raised, db.session.begin_nested():
        make_request(email="slot_start@example.com")
    assert unique_rules.violated_rule(raised.value) == "email"


def test_normalised_names_fit_their_columns(ctx):
    consultation = consultations.create_request(details(first_name="\u0130" * 80,
                                                  last_name="\u00df" * 80))
    db.session.commit()
    assert len(consultation.first_name_normalised) == 80
    assert consultation.last_name_normalised == "s" * 80


def test_a_reference_drawn_twice_is_drawn_again(app, monkeypatch):
    draws = iter(["C-SAME111", "C-SAME111", "C-OTHER22"])
    with app.app_context():
        make_request(reference="C-SAME111")
        db.session.commit()
        monkeypatch.setattr(consultations, "new_reference", lambda: next(draws))
        consultation = consultations.create_request(details())
        db.session.commit()
        assert consultation.reference == "C-OTHER22"
        assert db.session.scalar(select(func.count()).select_from(ConsultationRequest)) == 2


@pytest.mark.clock
def test_the_practices_holidays_offer_no_time(ctx, app):
    """HOLIDAYS close the practice whatever a therapist's weekly hours say: the time
    picker, a reschedule, a waitlist offer and a rebooking all read free times through
    these two, and none offers a time on a closed day."""
    therapist = make_therapist()  # every day, 09:00-17:00
    on_holiday = future_slot(days=3)
    closed = on_holiday.astimezone(PACIFIC).date()
    app.config["HOLIDAYS"] = [closed.isoformat()]
    for choice in ("any", str(therapist.id)):
        free = consultations.available_slots(choice)
        assert [s for s in free if s.astimezone(PACIFIC).date() == closed] == []
        assert future_slot(days=2) in free and future_slot(days=4) in free
        assert consultations.free_therapists_at(choice, on_holiday) == []
        assert consultations.free_therapists_at(choice, future_slot(days=4)) == [therapist.id]
    moving = make_request(therapist, future_slot(days=5))
    with pytest.raises(consultations.SlotTaken):
        consultations.reschedule_booking(moving, on_holiday, actor="client")
    missed = make_request(therapist, future_slot(days=-1), status="no_show")
    with pytest.raises(consultations.SlotTaken):
        rebooking.book_again(missed, on_holiday)
    make_request(therapist, None, waitlist=True)  # waiting for a time with them
    assert waitlist.time_freed(therapist.id, on_holiday) == 0
    assert waitlist.time_freed(therapist.id, future_slot(days=4)) == 1  # a working day
