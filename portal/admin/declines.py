"""Marking a request "not a fit" from its own page (GOV.UK's check-then-confirm).

Choosing "Not a fit" in the detail page's status select lands here (the internal
note typed there comes along). Staff choose whether to tell the client (yes by
default: see :mod:`portal.booking.declines`) and may add a personal line. Telling the
client always goes through a preview of the exact email; "Send" carries a signed
copy of the previewed line, so a line changed after the preview (another tab, a
crafted POST) is previewed again rather than sent unseen. Not telling changes the
status straight away. Either way the status change and the email are one
transaction.
"""

from __future__ import annotations

from functools import partial

from flask import flash, redirect, render_template, request, url_for

from portal.admin.access import actor, visible_request_or_abort
from portal.admin.blueprint import bp
from portal.admin.forms import DeclineForm
from portal.booking import declines, request_status
from portal.booking.statuses import RequestStatus
from portal.models import ConsultationRequest
from portal.signed import Signed
from portal.web.transaction import Undo, flash_when_saved

PREVIEW_SALT = "decline-preview"


def back_to(consultation: ConsultationRequest):
    return redirect(url_for("admin.request_detail", request_id=consultation.id))


def told_refused(message: str, response):
    """A refused change, undone: say why on the page ``response`` leads to."""
    flash(message, "error")
    return response


PREVIEWED = Signed(PREVIEW_SALT)


def preview_token(consultation: ConsultationRequest, line: str) -> str:
    return PREVIEWED.dumps([consultation.id, line])


def was_previewed(consultation: ConsultationRequest, line: str, token: str | None) -> bool:
    return PREVIEWED.loads(token or "") == [consultation.id, line]


def can_decline(consultation: ConsultationRequest) -> bool:
    return consultation.status != RequestStatus.NOT_A_FIT \
        and request_status.refusal(consultation, RequestStatus.NOT_A_FIT) is None


def render_decline(consultation: ConsultationRequest, form: DeclineForm, status: int = 200):
    return render_template("admin/request_decline.html", consultation=consultation,
                           form=form, preview=None), status


def render_preview(consultation: ConsultationRequest, form: DeclineForm):
    line = form.personal_line.data or ""
    form.previewed.data = preview_token(consultation, line)
    subject, text, _ = declines.preview(consultation, line)
    return render_template("admin/request_decline.html", consultation=consultation,
                           form=form, preview={"subject": subject, "text": text,
                                               "to": consultation.email})


@bp.route("/requests/<int:request_id>/not-a-fit", methods=["GET", "POST"])
def request_decline(request_id: int):
    consultation = visible_request_or_abort(request_id)
    if not can_decline(consultation):
        refused = request_status.refusal(consultation, RequestStatus.NOT_A_FIT)
        flash(refused.message if refused else "This request is already closed as not a fit.",
              "error")
        return back_to(consultation)
    form = DeclineForm()
    if request.method == "GET":
        return render_decline(consultation, form)
    if not form.validate_on_submit():
        return render_decline(consultation, form, 400)
    action = request.form.get("action")
    tell = form.tell_client.data == "yes"
    line = form.personal_line.data or ""
    if action == "edit":
        return render_decline(consultation, form)
    if tell and not (action == "send" and was_previewed(consultation, line,
                                                       form.previewed.data)):
        return render_preview(consultation, form)
    try:
        declines.decline(consultation, actor=actor(), tell_client=tell, personal_line=line,
                         note=form.note.data)
    except request_status.StatusChangeRefused as refused:
        raise Undo(partial(told_refused, refused.message, back_to(consultation))) from None
    told = "We've queued a kind email to the client with places that can help." if tell \
        else "The client was not emailed."
    flash_when_saved(f"Status is now “Not a fit”. {told}", "info")
    return back_to(consultation)
