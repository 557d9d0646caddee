"""`flask convene ...`: commands for organizers and operators; they only call services."""
from __future__ import annotations

import secrets

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from convene.errors import ConveneError
from convene.extensions import db

convene_cli = AppGroup("convene", help="Convene commands: accounts, demo data, mail, waitlist.")


@convene_cli.command("create-organizer")
@click.argument("email")
@click.option("--password", help="Password to set (prompted for when omitted; use --generate for a random one).")
@click.option("--generate", is_flag=True, help="Generate a random password and print it.")
@click.option("--staff", is_flag=True, help="Make a staff account (read registrations, print, check in).")
@click.option("--name", default="", help="Display name.")
def create_organizer(email: str, password: str | None, generate: bool, staff: bool, name: str) -> None:
    """Make a back-office account for EMAIL."""
    from convene.models import UserRole
    from convene.services.users import create_user

    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, password, role=UserRole.STAFF if staff else UserRole.ORGANIZER, name=name)
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Created {user.role} account {user.email}.")
    if generate:
        click.echo(f"Password: {password}")


@convene_cli.command("demo")
def demo() -> None:
    """Load the demo convening (does nothing when it is already there) and print the organizer login."""
    from convene.services.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, load_demo

    convening, created = load_demo()
    if created:
        click.echo(f"Loaded demo convening '{convening.name}' at /c/{convening.slug}/.")
    else:
        click.echo(f"Demo convening '{convening.name}' is already loaded.")
    click.echo(f"Organizer login: {DEMO_ORGANIZER_EMAIL} / {DEMO_ORGANIZER_PASSWORD}")


@convene_cli.command("demo-if-empty")
def demo_if_empty() -> None:
    """Load the demo convening only when the database has no convening at all (used by `make run`)."""
    from convene.models import Convening
    from convene.services.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, load_demo

    if db.session.execute(sa.select(Convening.id).limit(1)).first() is None:
        convening, _ = load_demo()
        click.echo(f"Loaded demo convening '{convening.name}'.")
    click.echo("")
    click.echo("  Organizer login (demo): http://127.0.0.1:5000/admin/login")
    click.echo(f"    email:    {DEMO_ORGANIZER_EMAIL}")
    click.echo(f"    password: {DEMO_ORGANIZER_PASSWORD}")
    click.echo("")


@convene_cli.command("send-mail")
def send_mail() -> None:
    """Deliver emails still waiting in the outbox (after a mail-server outage, say)."""
    from convene.services.mail import deliver_outbox

    click.echo(f"Delivered {deliver_outbox()} message(s).")


@convene_cli.command("expire-offers")
def expire_offers() -> None:
    """Release waitlist offers past their deadline and offer the seats on (run it from cron)."""
    from convene.services.mail import deliver_outbox
    from convene.services.registrations import expire_offers as expire

    lapsed = expire()
    deliver_outbox()
    click.echo(f"{lapsed} offer(s) lapsed.")
