"""The confirmation page (step 6) and its optional "Help us prepare" form, which the
manage page offers too. Nothing on it is required: an answer left out stays NULL,
staff read "not answered", and the contact rules take the safe side (no voicemail,
no texts) until the client says otherwise."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext

from portal import booking, links, next_step
from portal.addresses import masked_address
from portal.errors import rerender_on_csrf_error
from portal.models import ConsultationRequest
from portal.public.forms import PrepareForm
from portal.public.messages import friendly_csrf_error
from portal.public.rate_limits import limit_attempts
from portal.public.views import bp, describe, invalid_link
from portal.texts import consent as text_consent
from portal.texts import outgoing as text_outgoing
from portal.web.transaction import flash_when_saved, writes_on_post


def prepare_data(consultation: ConsultationRequest) -> dict:
    """The answers given so far, as the form's data."""
    def yes_no(answer: bool | None) -> str | None:
        return None if answer is None else ("yes" if answer else "no")

    return {"preferred_name": consultation.preferred_name or "",
            "preferred_contact": consultation.preferred_contact,
            "ok_to_text": yes_no(consultation.ok_to_text),
            "ok_to_voicemail": yes_no(consultation.ok_to_voicemail),
            "interests": consultation.interest_keys, "message": consultation.message,
            "payment": consultation.payment,
            "sms_consent": text_consent.has_consent(consultation) or None}


def open_for_answers(consultation: ConsultationRequest | None) -> bool:
    return consultation is not None and not consultation.is_pending and consultation.is_open


def answered(consultation: ConsultationRequest) -> bool:
    return any(value not in (None, "", []) for value in prepare_data(consultation).values())


def render_confirmed(consultation: ConsultationRequest):
    return render_template(
        "public/confirmed.html", sent_to=masked_address(consultation.email),
        next_step=next_step.sentence(consultation, html=True),
        video_link=next_step.video_link(consultation),
        may_prepare=open_for_answers(consultation), prepared=answered(consultation),
        **describe(consultation))


def render_prepare(consultation: ConsultationRequest, form: PrepareForm):
    friendly_csrf_error(form)
    return render_template("public/prepare.html", prepare_form=form, back=None,
                           prepared=answered(consultation), **describe(consultation))


@bp.get("/consultation/confirmed/<public_id>")
def confirmed(public_id: str):
    consultation = booking.find_by_public_id(public_id)
    if consultation is None or consultation.is_pending:
        return invalid_link()
    return render_confirmed(consultation)


@bp.route("/consultation/prepare/<public_id>", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_attempts
@writes_on_post
def prepare(public_id: str):
    """"Help us prepare": its page (linked from the confirmation), and saving it. Back
    to the page it was sent from: the confirmation, or the manage page (``back=manage``).
    The page shows the questions, never the answers given (it opens for anyone with its
    address and never expires; the manage page, behind its signed link, shows them)."""
    if request.method == "GET":
        consultation = booking.find_by_public_id(public_id)
        if not open_for_answers(consultation):
            return invalid_link()
        return render_prepare(consultation, PrepareForm(formdata=None))
    consultation = booking.find_by_public_id(public_id)
    if not open_for_answers(consultation):
        return invalid_link()
    form = PrepareForm()
    if not form.validate_on_submit():
        # Shown at once rather than through the session: a message of up to 2,000
        # characters would not fit in a cookie.
        return render_prepare(consultation, form)
    consultation.preferred_name = form.preferred_name.data or None
    consultation.preferred_contact = form.preferred_contact.data or None
    consultation.ok_to_text = None if not form.ok_to_text.data else form.ok_to_text.data == "yes"
    consultation.ok_to_voicemail = (None if not form.ok_to_voicemail.data
                                    else form.ok_to_voicemail.data == "yes")
    consultation.interests = ",".join(form.interests.data or [])
    consultation.message = form.message.data or ""
    consultation.payment = form.payment.data or None
    source = "manage page" if request.form.get("back") == "manage" else "prepare form"
    if text_consent.record_answer(consultation, form.sms_consent.data, source=source):
        text_outgoing.confirmation(consultation)  # "texts are on", in this transaction
    flash_when_saved(gettext("Thank you. Your therapist will read your answers before you "
                             "talk."), "success")
    if request.form.get("back") == "manage":
        return redirect(url_for("public.manage", token=links.manage_token(consultation))
                        + "#prepare")
    return redirect(url_for("public.confirmed", public_id=public_id) + "#prepare")
