"""What no browser's form sends is refused at the edge, kindly: a NUL byte in a path
(404), a query argument or a posted field (400), a file part (400), a body that is not
a form (415); bytes that are not UTF-8, and lone surrogates, are a field error shown
back empty (each step of the journey is Post/Redirect/Get: the POST redirects back to
its step, whose GET shows the message). A value the database still refuses (a
DataError) is the 400 page. Runs on every configured database: PostgreSQL is where
NUL used to be a 500."""

from __future__ import annotations

import html
import io
import json

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DataError

from portal.extensions import db
from portal.models import ConsultationRequest
from tests.backoffice import make_cast
from tests.test_public_flow import (
    STEPS,
    book,
    form_data,
    pass_eligibility,
    requests_stored,
)


def step_fields(data: dict, url: str) -> dict:
    """The answers in ``data`` that the step at ``url`` posts."""
    [names] = [names for step, names, _ in STEPS if step == url]
    return {name: data[name] for name in names if data.get(name) is not None}


def answered_until(client, url: str) -> dict:
    """Eligibility and every step before ``url`` answered (valid): all the answers."""
    pass_eligibility(client)
    data = form_data(client)
    for step, _, onwards in STEPS:
        if step == url:
            return data
        response = client.post(step, data=step_fields(data, step))
        assert response.status_code == 302 and response.location == onwards, step
    raise AssertionError(f"no step at {url}")


def shown_again(client, response, url: str) -> str:
    """A step's POST with something to fix: the redirect back to that step, and the
    page its GET shows."""
    assert response.status_code == 302 and response.location == url, response.location
    page = client.get(url)
    assert page.status_code == 200
    return page.text


@pytest.fixture
def app_config():
    # A real server hands an exception to the error handlers instead of the caller.
    return {"PROPAGATE_EXCEPTIONS": False}


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsultationRequest))


def kind_page(response, code: int, title: str) -> None:
    assert response.status_code == code, response.text[:500]
    page = html.unescape(response.text)
    assert title in page and f"Error {code}" in page
    assert "Traceback" not in page and "DataError" not in page


@pytest.mark.parametrize("path", [
    "/consultation/confirmed/%00", "/consultation/confirmed/abc%00def", "/manage/%00",
    "/manage/%00/cancel", "/rebook/%00", "/waitlist/%00", "/admin/password/set/%00",
    "/privacy%00",
])
def test_a_nul_byte_in_a_path_is_not_found(client, path):
    kind_page(client.get(path), 404, "Page not found")


@pytest.mark.parametrize("path", [
    "/consultation/not-eligible?reason=%00", "/consultation/details?therapist=1%00",
    "/consultation/time?therapist=1%00",
    "/?x%00=1", "/admin/login?next=/admin%00",
])
def test_a_nul_byte_in_a_query_argument_is_a_bad_request(client, path):
    kind_page(client.get(path), 400, "Something went wrong with that request")


def test_a_nul_byte_in_a_login_email_is_a_bad_request(app, client):
    make_cast(app)
    response = client.post("/admin/login", data={"email": "admin@example.com\x00",
                                                 "password": "whatever-it-is"})
    kind_page(response, 400, "Something went wrong with that request")


def test_a_nul_byte_in_any_public_form_field_stores_nothing(app, client, therapist_id):
    kind_page(client.post("/consultation", data={"state": "CA", "zip_code": "94\x00110"}),
              400, "Something went wrong with that request")
    data = answered_until(client, "/consultation/about")
    response = client.post("/consultation/about",
                           data=step_fields({**data, "first_name": "Ca\x00sey"},
                                            "/consultation/about"))
    kind_page(response, 400, "Something went wrong with that request")
    # And in the POST that stores the request: nothing stored either.
    assert client.post("/consultation/about", data=step_fields(
        data, "/consultation/about")).location == "/consultation/check"
    response = client.post("/consultation/check", data=step_fields(
        {**data, "website": "\x00"}, "/consultation/check"))
    kind_page(response, 400, "Something went wrong with that request")
    assert stored(app) == 0


@pytest.mark.parametrize("field, url", [
    ("first_name", "/consultation/about"), ("email", "/consultation/about"),
    ("slot", "/consultation/time"), ("website", "/consultation/check")])
def test_a_file_in_a_text_field_is_a_bad_request(app, client, therapist_id, field, url):
    response = client.post("/consultation", data={
        "state": "CA", "zip_code": (io.BytesIO(b"94110\n"), "hostname")})
    kind_page(response, 400, "Something went wrong with that request")
    data = answered_until(client, url)  # the step that asks for ``field``
    answers = step_fields(data, url)
    answers[field] = (io.BytesIO(b"Casey"), "name.txt")
    kind_page(client.post(url, data=answers), 400, "Something went wrong with that request")
    assert stored(app) == 0


def test_a_file_as_the_message_is_a_bad_request(app, client, therapist_id):
    """The message is asked after the request is confirmed ("help us prepare")."""
    pass_eligibility(client)
    public_id = book(client, app).location.rpartition("/")[2]
    response = client.post(f"/consultation/prepare/{public_id}", data={
        "message": (io.BytesIO(b"Hello"), "message.txt"), "payment": "insurance"})
    kind_page(response, 400, "Something went wrong with that request")
    [row] = requests_stored(app)
    assert not row.message and row.payment is None


@pytest.mark.parametrize("content_type, body", [
    ("application/json", json.dumps({"state": "CA", "zip_code": "\ud800"})),
    ("application/json", json.dumps({"state": "CA", "zip_code": "94110", "ca_resident": "yes",
                                     "in_california": "yes"})),
    ("text/plain", "state=CA&zip_code=94110"),
    ("application/xml", "<state>CA</state>"),
    ("application/x-www-form-urlencodedx", "state=CA"),
])
def test_a_body_that_is_not_a_form_is_unsupported(client, content_type, body):
    response = client.post("/consultation", data=body, content_type=content_type)
    kind_page(response, 415, "That can't be sent this way")
    with client.session_transaction() as session:
        assert "eligibility" not in session


def test_a_json_step_post_stores_nothing(app, client, therapist_id):
    data = answered_until(client, "/consultation/about")
    response = client.post("/consultation/about", json=step_fields(
        {**data, "first_name": "\ud800"}, "/consultation/about"))
    kind_page(response, 415, "That can't be sent this way")
    # Nor as the POST that stores the request.
    assert client.post("/consultation/about", data=step_fields(
        data, "/consultation/about")).location == "/consultation/check"
    response = client.post("/consultation/check", json=step_fields(
        data, "/consultation/check"))
    kind_page(response, 415, "That can't be sent this way")
    assert stored(app) == 0


def test_the_exit_beacon_has_no_body_and_still_works(client):
    pass_eligibility(client)
    assert client.post("/exit-this-page").status_code == 204
    with client.session_transaction() as session:
        assert "eligibility" not in session


def never_shown(page: str) -> None:
    assert "\ufffd" not in page and "%ED" not in page and "%FF" not in page \
        and "%C3" not in page


@pytest.mark.parametrize("raw", [b"%ED%A0%80", b"%FF", b"Ana%C3", b"\xed\xa0\x80", b"\xff"])
def test_what_is_not_utf8_is_a_field_error_never_shown_back(app, client, therapist_id, raw):
    response = client.post("/consultation", data=b"state=CA&ca_resident=yes&"
                           b"in_california=yes&zip_code=" + raw,
                           content_type="application/x-www-form-urlencoded")
    page = shown_again(client, response, "/consultation")
    assert "Some characters in your ZIP code could not be read. Type it in again" in page
    never_shown(page)
    data = answered_until(client, "/consultation/about")
    answers = step_fields(data, "/consultation/about")
    answers.pop("first_name")
    body = "&".join(f"{key}={value}" for key, value in answers.items())
    response = client.post("/consultation/about", data=body.encode() + b"&first_name=" + raw,
                           content_type="application/x-www-form-urlencoded")
    page = shown_again(client, response, "/consultation/about")
    assert "Some characters in your first name could not be read" in page
    never_shown(page)
    assert stored(app) == 0


@pytest.mark.parametrize("raw", [b"%ED%A0%80", b"%FF", b"Ana%C3", b"\xed\xa0\x80", b"\xff"])
def test_a_message_that_is_not_utf8_is_a_field_error_never_shown_back(
        app, client, therapist_id, raw):
    """The message ("help us prepare", after the request is confirmed), kept for the
    page that shows what needs fixing, never shows what could not be read."""
    pass_eligibility(client)
    public_id = book(client, app).location.rpartition("/")[2]
    response = client.post(f"/consultation/prepare/{public_id}", data=b"payment=insurance&"
                           b"message=" + raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 302
    page = client.get(response.location).text
    assert "Some characters in your message could not be read" in page
    never_shown(page)
    [row] = requests_stored(app)
    assert not row.message and row.payment is None


def test_multipart_text_that_is_not_utf8_is_a_field_error(app, client, therapist_id):
    data = answered_until(client, "/consultation/about")
    boundary = "b0undary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
             + (b"Ana\xed\xa0\x80" if key == "first_name" else str(value).encode()) + b"\r\n"
             for key, value in step_fields(data, "/consultation/about").items()]
    response = client.post("/consultation/about",
                           data=b"".join(parts) + f"--{boundary}--\r\n".encode(),
                           content_type=f"multipart/form-data; boundary={boundary}")
    page = shown_again(client, response, "/consultation/about")
    assert "Some characters in your first name could not be read" in page
    never_shown(page)
    assert stored(app) == 0


def test_a_name_of_nothing_is_refused_on_the_page(app, client, therapist_id):
    data = answered_until(client, "/consultation/about")
    for name in ("\u3164", "\u115f\u115f", "\uffa0", "Ana\ufe0f\ufe0f\ufe0f", "Ana\u034f"):
        response = client.post("/consultation/about", data=step_fields(
            {**data, "first_name": name}, "/consultation/about"))
        page = shown_again(client, response, "/consultation/about")
        assert "Your first name contains invisible characters" in page
    # Nothing of it was kept as an answer: the check page still asks for the name.
    assert client.get("/consultation/check").location == "/consultation/about"
    assert stored(app) == 0


def test_a_value_the_database_refuses_is_the_400_page(app, caplog):
    """A DataError that got past the edge (here a number out of range, which only
    PostgreSQL checks; NUL in text is another): the 400 page, one line, no value."""
    @app.get("/refused")
    def refused():
        if db.engine.dialect.name == "sqlite":  # SQLite takes it: raise what PostgreSQL does
            raise DataError("SELECT", {}, ValueError("out of range"))
        db.session.execute(text("SELECT CAST(:value AS smallint)"), {"value": "99999999"})
        return "not reached"

    response = app.test_client().get("/refused")
    kind_page(response, 400, "Something went wrong with that request")
    [line] = [r for r in caplog.records if r.getMessage().startswith("database refused")]
    assert "99999999" not in line.getMessage()
