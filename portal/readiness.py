"""Is this installation fit for the internet? The checks behind ``flask --app portal
check`` and the operators' ``/healthz?detail=1``.

Each problem has a stable id (``security.E003``), a level, what is wrong and how to
fix it. Errors make the command exit non-zero; warnings are shown but pass unless
``--strict``. Outbox delays are warnings while young (a sender restarting, a short
mail outage) and errors once due mail has waited ``OUTBOX_STUCK_ERROR_MINUTES``.
No message ever contains a secret: not the key, not the database password.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import urlsplit

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from limits.storage import storage_from_string
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.sansio.utils import host_is_trusted

from portal import encryption
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OutboxState
from portal.models import utcnow

ERROR, WARNING = "error", "warning"
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_DISTINCT = 10
HEALTHZ_TOKEN_MIN_LENGTH = 32


@dataclass(frozen=True)
class Problem:
    id: str
    message: str
    fix: str

    @property
    def level(self) -> str:
        return ERROR if ".E" in self.id else WARNING

    def line(self) -> str:
        return f"{self.id} [{self.level}] {self.message} Fix: {self.fix}"

    def as_dict(self) -> dict[str, str]:
        return {**asdict(self), "level": self.level}


def run_checks(app: Flask, now: datetime | None = None) -> list[Problem]:
    """Every problem found, configuration first, then the database and the outbox.
    Call inside an app context."""
    problems = [*check_configuration(app.config, debug=app.debug, testing=app.testing)]
    database_problems = check_database(app)
    problems += database_problems
    if not database_problems:
        problems += check_outbox(app.config, now or utcnow())
    problems += check_encryption(app.config, database_ok=not database_problems)
    return problems


def has_errors(problems: list[Problem]) -> bool:
    return any(problem.level == ERROR for problem in problems)


def secret_key_is_weak(key) -> bool:
    """The one rule for SECRET_KEY, shared by this check and the app factory (which
    refuses to start outside debug and testing with a key it calls weak). The length
    rules out the usual defaults ("dev", "change-me"); the distinct characters rule out
    "x" * 32 and its kind."""
    return (not isinstance(key, str | bytes) or len(key) < SECRET_KEY_MIN_LENGTH
            or len(set(key)) < SECRET_KEY_MIN_DISTINCT)


SECRET_KEY_PROBLEM = Problem(
    "security.E001",
    f"SECRET_KEY is missing or weak (fewer than {SECRET_KEY_MIN_LENGTH} characters "
    f"or fewer than {SECRET_KEY_MIN_DISTINCT} different ones).",
    "set FLASK_SECRET_KEY to the output of "
    "`python -c 'import secrets; print(secrets.token_hex(32))'`, the same for every "
    "worker and host.")


def check_configuration(config, *, debug: bool, testing: bool) -> list[Problem]:
    problems = []
    if secret_key_is_weak(config.get("SECRET_KEY")):
        problems.append(SECRET_KEY_PROBLEM)
    if debug or testing:
        problems.append(Problem(
            "security.E002", "DEBUG or TESTING is on: tracebacks and test shortcuts.",
            "unset FLASK_DEBUG and FLASK_TESTING (and never pass --debug)."))
    if not config.get("WTF_CSRF_ENABLED", True):
        problems.append(Problem("security.E003", "CSRF protection is off (WTF_CSRF_ENABLED).",
                                "remove WTF_CSRF_ENABLED from the configuration."))
    if config.get("PREFERRED_URL_SCHEME") != "https" or not config.get("SESSION_COOKIE_SECURE"):
        problems.append(Problem(
            "security.E004",
            "PREFERRED_URL_SCHEME is not https, so cookies are sent without Secure.",
            'set PREFERRED_URL_SCHEME = "https" (and serve the site over TLS only).'))
    hosts = config.get("TRUSTED_HOSTS") or []
    if not hosts:
        problems.append(Problem(
            "security.E005", "TRUSTED_HOSTS is not set: a forged Host header is accepted.",
            'set TRUSTED_HOSTS = ["consult.example.com"] (the names the site answers to).'))
    problems += _check_public_base_url(config.get("PUBLIC_BASE_URL") or "", hosts)
    if not config.get("REQUIRE_MFA"):
        problems.append(Problem(
            "security.E008", "REQUIRE_MFA is off: staff sign in with a password alone.",
            "set REQUIRE_MFA = True (staff set up an authenticator at their next sign-in)."))
    problems += _check_rate_limits(config)
    problems += _check_mail(config)
    problems += _check_texts(config)
    token = config.get("HEALTHZ_TOKEN")
    if token and len(str(token)) < HEALTHZ_TOKEN_MIN_LENGTH:
        problems.append(Problem(
            "security.E011",
            f"HEALTHZ_TOKEN is shorter than {HEALTHZ_TOKEN_MIN_LENGTH} characters: guessable.",
            "set it to `python -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
            "or unset it to turn /healthz?detail=1 off."))
    if config.get("CALENDAR_ALLOW_PRIVATE_URLS"):
        problems.append(Problem(
            "security.E020",
            "CALENDAR_ALLOW_PRIVATE_URLS is on: a calendar address may point the server at "
            "its own network (and plain http on loopback).",
            "remove CALENDAR_ALLOW_PRIVATE_URLS (only tests and `make run` set it)."))
    if not config.get("PROXY_FIX_X_FOR"):
        problems.append(Problem(
            "security.W001",
            "PROXY_FIX_X_FOR is 0: behind a reverse proxy every client has the proxy's "
            "address, and rate limits count them all together.",
            "set PROXY_FIX_X_FOR = 1 and PROXY_FIX_X_PROTO = 1 behind one proxy "
            "(leave 0 only when clients connect to the app directly)."))
    problems += check_session_and_request_settings(config)
    problems += check_password_settings(config)
    return problems


# -- cookies, CSRF, proxy and host settings ---------------------------------------

def check_session_and_request_settings(config) -> list[Problem]:
    """Settings that loosen what the browser and the proxy are trusted with."""
    problems = []
    if not config.get("SESSION_COOKIE_HTTPONLY", True):
        problems.append(Problem(
            "cookies.E001", "SESSION_COOKIE_HTTPONLY is off: scripts can read the session "
            "cookie.", "remove SESSION_COOKIE_HTTPONLY from the configuration (it is on)."))
    if str(config.get("SESSION_COOKIE_SAMESITE")).capitalize() not in ("Lax", "Strict"):
        problems.append(Problem(
            "cookies.E002", "SESSION_COOKIE_SAMESITE is not Lax or Strict: other sites' "
            "requests carry the session cookie.",
            'set SESSION_COOKIE_SAMESITE = "Lax" (the default).'))
    if not config.get("WTF_CSRF_SSL_STRICT", True):
        problems.append(Problem(
            "csrf.E001", "WTF_CSRF_SSL_STRICT is off: a POST over https is taken without "
            "a same-origin Referer.", "remove WTF_CSRF_SSL_STRICT from the configuration."))
    if _as_int(config.get("PROXY_FIX_X_HOST")) != 0:
        problems.append(Problem(
            "proxy.E001", "PROXY_FIX_X_HOST is set: the Host of every link the site builds "
            "comes from a header any client can send (X-Forwarded-Host).",
            "set PROXY_FIX_X_HOST = 0; the proxy passes the real Host (proxy_set_header "
            "Host $host)."))
    wildcards = [host for host in config.get("TRUSTED_HOSTS") or []
                 if not isinstance(host, str) or host.startswith(".")]
    if wildcards:
        problems.append(Problem(
            "hosts.E001", f"TRUSTED_HOSTS holds a wildcard ({', '.join(map(str, wildcards))}): "
            "every subdomain, and whoever controls one, is trusted.",
            "list each name the site answers to in full, like \"consult.example.com\"."))
    return problems


# -- passwords and sign-in ------------------------------------------------------------

# OWASP's password storage minimums.
SCRYPT_MIN_N = 2 ** 17
PBKDF2_MIN_ITERATIONS = {"sha256": 600_000, "sha512": 210_000}
PASSWORD_MIN_LENGTH_FLOOR = 12
LOGIN_MAX_FAILURES_CEILING = 10


def password_hash_is_weak(method) -> bool:
    """Werkzeug's method string below OWASP's minimums: scrypt N=2^17, r=8, p=1;
    PBKDF2-HMAC-SHA256 600,000 iterations (SHA-512: 210,000). Unknown is weak."""
    name, *args = str(method or "").split(":")
    try:
        if name == "scrypt":  # scrypt[:n[:r[:p]]]; Werkzeug's own n is 2^15
            n, r, p = [int(arg) for arg in args] + [2 ** 15, 8, 1][len(args):]
            return n < SCRYPT_MIN_N or r < 8 or p < 1
        if name == "pbkdf2":  # pbkdf2[:hash[:iterations]]; Werkzeug's own is sha256, 10^6
            digest = args[0] if args else "sha256"
            iterations = int(args[1]) if len(args) > 1 else 1_000_000
            return iterations < PBKDF2_MIN_ITERATIONS.get(digest, float("inf"))
    except ValueError:
        return True
    return True


def check_password_settings(config) -> list[Problem]:
    problems = []
    method = config.get("PASSWORD_HASH_METHOD")
    if password_hash_is_weak(method):
        problems.append(Problem(
            "passwords.E001", f"PASSWORD_HASH_METHOD {method!r} is weaker than OWASP's "
            "minimum: stolen hashes would be cracked quickly.",
            'set PASSWORD_HASH_METHOD = "scrypt:131072:8:1" (the default).'))
    if _as_int(config.get("PASSWORD_MIN_LENGTH")) < PASSWORD_MIN_LENGTH_FLOOR:
        problems.append(Problem(
            "passwords.E002",
            f"PASSWORD_MIN_LENGTH is below {PASSWORD_MIN_LENGTH_FLOOR} characters.",
            f"set PASSWORD_MIN_LENGTH = {PASSWORD_MIN_LENGTH_FLOOR} (the default) or more."))
    failures = _as_int(config.get("LOGIN_MAX_FAILURES"))
    if not 0 < failures <= LOGIN_MAX_FAILURES_CEILING:
        problems.append(Problem(
            "passwords.E003", f"LOGIN_MAX_FAILURES is not between 1 and "
            f"{LOGIN_MAX_FAILURES_CEILING}: passwords can be guessed without a lock.",
            "set LOGIN_MAX_FAILURES = 5 (the default)."))
    return problems


def _as_int(value) -> int:
    """A number setting as the app uses it; what is no number counts as -1 (unsafe)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


def _check_public_base_url(url: str, hosts: list[str]) -> list[Problem]:
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https":
        problems.append(Problem(
            "security.E006", "PUBLIC_BASE_URL is not https: links in emails go out in clear.",
            'set PUBLIC_BASE_URL = "https://consult.example.com".'))
    host = parts.hostname or ""
    if not host or _is_local(host):
        problems.append(Problem(
            "security.E007",
            "PUBLIC_BASE_URL points at this machine (or has no host): links in emails "
            "cannot work for clients.",
            "set PUBLIC_BASE_URL to the site's public address."))
    elif hosts and not host_is_trusted(host, hosts):
        problems.append(Problem(
            "security.E012",
            f"PUBLIC_BASE_URL's host {host} is not in TRUSTED_HOSTS: links in emails "
            "would be refused with 400.",
            f"add {host!r} to TRUSTED_HOSTS."))
    return problems


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


def _check_rate_limits(config) -> list[Problem]:
    if not config.get("RATELIMIT_ENABLED", True):
        return [Problem("security.E009", "Rate limits are off (RATELIMIT_ENABLED).",
                        "remove RATELIMIT_ENABLED from the configuration.")]
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if storage.startswith("memory://"):
        return [Problem(
            "security.E010",
            "RATELIMIT_STORAGE_URI is memory://: each worker counts on its own, so the "
            "limits are as many times higher as there are workers, and reset on restart.",
            'set RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/0" (shared by all workers).')]
    if not _storage_answers(storage, config.get("RATELIMIT_STORAGE_OPTIONS") or {}):
        # Flask-Limiter would then fail every limited request with a 500.
        scheme = storage.partition("://")[0]
        return [Problem(
            "security.E013", f"The rate-limit storage ({scheme}) does not answer.",
            "start it, or correct RATELIMIT_STORAGE_URI.")]
    return []


def _storage_answers(uri: str, options: dict) -> bool:
    if uri.startswith(("redis", "rediss")):
        options = {"socket_connect_timeout": 3, "socket_timeout": 3, **options}
    try:
        return bool(storage_from_string(uri, **options).check())
    except Exception:  # noqa: BLE001 - a bad URI or a missing driver: it does not answer
        return False


def _check_mail(config) -> list[Problem]:
    if config.get("MAIL_BACKEND") != "smtp":
        return [Problem(
            "mail.E001", f"MAIL_BACKEND is {config.get('MAIL_BACKEND')!r}: no email leaves.",
            'set MAIL_BACKEND = "smtp" with MAIL_SERVER, MAIL_PORT and MAIL_USE_TLS.')]
    if config.get("MAIL_USE_TLS") or config.get("MAIL_USE_SSL"):
        return []
    server = str(config.get("MAIL_SERVER") or "")
    if _is_local(server):
        return [Problem(
            "mail.W001",
            f"Mail goes to a relay on this machine ({server}) without TLS.",
            "make sure that relay sends on over TLS, or set MAIL_USE_TLS = True.")]
    return [Problem(
        "mail.E002",
        f"Mail goes to {server or 'the SMTP server'} without TLS: clients' names and "
        "booking details cross the network in clear.",
        "set MAIL_USE_TLS = True (STARTTLS, port 587) or MAIL_USE_SSL = True (port 465).")]


def _check_texts(config) -> list[Problem]:
    """SMS_BACKEND (portal.texts): Twilio needs its credentials, a sender and an https
    public address (its webhooks are signed for that address)."""
    backend = config.get("SMS_BACKEND")
    if backend == "sink":
        return [Problem(
            "sms.W001", "SMS_BACKEND is 'sink': texts clients agreed to are written to files "
            "and never sent.",
            'set SMS_BACKEND = "twilio" with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and '
            "TWILIO_FROM (see the README's section on texts).")]
    if backend != "twilio":
        return [Problem("sms.E001", f"SMS_BACKEND is {backend!r}: it must be 'twilio' or 'sink'.",
                        'set SMS_BACKEND = "twilio" (or "sink").')]
    problems = []
    missing = [key for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not config.get(key)]
    if missing:
        problems.append(Problem(
            "sms.E002", f"SMS_BACKEND is 'twilio' but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set: no text can be sent or checked.",
            "set both from the Twilio console (Account Info)."))
    if not (config.get("TWILIO_FROM") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
        problems.append(Problem(
            "sms.E003", "SMS_BACKEND is 'twilio' but no sender is set.",
            "set TWILIO_FROM to the practice's registered number (E.164, like +14155550123) "
            "or TWILIO_MESSAGING_SERVICE_SID to its messaging service."))
    if not str(config.get("PUBLIC_BASE_URL") or "").startswith("https://"):
        problems.append(Problem(
            "sms.E004", "SMS_BACKEND is 'twilio' but PUBLIC_BASE_URL is not https: Twilio's "
            "delivery reports and replies would cross the network in clear.",
            "set PUBLIC_BASE_URL to the site's https address."))
    return problems


def check_database(app: Flask) -> list[Problem]:
    """The database answers, and its schema is at the newest migration."""
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database and not (
            url.database == ":memory:" or os.path.exists(url.database)):
        # Connecting would create an empty file, and hide the mistake.
        return [Problem(
            "database.E001", f"The SQLite database file {url.database} does not exist.",
            "check SQLALCHEMY_DATABASE_URI, or create it with `flask --app portal db upgrade`.")]
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        return [Problem(
            "database.E001",
            f"The database cannot be reached ({type(error).__name__}).",
            "check SQLALCHEMY_DATABASE_URI and that the database server is running.")]
    heads = set(migration_heads(app))
    if current != heads:
        found = ", ".join(sorted(current)) or "no migration"
        return [Problem(
            "database.E002",
            f"The database is not at the newest migration (it is at {found}; "
            f"the code expects {', '.join(sorted(heads))}).",
            "run `flask --app portal db upgrade`.")]
    return []


def migration_heads(app: Flask) -> tuple[str, ...]:
    config = Config()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config).get_heads()


def check_outbox(config, now: datetime) -> list[Problem]:
    """Mail that is due but not leaving: no sender running, or one that is stuck."""
    queued = db.session.scalar(select(func.min(OutboxEmail.next_attempt_at)).where(
        OutboxEmail.status == OutboxState.QUEUED, OutboxEmail.next_attempt_at <= now))
    # A row a sender claimed and stopped renewing is due since its lease ran out.
    abandoned = db.session.scalar(select(func.min(OutboxEmail.claimed_until)).where(
        OutboxEmail.status == OutboxState.SENDING, OutboxEmail.claimed_until < now))
    failed = db.session.scalar(select(func.count(OutboxEmail.id)).where(
        OutboxEmail.status == OutboxState.FAILED))
    db.session.rollback()
    problems = []
    oldest = min((when for when in (queued, abandoned) if when is not None), default=None)
    if oldest is not None:
        minutes = int((now - oldest).total_seconds() // 60)
        how = ("the mail sender is not running or is stuck; start "
               "`flask --app portal outbox work` (or check its log).")
        if minutes >= int(config["OUTBOX_STUCK_ERROR_MINUTES"]):
            problems.append(Problem(
                "outbox.E001", f"Due email has waited {minutes} minutes to be sent.", how))
        elif minutes >= int(config["OUTBOX_STUCK_WARNING_MINUTES"]):
            problems.append(Problem(
                "outbox.W001", f"Due email has waited {minutes} minutes to be sent.", how))
    if failed:
        problems.append(Problem(
            "outbox.W002", f"{failed} email{'s' if failed != 1 else ''} failed for good.",
            "see the back office's outbox page for why; once fixed, run "
            "`flask --app portal outbox retry-failed`."))
    return problems


def check_encryption(config, *, database_ok: bool) -> list[Problem]:
    """ENCRYPTION_KEYS is set, well formed, and reads every stored encrypted value (a
    key removed before `rotate-keys` finished would leave some unreadable)."""
    try:
        keys = encryption.Keyring(encryption.parse_keys(config.get(encryption.CONFIG_KEY)))
    except encryption.EncryptionKeyError as error:
        return [Problem("encryption.E001", str(error),
                        "set FLASK_ENCRYPTION_KEYS, newest key first.")]
    if not database_ok:
        return []
    try:
        with db.engine.connect() as connection:
            missing = encryption.unreadable_key_ids(
                connection, keys, encryption.encrypted_columns(db.metadata))
    except SQLAlchemyError as error:
        return [Problem("encryption.E002",
                        f"The encrypted values could not be read ({type(error).__name__}).",
                        "check the database.")]
    if not missing:
        return []
    count = sum(missing.values())
    return [Problem(
        "encryption.E002",
        f"{count} stored value{'s' if count != 1 else ''} can't be decrypted with "
        f"ENCRYPTION_KEYS (key{'s' if len(missing) != 1 else ''} "
        f"{', '.join(sorted(missing))}).",
        "add the key they were written with back to ENCRYPTION_KEYS (after the newest), "
        "then run `flask --app portal rotate-keys`.")]
