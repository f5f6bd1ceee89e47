"""Booking again after a missed consultation, from the link in the gentle note
(see :mod:`portal.booking.rebooking`). The page shows the same therapist's free times;
opening it changes nothing, booking is a POST (which begins its write transaction
before it reads what it changes, as the other public POSTs do)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext

from portal import links
from portal.booking import rebooking
from portal.booking.consultations import SlotTaken
from portal.i18n import follow_request
from portal.i18n import lazy_gettext as _l
from portal.public.forms import RescheduleForm
from portal.public.messages import CSRF_MESSAGE_NO_ANSWERS, SLOT_TAKEN_MESSAGE, friendly_csrf_error
from portal.public.rate_limits import limit_posts
from portal.public.slot_choices import slot_options
from portal.public.views import bp, describe, invalid_link
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import Undo, flash_when_saved, writes_on_post

HAS_OPEN_REQUEST = _l("You already have a consultation booked with us. The email we sent "
                      "about it has a link to see or change it.")


def render_rebook(token, missed, form, status: int = 200, refusal: str | None = None):
    friendly_csrf_error(form, CSRF_MESSAGE_NO_ANSWERS)
    therapists = rebooking.therapists_for(missed)
    days = slot_options(str(therapists[0].id), therapists) if therapists else []
    return render_template("public/rebook.html", token=token, form=form, days=days,
                           therapist=therapists[0] if therapists else None,
                           refusal=refusal, **describe(missed)), status


def to_rebooking(rebooking_row):
    """The booking a link already made: its own manage page (the link's holder is
    the person it was made for)."""
    return redirect(links.manage_url(rebooking_row))


@bp.route("/rebook/<token>", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@writes_on_post
def rebook(token: str):
    missed = rebooking.missed_request_for(token)
    if missed is None:
        return invalid_link()
    follow_request(missed.language)
    existing = rebooking.rebooking_of(missed)
    if existing is not None:
        return to_rebooking(existing)
    form = RescheduleForm()
    if not form.validate_on_submit():
        return render_rebook(token, missed, form, 400 if request.method == "POST" else 200)
    try:
        new = rebooking.book_again(missed, form.new_start)
    except SlotTaken:
        form.slot.errors = [SLOT_TAKEN_MESSAGE]
        raise Undo(lambda: render_rebook(token, rebooking.missed_request_for(token), form,
                                         409)) from None
    except rebooking.AlreadyRebooked as already:
        made = already.rebooking  # ``already`` is gone once this clause ends
        raise Undo(lambda: to_rebooking(made)) from None
    except rebooking.HasOpenRequest:
        raise Undo(lambda: render_rebook(token, rebooking.missed_request_for(token), form, 409,
                                         refusal=HAS_OPEN_REQUEST)) from None
    except rebooking.TherapistUnavailable:
        raise Undo(lambda: render_rebook(token, rebooking.missed_request_for(token), form,
                                         409)) from None
    flash_when_saved(gettext("Your consultation is booked. We've emailed you the details."),
                     "success")
    return redirect(url_for("public.confirmed", public_id=new.public_id))
