"""What the outbox says about a failure: on the row for the admins, and in log lines.

Neither may carry personal data: servers like to echo the recipient's address in
their answers, and exception messages may quote whatever they were given.
"""

from __future__ import annotations

import re
import smtplib

__all__ = ["describe_error", "error_code", "error_origin"]


def error_code(error: Exception | None) -> str:
    """What a log line may say about an error: its type and SMTP code, no server text."""
    if error is None:
        return "unknown"
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__}" + (f" {code}" if code else "")


def error_origin(error: BaseException) -> str:
    """Where an error was raised, as module:line (and the last portal frame on the way).

    For log lines: it says where to look without the message, which may hold data.
    """
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_globals.get("__name__", "?"), tb.tb_lineno))
        tb = tb.tb_next
    if not frames:
        return "unknown"
    where = "{}:{}".format(*frames[-1])
    ours = [frame for frame in frames if frame[0].startswith("portal")]
    if ours and ours[-1] != frames[-1]:
        where += " via {}:{}".format(*ours[-1])
    return where


_ADDRESS = re.compile(r"\S+@\S+")


def _server_text(text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _ADDRESS.sub("<address>", text)  # servers like to echo the recipient


def describe_error(error: Exception | None) -> str:
    """What the admins see on the row: codes and server texts, never an address."""
    if error is None:
        return "unknown error"
    name = type(error).__name__
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = "; ".join(f"{code} {_server_text(text)}"
                            for code, text in error.recipients.values())
        return f"{name}: {answers}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{name}: {error.smtp_code} {_server_text(error.smtp_error)}"
    return f"{name}: {_server_text(str(error))}"
