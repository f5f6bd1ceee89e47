"""Consent to texts: given with the unticked box beside "May we text you?" (on "help us
prepare" or the manage page), withdrawn there or by replying STOP, given back by
START. Each change is kept as an event with its time, wording version and number.
None of these functions commits: the caller's transaction holds them with its
event (and with the confirmation text that consent queues)."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import ConsultationRequest, utcnow
from portal.texts import numbers
from portal.texts.models import TextConsent, TextConsentEvent, TextOptOut

# The wording beside the checkbox (DESIGN, "Text messages"), and its version: a change
# of wording is a new version, so each consent says which one the client saw.
WORDING = ("Text me reminders about this consultation. Up to 3 messages. Reply STOP to "
           "stop, HELP for help. Message and data rates may apply.")
WORDING_VERSION = "2026-12"


def consent_of(consultation: ConsultationRequest) -> TextConsent | None:
    if consultation.id is None:
        return None
    return db.session.scalar(select(TextConsent).where(
        TextConsent.request_id == consultation.id))


def has_consent(consultation: ConsultationRequest) -> bool:
    consent = consent_of(consultation)
    return consent is not None and consent.active and consultation.ok_to_text is True


def opted_out(number: str) -> bool:
    return db.session.scalar(select(TextOptOut.id).where(
        TextOptOut.phone_hash.in_(numbers.lookup_hashes(number)))) is not None


def stopped(consultation: ConsultationRequest) -> bool:
    """The client said yes to texts, but their number replied STOP to one of ours: no
    text reaches it (the carrier and Twilio refuse them too) until it replies START."""
    if consultation.ok_to_text is not True:
        return False
    number = numbers.e164(consultation.phone)
    return number is not None and opted_out(number)


def record_answer(consultation: ConsultationRequest, ticked: bool, *, source: str) -> bool:
    """Store what the form said about texts (``ok_to_text`` is already set on the
    request): consent given, kept, or withdrawn. True when consent was just given (the
    caller queues the confirmation text)."""
    consent = consent_of(consultation)
    wants = consultation.ok_to_text is True and ticked
    number = numbers.e164(consultation.phone)
    if wants and number is not None:
        if consent is not None and consent.active and consent.phone == number:
            return False
        if consent is None:
            consent = TextConsent(request_id=consultation.id)
            db.session.add(consent)
        consent.phone, consent.phone_hash = number, numbers.phone_hash(number)
        consent.wording_version, consent.given_at = WORDING_VERSION, utcnow()
        consent.withdrawn_at = None
        add_event(consultation.id, "given", source, number, wording_version=WORDING_VERSION)
        db.session.flush()
        return True
    if consent is not None and consent.active:
        withdraw(consent, "withdrawn", source)
    return False


def withdraw(consent: TextConsent, action: str, source: str) -> None:
    """No more texts for this request; what is queued is dropped (see outgoing)."""
    from portal.texts import outgoing

    consent.withdrawn_at = utcnow()
    add_event(consent.request_id, action, source, consent.phone)
    outgoing.drop_queued(consent.request_id, reason="consent withdrawn")


def add_event(request_id: int, action: str, source: str, number: str, *,
              wording_version: str | None = None, body: str | None = None) -> None:
    db.session.add(TextConsentEvent(request_id=request_id, action=action, source=source,
                                    phone=number, wording_version=wording_version, body=body))


def consents_for(number: str) -> list[TextConsent]:
    """Every request's consent given for ``number``, newest first."""
    return list(db.session.scalars(
        select(TextConsent).where(TextConsent.phone_hash.in_(numbers.lookup_hashes(number)))
        .order_by(TextConsent.given_at.desc(), TextConsent.id.desc())))


def stop(number: str, source: str = "text", action: str = "stop") -> list[TextConsent]:
    """STOP from ``number``: nothing more is texted to it, for any request, at once."""
    if not opted_out(number):
        db.session.add(TextOptOut(phone_hash=numbers.phone_hash(number), phone=number))
    consents = consents_for(number)
    for consent in consents:
        if consent.active:
            withdraw(consent, action, source)
        else:
            add_event(consent.request_id, action, source, number)
    return consents


def start(number: str) -> list[TextConsent]:
    """START from ``number``: texts resume for the open requests that agreed to them."""
    for row in db.session.scalars(select(TextOptOut).where(
            TextOptOut.phone_hash.in_(numbers.lookup_hashes(number)))):
        db.session.delete(row)
    consents = consents_for(number)
    for consent in consents:
        consultation = db.session.get(ConsultationRequest, consent.request_id)
        if consultation is not None and consultation.is_open:
            consent.withdrawn_at = None
        add_event(consent.request_id, "start", "text", number)
    return consents


def history(consultation: ConsultationRequest) -> list[TextConsentEvent]:
    return list(db.session.scalars(
        select(TextConsentEvent).where(TextConsentEvent.request_id == consultation.id)
        .order_by(TextConsentEvent.at.desc(), TextConsentEvent.id.desc()).limit(100)))
