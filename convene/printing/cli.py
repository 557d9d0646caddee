"""`flask convene badges|rosters|agendas|program`: print from the command line (they only call services)."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from convene.printing.layouts import DEFAULT_LAYOUT, LAYOUTS


def _convening(slug: str):
    import sqlalchemy as sa

    from convene.extensions import db
    from convene.models import Convening

    convening = db.session.execute(sa.select(Convening).where(Convening.slug == slug)).scalar_one_or_none()
    if convening is None:
        raise click.ClickException(f"No convening with slug {slug!r}.")
    return convening


def _queue_batch(request) -> None:
    """Record a batch as a print job on the background queue and say which job renders it."""
    from convene.errors import ConveneError

    try:
        print_job = request()
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    what = service_labels().get(print_job.kind) or f"{print_job.total} {print_job.kind}"
    click.echo(f"Queued {what} as print job {print_job.id}: job {print_job.job_id} "
               f"(follow it with `flask convene job {print_job.job_id}`).")


def service_labels() -> dict[str, str]:
    from convene.services.printing import DOCUMENT_LABELS

    return {kind: f"the {label}" for kind, label in DOCUMENT_LABELS.items()}


@click.command("badges")
@click.argument("slug")
@click.option("--layout", type=click.Choice(sorted(LAYOUTS)), default=DEFAULT_LAYOUT, show_default=True,
              help="Badge stock.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="PDF file to write.")
@click.option("--only-unprinted", is_flag=True, help="Only badges not printed yet or changed since they were printed.")
@click.option("--duplex", is_flag=True, help="Print backs (site visits) too, mirrored for long-edge duplex.")
@click.option("--mark-printed", is_flag=True, help="Record the badges as printed once the PDF is written.")
@click.option("--workers", type=int, default=None, help="Processes to render with (default: one per core).")
@click.option("--queue", "queue", is_flag=True,
              help="Queue the batch for the background worker (it shows on the print queue) and print the job id.")
@with_appcontext
def badges_command(slug: str, layout: str, out: str | None, only_unprinted: bool, duplex: bool, mark_printed: bool,
                   workers: int | None, queue: bool) -> None:
    """Write the badges of convening SLUG's confirmed registrations to a PDF (or queue them with --queue)."""
    from convene.printing.batch import render_badges_pdf
    from convene.services import printing as service

    convening = _convening(slug)
    badge_filter = service.BadgeFilter(which="pending" if only_unprinted else "all")
    if queue:
        _queue_batch(lambda: service.request_badge_batch(convening.id, badge_filter, layout, duplex=duplex,
                                                         requested_by="command line", inline_max=0))
        return
    if not out:
        raise click.UsageError("Give --out FILE (or --queue).")
    registrations = service.badge_registrations(convening.id, badge_filter)
    if not registrations:
        raise click.ClickException("No badges to print.")
    badges = service.badge_data(convening, registrations, with_visits=duplex)
    ids = [r.id for r in registrations]
    with click.progressbar(length=len(badges), label=f"Rendering {len(badges)} badges", show_pos=True) as bar:
        def progress(done: int) -> None:
            bar.update(done - bar.pos)

        pages = render_badges_pdf(badges, LAYOUTS[layout], out, duplex=duplex, workers=workers, progress=progress,
                                  pool_min=current_app.config.get("PRINT_POOL_MIN_BADGES"))
    click.echo(f"Wrote {len(badges)} badges on {pages} page(s) to {out}.")
    if mark_printed:
        marked = service.mark_badges_printed(convening.id, ids)
        click.echo(f"Marked {marked} badge(s) printed.")


@click.command("rosters")
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="PDF file to write.")
@click.option("--paper", type=click.Choice(["letter", "a4"]), default="letter", show_default=True)
@click.option("--queue", "queue", is_flag=True,
              help="Queue the rosters for the background worker (they show on the print queue) and print the job id.")
@with_appcontext
def rosters_command(slug: str, out: str | None, paper: str, queue: bool) -> None:
    """Write every site visit's roster and sign-in sheet of convening SLUG to one PDF (or queue it with --queue)."""
    from convene.errors import ConveneError
    from convene.services import printing as service
    from convene.services.printing import render_rosters_pdf

    convening = _convening(slug)
    if queue:
        _queue_batch(lambda: service.request_document(convening.id, "rosters", paper=paper,
                                                      requested_by="command line"))
        return
    if not out:
        raise click.UsageError("Give --out FILE (or --queue).")
    try:
        pdf = render_rosters_pdf(convening.id, paper=paper)
    except ConveneError as error:
        raise click.ClickException(error.message) from None
    with open(out, "wb") as handle:
        handle.write(pdf)
    click.echo(f"Wrote the rosters to {out}.")


@click.command("agendas")
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="PDF file to write.")
@click.option("--paper", type=click.Choice(["letter", "a4"]), default="letter", show_default=True)
@click.option("--workers", type=int, default=None, help="Processes to render with (default: one per core).")
@click.option("--queue", "queue", is_flag=True,
              help="Queue the batch for the background worker (it shows on the print queue) and print the job id.")
@with_appcontext
def agendas_command(slug: str, out: str | None, paper: str, workers: int | None, queue: bool) -> None:
    """Write every confirmed attendee's personal agenda of convening SLUG to one PDF (or queue it with --queue)."""
    from convene.printing.batch import render_agendas_pdf
    from convene.services import printing as service
    from convene.services.schedule import agenda_sources

    convening = _convening(slug)
    if queue:
        _queue_batch(lambda: service.request_agenda_batch(convening.id, requested_by="command line", paper=paper,
                                                          inline_max=0))
        return
    if not out:
        raise click.UsageError("Give --out FILE (or --queue).")
    registrations = service.badge_registrations(convening.id, service.BadgeFilter(which="all"))
    if not registrations:
        raise click.ClickException("Nobody is confirmed yet.")
    sources = agenda_sources(convening, [r.id for r in registrations])  # the program once, not per person
    agendas = [service.personal_agenda_data(convening, r, sources) for r in registrations]
    with click.progressbar(length=len(agendas), label=f"Rendering {len(agendas)} agendas", show_pos=True) as bar:
        pages = render_agendas_pdf(agendas, out, paper=paper, workers=workers,
                                   progress=lambda done: bar.update(done - bar.pos),
                                   pool_min=current_app.config.get("PRINT_POOL_MIN_AGENDAS"))
    click.echo(f"Wrote {len(agendas)} agendas on {pages} page(s) to {out}.")


@click.command("program")
@click.argument("slug")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="PDF file to write.")
@click.option("--paper", type=click.Choice(["letter", "a4"]), default="letter", show_default=True)
@click.option("--queue", "queue", is_flag=True,
              help="Queue the program book for the worker (it shows on the print queue) and print the job id.")
@with_appcontext
def program_command(slug: str, out: str | None, paper: str, queue: bool) -> None:
    """Write the program book of convening SLUG (cover, contents, sessions by day, site visits), or queue it."""
    from convene.services import printing as service
    from convene.services.printing import render_program_pdf

    convening = _convening(slug)
    if queue:
        _queue_batch(lambda: service.request_document(convening.id, "program", paper=paper,
                                                      requested_by="command line"))
        return
    if not out:
        raise click.UsageError("Give --out FILE (or --queue).")
    with open(out, "wb") as handle:
        handle.write(render_program_pdf(convening.id, paper=paper))
    click.echo(f"Wrote the program book to {out}.")


@click.command("print-jobs")
@click.argument("slug", required=False)
@with_appcontext
def print_jobs_command(slug: str | None) -> None:
    """Fail print batches whose process stopped (of convening SLUG, or all), then list those still rendering."""
    from convene.services import printing as service

    convening_id = _convening(slug).id if slug else None
    click.echo(f"{service.fail_dead_print_jobs(convening_id)} batch(es) whose process stopped marked failed.")
    for job in service.active_jobs(convening_id):
        click.echo(f"  #{job.id} {job.kind}: {job.status}, {job.done}/{job.total}, worker {job.worker or '-'}")


def register(group: click.Group) -> None:
    """Add the printing commands to the `flask convene` group."""
    for command in (badges_command, rosters_command, agendas_command, program_command, print_jobs_command):
        group.add_command(command)
