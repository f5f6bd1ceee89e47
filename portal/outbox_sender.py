"""The in-process sender of ``make run``: a daemon thread draining the outbox.

Production runs ``flask --app portal outbox work`` processes instead; this one
exists so that a developer sees mail arrive (in the sink) within seconds.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask

from portal import outbox
from portal.outbox_errors import error_origin

log = logging.getLogger("portal.outbox")


class BackgroundSender:
    """A daemon thread doing ``outbox.work_once`` every ``OUTBOX_POLL_SECONDS``."""

    FORGET_EVERY_SECONDS = 600

    def __init__(self, app: Flask):
        self.app = app
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.stopping.clear()
                self.thread = threading.Thread(target=self._run, name="outbox-sender",
                                               daemon=True)
                self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        poll = float(self.app.config["OUTBOX_POLL_SECONDS"])
        forgot_at = 0.0
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    outbox.work_once()
                    if time.monotonic() - forgot_at > self.FORGET_EVERY_SECONDS:
                        outbox.forget_sent_bodies()
                        forgot_at = time.monotonic()
            except Exception as error:  # keep the thread alive; the next round retries
                # Type and place only: the message may quote data (an address, a value).
                log.error("outbox background sender round failed: %s at %s",
                          type(error).__name__, error_origin(error))
            self.stopping.wait(poll)


def start_background_sender(app: Flask, *, lazy: bool = True) -> BackgroundSender:
    """Attach a background sender to ``app``; started by the first request when ``lazy``.

    Starting lazily keeps CLI commands (``db upgrade``, ``seed-demo``) from
    sending, and starts the thread inside each server process after any fork.
    """
    sender = BackgroundSender(app)
    app.extensions["outbox_sender"] = sender
    if lazy:
        app.before_request(sender.start)
    else:
        sender.start()
    return sender
