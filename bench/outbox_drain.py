"""How long draining the outbox takes: N messages to a local SMTP server (aiosmtpd).

Target (issue 5): 1,000 messages in under 10 seconds on one core.

    .venv/bin/python bench/outbox_drain.py [--messages 1000] [--database-url URL]

The messages are real confirmations and therapist notices queued for N/2
requests (rendering happens at queue time, outside the measurement); the
drain is one ``deliver_due()`` run, as ``flask --app portal outbox send`` does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_ENCRYPTION_KEY, free_port  # noqa: E402
from portal import create_app
from portal.extensions import db  # noqa: E402
from portal.messages import notifications, outbox
from tests.factories import future_slot, make_request, make_therapist  # noqa: E402
from tests.smtp import SmtpSink  # noqa: E402


def make_bench_app(database_url: str, smtp_port: int):
    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": database_url,
        "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port, "MAIL_BACKEND": "smtp",
        "PUBLIC_BASE_URL": "https://portal.example.com", "OUTBOX_BATCH_SIZE": 100,
    })
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def queue(app, messages: int) -> float:
    started = time.perf_counter()
    with app.app_context():
        therapists = [make_therapist() for _ in range(5)]
        for n in range(messages // 2):
            slot = future_slot(days=2 + n // 40, hour_utc=16 + (n % 8))
            consultation = make_request(therapists[n % 5], slot.replace(minute=0))
            notifications.queue_request_received(consultation)
        db.session.commit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--database-url", default=None,
                        help="default: a throw-away SQLite file")
    args = parser.parse_args()
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            app = make_bench_app(url, sink.port)
            queued_in = queue(app, args.messages)
            started = time.perf_counter()
            with app.app_context():
                report = outbox.deliver_due()
            elapsed = time.perf_counter() - started
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        sink.stop()
    backend = url.split(":", 1)[0]
    met = elapsed < 10 and report.sent == args.messages == len(sink.messages)
    print(f"outbox drain ({backend}): queued {args.messages} in {queued_in:.2f} s; "
          f"delivered {report.sent} in {elapsed:.2f} s "
          f"({report.sent / elapsed:.0f} msg/s); server received {len(sink.messages)}; "
          f"target < 10 s: {'OK' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
