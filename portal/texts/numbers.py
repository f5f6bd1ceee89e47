"""Keyed hashes of phone numbers: how an inbound text finds the rows about its number
while the numbers themselves stay encrypted.

The hash is an HMAC-SHA256 of the E.164 number under a key derived from each of
``ENCRYPTION_KEYS``; a stored hash is written under the newest key and names it
(``<key id>:<hex>``), and a lookup tries every configured key, so rows hashed before
a rotation are still found. ``rehash`` (run by ``rotate-keys``) rewrites them under
the newest key before the old one goes.
"""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers
from flask import current_app
from sqlalchemy import select

from portal.encryption import key_id, parse_keys
from portal.extensions import db


def _keys() -> list[tuple[str, bytes]]:
    raws = parse_keys(current_app.config.get("ENCRYPTION_KEYS"))
    return [(key_id(raw), hmac.new(raw, b"portal phone lookup", hashlib.sha256).digest())
            for raw in raws]


def _hash(kid: str, key: bytes, number: str) -> str:
    return f"{kid}:{hmac.new(key, number.encode('ascii'), hashlib.sha256).hexdigest()[:48]}"


def e164(number: str | None) -> str | None:
    """A number as E.164 (US numbers may come without +1); None if it is not one."""
    if not number:
        return None
    try:
        parsed = phonenumbers.parse(number.strip(), "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_hash(number: str) -> str:
    """The hash stored for ``number`` (E.164), under the newest key."""
    kid, key = _keys()[0]
    return _hash(kid, key, number)


def lookup_hashes(number: str) -> list[str]:
    """Every hash ``number`` may be stored under (one per configured key)."""
    return [_hash(kid, key, number) for kid, key in _keys()]


def last_digits(number: str) -> str:
    """What staff and fallback emails show of a number: its last four digits."""
    return number[-4:]


def rehash() -> int:
    """Rewrite every stored hash under the newest key (the caller commits); how many."""
    from portal.texts.models import TextConsent, TextOptOut

    newest = _keys()[0][0]
    count = 0
    for model in (TextConsent, TextOptOut):
        for row in db.session.scalars(select(model).where(
                ~model.phone_hash.startswith(f"{newest}:"))).all():
            row.phone_hash = phone_hash(row.phone)
            count += 1
    return count
