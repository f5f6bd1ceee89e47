"""What a text says, how long it is, and when it may be sent.

Texts show on lock screens and shared phones: they carry the practice's short name,
the time in Pacific time and a short signed link, and never a client's name, a
therapist's name or a clinical word (``clinical_words``). English fits one GSM-7
segment (160 characters); Spanish, whose accents often need UCS-2, fits two.

Quiet hours: nothing is texted between 9 PM and 8 AM Pacific. A text due then waits
until 8 AM, or is dropped when its moment (the consultation) has passed by then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, time, timedelta

from babel import dates as babel_dates
from flask import current_app
from flask_babel import gettext

from portal.booking.answers import INTERESTS
from portal.booking.scheduling import BABEL_LOCALES, PACIFIC
from portal.i18n import in_language
from portal.models import ConsultationRequest, as_utc

QUIET_FROM, QUIET_UNTIL = time(21, 0), time(8, 0)
LINK_SALT = b"portal text link"

# GSM 03.38: the basic set (one septet each) and its extension (two septets each).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = set("^{}\\[~]|€\f")
# Words a text never carries: the practice's specialties and other clinical words, in
# both languages (checked case-insensitively, accents as written).
CLINICAL_WORDS = (
    "ketamine", "ketamina", "trauma", "ptsd", "tept", "depression", "depresión",
    "anxiety", "ansiedad", "therapy", "therapist", "terapia", "terapeuta", "psycho",
    "psico", "mental", "counsel", "clinic", "clínic", "treatment", "tratamiento",
    "diagnos", "psychiatr", "psiquiatr",
)


# -- length ---------------------------------------------------------------------

def is_gsm7(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes (GSM-7: 160, or 153 each when split;
    UCS-2: 70, or 67 UTF-16 units each)."""
    if is_gsm7(text):
        units = sum(2 if ch in GSM_EXTENSION else 1 for ch in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


def segment_limit(language: str) -> int:
    return 1 if language == "en" else 2


def clinical_words() -> tuple[str, ...]:
    """Every word a text must not carry: the list above and the practice's specialties
    as the forms name them."""
    specialties = tuple(str(label).lower() for key, label in INTERESTS.items()
                        if key != "other")
    return CLINICAL_WORDS + specialties


def problem(text: str, language: str, *, forbidden: tuple[str, ...] = ()) -> str | None:
    """Why ``text`` may not be sent, or None."""
    lowered = text.lower()
    for word in (*clinical_words(), *(w.lower() for w in forbidden if w)):
        if word and word in lowered:
            return f"it names {word!r}"
    if segments(text) > segment_limit(language):
        return f"it takes {segments(text)} segments"
    return None


# -- quiet hours ------------------------------------------------------------------

def is_quiet(now: datetime) -> bool:
    local = now.astimezone(PACIFIC).time()
    return local >= QUIET_FROM or local < QUIET_UNTIL


def next_allowed(now: datetime) -> datetime:
    """``now`` when texts may go, else the next 8 AM Pacific (DST-correct)."""
    if not is_quiet(now):
        return now
    local = now.astimezone(PACIFIC)
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=PACIFIC)


# -- the parts of a text -------------------------------------------------------------

def short_link(consultation: ConsultationRequest) -> str:
    """A short signed link to the request's manage page (``/t/<token>``)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/t/{link_token(consultation)}"


def link_token(consultation: ConsultationRequest) -> str:
    return f"{_base36(consultation.id)}-{_signature(consultation)}"


def request_id_from_token(token: str) -> int | None:
    head, _, signature = token.partition("-")
    if not head or len(head) > 12 or not signature or not head.isascii() or not head.isalnum():
        return None
    number = int(head, 36)
    return number if 0 < number < 2**31 else None


def token_matches(consultation: ConsultationRequest, token: str) -> bool:
    return hmac.compare_digest(link_token(consultation), token)


def _signature(consultation: ConsultationRequest) -> str:
    key = hashlib.sha256(LINK_SALT + str(current_app.config["SECRET_KEY"]).encode()).digest()
    message = f"{consultation.id}:{consultation.public_id}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode("ascii")  # 72 bits, 12 characters


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def when(starts_at: datetime, language: str) -> str:
    """A short Pacific time: "Mon Dec 7, 9:00 AM PT" ("lun 7 dic, 9:00 a. m. PT")."""
    local = as_utc(starts_at).astimezone(PACIFIC)
    if language == "en":
        hour = local.hour % 12 or 12
        meridiem = "AM" if local.hour < 12 else "PM"
        return f"{local:%a %b} {local.day}, {hour}:{local:%M} {meridiem} PT"
    text = babel_dates.format_datetime(local, "EEE d MMM, h:mm a",
                                       locale=BABEL_LOCALES.get(language, "es_US"))
    return f"{text.replace(chr(0xA0), ' ').replace(chr(0x202F), ' ').replace('.,', ',')} PT"


def sender_name() -> str:
    """The name texts start with: SMS_SENDER_NAME, else the practice's name unless that
    names a specialty (then none: a text never says what the practice treats)."""
    config = current_app.config
    name = config.get("SMS_SENDER_NAME") or config["PRACTICE_NAME"]
    lowered = name.lower()
    if any(word in lowered for word in clinical_words()):
        return ""
    return name


# -- the texts ----------------------------------------------------------------------

KINDS = ("text_confirmation", "text_booked", "text_reminder_24h", "text_reminder_2h",
         "text_rescheduled", "text_cancelled")


def body(kind: str, consultation: ConsultationRequest, *,
         starts_at: datetime | None = None) -> str:
    """The text of ``kind`` for ``consultation``, in its language. ``starts_at``: the
    time it is about (the canceled one, for a cancellation)."""
    starts_at = starts_at or consultation.starts_at
    language = consultation.language
    with in_language(language):
        values = {"link": short_link(consultation),
                  "when": when(starts_at, language) if starts_at else ""}
        text = _wording(kind, starts_at is not None, values)
        name = sender_name()
        return f"{name}: {text}" if name else text


def _wording(kind: str, booked: bool, values: dict) -> str:
    if kind == "text_confirmation" and booked:
        return gettext("Texts on for your consultation, %(when)s. %(link)s Reply STOP to "
                       "end, HELP for help.", **values)
    if kind == "text_confirmation":
        return gettext("Texts on for your consultation request. %(link)s Reply STOP to "
                       "end, HELP for help.", **values)
    if kind == "text_booked":
        return gettext("Your free consultation is booked: %(when)s. %(link)s Reply STOP to "
                       "end.", **values)
    if kind == "text_reminder_24h":
        return gettext("Reminder: free consultation %(when)s. To change: %(link)s Reply "
                       "STOP to end.", **values)
    if kind == "text_reminder_2h":
        return gettext("Soon: your free consultation, %(when)s. %(link)s Reply STOP to end.",
                       **values)
    if kind == "text_rescheduled":
        return gettext("New time for your free consultation: %(when)s. %(link)s Reply STOP "
                       "to end.", **values)
    if kind == "text_cancelled" and booked:
        return gettext("Your free consultation on %(when)s is canceled. %(link)s Reply STOP "
                       "to end.", **values)
    if kind == "text_cancelled":
        return gettext("Your consultation request is canceled. %(link)s Reply STOP to end.",
                       **values)
    raise ValueError(f"no text of kind {kind!r}")


def reply(keyword_kind: str, language: str) -> str:
    """What we answer to STOP, START and HELP."""
    config = current_app.config
    with in_language(language):
        if keyword_kind == "stop":
            text = gettext("You will get no more texts from us. Reply START to get them "
                           "again.")
        elif keyword_kind == "start":
            text = gettext("Texts are on again. Reply STOP to end, HELP for help.")
        else:
            text = gettext("For help, call us at %(phone)s. Not for emergencies: call or "
                           "text 988. Reply STOP to stop texts.",
                           phone=config["PRACTICE_PHONE"])
        name = sender_name()
        return f"{name}: {text}" if name else text
