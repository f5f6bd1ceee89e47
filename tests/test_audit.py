"""The audit trail outlives the requests it speaks of, so it never holds a client's
details: ids, statuses, times and references only."""

from __future__ import annotations

import json
import logging

import pytest

from portal import audit


@pytest.mark.parametrize("detail", [
    {"email": "casey@example.com"}, {"first_name": "Casey"}, {"message": "private"},
    {"zip_code": "94110"}, {"phone": "+14155550123"}, {"notes": "x"},
    {"reason": "write to casey@example.com"}, {"reason": "call (415) 555-0123"},
    {"filter": {"q": "Casey Rivera"}}, {"contact": "+14155550123"},
])
def test_the_audit_trail_withholds_anything_personal(app, caplog, detail):
    with app.app_context(), caplog.at_level(logging.ERROR, logger="portal.audit"):
        event = audit.record("something", actor="system", request_id=1, **detail)
        stored = json.dumps(json.loads(event.detail))
    assert "[withheld]" in stored
    for value in ("casey", "Casey", "private", "94110", "555", "Rivera"):
        assert value not in stored
        assert all(value not in record.getMessage() for record in caplog.records)
    assert caplog.records  # said so, so the call can be fixed


def test_the_audit_trail_keeps_ids_statuses_times_and_references(app):
    detail = {"reference": "C-ABCD234", "status": "cancelled", "previous_status": "new",
              "until": "2026-12-02T18:00:00+00:00", "therapist_id": 4, "booked": True,
              "filter": {"status": "new", "received_from": "2026-11-01", "search": True}}
    with app.app_context():
        event = audit.record("something", actor="system", **detail)
    assert json.loads(event.detail) == detail
