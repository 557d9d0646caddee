"""Background jobs in the back office: the dashboard's queue health for organizers, a job's page, retry."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from convene import jobs
from convene.extensions import db
from convene.models import Job, utcnow
from tests.conftest import login
from tests.factories import make_convening, make_user
from tests.jobs_helpers import CALLS, calls


@pytest.fixture
def test_tasks(monkeypatch):
    CALLS.clear()
    monkeypatch.setitem(jobs.TASKS, "counting", "tests.jobs_helpers:counting_task")
    return CALLS


def add_job(**values) -> Job:
    job = Job(**{"kind": "counting", "status": "queued", "attempts": 0, "max_attempts": 3, **values})
    db.session.add(job)
    db.session.commit()
    return job


def test_organizers_see_waiting_and_failed_work_on_the_dashboard_and_a_viewer_does_not(app, client):
    convening = make_convening(slug="health")
    other = make_convening(slug="health-other")
    add_job(created_at=utcnow() - timedelta(minutes=10))  # a sweep nobody has picked up: no worker runs
    add_job(convening_id=convening.id)
    failed = add_job(convening_id=convening.id, status="failed", attempts=3, finished_at=utcnow(),
                     message="RuntimeError: the printer is on fire")
    elsewhere = add_job(convening_id=other.id, status="failed", attempts=3, finished_at=utcnow(), message="not ours")
    old = add_job(convening_id=convening.id, status="failed", attempts=3, finished_at=utcnow() - timedelta(days=30),
                  message="long ago")
    organizer = make_user("owner@example.org", role="organizer", convening=convening)
    viewer = make_user("viewer@example.org", role="viewer", convening=convening)
    login(client, organizer.email)
    page = client.get(f"/admin/c/{convening.id}/").get_data(as_text=True)
    assert 'id="queue-health"' in page and "2 jobs waiting, 0 running" in page
    assert "check that the worker" in page  # the oldest has waited past JOB_STALE_SECONDS
    assert f"/admin/c/{convening.id}/jobs/{failed.id}" in page and "the printer is on fire" in page
    assert f"/jobs/{elsewhere.id}" not in page and f"/jobs/{old.id}\"" not in page
    client.post("/admin/logout")
    login(client, viewer.email)
    page = client.get(f"/admin/c/{convening.id}/").get_data(as_text=True)
    assert 'id="queue-health"' not in page


def test_an_organizer_retries_a_failed_job_from_its_page_and_it_runs_again(app, client, organizer, test_tasks):
    convening = make_convening(slug="retry-job")
    job = add_job(convening_id=convening.id, status="failed", attempts=3, finished_at=utcnow(), message="it broke")
    login(client, organizer.email)
    page = client.get(f"/admin/c/{convening.id}/jobs/{job.id}").get_data(as_text=True)
    assert "Failed" in page and "it broke" in page and "Try again" in page
    response = client.post(f"/admin/c/{convening.id}/jobs/{job.id}/retry")
    assert response.status_code == 302
    assert jobs.wait(job.id, timeout=30) == "done"
    db.session.rollback()
    assert calls("counting") == [job.id]
    job = db.session.execute(sa.select(Job).where(Job.id == job.id)).scalar_one()
    assert job.attempts == 1 and job.message == "counted"
    again = client.post(f"/admin/c/{convening.id}/jobs/{job.id}/retry", follow_redirects=True)
    assert "Only a failed job can be tried again." in again.get_data(as_text=True)
    listing = client.get(f"/admin/c/{convening.id}/jobs").get_data(as_text=True)
    assert f"#{job.id}" in listing and "counted" in listing


def test_another_convenings_job_is_not_found(app, client, organizer):
    convening, other = make_convening(slug="mine"), make_convening(slug="theirs")
    job = add_job(convening_id=other.id, status="failed")
    login(client, organizer.email)
    assert client.get(f"/admin/c/{convening.id}/jobs/{job.id}").status_code == 404
    assert client.post(f"/admin/c/{convening.id}/jobs/{job.id}/retry").status_code == 404
    assert client.get(f"/admin/c/{convening.id}/jobs/{job.id}/file").status_code == 404


def test_a_big_convenings_assigner_runs_on_the_worker_and_its_page_says_when_the_plan_is_saved(app, client, organizer):
    from convene.models import AssignmentRun, VisitAssignment
    from tests.factories import make_host, make_registration, make_slot, make_ticket, make_visit

    app.config["ASSIGN_INLINE_MAX"] = 2
    convening = make_convening(slug="big-assign", visits_per_person=1)
    ticket = make_ticket(convening)
    for i in range(4):
        make_registration(convening, ticket, i)
    make_visit(make_host(convening, "Library"), make_slot(convening, "Morning", 9), 10)
    login(client, organizer.email)
    preview = client.post(f"/admin/c/{convening.id}/visits/assign", data={"preview": "Preview"})
    assert preview.status_code == 200  # a dry run still answers in the page
    response = client.post(f"/admin/c/{convening.id}/visits/assign", data={"save": "Run and save",
                                                                         "keep_published": "y"})
    job = db.session.execute(sa.select(Job).where(Job.kind == "assign_visits")).scalar_one()
    assert response.headers["Location"].endswith(f"/admin/c/{convening.id}/jobs/{job.id}")
    assert job.params == {"keep_published": True, "mix_limit": None, "run_by": organizer.email}
    assert jobs.wait(job.id, timeout=60) == "done"
    db.session.rollback()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The plan is saved as the working plan (4 places changed" in page
    assert db.session.scalar(sa.select(sa.func.count(AssignmentRun.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(VisitAssignment.id))
                             .where(VisitAssignment.site_visit_id.is_not(None))) == 4
