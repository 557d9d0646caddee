"""Background jobs: the one module that owns the queue.

Work is recorded as a `Job` row (kind, params, who asked, progress) and handed to a queue by id
once the unit of work that recorded it has committed:

- with `JOBS_REDIS_URL` (or `REDIS_URL`) set, to RQ on Redis; `flask convene worker` runs them,
  each in the app context of the worker process (the app is made once per process);
- otherwise to a few daemon threads of the web process itself, so `make run` needs nothing else.

A run first claims its row (queued → running) with one conditional UPDATE, so a job handed to the
queue twice runs once. While it runs it beats (`heartbeat_at`); a job whose worker died (its pid is
gone on this host, or it fell silent for `JOB_STALE_SECONDS`) is queued again by `recover_stalled`
until `max_attempts`, then failed with its reason. Side effects a second run must not repeat are
each task's own business: email goes through the outbox's leases, a badge batch rewrites its file.

Tasks are functions named in `TASKS` ("module:function"), imported when they run, taking a
`JobRun`; they return a dict of final values (done, total, message, result_file) or None.
"""
from __future__ import annotations

import importlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from sqlalchemy.exc import IntegrityError

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Job, utcnow
from convene.models.jobs import JOB_ACTIVE
from convene.services.db import after_commit, lock, register_after_commit, unit_of_work

log = logging.getLogger(__name__)

TASKS = {
    "print_batch": "convene.services.printing:run_print_batch_task",
    "deliver_mail": "convene.services.mail:deliver_mail_task",
    "expire_offers": "convene.jobs:expire_offers_task",
    "expire_files": "convene.storage:expire_files_task",
    "export_registrations": "convene.services.exports:export_registrations_task",
    "import_registrations": "convene.services.imports:import_registrations_task",
    "assign_visits": "convene.services.visits:assign_site_visits_task",
    "publish_visits": "convene.services.visits:publish_site_visits_task",
    "send_message": "convene.services.messages:send_message_task",
    "send_due_messages": "convene.services.messages:send_due_messages_task",
    "erase_expired": "convene.services.privacy:erase_expired_task",
}
# Called as hook(params) to try a failed job of that kind again (its own rows reset first).
RETRY_HOOKS = {
    "print_batch": "convene.services.printing:retry_print_batch",
}
# Called as hook(params, message) when a job of that kind ends failed for good.
FAILED_HOOKS = {
    "print_batch": "convene.services.printing:print_batch_failed",
}
KIND_LABELS = {"print_batch": "Print batch", "deliver_mail": "Email delivery",
               "expire_offers": "Expire offers and holds", "expire_files": "Delete old files",
               "export_registrations": "Registrations export", "import_registrations": "Registrations import",
               "assign_visits": "Site-visit assignment",
               "publish_visits": "Site-visit emails", "send_message": "Message to registrants",
               "send_due_messages": "Start scheduled messages", "erase_expired": "Erase data past retention"}
WORKER_STOPPED = "The worker running this job stopped"


class JobTakenAway(Exception):
    """The job this run works on is no longer its own (it was found dead and handed to another run)."""


# ---------------------------------------------------------------- enqueueing


def enqueue(kind: str, *, convening_id: int | None = None, requested_by: int | None = None,
            params: dict | None = None, total: int = 0, idempotency_key: str | None = None,
            max_attempts: int | None = None, hand_on: bool = True) -> Job:
    """Record a job and queue it once the current unit of work (or its own) commits; returns its row.

    A key already used returns that job instead of making a second one. With `hand_on=False` the
    caller runs it itself (`run`) after the commit; should the caller die first, the job is queued
    like any other after JOB_STALE_SECONDS (`recover_stalled`).
    """
    if kind not in TASKS:
        raise ValueError(f"unknown kind of job: {kind!r}")
    with unit_of_work():
        if idempotency_key is not None:
            existing = _by_key(idempotency_key)
            if existing is not None:
                return existing
        job = Job(kind=kind, convening_id=convening_id, requested_by=requested_by, params=dict(params or {}),
                  status="queued", total=total, idempotency_key=idempotency_key,
                  max_attempts=max_attempts or current_app.config.get("JOB_MAX_ATTEMPTS", 3))
        try:
            with db.session.begin_nested():  # a racing request with the same key committed first
                db.session.add(job)
                db.session.flush()
        except IntegrityError:
            existing = _by_key(idempotency_key) if idempotency_key is not None else None
            if existing is None:
                raise
            return existing
        if hand_on:
            after_commit("jobs", job.id)
    return job


def _by_key(key: str) -> Job | None:
    return db.session.execute(sa.select(Job).where(Job.idempotency_key == key)).scalar_one_or_none()


def _dispatch(job_ids: list[int]) -> None:
    """After the commit: hand the jobs to the queue (a failure here leaves them for `recover_stalled`)."""
    for job_id in job_ids:
        try:
            _backend().submit(job_id)
        except Exception:  # Redis down: the row is committed and queued; the next sweep hands it on
            log.exception("job %s could not be handed to the queue; it waits for the next sweep", job_id)


register_after_commit("jobs", _dispatch)


def uses_redis(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("JOBS_REDIS_URL"))


def _backend():
    return _RQ(current_app.config) if uses_redis() else _embedded


# ---------------------------------------------------------------- running one job


def this_worker() -> str:
    """This process as the job table records it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobRun:
    """What a task sees of its job: the row's values, and a way to report progress."""

    id: int
    kind: str
    params: dict
    convening_id: int | None
    attempt: int
    max_attempts: int
    worker: str
    lost: threading.Event = field(default_factory=threading.Event)

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Record progress (and a sign of life); raises JobTakenAway when the job is no longer this run's."""
        values: dict = {"done": done}
        if total is not None:
            values["total"] = total
        if message is not None:
            values["message"] = message
        if self.lost.is_set() or not _beat(self.id, self.worker, **values):
            raise JobTakenAway(self.id)


def _holding(job_id: int, worker: str):
    return sa.update(Job).where(Job.id == job_id, Job.status == "running", Job.worker == worker)


def _beat(job_id: int, worker: str, **values) -> bool:
    with unit_of_work():
        return bool(db.session.execute(_holding(job_id, worker).values(heartbeat_at=utcnow(), **values)).rowcount)


class _Heartbeat:
    """Beats for a job every few seconds while its task runs, progress or not."""

    def __init__(self, app: Flask, run: JobRun, interval: float):
        self.app, self.run, self.interval = app, run, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"job-{run.id}-heartbeat", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()

    def _loop(self) -> None:
        with self.app.app_context():
            try:
                while not self.stopped.wait(self.interval):
                    try:
                        mine = _beat(self.run.id, self.run.worker)
                    except Exception:  # a database hiccup: try again at the next beat
                        log.exception("heartbeat of job %s failed", self.run.id)
                        continue
                    if not mine:
                        self.run.lost.set()
                        return
            finally:
                db.session.remove()


def _import(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def run(job_id: int) -> str | None:
    """Claim a queued job and run its task here; returns how it ended (None: it was not queued)."""
    worker = f"{this_worker()}/{uuid.uuid4().hex[:8]}"
    with unit_of_work():
        now = utcnow()
        claimed = db.session.execute(
            sa.update(Job).where(Job.id == job_id, Job.status == "queued")
            .values(status="running", worker=worker, attempts=Job.attempts + 1, started_at=now, heartbeat_at=now,
                    finished_at=None)
        ).rowcount
    if not claimed:
        return None
    job = db.session.execute(
        sa.select(Job).where(Job.id == job_id).execution_options(populate_existing=True)).scalar_one()
    job_run = JobRun(id=job.id, kind=job.kind, params=dict(job.params or {}), convening_id=job.convening_id,
                     attempt=job.attempts, max_attempts=job.max_attempts, worker=worker)
    db.session.rollback()  # end the read transaction: the task may take a while
    app = current_app._get_current_object()
    interval = max(0.05, float(app.config.get("JOB_HEARTBEAT_SECONDS", 10)))
    log.info("job %s (%s) started, attempt %s of %s", job_id, job_run.kind, job_run.attempt, job_run.max_attempts)
    try:
        with _Heartbeat(app, job_run, interval):
            values = _import(TASKS[job_run.kind])(job_run) or {}
    except JobTakenAway:
        db.session.rollback()
        log.warning("job %s was handed to another run while this one worked on it; stopping", job_id)
        return None
    except Exception as error:
        db.session.rollback()
        final = isinstance(error, ConveneError) or job_run.last_attempt
        message = error.message if isinstance(error, ConveneError) else f"{type(error).__name__}: {error}"
        log.warning("job %s (%s) failed on attempt %s: %s", job_id, job_run.kind, job_run.attempt, message,
                    exc_info=not isinstance(error, ConveneError))
        status = "failed" if final else "queued"
        with unit_of_work():
            ended = db.session.execute(_holding(job_id, worker).values(
                status=status, message=message[:2000], worker="", heartbeat_at=utcnow(),
                finished_at=utcnow() if final else None)).rowcount
        if ended and final:
            _failed_hook(job_run.kind, job_run.params, message)
        elif ended:
            _backend().submit(job_id)
        return status if ended else None
    with unit_of_work():
        ended = db.session.execute(_holding(job_id, worker).values(
            status="done", worker="", heartbeat_at=utcnow(), finished_at=utcnow(),
            **{k: v for k, v in values.items() if k in ("done", "total", "message", "result_file")})).rowcount
    log.info("job %s (%s) done", job_id, job_run.kind)
    return "done" if ended else None


def _failed_hook(kind: str, params: dict, message: str) -> None:
    if kind in FAILED_HOOKS:
        try:
            _import(FAILED_HOOKS[kind])(params, message)
        except Exception:
            log.exception("the failure hook of a %s job failed", kind)


def perform(job_id: int) -> str | None:
    """What RQ calls: run the job in this worker's app context (made once per process when there is none)."""
    if has_app_context():
        try:
            return run(job_id)
        finally:
            db.session.remove()
    with _worker_app().app_context():
        try:
            return run(job_id)
        finally:
            db.session.remove()


_app: Flask | None = None


def _worker_app() -> Flask:
    global _app
    if _app is None:
        from convene import create_app

        _app = create_app()
    return _app


# ---------------------------------------------------------------- workers that died


def _worker_gone(worker: str) -> bool:
    """True when `worker` (host:pid/run) ran on this host and its process no longer exists."""
    host, _, pid = worker.split("/", 1)[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def recover_stalled() -> tuple[int, int]:
    """Queue again the jobs whose worker died (or fail them after `max_attempts`), and hand on queued jobs
    nobody picked up for `JOB_STALE_SECONDS`; returns (queued again, failed)."""
    stale = timedelta(seconds=current_app.config.get("JOB_STALE_SECONDS", 120))
    now = utcnow()
    rows = db.session.execute(
        sa.select(Job.id, Job.status, Job.worker, Job.heartbeat_at, Job.created_at, Job.attempts, Job.max_attempts,
                  Job.kind, Job.params)
        .where(Job.status.in_(JOB_ACTIVE)).order_by(Job.id)
    ).all()
    db.session.rollback()
    again, failed, resubmit = 0, 0, []
    for row in rows:
        last = row.heartbeat_at or row.created_at
        silent = last is not None and now - last > stale
        if row.status == "queued":
            if silent and not _backend().holds(row.id):
                resubmit.append(row.id)
            continue
        if not (silent or (row.worker and _worker_gone(row.worker))):
            continue
        final = row.attempts >= row.max_attempts
        message = (f"{WORKER_STOPPED} {row.attempts} time(s); it was not tried again." if final
                   else f"{WORKER_STOPPED}; it runs again.")
        with unit_of_work():
            changed = db.session.execute(_holding(row.id, row.worker).values(
                status="failed" if final else "queued", message=message, worker="", heartbeat_at=now,
                finished_at=now if final else None)).rowcount
        if not changed:  # it beat or finished meanwhile
            continue
        log.warning("job %s (%s): %s", row.id, row.kind, message)
        if final:
            failed += 1
            _failed_hook(row.kind, dict(row.params or {}), message)
        else:
            again += 1
            resubmit.append(row.id)
    for job_id in resubmit:
        try:
            _backend().submit(job_id)
        except Exception:
            log.exception("job %s could not be handed to the queue", job_id)
    return again, failed


def retry_job(job_id: int) -> Job:
    """An organizer's "Try again" on any failed job: its kind's own reset when it has one, else `retry`."""
    job = db.session.get(Job, job_id)
    if job is not None and job.kind in RETRY_HOOKS and job.status == "failed":
        _import(RETRY_HOOKS[job.kind])(dict(job.params or {}))
        return db.session.get(Job, job_id)
    return retry(job_id)


def retry(job_id: int) -> Job:
    """Run a failed job again from its first attempt (an organizer asked for it)."""
    with unit_of_work():
        [job] = lock(Job, job_id) or [None]
        if job is None:
            raise ConveneError("job_not_found", "That job does not exist.", status_code=404)
        if job.status != "failed":
            raise ConveneError("job_not_failed", "Only a failed job can be tried again.")
        job.status, job.attempts, job.message, job.worker = "queued", 0, "", ""
        job.done, job.finished_at, job.started_at, job.heartbeat_at = 0, None, None, None
        after_commit("jobs", job.id)
    return job


# ---------------------------------------------------------------- reading


@dataclass
class QueueHealth:
    """What the dashboard tells organizers about the queue: is work waiting, did any fail."""

    waiting: int
    running: int
    oldest_waiting_at: datetime | None
    failed: list[Job]  # this convening's failed jobs of the last FAILED_SHOWN_DAYS, newest first
    stalled: bool  # work waited longer than JOB_STALE_SECONDS: no worker is taking it


FAILED_SHOWN_DAYS = 7


def queue_health(convening_id: int | None = None) -> QueueHealth:
    """Waiting and running jobs of the whole queue (one queue serves every convening), and recent failures."""
    queued = Job.status == "queued"
    waiting, running, oldest = db.session.execute(
        sa.select(sa.func.count(sa.case((queued, Job.id))), sa.func.count(sa.case((Job.status == "running", Job.id))),
                  sa.func.min(sa.case((queued, Job.created_at))))
        .where(Job.status.in_(JOB_ACTIVE))).one()
    since = utcnow() - timedelta(days=FAILED_SHOWN_DAYS)
    query = sa.select(Job).where(Job.status == "failed", Job.finished_at > since).order_by(Job.id.desc()).limit(5)
    if convening_id is not None:
        query = query.where(Job.convening_id == convening_id)
    failed = db.session.execute(query).scalars().all()
    stale = current_app.config.get("JOB_STALE_SECONDS", 120)
    stalled = oldest is not None and (utcnow() - oldest).total_seconds() > stale
    return QueueHealth(waiting=waiting, running=running, oldest_waiting_at=oldest, failed=failed, stalled=stalled)


def get_job(job_id: int) -> Job | None:
    return db.session.get(Job, job_id)


def list_jobs(convening_id: int | None = None, *, limit: int = 50) -> list[Job]:
    """The newest jobs (of one convening, or all), newest first."""
    query = sa.select(Job).order_by(Job.id.desc()).limit(limit)
    if convening_id is not None:
        query = query.where(Job.convening_id == convening_id)
    return db.session.execute(query).scalars().all()


def wait(job_id: int, timeout: float = 60, interval: float = 0.1) -> str:
    """Wait until a job is no longer queued or running (read on a connection of its own); returns its status."""
    deadline = time.monotonic() + timeout
    while True:
        with db.engine.connect() as connection:
            status = connection.execute(sa.select(Job.status).where(Job.id == job_id)).scalar()
        if status not in JOB_ACTIVE or time.monotonic() >= deadline:
            return status
        time.sleep(interval)


def finish_mail(job_id: int, timeout: float = 3600) -> int:
    """In-process worker only: wait for a job that writes emails, then send whatever is still waiting here
    (a command must not exit with its emails unsent); returns how many this call sent itself."""
    from convene.services.mail import deliver_messages

    wait(job_id, timeout=timeout)
    sent = deliver_messages().sent
    for row in list_jobs(limit=200):  # delivery jobs this process started hold the rest: let them finish
        if row.kind == "deliver_mail" and row.status in JOB_ACTIVE:
            wait(row.id, timeout=timeout)
    db.session.rollback()
    return sent


def prune(older_than: timedelta = timedelta(days=1),
          kinds: tuple[str, ...] = ("expire_offers", "deliver_mail", "expire_files",
                                     "send_due_messages", "erase_expired")) -> int:
    """Delete finished routine jobs (the scheduler's sweeps, email deliveries) older than `older_than`."""
    with unit_of_work():
        return db.session.execute(
            sa.delete(Job).where(Job.kind.in_(kinds), Job.status.in_(("done", "failed")),
                                 Job.finished_at < utcnow() - older_than)
        ).rowcount


# ---------------------------------------------------------------- the sweeps


def expire_offers_task(job: JobRun) -> dict:
    """Release waitlist offers and unpaid checkout holds past their deadline (their emails follow the commit)."""
    from convene.services.registrations import expire_offers

    lapsed = expire_offers()
    return {"done": lapsed, "total": lapsed, "message": f"{lapsed} offer(s) or unpaid hold(s) released."}


def schedule_sweeps(now: float | None = None) -> list[Job]:
    """Queue this interval's sweeps (once, however many schedulers run): expire offers and holds, send mail,
    start the scheduled messages that are due, and (hourly) delete old files."""
    interval = max(1, int(current_app.config.get("SCHEDULER_INTERVAL_SECONDS", 60)))
    slot = int((now if now is not None else time.time()) // interval)
    hour = int((now if now is not None else time.time()) // 3600)
    return [enqueue("expire_offers", idempotency_key=f"sweep:expire_offers:{interval}:{slot}", max_attempts=1),
            enqueue("deliver_mail", idempotency_key=f"sweep:deliver_mail:{interval}:{slot}", max_attempts=1),
            enqueue("send_due_messages", idempotency_key=f"sweep:send_due_messages:{interval}:{slot}",
                    max_attempts=1),
            # Old files once an hour: a sweep of the folder or the file table is not worth doing every minute.
            enqueue("expire_files", idempotency_key=f"sweep:expire_files:{hour}", max_attempts=1),
            # Personal data past its convening's retention, once a day.
            enqueue("erase_expired", idempotency_key=f"sweep:erase_expired:{hour // 24}", max_attempts=1)]


# ---------------------------------------------------------------- the queues


class _RQ:
    """RQ on Redis: the job's id travels, and `perform` runs it in `flask convene worker`."""

    _connections: ClassVar[dict[str, object]] = {}  # one Redis client (and its pool) per URL, per process

    def __init__(self, config):
        self.url, self.name = config["JOBS_REDIS_URL"], config.get("JOBS_QUEUE", "convene")
        self.timeout = config.get("JOB_TIMEOUT_SECONDS", 3 * 3600)

    @property
    def redis(self):
        if self.url not in self._connections:
            from redis import Redis

            self._connections[self.url] = Redis.from_url(self.url, socket_connect_timeout=5)
        return self._connections[self.url]

    def queue(self):
        from rq import Queue

        return Queue(self.name, connection=self.redis)

    def submit(self, job_id: int) -> None:
        # A fresh RQ id per hand-over: a retried job is a new RQ job, its row the same.
        self.queue().enqueue(perform, job_id, job_id=f"convene-job-{job_id}-{uuid.uuid4().hex[:8]}",
                             job_timeout=self.timeout, result_ttl=3600, failure_ttl=7 * 86400,
                             description=f"convene job {job_id}")

    def holds(self, job_id: int) -> bool:
        """Whether RQ still has this job waiting or running."""
        queue = self.queue()
        ids = set(queue.get_job_ids()) | set(queue.started_job_registry.get_job_ids())
        wanted = f"convene-job-{job_id}-"
        return any(rq_id.split(":")[0].startswith(wanted) for rq_id in ids)


class _Embedded:
    """A few daemon threads in this process, for when there is no Redis (development, small events)."""

    def __init__(self):
        self.jobs: queue.Queue[tuple[Flask, int | None]] = queue.Queue()  # None: look for dead jobs
        self.threads: list[threading.Thread] = []
        self.pending: Counter[int] = Counter()  # job id → hand-overs not run yet
        self.outstanding = 0  # hand-overs (jobs and looks for dead jobs) not finished yet
        self.guard = threading.Lock()

    def submit(self, job_id: int) -> None:
        app = current_app._get_current_object()
        with self.guard:
            if not self.threads:  # this process's first job: first run again what a process before it left
                self.outstanding += 1
                self.jobs.put((app, None))
            self.pending[job_id] += 1
            self.outstanding += 1
            wanted = max(1, int(app.config.get("JOBS_THREADS", 2)))
            while len(self.threads) < wanted:
                thread = threading.Thread(target=self._loop, name=f"convene-job-{len(self.threads)}", daemon=True)
                self.threads.append(thread)
                thread.start()
        self.jobs.put((app, job_id))

    def holds(self, job_id: int) -> bool:
        return self.pending[job_id] > 0

    def idle(self) -> bool:
        """Nothing handed over is waiting or running (tests wait for this between one test and the next)."""
        with self.guard:
            return self.outstanding == 0

    def _loop(self) -> None:
        while True:
            app, job_id = self.jobs.get()
            try:
                with app.app_context():
                    try:
                        if job_id is None:
                            recover_stalled()
                        else:
                            run(job_id)
                    finally:
                        db.session.remove()
            except Exception:  # the database went away, say: the sweep hands the job on again
                if job_id is None:
                    log.exception("looking for jobs whose worker died failed")
                else:
                    log.exception("job %s could not be run", job_id)
            finally:
                with self.guard:
                    self.outstanding -= 1
                    if job_id is not None:
                        self.pending[job_id] -= 1
                        if self.pending[job_id] <= 0:
                            del self.pending[job_id]


_embedded = _Embedded()


# ---------------------------------------------------------------- the in-process scheduler (no Redis)

_scheduled: dict[int, threading.Event] = {}  # id of each app whose timer runs in this process → its stop switch
_scheduled_guard = threading.Lock()


def start_embedded_scheduler(app: Flask) -> bool:
    """Without Redis, sweep on a timer in this web process too (once per process): waiting mail goes out,
    offers and holds expire, and jobs a dead process left are run, with no `flask convene scheduler`.

    Every web process runs one; the sweeps' idempotency keys make each interval's sweep one job.
    """
    with _scheduled_guard:
        if id(app) in _scheduled:
            return False
        stopped = _scheduled[id(app)] = threading.Event()
    threading.Thread(target=_embedded_scheduler_loop, args=(app, stopped), name="convene-scheduler",
                     daemon=True).start()
    return True


def stop_embedded_scheduler(app: Flask) -> None:
    """Stop this process's timer for `app` (tests; a web process keeps it until it exits)."""
    with _scheduled_guard:
        stopped = _scheduled.pop(id(app), None)
    if stopped is not None:
        stopped.set()


def _embedded_scheduler_loop(app: Flask, stopped: threading.Event) -> None:
    interval = max(1, int(app.config.get("SCHEDULER_INTERVAL_SECONDS", 60)))
    last_prune = time.monotonic()
    while not stopped.wait(interval - time.time() % interval):
        try:
            with app.app_context():
                try:
                    recover_stalled()
                    schedule_sweeps()
                    if time.monotonic() - last_prune > 3600:  # the sweeps' own rows, as the scheduler does
                        prune()
                        last_prune = time.monotonic()
                finally:
                    db.session.remove()
        except Exception:  # the database is away for a moment: the next round tries again
            log.exception("the in-process scheduler's round failed")
