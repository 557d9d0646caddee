"""`flask convene checkin SLUG CODE`: check a person in from a script or a kiosk, as the scanning page does."""
from __future__ import annotations

import click
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db

# Exit status per result, so a kiosk script can branch: 0 checked in, 1 already, 2 anything else.
EXIT = {"checked_in": 0, "already": 1}


def register(group: click.Group) -> None:
    group.add_command(checkin_command)


@click.command("checkin")
@click.argument("slug")
@click.argument("code")
@click.option("--list", "list_name", default=None, help="Name of the check-in list (default: the entrance).")
@click.option("--device", default="command-line", show_default=True,
              help="Name of this kiosk or script in the scan log.")
@click.option("--scan-id", default=None, help="An id for this scan: running it again with the same id changes "
              "nothing and prints the first result.")
def checkin_command(slug: str, code: str, list_name: str | None, device: str, scan_id: str | None) -> None:
    """Check in the person whose badge token, reference or name is CODE on a list of convening SLUG."""
    from convene.models import Convening
    from convene.models.checkin import CheckinList
    from convene.services import checkin

    convening = db.session.execute(sa.select(Convening).where(Convening.slug == slug)).scalar_one_or_none()
    if convening is None:
        raise click.ClickException(f"No convening with slug {slug!r}.")
    if list_name is None:
        checkin_list = checkin.main_list(convening.id)
    else:
        checkin_list = db.session.execute(sa.select(CheckinList).where(
            CheckinList.convening_id == convening.id, CheckinList.name == list_name)).scalar_one_or_none()
        if checkin_list is None:
            names = ", ".join(repr(item.name) for item in checkin.lists_of(convening.id))
            raise click.ClickException(f"No check-in list {list_name!r} in {slug}; its lists are {names}.")
    try:
        answer = checkin.check_in(checkin_list.id, code, device=device, scan_id=scan_id)
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{answer.headline} ({checkin_list.name})")
    if answer.result.value == "already" and answer.checked_in_at:
        by = f" by {answer.checked_in_by}" if answer.checked_in_by else ""
        click.echo(f"  at {convening.local(answer.checked_in_at):%Y-%m-%d %H:%M}{by}")
    elif answer.reason:
        click.echo(f"  {answer.reason}")
    if answer.person:
        person = answer.person
        click.echo(f"  {person.name} ({person.reference})")
        for label, value in (("Badge", person.badge_name), ("Delegation", person.delegation),
                             ("Organization", person.organization), ("Ticket", person.ticket)):
            if value:
                click.echo(f"  {label}: {value}")
        for note in person.notes:
            click.echo(f"  ! {note}")
    for match in answer.matches:
        click.echo(f"  {match.reference}  {match.name}  {match.delegation or match.organization}")
    raise SystemExit(EXIT.get(answer.result.value, 2))
