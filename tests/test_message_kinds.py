"""The registry of message kinds (portal.messages.kinds): every kind has its templates,
named as the kind, under its audience's folder; every one renders in English and in
Spanish through the one composer; and everything that names a kind (the status table,
the back office's words, the outbox's urgent retries) names a registered one."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.admin.wording import email_kind
from portal.booking import request_status
from portal.extensions import db
from portal.messages import composer, notifications
from portal.messages.kinds import KINDS, URGENT_KINDS, Audience, Channel
from portal.messages.models import OutboxEmail
from tests.factories import future_slot, make_request, make_therapist

EMAIL_TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"
LANGUAGES = ("en", "es")


def test_every_kind_has_both_templates_named_as_the_kind():
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.template == f"email/{kind.audience}/{name}"
        for ending in ("txt", "html"):
            assert (EMAIL_TEMPLATES.parent / f"{kind.template}.{ending}").is_file(), name


def test_every_message_template_belongs_to_a_kind():
    """No template is left over from a kind that is gone or was renamed; beside the
    audiences' folders there are only the layout (``base``) and the shared parts."""
    for path in EMAIL_TEMPLATES.rglob("*.*"):
        if path.parent == EMAIL_TEMPLATES:
            assert path.name.startswith(("base.", "_")), path
            continue
        kind = KINDS.get(path.stem)
        assert kind is not None and kind.audience == path.parent.name, path


def context_for(kind, consultation, therapist) -> dict:
    """Everything any template of ``kind``'s audience reads, as the portal fills it in."""
    if kind.audience == Audience.CLIENT:
        return notifications.client_context(
            consultation, has_ics=True, next_step="We'll call you.",
            next_step_html="We'll call you.", good_faith_estimate_url="https://x.example/gfe",
            offered_when="Thursday", offered_therapist=therapist,
            offer_url="https://x.example/offer", previous_when="Wednesday", by="client",
            personal_line="All the best.", referrals=[], rebook_url="https://x.example/rebook",
            can_rebook=True, code="123456", minutes=30, until="10:00 AM PT")
    if kind.audience == Audience.THERAPIST:
        return notifications.therapist_context(consultation, therapist,
                                               headline="A consultation time has been booked.",
                                               previous_when="Wednesday", by="practice")
    return {"email": "staff@example.com", "set_url": "https://x.example/set", "hours": 72,
            "invited_by": "admin@example.com", "role": "therapist",
            "reset_url": "https://x.example/reset", "minutes_valid": 60,
            "until": "10:00 AM PT", "minutes": 15}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_renders_in_both_languages(app, name):
    kind = KINDS[name]
    with app.test_request_context():
        therapist = make_therapist()
        consultation = make_request(therapist, future_slot(), language="es")
        db.session.flush()
        context = context_for(kind, consultation, therapist)
        rendered = {language: composer.render(name, context, language=language)
                    for language in LANGUAGES}
    for message in rendered.values():
        assert message.subject and message.text.strip() and "</" in message.html
        assert consultation.first_name not in message.subject  # neutral subjects
    if kind.audience == Audience.CLIENT:
        english, spanish = rendered["en"], rendered["es"]
        assert spanish.subject != english.subject
        assert spanish.text != english.text
        for message in (english, spanish):
            assert "988" in message.text and "988" in message.html  # the crisis line


def test_the_composer_stores_the_kind_by_its_name_once_per_key(app):
    with app.test_request_context():
        therapist = make_therapist()
        consultation = make_request(therapist, future_slot())
        db.session.flush()
        context = notifications.client_context(consultation)
        row = composer.queue_message("reminder", consultation.email, context, key="k:1",
                                     request_id=consultation.id)
        again = composer.queue_message("reminder", consultation.email, context, key="k:1",
                                       request_id=consultation.id)
        assert (row.kind, row.channel, again) == ("reminder", Channel.EMAIL, None)
        assert db.session.scalar(db.select(db.func.count(OutboxEmail.id))) == 1
        with pytest.raises(KeyError):
            composer.queue_message("no_such_kind", consultation.email, context, key="k:2")


def test_every_status_move_sends_registered_kinds_to_their_audience():
    moves = [rule for rule in request_status.TRANSITIONS.values()
             if isinstance(rule, request_status.Move)]
    sent = {kind for move in moves for kind in move.emails}
    assert sent == {KINDS["cancelled_client"], KINDS["cancelled_therapist"],
                    KINDS["reopened_client"], KINDS["reopened_therapist"]}
    for move in moves:
        assert [kind.audience for kind in move.emails] in (
            [], [Audience.CLIENT, Audience.THERAPIST]), move


def test_the_back_office_names_every_kind_and_the_urgent_ones_are_registered():
    for name, kind in KINDS.items():
        assert email_kind(name) == kind.label
    assert {"verification_code", "already_booked"} == URGENT_KINDS
