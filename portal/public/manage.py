"""The client's own page for a booking, reached from the signed link in their email.

Mail scanners open links, so a GET here never changes anything: cancelling and
picking another time are POSTs from these pages.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from portal import booking
from portal.database import begin_write
from portal.errors import rerender_on_csrf_error
from portal.extensions import db
from portal.links import public_id_from_manage_token
from portal.models import ConsultationRequest
from portal.public import bp
from portal.public.forms import CancelForm, RescheduleForm
from portal.public.views import (
    SLOT_TAKEN_MESSAGE,
    friendly_csrf_error,
    limit_posts,
    slot_options,
    therapist_choice,
)
from portal.scheduling import format_slot_long


def consultation_for(token: str) -> ConsultationRequest | None:
    public_id = public_id_from_manage_token(token)
    if public_id is None:
        return None
    return db.session.scalar(
        select(ConsultationRequest).where(ConsultationRequest.public_id == public_id)
    )


def invalid_link():
    return render_template("public/link_invalid.html"), 404


def describe(consultation: ConsultationRequest) -> dict:
    start = consultation.starts_at
    return {"consultation": consultation, "when": format_slot_long(start) if start else None}


@bp.get("/manage/<token>")
def manage(token: str):
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    return render_template("public/manage.html", token=token, cancel_form=CancelForm(),
                           **describe(consultation))


@bp.post("/manage/<token>/cancel")
@limit_posts
def manage_cancel(token: str):
    begin_write()
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    wanted = CancelForm().validate_on_submit() and consultation.is_open
    if wanted and booking.cancel_booking(consultation, by="client", actor="client"):
        db.session.commit()
        flash("Your consultation has been cancelled. We've let your therapist know.", "success")
    return redirect(url_for("public.manage", token=token))


def reschedule_choice(consultation: ConsultationRequest, wanted: object) -> str:
    if wanted == "any" or consultation.therapist_id is None:
        return "any"
    return therapist_choice(str(consultation.therapist_id))


def render_reschedule(token, consultation, form, choice):
    friendly_csrf_error(form)
    options = slot_options_excluding(choice, consultation)
    return render_template("public/reschedule.html", token=token, form=form, choice=choice,
                           days=options, **describe(consultation))


def slot_options_excluding(choice: str, consultation: ConsultationRequest):
    # The booking's own time is not "free" to itself: offering it would be a no-op.
    return [(day, [(value, dt) for value, dt in times if dt != consultation.starts_at])
            for day, times in slot_options(choice)]


@bp.route("/manage/<token>/reschedule", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
def manage_reschedule(token: str):
    if request.method == "POST":
        begin_write()
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    if not consultation.is_open:
        return redirect(url_for("public.manage", token=token))
    choice = reschedule_choice(consultation, request.values.get("therapist"))
    form = RescheduleForm()
    if form.validate_on_submit():
        try:
            booking.reschedule_booking(consultation, form.new_start, actor="client",
                                       any_therapist=choice == "any")
        except booking.SlotTaken:
            db.session.rollback()
            consultation = consultation_for(token)
            form.slot.errors = [SLOT_TAKEN_MESSAGE]
        else:
            db.session.commit()
            flash("Your consultation has been moved. We've emailed you the new time.", "success")
            return redirect(url_for("public.manage", token=token))
    return render_reschedule(token, consultation, form, choice)
