"""``seed-demo --requests N`` in bulk: the availability trigger is off while it inserts
and the number is raised once; the trigger is back (or never gone) afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from portal import demo
from portal.extensions import db
from portal.models import ConsultationRequest
from tests.factories import future_slot, make_request


def version(app) -> int:
    with app.app_context():
        return db.session.scalar(text("SELECT version FROM availability_version WHERE id = 1")) or 0


def insert_trigger_on(app) -> bool:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            return db.session.scalar(text(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'availability_request_insert'"
            )) == "O"
        return db.session.scalar(text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
            " AND name = 'availability_request_insert'")) == 1


def test_a_bulk_seed_raises_the_number_once_and_leaves_the_trigger_on(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    before = version(app)
    result = runner.invoke(args=["seed-demo", "--requests", "400"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        booked = db.session.scalar(select(func.count()).where(
            ConsultationRequest.slot_start.is_not(None)))
        assert booked > 50  # each of them raised the number before
        row = db.session.scalars(select(ConsultationRequest).limit(1)).one()
        assert (row.language, row.waitlist, row.booking_sequence) == ("en", False, 0)
    assert version(app) == before + 1
    assert insert_trigger_on(app)
    with app.app_context():  # and a booking made afterwards raises it again
        make_request(slot_start=future_slot(days=40))
        db.session.commit()
    assert version(app) == before + 2


def test_a_seed_that_fails_halfway_leaves_nothing_and_the_trigger_on(app, monkeypatch):
    with app.app_context():
        demo.seed_therapists()
        db.session.commit()
    before = version(app)
    made = demo._RowMaker.__call__

    def fail_late(self, n):
        if n > 150:  # two batches of 100 in: one inserted, one being made
            raise RuntimeError("the disk is full")
        return made(self, n)

    monkeypatch.setattr(demo._RowMaker, "__call__", fail_late)
    with app.app_context(), pytest.raises(RuntimeError):
        try:
            demo.seed_requests(300, chunk=100)
        finally:
            db.session.rollback()
    assert insert_trigger_on(app)
    assert version(app) == before
    with app.app_context():
        assert db.session.scalar(select(func.count(ConsultationRequest.id))) == 0


@pytest.mark.parametrize("chunk", [1, 7, 5000])
def test_every_request_asked_for_is_added_whatever_the_batch(app, chunk):
    with app.app_context():
        demo.seed_therapists()
        assert demo.seed_requests(23, chunk=chunk) == 23
        db.session.commit()
        assert db.session.scalar(select(func.count(ConsultationRequest.id))) == 23
        references = db.session.scalars(select(ConsultationRequest.reference)).all()
        assert len(set(references)) == 23
