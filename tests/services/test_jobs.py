"""The job queue: jobs recorded with the commit, run once, retried when their worker dies, failed with a reason.

The in-process worker (no Redis) runs on both databases; the tests with real `flask convene worker`
processes on Redis run once (on PostgreSQL when it is configured, else on SQLite): they are slow.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from convene import jobs
from convene.extensions import db
from convene.models import AuditEntry, Job, OutboxMessage, PrintJob, utcnow
from convene.services import printing
from convene.services.db import unit_of_work
from convene.services.mail import queue_email
from tests import jobs_helpers
from tests.conftest import BACKENDS, login
from tests.factories import make_convening, make_registration, make_ticket
from tests.jobs_helpers import CALLS, ROOT, calls, wait_until
from tests.services.test_mail import SmtpSink

redis_queue, workers = jobs_helpers.redis_queue, jobs_helpers.workers  # fixtures
ONCE_ON = BACKENDS[-1]  # PostgreSQL when the run has it


def run_once(backend: str) -> None:
    if backend != ONCE_ON:
        pytest.skip(f"a slow test with real worker processes: it runs once, on {ONCE_ON}")


def fresh(model, row_id: int):
    db.session.rollback()
    return db.session.execute(sa.select(model).where(model.id == row_id).execution_options(populate_existing=True)
                              ).scalar_one()


@pytest.fixture
def test_tasks(monkeypatch):
    CALLS.clear()
    monkeypatch.setitem(jobs.TASKS, "counting", "tests.jobs_helpers:counting_task")
    monkeypatch.setitem(jobs.TASKS, "failing", "tests.jobs_helpers:failing_task")
    return CALLS


def people(n: int, slug: str = "queue"):
    convening = make_convening(slug=slug)
    ticket = make_ticket(convening)
    registrations = [make_registration(convening, ticket, i, given_name=f"Person{i}", family_name=f"Number{i:03d}")
                     for i in range(n)]
    return convening, registrations


def queue_mail(n: int, convening) -> list[int]:
    """n emails queued in one unit of work: they are handed on after its commit."""
    with unit_of_work():
        messages = [queue_email("manage_link", f"p{i}@example.org", f"Hello {i}", "manage_link",
                                registration=None, convening=convening, manage_url="http://x/") for i in range(n)]
    return [m.id for m in messages]


# ---------------------------------------------------------------- the in-process worker (no Redis)


def test_a_job_is_recorded_with_the_commit_and_never_when_the_unit_rolls_back(app, test_tasks):
    with pytest.raises(RuntimeError), unit_of_work():
        jobs.enqueue("counting")
        raise RuntimeError("the action failed")
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 0
    job = jobs.enqueue("counting")
    assert jobs.wait(job.id, timeout=30) == "done"
    job = fresh(Job, job.id)
    assert (job.done, job.total, job.message, job.attempts) == (1, 1, "counted", 1)
    assert job.started_at is not None and job.finished_at is not None and job.worker == ""
    assert calls("counting") == [job.id]
    assert db.session.scalar(sa.select(sa.func.count(AuditEntry.id))) == 0  # bookkeeping, not the log of changes


def test_a_job_handed_to_the_queue_twice_runs_once(app, test_tasks):
    job = jobs.enqueue("counting")
    assert jobs.wait(job.id, timeout=30) == "done"
    assert jobs.run(job.id) is None  # claimed already: a second hand-over does nothing
    assert calls("counting") == [job.id]


def test_one_idempotency_key_makes_one_job(app, test_tasks):
    first = jobs.enqueue("counting", idempotency_key="sweep:1")
    second = jobs.enqueue("counting", idempotency_key="sweep:1")
    assert first.id == second.id
    assert db.session.scalar(sa.select(sa.func.count(Job.id))) == 1


def test_a_job_that_keeps_failing_ends_failed_with_its_message_after_its_attempts(app, test_tasks):
    app.config["JOB_MAX_ATTEMPTS"] = 3
    job = jobs.enqueue("failing")
    wait_until(lambda: fresh(Job, job.id).status == "failed", timeout=30, message="the job to fail")
    job = fresh(Job, job.id)
    assert job.attempts == 3 and calls("failing") == [1, 2, 3]
    assert job.message == "RuntimeError: the printer is on fire (attempt 3)"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)
    return process.pid


def test_a_job_whose_worker_died_runs_again_and_after_its_last_attempt_fails(app, test_tasks):
    here = socket.gethostname()
    again = Job(kind="counting", status="running", attempts=1, max_attempts=3, worker=f"{here}:{dead_pid()}/x",
                heartbeat_at=utcnow())
    spent = Job(kind="counting", status="running", attempts=3, max_attempts=3, worker=f"{here}:{dead_pid()}/y",
                heartbeat_at=utcnow())
    alive = Job(kind="counting", status="running", attempts=1, max_attempts=3, worker=f"{here}:{os.getpid()}/z",
                heartbeat_at=utcnow())
    db.session.add_all([again, spent, alive])
    db.session.commit()
    assert jobs.recover_stalled() == (1, 1)
    assert jobs.wait(again.id, timeout=30) == "done"
    assert fresh(Job, again.id).attempts == 2 and calls("counting") == [again.id]
    spent = fresh(Job, spent.id)
    assert spent.status == "failed" and "stopped 3 time(s)" in spent.message
    assert fresh(Job, alive.id).status == "running"


def test_a_big_badge_batch_is_a_job_of_the_in_process_worker(app):
    app.config.update(PRINT_INLINE_MAX=2, PRINT_WORKERS=0)
    convening, _ = people(5)
    print_job = printing.request_badge_batch(convening.id, printing.BadgeFilter(which="all"), "badge-4x6")
    assert print_job.job_id is not None
    assert printing.wait_for_print_job(print_job.id, timeout=120)
    assert jobs.wait(print_job.job_id, timeout=30) == "done"
    job, print_job = fresh(Job, print_job.job_id), fresh(PrintJob, print_job.id)
    assert print_job.status == "done" and print_job.done == 5
    assert (job.kind, job.status, job.done, job.total, job.convening_id) == ("print_batch", "done", 5, 5, convening.id)
    assert job.result_file == print_job.file_name and job.idempotency_key == f"print:{print_job.id}"


def test_many_emails_go_out_through_a_delivery_job(app, outbox):
    app.config["MAIL_INLINE_LIMIT"] = 5
    ids = queue_mail(12, make_convening())
    job = db.session.execute(sa.select(Job).where(Job.kind == "deliver_mail")).scalar_one()
    assert job.params == {"ids": ids} and job.total == 12
    assert jobs.wait(job.id, timeout=60) == "done"
    assert len(outbox.messages()) == 12 and fresh(Job, job.id).done == 12
    # safe to run twice: a second delivery job for the same messages sends nothing
    again = jobs.enqueue("deliver_mail", params={"ids": ids})
    assert jobs.wait(again.id, timeout=60) == "done" and len(outbox.messages()) == 12


def test_the_scheduler_queues_each_sweep_once_per_interval(app, runner):
    app.config["SCHEDULER_INTERVAL_SECONDS"] = 3600
    first = runner.invoke(args=["convene", "scheduler", "--once"])
    second = runner.invoke(args=["convene", "scheduler", "--once"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "expire_offers" in first.output and "deliver_mail" in first.output
    kinds = Counter(db.session.execute(sa.select(Job.kind)).scalars())
    assert kinds == Counter({"expire_offers": 1, "deliver_mail": 1, "expire_files": 1, "send_due_messages": 1,
                             "erase_expired": 1})
    for job in jobs.list_jobs():
        assert jobs.wait(job.id, timeout=30) == "done"


def test_the_worker_command_without_redis_explains_the_in_process_worker(app, runner):
    result = runner.invoke(args=["convene", "worker"])
    assert result.exit_code != 0
    assert "in-process worker inside each web process" in result.output


def test_jobs_and_job_commands_show_kind_status_progress_and_file(app, runner):
    app.config.update(PRINT_INLINE_MAX=0, PRINT_WORKERS=0)
    people(3, slug="cli-queue")
    queued = runner.invoke(args=["convene", "badges", "cli-queue", "--queue", "--layout", "badge-4x6"])
    assert queued.exit_code == 0, queued.output
    print_job = db.session.execute(sa.select(PrintJob)).scalar_one()
    assert f"print job {print_job.id}: job {print_job.job_id}" in queued.output
    assert printing.wait_for_print_job(print_job.id, timeout=120)
    assert jobs.wait(print_job.job_id, timeout=30) == "done"
    db.session.rollback()  # the commands run in this test's app context: let them see what the job wrote
    listing = runner.invoke(args=["convene", "jobs", "cli-queue"])
    assert listing.exit_code == 0 and f"#{print_job.job_id}" in listing.output
    assert "print_batch" in listing.output and "done" in listing.output and "3/3" in listing.output
    one = runner.invoke(args=["convene", "job", str(print_job.job_id)])
    assert one.exit_code == 0, one.output
    assert "Status:    done, attempt 1 of 3" in one.output
    assert f"{print_job.file_name}" in one.output and "(not here)" not in one.output
    assert runner.invoke(args=["convene", "job", "999999"]).exit_code != 0


def test_program_and_rosters_commands_queue_the_document_for_the_worker(app, runner):
    from tests.factories import make_host, make_slot, make_visit

    convening, _ = people(2, slug="cli-docs")
    make_visit(make_host(convening, "Library"), make_slot(convening, "Morning", 9), 5)
    db.session.commit()
    for kind in ("program", "rosters"):
        result = runner.invoke(args=["convene", kind, "cli-docs", "--queue", "--paper", "a4"])
        assert result.exit_code == 0, result.output
        print_job = db.session.execute(sa.select(PrintJob).where(PrintJob.kind == kind)).scalar_one()
        label = "program book" if kind == "program" else "site-visit rosters"
        assert f"Queued the {label} as print job {print_job.id}: job {print_job.job_id}" in result.output
        assert jobs.wait(print_job.job_id, timeout=120) == "done"
        print_job = fresh(PrintJob, print_job.id)
        assert print_job.status == "done" and print_job.pages >= 1 and printing.job_has_file(print_job)
    assert runner.invoke(args=["convene", "program", "cli-docs"]).exit_code != 0  # neither --out nor --queue


def test_an_organizer_retries_a_failed_batch_from_the_print_queue(app, client, organizer, test_tasks):
    convening, _ = people(3, slug="retry-queue")
    app.config["PRINT_WORKERS"] = 0
    with unit_of_work():
        job = Job(kind="print_batch", convening_id=convening.id, status="failed", attempts=3,
                  message="The worker running this job stopped 3 time(s); it was not tried again.")
        db.session.add(job)
        db.session.flush()
        ids = [r.id for r in printing.badge_registrations(convening.id, printing.BadgeFilter(which="all"))]
        print_job = PrintJob(convening_id=convening.id, kind="badges", status="failed", total=3, job_id=job.id,
                             registration_ids=ids, params={"layout": "badge-4x6"}, file_name="retry.pdf",
                             error=job.message)
        db.session.add(print_job)
        db.session.flush()
        job.params = {"print_job_id": print_job.id}
    login(client, organizer.email)
    queue_page = client.get(f"/admin/c/{convening.id}/print").get_data(as_text=True)
    assert f"/print/jobs/{print_job.id}/retry" in queue_page and "Try again" in queue_page
    response = client.post(f"/admin/c/{convening.id}/print/jobs/{print_job.id}/retry")
    assert response.status_code == 302
    assert printing.wait_for_print_job(print_job.id, timeout=120)
    assert fresh(PrintJob, print_job.id).status == "done"
    assert jobs.wait(job.id, timeout=30) == "done"
    job = fresh(Job, job.id)
    assert job.attempts == 1 and job.message == "3 page(s)"
    done_page = client.get(f"/admin/c/{convening.id}/print/jobs/{print_job.id}").get_data(as_text=True)
    assert "Ready: 3 pages" in done_page and "Try again" not in done_page
    again = client.post(f"/admin/c/{convening.id}/print/jobs/{print_job.id}/retry")
    assert "Only a failed batch" in client.get(again.headers["Location"]).get_data(as_text=True)


# ---------------------------------------------------------------- RQ on Redis, with real worker processes

DOWNLOAD = """
import json, sys
from convene import create_app
config, url, email = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
app = create_app(config)
client = app.test_client()
client.post("/admin/login", data={"email": email, "password": "correct-horse-battery"})
response = client.get(url)
sys.stdout.buffer.write(response.status.encode() + b"\\n" + response.data)
"""


def test_a_badge_batch_from_the_print_queue_is_made_by_the_worker_and_downloaded_from_another_process(
        app, client, organizer, backend, redis_queue, workers, tmp_path):
    run_once(backend)
    # Files in the database, cut small: the downloading process has a folder of its own, so only the
    # database can give it the file the worker made, and it reads it in many chunks.
    app.config.update(PRINT_INLINE_MAX=1, PRINT_WORKERS=0, FILE_STORAGE="database", FILE_CHUNK_BYTES=4096)
    convening, _ = people(4, slug="rq-print")
    login(client, organizer.email)
    response = client.post(f"/admin/c/{convening.id}/print", data={"which": "all", "layout": "badge-4x6"})
    print_job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    print_job = fresh(PrintJob, print_job_id)
    assert print_job.status == "queued" and print_job.job_id is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Waiting to start" in page and 'http-equiv="refresh"' in page  # nothing runs it in this process
    workers.start()
    assert printing.wait_for_print_job(print_job_id, timeout=120)
    assert jobs.wait(fresh(PrintJob, print_job_id).job_id, timeout=30) == "done"
    print_job, job = fresh(PrintJob, print_job_id), fresh(Job, print_job.job_id)
    assert print_job.status == "done", print_job.error
    assert job.status == "done" and job.done == job.total == 4 and job.worker == ""
    assert not list((tmp_path / "prints").glob("*.pdf")) and not printing.job_file(print_job)
    config = {**workers.config(), "PRINT_WORKERS": 0, "PRINTS_DIR": str(tmp_path / "elsewhere")}
    download = subprocess.run(
        [sys.executable, "-c", DOWNLOAD, json.dumps(config), f"/admin/c/{convening.id}/print/jobs/{print_job_id}.pdf",
         organizer.email], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120,
        check=False)
    status, _, pdf = download.stdout.partition(b"\n")
    assert status == b"200 OK", download.stderr.decode()[-2000:]
    (tmp_path / "downloaded.pdf").write_bytes(pdf)
    reader = PdfReader(str(tmp_path / "downloaded.pdf"))
    assert len(reader.pages) == 4 and "Person0" in reader.pages[0].extract_text() + reader.pages[1].extract_text()
    assert not list((tmp_path / "elsewhere").glob("*.pdf"))


def test_a_worker_killed_mid_batch_leaves_it_to_the_next_worker_which_makes_it_once(
        app, backend, redis_queue, workers):
    run_once(backend)
    app.config.update(PRINT_INLINE_MAX=0, PRINT_WORKERS=0, PRINT_CHUNK_SHEETS=1)
    convening, _ = people(40, slug="rq-kill-print")
    print_job = printing.request_badge_batch(convening.id, printing.BadgeFilter(which="all"), "badge-4x6")
    first = workers.start()
    wait_until(lambda: 0 < fresh(PrintJob, print_job.id).done < 40, timeout=120, interval=0.02,
               message="the batch to be part-way")
    workers.kill(first)
    killed = fresh(PrintJob, print_job.id)
    assert killed.status == "running" and killed.done < 40
    assert fresh(Job, print_job.job_id).status == "running"
    workers.start()
    assert printing.wait_for_print_job(print_job.id, timeout=180)
    assert jobs.wait(print_job.job_id, timeout=30) == "done"
    print_job, job = fresh(PrintJob, print_job.id), fresh(Job, print_job.job_id)
    assert print_job.status == "done", print_job.error
    assert job.status == "done" and job.attempts == 2 and job.done == job.total == 40
    assert print_job.done == print_job.total == 40 and print_job.pages == 40
    path = printing.job_file(print_job)
    assert len(PdfReader(str(path)).pages) == 40
    assert not list(path.parent.glob("*.part"))
    assert db.session.scalar(sa.select(sa.func.count(PrintJob.id))) == 1  # counted once, one batch


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_worker_and_each_email_goes_once(
        app, backend, redis_queue, workers):
    run_once(backend)
    sink = SmtpSink()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                          MAIL_USERNAME="", MAIL_LEASE_SECONDS=2, MAIL_INLINE_LIMIT=5)
        killed = threading.Event()
        first: list[subprocess.Popen] = []

        def kill_on_the_25th(n: int) -> None:
            if n == 25 and not killed.is_set():
                workers.kill(first[0])
                killed.set()

        sink.on_mail = kill_on_the_25th
        ids = queue_mail(60, make_convening(slug="rq-mail"))
        assert sink.counts() == Counter()  # handed to the queue, not sent by the request
        job = db.session.execute(sa.select(Job).where(Job.kind == "deliver_mail")).scalar_one()
        first.append(workers.start())
        assert killed.wait(120), "the worker never got to the 25th email"
        assert sum(sink.counts().values()) == 24
        assert fresh(Job, job.id).status == "running"
        workers.start()
        wait_until(lambda: fresh(Job, job.id).status == "done", timeout=120, message="the delivery job to finish")
        assert sink.counts() == Counter(ids)  # every email exactly once
        statuses = db.session.execute(sa.select(OutboxMessage.status).where(OutboxMessage.id.in_(ids))).scalars()
        assert set(statuses) == {"sent"}
        job = fresh(Job, job.id)
        assert job.attempts == 2 and job.done == job.total == 60
    finally:
        sink.stop()
