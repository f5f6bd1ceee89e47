"""One therapist calendar read into busy ranges (start, end; nothing else).

A secret iCalendar address is fetched with a conditional GET (``If-None-Match``
with the last ETag), redirects followed by hand so that each hop passes
portal.calendars.addresses, the body read in chunks and cut off at
CALENDAR_MAX_BYTES, the whole read bounded by CALENDAR_TIMEOUT_SECONDS. A CalDAV
calendar is asked for its sync-token first (unchanged: nothing more is read), then for
the events in the window only (a time-range REPORT).

Busy: every event in the window, recurring ones expanded with their moved and
cancelled occurrences (recurring-ical-events), Google's ``X-WR-TIMEZONE`` calendars
made standard (x-wr-timezone), all-day events as the therapist's whole Pacific days,
floating times as Pacific time. Free: ``TRANSP:TRANSPARENT``, ``STATUS:CANCELLED``,
and the portal's own events (UIDs in CALENDAR_UID_DOMAIN: the consultations it wrote).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urljoin

import icalendar
import recurring_ical_events
import requests
import x_wr_timezone

from portal.booking.scheduling import PACIFIC
from portal.calendars import transport
from portal.calendars.addresses import check_address
from portal.calendars.errors import CalendarError, for_status

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
NOT_MODIFIED = None


@dataclass(frozen=True)
class Limits:
    """What one read may cost (from the CALENDAR_* settings)."""

    timeout: float
    max_bytes: int
    max_events: int
    allow_private: bool
    uid_domain: str

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(float(config["CALENDAR_TIMEOUT_SECONDS"]), int(config["CALENDAR_MAX_BYTES"]),
                   int(config["CALENDAR_MAX_EVENTS"]),
                   bool(config["CALENDAR_ALLOW_PRIVATE_URLS"]),
                   str(config["CALENDAR_UID_DOMAIN"]))


@dataclass
class Reading:
    """What one read gave: the busy ranges (None: unchanged since ``validator`` was
    stored), the server's new validator, and how many events the calendar held."""

    ranges: list[tuple[datetime, datetime]] | None
    validator: str | None
    events: int | None


# -- secret iCalendar addresses ------------------------------------------------------

def read_ics(url: str, validator: str | None, start: datetime, end: datetime,
             limits: Limits) -> Reading:
    deadline = time.monotonic() + limits.timeout
    headers = {"Accept": "text/calendar", "User-Agent": "consultation-portal"}
    if validator:
        headers["If-None-Match"] = validator
    with _session(limits, deadline) as session:
        response = _get(session, url, headers, deadline)
        with response:
            if response.status_code == 304:
                return Reading(NOT_MODIFIED, validator, None)
            if response.status_code != 200:
                raise for_status(response.status_code)
            body = _read_body(response)
            etag = response.headers.get("ETag")
    ranges, events = busy_ranges([body], start, end, limits, deadline)
    return Reading(ranges, etag[:300] if etag else None, events)


def _session(limits: Limits, deadline: float):
    """Every request checked and pinned to the address that passed, every answer cut
    off at CALENDAR_MAX_BYTES and the deadline (portal.calendars.transport)."""
    return transport.session(max_bytes=limits.max_bytes, allow_private=limits.allow_private,
                             deadline=deadline, max_redirects=MAX_REDIRECTS)


def _get(session: requests.Session, url: str, headers: dict, deadline: float
         ) -> requests.Response:
    """GET ``url``, following redirects by hand (each hop checked by the session)."""
    for _ in range(MAX_REDIRECTS + 1):
        response = _request(session.get, url, headers=headers, stream=True,
                            allow_redirects=False, timeout=_left(deadline))
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
    raise CalendarError("too_many_redirects")


def _read_body(response: requests.Response) -> bytes:
    """The whole body (the session cuts it off past CALENDAR_MAX_BYTES or the deadline,
    whether or not it declared its length)."""
    try:
        return b"".join(response.iter_content(CHUNK))
    except requests.RequestException as error:
        raise _network_error(error) from None


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CalendarError("timeout")
    return left


def _request(method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except requests.RequestException as error:
        raise _network_error(error) from None


def _network_error(error: Exception) -> CalendarError:
    if isinstance(error, requests.Timeout):
        return CalendarError("timeout")
    if isinstance(error, requests.exceptions.SSLError):
        return CalendarError("tls")
    return CalendarError("connection")


# -- CalDAV -----------------------------------------------------------------------

def read_caldav(url: str, username: str | None, password: str | None, validator: str | None,
                start: datetime, end: datetime, limits: Limits) -> Reading:
    from caldav.elements import dav  # imported here: the CalDAV client is large

    deadline = time.monotonic() + limits.timeout
    calendar = caldav_calendar(url, username, password, limits, deadline)
    try:
        token = calendar.get_property(dav.SyncToken())
        if token and token == validator:
            return Reading(NOT_MODIFIED, validator, None)
        _left(deadline)
        found = calendar.search(start=start, end=end, event=True, expand=False)
        texts = [item.data for item in found]
    except CalendarError:
        raise
    except Exception as error:
        raise caldav_error(error) from None
    if time.monotonic() > deadline:
        raise CalendarError("timeout")
    if sum(len(text) for text in texts) > limits.max_bytes:
        raise CalendarError("too_large")
    ranges, events = busy_ranges(texts, start, end, limits, deadline)
    return Reading(ranges, token[:300] if token else None, events)


def caldav_calendar(url: str, username: str | None, password: str | None, limits: Limits,
                    deadline: float):
    """The CalDAV calendar at ``url``, through a client whose every request and redirect
    passes the address check, goes to the address that passed, and whose answers are
    cut off at CALENDAR_MAX_BYTES and the deadline (portal.calendars.transport)."""
    import caldav

    check_address(url, allow_private=limits.allow_private)  # a bad address: no client
    client = caldav.DAVClient(url=url, username=username or None, password=password or None,
                              timeout=max(1.0, deadline - time.monotonic()))
    client.session.close()
    client.session = _session(limits, deadline)
    return client.calendar(url=url)


def caldav_error(error: Exception) -> CalendarError:
    from caldav.lib import error as caldav_errors

    if isinstance(error, requests.RequestException):
        return _network_error(error)
    if isinstance(error, caldav_errors.AuthorizationError):
        return CalendarError("unauthorized")
    if isinstance(error, caldav_errors.NotFoundError):
        return CalendarError("not_found")
    if isinstance(error, caldav_errors.DAVError):
        reason = str(getattr(error, "reason", "")) + str(error)
        for status in (401, 403, 404, 410):
            if str(status) in reason:
                return for_status(status)
        return CalendarError("server_error")
    if isinstance(error, ValueError):
        return CalendarError("not_calendar")
    return CalendarError("connection")


# -- from calendar data to busy ranges ----------------------------------------------

# A calendar is parsed piece by piece: its events are found in the text first (counted,
# and those that cannot touch the window left out without parsing them), then parsed
# and expanded PIECE events at a time, with the series of one UID kept together.
PIECE = 500
_EVENT = re.compile(rb"^BEGIN:VEVENT\r?\n.*?^END:VEVENT[ \t]*(?:\r?\n|\Z)",
                    re.MULTILINE | re.DOTALL | re.IGNORECASE)
_FOLD = re.compile(rb"\r?\n[ \t]")
_REPEATS = re.compile(rb"^(?:RRULE|RDATE|EXRULE|RECURRENCE-ID)[;:]", re.MULTILINE | re.IGNORECASE)
_DAY = {name: re.compile(rb"^" + name + rb"(?:;[^:\r\n]*)?:(\d{8})", re.MULTILINE | re.IGNORECASE)
        for name in (b"DTSTART", b"DTEND")}
_DURATION = re.compile(rb"^DURATION[;:]", re.MULTILINE | re.IGNORECASE)
_UID = re.compile(rb"^UID[;:](.*?)\r?$", re.MULTILINE | re.IGNORECASE)
_END = re.compile(rb"^END:VCALENDAR", re.MULTILINE | re.IGNORECASE)
# Any time zone is within a day of UTC: an event whose days lie two days outside the
# window cannot touch it, whatever zone (or none) its times are in.
SLACK = timedelta(days=2)


@dataclass
class _Text:
    """One calendar text split into its events and the rest (time zones, properties)."""

    skeleton: bytes
    events: list[bytes]


def _split(text: bytes | str) -> _Text:
    if isinstance(text, str):
        text = text.encode("utf-8")
    events = [match.group(0) for match in _EVENT.finditer(text)]
    skeleton = _EVENT.sub(b"", text) if events else text
    return _Text(skeleton, events)


def _may_touch(event: bytes, first: date, last: date) -> bool:
    """False only for an event that surely lies outside ``first`` to ``last`` (days, UTC):
    a one-off event (no rule, no moved occurrence) with its days two days away."""
    unfolded = _FOLD.sub(b"", event)
    if _REPEATS.search(unfolded):
        return True
    begins = _day(_DAY[b"DTSTART"].search(unfolded))
    if begins is None:
        return True
    if _DURATION.search(unfolded):
        ends = None
    else:
        ends = _day(_DAY[b"DTEND"].search(unfolded)) or begins + timedelta(days=1)
    if begins > last + SLACK:
        return False
    return ends is None or ends >= first - SLACK


def _day(match) -> date | None:
    if match is None:
        return None
    digits = match.group(1)
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def _pieces(text: _Text, first: date, last: date) -> Iterator[bytes]:
    """The calendar again, as calendars of at most PIECE events (more only when one
    series has more) holding the events that may touch the window, each with the
    original's time zones and properties."""
    ends = list(_END.finditer(text.skeleton))
    if not ends:
        raise CalendarError("not_calendar")
    end = ends[-1]
    head, tail = text.skeleton[:end.start()], text.skeleton[end.start():]
    series: dict[bytes, list[bytes]] = {}
    for event in text.events:
        if _may_touch(event, first, last):
            uid = _UID.search(_FOLD.sub(b"", event))
            series.setdefault(uid.group(1).strip() if uid else event, []).append(event)
    piece: list[bytes] = []
    made = 0
    for events in series.values():
        piece += events
        if len(piece) >= PIECE:
            yield head + b"".join(piece) + tail
            piece, made = [], made + 1
    if piece or not made:
        yield head + b"".join(piece) + tail  # no event to keep: still checked as a calendar


def _parse(text: bytes) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception:  # icalendar raises ValueError, and worse on garbage
        raise CalendarError("not_calendar") from None
    if calendar.name != "VCALENDAR":
        raise CalendarError("not_calendar")
    return x_wr_timezone.to_standard(calendar)


def busy_ranges(texts: Iterable[bytes | str], start: datetime, end: datetime,
                limits: Limits, deadline: float | None = None
                ) -> tuple[list[tuple[datetime, datetime]], int]:
    """The busy ranges (aware UTC, merged, sorted) that overlap ``start`` to ``end``, and
    how many events the calendars hold.

    The work is bounded: CalendarError("too_many_events") past CALENDAR_MAX_EVENTS
    events (counted in the text, before anything is parsed), or when the recurring
    ones could repeat more often than that in the window (a rule every minute);
    CalendarError("too_slow") once the read's deadline has passed (checked between
    pieces). Only events that may touch the window are parsed, so a calendar with
    years of history costs what its coming weeks cost."""
    split = [_split(text) for text in texts]
    events = sum(len(text.events) for text in split)
    if events > limits.max_events:
        raise CalendarError("too_many_events")
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    days = (end - start).total_seconds() / 86400
    own = "@" + limits.uid_domain.lower()
    ranges: list[tuple[datetime, datetime]] = []
    occurrences = 0.0
    for text in split:
        for piece in _pieces(text, first, last):
            _on_time(deadline)
            calendar = _parse(piece)
            occurrences += sum(_most_occurrences(c, days) for c in calendar.walk("VEVENT"))
            if occurrences > limits.max_events:
                raise CalendarError("too_many_events")
            try:
                found = recurring_ical_events.of(calendar, components=["VEVENT"]).between(
                    start, end)
            except Exception:  # a broken rule or time zone: the calendar can't be trusted
                raise CalendarError("not_calendar") from None
            for event in found:
                occurrence = _busy(event, own)
                if occurrence is not None:
                    ranges.append(occurrence)
    _on_time(deadline)
    return merge(ranges), events


def _on_time(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise CalendarError("too_slow")


# At most how many times a rule of each frequency repeats in a day.
_PER_DAY = {"SECONDLY": 86400, "MINUTELY": 1440, "HOURLY": 24, "DAILY": 1}


def _most_occurrences(event, days: float) -> float:
    """An upper bound on an event's occurrences in ``days`` (1 if it does not repeat)."""
    rules = event.get("RRULE")
    if rules is None:
        return 1
    total = 0.0
    for rule in rules if isinstance(rules, list) else [rules]:
        frequency = str((rule.get("FREQ") or ["DAILY"])[0]).upper()
        interval = max(int((rule.get("INTERVAL") or [1])[0]), 1)
        per_day = _PER_DAY.get(frequency, 1 / 7)  # weekly and rarer
        expand = 1
        for part in ("BYHOUR", "BYMINUTE", "BYSECOND", "BYDAY", "BYMONTHDAY"):
            expand *= max(len(rule.get(part) or []), 1)
        total += (days * per_day / interval + 1) * expand
    return total


def _busy(event, own_uid_suffix: str) -> tuple[datetime, datetime] | None:
    uid = str(event.get("UID", "")).lower()
    if own_uid_suffix and uid.endswith(own_uid_suffix):
        return None
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return None
    begins = event.get("DTSTART")
    if begins is None:
        return None
    begins = begins.dt
    ends = event.get("DTEND")
    if ends is not None:
        ends = ends.dt
    elif event.get("DURATION") is not None:
        ends = begins + event["DURATION"].dt
    else:
        ends = begins + timedelta(days=1) if not isinstance(begins, datetime) else begins
    begins, ends = _instant(begins), _instant(ends)
    return (begins, ends) if ends > begins else None


def _instant(value: date | datetime) -> datetime:
    """A DTSTART/DTEND as an aware UTC instant: a date is the start of that Pacific day
    (an all-day event keeps the therapist's whole day), a floating time is Pacific."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=PACIFIC)
    return value.astimezone(UTC)


def merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for begins, ends in sorted(ranges):
        if merged and begins <= merged[-1][1]:
            if ends > merged[-1][1]:
                merged[-1] = (merged[-1][0], ends)
        else:
            merged.append((begins, ends))
    return merged
