"""Cross-cutting security checks from SECURITY.md that no single feature owns:
headers on every GET route, hostile text escaped everywhere it is shown, a
sentinel's path through the whole flow (mail, logs, URLs, cookies), CSRF on
every public POST, the session cookie's rotation and flags, and ProxyFix."""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import request, url_for
from sqlalchemy import select

from portal.booking import waitlist
from portal.booking.rebooking import rebook_url
from portal.booking.therapists import Therapist
from portal.calendars.feed import feed_token
from portal.extensions import db
from portal.links import manage_token
from portal.messages import notifications, outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, EmailVerification, WaitlistOffer, to_db, utcnow
from portal.staff.tokens import make_token
from portal.texts.compose import link_token as text_link_token
from tests.backoffice import csrf_token, database_snapshot, sign_in
from tests.factories import future_slot, make_request, make_therapist, make_user
from tests.smtp import raw_text
from tests.test_public_flow import (
    ELIGIBLE,
    SLOT_VALUE,
    enter_code,
    form_data,
    pass_eligibility,
    read_journey,
    send,
    write_journey,
)

ROOT = Path(__file__).resolve().parent.parent
XSS = '"><script>alert(1)</script>'
RAW, ESCAPED = "<script>alert(1)", "&lt;script&gt;alert(1)"
ADMIN = "admin@example.com"


@pytest.fixture
def world(app):
    """A therapist, an admin, and one booked request: ids for every URL argument."""
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        admin = make_user(ADMIN)
        booked = make_request(therapist, future_slot(days=3))
        missed = make_request(therapist, future_slot(days=-2), status="no_show")
        waiting = make_request(therapist, None, waitlist=True)
        offer = WaitlistOffer(request_id=waiting.id, therapist_id=therapist.id,
                              slot_start=to_db(future_slot(days=2)), offered_on=date.today())
        db.session.add(offer)
        feed = feed_token(therapist.id)
        db.session.commit()
        return {"therapist_id": therapist.id, "request_id": booked.id,
                "public_id": booked.public_id, "token": manage_token(booked),
                "user_id": admin.id, "filename": "css/portal.css",
                "auth.password_set": {"token": make_token(admin, "reset")},
                "public.rebook": {"token": rebook_url(missed).rpartition("/")[2]},
                "public.waitlist_offer": {"token": waitlist.offer_token(offer)},
                "calendar_feed.feed": {"token": feed},
                "texts.short_link": {"token": text_link_token(booked)}}


def url_of(app, rule, values) -> str:
    values = {**values, **values.get(rule.endpoint, {})}  # a route's own token
    with app.test_request_context():
        return url_for(rule.endpoint, **{arg: values[arg] for arg in rule.arguments})


def session_of(app, cookie_value: str) -> dict:
    return app.session_interface.get_signing_serializer(app).loads(cookie_value)


# -- headers on every route --------------------------------------------------------------

def header_problems(response, path: str) -> list[str]:
    headers, problems = response.headers, []
    csp = headers.get("Content-Security-Policy", "")
    for directive in ("script-src 'self'", "object-src 'none'", "base-uri 'none'",
                      "frame-ancestors 'none'"):
        if directive not in csp:
            problems.append(f"{path}: CSP lacks {directive}")
    if "unsafe-inline" in csp or "unsafe-eval" in csp:
        problems.append(f"{path}: CSP allows unsafe scripts")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append(f"{path}: no nosniff")
    if headers.get("Referrer-Policy") != "same-origin":
        problems.append(f"{path}: Referrer-Policy {headers.get('Referrer-Policy')}")
    shared_file = path.startswith("/static/") or path == "/favicon.ico"  # the same for all
    if not shared_file and headers.get("Cache-Control") != "no-store":
        problems.append(f"{path}: Cache-Control {headers.get('Cache-Control')}")
    https = response.request.scheme == "https"
    if https != ("Strict-Transport-Security" in headers):
        problems.append(f"{path}: HSTS over https only")
    return problems


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_every_get_route_carries_the_security_headers(app, world, scheme):
    anonymous, staff = app.test_client(), app.test_client()
    base = f"{scheme}://localhost"
    write_journey(anonymous, {"answers": {"eligibility": ELIGIBLE}},  # so the time page
                  base_url=base)  # renders instead of redirecting
    assert sign_in(staff, ADMIN, **{"wsgi.url_scheme": scheme}).status_code == 302
    problems, seen = [], set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = url_of(app, rule, world)
        for client in (anonymous, staff):
            response = client.get(path, base_url=base)
            response.close()  # the export streams; closing ends it
            assert response.status_code in (200, 302), (path, response.status_code)
            problems += header_problems(response, path)
            seen.add((rule.endpoint, response.status_code))
    assert problems == []
    # Both the pages themselves and the sign-in redirects were really checked.
    assert ("admin.request_export", 200) in seen and ("admin.request_export", 302) in seen
    assert ("public.time", 200) in seen and ("public.manage", 200) in seen


# -- hostile text is escaped wherever it is shown ---------------------------------------

def assert_escaped(html: str, where: str, shown: bool = True) -> None:
    assert RAW not in html, f"raw <script> on {where}"
    assert '"><script>' not in html, f"raw markup on {where}"
    if shown:
        assert ESCAPED in html, f"the text is not shown on {where} (vacuous check)"


def read_csv(client, url: str) -> tuple[object, list[dict]]:
    response = client.get(url)
    text = response.get_data(as_text=True).lstrip("\ufeff")
    response.close()
    return response, list(csv.DictReader(io.StringIO(text)))


def test_script_typed_by_a_client_is_escaped_on_every_page_email_and_the_csv(app, client, world):
    client.post("/consultation", data={**ELIGIBLE, "zip_code": XSS[:10]})
    assert_escaped(client.get("/consultation").text, "eligibility re-render", shown=False)
    pass_eligibility(client)
    hostile_names = {"first_name": XSS, "last_name": "=HYPERLINK(1)" + XSS}
    data = form_data(client, email="casey.xss@example.com", phone="(415) 555-0166")
    refused = send(client, {**data, **hostile_names}).text
    assert "can only use letters" in refused  # names are letters: the form refuses these
    assert_escaped(refused, "about you re-render")
    assert send(client, data).location == "/consultation/verify"
    assert_escaped(client.get("/consultation/verify").text, "verify", shown=False)
    confirmation = enter_code(client, app, "casey.xss@example.com").location
    public_id = confirmation.rpartition("/")[2]
    too_long = client.get(client.post(f"/consultation/prepare/{public_id}", data={
        "message": XSS * 200, "preferred_name": XSS[:20]}).location).text
    assert_escaped(too_long, "help us prepare re-render")
    assert client.post(f"/consultation/prepare/{public_id}",
                       data={"message": XSS}).status_code == 302
    assert_escaped(client.get(confirmation).text, "confirmation", shown=False)
    with app.app_context():
        row = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == "casey.xss@example.com"))
        assert row.message == XSS
        # A row from before names were checked, or imported, may still hold markup.
        for field, value in hostile_names.items():
            setattr(row, field, value)
        row.created_at = utcnow() - timedelta(days=10)  # stale: listed on the dashboard
        notifications.queue_cancelled(row, by="practice")  # an email greeting the name
        db.session.commit()
        rid, manage = row.id, f"/manage/{manage_token(row)}"
        html_bodies = db.session.scalars(select(OutboxEmail.body_html).where(
            OutboxEmail.request_id == rid)).all()
    assert_escaped(client.get(manage).text, "manage", shown=False)
    assert_escaped(client.get(manage + "/reschedule").text, "reschedule", shown=False)
    assert any(ESCAPED in body for body in html_bodies)
    for body in html_bodies:
        assert_escaped(body, "an email's HTML part", shown=False)
    staff = app.test_client()
    sign_in(staff, ADMIN)
    for url in ("/admin/requests", "/admin/requests?q=%3Cscript%3Ealert(1)",
                f"/admin/requests/{rid}", "/admin/audit?actor=%3Cscript%3Ealert(1)"):
        assert_escaped(staff.get(url).text, url)
    for url in ("/admin/", f"/admin/requests/{rid}/delete", f"/admin/requests/{rid}/reschedule"):
        assert_escaped(staff.get(url).text, url, shown=False)
    response, rows = read_csv(staff, "/admin/requests/export.csv")
    assert response.mimetype == "text/csv" and response.headers["X-Content-Type-Options"] \
        == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment")
    [hostile] = [r for r in rows if r["first_name"] == XSS]
    assert hostile["last_name"] == "'=HYPERLINK(1)" + XSS  # a formula never runs


def test_script_typed_by_staff_is_escaped_in_the_back_office_and_on_public_pages(
        app, client, world):
    staff = app.test_client()
    sign_in(staff, ADMIN)
    response = staff.post("/admin/therapists/new", data={
        "name": XSS, "email": "xss.therapist@example.com", "licence_type": XSS[:40],
        "licence_number": XSS[:40], "bio": XSS, "accepting_new": "y"})
    assert response.status_code == 302
    with app.app_context():
        hostile = db.session.scalar(select(Therapist).where(Therapist.name == XSS))
        booked = make_request(hostile, future_slot(days=6))
        db.session.commit()
        tid, rid, manage = hostile.id, booked.id, f"/manage/{manage_token(booked)}"
    posts = {f"/admin/therapists/{tid}/time-off": {"starts_at": "2031-01-01T09:00",
                                                   "ends_at": "2031-01-02T09:00", "note": XSS},
             f"/admin/requests/{rid}/notes": {"body": XSS},
             f"/admin/requests/{rid}/status": {"status": "contacted", "note": XSS + " again"}}
    for url, data in posts.items():
        assert staff.post(url, data=data).status_code == 302, url
    for url in ("/admin/therapists", f"/admin/therapists/{tid}", f"/admin/requests/{rid}",
                f"/admin/therapists/{tid}/deactivate", "/admin/requests", "/admin/users/new"):
        assert_escaped(staff.get(url).text, url)
    assert_escaped(client.get("/").text, "landing page")
    assert_escaped(client.get(manage).text, "manage page")
    pass_eligibility(client)
    assert_escaped(client.get("/consultation/time").text, "details page")
    staff.post("/admin/intake-pause", data={"paused": "y", "message": XSS})
    assert_escaped(staff.get("/admin/").text, "dashboard")
    for url in ("/", "/consultation", "/consultation/time"):
        assert_escaped(client.get(url).text, f"paused {url}")


RISKY_TEMPLATE = re.compile(r"\|\s*safe\b|\{%-?\s*autoescape\s+false|Markup\(")
RISKY_PYTHON = re.compile(r"\bMarkup\(|render_template_string|\bfrom_string\(|jinja2\.Template\(|"
                          r"autoescape\s*=\s*False")
# "path:line" of a reviewed, justified use:
ALLOWED: set[str] = {
    # Kept fragments (the details page's questions, the page chrome): the output of an
    # autoescaped template, rendered apart so later visits can reuse it, then placed in
    # the page as the HTML it is.
    "portal/web/fragments.py:39",
    # Literal markup around values that format() escapes: the video link on the
    # confirmation page, and the practice's phone number as a tel: link.
    "portal/booking/next_step.py:67",
    "portal/public/views.py:81",
    # WTForms' own text box and text area markup, built with every attribute and the
    # value escaped (``attributes``), as WTForms builds it (the re-render tests below
    # send markup through both).
    "portal/web/forms.py:119",
    "portal/web/forms.py:126",
}


def test_no_template_or_code_switches_escaping_off(app):
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder, pattern in (("templates", RISKY_TEMPLATE), ("portal", RISKY_PYTHON))
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".html", ".txt", ".py") and "migrations" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert set(found) <= ALLOWED, found
    assert all(app.select_jinja_autoescape(name) for name in ("public/index.html",
                                                              "email/base.html"))


# -- a sentinel typed into every personal field --------------------------------------------

SENTINEL = {"first_name": "Zebulonia", "last_name": "Quixotrane",
            "email": "zebulonia.quixotrane@example.com", "phone": "(415) 555-0187",
            "message": "Sentinelmessage about my sleep"}
SENTINEL_ZIP = "95971"
NEEDLES = ("Zebulonia", "zebulonia", "Quixotrane", "quixotrane", "5550187", "555-0187",
           "Sentinelmessage", SENTINEL_ZIP)
FORBIDDEN_IN_SUBJECTS = ("ketamine", "trauma", "depression")
HREF = re.compile(r'href="([^"]+)"')


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


class TestSentinel:
    @pytest.fixture
    def app_config(self, mail_config):
        return mail_config

    def test_reaches_no_therapist_email_log_line_url_or_cookie(
            self, app, client, world, smtp_server, caplog):
        check_sentinel(app, client, world, smtp_server, caplog)


def check_sentinel(app, client, world, smtp_server, caplog):
    # SQLAlchemy keeps its loggers at WARNING; an operator may turn statements on.
    # (Each set_level also sets caplog's handler: DEBUG must come last.)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG, logger="portal")
    caplog.set_level(logging.DEBUG)
    responses = [client.post("/consultation", data={**ELIGIBLE, "zip_code": SENTINEL_ZIP})]
    data = form_data(client, therapist=str(world["therapist_id"]),
                     **{k: v for k, v in SENTINEL.items() if k != "message"})
    responses.append(send(client, data))
    responses.append(client.get(responses[-1].location))  # "check your email"
    with app.app_context():
        outbox.deliver_due()
        [code_mail] = smtp_server.to(SENTINEL["email"])
    code = re.search(r"\b(\d{6})\b", code_mail.get_body(("plain",)).get_content()).group(1)
    responses.append(client.post("/consultation/verify", data={"code": code}))
    verified = len(responses)  # the journey's answers leave the session here
    responses.append(client.get(responses[-1].location))
    public_id = responses[-2].location.rpartition("/")[2]
    responses.append(client.post(f"/consultation/prepare/{public_id}", data={
        "message": SENTINEL["message"], "interests": ["kap", "trauma", "depression"]}))
    with app.app_context():
        outbox.deliver_due()
        [_, client_mail] = smtp_server.to(SENTINEL["email"])
        manage = next(u for u in HREF.findall(client_mail.get_body(("html",)).get_content())
                      if "/manage/" in u).replace("https://portal.example.com", "")
    responses.append(client.get(manage))
    new_slot = SLOT_VALUE.findall(client.get(manage + "/reschedule").text)[0]
    responses.append(client.post(manage + "/reschedule", data={"slot": new_slot}))
    with app.app_context():  # sent before the cancellation, which would stop them
        outbox.deliver_due()
    responses.append(client.post(manage + "/cancel"))
    staff = app.test_client()
    responses.append(sign_in(staff, ADMIN))
    with app.app_context():
        rid = db.session.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.email == SENTINEL["email"]))
        responses.append(staff.get(f"/admin/requests/{rid}"))
        outbox.deliver_due()
        rows = db.session.scalars(select(OutboxEmail).where(OutboxEmail.request_id == rid)).all()
        db.session.expunge_all()
    assert {r.status for r in rows} == {"sent"} and len(rows) >= 6

    to_client = [r for r in rows if r.recipient == SENTINEL["email"]]
    to_staff = [r for r in rows if r.recipient != SENTINEL["email"]]
    assert len(to_client) == 4 and len(to_staff) >= 3  # code, booked, moved, cancelled
    for row in to_staff:
        assert leaks(f"{row.subject}\n{row.body_text}\n{row.body_html}\n{row.ics}") == [], row.kind
    for row in to_client:
        assert not any(word in row.subject.lower() for word in FORBIDDEN_IN_SUBJECTS)
    for message in smtp_server.messages:
        if SENTINEL["email"] in str(message["To"]):
            continue
        decoded = "\n".join(str(part.get_content()) for part in message.walk()
                            if not part.is_multipart())
        assert leaks(raw_text(message)) == [] and leaks(decoded) == [], message["Subject"]
        urls = HREF.findall(message.get_body(("html",)).get_content())
        assert urls and all(leaks(u) == [] for u in urls)

    # aiosmtpd's own "mail.log" stands in for the outside mail server, not the portal.
    lines = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
             if not r.name.startswith("mail.log")]
    assert any("outcome=sent" in line for line in lines)  # the capture really worked
    assert [line for line in lines if leaks(line)] == []

    for number, response in enumerate(responses):
        assert leaks(response.headers.get("Location", "")) == []
        for cookie in response.headers.getlist("Set-Cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            content = str(session_of(app, value)) if name == "session" and value else value
            # The journey's answers ride in the session by design (DESIGN.md) until the
            # request is confirmed, encrypted: nothing typed can be read from it.
            assert leaks(cookie + content) == [], (name, content, number, verified)
    with client.session_transaction() as session:
        assert leaks(str(dict(session))) == []  # gone once the request is stored


# -- CSRF on every public POST ----------------------------------------------------------

PUBLIC_POSTS = {"public.eligibility", "public.time", "public.about", "public.check",
                "public.prepare", "public.verify",
                "public.manage_cancel", "public.manage_reschedule", "public.rebook",
                "public.waitlist_offer", "public.manage_leave_waitlist"}
# POSTs that take no token, each for a stated reason and tested where it lives.
# "Exit this page" sends a beacon, which has no token to send; it only empties the
# caller's own session (tests/test_exit_page.py), and the SameSite=Lax session cookie
# never comes with another site's POST.
# Twilio's webhooks carry its X-Twilio-Signature instead (tests/test_texts.py).
CSRF_EXEMPT_POSTS = {"public.exit_this_page", "texts.inbound", "texts.status"}


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_public_post_without_a_valid_csrf_token_is_refused(app, client, world):
    rules = [rule for rule in app.url_map.iter_rules()
             if "POST" in rule.methods and not rule.rule.startswith("/admin")]
    # A new POST must be added here.
    assert {rule.endpoint for rule in rules} == PUBLIC_POSTS | CSRF_EXEMPT_POSTS
    rules = [rule for rule in rules if rule.endpoint in PUBLIC_POSTS]
    with app.app_context():  # a pending request waiting for its code, as step 2 leaves it
        pending = make_request(status="pending")
        db.session.add(EmailVerification(request=pending, code_hash="0" * 64,
                                         expires_at=utcnow() + timedelta(minutes=30)))
        db.session.commit()
        pending_id = pending.public_id
    write_journey(client, {"answers": {"eligibility": ELIGIBLE}, "token": "t"})
    details = client.get("/consultation/time").text
    answers = form_data(client, first_name="Forged")
    kept = {"eligibility": ELIGIBLE,
            "time": {"therapist": "any", "slot": answers["slot"], "waitlist": False},
            "about": {"first_name": "Casey", "last_name": "Rivera", "email": "c@example.com",
                      "email_as_typed": False, "phone": "(415) 555-0123", "meeting": "phone"}}
    write_journey(client, {"answers": kept, "token": "t"})  # every step reached
    with client.session_transaction() as session:
        session["pending"] = pending_id
    manage = f"/manage/{world['token']}"
    full = {
        "public.eligibility": [ELIGIBLE, {**ELIGIBLE, "ca_resident": "no"}],
        "public.time": [{"therapist": "any", "slot": answers["slot"]}],
        "public.about": [answers],
        "public.check": [answers],
        "public.prepare": [{"preferred_name": "Forged"}],
        "public.verify": [{"code": "123456"}, {"resend": "1"}, {"change_email": "1"}],
        "public.manage_cancel": [{}],
        "public.waitlist_offer": [{}],  # "Book this time": nothing but the token
        "public.manage_leave_waitlist": [{}],
        "public.manage_reschedule": [{"slot": SLOT_VALUE.findall(
            client.get(manage + "/reschedule").text)[0]}],
        "public.rebook": [{"slot": SLOT_VALUE.findall(client.get(
            url_of(app, next(r for r in rules if r.endpoint == "public.rebook"), world)
        ).text)[0]}],
    }
    assert csrf_token(details)  # CSRF is really on: a valid token exists to be missing
    before, wrong = database_snapshot(app), []
    for rule in rules:
        for data in full[rule.endpoint]:
            for token in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf_token(details)[:-2]}):
                body = {k: v for k, v in data.items() if k != "csrf_token"} | token
                response = client.post(url_of(app, rule, world), data=body)
                # Refused: 400, or the form again (at once, or after the redirect that
                # shows it) asking to send it again.
                shown = response.text if response.status_code == 200 else (
                    client.get(response.location).text if response.status_code == 302
                    else "")
                refused = response.status_code == 400 or (
                    "This page was open for a while" in shown
                    and (response.location or "").partition("?")[0] in (
                        "", url_of(app, rule, world)))
                if not refused:
                    wrong.append((rule.rule, token, response.status_code))
    assert wrong == []
    assert database_snapshot(app) == before
    # A refused "no" did not end step 1 either, and a refused step changed nothing.
    assert read_journey(client)["answers"] == kept


HTTPS = "https://localhost"


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
@pytest.mark.parametrize("referer", [None, "https://evil.example.com/consultation",
                                     "http://localhost/consultation"],
                         ids=["no-referer", "other-site", "plain-http"])
def test_a_valid_token_over_https_still_needs_a_same_origin_referer(app, client, world,
                                                                    referer):
    """Flask-WTF's strict check over https: a POST must come from one of our own pages.
    The forms that keep answers after an expired token must not lose that check."""
    same_origin = {"Referer": f"{HTTPS}/consultation"}
    assert client.post("/consultation", data={**ELIGIBLE, "csrf_token": csrf_token(
        client.get("/consultation", base_url=HTTPS).text)}, base_url=HTTPS,
        headers=same_origin).location == "/consultation/time"
    manage = f"/manage/{world['token']}"
    posts = {
        "/consultation": {**ELIGIBLE, "ca_resident": "no"},
        "/consultation/time": {"therapist": "any", "slot": "none"},
        "/consultation/about": form_data(client, first_name="Forged"),
        f"{manage}/cancel": {},
        f"{manage}/reschedule": {"slot": SLOT_VALUE.findall(
            client.get(manage + "/reschedule", base_url=HTTPS).text)[0]},
    }
    token = csrf_token(client.get("/consultation/time", base_url=HTTPS).text)
    before, answered = database_snapshot(app), {}
    for url, data in posts.items():
        response = client.post(url, data={**data, "csrf_token": token}, base_url=HTTPS,
                               headers={"Referer": referer} if referer else {})
        answered[url] = response.status_code
    assert answered == dict.fromkeys(posts, 400)
    assert database_snapshot(app) == before
    assert set(read_journey(client)["answers"]) == {"eligibility"}
    # The same token from our own page is accepted: only the Referer was wrong.
    assert client.post(f"{manage}/cancel", data={"csrf_token": token}, base_url=HTTPS,
                       headers={"Referer": f"{HTTPS}{manage}"}).status_code == 302
    assert database_snapshot(app) != before


# -- the session cookie -------------------------------------------------------------------

@pytest.mark.parametrize("app_config", [{}, {"PREFERRED_URL_SCHEME": "https"}])
def test_sign_in_issues_a_new_session_cookie_with_safe_flags(app, client, world):
    https = app.config["PREFERRED_URL_SCHEME"] == "https"
    environ = {"wsgi.url_scheme": "https" if https else "http"}
    public = client.post("/consultation", data=ELIGIBLE, environ_base=environ)
    before = client.get_cookie("session").value
    response = sign_in(client, ADMIN, **environ)
    assert response.status_code == 302
    for set_cookie in public.headers.getlist("Set-Cookie") + response.headers.getlist(
            "Set-Cookie"):
        flags = {part.strip().lower() for part in set_cookie.split(";")[1:]}
        assert "httponly" in flags and "samesite=lax" in flags, set_cookie
        assert ("secure" in flags) is https, set_cookie
    after = client.get_cookie("session").value
    assert after != before
    content = session_of(app, after)
    assert set(content) <= {"_user_id", "_fresh", "_id", "signed_in_at", "last_seen",
                            "csrf_token", "_flashes"}
    assert content["_user_id"] != str(world["user_id"])  # a rotating token, not the user id
    replay = app.test_client()
    replay.set_cookie("session", before)
    assert replay.get("/admin/", environ_base=environ).status_code == 302


# -- the client's address behind the proxy -------------------------------------------------

@pytest.mark.parametrize("app_config, expected", [
    ({"PROXY_FIX_X_FOR": 1}, "203.0.113.7"), ({}, "10.0.0.1"),
])
def test_client_address_is_the_hop_the_trusted_proxy_added(app, client, expected):
    @app.get("/_test/address")
    def address():
        return request.remote_addr or ""

    forged = "198.51.100.66, 203.0.113.7"  # the client wrote the first hop, the proxy the last
    response = client.get("/_test/address", headers={"X-Forwarded-For": forged},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.text == expected
