"""Email addresses fit for an SMTP envelope and a header, shared by the queue and the sender.

Its own module so that the transport can check an address without importing
the message composer (``notifications``), which imports far more.
"""

from __future__ import annotations

_HEADER_UNSAFE = set("\r\n\t\x00 <>,;\"\\()[]:")


def clean_address(address: str) -> str:
    """A bare ASCII address fit for a header; ValueError for anything else.

    Refuses what could inject a header, and any non-ASCII character: without
    SMTPUTF8 (which we do not use) smtplib cannot put such an address in the
    envelope, and it would fail at send time instead of here. Forms store the
    ASCII form of internationalised domains (``xn--``), so real ones pass.
    """
    address = (address or "").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or _HEADER_UNSAFE & set(address) \
            or not address.isascii() or not address.isprintable() or len(address) > 254:
        raise ValueError("not a usable email address")
    return address


def masked_address(address: str) -> str:
    """An address shown on a page anyone with its link can open: enough for its owner
    to know which inbox to look in ("c•••@example.com"), too little for anyone else
    to write to it. The domain stays whole: it tells which provider's spam folder."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}" if local else "•••"
