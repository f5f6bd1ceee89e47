"""Command-line tools: ``flask --app portal <command>``. Each wraps a domain function
and owns the commit."""

from __future__ import annotations

import os
import time

import click
from flask import Flask
from flask.cli import with_appcontext

from portal import demo
from portal.accounts import AccountError, create_user
from portal.extensions import db
from portal.models import ROLES


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_user_command)


@click.command("seed-demo")
@click.option("--requests", "request_count", type=click.IntRange(min=0), default=0,
              help="Also add this many synthetic requests spread over the past year.")
@with_appcontext
def seed_demo_command(request_count: int) -> None:
    """Add demo therapists with weekly hours and a demo admin (idempotent)."""
    added = demo.seed_therapists()
    password = demo.seed_admin()
    db.session.commit()
    click.echo(f"Demo therapists added: {added}.")
    if password:
        click.echo(f"Demo admin: {demo.DEMO_ADMIN_EMAIL}  password: {password}")
    else:
        click.echo(f"Demo admin {demo.DEMO_ADMIN_EMAIL} already exists (password unchanged; "
                   "reset it with create-user --reset-password).")
    if request_count:
        started = time.perf_counter()
        demo.seed_requests(request_count)
        db.session.commit()
        click.echo(f"Synthetic requests added: {request_count} "
                   f"in {time.perf_counter() - started:.1f} s.")


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--therapist-id", type=int, default=None,
              help="Link a therapist user to a therapist.")
@click.option("--reset-password", is_flag=True, help="Give an existing user a new password.")
@with_appcontext
def create_user_command(email: str, role: str, therapist_id: int | None,
                        reset_password: bool) -> None:
    """Create a back-office user (password from PORTAL_PASSWORD or a prompt)."""
    password = os.environ.get("PORTAL_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        user, created = create_user(email, password, role, therapist_id=therapist_id,
                                    reset_password=reset_password)
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} {user.role} {user.email}.")
