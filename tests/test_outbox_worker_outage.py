"""``flask --app portal outbox work`` keeps running through a database outage: a real
sender process whose PostgreSQL connection goes through a loopback relay the test
stops (every connection cut, nothing listening: a restart as the sender sees it) and
starts again. The process logs the failed rounds, waits, reconnects by itself and
sends what was queued meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from portal.extensions import db
from portal.messages.models import OutboxEmail
from tests.conftest import clear_database, make_app
from tests.test_database_outage import relayed
from tests.test_outbox_robustness import wait_until

ROOT = Path(__file__).resolve().parent.parent


def queue(app, n: int) -> str:
    message_id = f"<outage-{n}@example.com>"
    with app.app_context():
        db.session.add(OutboxEmail(
            key=f"outage:{n}", kind="test", recipient=f"r{n}@example.com",
            subject=f"Test {n}", body_text="Hello", body_html="<p>Hello</p>",
            message_id=message_id))
        db.session.commit()
    return message_id


def received(smtp_server) -> set[str]:
    return {m["Message-ID"] for m in smtp_server.messages}


@pytest.mark.slow
def test_the_sender_survives_a_database_outage_and_sends_afterwards(
        postgres_url, smtp_server, tmp_path):
    app = make_app(postgres_url)  # the test's own way in, not through the relay
    relay, through_relay = relayed(postgres_url)
    env = {**os.environ, "FLASK_SECRET_KEY": "outage-test-secret-key-0123456789abcdef",
           "FLASK_SQLALCHEMY_DATABASE_URI": through_relay,
           "FLASK_ENCRYPTION_KEYS": ",".join(app.config["ENCRYPTION_KEYS"]),
           "FLASK_MAIL_BACKEND": "smtp", "FLASK_MAIL_SERVER": "127.0.0.1",
           "FLASK_MAIL_PORT": str(smtp_server.port), "FLASK_OUTBOX_BACKGROUND": "false",
           "FLASK_OUTBOX_POLL_SECONDS": "0.2", "FLASK_OUTBOX_ERROR_BACKOFF_MAX_SECONDS": "1"}
    log_path = tmp_path / "sender.log"
    with log_path.open("w") as log:
        sender = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "outbox", "work"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = queue(app, 1)
        assert wait_until(lambda: first in received(smtp_server), 30), log_path.read_text()
        relay.stop()  # the database goes away under the running sender
        assert wait_until(lambda: log_path.read_text().count("round failed") >= 3, 30), \
            log_path.read_text()
        assert sender.poll() is None, log_path.read_text()
        second = queue(app, 2)  # queued by the web meanwhile (it has its own way in)
        relay.start()
        assert wait_until(lambda: second in received(smtp_server), 30), log_path.read_text()
        assert wait_until(lambda: "working again" in log_path.read_text(), 10)
        assert sender.poll() is None
    finally:
        if sender.poll() is None:
            sender.terminate()
            sender.wait(10)
        relay.stop()
        clear_database(app)
    output = log_path.read_text()
    assert "outbox sender round failed: OperationalError at " in output
    assert "outbox sender working again after " in output
    assert "Traceback" not in output


def test_failed_rounds_wait_longer_each_time_up_to_fifteen_seconds(app):
    from portal.messages.senders import error_backoff

    assert [error_backoff(app, n) for n in range(1, 7)] == [3, 6, 12, 15, 15, 15]
    assert error_backoff(app, 10_000) == 15  # no overflow after a very long outage
