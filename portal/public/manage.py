"""The client's own page for a booking, reached from the signed link in their email.

Mail scanners open links, so a GET here never changes anything: cancelling and
picking another time are POSTs from these pages. Cancelling asks first (GOV.UK's
"confirm" pattern): the manage page links to a page of its own that says what
cancelling means and takes an optional reason, which reaches staff as an internal
note on the request (audited as any note) and never any email. As in the request flow, a POST
runs in one write transaction (``writes_on_post``), begun before it reads what it changes.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext

from portal import i18n
from portal.booking import consultations, request_status, waitlist
from portal.booking.availability import therapists_for_reschedule
from portal.links import public_id_from_manage_token
from portal.models import CLIENT_CANCEL_NOTE_HEADING, ConsultationRequest
from portal.public.forms import CancelForm, PrepareForm, RescheduleForm
from portal.public.messages import (
    CSRF_MESSAGE_NO_ANSWERS,
    SLOT_TAKEN_MESSAGE,
    friendly_csrf_error,
)
from portal.public.prepare import TEXTS_STOPPED, prepare_data, sent_form
from portal.public.rate_limits import limit_posts, when_limited
from portal.public.slot_choices import slot_options, therapist_choice
from portal.public.views import bp, describe, invalid_link
from portal.texts import consent as text_consent
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import Undo, flash_when_saved, writes_on_post


def consultation_for(token: str) -> ConsultationRequest | None:
    """The request a manage link is for; never a pending one (no link is sent for it)."""
    public_id = public_id_from_manage_token(token)
    consultation = consultations.find_by_public_id(public_id) if public_id is not None else None
    if consultation is None or consultation.is_pending:
        return None
    i18n.follow_request(consultation.language)
    return consultation


# How an internal note from the cancel page starts, so staff see who wrote it.


@bp.get("/manage/<token>")
def manage(token: str):
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    form = None
    if consultation.is_open:  # answers sent with errors from here, else those stored
        form = sent_form(consultation.public_id)
        if form is None:
            form = PrepareForm(formdata=None, data=prepare_data(consultation))
    return render_template("public/manage.html", token=token, prepare_form=form,
                           texts_stopped=TEXTS_STOPPED if text_consent.stopped(consultation)
                           else None,
                           on_waitlist=waitlist.is_waiting(consultation), **describe(consultation))


def render_cancel(token: str, consultation: ConsultationRequest, form: CancelForm):
    # The reason is kept, so the usual "everything you typed is still here" applies.
    friendly_csrf_error(form)
    return render_template("public/manage_cancel.html", token=token, form=form,
                           **describe(consultation))


@bp.route("/manage/<token>/cancel", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@writes_on_post
def manage_cancel(token: str):
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    if not consultation.is_open:  # cancelled already (another tab), or over
        return redirect(url_for("public.manage", token=token))
    form = CancelForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_cancel(token, consultation, form)
    if consultation.is_open and consultations.cancel_booking(consultation, by="client",
                                                       actor="client"):
        if form.reason.data:
            note = f"{CLIENT_CANCEL_NOTE_HEADING}\n{form.reason.data}"
            request_status.add_note(consultation, note, actor="client")
        flash_when_saved(gettext("Your consultation has been canceled. We've let your "
                                 "therapist know."), "success")
    return redirect(url_for("public.manage", token=token))


@when_limited("public.manage_cancel")
def cancel_when_limited(message: str) -> str | None:
    token = (request.view_args or {}).get("token", "")
    consultation = consultation_for(token)
    if consultation is None or not consultation.is_open:
        return None
    form = CancelForm()  # the reason as typed
    form.form_errors.append(message)
    return render_cancel(token, consultation, form)


@when_limited("public.manage_reschedule")
def reschedule_when_limited(message: str) -> str | None:
    token = (request.view_args or {}).get("token", "")
    consultation = consultation_for(token)
    if consultation is None or not consultation.is_open:
        return None
    therapists = therapists_for_reschedule(consultation)
    form = RescheduleForm()
    choice = reschedule_choice(consultation, form.therapist.data, therapists)
    form.therapist.data = choice
    form.form_errors.append(message)
    return render_reschedule(token, consultation, form, choice, therapists)


def reschedule_choice(consultation: ConsultationRequest, wanted: object, therapists) -> str:
    if wanted == "any" or consultation.therapist_id is None:
        return "any"
    return therapist_choice(str(consultation.therapist_id), therapists)


def render_reschedule(token, consultation, form, choice, therapists):
    friendly_csrf_error(form, CSRF_MESSAGE_NO_ANSWERS)
    days = slot_options(choice, therapists, leave_out=consultation.starts_at)
    return render_template("public/reschedule.html", token=token, form=form, choice=choice,
                           days=days, **describe(consultation))


@bp.route("/manage/<token>/reschedule", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@writes_on_post
def manage_reschedule(token: str):
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    if not consultation.is_open:
        return redirect(url_for("public.manage", token=token))
    therapists = therapists_for_reschedule(consultation)
    # On a GET the choice comes from the link's query string, on a POST from the form.
    form = RescheduleForm(therapist=request.args.get("therapist"))
    choice = reschedule_choice(consultation, form.therapist.data, therapists)
    form.therapist.data = choice  # the page's hidden input: the times it shows
    if form.validate_on_submit():
        try:
            consultations.reschedule_booking(consultation, form.new_start, actor="client",
                                       any_therapist=choice == "any", therapists=therapists)
        except (consultations.SlotTaken, consultations.BookingClosed):
            raise Undo(lambda: reschedule_refused(token, form, choice)) from None
        flash_when_saved(gettext("Your consultation has been moved. We've emailed you the new "
                                 "time."), "success")
        return redirect(url_for("public.manage", token=token))
    return render_reschedule(token, consultation, form, choice, therapists)


def reschedule_refused(token: str, form: RescheduleForm, choice: str):
    """The time was taken meanwhile (or the request closed): read it again."""
    consultation = consultation_for(token)
    if not consultation.is_open:  # cancelled meanwhile, from another tab
        return redirect(url_for("public.manage", token=token))
    form.slot.errors = [SLOT_TAKEN_MESSAGE]
    return render_reschedule(token, consultation, form, choice,
                             therapists_for_reschedule(consultation))
