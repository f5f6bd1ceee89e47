"""Senders that keep draining the outbox: the loop that ``flask --app portal outbox work``
runs in production, and the in-process daemon thread of ``make run``, which runs the
same loop so that a developer sees mail arrive (in the sink) within seconds.

Neither stops when a round fails (the database restarting or unreachable, a
connection cut mid-round): the round is logged in one line, the next one waits a
little longer each time (``OUTBOX_POLL_SECONDS`` doubling up to
``OUTBOX_ERROR_BACKOFF_MAX_SECONDS``), and each round opens its own session, so the
pool hands it a fresh connection once the database is back. One more line says so
when a round works again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask

from portal.calendars import delivery as calendar_delivery
from portal.calendars import sync as calendar_sync
from portal.messages import outbox, upkeep
from portal.messages.outbox_errors import error_origin
from portal.texts import delivery as text_delivery

log = logging.getLogger("portal.messages.outbox")
# Forgetting old bodies is a sweep over the table: every ten minutes is plenty.
FORGET_EVERY_SECONDS = 600


def work_loop(app: Flask, stopping: threading.Event, *, max_rounds: int | None = None,
              on_round: Callable[[int, outbox.DeliveryReport], None] | None = None,
              survive_errors: bool = False, name: str = "background sender",
              read_calendars: bool = False) -> None:
    """Rounds of ``upkeep.work_once`` every ``OUTBOX_POLL_SECONDS`` until ``stopping`` is
    set (or ``max_rounds`` are done), forgetting old bodies in the first round and then
    every ``FORGET_EVERY_SECONDS``. Each round has its own app context (and so its own
    session). ``on_round`` sees each round's reminder count and report. A failed round
    propagates, unless ``survive_errors``: then it is logged (as ``name``'s) and the
    next round retries after a back-off (see the module's docstring).
    ``read_calendars`` (``make run``'s worker; production has its timer): also read the
    therapists' own calendars in the first round and every CALENDAR_SYNC_MINUTES.
    """
    poll = float(app.config["OUTBOX_POLL_SECONDS"])
    forgot_at: float | None = None
    calendars_at: float | None = None
    calendars_every = float(app.config["CALENDAR_SYNC_MINUTES"]) * 60
    rounds = failures = 0
    while not stopping.is_set() and (max_rounds is None or rounds < max_rounds):
        wait = poll
        try:
            with app.app_context():
                reminders, report = upkeep.work_once()
                calendar_delivery.deliver_due()  # consultations into therapists' calendars
                text_delivery.work()  # text reminders due, and texts
                if forgot_at is None or time.monotonic() - forgot_at >= FORGET_EVERY_SECONDS:
                    upkeep.forget_sent_bodies()
                    forgot_at = time.monotonic()
                if read_calendars and (calendars_at is None
                                       or time.monotonic() - calendars_at >= calendars_every):
                    calendars_at = time.monotonic()
                    calendar_sync.sync_all()
                if on_round is not None:
                    on_round(reminders, report)
        except Exception as error:
            if not survive_errors:
                raise
            failures += 1
            wait = error_backoff(app, failures)
            # Type and place only: the message may quote data (an address, a value).
            log.error("outbox %s round failed: %s at %s; failed rounds in a row: %s, "
                      "next try in %.3g s", name, type(error).__name__, error_origin(error),
                      failures, wait)
        else:
            if failures:
                log.warning("outbox %s working again after %s failed round%s", name,
                            failures, "" if failures == 1 else "s")
            failures = 0
        rounds += 1
        if max_rounds is None or rounds < max_rounds:
            stopping.wait(wait)


def error_backoff(app: Flask, failures: int) -> float:
    """Seconds to wait after ``failures`` failed rounds in a row: the poll interval,
    doubling, up to ``OUTBOX_ERROR_BACKOFF_MAX_SECONDS`` (a database back after a
    restart is noticed within that)."""
    poll = float(app.config["OUTBOX_POLL_SECONDS"])
    most = float(app.config["OUTBOX_ERROR_BACKOFF_MAX_SECONDS"])
    return min(poll * 2 ** min(failures - 1, 16), most)


class BackgroundSender:
    """A daemon thread running ``work_loop``; a failed round does not stop it."""

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
        work_loop(self.app, self.stopping, survive_errors=True, read_calendars=True)


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
