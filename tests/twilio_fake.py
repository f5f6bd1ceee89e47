"""A local fake of Twilio's Messaging API for the tests, with the real ``twilio`` client
pointed at it.

``FakeTwilio`` serves ``POST /2010-04-01/Accounts/{sid}/Messages.json`` on loopback in a
thread, records every request (its form values), and answers as Twilio does: 201 with
the message's JSON, or an error JSON (``code``, ``message``, ``status``) such as 21610
(unsubscribed) or a 429; or it answers late (a timeout). It also plays back what
Twilio sends the portal: delivery reports to ``/sms/status`` and texts to
``/sms/inbound``, signed with ``X-Twilio-Signature`` by the twilio package's own
``RequestValidator``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "f" * 32
FROM = "+14155550100"
PUBLIC = "https://portal.example.com"
ERRORS = {
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21211: (400, "Invalid 'To' Phone Number"),
    20429: (429, "Too Many Requests"),
}


@dataclass
class Sent:
    path: str
    values: dict[str, str]
    sid: str | None = None

    @property
    def to(self) -> str:
        return self.values.get("To", "")

    @property
    def body(self) -> str:
        return self.values.get("Body", "")


@dataclass
class FakeTwilio:
    requests: list[Sent] = field(default_factory=list)
    # What the next requests get, in turn: "ok", an error code of ERRORS, or "timeout".
    plan: list = field(default_factory=list)
    delay: float = 2.0  # how late a "timeout" answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                with fake.lock:
                    behaviour = fake.plan.pop(0) if fake.plan else "ok"
                    record = Sent(self.path, form)
                    fake.requests.append(record)
                if behaviour == "timeout":
                    time.sleep(fake.delay)
                if behaviour in ("ok", "timeout"):
                    record.sid = "SM" + secrets.token_hex(16)
                    status, answer = 201, {
                        "sid": record.sid, "status": "queued", "to": form.get("To"),
                        "from": form.get("From"), "body": form.get("Body"),
                        "account_sid": ACCOUNT_SID, "num_segments": "1"}
                else:
                    status, message = ERRORS[behaviour]
                    answer = {"code": behaviour, "message": message, "status": status,
                              "more_info": f"https://www.twilio.com/docs/errors/{behaviour}"}
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def http_client(self, timeout: float = 0.5) -> TwilioHttpClient:
        """The twilio package's own HTTP client, sending to this fake instead of
        api.twilio.com."""
        base = self.base

        class Loopback(TwilioHttpClient):
            def request(self, method, url, *args, **kwargs):
                return super().request(method, url.replace("https://api.twilio.com", base),
                                       *args, **kwargs)

        return Loopback(timeout=timeout)

    @property
    def messages(self) -> list[Sent]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    # -- what Twilio sends the portal ----------------------------------------------

    def report(self, client, sid: str, status: str, error_code: int | None = None):
        values = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
        if error_code is not None:
            values["ErrorCode"] = str(error_code)
        return post_signed(client, "/sms/status", values)

    def text_in(self, client, sender: str, body: str):
        values = {"From": sender, "To": FROM, "Body": body, "AccountSid": ACCOUNT_SID,
                  "MessageSid": "SM" + secrets.token_hex(16)}
        return post_signed(client, "/sms/inbound", values)


def signature(url: str, values: dict, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, values)


def post_signed(client, path: str, values: dict, *, url: str | None = None,
                token: str = AUTH_TOKEN):
    """POST ``values`` to ``path`` as Twilio does, signed for ``url`` (by default the
    site's public address of ``path``)."""
    signed = signature(url or PUBLIC + path, values, token)
    return client.post(path, data=values, headers={"X-Twilio-Signature": signed})


TWILIO_CONFIG = {
    "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_FROM": FROM, "PUBLIC_BASE_URL": PUBLIC, "SMS_SENDER_NAME": "Woven Together",
    "SMS_TIMEOUT_SECONDS": 0.5,
}
