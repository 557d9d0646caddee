"""Printing: choose badges for a batch, render it (inline or in the background), mark it printed;
site-visit rosters, the program book and personal agendas.

The layout code in `convene.printing` takes plain data; this module turns registrations into that
data, records every batch as a PrintJob (what was asked, which people, how far it got, where the
PDF is) and stores the PDFs under instance/prints/. Each write is its own unit of work.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app
from flask_babel import gettext, ngettext
from sqlalchemy.orm import selectinload

from convene import storage
from convene.errors import ConveneError
from convene.extensions import db
from convene.i18n import default_language, format_local, in_language, person_language
from convene.i18n_marks import N_
from convene.languages import localized
from convene.models import (
    Convening,
    PrintJob,
    Registration,
    SessionSignup,
    SiteVisit,
    Status,
    VisitAssignment,
    VisitSlot,
    utcnow,
)
from convene.models.registrations import ROLE_LABELS
from convene.printing import LAYOUTS, BadgeData, RosterData, RosterPerson, VisitLine, role_colour
from convene.services.db import lock, unit_of_work
from convene.services.exports import BOM, csv_safe
from convene.services.visits import access_labels

log = logging.getLogger(__name__)

SELECTIONS = {
    "pending": "Not printed yet, or changed since printed",
    "unprinted": "Not printed yet",
    "changed": "Changed since last printed",
    "all": "All confirmed",
}
INLINE_MAX = 50  # badges rendered during the request; larger batches go to the background
ACTIVE = ("queued", "running")
# A job with no sign of life for this long is dead, wherever its worker ran (PRINT_HEARTBEAT_TIMEOUT).
HEARTBEAT_TIMEOUT_SECONDS = 10 * 60
WORKER_GONE = "The process rendering this batch stopped; start it again."

# ---------------------------------------------------------------- choosing badges


@dataclass
class BadgeFilter:
    """Which confirmed registrations a batch prints."""

    which: str = "pending"
    delegation: int | str | None = None  # an id, or "none"
    ticket_type_id: int | None = None
    role: str = ""
    registration_id: int | None = None
    reference: str = ""

    def conditions(self) -> list:
        """WHERE clauses on Registration (besides convening and status)."""
        printed, changed = Registration.badge_printed_at, Registration.badge_changed_at
        where = []
        if self.which == "unprinted":
            where.append(printed.is_(None))
        elif self.which == "changed":
            where.append(sa.and_(printed.is_not(None), changed.is_not(None), changed > printed))
        elif self.which == "pending":
            where.append(sa.or_(printed.is_(None), sa.and_(changed.is_not(None), changed > printed)))
        if self.delegation == "none":
            where.append(Registration.delegation_id.is_(None))
        elif self.delegation is not None:
            where.append(Registration.delegation_id == self.delegation)
        if self.ticket_type_id is not None:
            where.append(Registration.ticket_type_id == self.ticket_type_id)
        if self.role:
            where.append(Registration.role == self.role)
        if self.registration_id is not None:
            where.append(Registration.id == self.registration_id)
        if self.reference:
            where.append(Registration.reference == self.reference.strip().upper())
        return where

    def params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @property
    def single(self) -> bool:
        return self.registration_id is not None or bool(self.reference)


def _query(convening_id: int, badge_filter: BadgeFilter):
    return (
        sa.select(Registration)
        .where(Registration.convening_id == convening_id, Registration.status == Status.CONFIRMED,
               *badge_filter.conditions())
    )


def badge_registrations(convening_id: int, badge_filter: BadgeFilter, *, limit: int | None = None) -> list[Registration]:
    """Confirmed registrations the filter picks, in print order (family name, given name)."""
    query = (
        _query(convening_id, badge_filter)
        .options(selectinload(Registration.delegation), selectinload(Registration.ticket_type))
        .order_by(Registration.sort_key, Registration.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return db.session.execute(query).scalars().all()


def count_badges(convening_id: int, badge_filter: BadgeFilter) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(_query(convening_id, badge_filter).subquery()))


def badge_counts(convening_id: int) -> dict[str, int]:
    """How many confirmed badges each selection holds (for the print queue's summary)."""
    return {which: count_badges(convening_id, BadgeFilter(which=which)) for which in SELECTIONS}


# ---------------------------------------------------------------- registrations → plain data


def _time_range(convening: Convening, starts_at: datetime, ends_at: datetime | None) -> str:
    """"Tue 14 Oct, 09:00–11:00 EDT", with day and month names in the language being printed."""
    start = convening.local(starts_at)
    text = f"{format_local(start, '%a %d %b')}, {start:%H:%M}"
    if ends_at:
        end = convening.local(ends_at)
        text += f"–{end:%H:%M}" if end.date() == start.date() else f" – {format_local(end, '%a %d %b')}, {end:%H:%M}"
    return f"{text} {start:%Z}".strip()


def _published_visits(convening_id: int) -> dict[int, list[SiteVisit]]:
    """Each registration's published site visits in time order, for the whole convening in one query.

    The same rows `convene.services.visits.published_visits_for` reads for one person.
    """
    rows = db.session.execute(
        sa.select(VisitAssignment.registration_id, SiteVisit)
        .join(SiteVisit, SiteVisit.id == VisitAssignment.published_site_visit_id)
        .join(VisitSlot, VisitSlot.id == SiteVisit.slot_id)
        .where(VisitSlot.convening_id == convening_id)
        .options(selectinload(SiteVisit.host), selectinload(SiteVisit.slot))
        .order_by(VisitSlot.starts_at, VisitSlot.id)
    ).all()
    visits: dict[int, list[SiteVisit]] = {}
    for registration_id, visit in rows:
        visits.setdefault(registration_id, []).append(visit)
    return visits


def _visit_line(convening: Convening, visit: SiteVisit, lang: str | None = None) -> VisitLine:
    departs = convening.local(visit.departs_at).strftime("%H:%M") if visit.departs_at else ""
    return VisitLine(when=_time_range(convening, visit.slot.starts_at, visit.slot.ends_at),
                     host=localized(visit.host, "name", lang), meeting_point=localized(visit, "meeting_point", lang),
                     departs=departs)


def badge_data(convening: Convening, registrations: list[Registration], *, with_visits: bool = True) -> list[BadgeData]:
    """What each registration's badge prints, as plain data for the renderer."""
    visits = _published_visits(convening.id) if with_visits else {}
    back_note = " · ".join(part for part in (convening.venue, convening.city) if part)
    if convening.starts_on:
        from convene.templating import date_range

        back_note = f"{back_note} · {date_range(convening.starts_on, convening.ends_on)}".strip(" ·")
    colours = convening.role_colours or {}
    with in_language(default_language(convening)):
        # The front is read by everyone around its wearer: the convening's own language.
        roles = {role: gettext(label) for role, label in ROLE_LABELS.items()}
    return [_badge_for(convening, r, roles, colours, visits.get(r.id, []), back_note) for r in registrations]


def _badge_for(convening: Convening, r: Registration, roles: dict, colours: dict, visits: list,
               back_note: str) -> BadgeData:
    """One badge; its back (read by its wearer) in the wearer's language."""
    with in_language(person_language(r, convening)) as lang:
        return BadgeData(
            registration_id=r.id,
            checkin_token=r.checkin_token,
            name=r.display_badge_name,
            full_name=r.full_name,
            pronouns=r.pronouns or "",
            organization=r.organization or "",
            delegation=r.delegation.name if r.delegation else "",
            role_label=roles.get(r.role, r.role.replace("_", " ").title()),
            role_colour=role_colour(r.role, colours),
            convening=localized(convening, "name", lang),
            visits=tuple(_visit_line(convening, v, lang) for v in visits),
            back_note=back_note,
            lang=lang,
            back_heading=gettext("Your site visits"),
            meet_at=gettext("Meet at %(place)s", place="{place}"),
            meet_at_departs=gettext("Meet at %(place)s, departs %(time)s", place="{place}", time="{time}"),
            departs_at=gettext("Departs %(time)s", time="{time}"),
            more_visits=tuple(ngettext("and %(num)d more: see your registration page",
                                       "and %(num)d more: see your registration page", n)
                              for n in range(1, len(visits) + 1)),
        )


# ---------------------------------------------------------------- previews and jobs


def layout_for(key: str):
    try:
        return LAYOUTS[key]
    except KeyError:
        raise ConveneError("unknown_layout", "Choose one of the badge layouts offered.") from None


def preview_badges_png(convening_id: int, badge_filter: BadgeFilter, layout_key: str, *, duplex: bool = False) -> bytes:
    """The first sheet of the batch as a PNG (rendered here: one sheet takes well under a second)."""
    from convene.printing.documents import first_page_png, render_badges

    layout = layout_for(layout_key)
    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    registrations = badge_registrations(convening_id, badge_filter, limit=layout.per_sheet)
    if not registrations:
        raise ConveneError("nothing_to_print", "No badges match these choices.", status_code=404)
    pdf = render_badges(badge_data(convening, registrations, with_visits=duplex), layout)
    return first_page_png(pdf)


def prints_dir() -> Path:
    """Where PDFs are rendered (instance/prints/ unless PRINTS_DIR is set), and kept unless FILE_STORAGE=database."""
    return storage.folder()


def job_file(job: PrintJob) -> Path | None:
    """The finished PDF of a job on this machine's disk, when files live in the folder and it is there."""
    if job.status != "done":
        return None
    return storage.local_path(job.file_name)


def job_has_file(job: PrintJob) -> bool:
    """Whether a finished job's PDF can be downloaded (from the folder or the database; it expires)."""
    return job.status == "done" and storage.exists(job.file_name)


def _safe_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:60] or "convening"


def request_badge_batch(
    convening_id: int, badge_filter: BadgeFilter, layout_key: str, *, duplex: bool = False,
    requested_by: str = "", inline_max: int | None = None,
) -> PrintJob:
    """Record a batch of badges and render it: now when it is small, in a background thread otherwise.

    The job keeps the exact registrations chosen, so marking it printed later marks those people
    and nobody who started matching the filter since.
    """
    layout_for(layout_key)
    with unit_of_work():
        convening = db.session.get(Convening, convening_id)
        if convening is None:
            raise ConveneError("convening_not_found", status_code=404)
        ids = db.session.execute(
            _query(convening_id, badge_filter).with_only_columns(Registration.id)
            .order_by(Registration.sort_key, Registration.id)
        ).scalars().all()
        if not ids:
            raise ConveneError("nothing_to_print", "No badges match these choices.")
        job = PrintJob(
            convening_id=convening_id, kind="badges", status="queued", total=len(ids), done=0,
            registration_ids=list(ids), requested_by=requested_by,
            params={"layout": layout_key, "duplex": duplex, "filter": badge_filter.params()},
        )
        db.session.add(job)
        db.session.flush()
        job.file_name = f"{_safe_slug(convening.slug)}-badges-{job.id}.pdf"
        inline = _render_inline(job, inline_max)
    if inline:
        run_print_job(job.id, workers=0)
    return db.session.get(PrintJob, job.id)


def _render_inline(job: PrintJob, inline_max: int | None) -> bool:
    """Inside the unit that records a batch: True when it is small enough to render now, else queue it.

    The queue's job is recorded in the same transaction and handed to the queue after the commit.
    """
    from convene import jobs
    from convene.models import User

    limit = current_app.config.get("PRINT_INLINE_MAX", INLINE_MAX) if inline_max is None else inline_max
    if job.total <= limit:
        return True
    user_id = db.session.execute(sa.select(User.id).where(User.email == job.requested_by)).scalar() \
        if job.requested_by else None
    queued = jobs.enqueue("print_batch", convening_id=job.convening_id, requested_by=user_id,
                          params={"print_job_id": job.id}, total=job.total, idempotency_key=f"print:{job.id}")
    job.job_id = queued.id
    return False


def run_print_batch_task(run) -> dict:
    """The queue's task for a batch: render the print job (again, from the start, when a worker died mid-way)."""
    print_job_id = run.params["print_job_id"]
    with unit_of_work():
        [job] = lock(PrintJob, print_job_id) or [None]
        if job is None:
            raise ConveneError("job_not_found", "That print job does not exist.")
        if job.status == "done":  # finished by an earlier run whose own end was not recorded
            return {"done": job.done, "total": job.total, "result_file": job.file_name}
        if job.status != "queued":  # an earlier run died or failed: start over, the half-written file goes
            job.status, job.done, job.worker, job.error, job.pages = "queued", 0, "", "", 0
            job.finished_at = None
            _drop_partial(job.file_name)
    from convene.jobs import JobTakenAway

    def progress(done: int) -> None:
        try:
            run.progress(done)
        except JobTakenAway:  # another run has the queue's job now: stop rendering, leave the batch to it
            raise _JobTakenAway(print_job_id) from None

    run_print_job(print_job_id, on_progress=progress)
    db.session.rollback()
    job = db.session.get(PrintJob, print_job_id)
    if job.status != "done":
        raise RuntimeError(job.error or "the batch did not finish")
    return {"done": job.done, "total": job.total, "result_file": job.file_name,
            "message": f"{job.pages} page(s)"}


def print_batch_failed(params: dict, message: str) -> None:
    """The queue gave up on a batch: the print queue shows it failed, with the reason."""
    with unit_of_work():
        db.session.execute(
            sa.update(PrintJob).where(PrintJob.id == params.get("print_job_id"), PrintJob.status != "done")
            .values(status="failed", error=message[:2000], finished_at=utcnow())
        )


def retry_print_job(print_job_id: int) -> PrintJob:
    """Render a failed queued batch again (an organizer asked for it from the print queue)."""
    from convene import jobs

    with unit_of_work():
        [job] = lock(PrintJob, print_job_id) or [None]
        if job is None:
            raise ConveneError("job_not_found", "That print job does not exist.", status_code=404)
        if job.status != "failed" or job.job_id is None:
            raise ConveneError("job_not_failed", "Only a failed batch made in the background can be tried again.")
        job.status, job.done, job.worker, job.error, job.pages, job.finished_at = "queued", 0, "", "", 0, None
        jobs.retry(job.job_id)
    return job


def retry_print_batch(params: dict) -> None:
    """The queue's retry hook: a failed print_batch job is tried again through its print job."""
    retry_print_job(params["print_job_id"])


def _drop_partial(file_name: str) -> None:
    if file_name and "/" not in file_name and not file_name.startswith("."):
        (prints_dir() / f"{file_name}.part").unlink(missing_ok=True)


class _JobTakenAway(Exception):
    """The job this worker renders is no longer its own (it was failed as dead)."""


def _beat(job_id: int, worker: str, **values) -> bool:
    """Record that `worker` still renders the job (with any progress); False when the job is no longer its own."""
    with unit_of_work():
        return bool(db.session.execute(
            sa.update(PrintJob).where(PrintJob.id == job_id, PrintJob.status == "running", PrintJob.worker == worker)
            .values(heartbeat_at=utcnow(), **values)
        ).rowcount)


def _finish_job(job_id: int, worker: str, **values) -> bool:
    return _beat(job_id, worker, finished_at=utcnow(), **values)


class _Heartbeat:
    """Beats for a job every `interval` seconds while it renders, progress or not.

    Chunks of one batch may wait behind another batch's in the shared pool for minutes, so
    progress alone would let a live job look dead.
    """

    def __init__(self, app: Flask, job_id: int, worker: str, interval: float):
        self.app, self.job_id, self.worker, self.interval = app, job_id, worker, interval
        self.stopped, self.lost = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"print-job-{job_id}-heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        with self.app.app_context():
            try:
                while not self.stopped.wait(self.interval):
                    try:
                        mine = _beat(self.job_id, self.worker)
                    except Exception:  # a database hiccup: try again at the next beat
                        log.exception("heartbeat of print job %s failed", self.job_id)
                        continue
                    if not mine:
                        self.lost.set()
                        return
            finally:
                db.session.remove()


def run_print_job(job_id: int, *, workers: int | None = None, on_progress=None) -> None:
    """Render a queued job (badges or agendas) into its file, writing progress to the row as chunks finish.

    `on_progress(done)` is told too (the queue's job mirrors the batch's progress).
    """
    from convene.printing.batch import CHUNK_SHEETS, render_agendas_pdf, render_badges_pdf
    from convene.services.schedule import agenda_sources

    worker = this_worker()
    with unit_of_work():
        [job] = lock(PrintJob, job_id) or [None]
        if job is None or job.status not in ("queued",):
            return
        job.status, job.worker, job.heartbeat_at = "running", worker, utcnow()
    heartbeat = _Heartbeat(current_app._get_current_object(), job_id, worker, _beat_interval())
    heartbeat.start()
    try:
        job = db.session.get(PrintJob, job_id)
        convening = db.session.get(Convening, job.convening_id)
        by_id = {
            r.id: r for r in db.session.execute(
                sa.select(Registration).where(Registration.id.in_(job.registration_ids),
                                              Registration.convening_id == job.convening_id)
                .options(selectinload(Registration.delegation))
            ).scalars()
        }
        registrations = [by_id[i] for i in job.registration_ids if i in by_id]
        if workers is None:
            workers = current_app.config.get("PRINT_WORKERS")  # None: one per core
        file_name = job.file_name
        path = storage.scratch_path(file_name)

        def progress(done: int) -> None:
            if heartbeat.lost.is_set() or not _beat(job_id, worker, done=done):
                raise _JobTakenAway(job_id)
            if on_progress is not None:
                on_progress(done)

        if job.kind == "badges":
            layout = layout_for(job.params.get("layout", ""))
            duplex = bool(job.params.get("duplex"))
            items = badge_data(convening, registrations, with_visits=duplex)
            db.session.rollback()  # end the read transaction: rendering takes a while
            pages = render_badges_pdf(items, layout, path, duplex=duplex, workers=workers, progress=progress,
                                      chunk_sheets=current_app.config.get("PRINT_CHUNK_SHEETS", CHUNK_SHEETS),
                                      pool_min=current_app.config.get("PRINT_POOL_MIN_BADGES"))
        elif job.kind == "agendas":
            sources = agenda_sources(convening, [r.id for r in registrations])  # the program once, not per person
            items = [personal_agenda_data(convening, r, sources) for r in registrations if r.status == Status.CONFIRMED]
            db.session.rollback()
            pages = render_agendas_pdf(items, path, paper=job.params.get("paper", "letter"), workers=workers,
                                       progress=progress, pool_min=current_app.config.get("PRINT_POOL_MIN_AGENDAS"))
        elif job.kind in DOCUMENTS:
            # One document: rendered whole (it is one layout), then written where a batch's file goes.
            pdf = DOCUMENTS[job.kind](job.convening_id, paper=job.params.get("paper", "letter"))
            db.session.rollback()
            items = [job.kind]
            pages = _write_whole(pdf, path)
            progress(1)
        else:
            raise ValueError(f"unknown kind of print job: {job.kind!r}")
    except _JobTakenAway:
        log.warning("print job %s was failed as dead while it rendered; stopping", job_id)
        db.session.rollback()
        return
    except Exception as error:
        log.exception("print job %s failed", job_id)
        db.session.rollback()
        _finish_job(job_id, worker, status="failed", error=f"{type(error).__name__}: {error}"[:2000])
        return
    finally:
        heartbeat.stop()
    try:
        storage.store(file_name, path)
    except Exception as error:  # the database refused the file, say: the batch fails with the reason
        log.exception("print job %s: its file could not be stored", job_id)
        db.session.rollback()
        _finish_job(job_id, worker, status="failed", error=f"{type(error).__name__}: {error}"[:2000])
        return
    if not _finish_job(job_id, worker, status="done", done=len(items), total=len(items), pages=pages):
        storage.delete(file_name)  # the job was failed as dead meanwhile: nothing will offer this file


def wait_for_print_job(job_id: int, timeout: float | None = None) -> bool:
    """Wait for a batch rendered in the background (by any process); True when it is no longer queued or running."""
    deadline = time.monotonic() + (timeout if timeout is not None else 24 * 3600)
    while True:
        with db.engine.connect() as connection:
            status = connection.execute(sa.select(PrintJob.status).where(PrintJob.id == job_id)).scalar()
        if status not in ACTIVE:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def this_worker() -> str:
    """This process, as a print job records its worker: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _worker_gone(worker: str) -> bool:
    """True when `worker` ran on this host and its process no longer exists (other hosts: unknown, False)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _heartbeat_timeout() -> float:
    return current_app.config.get("PRINT_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT_SECONDS)


def _beat_interval() -> float:
    return max(0.05, min(60.0, _heartbeat_timeout() / 5))


def job_is_stale(job: PrintJob, now: datetime | None = None) -> bool:
    """A job queued or running whose process is gone: its worker here died, or it gave no sign of life for too long."""
    if job.status not in ACTIVE or job.job_id is not None:  # the queue notices its own dead workers
        return False
    if job.worker and _worker_gone(job.worker):
        return True
    last = job.heartbeat_at or job.created_at
    return last is not None and ((now or utcnow()) - last).total_seconds() > _heartbeat_timeout()


def fail_dead_print_jobs(convening_id: int | None = None) -> int:
    """Mark failed the jobs (of one convening, or all) whose process is gone, and drop their half-written files.

    Each job is failed by a conditional UPDATE that re-checks, under the write, what made it dead
    (the same worker, or a heartbeat still too old), so a job that just showed signs of life is left alone.
    """
    now = utcnow()
    active = active_jobs(convening_id)
    if any(job.job_id is not None for job in active):  # rendered by the queue: it runs again a dead one
        from convene import jobs

        jobs.recover_stalled()
    dead = [(job.id, job.worker, job.file_name, bool(job.worker) and _worker_gone(job.worker))
            for job in active if job_is_stale(job, now)]
    if not dead:
        return 0
    cutoff = now - timedelta(seconds=_heartbeat_timeout())
    silent = sa.or_(PrintJob.heartbeat_at < cutoff,
                    sa.and_(PrintJob.heartbeat_at.is_(None), PrintJob.created_at < cutoff))
    failed = []
    with unit_of_work():
        for job_id, worker, file_name, gone in dead:
            still_dead = PrintJob.worker == worker if gone else silent
            result = db.session.execute(
                sa.update(PrintJob).where(PrintJob.id == job_id, PrintJob.status.in_(ACTIVE), still_dead)
                .values(status="failed", error=WORKER_GONE, finished_at=now)
            )
            if result.rowcount:
                failed.append(file_name)
    for file_name in failed:
        if file_name and "/" not in file_name and not file_name.startswith("."):
            (prints_dir() / f"{file_name}.part").unlink(missing_ok=True)
    if failed:
        log.warning("%s print job(s) failed: their process stopped", len(failed))
    return len(failed)


def active_jobs(convening_id: int | None = None) -> list[PrintJob]:
    """Jobs queued or running (of one convening, or all), oldest first."""
    query = sa.select(PrintJob).where(PrintJob.status.in_(ACTIVE)).order_by(PrintJob.id)
    if convening_id is not None:
        query = query.where(PrintJob.convening_id == convening_id)
    return db.session.execute(query).scalars().all()


def recent_jobs(convening_id: int, limit: int = 10) -> list[PrintJob]:
    return db.session.execute(
        sa.select(PrintJob).where(PrintJob.convening_id == convening_id)
        .order_by(PrintJob.created_at.desc(), PrintJob.id.desc()).limit(limit)
    ).scalars().all()


def mark_badges_printed(convening_id: int, registration_ids: list[int], *, at: datetime | None = None) -> int:
    """Record that these people's badges are printed now; returns how many were marked."""
    at = at or utcnow()
    if not registration_ids:
        return 0
    with unit_of_work():
        result = db.session.execute(
            sa.update(Registration)
            .where(Registration.convening_id == convening_id, Registration.id.in_(sorted(set(registration_ids))))
            .values(badge_printed_at=at)
        )
    return result.rowcount


def mark_job_printed(job_id: int) -> int:
    """Mark the badges of a finished job printed; returns how many were marked."""
    with unit_of_work():
        [job] = lock(PrintJob, job_id) or [None]
        if job is None:
            raise ConveneError("job_not_found", "That print job does not exist.", status_code=404)
        if job.kind != "badges":
            raise ConveneError("job_not_badges", "Only batches of badges are marked printed.")
        if job.status != "done":
            raise ConveneError("job_not_done", "This batch has not finished rendering yet.")
        at = utcnow()
        marked = mark_badges_printed(job.convening_id, job.registration_ids, at=at)
        job.params = {**job.params, "marked_printed_at": at.isoformat(), "marked": marked}
    return marked


# ---------------------------------------------------------------- rosters


def rosters_for(convening: Convening, site_visit_id: int | None = None) -> list[RosterData]:
    """Each site visit's roster (or one visit's): the published plan once published, else the working plan."""
    published = convening.visits_published_at is not None
    column = VisitAssignment.published_site_visit_id if published else VisitAssignment.site_visit_id
    query = (
        sa.select(SiteVisit).join(VisitSlot, VisitSlot.id == SiteVisit.slot_id)
        .where(SiteVisit.convening_id == convening.id)
        .options(selectinload(SiteVisit.host), selectinload(SiteVisit.slot))
    )
    if site_visit_id is not None:
        query = query.where(SiteVisit.id == site_visit_id)
    visits = sorted(db.session.execute(query).scalars().all(),
                    key=lambda v: (v.slot.starts_at, v.host.name.lower(), v.id))
    if site_visit_id is not None and not visits:
        raise ConveneError("visit_not_found", "That site visit does not exist.", status_code=404)
    people: dict[int, list[Registration]] = {}
    rows = db.session.execute(
        sa.select(column, Registration).join(Registration, Registration.id == VisitAssignment.registration_id)
        .where(column.in_([v.id for v in visits]), Registration.status == Status.CONFIRMED)
        .options(selectinload(Registration.delegation))
        .order_by(Registration.sort_key, Registration.id)
    ).all() if visits else []
    for visit_id, registration in rows:
        people.setdefault(visit_id, []).append(registration)
    rosters = []
    for visit in visits:
        host = visit.host
        contact = " · ".join(part for part in (host.contact_name, host.contact_phone) if part)
        rosters.append(RosterData(
            convening=convening.name, host=host.name, host_address=host.address, slot_label=visit.slot.label,
            when=_time_range(convening, visit.slot.starts_at, visit.slot.ends_at),
            meeting_point=visit.meeting_point,
            departs=convening.local(visit.departs_at).strftime("%H:%M") if visit.departs_at else "",
            transport_notes=visit.transport_notes, host_contact=contact, capacity=visit.capacity,
            people=tuple(
                RosterPerson(name=r.full_name, organization=r.organization or "",
                             delegation=r.delegation.name if r.delegation else "")
                for r in people.get(visit.id, [])
            ),
            draft=not published,
        ))
    return rosters


def render_rosters_pdf(convening_id: int, site_visit_id: int | None = None, *, paper: str = "letter") -> bytes:
    """Rosters and sign-in sheets as one PDF: every visit of the convening, or one."""
    from convene.printing.documents import render_rosters

    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    rosters = rosters_for(convening, site_visit_id)
    if not rosters:
        raise ConveneError("no_visits", "This convening has no site visits yet.", status_code=404)
    return render_rosters(rosters, paper=paper)


# ---------------------------------------------------------------- session sign-in sheets

SESSION_BLANK_ROWS = 3  # walk-ins beside the people who signed up
OPEN_SESSION_BLANK_ROWS = 25  # a session without sign-up: a page of lines for whoever comes
SESSION_ROSTER_HEADERS = (
    "Session", "Starts", "Ends", "Where", "Given name", "Family name", "Pronouns", "Organization", "Delegation",
    "Accessibility needs", "Accessibility notes", "Phone", "Email",
)


@dataclass(frozen=True)
class SessionRosterData:
    """A session's sign-in sheet, with the fields templates/printing/rosters.html reads for a visit."""

    convening: str
    host: str  # the session's title
    host_address: str  # where it happens
    slot_label: str  # the kind of session
    when: str
    host_contact: str = ""  # presenters
    capacity: int = 0
    people: tuple[RosterPerson, ...] = ()
    blank_rows: int = SESSION_BLANK_ROWS
    signup_required: bool = True
    meeting_point: str = ""
    departs: str = ""
    transport_notes: str = ""
    draft: bool = False
    kind: str = "session"


def _name_key(registration: Registration) -> tuple:
    """Family name, then given name, ignoring case and accents (Álvarez sits with the A's, Đặng with the D's)."""
    return registration.sort_key, registration.id


def session_attendees(session) -> list[Registration]:
    """Who holds a confirmed seat in a session, by family name (nobody when it needs no sign-up)."""
    if not session.signup_required:
        return []
    people = db.session.execute(
        sa.select(Registration).join(SessionSignup, SessionSignup.registration_id == Registration.id)
        .where(SessionSignup.session_id == session.id, Registration.status == Status.CONFIRMED)
        .options(selectinload(Registration.delegation))
    ).scalars().all()
    return sorted(people, key=_name_key)


def _session_where(convening: Convening, session) -> str:
    if session.room is not None:
        room = session.room.name + (f", {session.room.floor}" if session.room.floor else "")
        return ", ".join(part for part in (room, convening.venue) if part)
    return session.location or convening.venue


def session_roster_for(convening: Convening, session) -> SessionRosterData:
    """A session's sign-in sheet: its signed-up people, or blank lines only when anyone may come."""
    people = session_attendees(session)
    return SessionRosterData(
        convening=convening.name, host=session.title, host_address=_session_where(convening, session),
        slot_label=session.kind_label, when=_time_range(convening, session.starts_at, session.ends_at),
        host_contact=", ".join(p.display_name for p in session.presenters),
        capacity=(session.seat_limit or 0) if session.signup_required else 0,
        people=tuple(RosterPerson(name=r.full_name, organization=r.organization or "",
                                  delegation=r.delegation.name if r.delegation else "") for r in people),
        blank_rows=SESSION_BLANK_ROWS if session.signup_required else OPEN_SESSION_BLANK_ROWS,
        signup_required=session.signup_required,
    )


def render_session_roster_pdf(convening: Convening, session, *, paper: str = "letter") -> bytes:
    """One session's sign-in sheet as a PDF."""
    from convene.printing.documents import rosters_html, write_pdf

    roster = session_roster_for(convening, session)
    return write_pdf(rosters_html([roster], title=f"Sign-in sheet: {session.title}", paper=paper))


def session_roster_csv(convening: Convening, session) -> str:
    """A session's signed-up people as CSV text with a BOM, by family name."""
    local = "%Y-%m-%d %H:%M"
    where = _session_where(convening, session)
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(SESSION_ROSTER_HEADERS)
    for r in session_attendees(session):
        writer.writerow([csv_safe(value) for value in (
            session.title, convening.local(session.starts_at).strftime(local),
            convening.local(session.ends_at).strftime(local), where,
            r.given_name, r.family_name, r.pronouns, r.organization, r.delegation.name if r.delegation else "",
            access_labels(r), r.accessibility_notes, r.phone, r.email,
        )])
    return buffer.getvalue()


# ---------------------------------------------------------------- program book and personal agendas

AGENDA_TAGS = {"presenting": N_("Presenting"), "signed_up": N_("Signed up"), "site_visit": N_("Your group"),
               "everyone": ""}


def _day_title(day) -> str:
    return f"{format_local(day, '%A')} {day.day} {format_local(day, '%B %Y')}"


def _clock(convening: Convening, starts_at: datetime, ends_at: datetime) -> str:
    start, end = convening.local(starts_at), convening.local(ends_at)
    if start.date() == end.date():
        return f"{start:%H:%M}–{end:%H:%M}"
    return f"{start:%H:%M} – {format_local(end, '%a')} {end:%H:%M}"


def _dates_and_venue(convening: Convening) -> tuple[str, str]:
    from convene.templating import date_range

    venue = ", ".join(part for part in (convening.venue, convening.city) if part)
    return date_range(convening.starts_on, convening.ends_on), venue


def program_book(convening: Convening):
    """The program book's content, in the convening's default language (one book serves everyone)."""
    with in_language(default_language(convening)) as lang:
        return _program_book(convening, lang)


def _program_book(convening: Convening, lang: str):
    from convene.printing.agendas import ProgramBook, ProgramDay, ProgramEntry, VisitScheduleEntry
    from convene.services import schedule

    sessions = schedule.sessions_of(convening.id)
    days = []
    for day, todays in schedule.sessions_by_day(convening, sessions):
        entries = []
        for session in todays:
            presenters = tuple(
                f"{p.display_name} ({p.display_organization})" if p.display_organization else p.display_name
                for p in session.presenters
            )
            entries.append(ProgramEntry(
                time=_clock(convening, session.starts_at, session.ends_at), title=localized(session, "title"),
                kind=gettext(session.kind_label), where=schedule.localized_where(session) or "", presenters=presenters,
                description=localized(session, "description") or "",
                note=gettext("Sign-up required") if session.signup_required else "",
            ))
        days.append(ProgramDay(anchor=f"day-{day.isoformat()}", title=_day_title(day), entries=tuple(entries)))
    visits = []
    for visit in sorted(
        db.session.execute(
            sa.select(SiteVisit).where(SiteVisit.convening_id == convening.id)
            .options(selectinload(SiteVisit.host), selectinload(SiteVisit.slot))
        ).scalars(),
        key=lambda v: (v.slot.starts_at, v.host.name.lower()),
    ):
        visits.append(VisitScheduleEntry(
            slot=visit.slot.label, when=_time_range(convening, visit.slot.starts_at, visit.slot.ends_at),
            host=localized(visit.host, "name"), address=visit.host.address,
            meeting_point=localized(visit, "meeting_point"),
            departs=convening.local(visit.departs_at).strftime("%H:%M") if visit.departs_at else "",
            accessible=visit.host.accessible,
        ))
    dates, venue = _dates_and_venue(convening)
    return ProgramBook(
        convening=localized(convening, "name"), dates=dates, venue=venue,
        description=localized(convening, "description") or "",
        timezone=convening.timezone, days=tuple(days), visits=tuple(visits),
        draft=not schedule.is_published(convening.id), lang=lang,
    )


def render_program_pdf(convening_id: int, *, paper: str = "letter") -> bytes:
    """The program book as a PDF (cover, contents, day-by-day sessions, site visits, page numbers)."""
    from convene.printing.documents import render_program

    convening = db.session.get(Convening, convening_id)
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    return render_program(program_book(convening), paper=paper)


def personal_agenda_data(convening: Convening, registration: Registration, sources=None):
    """One attendee's agenda as plain data, in their language (from convene.services.schedule.personal_agenda).

    `sources` is the program read once for a whole batch (see schedule.agenda_sources); without it, read here.
    """
    with in_language(person_language(registration, convening)) as lang:
        return _personal_agenda_data(convening, registration, lang, sources)


def _personal_agenda_data(convening: Convening, registration: Registration, lang: str, sources=None):
    from convene.printing.agendas import AgendaDay, AgendaEntry, PersonalAgenda
    from convene.services.schedule import personal_agenda

    days = []
    for day in personal_agenda(convening, registration, sources):
        entries = tuple(
            AgendaEntry(
                time=_clock(convening, item.starts_at, item.ends_at), title=item.title, where=item.where or "",
                tag=gettext(AGENDA_TAGS[item.why]) if AGENDA_TAGS.get(item.why) else "", details=tuple((str(k), str(v)) for k, v in item.details),
            )
            for item in day.items
        )
        days.append(AgendaDay(title=_day_title(day.day), entries=entries))
    dates, _ = _dates_and_venue(convening)
    return PersonalAgenda(
        convening=localized(convening, "name"), dates=dates, name=registration.full_name,
        organization=registration.organization,
        reference=registration.reference, timezone=convening.timezone, days=tuple(days), lang=lang,
        nothing_text=gettext("Nothing is on this agenda yet: the program or the site-visit groups have not been "
                             "published."),
        zone_text=gettext("All times are local (%(zone)s).", zone=convening.timezone),
    )


def render_agenda_pdf(convening_id: int, registration_id: int, *, paper: str = "letter") -> bytes:
    """One attendee's personal agenda as a PDF (for their manage page, or the desk)."""
    from convene.printing.documents import render_agendas

    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.convening_id != convening_id:
        raise ConveneError("registration_not_found", "That registration does not exist.", status_code=404)
    if registration.status != Status.CONFIRMED:
        raise ConveneError("agenda_not_available", "Only confirmed registrations have an agenda.", status_code=404)
    return render_agendas([personal_agenda_data(registration.convening, registration)], paper=paper)


def request_agenda_batch(convening_id: int, *, requested_by: str = "", paper: str = "letter",
                         inline_max: int | None = None) -> PrintJob:
    """Every confirmed attendee's personal agenda in one PDF (welcome packets), as a print job."""
    with unit_of_work():
        convening = db.session.get(Convening, convening_id)
        if convening is None:
            raise ConveneError("convening_not_found", status_code=404)
        ids = db.session.execute(
            sa.select(Registration.id).where(Registration.convening_id == convening_id,
                                             Registration.status == Status.CONFIRMED)
            .order_by(Registration.sort_key, Registration.id)
        ).scalars().all()
        if not ids:
            raise ConveneError("nothing_to_print", "Nobody is confirmed yet.")
        job = PrintJob(convening_id=convening_id, kind="agendas", status="queued", total=len(ids), done=0,
                       registration_ids=list(ids), requested_by=requested_by, params={"paper": paper})
        db.session.add(job)
        db.session.flush()
        job.file_name = f"{_safe_slug(convening.slug)}-agendas-{job.id}.pdf"
        inline = _render_inline(job, inline_max)
    if inline:
        run_print_job(job.id, workers=0)
    return db.session.get(PrintJob, job.id)


# ---------------------------------------------------------------- whole documents as print jobs

DOCUMENTS = {"program": render_program_pdf, "rosters": render_rosters_pdf}
DOCUMENT_LABELS = {"program": "program book", "rosters": "site-visit rosters"}


def _write_whole(pdf: bytes, path: Path) -> int:
    """Write a rendered document to `path` (never half-written under its name); returns its pages."""
    from pypdf import PdfReader

    partial = path.with_name(path.name + ".part")
    partial.write_bytes(pdf)
    partial.replace(path)
    return len(PdfReader(io.BytesIO(pdf)).pages)


def request_document(convening_id: int, kind: str, *, paper: str = "letter", requested_by: str = "") -> PrintJob:
    """Queue the program book or every roster as a print job for the worker; the print queue lists it."""
    if kind not in DOCUMENTS:
        raise ValueError(f"unknown document: {kind!r}")
    with unit_of_work():
        convening = db.session.get(Convening, convening_id)
        if convening is None:
            raise ConveneError("convening_not_found", status_code=404)
        if kind == "rosters" and not db.session.scalar(
                sa.select(sa.func.count(SiteVisit.id)).where(SiteVisit.convening_id == convening_id)):
            raise ConveneError("no_visits", "This convening has no site visits yet.")
        job = PrintJob(convening_id=convening_id, kind=kind, status="queued", total=1, done=0, registration_ids=[],
                       requested_by=requested_by, params={"paper": paper})
        db.session.add(job)
        db.session.flush()
        job.file_name = f"{_safe_slug(convening.slug)}-{kind}-{job.id}.pdf"
        _render_inline(job, 0)
    return db.session.get(PrintJob, job.id)
