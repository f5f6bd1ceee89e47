"""Text messages: consent, texts through the outbox's ``sms`` channel, Twilio or the
sink, delivery reports, STOP/START/HELP, quiet hours and reminders (DESIGN, "Text
messages"). ``init_app`` adds the webhooks and what the back office's pages read."""

from __future__ import annotations

from flask import Flask

from portal.texts import models  # noqa: F401 - the tables join the metadata


def init_app(app: Flask) -> None:
    from portal.texts import staff, webhooks

    app.register_blueprint(webhooks.bp)
    app.add_template_global(staff.panel, "text_panel")
    app.add_template_global(staff.figures, "text_figures")
