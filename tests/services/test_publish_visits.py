"""Publishing site visits with a short lock: the decision is recorded at once, a job writes the emails,
each person gets exactly one, and nothing is lost when the process that published goes away."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event

from convene import jobs
from convene.extensions import db
from convene.models import Convening, Job, OutboxMessage, VisitAssignment
from convene.services import visits as service
from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_visit


@contextmanager
def statements_here():
    """The SQL statements this thread sends (the job's own, in the in-process worker's threads, are not counted)."""
    statements: list[str] = []
    here = threading.get_ident()

    def before(conn, cursor, statement, *args):
        if threading.get_ident() == here:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def convening_of(n: int, slug: str = "publish"):
    convening = make_convening(slug=slug, visits_per_person=1)
    ticket = make_ticket(convening)
    people = [make_registration(convening, ticket, i) for i in range(n)]
    make_visit(make_host(convening, "Library"), make_slot(convening, "Morning", 9), n)
    service.assign_site_visits(convening.id)
    return convening, people


def visit_emails(people) -> list[int]:
    db.session.rollback()
    return db.session.execute(
        sa.select(OutboxMessage.registration_id).where(OutboxMessage.kind == "visits",
                                                       OutboxMessage.registration_id.in_([p.id for p in people]))
    ).scalars().all()


def statements_to_publish(n: int, slug: str) -> int:
    convening, _ = convening_of(n, slug)
    with statements_here() as statements:
        published = service.publish_plan(convening.id)
    assert jobs.wait(published.job_id, timeout=60) == "done"
    return len(statements)


def test_publishing_takes_as_many_statements_for_sixty_people_as_for_six(app):
    app.config["PUBLISH_INLINE_MAX"] = 0  # every email is the job's
    few, many = statements_to_publish(6, "few"), statements_to_publish(60, "many")
    assert many == few, (few, many)  # the lock is held for the decision only, not per person
    assert few < 40


def test_a_big_publication_is_recorded_at_once_and_its_job_writes_one_email_each(app, outbox):
    app.config.update(PUBLISH_INLINE_MAX=3, MAIL_INLINE_LIMIT=5)
    convening, people = convening_of(12)
    published = service.publish_plan(convening.id)
    assert published.emailed == 12 and not published.written
    assert db.session.get(Convening, convening.id).visits_published_at is not None
    assert all(a.published_site_visit_id == a.site_visit_id for a in db.session.execute(
        sa.select(VisitAssignment)).scalars())
    job = db.session.get(Job, published.job_id)
    assert job.kind == "publish_visits" and job.total == 12 and len(job.params["people"]) == 12
    assert jobs.wait(job.id, timeout=60) == "done"
    db.session.rollback()  # a new snapshot: the delivery jobs its batches handed on
    for row in jobs.list_jobs():
        assert jobs.wait(row.id, timeout=60) == "done"
    assert sorted(visit_emails(people)) == sorted(p.id for p in people)
    assert sorted(m["To"] for m in outbox.messages()) == sorted(p.email for p in people)
    assert "Your site visits" in outbox.to(people[0].email)[0]["Subject"]


def test_a_small_publication_writes_its_emails_before_it_answers(app, outbox):
    app.config["PUBLISH_INLINE_MAX"] = 25
    convening, people = convening_of(4, "small")
    published = service.publish_plan(convening.id)
    assert published.written and published.emailed == 4
    assert len(outbox.messages()) == 4 and db.session.get(Job, published.job_id).status == "done"


def test_a_publication_job_run_again_writes_only_to_whom_the_first_run_did_not(app, monkeypatch):
    app.config.update(PUBLISH_INLINE_MAX=0, JOB_MAX_ATTEMPTS=2)
    monkeypatch.setattr(service, "PUBLISH_BATCH", 3)
    real, batches = service._write_publish_emails, []

    def dies_after_two_batches(*args):
        batches.append(args[1])
        if len(batches) == 3:
            raise RuntimeError("the worker went away")
        return real(*args)

    monkeypatch.setattr(service, "_write_publish_emails", dies_after_two_batches)
    convening, people = convening_of(8, "again")
    published = service.publish_plan(convening.id)
    assert jobs.wait(published.job_id, timeout=60) == "done"
    job = db.session.get(Job, published.job_id)
    assert job.attempts == 2 and "by an earlier run" in job.message
    assert sorted(visit_emails(people)) == sorted(p.id for p in people)  # each once
    assert len(batches) == 3 + 1  # the second run wrote the third batch (and the last two people) only


def test_a_person_cancelled_before_the_job_ran_is_not_emailed(app, monkeypatch):
    from convene.services.registrations import cancel_registration

    convening, people = convening_of(3, "cancelled")
    real_run = jobs.run
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "run", lambda job_id: None)  # the job waits (for a busy worker, say)
        published = service.publish_plan(convening.id)
    cancel_registration(people[0].id)
    assert real_run(published.job_id) == "done"
    assert people[0].id not in visit_emails(people)


def test_publish_visits_command_does_not_exit_with_emails_unsent(app, runner):
    app.config.update(PUBLISH_INLINE_MAX=0, MAIL_INLINE_LIMIT=2)
    convening, people = convening_of(9, "command")
    result = runner.invoke(args=["convene", "publish-visits", "command"])
    assert result.exit_code == 0, result.output
    assert "emailed 9 attendee(s)" in result.output
    db.session.rollback()
    statuses = db.session.execute(sa.select(OutboxMessage.status).where(OutboxMessage.kind == "visits")).scalars()
    assert sorted(statuses) == ["sent"] * 9


def test_a_publication_whose_process_died_before_its_job_ran_is_picked_up_by_the_in_process_scheduler(
        app, monkeypatch):
    app.config.update(PUBLISH_INLINE_MAX=5, JOB_STALE_SECONDS=0, SCHEDULER_INTERVAL_SECONDS=1)
    convening, people = convening_of(3, "orphan")
    with monkeypatch.context() as patch:
        patch.setattr(jobs, "run", lambda job_id: None)  # the request died between its commit and the emails
        published = service.publish_plan(convening.id)
    assert db.session.get(Job, published.job_id).status == "queued" and visit_emails(people) == []
    assert jobs.start_embedded_scheduler(app)
    try:
        assert jobs.wait(published.job_id, timeout=30) == "done"
    finally:
        jobs.stop_embedded_scheduler(app)
    assert sorted(visit_emails(people)) == sorted(p.id for p in people)


def test_publishing_when_nobody_changed_queues_no_job(app):
    convening, _ = convening_of(2, "nobody")
    service.publish_plan(convening.id)
    again = service.publish_plan(convening.id)
    assert again.emailed == 0 and again.job_id is None
