"""The consultation portal's application factory."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from portal import commands, database, encryption, i18n, texts
from portal.admin import bp as admin_bp
from portal.auth import bp as auth_bp
from portal.booking import business_days
from portal.calendars import feed as calendar_feed
from portal.extensions import csrf, db, limiter, login_manager, mail, migrate
from portal.messages import senders
from portal.public import bp as public_bp
from portal.readiness import SECRET_KEY_PROBLEM, secret_key_is_weak
from portal.web import edge, errors, fragments, health, security
from portal.web.numbers import IdConverter


class ConfigurationError(click.ClickException, RuntimeError):
    """Settings the portal refuses to run with. The flask command prints it as one
    ``Error: ...`` line (``flask --app portal check`` included) and exits 1."""


def create_app(
    test_config: Mapping[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """The portal. Its instance folder (``config.py``, the SQLite file, the mail sink)
    is ``instance_path``, else ``PORTAL_INSTANCE_PATH`` from the environment, else the
    checkout's ``instance/``."""
    app = Flask(
        __name__,
        instance_path=instance_folder(instance_path),
        instance_relative_config=True,
        template_folder=beside_the_package("templates"),
        static_folder=beside_the_package("static"),
    )
    load_config(app, test_config)
    configure_logging(app)
    register_extensions(app)
    load_encryption_keys(app)
    register_blueprints(app)
    errors.register(app)
    edge.register(app)
    security.register(app)
    commands.register(app)
    if app.config["OUTBOX_BACKGROUND"] and not app.testing:
        senders.start_background_sender(app)
    return app


def beside_the_package(folder: str) -> str:
    """``templates`` or ``static``: inside the package in an installed wheel (setup.py
    puts them there), else the checkout's top-level folder."""
    package = Path(__file__).resolve().parent
    inside = package / folder
    return str(inside if inside.is_dir() else package.parent / folder)


def instance_folder(chosen: str | None) -> str | None:
    """An absolute instance folder, or None for Flask's default (``instance/`` beside
    the package)."""
    chosen = chosen or os.environ.get("PORTAL_INSTANCE_PATH") or None
    return os.path.abspath(chosen) if chosen else None


def load_config(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    app.config.from_object("portal.config")
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env()
    keep_secrets_as_typed(app)
    if test_config:
        app.config.from_mapping(test_config)
    # The same rule as `flask --app portal check` (security.E001), so that a key the
    # app starts with is never one the check fails.
    if not (app.debug or app.testing) and secret_key_is_weak(app.config["SECRET_KEY"]):
        raise ConfigurationError(SECRET_KEY_PROBLEM.line())
    try:
        business_days.parse_holidays(app.config["HOLIDAYS"])
    except (TypeError, ValueError) as error:
        raise RuntimeError(f"{error} (in HOLIDAYS, a list of dates)") from None
    app.config["SESSION_COOKIE_SECURE"] = app.config["PREFERRED_URL_SCHEME"] == "https"
    app.config.setdefault("MAIL_SUPPRESS_SEND", False)
    app.config["SQLALCHEMY_ECHO"] = False
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = database.engine_options(app.config)
    app.config["MAIL_DEBUG"] = False
    if app.config["PROXY_FIX_X_FOR"] or app.config["PROXY_FIX_X_PROTO"]:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=int(app.config["PROXY_FIX_X_FOR"]),
            x_proto=int(app.config["PROXY_FIX_X_PROTO"]),
            x_host=int(app.config["PROXY_FIX_X_HOST"]),
        )


# Secrets are strings whatever they look like: from_prefixed_env parses values as JSON,
# so an all-digit FLASK_HEALTHZ_TOKEN would become a number (and "1e5" another number).
SECRETS_AS_TYPED = ("SECRET_KEY", "HEALTHZ_TOKEN", "MAIL_PASSWORD", "TWILIO_AUTH_TOKEN")


def keep_secrets_as_typed(app: Flask) -> None:
    for key in SECRETS_AS_TYPED:
        value = os.environ.get(f"FLASK_{key}")
        if value is not None and not isinstance(app.config.get(key), str):
            app.config[key] = value


def load_encryption_keys(app: Flask) -> None:
    """ENCRYPTION_KEYS, checked against the newest stored values: a missing, malformed
    or wrong key stops the start with one line, rather than a page failing halfway."""
    try:
        encryption.init_app(app)
    except encryption.EncryptionKeyError as error:
        raise ConfigurationError(str(error)) from None
    with app.app_context():
        problem = encryption.newest_values_problem(
            db.engine, encryption.keyring(), encryption.encrypted_columns(db.metadata))
        if problem:
            db.engine.dispose()  # this app goes no further: nor do its connections
            raise ConfigurationError(problem)


def configure_logging(app: Flask) -> None:
    if not app.logger.handlers or app.logger.handlers == [logging.lastResort]:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app.logger.setLevel(logging.INFO)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    database.close_sessions_harmlessly(app)
    migrate.init_app(app, db, directory=os.path.join(app.root_path, "migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    # Flask-Login's own context processor loads the user for every template: on a public
    # page, where no one signs in, that runs its session protection against an anonymous
    # session, rewrites the session and deletes a remember cookie on every response.
    # The proxy loads the user only where a template asks (the back office's).
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(lambda: {"current_user": current_user})
    limiter.init_app(app)
    i18n.init_app(app)
    fragments.init_app(app)
    with app.app_context():
        database.track_engine(db.engine)


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.register_blueprint(health.bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(calendar_feed.bp)
    texts.init_app(app)  # the /sms webhooks and the short links in texts
