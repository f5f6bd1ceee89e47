"""Default configuration. Overridden by instance/config.py, then FLASK_* environment variables."""

from datetime import timedelta

from portal.i18n import N_

SECRET_KEY = None  # must come from instance/config.py or FLASK_SECRET_KEY
# Keys for the free text stored encrypted (portal.encryption): the base64 of 32 random
# bytes each, newest first (new values use the first; `flask --app portal rotate-keys`
# rewrites the rest under it). A list, or FLASK_ENCRYPTION_KEYS="new,old". Required.
ENCRYPTION_KEYS = None

PRACTICE_NAME = "Woven Together Trauma Therapy"
PRACTICE_NOTIFY_EMAIL = "intake@example.com"
PRACTICE_PHONE = "(555) 010-0199"
PUBLIC_BASE_URL = "http://127.0.0.1:5000"
REPLY_WITHIN = "one business day"
# Days the practice is closed besides weekends (ISO dates): the reply promise and the
# dashboard's business hours skip them. US federal holidays as observed (a Saturday
# holiday on the Friday before, a Sunday one on the Monday after), with the day after
# Thanksgiving, for 2026 and 2027; 2027-12-31 is New Year's Day 2028 observed.
# Add next year's before it starts.
HOLIDAYS = [
    "2026-01-01", "2026-01-19", "2026-02-16", "2026-05-25", "2026-06-19", "2026-07-03",
    "2026-09-07", "2026-11-26", "2026-11-27", "2026-12-25",
    "2027-01-01", "2027-01-18", "2027-02-15", "2027-05-31", "2027-06-18", "2027-07-05",
    "2027-09-06", "2027-11-25", "2027-11-26", "2027-12-24", "2027-12-31",
]
# Where "Exit this page" goes: a neutral, fast site that says nothing about therapy
# (GOV.UK's own example is the BBC weather page).
EXIT_URL = "https://www.bbc.com/weather"
PRIVACY_NOTICE_VERSION = "2026-11"
# The day the accessibility statement (/accessibility) was last reviewed, as written there.
ACCESSIBILITY_REVIEWED = "2026-12-06"
# The languages clients may choose (portal/i18n.py): the "Español" / "English" link,
# and Accept-Language. A language leaves this list only if its catalog falls behind.
CLIENT_LANGUAGES = ["en", "es"]
# Where to turn for help elsewhere: shown on the not-eligible page and in the email
# to a client the practice can't see (a "not a fit" decline). Each entry: "name",
# "about" (one plain sentence), and "phone" (as people write it, with "tel" for the
# link; "text": True when texting works too) and/or "url". Public, well-known
# resources only, and plain links: no tracking parameters. "states": the only states an
# entry serves (the not-eligible page leaves it out for people elsewhere); none: all.
REFERRALS = [
    {"name": N_("988 Suicide & Crisis Lifeline"), "phone": "988", "tel": "988", "text": True,
     "url": "https://988lifeline.org/",
     "about": N_("Any time, day or night, anywhere in the US. Free and confidential.")},
    {"name": N_("SAMHSA National Helpline"), "phone": "1-800-662-4357", "tel": "+18006624357",
     "url": "https://www.samhsa.gov/find-help/helplines/national-helpline",
     "about": N_("Free, confidential help finding treatment near you, 24 hours a day, in "
                 "English and Spanish.")},
    {"name": N_("FindTreatment.gov"), "url": "https://findtreatment.gov/",
     "about": N_("The US government's directory of treatment services, in every state.")},
    {"name": N_("Psychology Today therapist directory"),
     "url": "https://www.psychologytoday.com/us/therapists",
     "about": N_("Search for therapists by state, ZIP code, insurance and what you'd like "
                 "help with.")},
    {"name": N_("CAMFT Find a Therapist"), "url": "https://www.camft.org/", "states": ["CA"],
     "about": N_("The California Association of Marriage and Family Therapists' directory "
                 "of California therapists.")},
    {"name": N_("California county mental health access lines"),
     "url": "https://www.dhcs.ca.gov/individuals/Pages/MHPContactList.aspx", "states": ["CA"],
     "about": N_("Each California county has a free line that connects residents to "
                 "mental health care, including for people with Medi-Cal.")},
    {"name": N_("Open Path Collective"), "url": "https://openpathcollective.org/",
     "about": N_("A nonprofit network of therapists who offer lower-fee sessions.")},
]

SQLALCHEMY_DATABASE_URI = "sqlite:///portal.sqlite3"  # relative to instance/
SQLALCHEMY_ECHO = False  # bound parameters would put personal data in the logs
SQLALCHEMY_RECORD_QUERIES = False
# Keep bound values (names, emails) out of exception messages and logs. On PostgreSQL
# portal/database.py checks pooled connections without pool_pre_ping's round trip.
SQLALCHEMY_ENGINE_OPTIONS = {"hide_parameters": True, "pool_pre_ping": True}
# PostgreSQL only (portal/database.py), in seconds; 0 turns one off. A page whose
# database does not answer within them is the kind 503 page, not a worker tied up for
# gunicorn's 30 s. The statement timeout holds for every statement, the commands'
# included (purge, outbox work, migrations): raise it for a long migration.
DATABASE_CONNECT_TIMEOUT = 5
DATABASE_STATEMENT_TIMEOUT = 5

# Mail: "smtp" (Flask-Mail) or "sink" (.eml files in instance/mail/).
MAIL_BACKEND = "smtp"
MAIL_SERVER = "localhost"
MAIL_PORT = 25
MAIL_USE_TLS = False
MAIL_USE_SSL = False
MAIL_USERNAME = None
MAIL_PASSWORD = None
MAIL_DEFAULT_SENDER = "Consultations <consultations@example.com>"  # its address is used
# The name every email comes from, in every language; None: PRACTICE_NAME.
MAIL_SENDER_NAME = None
MAIL_DEBUG = False  # the SMTP conversation carries personal data
MAIL_TIMEOUT = 10
MAIL_SINK_DIR = "mail"  # relative to instance/
# The .ics UID's domain: fixed, so that changing the sender address does not
# make calendars see every booking as a new event.
CALENDAR_UID_DOMAIN = "consultations.portal"
# Therapists' own calendars (portal.calendars). A calendar not read successfully for
# this long makes its therapist offer no times (fail closed).
CALENDAR_STALE_MINUTES = 15
# Calendar addresses on loopback, link-local or private networks (and plain http to
# loopback) are refused unless this is set: tests and `make run` only.
CALENDAR_ALLOW_PRIVATE_URLS = False
# The bound on one calendar's read: its whole time, its size, its events.
CALENDAR_TIMEOUT_SECONDS = 20
CALENDAR_MAX_BYTES = 5 * 1024 * 1024
CALENDAR_MAX_EVENTS = 20000
# How often `make run`'s background worker reads the calendars.
CALENDAR_SYNC_MINUTES = 5
# Text messages (portal.texts): "twilio" (its Messaging API) or "sink" (one file per text
# in SMS_SINK_DIR, relative to instance/; what `make run` uses). A messaging service
# SID (TWILIO_MESSAGING_SERVICE_SID) may stand in for the TWILIO_FROM number. The
# webhooks check X-Twilio-Signature with TWILIO_AUTH_TOKEN whatever the backend.
SMS_BACKEND = "sink"
SMS_SINK_DIR = "sms"
TWILIO_ACCOUNT_SID = None
TWILIO_AUTH_TOKEN = None
TWILIO_FROM = None
TWILIO_MESSAGING_SERVICE_SID = None
SMS_TIMEOUT_SECONDS = 10
# The name texts start with (as registered for A2P 10DLC). None: PRACTICE_NAME, unless
# that names a specialty (texts never do): then texts carry no name.
SMS_SENDER_NAME = None
OUTBOX_BACKGROUND = False
# Rows one claim leases. Small, so that a sender dying mid-batch strands few
# messages (they wait out the lease, then go in the next sender's round).
OUTBOX_BATCH_SIZE = 20
# Give up after about two days, so an outage over a weekend night loses nothing.
# Back-off after attempt k is min(60 s * 2^(k-1), 6 h), jittered to 50-100 %:
# the first 9 waits add up to 60 * (2^9 - 1) = 30,660 s (8.5 h), the next 10 are
# capped at 6 h each (216,000 s), so 19 waits between 20 attempts come to
# 246,660 s nominal: between 34 h and 69 h, about 51 h on average.
OUTBOX_MAX_ATTEMPTS = 20
# How long a claimed row stays a sender's without word from it. A sender renews
# the lease before a send once less than 3/4 of it is left, so one send may take
# 3/4 of it (15 s: keep that above MAIL_TIMEOUT) before another sender takes the
# row over and sends it again. A killed sender's rows are free again after at
# most this long: 20 s + OUTBOX_POLL_SECONDS + a batch stays under the 30 s the
# design promises.
OUTBOX_LEASE_SECONDS = 20
OUTBOX_BACKOFF_BASE_SECONDS = 60
# Code emails (and the "already" note sent in their place): someone is waiting at the
# code page, so 2, 4, 8, then every 15 s at most (jittered to 50-100 %) through an
# SMTP outage, for as long as the request's hold lasts.
OUTBOX_CODE_BACKOFF_BASE_SECONDS = 2
OUTBOX_CODE_MAX_BACKOFF_SECONDS = 15
OUTBOX_POLL_SECONDS = 3
# After a failed round (the database away): 3, 6, 12, then every 15 s at most.
OUTBOX_ERROR_BACKOFF_MAX_SECONDS = 15
OUTBOX_KEEP_BODIES_DAYS = 14

# Scheduling
SLOT_MINUTES = 30
MIN_NOTICE_HOURS = 24
BOOKING_HORIZON_DAYS = 21
MANAGE_TOKEN_MAX_AGE_DAYS = 60
# A request waits this long for the code emailed to its address, holding its time;
# then it is deleted (only an anonymous count stays).
VERIFY_HOLD_MINUTES = 30
# Times unconfirmed requests may hold at once: from one network (an IPv6 /64, an IPv4
# address: a household, an office, a carrier's shared address) and for one therapist.
# A visitor over either is asked to choose "contact me" instead (portal.booking.holds).
UNVERIFIED_HOLDS_PER_NETWORK = 3
UNVERIFIED_HOLDS_PER_THERAPIST = 6

# Anti-abuse
RATELIMIT_ENABLED = True
RATELIMIT_STORAGE_URI = "memory://"
RATELIMIT_HEADERS_ENABLED = True  # Retry-After on the 429 page
# Redis down must not turn away someone asking for help: each process counts in its
# own memory until Redis answers again (Flask-Limiter logs the switch and the return),
# and an error in counting lets the request through. A Redis that stops answering
# costs a request at most a second before that switch.
RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
RATELIMIT_SWALLOW_ERRORS = True
RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
# Counted only when a POST did something (redirected); every POST counts against
# the attempt limit, which leaves room for many rounds of fixing errors.
CONSULTATION_RATE_LIMIT = "10 per hour; 3 per minute"
CONSULTATION_ATTEMPT_LIMIT = "100 per hour; 30 per minute"
LOGIN_RATE_LIMIT = "10 per 5 minutes"
LOGIN_ACCOUNT_RATE_LIMIT = "20 per hour"
FORM_MIN_SECONDS = 3
PROXY_FIX_X_FOR = 0
PROXY_FIX_X_PROTO = 0
PROXY_FIX_X_HOST = 0
TRUSTED_HOSTS = None

# Back office
LOGIN_MAX_FAILURES = 5
LOGIN_LOCK_MINUTES = 15
SESSION_IDLE_MINUTES = 30
STALE_NEW_BUSINESS_HOURS = 8
PASSWORD_MIN_LENGTH = 12
# A second factor (TOTP) for every staff account; `make run` turns it off for the demo.
REQUIRE_MFA = True
SIGN_IN_STEP_MINUTES = 10  # between the password and the code (or finishing enrolment)
STAFF_INVITE_HOURS = 48
STAFF_RESET_MINUTES = 30
PASSWORD_HASH_METHOD = "scrypt:131072:8:1"  # noqa: S105 - a method name, not a password

# HTTP
PREFERRED_URL_SCHEME = "http"
MAX_CONTENT_LENGTH = 64 * 1024
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
WTF_CSRF_TIME_LIMIT = 3600

# Operations
# A bearer token for GET /healthz?detail=1 (the checks of `flask --app portal check`);
# unset, the detail is off. At least 32 random characters.
HEALTHZ_TOKEN = None
# Due email waiting this long means no sender is running: a warning, then an error.
OUTBOX_STUCK_WARNING_MINUTES = 10
OUTBOX_STUCK_ERROR_MINUTES = 60
