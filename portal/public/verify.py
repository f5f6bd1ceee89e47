"""Step 3: the visitor confirms the email address with the code sent to it.

The pending request is found through the signed session (its public id), never
through anything in the URL. Every answer here is the same whether the address
already had a request or not: see portal.booking.verification.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext

from portal.booking import consultations, verification
from portal.booking.scheduling import format_time
from portal.i18n import current_language
from portal.i18n import lazy_gettext as _l
from portal.public import journey
from portal.public.forms import VerifyForm
from portal.public.messages import CSRF_MESSAGE_NO_ANSWERS, friendly_csrf_error
from portal.public.rate_limits import limit_attempts
from portal.public.views import PENDING_KEY, bp, open_intake, own_pending
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import flash_when_saved, writing

NO_MORE_CODES_MESSAGE = _l("We've sent as many new codes as we can. Check your spam or junk "
                           "folder, or change your email address.")


def wrong_code_message(tries_left: int) -> str:
    return ngettext("That code doesn't match. Check that it's the code in our most recent "
                    "email. You have %(num)s more try.",
                    "That code doesn't match. Check that it's the code in our most recent "
                    "email. You have %(num)s more tries.", tries_left)


# When this browser's pending request runs out: kept beside its public id, so that a
# request found gone before then is known to have ended some other way (another
# tab's fifth wrong code, or its right one) rather than to have timed out.
HOLD_KEY = "pending_hold"


def finish(template: str):
    """The end of a pending request without a confirmation: forget it in the session."""
    session.pop(PENDING_KEY, None)
    session.pop(HOLD_KEY, None)
    return render_template(template)


def remember_hold(pending) -> None:
    until = verification.expires_at(pending)
    hold = {"id": pending.public_id, "until": int(until.timestamp())} if until else None
    if hold is not None and session.get(HOLD_KEY) != hold:
        session[HOLD_KEY] = hold


def ended(now: datetime):
    """This browser's pending request is no longer pending: say what happened. Another
    tab's right code made it a request (its confirmation page); gone before its hold
    ran out, it was dropped by too many wrong codes (in tabs sent at once, only one
    counted the fifth); otherwise it timed out."""
    public_id, hold = session.get(PENDING_KEY), session.get(HOLD_KEY)
    if isinstance(public_id, str) and public_id:
        verified = consultations.find_by_public_id(public_id)
        if verified is not None and not verified.is_pending:
            session.pop(PENDING_KEY, None)
            session.pop(HOLD_KEY, None)
            journey.forget()
            return redirect(url_for("public.confirmed", public_id=public_id))
        if (isinstance(hold, dict) and hold.get("id") == public_id
                and isinstance(hold.get("until"), int) and now.timestamp() < hold["until"]):
            return finish("public/verify_too_many.html")
    return finish("public/verify_expired.html")


def token_refused(form: VerifyForm) -> bool:
    """Whether the CSRF token failed (absent when CSRF is switched off)."""
    token = getattr(form, "csrf_token", None)
    return bool(token is not None and token.errors)


def render_verify(form: VerifyForm, pending):
    if pending is None:  # gone meanwhile (another tab's fifth wrong code, the hold)
        return ended(datetime.now(UTC))
    remember_hold(pending)
    friendly_csrf_error(form, CSRF_MESSAGE_NO_ANSWERS)
    until = verification.expires_at(pending)
    return render_template("public/verify.html", form=form, email=pending.email,
                           until=f"{format_time(until, current_language())} PT" if until else None)


@bp.route("/consultation/verify", methods=["GET", "POST"])
@rerender_on_csrf_error
@limit_attempts
@open_intake
def verify():
    """Nothing changes before the form (and so its CSRF token) has been checked."""
    now = datetime.now(UTC)
    form = VerifyForm()
    if request.method == "GET":
        pending = own_pending()
        if pending is None:
            return ended(now)
        # A GET changes nothing; the sender loop (or the next POST) deletes it.
        expired = (verification.expires_at(pending) or now) <= now
        return render_template("public/verify_expired.html") if expired \
            else render_verify(form, pending)
    public_id = session.get(PENDING_KEY)
    try:
        with writing():  # the tries and the status are read and changed under the write lock
            response = check_code(form, now)
    except verification.NoMoreCodes:
        form.code.errors = []
        form.form_errors.append(NO_MORE_CODES_MESSAGE)
        return render_verify(form, own_pending())
    except verification.WrongCode as wrong:  # the wrong try counts: kept, see KeepsChanges
        form.code.errors = [wrong_code_message(wrong.tries_left)]
        return render_verify(form, own_pending())
    except verification.TooManyTries:
        return finish("public/verify_too_many.html")
    except verification.AlreadyHasRequest:
        journey.forget()
        return finish("public/verify_already.html")
    except verification.Expired:
        return finish("public/verify_expired.html")
    if response is not None:
        return response
    session.pop(PENDING_KEY, None)
    journey.forget()
    return redirect(url_for("public.confirmed", public_id=public_id))


def check_code(form: VerifyForm, now: datetime):
    """The POST, under the write lock: a page when nothing was confirmed (nothing is
    kept then but a new code sent), None once the code was right; an outcome that
    ends the request is raised (verification's errors)."""
    pending = own_pending(lock=True)
    if pending is None:
        return ended(now)
    expired = (verification.expires_at(pending) or now) <= now
    valid = form.validate_on_submit()
    if token_refused(form):
        form.code.errors = []
        return render_verify(form, pending)
    if expired:
        verification.drop(pending, now=now)
        raise verification.Expired()  # kept: the dropped request stays dropped
    if "change_email" in request.form:
        return redirect(url_for("public.about", **{"from": "check"}) + "#email")
    if "resend" in request.form:
        verification.resend(pending, now=now)
        flash_when_saved(gettext("We've sent a new code. Only the newest code works."),
                         "success")
        return redirect(url_for("public.verify"))
    if not valid:
        return render_verify(form, pending)
    verification.confirm(pending, form.code.data, now=now)
    return None
