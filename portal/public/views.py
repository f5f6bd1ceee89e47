"""Public pages: the landing page, step 1 of the request journey (eligibility) and
the pages it leads to, and the privacy notice. The later steps are in
portal.public.steps; the answers travel between them as portal.public.journey says.
Each POST view validates, calls one domain function, commits once and redirects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial, wraps

from babel.dates import format_date
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from markupsafe import Markup
from sqlalchemy import select

from portal.booking import intake, verification
from portal.booking.residency import (
    CALIFORNIA,
    check_eligibility,
    normalise_zip,
    state_name,
    zip_state,
)
from portal.booking.scheduling import (
    PACIFIC,
    format_day,
    format_slot_long,
    format_span,
    format_time,
)
from portal.booking.therapists import Therapist
from portal.extensions import csrf, db
from portal.i18n import current_language
from portal.models import ConsultationRequest
from portal.phones import Phone
from portal.public import journey
from portal.public.forms import EligibilityForm
from portal.public.messages import (
    CSRF_MESSAGE,
    FORM_EXPIRED_MESSAGE,
    FORM_USED_MESSAGE,
    SLOT_TAKEN_MESSAGE,
    THERAPIST_GONE_MESSAGE,
    TOO_FAST_MESSAGE,
    hold_limit_message,
)
from portal.public.rate_limits import limit_posts, when_limited
from portal.public.submission import issue_form_token
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import writing

bp = Blueprint("public", __name__)
ELIGIBILITY = "eligibility"
# The public id of the visitor's pending request, between steps 2 and 3.
PENDING_KEY = "pending"


@bp.context_processor
def time_formatting() -> dict:
    language = current_language()
    return {"format_day": partial(format_day, language=language),
            "format_time": partial(format_time, language=language),
            "format_span": partial(format_span, language=language)}


@bp.app_context_processor
def practice_phone() -> dict:
    return {"phone_link": phone_link}


def phone_link() -> Markup:
    """The practice's phone number as a tel: link, for every public page."""
    phone = current_app.config["PRACTICE_PHONE"]
    parsed = Phone.parse(phone)
    # Dialled as stored (E.164); a setting that is no number keeps its digits and "+".
    dial = parsed.e164 if parsed is not None \
        else "".join(c for c in phone if c.isdigit() or c == "+")
    return Markup('<a href="tel:{}">{}</a>').format(dial, phone)


def open_intake(view: Callable) -> Callable:
    """While intake is paused, the paused page instead of the view."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        message = intake.pause_message()
        if message is not None:
            return render_template("public/paused.html", pause_message=message)
        return view(*args, **kwargs)
    return wrapper


def invalid_link():
    return render_template("public/link_invalid.html"), 404


def describe(consultation: ConsultationRequest) -> dict:
    """What a page about one booking shows: the request and its time in words."""
    start = consultation.starts_at
    when = format_slot_long(start, language=current_language()) if start else None
    return {"consultation": consultation, "when": when}


def listed_therapists() -> list[Therapist]:
    """The landing page's therapists: the same ones as bookable_therapists(), without
    the weekly hours it loads for the time picker (this page shows no times)."""
    return list(db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True), Therapist.accepting_new.is_(True))
        .order_by(Therapist.name)
    ))


@bp.get("/")
def index():
    return render_template("public/index.html", therapists=listed_therapists(),
                           pause_message=intake.pause_message())


@bp.get("/favicon.ico")
def favicon():
    """Where browsers and bookmarks look for the icon when no page names one."""
    return current_app.send_static_file("favicon.ico")


@bp.post("/exit-this-page")
@csrf.exempt
def exit_this_page():
    """"Exit this page" (static/js/exit_page.js) forgets this browser's answers, so Back
    to a page of the form finds it empty. No CSRF token: a beacon has none to send, and
    the session cookie (SameSite=Lax) never comes with another site's POST anyway."""
    session.clear()
    return "", 204


@bp.get("/privacy")
def privacy():
    return render_template("public/privacy.html")


@bp.get("/accessibility")
def accessibility():
    """The accessibility statement, in GOV.UK's model."""
    reviewed = date.fromisoformat(current_app.config["ACCESSIBILITY_REVIEWED"])
    return render_template("public/accessibility.html",
                           reviewed=format_date(reviewed, "long", locale=get_locale()))


@bp.get("/good-faith-estimate")
def good_faith_estimate():
    """The No Surprises Act notice in full (linked from step 2 and the confirmation email)."""
    return render_template("public/good_faith_estimate.html")


# -- step 1: eligibility --------------------------------------------------------

def eligibility_answers() -> dict | None:
    """Step 1's answers when they allow a consultation, else None."""
    answers = journey.answers(ELIGIBILITY)
    if answers is None or answers.get("adult") != "yes":
        return None
    zip_code = answers.get("zip_code")
    if not check_eligibility(zip_state(zip_code), zip_code, answers.get("ca_resident"),
                             answers.get("in_california")).eligible:
        return None
    return answers


# Why step 1 said no, as the not-eligible page's ``reason`` query argument: which
# answer it speaks to, nothing personal (no state, no ZIP). Most telling first.
NOT_ELIGIBLE_REASONS = ("outside-us", "other-state", "not-resident", "away")
ELIGIBILITY_FIELDS = ("ca_resident", "zip_code", "in_california", "adult")


def not_eligible_reason(form: EligibilityForm) -> str | None:
    """Which answer stands in the way, or None when none does."""
    if form.ca_resident.data != "yes":
        state = zip_state(form.zip_code.data)
        return "other-state" if state not in (None, CALIFORNIA) else "not-resident"
    if form.in_california.data != "yes":
        return "away"  # lives in California, won't be there for the consultation
    return None


NOTICES = {"csrf": CSRF_MESSAGE, "slot_taken": SLOT_TAKEN_MESSAGE,
           "therapist_gone": THERAPIST_GONE_MESSAGE, "expired": FORM_EXPIRED_MESSAGE,
           "used": FORM_USED_MESSAGE, "too_fast": TOO_FAST_MESSAGE}


def step_form(form_class, step: str, data: dict | None = None, **kwargs):
    """A step's form. On a POST: what was sent. On a GET: what was sent with errors
    (validated again, so its messages show in the visitor's language) with the notice
    that came with it, else ``data`` (the answers kept)."""
    if request.method == "POST":
        return form_class(**kwargs)
    sent, notice = journey.sent(step)
    if sent is not None:
        form = form_class(formdata=sent, **kwargs)
        form.validate()
        token = getattr(form, "csrf_token", None)
        if token is not None:
            token.errors = []  # the page gets a fresh token; only the answers are judged
    else:
        form = form_class(formdata=None, data=data, **kwargs)
    if notice in NOTICES:
        form.form_errors.append(NOTICES[notice])
    elif notice == "too_many_holds":  # the same words whichever cap it was: no news of others
        form.form_errors.append(hold_limit_message(current_app.config["PRACTICE_PHONE"]))
    return form


def keep_sent_form(step: str, form, fields: tuple[str, ...], notice: str | None = None) -> None:
    """Keep a POST that needs fixing for the GET that shows it; a refused CSRF token
    becomes the "page was open for a while" notice."""
    journey.keep_sent(step, fields, notice="csrf" if token_refused(form) else notice)


@bp.route("/consultation", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def eligibility():
    form = step_form(EligibilityForm, ELIGIBILITY, journey.answers(ELIGIBILITY))
    if request.method == "GET":
        return render_template("public/eligibility.html", form=form)
    valid = form.validate_on_submit()
    if form.under_18 and not token_refused(form):
        # Whatever else was typed (or not): nothing is stored, no email goes.
        journey.keep(ELIGIBILITY, {name: form[name].data for name in ELIGIBILITY_FIELDS})
        return redirect(url_for("public.young_people"))
    if not valid:
        keep_sent_form(ELIGIBILITY, form, ELIGIBILITY_FIELDS)
        return redirect(url_for("public.eligibility", **from_check()))
    kept = {"ca_resident": form.ca_resident.data, "in_california": form.in_california.data,
            "adult": "yes",
            "zip_code": normalise_zip(form.zip_code.data) if form.zip_code.data else ""}
    journey.keep(ELIGIBILITY, kept)
    reason = not_eligible_reason(form)
    if reason is not None:
        with writing():
            intake.record_not_eligible(datetime.now(UTC).astimezone(PACIFIC).date())
        return redirect(url_for("public.not_eligible", reason=reason))
    if journey.value("token") is None:
        # The time trap runs from here to "Send my request" (portal.public.submission).
        journey.set_value("token", issue_form_token())
    return redirect(url_for("public.check" if from_check() else "public.time"))


def from_check() -> dict:
    """``{"from": "check"}`` when a "Change" link on the check page led here."""
    return {"from": "check"} if request.form.get("from") == "check" else {}


@when_limited("public.eligibility")
def eligibility_when_limited(message: str) -> str | None:
    if intake.pause_message() is not None:
        return None
    form = EligibilityForm()  # the posted answers, not judged
    form.form_errors.append(message)
    return render_template("public/eligibility.html", form=form)


def referrals_for(state: str | None) -> list[dict]:
    """The referral list without the places that can't serve someone in ``state``
    (an entry's ``states``: the only states it serves; none: every state)."""
    return [item for item in current_app.config["REFERRALS"]
            if state is None or not item.get("states") or state in item["states"]]


@bp.get("/consultation/not-eligible")
def not_eligible():
    reason = request.args.get("reason")
    reason = reason if reason in NOT_ELIGIBLE_REASONS else None
    answers = journey.answers(ELIGIBILITY) or {}
    state = zip_state(answers.get("zip_code")) if reason in ("other-state", "not-resident") \
        else None
    return render_template("public/not_eligible.html", reason=reason,
                           state_name=state_name(state) if state else None,
                           referrals=referrals_for(state if state != CALIFORNIA else None))


@bp.get("/consultation/young-people")
def young_people():
    """Where "Are you 18 or older?" → no leads: how a parent or guardian can ask."""
    return render_template("public/young_people.html")


def token_refused(form) -> bool:
    token = getattr(form, "csrf_token", None)  # absent when CSRF is switched off
    return token is not None and bool(token.errors)


def own_pending(*, lock: bool = False) -> ConsultationRequest | None:
    """The pending request this browser made (it comes back here to change the email)."""
    return verification.find_pending(session.get(PENDING_KEY), lock=lock)


