"""Public pages: the landing page, the consultation request flow and the privacy notice.

Step 1's answers (state, ZIP, two yes/no) travel in the signed session and
nothing else does: the session cookie is signed, not encrypted. Each POST view
validates, calls one domain function, commits once and redirects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import wraps

from flask import Blueprint, redirect, render_template, request, session, url_for
from sqlalchemy import select

from portal import booking, intake
from portal.availability import bookable_therapists
from portal.database import begin_write
from portal.errors import rerender_on_csrf_error
from portal.extensions import db
from portal.models import ConsultationRequest, Therapist
from portal.public.forms import NO_SLOT, DetailsForm, EligibilityForm
from portal.public.messages import (
    DUPLICATE_MESSAGES,
    FORM_EXPIRED_MESSAGE,
    SLOT_TAKEN_MESSAGE,
    THERAPIST_GONE_MESSAGE,
    friendly_csrf_error,
)
from portal.public.rate_limits import limit_posts
from portal.public.slot_choices import slot_options, therapist_choice
from portal.public.submission import issue_form_token, looks_automated, read_form_token
from portal.residency import CALIFORNIA, check_eligibility, normalise_zip, zip_error_message
from portal.scheduling import PACIFIC, format_day, format_slot_long, format_time

bp = Blueprint("public", __name__)
ELIGIBILITY = "eligibility"


@bp.context_processor
def time_formatting() -> dict:
    return {"format_day": format_day, "format_time": format_time}


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
    return {"consultation": consultation, "when": format_slot_long(start) if start else None}


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


@bp.get("/privacy")
def privacy():
    return render_template("public/privacy.html")


# -- step 1: eligibility --------------------------------------------------------

def eligibility_answers() -> dict | None:
    answers = session.get(ELIGIBILITY)
    if not isinstance(answers, dict):
        return None
    if not check_eligibility(answers.get("state"), answers.get("zip_code"),
                             answers.get("ca_resident"), answers.get("in_california")).eligible:
        return None
    return answers


def zip_mismatch(form: EligibilityForm) -> str | None:
    """A field error when someone says they live in California with a ZIP that isn't."""
    if form.state.data != CALIFORNIA or form.zip_code.errors:
        return None
    return zip_error_message(form.zip_code.data)


@bp.route("/consultation", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def eligibility():
    form = EligibilityForm(data=session.get(ELIGIBILITY) if request.method == "GET" else None)
    if form.validate_on_submit():
        mismatch = zip_mismatch(form)
        if mismatch is None:
            result = check_eligibility(form.state.data, form.zip_code.data,
                                       form.ca_resident.data, form.in_california.data)
            if not result.eligible:
                session.pop(ELIGIBILITY, None)
                intake.record_not_eligible(datetime.now(UTC).astimezone(PACIFIC).date())
                db.session.commit()
                return redirect(url_for("public.not_eligible"))
            session[ELIGIBILITY] = {
                "state": form.state.data, "zip_code": normalise_zip(form.zip_code.data),
                "ca_resident": "yes", "in_california": "yes",
            }
            return redirect(url_for("public.details"))
        form.zip_code.errors.append(mismatch)
    friendly_csrf_error(form)
    return render_template("public/eligibility.html", form=form)


@bp.get("/consultation/not-eligible")
def not_eligible():
    return render_template("public/not_eligible.html")


# -- step 2: details and a time ----------------------------------------------------

def render_details(form: DetailsForm, therapists: Sequence[Therapist]):
    friendly_csrf_error(form)
    choice = form.therapist.data
    return render_template(
        "public/details.html", form=form, choice=choice, therapists=therapists,
        days=slot_options(choice, therapists), no_slot=NO_SLOT,
        chosen=next((t for t in therapists if str(t.id) == choice), None),
    )


def request_details(form: DetailsForm, answers: dict, nonce: str) -> booking.RequestDetails:
    return booking.RequestDetails(
        first_name=form.first_name.data, last_name=form.last_name.data,
        email=form.email.data, phone=form.phone.data,
        preferred_contact=form.preferred_contact.data, interests=form.interests.data or [],
        message=form.message.data or "", state=answers["state"],
        # Normalised at step 1; again here for a session stored before that was so.
        zip_code=normalise_zip(answers["zip_code"]), ca_resident=True, in_california=True,
        therapist_choice=form.therapist.data, slot_start=form.slot_start,
        submission_token=nonce,
    )


def already_submitted(form: DetailsForm):
    token = read_form_token(form.form_token.data)
    existing = booking.find_by_submission_token(token[0]) if token else None
    if existing is None:
        return None
    return redirect(url_for("public.confirmed", public_id=existing.public_id))


@bp.route("/consultation/details", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def details():
    form = DetailsForm()
    if request.method == "POST" and (done := already_submitted(form)) is not None:
        return done
    answers = eligibility_answers()
    if answers is None:
        return redirect(url_for("public.eligibility"))
    therapists = bookable_therapists()
    if request.method == "GET":
        form.therapist.data = therapist_choice(request.args.get("therapist", "any"), therapists)
        form.form_token.data = issue_form_token()
        return render_details(form, therapists)
    posted = form.therapist.data
    form.therapist.data = therapist_choice(posted, therapists)
    if "show_times" in request.form:
        # Only the therapist changed: show their times, keep every answer, judge none yet.
        return render_details(form, therapists)
    valid = form.validate_on_submit()
    if posted not in (None, "", form.therapist.data):
        # Never book someone else without saying so: that therapist just stopped taking requests.
        form.slot.errors = [THERAPIST_GONE_MESSAGE]
        return render_details(form, therapists)
    if not valid:
        return render_details(form, therapists)
    return submit_details(form, answers, therapists)


def submit_details(form: DetailsForm, answers: dict, therapists: Sequence[Therapist]):
    token = read_form_token(form.form_token.data)
    if token is None:
        form.form_errors.append(FORM_EXPIRED_MESSAGE)
        form.form_token.data = issue_form_token(already_filled=True)
        return render_details(form, therapists)
    if looks_automated(token[1], form.website.data):
        return render_template("public/confirmed.html", consultation=None)
    return book(form, answers, token[0])


def book(form: DetailsForm, answers: dict, nonce: str):
    begin_write()  # on SQLite: the checks and the insert hold the write lock together
    try:
        consultation = booking.create_request(request_details(form, answers, nonce))
    except booking.SlotTaken:
        db.session.rollback()
        form.slot.errors = [SLOT_TAKEN_MESSAGE]
    except booking.DuplicateRequest as duplicate:
        db.session.rollback()
        form[duplicate.matched].errors = [DUPLICATE_MESSAGES[duplicate.matched]]
    except booking.UnknownTherapist:
        db.session.rollback()
        form.therapist.data = "any"
        form.slot.errors = [THERAPIST_GONE_MESSAGE]
    except booking.NotEligible:
        db.session.rollback()
        return redirect(url_for("public.eligibility"))
    else:
        db.session.commit()
        session.pop(ELIGIBILITY, None)
        return redirect(url_for("public.confirmed", public_id=consultation.public_id))
    # The rollback ended the transaction that loaded the therapists: load them afresh.
    return render_details(form, bookable_therapists())


@bp.get("/consultation/confirmed/<public_id>")
def confirmed(public_id: str):
    consultation = booking.find_by_public_id(public_id)
    if consultation is None:
        return invalid_link()
    return render_template("public/confirmed.html", **describe(consultation))
