"""Extension objects, created unbound so that any module can import them."""

from flask import Flask, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from portal.networks import client_network

# Stable constraint names, so that migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()
mail = Mail()
babel = Babel()
login_manager = LoginManager()


def limit_key() -> str:
    """Whom a limit counts: the client's network (an IPv6 /64, an IPv4 address).
    remote_addr is trustworthy because ProxyFix is set to the number of real proxies."""
    return client_network(request.remote_addr)


class PortalLimiter(Limiter):
    """Flask-Limiter, failing open to per-process counts while its storage is down
    (``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``, ``RATELIMIT_SWALLOW_ERRORS``)."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # One limiter object serves each app made (tests make many): an outage seen
        # by an earlier app's storage says nothing about this one's.
        self._storage_dead = False


limiter = PortalLimiter(limit_key)
