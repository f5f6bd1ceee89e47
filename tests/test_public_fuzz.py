"""Every public path and every public form, sent what no browser sends: NUL bytes,
lone surrogates (percent-encoded as UTF-8 would, %ED%A0%80), bytes that are not
UTF-8, file parts, JSON and other bodies. Paths come from the app's own url_map (the
public blueprint), the field names from the public forms themselves, so a new page or
field is fuzzed without anyone listing it here. Not one answer may be a 5xx, every page
must be valid UTF-8, and not one row may be stored or changed. Runs on every
configured database."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from wtforms.fields.core import UnboundField

from portal.extensions import db
from portal.links import manage_token
from portal.public import forms as public_forms
from portal.public import waitlist_offer
from portal.web.forms import PortalForm
from tests.factories import future_slot, make_request, make_therapist
from tests.test_public_flow import pass_eligibility

# Path segments as they travel in a URL (already percent-encoded).
BAD_SEGMENTS = ["%00", "a%00b", "%ED%A0%80", "%FF", "%C0%AF", "%EF%BF%BD", "%F4%90%80%80",
                "x" * 300]
BAD_QUERIES = ["therapist=%00", "reason=%ED%A0%80&therapist=%FF", "%00=1", "therapist=a%00b",
               "x=%ED%B0%80%ED%A0%80"]
# Values as they travel in a url-encoded body.
BAD_ENCODED_VALUES = ["%00", "Ana%00Lee", "%ED%A0%80", "Ana%ED%B3%BF", "%FF%FE", "%C3",
                      "%F8%88%80%80%80"]
# The same as raw bytes (a url-encoded body sent without its escapes, and multipart text).
BAD_RAW_VALUES = [b"\x00", b"\xed\xa0\x80", b"\xff\xfe", b"Ana\xc3", b"Ana\x00\xed\xb0\x80"]
BOUNDARY = "fuzzb0undary"


def public_field_names() -> list[str]:
    """Every field of every public form, read from the form classes."""
    classes = [value for module in (public_forms, waitlist_offer)
               for value in vars(module).values()
               if isinstance(value, type) and issubclass(value, PortalForm)
               and value is not PortalForm]
    names = {name for cls in classes for name, value in vars(cls).items()
             if isinstance(value, UnboundField)}
    assert {"zip_code", "first_name", "message", "code", "reason", "slot"} <= names
    return sorted(names | {"csrf_token"})


def multipart(parts: list[tuple[str, bytes, str | None]]) -> bytes:
    """``parts``: (field name, content, file name or None)."""
    chunks = []
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if filename:
            head += "Content-Type: application/octet-stream\r\n"
        chunks.append(head.encode() + b"\r\n" + content + b"\r\n")
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


def bad_bodies(fields: list[str]) -> list[tuple[str, str | None, bytes]]:
    """(what it is, Content-Type, body): each sets every field to the same bad value."""
    form = "application/x-www-form-urlencoded"
    bodies = []
    for value in BAD_ENCODED_VALUES:
        bodies.append((f"urlencoded {value}", form,
                       "&".join(f"{name}={value}" for name in fields).encode()))
    for value in BAD_RAW_VALUES:
        bodies.append((f"raw urlencoded {value!r}", form,
                       b"&".join(name.encode() + b"=" + value for name in fields)))
        bodies.append((f"multipart text {value!r}", f"multipart/form-data; boundary={BOUNDARY}",
                       multipart([(name, value, None) for name in fields])))
    bodies.append(("multipart files", f"multipart/form-data; boundary={BOUNDARY}",
                   multipart([(name, b"94110\nCasey", "hostname") for name in fields])))
    bodies.append(("one file among text", f"multipart/form-data; boundary={BOUNDARY}",
                   multipart([(name, b"y", None) for name in fields]
                             + [("zip_code", b"94110", "zip.txt")])))
    for value in ("\ud800", "Ana\x00", "\udfff\ud800"):
        bodies.append((f"json {value!r}", "application/json",
                       json.dumps(dict.fromkeys(fields, value)).encode()))
    bodies.append(("json list", "application/json", json.dumps([["zip_code", "\ud800"]])
                   .encode()))
    bodies.append(("text/plain", "text/plain", b"zip_code=94110&state=CA"))
    bodies.append(("xml", "application/xml", b"<zip_code>\x00</zip_code>"))
    bodies.append(("no type", None, b"zip_code=%00"))
    return bodies


def table_counts(app) -> dict[str, int]:
    with app.app_context():
        counts = {table.name: db.session.scalar(select(func.count()).select_from(table))
                  for table in db.metadata.sorted_tables}
        db.session.remove()
        return counts


def booking_state(app, request_id: int) -> tuple:
    from portal.models import ConsultationRequest

    with app.app_context():
        booking = db.session.get(ConsultationRequest, request_id)
        state = (booking.status, booking.slot_start, booking.message, booking.waitlist)
        db.session.remove()
        return state


@pytest.fixture
def app_config():
    # As a real server runs: an exception is a 500 answer, counted below.
    return {"PROPAGATE_EXCEPTIONS": False}


@pytest.fixture
def seeded(app):
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        booking = make_request(therapist, future_slot(days=3), message="Evenings")
        db.session.commit()
        return app, booking.id, booking.public_id, manage_token(booking)


def public_paths(app, public_id: str, token: str) -> list[tuple[str, list[str]]]:
    """(path, methods) for each public rule: with real values where the rule takes
    them, and with each bad segment in their place; a bad query on each."""
    valid = {"public_id": public_id, "token": token}
    paths = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("public."):
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        args = sorted(rule.arguments)
        real = rule.rule
        for name in args:
            real = real.replace(f"<{name}>", quote(valid[name], safe=""))
        paths.append((real, methods))
        paths += [(f"{real}?{query}", methods) for query in BAD_QUERIES]
        for segment in BAD_SEGMENTS if args else []:
            bad = rule.rule
            for name in args:
                bad = bad.replace(f"<{name}>", segment)
            paths.append((bad, methods))
    assert len({path for path, _ in paths}) == len(paths)
    return paths


def test_what_no_browser_sends_never_fails_and_stores_nothing(seeded):
    app, request_id, public_id, token = seeded
    client = app.test_client()
    fields = public_field_names()
    bodies = bad_bodies(fields)
    before, booked = table_counts(app), booking_state(app, request_id)
    failures, answers = [], 0
    for path, methods in public_paths(app, public_id, token):
        sends = [("GET", None, None, None)] if "GET" in methods else []
        if "POST" in methods:
            # Every bad body to the real path; a few to each bad path too.
            chosen = bodies if "%" not in path and "?" not in path else bodies[::5]
            sends += [("POST", *body) for body in chosen]
        for method, what, content_type, body in sends:
            if path.startswith("/consultation/details") and method == "POST":
                pass_eligibility(client)  # so the form itself reads what was sent
            headers = {"Content-Type": content_type} if content_type else {}
            response = client.open(path, method=method, data=body, headers=headers)
            answers += 1
            try:
                if response.mimetype.startswith("text/"):
                    response.get_data().decode("utf-8")
            except UnicodeDecodeError:
                failures.append((method, path, what, "not UTF-8"))
            if response.status_code >= 500:
                failures.append((method, path, what, response.status_code))
            response.close()  # a static file's handle
    assert failures == [], f"{len(failures)} of {answers}: {failures[:20]}"
    assert answers > 300
    assert table_counts(app) == before
    assert booking_state(app, request_id) == booked


def test_the_fuzz_reaches_every_public_form(seeded):
    """The fuzz above is only worth something if its bodies reach the forms: the
    field names are those the pages draw."""
    app, _, _, token = seeded
    client = app.test_client()
    pass_eligibility(client)
    drawn = set()
    for path in ("/consultation", "/consultation/details", f"/manage/{token}/cancel",
                 f"/manage/{token}/reschedule"):
        drawn |= set(re.findall(r'<(?:input|select|textarea|button)\b[^>]*\bname="([a-z_]+)"',
                                client.get(path).text))
    assert drawn - {"show_times", "use_email"} <= set(public_field_names())
