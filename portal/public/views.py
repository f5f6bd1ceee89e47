"""Public pages: the landing page and the consultation request flow.

Step 1's answers (state, ZIP, two yes/no) travel in the signed session and
nothing else does: the session cookie is signed, not encrypted. Each POST view
validates, calls one domain function, commits once and redirects.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from portal import booking, intake
from portal.errors import rerender_on_csrf_error
from portal.extensions import db, limiter
from portal.models import ConsultationRequest
from portal.public import bp
from portal.public.forms import NO_SLOT, DetailsForm, EligibilityForm
from portal.public.submission import issue_form_token, looks_automated, read_form_token
from portal.residency import CALIFORNIA, check_eligibility, zip_error_message
from portal.scheduling import (
    PACIFIC,
    format_day,
    format_slot_long,
    format_time,
    group_by_day,
    slot_value,
)

ELIGIBILITY = "eligibility"
CSRF_MESSAGE = ("This page was open for a while, so for your security we need you to submit "
                "again. Everything you typed is still here.")
FORM_EXPIRED_MESSAGE = ("Something went wrong with this form. Please check your answers and "
                        "submit again.")
SLOT_TAKEN_MESSAGE = "That time was just taken \u2014 please pick another"
THERAPIST_GONE_MESSAGE = ("That therapist isn't taking new consultations at the moment. "
                          "Please choose a time with any of our therapists")
# Never a link to the existing booking: whoever typed the address may not own it.
DUPLICATE_MESSAGE = ("You already have an open consultation request with this email address or "
                     "phone number. To change or cancel it, use the link in the email we sent you")


def consultation_rate_limit() -> str:
    return current_app.config["CONSULTATION_RATE_LIMIT"]


limit_posts = limiter.limit(consultation_rate_limit, methods=["POST"])


def friendly_csrf_error(form) -> None:
    """Swap Flask-WTF's token message for one that says nothing was lost."""
    token_field = getattr(form, "csrf_token", None)  # absent when CSRF is switched off
    if token_field is not None and token_field.errors:
        token_field.errors = []
        form.form_errors.append(CSRF_MESSAGE)


@bp.context_processor
def time_formatting() -> dict:
    return {"format_day": format_day, "format_time": format_time}


def paused_page():
    message = intake.pause_message()
    if message is None:
        return None
    return render_template("public/paused.html", pause_message=message)


@bp.get("/")
def index():
    therapists = booking.bookable_therapists()
    return render_template("public/index.html", therapists=therapists,
                           pause_message=intake.pause_message())


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
def eligibility():
    if (page := paused_page()) is not None:
        return page
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
                "state": form.state.data, "zip_code": form.zip_code.data,
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

def therapist_choice(value: object) -> str:
    """A bookable therapist's id as text, or "any" for anything else."""
    ids = {str(t.id) for t in booking.bookable_therapists()}
    return value if isinstance(value, str) and value in ids else "any"


def slot_options(choice: str) -> list[tuple[object, list[tuple[str, str]]]]:
    """Free times grouped by Pacific day, as (day, [(value, label), ...])."""
    free = booking.available_slots(choice)
    return [(day, [(slot_value(dt), dt) for dt in day_slots])
            for day, day_slots in group_by_day(free)]


def render_details(form: DetailsForm, choice: str):
    friendly_csrf_error(form)
    therapists = booking.bookable_therapists()
    return render_template(
        "public/details.html", form=form, choice=choice, therapists=therapists,
        days=slot_options(choice), no_slot=NO_SLOT,
        chosen=next((t for t in therapists if str(t.id) == choice), None),
    )


def request_details(form: DetailsForm, answers: dict, nonce: str) -> booking.RequestDetails:
    return booking.RequestDetails(
        first_name=form.first_name.data, last_name=form.last_name.data,
        email=form.email.data, phone=form.phone.data,
        preferred_contact=form.preferred_contact.data, interests=form.interests.data or [],
        message=form.message.data or "", state=answers["state"],
        zip_code=answers["zip_code"][:5], ca_resident=True, in_california=True,
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
def details():
    if (page := paused_page()) is not None:
        return page
    form = DetailsForm()
    if request.method == "POST" and (done := already_submitted(form)) is not None:
        return done
    answers = eligibility_answers()
    if answers is None:
        return redirect(url_for("public.eligibility"))
    if request.method == "GET":
        form.therapist.data = therapist_choice(request.args.get("therapist", "any"))
        form.form_token.data = issue_form_token()
        return render_details(form, form.therapist.data)
    posted = form.therapist.data
    form.therapist.data = therapist_choice(posted)
    valid = form.validate_on_submit()
    if posted not in (None, "", form.therapist.data):
        # Never book someone else without saying so: that therapist just stopped taking requests.
        form.slot.errors = [THERAPIST_GONE_MESSAGE]
        return render_details(form, form.therapist.data)
    if not valid:
        return render_details(form, form.therapist.data)
    token = read_form_token(form.form_token.data)
    if token is None:
        form.form_errors.append(FORM_EXPIRED_MESSAGE)
        form.form_token.data = issue_form_token()
        return render_details(form, form.therapist.data)
    if looks_automated(token[1], form.website.data):
        return render_template("public/confirmed.html", consultation=None)
    return book(form, answers, token[0])


def book(form: DetailsForm, answers: dict, nonce: str):
    try:
        consultation = booking.create_request(request_details(form, answers, nonce))
    except booking.SlotTaken:
        db.session.rollback()
        form.slot.errors = [SLOT_TAKEN_MESSAGE]
    except booking.DuplicateRequest:
        db.session.rollback()
        form.email.errors = [DUPLICATE_MESSAGE]
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
    return render_details(form, form.therapist.data)


@bp.get("/consultation/confirmed/<public_id>")
def confirmed(public_id: str):
    consultation = db.session.scalar(
        select(ConsultationRequest).where(ConsultationRequest.public_id == public_id[:32])
    )
    if consultation is None:
        return render_template("public/link_invalid.html"), 404
    return render_template("public/confirmed.html", consultation=consultation,
                           when=format_slot_long(consultation.starts_at)
                           if consultation.starts_at else None)
