"""`flask convene worker|scheduler|jobs|job`: run and watch the background job queue (convene/jobs.py)."""
from __future__ import annotations

import logging
import threading
import time

import click
from flask import current_app

log = logging.getLogger(__name__)


def _recover_now_and_then(app, interval: float, stopped: threading.Event) -> None:
    """A worker also notices other workers that died, between jobs and while one runs."""
    from convene import jobs
    from convene.extensions import db

    with app.app_context():
        while not stopped.wait(interval):
            try:
                jobs.recover_stalled()
            except Exception:
                log.exception("looking for jobs whose worker died failed")
            finally:
                db.session.remove()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queue is empty (tests, one-off catch-up).")
def worker_command(burst: bool) -> None:
    """Run background jobs from Redis (RQ) in this process, one at a time; start as many as you need."""
    from rq import SimpleWorker

    from convene import jobs

    app = current_app._get_current_object()
    if not jobs.uses_redis(app):
        raise click.ClickException(
            "REDIS_URL (or JOBS_REDIS_URL) is not set: jobs run in the in-process worker inside each web "
            "process, so there is no worker to start. Set REDIS_URL to run them here instead.")
    again, failed = jobs.recover_stalled()
    if again or failed:
        click.echo(f"{again} job(s) whose worker stopped queued again, {failed} failed.")
    backend = jobs._RQ(app.config)
    stopped = threading.Event()
    interval = max(1.0, app.config.get("JOB_STALE_SECONDS", 120) / 2)
    threading.Thread(target=_recover_now_and_then, args=(app, interval, stopped), name="job-recovery",
                     daemon=True).start()
    # SimpleWorker runs each job in this process (no fork per job): the app and its database pool are
    # made once, and a SIGKILL of this process stops the job with it, for the next worker to run again.
    worker = SimpleWorker([backend.queue()], connection=backend.redis)
    try:
        worker.work(burst=burst, logging_level=logging.getLevelName(logging.getLogger().level))
    finally:
        stopped.set()


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Queue one round of sweeps and stop.")
def scheduler_command(once: bool) -> None:
    """Every SCHEDULER_INTERVAL_SECONDS: expire offers and unpaid holds, send waiting mail, rerun dead jobs."""
    from convene import jobs
    from convene.extensions import db

    interval = max(1, int(current_app.config.get("SCHEDULER_INTERVAL_SECONDS", 60)))
    if not once:
        click.echo(f"Scheduler: sweeping every {interval} s "
                   f"({'on Redis' if jobs.uses_redis() else 'run here: REDIS_URL is not set'}).")
    last_prune = 0.0
    while True:
        try:
            jobs.recover_stalled()
            queued = jobs.schedule_sweeps()
            if time.monotonic() - last_prune > 3600:
                jobs.prune()
                last_prune = time.monotonic()
            if once:
                click.echo("Queued " + ", ".join(f"{job.kind} (job {job.id})" for job in queued) + ".")
                return
        except Exception:  # the database or Redis is away for a moment: try again next round
            log.exception("scheduler round failed")
            if once:
                raise
        finally:
            db.session.remove()
        time.sleep(interval - time.time() % interval)


def _progress(job) -> str:
    return f"{job.done}/{job.total}" if job.total else str(job.done)


@click.command("jobs")
@click.argument("slug", required=False)
@click.option("--limit", type=int, default=30, show_default=True)
def jobs_command(slug: str | None, limit: int) -> None:
    """List the newest background jobs (of convening SLUG, or all): kind, status, progress."""
    from convene import jobs
    from convene.printing.cli import _convening

    convening_id = _convening(slug).id if slug else None
    rows = jobs.list_jobs(convening_id, limit=limit)
    if not rows:
        click.echo("No jobs.")
    for job in rows:
        line = f"#{job.id:<6} {job.kind:<14} {job.status:<8} {_progress(job):>11}  {job.created_at:%Y-%m-%d %H:%M}"
        click.echo(line + (f"  {job.message}" if job.message else ""))


@click.command("job")
@click.argument("job_id", type=int)
def job_command(job_id: int) -> None:
    """Show one background job, and where its file is."""
    from convene import jobs
    from convene import storage

    job = jobs.get_job(job_id)
    if job is None:
        raise click.ClickException(f"No job #{job_id}.")
    click.echo(f"Job #{job.id}: {jobs.KIND_LABELS.get(job.kind, job.kind)} ({job.kind})")
    click.echo(f"Status:    {job.status}, attempt {job.attempts} of {job.max_attempts}")
    click.echo(f"Progress:  {_progress(job)}")
    for label, value in (("Queued", job.created_at), ("Started", job.started_at), ("Finished", job.finished_at),
                         ("Heartbeat", job.heartbeat_at)):
        if value is not None:
            click.echo(f"{label + ':':<10} {value:%Y-%m-%d %H:%M:%S} UTC")
    if job.worker:
        click.echo(f"Worker:    {job.worker}")
    if job.message:
        click.echo(f"Message:   {job.message}")
    if job.result_file:
        click.echo(f"File:      {storage.describe(job.result_file)}")
    if job.params:
        click.echo(f"Params:    {job.params}")


def register(group: click.Group) -> None:
    """Add the job queue's commands to the `flask convene` group."""
    for command in (worker_command, scheduler_command, jobs_command, job_command):
        group.add_command(command)
