# Copy to instance/config.py and adjust. Environment variables with the FLASK_
# prefix (FLASK_SECRET_KEY, FLASK_MAIL_SERVER, ...) override these values.

# SECRET_KEY: deliberately not set here, so that no copy runs with a placeholder (the
# portal refuses to start without a strong one). Generate one, the same for every
# worker and host, and put it in FLASK_SECRET_KEY (deploy/portal.env) or a line here:
#   python -c "import secrets; print(f'SECRET_KEY = {secrets.token_hex(32)!r}')"

# ENCRYPTION_KEYS: likewise not set here. The keys messages and notes are stored
# encrypted with, newest first; keep a copy away from the backups:
#   python -c "import base64, os; print(f'ENCRYPTION_KEYS = [{base64.b64encode(os.urandom(32)).decode()!r}]')"

PRACTICE_NAME = "Woven Together Trauma Therapy"
PRACTICE_NOTIFY_EMAIL = "intake@your-practice.example"
PUBLIC_BASE_URL = "https://consult.your-practice.example"
PREFERRED_URL_SCHEME = "https"
TRUSTED_HOSTS = ["consult.your-practice.example"]

SQLALCHEMY_DATABASE_URI = "postgresql+psycopg://portal@127.0.0.1:5432/portal"

MAIL_BACKEND = "smtp"
MAIL_SERVER = "smtp.your-practice.example"
MAIL_PORT = 587
MAIL_USE_TLS = True
MAIL_USERNAME = "consultations@your-practice.example"
MAIL_PASSWORD = "..."
MAIL_DEFAULT_SENDER = "Consultations <consultations@your-practice.example>"

# Texts (README, "Text messages"): Twilio, once the practice's number is registered
# for A2P 10DLC. SMS_BACKEND = "sink" writes them to instance/sms/ instead.
SMS_BACKEND = "twilio"
TWILIO_ACCOUNT_SID = "AC..."
TWILIO_AUTH_TOKEN = "..."
TWILIO_FROM = "+14155550100"
SMS_SENDER_NAME = "Woven Together"

# Several gunicorn workers or hosts: share the rate-limit counters.
RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/0"
PROXY_FIX_X_FOR = 1
PROXY_FIX_X_PROTO = 1

# For monitoring: GET /healthz?detail=1 with "Authorization: Bearer <token>" shows
# the checks of `flask --app portal check`. Unset, that detail is off.
# python -c "import secrets; print(secrets.token_urlsafe(32))"
# HEALTHZ_TOKEN = "..."
