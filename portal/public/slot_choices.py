"""The therapist and time choices the public pages offer.

Each page loads the bookable therapists once (``availability.bookable_therapists``,
hours included) and passes that list here. The time picker shows about a hundred
radios, so everything a radio says is worked out here once, in Python: the template
only joins strings (a Jinja macro call per radio cost more than the rest of the page)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import NamedTuple

from portal.booking.availability import available_slots
from portal.booking.scheduling import format_day, format_span, group_by_day, slot_value
from portal.booking.therapists import Therapist
from portal.i18n import current_language


class SlotTime(NamedTuple):
    """One free time: its radio value, its start (UTC), and its label, e.g.
    "10:00–10:30 AM" with no-break spaces (a long one may wrap only after its dash)."""

    value: str
    start: datetime
    label: str
    index: int  # its place among the page's time radios, for the radio's id


class SlotDay(NamedTuple):
    """One Pacific day's free times; ``name`` as people read it ("Tuesday, December 1")."""

    day: date
    name: str
    times: tuple[SlotTime, ...]
    values: frozenset[str]


def therapist_choice(value: object, therapists: Sequence[Therapist]) -> str:
    """A bookable therapist's id as text, or "any" for anything else."""
    ids = {str(t.id) for t in therapists}
    return value if isinstance(value, str) and value in ids else "any"


@lru_cache(maxsize=8192)
def _words(start: datetime, language: str) -> tuple[str, str]:
    """A time's radio value and label. Cached: the same few weeks of times are on
    every page, and the zone arithmetic is the costly part."""
    return slot_value(start), format_span(start, language=language).replace(" ", "\u00a0")


def slot_days(free: Sequence[datetime], language: str | None = None) -> tuple[SlotDay, ...]:
    """Free start times (aware) grouped by Pacific day, each with its words in
    ``language`` (the visitor's, unless given). The same times in the same language
    give the same days: worked out once and shared (tuples, so no page can change them)."""
    return _slot_days(tuple(free), language or current_language())


@lru_cache(maxsize=64)
def _slot_days(free: tuple[datetime, ...], language: str) -> tuple[SlotDay, ...]:
    days, index = [], 0
    for day, starts in group_by_day(free):
        times = []
        for start in starts:
            value, label = _words(start, language)
            times.append(SlotTime(value, start, label, index))
            index += 1
        days.append(SlotDay(day, format_day(day, language), tuple(times),
                            frozenset(t.value for t in times)))
    return tuple(days)


def slot_options(choice: str, therapists: Sequence[Therapist], *,
                 leave_out: datetime | None = None,
                 exclude_request_id: int | None = None) -> tuple[SlotDay, ...]:
    """Free times grouped by Pacific day.

    ``leave_out``: a booking's own time, which is no choice when moving it.
    ``exclude_request_id``: a request whose held time still counts as free (the
    visitor's own pending request, while they change their answers)."""
    # A page that shows times: they may be reused while the database's availability
    # version stays the same (a booking is checked afresh when it is made).
    free = [start for start in available_slots(choice, therapists=therapists,
                                               exclude_request_id=exclude_request_id,
                                               reuse=True)
            if start != leave_out]
    return slot_days(free)
