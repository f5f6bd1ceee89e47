"""How long a booking takes (the details POST that stores it and emails a code, and
the code POST that confirms it) with a fast SMTP server and with one that answers
after 2 seconds, while a background sender drains the outbox in the same process.

Target (issue 5): the same either way — the web request never waits for SMTP.

    .venv/bin/python bench/booking_latency.py [--bookings 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH_ENCRYPTION_KEY, free_port  # noqa: E402
from portal import create_app
from portal.extensions import db  # noqa: E402
from portal.messages import senders
from portal.messages.models import OutboxEmail
from tests.factories import make_therapist  # noqa: E402
from tests.smtp import SmtpSink  # noqa: E402

ELIGIBLE = {"ca_resident": "yes", "zip_code": "94110", "in_california": "yes", "adult": "yes"}
FORM_TOKEN = re.compile(r'name="form_token" type="hidden" value="([^"]+)"')
SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')


def emailed_code(app, email: str) -> str:
    with app.app_context():
        body = db.session.scalar(
            select(OutboxEmail.body_text).where(OutboxEmail.recipient == email,
                                                OutboxEmail.kind == "verification_code"))
    return re.search(r"\b(\d{6})\b", body).group(1)


def book_once(app, n: int) -> float:
    client = app.test_client()
    client.post("/consultation", data=ELIGIBLE)
    html = client.get("/consultation/time?therapist=any").text
    client.post("/consultation/time", data={"therapist": "any",
                                            "slot": SLOT_VALUE.findall(html)[n]})
    client.post("/consultation/about", data={
        # Names are letters only: the booking's number spelled in letters (7 -> "h").
        "first_name": "Bench", "last_name": "Client " + "".join(chr(97 + int(d)) for d in str(n)),
        "email": f"bench{n}@example.com", "phone": f"(415) 555-{1000 + n:04d}",
        "meeting": "phone"})
    check = client.get("/consultation/check").text
    data = {"email": f"bench{n}@example.com", "consent_privacy": "y", "ack_not_emergency": "y",
            "website": "", "form_token": FORM_TOKEN.search(check).group(1)}
    started = time.perf_counter()
    response = client.post("/consultation/check", data=data)
    elapsed = time.perf_counter() - started
    if response.status_code != 302 or response.location != "/consultation/verify":
        raise SystemExit(f"booking {n} failed with {response.status_code}")
    code = emailed_code(app, data["email"])
    started = time.perf_counter()
    response = client.post("/consultation/verify", data={"code": code})
    elapsed += time.perf_counter() - started
    if response.status_code != 302 or "/confirmed/" not in response.location:
        raise SystemExit(f"confirming booking {n} failed with {response.status_code}")
    return elapsed


def run(mode: str, bookings: int, tmp: str) -> list[float]:
    sink = SmtpSink(port=free_port())
    sink.start()
    sink.set_mode(*(("slow", 2.0) if mode == "slow" else ("accept",)))
    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
        "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "RATELIMIT_ENABLED": False, "FORM_MIN_SECONDS": 0,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / f'{mode}.sqlite3'}",
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": sink.port, "MAIL_TIMEOUT": 10,
        "OUTBOX_POLL_SECONDS": 0.2, "PUBLIC_BASE_URL": "https://portal.example.com",
    })
    with app.app_context():
        db.create_all()
        for _ in range(3):
            make_therapist()
        db.session.commit()
    sender = senders.start_background_sender(app, lazy=False)
    try:
        return [book_once(app, n) for n in range(bookings)]
    finally:
        sender.stop(timeout=30)
        sink.stop()
        with app.app_context():
            db.engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {mode: run(mode, args.bookings, tmp) for mode in ("fast", "slow")}
    for mode, times in results.items():
        print(f"booking (details + code POSTs), {mode} SMTP: "
              f"median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms over {len(times)} bookings")
    fast, slow = (statistics.median(results[m]) for m in ("fast", "slow"))
    met = slow < fast * 2 and slow < 1.0
    print(f"slow/fast median ratio {slow / fast:.2f} "
          f"(target: about 1; {'OK' if met else 'MISSED'})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
