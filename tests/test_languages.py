"""Languages: English and Spanish for clients, chosen by the visitor, else their
browser, else English; stored with each request so its later emails speak it; the
back office stays English. The catalog is complete: every text the code and the
client templates can show has a reviewed Spanish translation."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from portal.booking.scheduling import format_day, format_slot_long, format_span, format_time
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.test_public_flow import book, pass_eligibility

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "portal" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}


@pytest.fixture
def app_config():
    return {"CLIENT_LANGUAGES": ["en", "es"]}


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def test_english_unless_the_browser_or_the_visitor_says_otherwise(client):
    page = client.get("/").text
    assert html_lang(page) == "en" and "Skip to main content" in page
    assert 'href="/?lang=es" lang="es" hreflang="es">Español</a>' in page


def test_the_browser_language_picks_spanish(client):
    page = client.get("/consultation/link-that-is-not-there", headers=SPANISH).text
    assert html_lang(page) == "es"
    assert "Ir a la página de inicio" in page and "Go to the home page" not in page
    assert ">English</a>" in page


def test_a_chosen_language_stays_for_the_visit_and_keeps_the_page(client):
    response = client.get("/?lang=es")
    assert response.status_code == 200 and html_lang(response.text) == "es"
    assert html_lang(client.get("/").text) == "es"  # kept in the session
    # Switching back wins over the browser's own language.
    assert html_lang(client.get("/?lang=en", headers=SPANISH).text) == "en"
    assert html_lang(client.get("/", headers=SPANISH).text) == "en"


def test_the_language_link_keeps_the_page_and_its_query(client):
    page = client.get("/nowhere?from=email", headers=SPANISH).text
    assert 'href="/nowhere?from=email&amp;lang=en" lang="en" hreflang="en">English</a>' in page


def test_an_unknown_language_is_ignored(client):
    assert html_lang(client.get("/?lang=xx").text) == "en"
    assert html_lang(client.get("/", headers={"Accept-Language": "fr"}).text) == "en"


def test_the_back_office_stays_english(client):
    page = client.get("/admin/login?lang=es", headers=SPANISH).text
    assert html_lang(page) == "en" and "Español" not in page and "Sign in" in page
    assert html_lang(client.get("/").text) == "en"  # ?lang= there chose nothing


@pytest.mark.parametrize("app_config", [{"CLIENT_LANGUAGES": ["en"]}], indirect=False)
def test_spanish_is_offered_only_where_the_setting_lists_it(client):
    page = client.get("/?lang=es", headers=SPANISH).text
    assert html_lang(page) == "en" and "Español" not in page


def test_dates_and_times_in_spanish_come_from_babel():
    start = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # 10:00 a.m. PST
    assert format_day(start.date(), "es") == "jueves, 3 de diciembre"
    assert format_time(start, "es") == "10:00\u202fa.m."
    assert format_span(start, language="es") == "10:00\u201310:30\u202fa.m."
    assert format_slot_long(start, language="es") == \
        "jueves, 3 de diciembre de 2026, 10:00\u201310:30\u202fa.m. PT"
    noon = datetime(2026, 12, 3, 19, 30, tzinfo=UTC)
    assert format_span(noon, language="es") == "11:30\u202fa.m.\u2009\u2013\u200912:00\u202fp.m."
    # English keeps its own words.
    assert format_slot_long(start) == "Thursday, December 3, 2026, 10:00\u201310:30 AM PT"


def test_a_request_keeps_its_language_and_its_emails_speak_it(app, client, therapist_id):
    client.get("/?lang=es")
    pass_eligibility(client)
    book(client, app)
    with app.app_context():
        row = db.session.scalars(select(ConsultationRequest)).one()
        assert row.language == "es"
        emails = {e.kind: e for e in db.session.scalars(select(OutboxEmail))}
    code = emails["verification_code"]
    assert code.subject == "Su código de confirmación"
    assert "Hola:" in code.body_text and "Hello" not in code.body_text
    assert 'lang="es"' in code.body_html
    # The therapist's notice stays in English.
    notice = next(e for e in emails.values() if e.kind == "therapist_notice")
    assert notice.subject.startswith("New consultation")


def test_a_later_email_speaks_the_request_language_whoever_triggers_it(app, client,
                                                                       therapist_id):
    from portal.messages import notifications

    client.get("/?lang=es")
    pass_eligibility(client)
    book(client, app)
    # Staff cancel it from an English page: the client still reads Spanish.
    with app.test_request_context(headers={"Accept-Language": "en"}):
        row = db.session.scalars(select(ConsultationRequest)).one()
        rows = notifications.queue_cancelled(row, by="practice")
        cancelled = next(e for e in rows if e.kind == "cancelled_client")
        assert cancelled.subject == "Su consulta está cancelada"
        assert "Lamentamos" in cancelled.body_text and "We are sorry" not in cancelled.body_text
        assert re.search(r"(lunes|martes|miércoles|jueves|viernes|sábado|domingo), \d+ de ",
                         cancelled.body_text)
        assert "SUMMARY:Consulta gratuita" in cancelled.ics
        notice = next(e for e in rows if e.kind == "cancelled_therapist")
        assert notice.subject.startswith("Consultation ") and "canceled" in notice.subject


def test_the_catalog_has_every_text_translated_and_none_fuzzy():
    with CATALOG.open("rb") as handle:
        catalog = read_po(handle)
    missing = [m.id for m in catalog if m.id and not m.string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert missing == [] and fuzzy == []


def test_the_catalog_holds_every_text_the_code_and_templates_have(tmp_path):
    """`make translations` was run after the last change of any client-facing text."""
    fresh = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract",
                    "--no-location", "-F", "babel.cfg", "-k", "_l", "-k", "N_",
                    "-o", str(fresh), "."],
                   cwd=ROOT, check=True)
    with fresh.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    with CATALOG.open("rb") as handle:
        have = {m.id for m in read_po(handle) if m.id}  # obsolete entries are apart
    assert sorted(wanted - have) == []


def test_a_message_translated_late_is_escaped_like_any_text(app):
    """Flask-Babel's own lazy strings reach Jinja as markup; ours are escaped, since a
    message may carry what a visitor typed."""
    from portal.i18n import lazy_gettext

    with app.test_request_context():
        message = lazy_gettext("Did you mean %(suggestion)s? Correct your email address, "
                               "or check \u201cMy email address is right as I typed it\u201d",
                               suggestion="<b>x</b>@example.com")
        shown = app.jinja_env.from_string("<p>{{ message }}</p>").render(message=message)
        assert "<b>" not in shown and "&lt;b&gt;x&lt;/b&gt;@example.com" in shown
        assert app.jinja_env.from_string("{{ translate(text) }}").render(
            text="Support & care") == "Support &amp; care"


def test_every_client_template_is_read_for_the_catalog():
    """babel.cfg covers every template a client can see: all but the back office's, the
    staff's own pages and the emails to staff."""
    import configparser
    from fnmatch import fnmatch

    config = configparser.ConfigParser()
    config.read(ROOT / "babel.cfg")
    patterns = [section.split(":", 1)[1].strip() for section in config.sections()
                if section.startswith("jinja2:")]
    staff = ("templates/admin/", "templates/auth/", "templates/email/therapist/",
             "templates/email/staff/")
    for path in sorted((ROOT / "templates").rglob("*.*")):
        name = path.relative_to(ROOT).as_posix()
        if not name.startswith(staff):
            assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_a_therapist_bio_reads_in_spanish_on_the_spanish_pages(app, client, admin, cast):
    """Staff write each bio in both languages; without a Spanish one the English one shows."""
    from portal.booking.therapists import Therapist

    form = {"name": "Maya Alvarez", "email": "maya@example.com", "licence_type": "LMFT",
            "licence_number": "123456", "accepting_new": "y",
            "bio": "Maya works with trauma and depression.",
            "bio_es": "Maya trabaja con trauma y depresión."}
    assert admin.post(f"/admin/therapists/{cast.therapist_id}", data=form).status_code == 302
    with app.app_context():
        assert db.session.get(Therapist, cast.therapist_id).bio_es == form["bio_es"]
    visitor = app.test_client()
    spanish = visitor.get("/", headers=SPANISH).text
    assert form["bio_es"] in spanish and form["bio"] not in spanish
    english = app.test_client().get("/").text
    assert form["bio"] in english and form["bio_es"] not in english
    admin.post(f"/admin/therapists/{cast.therapist_id}", data={**form, "bio_es": ""})
    assert form["bio"] in app.test_client().get("/", headers=SPANISH).text


def test_staff_see_the_language_a_request_was_made_in(app, client, admin, cast, therapist_id):
    """The back office stays English and names the client's language, first on the
    request page when it is not English, and in the CSV export."""
    import csv
    import io

    visitor = app.test_client()
    visitor.get("/?lang=es")
    pass_eligibility(visitor)
    book(visitor, app)
    with app.app_context():
        row = db.session.scalars(select(ConsultationRequest).where(
            ConsultationRequest.language == "es")).one()
    page = admin.get(f"/admin/requests/{row.id}").text
    assert html_lang(page) == "en"
    permissions = page.split('id="contact-permissions"', 1)[1].split("</section>", 1)[0]
    assert "Made this request in <strong>Spanish</strong>" in permissions
    assert "<dt>Language</dt><dd>Spanish</dd>" in page
    english = admin.get(f"/admin/requests/{cast.mine}").text
    assert "Made this request in" not in english and "<dt>Language</dt><dd>English</dd>" in english
    exported = admin.get("/admin/requests/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {r["reference"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert rows[row.reference]["language"] == "Spanish"


def test_wtforms_own_messages_follow_the_page_language(app):
    """Every form is a PortalForm, whose WTForms messages ("Not a valid choice.") come
    from catalogs read once, in the page's language like the rest of it."""
    from wtforms import SelectField

    from portal.web.forms import PortalForm, options

    class Pick(PortalForm):
        colour = SelectField(choices=options([("blue", "Blue")]))

    for language, message in (("en", "Not a valid choice."), ("es", "Opción inválida."),
                              ("en", "Not a valid choice.")):
        with app.test_request_context(f"/consultation?lang={language}", method="POST",
                                      data={"colour": "green"}):
            form = Pick()
            assert not form.validate()
            assert form.colour.errors == [message]


def test_every_form_is_a_portal_form():
    from flask_wtf import FlaskForm

    import portal.admin.forms
    import portal.auth.forms
    import portal.public.forms
    import portal.public.waitlist_offer
    from portal.web.forms import PortalForm

    modules = (portal.admin.forms, portal.auth.forms, portal.public.forms,
               portal.public.waitlist_offer)
    forms = [value for module in modules for value in vars(module).values()
             if isinstance(value, type) and issubclass(value, FlaskForm)]
    assert len(forms) > 10
    assert [form.__name__ for form in forms if not issubclass(form, PortalForm)] == []


ENGLISH = {"Accept-Language": "en-US,en;q=0.9"}


def pages_opened_from_emails(app, therapist_id) -> dict[str, str]:
    """A Spanish client's request, and the path of every page its emails link to."""
    from portal.booking import rebooking, waitlist
    from portal.booking.therapists import Therapist
    from portal.links import manage_token
    from portal.models import WaitlistOffer
    from portal.models import utcnow as now
    from tests.factories import future_slot, make_request

    with app.app_context():
        therapist = db.session.get(Therapist, therapist_id)
        booked = make_request(therapist, future_slot(days=3), language="es")
        waiting = make_request(therapist, None, language="es", waitlist=True)
        offer = WaitlistOffer(request_id=waiting.id, therapist_id=therapist_id,
                              slot_start=future_slot(days=4).replace(tzinfo=None),
                              offered_on=future_slot(days=0).date(), created_at=now())
        db.session.add(offer)
        missed = make_request(therapist, future_slot(days=-1), language="es", status="no_show")
        db.session.flush()
        manage = f"/manage/{manage_token(booked)}"
        paths = {"manage": manage, "cancel": f"{manage}/cancel",
                 "reschedule": f"{manage}/reschedule",
                 "waitlist offer": f"/waitlist/{waitlist.offer_token(offer)}",
                 "rebook": "/rebook/" + rebooking.rebook_url(missed).rsplit("/", 1)[1]}
        db.session.commit()
    return paths


def test_pages_opened_from_an_email_speak_the_request_language(app, therapist_id):
    """A Spanish client's link opened in a phone's mail app, whose browser says English:
    Spanish, until the visitor switches."""
    paths = pages_opened_from_emails(app, therapist_id)
    for name, path in paths.items():
        client = app.test_client()
        response = client.get(path, headers=ENGLISH)
        assert response.status_code == 200, name
        assert html_lang(response.text) == "es", name
        assert "Ir a la página de inicio" not in response.text  # not an error page
        # The visitor switches: English from then on, on this page and the next.
        assert html_lang(client.get(f"{path}?lang=en", headers=SPANISH).text) == "en", name
        assert html_lang(client.get(path, headers=SPANISH).text) == "en", name
    # A page about no request (or an English one) still follows the browser.
    assert html_lang(app.test_client().get("/", headers=ENGLISH).text) == "en"
