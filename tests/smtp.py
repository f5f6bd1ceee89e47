"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

Modes: ``accept`` (250), ``tempfail`` (451 for every message), ``reject`` (550 for
every message), ``slow`` (answers
after ``delay`` seconds); ``stop()`` makes it refuse connections outright.
``defer_ids`` answers 451 to the messages with those Message-IDs only (a mailbox
that is greylisting) while the rest are taken. ``received_at`` holds when each
recorded message arrived (``time.monotonic()``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller


class RecordingHandler:
    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.mode = "accept"
        self.delay = 0.0
        self.defer_ids: set[str] = set()
        self.received_at: list[float] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.mode == "tempfail":
            return "451 4.3.0 Try again later"
        if self.mode == "reject":
            return "550 5.1.1 Mailbox unavailable"
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if message["Message-ID"] in self.defer_ids:
            return "451 4.7.1 Greylisted, try again later"
        with self.lock:
            self.messages.append(message)
            self.received_at.append(time.monotonic())
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SmtpSink:
    def __init__(self, port: int):
        self.port = port
        self.handler = RecordingHandler()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def deliveries(self) -> list[tuple[str, float]]:
        """(Message-ID, when it arrived) of each message taken, in arrival order."""
        with self.handler.lock:
            return [(m["Message-ID"], at) for m, at in
                    zip(self.handler.messages, self.handler.received_at, strict=True)]

    def start(self) -> None:
        if self.controller is None:
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        self.handler.mode = mode
        self.handler.delay = delay

    def reset(self) -> None:
        self.start()
        self.set_mode("accept")
        with self.handler.lock:
            self.handler.defer_ids.clear()
            self.handler.messages.clear()
            self.handler.envelopes.clear()
            self.handler.received_at.clear()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


# Random digits a message itself carries (its Message-ID and MIME boundaries) can hold
# a digit sentinel (a ZIP, a phone's last digits) by chance: they are not client details.
_RANDOM_PARTS = re.compile(r"Message-ID: <[^>]*>|=+\d+=*")


def raw_text(message) -> str:
    """A message as sent, less the parts that are random by construction."""
    return _RANDOM_PARTS.sub("", message.as_bytes().decode("utf-8", "replace"))
