"""Steps 2 to 4 of the request journey: a time, about you, and check your answers.

Each step's GET shows its answers (portal.public.journey); its POST keeps them and
redirects: on to the next step, back to the check page after a "Change" link, or to
itself when something needs fixing. Nothing is stored in the database before "Send
my request" on the check page, which judges every step's answers again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from flask import current_app, redirect, render_template, request, session, url_for
from werkzeug.datastructures import MultiDict

from portal.booking import consultations, holds, intake, verification
from portal.booking.answers import MEETINGS
from portal.booking.availability import bookable_therapist_cards
from portal.booking.residency import zip_state
from portal.booking.scheduling import format_slot_long, parse_slot_value
from portal.i18n import current_language
from portal.networks import network_key
from portal.phones import Phone, national_phone
from portal.public import journey
from portal.public.details_page import render_questions
from portal.public.forms import NO_SLOT, AboutForm, CheckForm, TimeForm
from portal.public.rate_limits import limit_posts, when_limited
from portal.public.slot_choices import slot_options, therapist_choice
from portal.public.submission import issue_form_token, looks_automated, read_form_token
from portal.public.views import (
    ELIGIBILITY,
    PENDING_KEY,
    bp,
    eligibility_answers,
    keep_sent_form,
    open_intake,
    own_pending,
    step_form,
)
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import writing

TIME, ABOUT, CHECK = "time", "about", "check"
TIME_FIELDS = ("therapist", "slot", "waitlist")
ABOUT_FIELDS = ("first_name", "last_name", "email", "email_as_typed", "phone", "meeting")
CHECK_FIELDS = ("consent_privacy", "ack_not_emergency")


def returning() -> bool:
    """Whether the visitor came from a "Change" link on the check page."""
    source = request.form if request.method == "POST" else request.args
    return source.get("from") == CHECK


def onwards(next_endpoint: str, **args):
    if returning():
        return redirect(url_for("public.check"))
    return redirect(url_for(next_endpoint, **args))


def back_to(endpoint: str, anchor: str = "", **args):
    """The same step again (to show what needs fixing), keeping "from=check"."""
    if returning():
        args["from"] = CHECK
    return redirect(url_for(endpoint, **args) + anchor)


def first_missing_step():
    """A redirect to the first step still unanswered, or None when all are."""
    if eligibility_answers() is None:
        return redirect(url_for("public.eligibility"))
    if journey.answers(TIME) is None:
        return redirect(url_for("public.time"))
    if journey.answers(ABOUT) is None:
        return redirect(url_for("public.about"))
    return None


def video_offered(choice: object, therapists: Sequence) -> bool:
    """Video only where the therapist has a video room; with "any therapist", only
    when every one of them has one (any of them may get the time)."""
    chosen = [t for t in therapists if choice in (None, "any") or str(t.id) == str(choice)]
    return bool(chosen) and all(t.video_url for t in chosen)


# -- step 2: a time ----------------------------------------------------------------

@bp.get("/consultation/details")
def details():
    """The single-page step 2 of version 2: its bookmarks and links lead to the time."""
    therapist = request.args.get("therapist")
    return redirect(url_for("public.time", **({"therapist": therapist} if therapist else {})))


def render_time(form: TimeForm, therapists: Sequence, *, fresh: bool):
    pending = own_pending()
    choice = form.therapist.data
    context = {
        "form": form, "choice": choice, "therapists": therapists, "no_slot": NO_SLOT,
        "days": slot_options(choice, therapists,
                             exclude_request_id=pending.id if pending else None),
        "chosen": next((t for t in therapists if str(t.id) == choice), None),
        "returning": returning(),
    }
    # A fresh visit's questions hold nothing of the visitor: kept and reused (details_page).
    return render_template("public/time.html", **context,
                           questions=render_questions(context, fresh=fresh and pending is None))


@bp.route("/consultation/time", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def time():
    if eligibility_answers() is None:
        return redirect(url_for("public.eligibility"))
    therapists = bookable_therapist_cards()
    kept = journey.answers(TIME)
    form = step_form(TimeForm, TIME, kept)
    if request.method == "GET":
        wanted = request.args.get("therapist") or (kept or {}).get("therapist", "any")
        form.therapist.data = therapist_choice(wanted, therapists)
        fresh = not form.errors and not form.form_errors and not form.slot.data \
            and not form.waitlist.data
        return render_time(form, therapists, fresh=fresh)
    posted = form.therapist.data
    form.therapist.data = therapist_choice(posted, therapists)
    valid = form.validate_on_submit()
    if posted not in (None, "", form.therapist.data):
        # Never book someone else without saying so: that therapist just stopped taking requests.
        journey.keep_sent(TIME, ("slot", "waitlist"), notice="therapist_gone")
        return back_to("public.time", therapist="any")
    if not valid:
        keep_sent_form(TIME, form, TIME_FIELDS)
        return back_to("public.time", therapist=form.therapist.data)
    journey.keep(TIME, {"therapist": form.therapist.data, "slot": form.slot.data,
                        "waitlist": bool(form.waitlist.data) and form.slot.data == NO_SLOT})
    return onwards("public.about")


@when_limited("public.time")
def time_when_limited(message: str) -> str | None:
    if eligibility_answers() is None or intake.pause_message() is not None:
        return None
    therapists = bookable_therapist_cards()
    form = TimeForm()  # the posted answers, not judged
    form.therapist.data = therapist_choice(form.therapist.data, therapists)
    form.form_errors.append(message)
    return render_time(form, therapists, fresh=False)


# -- step 3: about you ---------------------------------------------------------------

def about_form(therapists: Sequence) -> AboutForm:
    choice = (journey.answers(TIME) or {}).get("therapist", "any")
    return step_form(AboutForm, ABOUT, journey.answers(ABOUT),
                     video_offered=video_offered(choice, therapists))


@bp.route("/consultation/about", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def about():
    if eligibility_answers() is None:
        return redirect(url_for("public.eligibility"))
    if journey.answers(TIME) is None:
        return redirect(url_for("public.time"))
    form = about_form(bookable_therapist_cards())
    if request.method == "GET":
        return render_template("public/about.html", form=form, returning=returning())
    if "use_email" in request.form:
        # The typo hint's one-click "Use …@gmail.com": the address replaced, and the
        # page shown again with what still needs fixing.
        journey.keep_sent(ABOUT, ABOUT_FIELDS)
        sent, _ = journey.sent(ABOUT)
        sent.setlist("email", [request.form["use_email"].strip()[:journey.MAX_VALUE]])
        sent.setlist("email_as_typed", [])
        journey.session_set_sent(ABOUT, sent)
        return back_to("public.about", "#email")
    if not form.validate_on_submit():
        keep_sent_form(ABOUT, form, ABOUT_FIELDS)
        return back_to("public.about")
    journey.keep(ABOUT, {"first_name": form.first_name.data, "last_name": form.last_name.data,
                         "email": form.email.data, "email_as_typed": bool(form.email_as_typed.data),
                         "phone": national_phone(form.phone.data), "meeting": form.meeting.data})
    return onwards("public.check")


@when_limited("public.about")
def about_when_limited(message: str) -> str | None:
    if eligibility_answers() is None or intake.pause_message() is not None:
        return None
    form = AboutForm(video_offered=True)  # the posted answers, not judged
    form.form_errors.append(message)
    return render_template("public/about.html", form=form, returning=returning())


# -- step 4: check your answers --------------------------------------------------------

def summary(therapists: Sequence) -> dict:
    """The answers in words, for the check page."""
    time_answers, about_answers = journey.answers(TIME), journey.answers(ABOUT)
    chosen = next((t for t in therapists if str(t.id) == time_answers["therapist"]), None)
    start = slot_start(time_answers["slot"])
    return {
        "eligibility": journey.answers(ELIGIBILITY), "time": time_answers,
        "about": about_answers, "therapist": chosen, "meetings": MEETINGS,
        "when": format_slot_long(start, language=current_language()) if start else None,
    }


def slot_start(value: str):
    """A kept time's start, or None for "none of these times work"."""
    return None if value == NO_SLOT else parse_slot_value(value)


def step_still_valid(step: str, form_class, fields: tuple[str, ...], **kwargs) -> bool:
    """Judge a kept step again (a therapist may have stopped offering video since);
    when it fails, keep it as sent so its page shows what needs fixing."""
    kept = journey.answers(step) or {}
    data = MultiDict()
    for name in fields:
        value = kept.get(name)
        if isinstance(value, bool):
            value = "y" if value else None
        if value not in (None, ""):
            data.add(name, value)
    form = form_class(formdata=data, meta={"csrf": False}, **kwargs)
    if form.validate():
        return True
    journey.session_set_sent(step, data)
    return False


@bp.route("/consultation/check", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@open_intake
def check():
    if (missing := first_missing_step()) is not None:
        return missing
    therapists = bookable_therapist_cards()
    form = step_form(CheckForm, CHECK, journey.answers(CHECK))
    if request.method == "GET":
        form.form_token.data = journey.value("token") or journey_token()
        return render_template("public/check.html", form=form, **summary(therapists),
                               slot_taken=journey.sent(CHECK)[1] == "slot_taken")
    if (done := resubmitted(form)) is not None:
        return done
    if not form.validate_on_submit():
        keep_sent_form(CHECK, form, CHECK_FIELDS)
        return redirect(url_for("public.check"))
    journey.keep(CHECK, {"consent_privacy": True, "ack_not_emergency": True})
    choice = journey.answers(TIME)["therapist"]
    if choice != therapist_choice(choice, therapists):
        journey.drop(TIME)
        journey.set_notice(TIME, "therapist_gone")
        return redirect(url_for("public.time", therapist="any", **{"from": CHECK}) + "#times")
    if not step_still_valid(TIME, TimeForm, TIME_FIELDS):
        return redirect(url_for("public.time", **{"from": CHECK}))
    if not step_still_valid(ABOUT, AboutForm, ABOUT_FIELDS,
                            video_offered=video_offered(choice, therapists)):
        return redirect(url_for("public.about", **{"from": CHECK}))
    return submit(form)


def journey_token() -> str:
    token = issue_form_token(already_filled=True)
    journey.set_value("token", token)
    return token


def resubmitted(form: CheckForm):
    """The answer to a check page whose one-time token was used already (a double
    click, Back then send). It depends only on that token's request, never on what was
    sent now, so replaying a token tells nothing about another address."""
    token = read_form_token(form.form_token.data)
    existing = consultations.find_by_submission_token(token[0]) if token else None
    if existing is None:
        return None
    if existing.is_pending:
        session[PENDING_KEY] = existing.public_id
        return redirect(url_for("public.verify"))
    journey.set_notice(CHECK, "used")
    journey_token()
    return redirect(url_for("public.check"))


def submit(form: CheckForm):
    token = read_form_token(form.form_token.data)
    if token is None:
        journey.set_notice(CHECK, "expired")
        journey_token()
        return redirect(url_for("public.check"))
    if isinstance(form.website.data, str) and form.website.data.strip():
        # Stored nothing; the same next page a person gets, with nothing to verify.
        session.pop(PENDING_KEY, None)
        return redirect(url_for("public.verify"))
    if looks_automated(token[1], ""):
        # Faster than a person: "please try again", and the next try is not held back.
        journey.set_notice(CHECK, "too_fast")
        journey_token()
        return redirect(url_for("public.check"))
    return book(token[0])


def request_details(nonce: str) -> consultations.RequestDetails:
    place, when, who = (journey.answers(ELIGIBILITY), journey.answers(TIME),
                        journey.answers(ABOUT))
    phone = Phone.parse(who["phone"]).e164  # as stored; kept only once it passed the form
    start = slot_start(when["slot"])
    return consultations.RequestDetails(
        first_name=who["first_name"], last_name=who["last_name"], email=who["email"],
        phone=phone, preferred_contact=None, meeting=who["meeting"],
        state=zip_state(place["zip_code"]) or "", zip_code=place["zip_code"],
        ca_resident=True, in_california=True, adult=True,
        therapist_choice=when["therapist"], slot_start=start,
        waitlist=bool(when.get("waitlist")),  # kept only without a time (consultations.py)
        submission_token=nonce, language=current_language(),
        network_key=network_key(request.remote_addr, current_app.config["SECRET_KEY"]),
    )


def book(nonce: str):
    """Store the pending request and queue its email; the next page is the same
    whether the address had a request already or not (see portal.booking.verification)."""
    now = datetime.now(UTC)
    try:
        with writing():  # on SQLite: the checks and the insert hold the write lock together
            verification.release_expired(now)
            previous = own_pending(lock=True)
            if previous is not None:  # back from "change my email": the new answers replace it
                verification.drop(previous, now=now)
            consultation = consultations.create_request(request_details(nonce), now=now)
            # Read before COMMIT expires it: once the request is stored, a connection lost
            # on the way to the next page must not tell the visitor it failed.
            public_id = consultation.public_id
    except consultations.SlotTaken:
        journey.set_notice(CHECK, "slot_taken")
        return redirect(url_for("public.check"))
    except consultations.UnknownTherapist:
        journey.set_notice(TIME, "therapist_gone")
        return redirect(url_for("public.time", therapist="any", **{"from": CHECK}) + "#times")
    except holds.TooManyHolds:  # asks for "None of these times work" instead, or a call
        journey.set_notice(TIME, "too_many_holds")
        return redirect(url_for("public.time", **{"from": CHECK}) + "#times")
    except consultations.NotEligible:
        return redirect(url_for("public.eligibility"))
    session[PENDING_KEY] = public_id
    journey_token()  # a new request from these answers (a changed email) needs a new one
    return redirect(url_for("public.verify"))


@when_limited("public.check")
def check_when_limited(message: str) -> str | None:
    if first_missing_step() is not None or intake.pause_message() is not None:
        return None
    form = CheckForm()  # the posted answers, not judged; the unused form token stays
    form.form_errors.append(message)
    return render_template("public/check.html", form=form,
                           **summary(bookable_therapist_cards()))
