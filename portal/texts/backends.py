"""Where texts go: ``SMS_BACKEND = "twilio"`` (Twilio's Messaging API through the
``twilio`` package) or ``"sink"`` (one file per text in ``SMS_SINK_DIR``, what ``make
run`` uses). Both answer a send with the provider's id for the text, or raise
``SendFailed`` saying whether a retry may help. Nothing here logs a number or a body.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app

# Twilio's REST error codes that a retry never changes (the number, not the moment).
PERMANENT_CODES = {
    21211: "the number is not a valid phone number",
    21408: "texts to that region are not enabled on the account",
    21606: "the sending number cannot send texts",
    21610: "the number replied STOP to our texting number (unsubscribed)",
    21612: "the carrier cannot route texts to that number",
    21614: "the number is not a mobile number",
    21659: "the sending number is not a valid Twilio number",
    30034: "the sending number is not registered for A2P 10DLC",
}
# Delivery report codes, in words for staff.
DELIVERY_CODES = {
    30003: "the phone is switched off or unreachable",
    30004: "the number blocks texts",
    30005: "the number does not exist",
    30006: "the number is a landline or cannot receive texts",
    30007: "the carrier filtered it as spam",
    30008: "the carrier gave no reason",
    30034: "the sending number is not registered for A2P 10DLC",
    21610: "the number replied STOP (unsubscribed)",
}
UNSUBSCRIBED = 21610


class SendFailed(Exception):
    """A text not sent. ``permanent``: trying again will not help. ``code``: Twilio's."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code


def describe_code(code) -> str:
    """A provider's error code as staff read it: "30034: the sending number is …"."""
    try:
        number = int(code)
    except (TypeError, ValueError):
        return str(code or "unknown error")
    words = DELIVERY_CODES.get(number) or PERMANENT_CODES.get(number) or "see Twilio's error list"
    return f"{number}: {words}"


@dataclass
class Sender:
    """What texts come from: a number (E.164) or a messaging service SID."""

    number: str | None
    service: str | None

    @classmethod
    def from_config(cls, config) -> Sender:
        return cls(config.get("TWILIO_FROM") or None,
                   config.get("TWILIO_MESSAGING_SERVICE_SID") or None)

    @property
    def label(self) -> str:
        return self.number or self.service or "sink"


class SinkBackend:
    """Writes ``To:``, ``From:``, a blank line and the body to a new file."""

    def __init__(self, folder: str, sender: Sender):
        self.folder = folder
        self.sender = sender

    def send(self, to: str, body: str, status_url: str | None) -> str:
        os.makedirs(self.folder, exist_ok=True)
        sid = f"SINK{secrets.token_hex(16)}"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = os.path.join(self.folder, f"{stamp}-{sid}.txt")
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(f"To: {to}\nFrom: {self.sender.label}\n\n{body}\n")
        return sid


class TwilioBackend:
    """Twilio's Messaging API (``Messages.create``) with a status callback."""

    def __init__(self, account_sid: str, auth_token: str, sender: Sender, http_client=None):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        timeout = float(current_app.config.get("SMS_TIMEOUT_SECONDS", 10))
        self.client = Client(account_sid, auth_token,
                             http_client=http_client or TwilioHttpClient(timeout=timeout))
        self.sender = sender

    def send(self, to: str, body: str, status_url: str | None) -> str:
        from requests.exceptions import RequestException
        from twilio.base.exceptions import TwilioException, TwilioRestException

        values = {"to": to, "body": body}
        if self.sender.service:
            values["messaging_service_sid"] = self.sender.service
        else:
            values["from_"] = self.sender.number
        if status_url:
            values["status_callback"] = status_url
        try:
            message = self.client.messages.create(**values)
        except TwilioRestException as error:
            retry = error.status == 429 or error.status >= 500
            code = error.code if isinstance(error.code, int) else None
            words = describe_code(code) if code else f"HTTP {error.status}"
            raise SendFailed(f"Twilio refused it: {words}", code=code,
                             permanent=not retry) from None
        except (RequestException, TwilioException, OSError) as error:
            # A timeout or a lost connection: perhaps sent, perhaps not. Retried (the
            # outbox's at-most-one-resend limit, as for email).
            raise SendFailed(f"No answer from Twilio ({type(error).__name__})",
                             permanent=False) from None
        return message.sid


def backend():
    """The configured backend (tests may put a Twilio ``http_client`` in
    ``app.extensions["sms_http_client"]`` to reach a fake of the API)."""
    config = current_app.config
    sender = Sender.from_config(config)
    if config.get("SMS_BACKEND") == "twilio":
        return TwilioBackend(config.get("TWILIO_ACCOUNT_SID") or "",
                             config.get("TWILIO_AUTH_TOKEN") or "", sender,
                             current_app.extensions.get("sms_http_client"))
    folder = config.get("SMS_SINK_DIR") or "sms"
    return SinkBackend(os.path.join(current_app.instance_path, folder), sender)
