"""Changes to one request from its detail page: status, notes, reassignment,
cancel and reschedule on the client's behalf, and deletion.

Each view validates, calls one domain function (:mod:`portal.booking.request_status`,
:mod:`portal.booking.consultations`, :mod:`portal.booking.retention`; they queue the
emails and write the audit lines) and redirects back. The blueprint runs every POST in one write
transaction (portal.admin.blueprint): committed when the view returns, undone
when a refused change raises Undo with the page to show instead.
"""

from __future__ import annotations

from functools import partial

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from portal.admin.access import actor, admin_required, visible_request_or_abort
from portal.admin.blueprint import bp
from portal.admin.declines import can_decline, render_decline, told_refused
from portal.admin.forms import (
    DeclineForm,
    NoteForm,
    ReassignForm,
    RescheduleForm,
    StatusForm,
    options,
)
from portal.admin.requests import reassign_choices, render_detail
from portal.booking import consultations, rebooking, request_status, retention
from portal.booking.availability import therapists_for_reschedule
from portal.booking.scheduling import format_slot_long, parse_slot_value, slot_value
from portal.booking.statuses import RequestStatus
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import UNDELIVERED
from portal.messages.transport import remove_sink_copies_after_commit
from portal.web.transaction import Undo, flash_when_saved


def back_to(consultation):
    return redirect(url_for("admin.request_detail", request_id=consultation.id))


def saved(message: str, consultation):
    """Say so once the change is committed, and go back to the request."""
    flash_when_saved(message, "info")
    return back_to(consultation)


@bp.post("/requests/<int:request_id>/status", endpoint="request_status")
def request_status_change(request_id: int):
    consultation = visible_request_or_abort(request_id)
    form = StatusForm()
    # Any staff status passes the form; the table in portal.booking.request_status says why a
    # move the page did not offer (say, from a stale tab) can't be made.
    form.status.choices = options((s, s) for s in request_status.STAFF_STATUSES)
    if not form.validate_on_submit():
        return render_detail(consultation, status_form=form)
    if form.status.data == RequestStatus.NOT_A_FIT and can_decline(consultation):
        # Its own page: whether to tell the client, and a preview (the note comes along).
        return render_decline(consultation, DeclineForm(formdata=None, note=form.note.data))
    try:
        changed = request_status.change_status(consultation, form.status.data,
                                               actor=actor(), note=form.note.data)
    except request_status.StatusChangeRefused as refused:
        form.status.errors.append(refused.message)
        raise Undo(lambda: render_detail(consultation, status_form=form)) from None
    said = f"Status is now “{consultation.status_label}”."
    if changed and consultation.status == RequestStatus.NO_SHOW and form.no_show_note.data:
        rebooking.queue_missed_note(consultation, actor=actor())
        said += " We've queued a gentle note to the client with a link to book again."
    return saved(said, consultation)


@bp.post("/requests/<int:request_id>/notes")
def request_note(request_id: int):
    consultation = visible_request_or_abort(request_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return render_detail(consultation, note_form=form)
    request_status.add_note(consultation, form.body.data, actor=actor())
    return saved("Note added.", consultation)


@bp.post("/requests/<int:request_id>/reassign")
@admin_required
def request_reassign(request_id: int):
    consultation = visible_request_or_abort(request_id)
    form = ReassignForm()
    form.therapist_id.choices = options(reassign_choices())
    if not form.validate_on_submit():
        return render_detail(consultation, reassign_form=form)
    try:
        consultations.reassign_therapist(consultation, form.therapist_id.data, actor=actor())
    except consultations.SlotTaken:
        form.therapist_id.errors.append(
            "That therapist already has a consultation at this time. "
            "Choose someone else, or reschedule first.")
        raise Undo(lambda: render_detail(consultation, reassign_form=form)) from None
    except (consultations.BookingClosed, consultations.UnknownTherapist):
        form.therapist_id.errors.append(
            "This request can't be reassigned: it is closed or the therapist is inactive.")
        raise Undo(lambda: render_detail(consultation, reassign_form=form)) from None
    return saved("Therapist changed. They will get a notice by email.", consultation)


@bp.post("/requests/<int:request_id>/cancel")
def request_cancel(request_id: int):
    consultation = visible_request_or_abort(request_id)
    response = back_to(consultation)
    try:
        cancelled = request_status.change_status(consultation, RequestStatus.CANCELLED,
                                                 actor=actor())
    except request_status.StatusChangeRefused as refused:
        raise Undo(partial(told_refused, refused.message, response)) from None
    if cancelled:
        return saved("The consultation is canceled. The client and therapist will be told.",
                     consultation)
    return response  # cancelled already (a double click): nothing more to say


@bp.route("/requests/<int:request_id>/reschedule", methods=["GET", "POST"])
def request_reschedule(request_id: int):
    consultation = visible_request_or_abort(request_id)
    if not consultation.is_open:
        flash("This request is closed, so its time can't change.", "error")
        return back_to(consultation)
    choice = consultation.therapist_id or "any"
    slots = consultations.available_slots(choice, exclude_request_id=consultation.id,
                                    therapists=therapists_for_reschedule(consultation))
    form = RescheduleForm()
    form.slot.choices = options((slot_value(s), format_slot_long(s)) for s in slots)
    if form.validate_on_submit():
        try:
            consultations.reschedule_booking(consultation, parse_slot_value(form.slot.data),
                                       actor=actor(), free_times=slots)
        except (consultations.SlotTaken, consultations.BookingClosed):
            form.slot.errors.append("That time was just taken. Choose another time.")
            raise Undo(lambda: render_template("admin/request_reschedule.html",
                                               consultation=consultation, form=form)) from None
        return saved("The consultation has a new time. The client and therapist will be "
                     "told.", consultation)
    return render_template("admin/request_reschedule.html", consultation=consultation,
                           form=form)


@bp.route("/requests/<int:request_id>/delete", methods=["GET", "POST"])
@admin_required
def request_delete(request_id: int):
    consultation = visible_request_or_abort(request_id)
    refusal = retention.StillBooked.message if retention.is_still_booked(consultation) else None
    posted = request.method == "POST"
    if refusal is None and posted:
        reference = consultation.reference
        message_ids = retention.delete_request(consultation, actor=actor())
        remove_sink_copies_after_commit(db.session, message_ids)
        flash_when_saved(f"Request {reference} was deleted.", "info")
        return redirect(url_for("admin.request_list"))
    status = 409 if refusal and posted else 200
    unsent = db.session.scalar(select(func.count(OutboxEmail.id)).where(
        OutboxEmail.request_id == consultation.id,
        OutboxEmail.status.in_(UNDELIVERED)))
    return render_template("admin/request_delete.html", consultation=consultation,
                           refusal=refusal, unsent=unsent), status
