"""Therapists' own calendars (DESIGN, "Therapists' own calendars").

``addresses``: which calendar addresses may be fetched (https, no private networks);
``reading``: one calendar read into busy ranges (a secret iCalendar address or a
CalDAV calendar); ``sync``: every connected calendar read and stored, the stale rule
and what staff are told; ``feed``: the private feed of a therapist's consultations;
``writeback``: consultations written into a CalDAV calendar through the outbox.
"""
