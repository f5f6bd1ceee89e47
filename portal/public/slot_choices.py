"""The therapist and time choices the public pages offer.

Each page loads the bookable therapists once (``availability.bookable_therapists``,
hours included) and passes that list here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from portal.availability import available_slots
from portal.models import Therapist
from portal.scheduling import group_by_day, slot_value

SlotOptions = list[tuple[date, list[tuple[str, datetime]]]]


def therapist_choice(value: object, therapists: Sequence[Therapist]) -> str:
    """A bookable therapist's id as text, or "any" for anything else."""
    ids = {str(t.id) for t in therapists}
    return value if isinstance(value, str) and value in ids else "any"


def slot_options(choice: str, therapists: Sequence[Therapist], *,
                 leave_out: datetime | None = None,
                 exclude_request_id: int | None = None) -> SlotOptions:
    """Free times grouped by Pacific day, as (day, [(value, start), ...]).

    ``leave_out``: a booking's own time, which is no choice when moving it.
    ``exclude_request_id``: a request whose held time still counts as free (the
    visitor's own pending request, while they change their answers)."""
    free = [start for start in available_slots(choice, therapists=therapists,
                                               exclude_request_id=exclude_request_id)
            if start != leave_out]
    return [(day, [(slot_value(start), start) for start in day_slots])
            for day, day_slots in group_by_day(free)]
