"""The page behind a waitlist offer's link, and leaving the waitlist from the manage page.

Opening the link changes nothing (mail scanners open links): the page shows the time
and a "Book this time" button, and only that POST books it, when it is still free.
The first client to press it gets the time; the database decides between two at
once (see portal.booking.consultations). Whoever comes second sees "just taken" and stays on the
list. As elsewhere, a POST begins its write transaction before it reads.
"""

from __future__ import annotations

from flask import redirect, render_template, url_for
from flask_babel import gettext

from portal.booking import consultations, waitlist
from portal.booking.scheduling import format_slot_long
from portal.i18n import current_language, follow_request
from portal.links import manage_token
from portal.models import WaitlistOffer
from portal.public.manage import consultation_for
from portal.public.messages import CSRF_MESSAGE_NO_ANSWERS, friendly_csrf_error
from portal.public.rate_limits import limit_posts
from portal.public.views import bp, invalid_link
from portal.web.errors import rerender_on_csrf_error
from portal.web.forms import PortalForm
from portal.web.transaction import Undo, flash_when_saved, writes, writes_on_post


class OfferForm(PortalForm):
    """The "Book this time" button: nothing to fill in but the CSRF token."""


class LeaveWaitlistForm(PortalForm):
    """The "Take me off the waitlist" button on the manage page."""


def offer_state(offer: WaitlistOffer) -> str:
    """What the page can say about the offer now: "open" (bookable), "booked" (this
    client took it), "has_time" (they have another time), "closed" (no longer on the
    list, or the request is closed) or "taken"."""
    consultation = offer.request
    if consultation.starts_at is not None:
        return "booked" if consultation.starts_at == offer.starts_at else "has_time"
    if not waitlist.is_waiting(consultation):
        return "closed"
    return "open" if waitlist.still_free(offer) else "taken"


def render_offer(token: str, offer: WaitlistOffer, state: str, form: OfferForm, status=200):
    friendly_csrf_error(form, CSRF_MESSAGE_NO_ANSWERS)
    consultation = offer.request
    therapist = consultation.therapist if consultation.therapist_choice != "any" else None
    return render_template(
        "public/waitlist_offer.html", token=token, offer=offer, state=state, form=form,
        consultation=consultation, therapist=therapist,
        when=format_slot_long(offer.starts_at, language=current_language()),
        manage=url_for("public.manage", token=manage_token(consultation)),
    ), status


@bp.route("/waitlist/<token>", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_posts
@writes_on_post
def waitlist_offer(token: str):
    form = OfferForm()
    posted = form.is_submitted()
    offer = waitlist.offer_from_token(token, lock=posted)
    if offer is None or offer.request.is_pending:
        return invalid_link()
    follow_request(offer.request.language)
    state = offer_state(offer)
    if not posted or not form.validate_on_submit():
        return render_offer(token, offer, state, form)
    if state == "booked":  # a double click: the first one booked it
        return redirect(url_for("public.manage", token=manage_token(offer.request)))
    if state == "open":
        return take(token, offer, form)
    if state == "taken":
        waitlist.answered(offer, "taken")
        return render_offer(token, offer, state, form, 409)
    return render_offer(token, offer, state, form)


def take(token: str, offer: WaitlistOffer, form: OfferForm):
    """Book the offered time; "just taken" when someone was quicker."""
    consultation = offer.request
    try:
        consultations.book_open_request(consultation, offer.starts_at, actor="client")
    except (consultations.SlotTaken, consultations.BookingClosed):
        raise Undo(lambda: taken_meanwhile(token, form)) from None
    waitlist.answered(offer, "booked")
    flash_when_saved(gettext("Your consultation is booked. We've emailed you the details and a "
                             "calendar invitation."), "success")
    return redirect(url_for("public.manage", token=manage_token(consultation)))


def taken_meanwhile(token: str, form: OfferForm):
    """Someone was quicker: the offer, read again, is answered "taken"."""
    offer = waitlist.offer_from_token(token)
    if offer is None:  # the request was deleted meanwhile
        return invalid_link()
    waitlist.answered(offer, "taken")
    return render_offer(token, offer, offer_state(offer), form, 409)


@bp.post("/manage/<token>/waitlist/leave")
@limit_posts
@writes
def manage_leave_waitlist(token: str):
    consultation = consultation_for(token)
    if consultation is None:
        return invalid_link()
    form = LeaveWaitlistForm()
    if form.validate_on_submit() and waitlist.leave(consultation, actor="client"):
        flash_when_saved(gettext("You're off the waitlist. We won't email you about earlier "
                                 "times."), "success")
    return redirect(url_for("public.manage", token=token))
