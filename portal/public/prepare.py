"""The confirmation page (step 6) and its optional "Help us prepare" form, which the
manage page offers too. Nothing on it is required: an answer left out stays NULL,
staff read "not answered", and the contact rules take the safe side (no voicemail,
no texts) until the client says otherwise.

Answers that need fixing are Post/Redirect/Get like the journey's: the POST keeps what
was sent in the session, compressed and encrypted (portal.public.journey's key), for an
hour at most, and redirects; the GET shows it with its messages. Only this form's
fields are kept, each bounded; a message too big for a cookie even compressed (several
thousand characters that don't compress) is the one thing not kept, and the page says
so. Nothing is stored in the database until the answers are valid.
"""

from __future__ import annotations

import json
import zlib

from cryptography.fernet import InvalidToken
from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from portal import links
from portal.booking import consultations, next_step
from portal.i18n import lazy_gettext as _l
from portal.messages.addresses import masked_address
from portal.models import ConsultationRequest
from portal.public.forms import PrepareForm
from portal.public.journey import cipher
from portal.public.messages import CSRF_MESSAGE, friendly_csrf_error
from portal.public.rate_limits import limit_attempts
from portal.public.views import bp, describe, invalid_link
from portal.texts import consent as text_consent
from portal.texts import outgoing as text_outgoing
from portal.web.errors import rerender_on_csrf_error
from portal.web.transaction import flash_when_saved, writes_on_post

MESSAGE_DROPPED = _l("Your message was too long for us to keep while you fix the other "
                     "answers. Please write it again, in 2,000 characters or fewer")


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


# The session key of answers sent with errors: {"id": public id, "data": {...}, ...}.
SENT = "prepare_sent"
SENT_MAX_AGE_SECONDS = 3600
PREPARE_FIELDS = ("preferred_name", "preferred_contact", "ok_to_text", "ok_to_voicemail",
                  "interests", "message", "payment")
# Bounds on what is kept: more values or characters than any valid answer has, so the
# messages shown are the same, and a cookie well under a browser's 4 KB.
MAX_VALUES, MAX_CHARS, MAX_TOKEN = 12, 6000, 2800

# Saying yes on the web can't undo a STOP: the number must reply START (carrier rules).
TEXTS_STOPPED = _l("You replied STOP to one of our texts, so we can't text this number. "
                   "To get our texts again, reply START to that text.")


def keep_sent(public_id: str, form: PrepareForm) -> None:
    """Keep this POST's answers (only the form's fields) for the GET that shows them."""
    data = {name: [value[:MAX_CHARS] for value in request.form.getlist(name)[:MAX_VALUES]]
            for name in PREPARE_FIELDS if name in request.form}
    kept = {"id": public_id, "data": data,
            "csrf": bool(getattr(form, "csrf_token", None) and form.csrf_token.errors)}
    token = _seal(kept)
    if len(token) > MAX_TOKEN:
        data.pop("message", None)
        token = _seal({**kept, "message_dropped": True})
    session[SENT] = token


def _seal(kept: dict) -> str:
    packed = zlib.compress(json.dumps(kept, separators=(",", ":")).encode(), 9)
    return cipher().encrypt(packed).decode()


def sent_form(public_id: str) -> PrepareForm | None:
    """The answers kept for this request's form, judged again (so the messages are in
    the visitor's language), or None."""
    token = session.get(SENT)
    if not isinstance(token, str):
        return None
    try:
        kept = json.loads(zlib.decompress(cipher().decrypt(token.encode(),
                                                            ttl=SENT_MAX_AGE_SECONDS)))
    except (InvalidToken, ValueError, zlib.error):
        session.pop(SENT, None)
        return None
    if not isinstance(kept, dict) or kept.get("id") != public_id \
            or not isinstance(kept.get("data"), dict):
        return None
    form = PrepareForm(formdata=MultiDict(
        [(name, value) for name, values in kept["data"].items() if name in PREPARE_FIELDS
         and isinstance(values, list) for value in values if isinstance(value, str)]))
    form.validate()
    if getattr(form, "csrf_token", None) is not None:
        form.csrf_token.errors = []  # the page gets a fresh token; only the answers count
    if kept.get("csrf"):
        form.form_errors.append(CSRF_MESSAGE)
    if kept.get("message_dropped"):
        form.message.errors = [*form.message.errors, MESSAGE_DROPPED]
    return form


def render_prepare(consultation: ConsultationRequest, form: PrepareForm):
    friendly_csrf_error(form)
    return render_template("public/prepare.html", prepare_form=form, back=None,
                           prepared=answered(consultation), **describe(consultation))


@bp.get("/consultation/confirmed/<public_id>")
def confirmed(public_id: str):
    consultation = consultations.find_by_public_id(public_id)
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
        consultation = consultations.find_by_public_id(public_id)
        if not open_for_answers(consultation):
            return invalid_link()
        form = sent_form(public_id)
        if form is None:
            form = PrepareForm(formdata=None)
        return render_prepare(consultation, form)
    consultation = consultations.find_by_public_id(public_id)
    if not open_for_answers(consultation):
        return invalid_link()
    form = PrepareForm()
    if not form.validate_on_submit():
        keep_sent(public_id, form)  # nothing stored: the answers wait in the session
        return back_to_form(consultation, "#prepare")
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
    session.pop(SENT, None)
    flash_when_saved(gettext("Thank you. Your therapist will read your answers before you "
                             "talk."), "success")
    if form.sms_consent.data and text_consent.stopped(consultation):
        flash_when_saved(TEXTS_STOPPED)
    if request.form.get("back") == "manage":
        return redirect(url_for("public.manage", token=links.manage_token(consultation))
                        + "#prepare")
    return redirect(url_for("public.confirmed", public_id=public_id) + "#prepare")


def back_to_form(consultation: ConsultationRequest, anchor: str):
    """The page the form was sent from, to show what needs fixing."""
    if request.form.get("back") == "manage":
        return redirect(url_for("public.manage", token=links.manage_token(consultation))
                        + anchor)
    return redirect(url_for("public.prepare", public_id=consultation.public_id))
