"""`flask convene ...`: commands for organizers and operators; they only call services."""
from __future__ import annotations

import secrets

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from convene.errors import ConveneError
from convene.extensions import db
from convene.models.teams import ActorKind, TeamRole
from convene.services.audit import Actor, set_actor


def _log_as_command() -> None:
    """Every change a command makes is logged as made by that command."""
    context = click.get_current_context()
    name = context.invoked_subcommand or ""
    context.call_on_close(set_actor(Actor(ActorKind.COMMAND, label=f"flask convene {name}".strip())))


convene_cli = AppGroup("convene", help="Convene commands: accounts, demo data, mail, waitlist.",
                       callback=_log_as_command)


@convene_cli.command("create-organizer")
@click.argument("email")
@click.option("--password", help="Password to set (prompted for when omitted; use --generate for a random one).")
@click.option("--generate", is_flag=True, help="Generate a random password and print it.")
@click.option("--admin", is_flag=True, help="A platform administrator: creates convenings, may do anything.")
@click.option("--role", type=click.Choice([r.value for r in TeamRole]),
              help="A role on --convening (or on every convening when --convening is left out).")
@click.option("--convening", "convening_slug", help="Slug of the convening the --role holds on.")
@click.option("--name", default="", help="Display name.")
def create_organizer(email: str, password: str | None, generate: bool, admin: bool, role: str | None,
                     convening_slug: str | None, name: str) -> None:
    """Make a back-office account for EMAIL (owners then invite their team from the Team page)."""
    from convene.services.users import create_user

    if convening_slug and not role:
        raise click.UsageError("--convening needs a --role.")
    if generate:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(email, password, admin=admin, name=name, role=role, convening_slug=convening_slug)
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    held = "platform administrator" if admin else (
        f"{role} on {convening_slug or 'every convening'}" if role else "no role yet")
    click.echo(f"Created account {user.email} ({held}).")
    if generate:
        click.echo(f"Password: {password}")


@convene_cli.command("set-password")
@click.argument("email")
@click.option("--password", help="New password (prompted for when omitted, which keeps it out of shell history).")
def set_password(email: str, password: str | None) -> None:
    """Set a new password for EMAIL's account and sign it out everywhere (sessions and remember cookies)."""
    from convene.services.users import change_password

    if not password:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        user = change_password(email, password)
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Password changed for {user.email}; every session of that account is signed out.")


@convene_cli.command("demo")
def demo() -> None:
    """Load the demo convening (does nothing when it is already there) and print the organizer login."""
    from convene.services.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, load_demo

    try:
        convening, created = load_demo()
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    if created:
        click.echo(f"Loaded demo convening '{convening.name}' at /c/{convening.slug}/.")
    else:
        click.echo(f"Demo convening '{convening.name}' is already loaded.")
    click.echo(f"Organizer login: {DEMO_ORGANIZER_EMAIL} / {DEMO_ORGANIZER_PASSWORD}")


@convene_cli.command("demo-if-empty")
def demo_if_empty() -> None:
    """Load the demo convening only when the database has no convening at all (used by `make run`)."""
    from convene.models import Convening
    from convene.services.demo import ACCOUNTS as DEMO_ACCOUNTS
    from convene.services.demo import DEMO_ORGANIZER_EMAIL, DEMO_ORGANIZER_PASSWORD, check_demo_allowed, load_demo

    try:
        check_demo_allowed()  # even on a full database: its login lines would advertise the demo password
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    if db.session.execute(sa.select(Convening.id).limit(1)).first() is None:
        convening, _ = load_demo()
        click.echo(f"Loaded demo convening '{convening.name}'.")
    click.echo("")
    click.echo("  Demo logins: http://127.0.0.1:5000/admin/login")
    for email, role, _name in DEMO_ACCOUNTS:
        click.echo(f"    {role.value:<16} {email:<28} password: {DEMO_ORGANIZER_PASSWORD}")
    click.echo(f"  ({DEMO_ORGANIZER_EMAIL} is also a platform administrator.)")
    click.echo("")


@convene_cli.command("send-mail")
def send_mail() -> None:
    """Deliver emails still waiting in the outbox (after a mail-server outage, say), and any a dead sender left."""
    from convene.services.mail import deliver_messages

    result = deliver_messages()
    click.echo(f"Delivered {result.sent} message(s).")
    click.echo(f"Reclaimed {result.reclaimed} message(s) left in sending by a sender that stopped.")
    if result.failed:
        click.echo(f"{result.failed} message(s) could not be sent (see the log); each is tried up to five times.")


@convene_cli.command("expire-offers")
def expire_offers() -> None:
    """Release waitlist offers and unpaid checkout holds past their deadline; offer the seats on (run it from cron)."""
    from convene.services.mail import deliver_outbox
    from convene.services.registrations import expire_offers as expire

    lapsed = expire()
    deliver_outbox()
    click.echo(f"{lapsed} offer(s) or unpaid hold(s) released.")


def _convening_by_slug(slug: str):
    from convene.models import Convening

    convening = db.session.execute(sa.select(Convening).where(Convening.slug == slug)).scalar_one_or_none()
    if convening is None:
        raise click.ClickException(f"No convening with slug {slug!r}.")
    return convening


@convene_cli.command("assign")
@click.argument("slug")
@click.option("--dry-run", is_flag=True, help="Solve and report, but save nothing.")
@click.option("--fresh", is_flag=True, help="Ignore the published plan (by default a re-run moves as few people as it can).")
@click.option("--mix-limit", type=int, default=None, help="At most this many of one delegation per visit (soft).")
def assign(slug: str, dry_run: bool, fresh: bool, mix_limit: int | None) -> None:
    """Assign people to site-visit groups from their ranked preferences, optimally."""
    from convene.services.visits import assign_site_visits

    convening = _convening_by_slug(slug)
    try:
        result = assign_site_visits(convening.id, dry_run=dry_run, keep_published=not fresh, mix_limit=mix_limit,
                                    run_by="command line")
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    solution = result.solution
    profile = solution.rank_profile
    labels = [f"rank {n}" for n in range(1, len(profile))] + ["unranked"]
    click.echo(f"{result.run.people} people, {convening.visits_per_person} visits each "
               f"({'dry run, nothing saved' if dry_run else 'saved as the working plan'}).")
    click.echo("Visits by rank: " + ", ".join(f"{label}: {count}" for label, count in zip(labels, profile) if count))
    status = "proven optimal" if solution.optimal else f"within {solution.cost - solution.lower_bound} of the best possible"
    click.echo(f"Cost {solution.cost} (lower bound {solution.lower_bound}), {status}; "
               f"{solution.method}, {solution.solve_seconds:.2f} s; {result.changed} place(s) changed.")
    for person_id, reason in sorted(solution.unassigned.items(), key=lambda kv: int(kv[0])):
        from convene.models import Registration

        registration = db.session.get(Registration, int(person_id))
        click.echo(f"Not placed: {registration.full_name} ({registration.reference}): {reason}")
    if not dry_run:
        click.echo("Publish from the back office (or `flask convene publish-visits SLUG`) to email everyone.")


@convene_cli.command("publish-visits")
@click.argument("slug")
def publish_visits(slug: str) -> None:
    """Publish the working site-visit plan and email everyone whose visits changed.

    With Redis, the worker writes and sends the emails (the command says which job); without it, the
    command waits until every email is sent, so none is left behind when it exits.
    """
    from convene import jobs
    from convene.services.visits import publish_plan

    convening = _convening_by_slug(slug)
    published = publish_plan(convening.id)
    if published.job_id is None:
        click.echo("Published; nobody's visits changed, so nobody is emailed.")
        return
    if jobs.uses_redis():
        click.echo(f"Published; {published.emailed} attendee(s) are emailed by the worker: job {published.job_id} "
                   f"(follow it with `flask convene job {published.job_id}`).")
        return
    click.echo(f"Published; emailing {published.emailed} attendee(s)...")
    sent = jobs.finish_mail(published.job_id)
    click.echo(f"Published; emailed {published.emailed} attendee(s) ({sent} email(s) sent).")


@convene_cli.command("erase-expired")
def erase_expired() -> None:
    """Erase the personal data of every convening past its retention (run it daily, from cron or a timer)."""
    from convene.services.privacy import erase_expired as erase

    results = erase()
    for result in results:
        click.echo(f"Erased personal data of {result.slug}: {result.describe()}.")
    if not results:
        click.echo("No convening is past its retention with personal data left.")


@convene_cli.command("erase-personal-data")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Erase without asking (after reading what it erases).")
def erase_personal_data(slug: str, yes: bool) -> None:
    """Erase the personal data of a convening that is over, keeping its anonymous counts."""
    from convene.services.privacy import erase_personal_data as erase
    from convene.services.privacy import erasure_preview

    convening = _convening_by_slug(slug)
    plan = erasure_preview(convening.id)
    click.echo(f"Erasing the personal data of {convening.name} ({slug}) changes:")
    for _, label, what, count in plan.rows:
        click.echo(f"  {label}: {count} ({what})")
    if not yes:
        click.confirm("This cannot be undone. Erase now?", abort=True)
    try:
        result = erase(convening.id, expected=plan.token, by="command line")
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"Erased personal data of {result.slug}: {result.describe()}.")


@convene_cli.command("copy-convening")
@click.argument("source_slug")
@click.argument("new_slug")
@click.option("--name", required=True, help="Name of the new edition.")
@click.option("--starts-on", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="First day of the new edition (YYYY-MM-DD); every date moves by the same number of days.")
def copy_convening(source_slug: str, new_slug: str, name: str, starts_on) -> None:
    """Copy SOURCE_SLUG's setup (never its people or orders) to a new, unpublished convening at NEW_SLUG."""
    from convene.models.teams import ActorKind
    from convene.services import audit, editions

    source = _convening_by_slug(source_slug)
    try:
        with audit.acting_as(audit.Actor(ActorKind.COMMAND, label="flask convene copy-convening")):
            edition = editions.copy_convening(source.id, name=name, slug=new_slug, starts_on=starts_on.date())
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    copied = editions.describe_counts(editions.setup_counts(edition.id))
    click.echo(f"Copied {source.slug} to {edition.slug} ({edition.starts_on} to {edition.ends_on}) with {copied}.")
    click.echo("It is unpublished: check its settings and publish it from the back office.")


# The printing commands (badges, agendas, program, rosters) live with the printing code.
from convene.printing.cli import register as register_printing_commands  # noqa: E402

register_printing_commands(convene_cli)

# The background job queue's commands (worker, scheduler, jobs, job) live with the queue.
from convene.jobs_cli import register as register_job_commands  # noqa: E402

register_job_commands(convene_cli)

# `flask convene checkin` lives with check-in.
from convene.checkin_cli import register as register_checkin_commands  # noqa: E402

register_checkin_commands(convene_cli)
