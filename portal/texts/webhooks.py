"""Twilio's webhooks and the short link in texts.

``POST /sms/inbound`` (a text to our number) and ``POST /sms/status`` (a delivery
report) answer only requests signed for this site's public address with
``TWILIO_AUTH_TOKEN`` (``X-Twilio-Signature``, Twilio's own algorithm); anything else
gets 403 and one log line that names the path and never the body. They carry no CSRF
token (Twilio's signature stands in for it) and each commits its own short write.

``GET /t/<token>``: the short signed link in a text, redirecting to the request's
manage page (opening it changes nothing, like every manage link).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, redirect, request
from sqlalchemy import select

from portal import links
from portal.extensions import csrf, db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OutboxState
from portal.models import ConsultationRequest, utcnow
from portal.texts import backends, compose, consent, numbers
from portal.texts.delivery import fail_for_good
from portal.texts.models import TextMessage
from portal.texts.states import FINAL, NOT_ARRIVED, REPORTED, TextState
from portal.web.transaction import writing

log = logging.getLogger("portal.texts")
bp = Blueprint("texts", __name__)
csrf.exempt(bp)

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO"}


def keyword(body: str) -> str | None:
    """"stop", "start" or "help" for a text that is just that keyword, else None."""
    word = (body or "").strip().strip(".!").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def signed_by_twilio() -> bool:
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature")
    if not token or not signature:
        return False
    from twilio.request_validator import RequestValidator

    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    query = request.query_string.decode("latin-1")
    url = base + request.path + (f"?{query}" if query else "")
    return RequestValidator(token).validate(url, request.form, signature)


def _refuse():
    log.warning("sms webhook %s refused: no valid X-Twilio-Signature", request.path)
    abort(403)


def twiml(message: str | None = None) -> Response:
    from twilio.twiml.messaging_response import MessagingResponse

    answer = MessagingResponse()
    if message:
        answer.message(message)
    return Response(str(answer), mimetype="text/xml")


@bp.post("/sms/inbound")
def inbound():
    if not signed_by_twilio():
        _refuse()
    number = numbers.e164(request.form.get("From", ""))
    if number is None:
        return twiml()
    kind = keyword(request.form.get("Body", ""))
    with writing():
        if kind == "stop":
            consents = consent.stop(number)
        elif kind == "start":
            consents = consent.start(number)
        else:
            consents = consent.consents_for(number)
            for given in consents:
                if kind == "help":
                    consent.add_event(given.request_id, "help", "text", number)
                else:  # shown to staff, never answered automatically
                    consent.add_event(given.request_id, "message", "text", number,
                                      body=request.form.get("Body", "")[:1600])
        language = _language_of(consents)
    log.info("sms inbound outcome=%s requests=%s", kind or "message", len(consents))
    if kind is None:
        return twiml()
    return twiml(compose.reply(kind, language))


def _language_of(consents) -> str:
    if not consents:
        return "en"
    consultation = db.session.get(ConsultationRequest, consents[0].request_id)
    return consultation.language if consultation is not None else "en"


@bp.post("/sms/status")
def status():
    if not signed_by_twilio():
        _refuse()
    sid = request.form.get("MessageSid", "")
    reported = REPORTED.get(request.form.get("MessageStatus", "").lower())
    code = request.form.get("ErrorCode") or None
    with writing():
        text = db.session.scalar(select(TextMessage).where(TextMessage.provider_id == sid)) \
            if sid else None
        if text is None or reported is None:
            return Response(status=204)
        _record_report(text, reported, code)
    log.info("sms status outbox id=%s state=%s", text.outbox_id, text.state)
    return Response(status=204)


def _record_report(text: TextMessage, reported: TextState, code: str | None) -> None:
    if text.state not in FINAL:  # reports may arrive out of order
        text.state, text.updated_at = reported, utcnow()
    if reported in NOT_ARRIVED:
        text.error_code = code[:10] if code else None
        row = db.session.get(OutboxEmail, text.outbox_id)
        row.status = OutboxState.FAILED
        row.last_error = f"Not delivered: {backends.describe_code(code)}"[:500]
        if code and code.isdigit() and int(code) == backends.UNSUBSCRIBED:
            given = db.session.get(ConsultationRequest, text.request_id)
            held = consent.consent_of(given) if given is not None else None
            if held is not None:
                consent.stop(held.phone, source="carrier", action="unsubscribed")
        fail_for_good(row, code)


@bp.get("/t/<token>")
def short_link(token: str):
    from portal.public.views import invalid_link

    request_id = compose.request_id_from_token(token)
    consultation = db.session.get(ConsultationRequest, request_id) if request_id else None
    if consultation is None or not compose.token_matches(consultation, token):
        return invalid_link()
    return redirect(links.manage_url(consultation))
