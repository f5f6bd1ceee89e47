"""Public pages: the landing page, the consultation request flow and the privacy notice.

Step 1's answers (state, ZIP, two yes/no) travel in the signed session and
nothing else does: the session cookie is signed, not encrypted. Each POST view
validates, calls one domain function, commits once and redirects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial, wraps

import phonenumbers
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from portal import booking, holds, intake, reply_promise, verification
from portal.addresses import masked_address
from portal.availability import bookable_therapist_cards, bookable_therapists
from portal.database import begin_write
from portal.errors import rerender_on_csrf_error
from portal.extensions import csrf, db
from portal.i18n import current_language
from portal.models import CONTACT_METHODS, ConsultationRequest, Therapist
from portal.networks import network_key
from portal.public.details_page import render_questions
from portal.public.forms import NO_SLOT, DetailsForm, EligibilityForm
from portal.public.messages import (
    FORM_EXPIRED_MESSAGE,
    FORM_USED_MESSAGE,
    SLOT_TAKEN_MESSAGE,
    THERAPIST_GONE_MESSAGE,
    friendly_csrf_error,
    hold_limit_message,
)
from portal.public.rate_limits import limit_posts, when_limited
from portal.public.slot_choices import slot_options, therapist_choice
from portal.public.submission import issue_form_token, looks_automated, read_form_token
from portal.residency import (
    CALIFORNIA,
    OUTSIDE_US,
    check_eligibility,
    normalise_zip,
    zip_error_message,
)
from portal.scheduling import (
    PACIFIC,
    format_day,
    format_slot_long,
    format_span,
    format_time,
    slot_value,
)

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


@bp.get("/good-faith-estimate")
def good_faith_estimate():
    """The No Surprises Act notice in full (linked from step 2 and the confirmation email)."""
    return render_template("public/good_faith_estimate.html")


# -- step 1: eligibility --------------------------------------------------------

def eligibility_answers() -> dict | None:
    answers = session.get(ELIGIBILITY)
    if not isinstance(answers, dict):
        return None
    if not check_eligibility(answers.get("state"), answers.get("zip_code"),
                             answers.get("ca_resident"), answers.get("in_california")).eligible:
        return None
    return answers


# Why step 1 said no, as the not-eligible page's ``reason`` query argument: which
# answer it speaks to, nothing personal (no state, no ZIP). Most telling first.
NOT_ELIGIBLE_REASONS = ("outside-us", "other-state", "not-resident", "away")


def not_eligible_reason(form: EligibilityForm) -> str:
    if form.state.data == OUTSIDE_US:
        return "outside-us"
    if form.state.data != CALIFORNIA:
        return "other-state"
    if form.ca_resident.data != "yes":
        return "not-resident"  # California chosen as the state, then "No, I don't live there"
    return "away"  # lives in California, won't be there for the consultation


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
                return redirect(url_for("public.not_eligible",
                                        reason=not_eligible_reason(form)))
            session[ELIGIBILITY] = {
                "state": form.state.data, "zip_code": normalise_zip(form.zip_code.data),
                "ca_resident": "yes", "in_california": "yes",
            }
            return redirect(url_for("public.details"))
        form.zip_code.errors.append(mismatch)
    friendly_csrf_error(form)
    return render_template("public/eligibility.html", form=form)


@when_limited("public.eligibility")
def eligibility_when_limited(message: str) -> str | None:
    if intake.pause_message() is not None:
        return None
    form = EligibilityForm()  # the posted answers, not judged
    form.form_errors.append(message)
    return render_template("public/eligibility.html", form=form)


@bp.get("/consultation/not-eligible")
def not_eligible():
    reason = request.args.get("reason")
    return render_template("public/not_eligible.html",
                           reason=reason if reason in NOT_ELIGIBLE_REASONS else None)


# -- step 2: details and a time ----------------------------------------------------

def own_pending(*, lock: bool = False) -> ConsultationRequest | None:
    """The pending request this browser made (it comes back here to change the email)."""
    return verification.find_pending(session.get(PENDING_KEY), lock=lock)


def render_details(form: DetailsForm, therapists: Sequence[Therapist],
                   pending: ConsultationRequest | None = None):
    """``pending``: the visitor's pending request when the caller has loaded it already."""
    friendly_csrf_error(form)
    choice = form.therapist.data
    pending = pending or own_pending()
    context = {
        "form": form, "choice": choice, "therapists": therapists,
        "days": slot_options(choice, therapists,
                             exclude_request_id=pending.id if pending else None),
        "no_slot": NO_SLOT, "chosen": next((t for t in therapists if str(t.id) == choice), None),
    }
    # A fresh visit's questions hold nothing of the visitor: kept and reused (details_page).
    fresh = (request.method == "GET" and pending is None and not form.errors
             and not form.form_errors)
    return render_template("public/details.html", **context,
                           questions=render_questions(context, fresh=fresh))


def request_details(form: DetailsForm, answers: dict, nonce: str) -> booking.RequestDetails:
    return booking.RequestDetails(
        first_name=form.first_name.data, last_name=form.last_name.data,
        email=form.email.data, phone=form.phone.data,
        preferred_contact=form.preferred_contact.data, interests=form.interests.data or [],
        message=form.message.data or "", state=answers["state"],
        # Normalised at step 1; again here for a session stored before that was so.
        zip_code=normalise_zip(answers["zip_code"]), ca_resident=True, in_california=True,
        therapist_choice=form.therapist.data, slot_start=form.slot_start,
        waitlist=bool(form.waitlist.data),  # kept only without a time (booking.py)
        submission_token=nonce, language=current_language(),
        preferred_name=form.preferred_name.data or None,
        ok_to_text=form.ok_to_text.data == "yes",
        ok_to_voicemail=form.ok_to_voicemail.data == "yes",
        adult=form.adult.data == "yes", payment=form.payment.data,
        network_key=network_key(request.remote_addr, current_app.config["SECRET_KEY"]),
    )


def national_phone(e164: str) -> str:
    """A stored E.164 number as a person writes it, e.g. "(415) 555-0123"."""
    try:
        number = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def answers_of(pending: ConsultationRequest) -> dict:
    """A pending request's answers as the details form's data: "change my email"
    brings the visitor back to a form still filled in."""
    start = pending.starts_at
    return {
        "first_name": pending.first_name, "last_name": pending.last_name,
        "email": pending.email, "phone": national_phone(pending.phone),
        "preferred_contact": pending.preferred_contact, "interests": pending.interest_keys,
        "message": pending.message, "therapist": pending.therapist_choice,
        "slot": slot_value(start) if start else NO_SLOT, "waitlist": pending.waitlist,
        "consent_privacy": True, "ack_not_emergency": True,
        "preferred_name": pending.preferred_name or "", "adult": yes_or_no(pending.adult),
        "ok_to_text": yes_or_no(pending.ok_to_text),
        "ok_to_voicemail": yes_or_no(pending.ok_to_voicemail), "payment": pending.payment,
    }


def yes_or_no(answer: bool | None) -> str | None:
    return None if answer is None else ("yes" if answer else "no")


def token_refused(form: DetailsForm) -> bool:
    token = getattr(form, "csrf_token", None)  # absent when CSRF is switched off
    return token is not None and bool(token.errors)


def resubmitted(form: DetailsForm):
    """The answer to a form whose one-time token was used already (a double click, the
    back button). It depends only on that token's request, never on what was typed now,
    so replaying a token tells nothing about another address."""
    token = read_form_token(form.form_token.data)
    existing = booking.find_by_submission_token(token[0]) if token else None
    if existing is None:
        return None
    if existing.is_pending:
        session[PENDING_KEY] = existing.public_id
        return redirect(url_for("public.verify"))
    form.form_errors.append(FORM_USED_MESSAGE)
    form.form_token.data = issue_form_token(already_filled=True)
    return render_details(form, bookable_therapists())


@bp.route("/consultation/details", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def details():
    pending = own_pending() if request.method == "GET" else None
    form = DetailsForm(data=answers_of(pending) if pending else None)
    if request.method == "POST" and (done := resubmitted(form)) is not None:
        return done
    answers = eligibility_answers()
    if answers is None:
        return redirect(url_for("public.eligibility"))
    therapists = bookable_therapist_cards()
    if request.method == "GET":
        # Back from "change my email": the pending request's choice, else the link's.
        wanted = form.therapist.data if pending else request.args.get("therapist", "any")
        form.therapist.data = therapist_choice(wanted, therapists)
        form.form_token.data = issue_form_token(already_filled=pending is not None)
        return render_details(form, therapists, pending)
    posted = form.therapist.data
    form.therapist.data = therapist_choice(posted, therapists)
    if "show_times" in request.form:
        # Only the therapist changed: show their times, keep every answer, judge none yet.
        return render_details(form, therapists)
    if "use_email" in request.form:
        # The typo hint's one-click "Use …@gmail.com": the address replaced and the
        # page shown again with what still needs fixing, nothing booked yet.
        form.email.data = request.form["use_email"].strip()
        form.email_as_typed.data = False
        form.validate_on_submit()
        return render_details(form, therapists)
    valid = form.validate_on_submit()
    if form.under_18 and not token_refused(form):
        # Whatever else was typed (or not): nothing is stored, no email goes.
        return redirect(url_for("public.young_people"))
    if posted not in (None, "", form.therapist.data):
        # Never book someone else without saying so: that therapist just stopped taking requests.
        form.slot.errors = [THERAPIST_GONE_MESSAGE]
        return render_details(form, therapists)
    if not valid:
        return render_details(form, therapists)
    return submit_details(form, answers, therapists)


@bp.get("/consultation/young-people")
def young_people():
    """Where "Are you 18 or older?" → no leads: how a parent or guardian can ask."""
    return render_template("public/young_people.html")


@when_limited("public.details")
def details_when_limited(message: str) -> str | None:
    if eligibility_answers() is None or intake.pause_message() is not None:
        return None
    therapists = bookable_therapists()
    form = DetailsForm()  # the posted answers, not judged; the unused form token stays
    form.therapist.data = therapist_choice(form.therapist.data, therapists)
    form.form_errors.append(message)
    return render_details(form, therapists)


def submit_details(form: DetailsForm, answers: dict, therapists: Sequence[Therapist]):
    token = read_form_token(form.form_token.data)
    if token is None:
        form.form_errors.append(FORM_EXPIRED_MESSAGE)
        form.form_token.data = issue_form_token(already_filled=True)
        return render_details(form, therapists)
    if looks_automated(token[1], form.website.data):
        # Stored nothing; the same next page a person gets, with nothing to verify.
        session.pop(PENDING_KEY, None)
        return redirect(url_for("public.verify"))
    return book(form, answers, token[0])


def book(form: DetailsForm, answers: dict, nonce: str):
    """Store the pending request and queue its email; the next page is the same
    whether the address had a request already or not (see portal.verification)."""
    begin_write()  # on SQLite: the checks and the insert hold the write lock together
    now = datetime.now(UTC)
    verification.release_expired(now)
    previous = own_pending(lock=True)
    if previous is not None:  # back from "change my email": the new answers replace it
        verification.drop(previous, now=now)
    try:
        consultation = booking.create_request(request_details(form, answers, nonce), now=now)
    except booking.SlotTaken:
        db.session.rollback()
        form.slot.errors = [SLOT_TAKEN_MESSAGE]
    except booking.UnknownTherapist:
        db.session.rollback()
        form.therapist.data = "any"
        form.slot.errors = [THERAPIST_GONE_MESSAGE]
    except holds.TooManyHolds:  # the same words whichever cap it was: no news of others
        db.session.rollback()
        form.slot.errors = [hold_limit_message(current_app.config["PRACTICE_PHONE"])]
    except booking.NotEligible:
        db.session.rollback()
        return redirect(url_for("public.eligibility"))
    else:
        # Read before COMMIT expires it: once the request is stored, a connection lost
        # on the way to the next page must not tell the visitor it failed.
        public_id = consultation.public_id
        db.session.commit()
        session[PENDING_KEY] = public_id
        return redirect(url_for("public.verify"))
    # The rollback ended the transaction that loaded the therapists: load them afresh.
    return render_details(form, bookable_therapists())


@bp.get("/consultation/confirmed/<public_id>")
def confirmed(public_id: str):
    consultation = booking.find_by_public_id(public_id)
    if consultation is None or consultation.is_pending:
        return invalid_link()
    return render_template(
        "public/confirmed.html", sent_to=masked_address(consultation.email),
        contact_method=CONTACT_METHODS.get(consultation.preferred_contact, "email").lower(),
        reply_by=reply_promise.reply_by(consultation.created_at, current_language()),
        **describe(consultation))
