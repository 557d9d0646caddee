"""Big registration imports run as a job: progress and the count (or the row problems) on the job's page."""
from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from convene import create_app, jobs
from convene.extensions import db
from convene.models import Job, Registration
from convene.services import imports
from convene.services.db import unit_of_work
from tests import jobs_helpers
from tests.factories import make_convening, make_ticket

redis_queue, workers = jobs_helpers.redis_queue, jobs_helpers.workers  # fixtures

HEADER = ["Given name", "Family name", "Email", "Organization"]


def people_csv(count: int, *, bad_rows: dict[int, str] | None = None) -> str:
    """`count` delegates; bad_rows maps a 0-based row to an email that cannot be imported."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for n in range(count):
        email = (bad_rows or {}).get(n, f"delegate{n}@example.org")
        writer.writerow([f"Amina{n}", f"Yusuf{n}", email, "Newcomer Centre"])
    return buffer.getvalue()


@pytest.fixture
def scene(app):
    app.config["IMPORT_INLINE_MAX"] = 500
    convening = make_convening(name="WE Global Convening")
    ticket = make_ticket(convening, name="Delegate", capacity=None)
    return type("Scene", (), dict(convening=convening, ticket=ticket))


def upload(client, scene, text: str):
    data = {"ticket_type_id": str(scene.ticket.id), "delegation_id": "0", "role": "delegate",
            "settlement": "invoice", "file": (io.BytesIO(text.encode()), "delegates.csv")}
    return client.post(f"/admin/c/{scene.convening.id}/import", data=data, content_type="multipart/form-data")


def registrations(scene) -> list[str]:
    db.session.rollback()
    return list(db.session.execute(
        sa.select(Registration.email).where(Registration.convening_id == scene.convening.id)).scalars())


def import_job() -> Job:
    db.session.rollback()
    return db.session.execute(sa.select(Job).where(Job.kind == "import_registrations")).scalar_one()


def test_a_600_row_file_is_imported_by_the_job_once_and_its_page_shows_the_count(organizer_client, scene):
    response = upload(organizer_client, scene, people_csv(600))
    assert response.status_code == 302, response.get_data(as_text=True)
    job = import_job()
    assert response.headers["Location"].endswith(f"/admin/c/{scene.convening.id}/jobs/{job.id}")
    assert job.total == 600 and job.params["upload"].startswith("import-upload-")
    assert jobs.wait(job.id, timeout=120) == "done"
    emails = registrations(scene)
    assert len(emails) == 600 and len(set(emails)) == 600
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Registrations import" in page and "Imported 600 delegates." in page
    assert "import-problems" not in page

    first_message = import_job().message
    assert first_message.startswith("Imported 600 delegates.")
    # Run the same job again (as a retry would): nothing more is written, the earlier result is reported.
    with unit_of_work():
        db.session.execute(sa.update(Job).where(Job.id == job.id).values(status="queued"))
    assert jobs.run(job.id) == "done"
    assert len(registrations(scene)) == 600
    assert import_job().message == first_message and import_job().done == 600


def test_a_rerun_of_a_job_whose_import_committed_writes_nothing_even_with_the_file_still_there(
        app, organizer_client, scene):
    response = upload(organizer_client, scene, people_csv(501))
    job = import_job()
    assert jobs.wait(job.id, timeout=120) == "done" and len(registrations(scene)) == 501
    # The worker died after the commit and before it said "done": the job is queued again, the file kept.
    from convene import storage

    storage.store(job.params["upload"], data=people_csv(501).encode(), content_type="text/csv")
    with unit_of_work():
        db.session.execute(sa.update(Job).where(Job.id == job.id).values(status="queued", message=""))
    assert jobs.run(job.id) == "done"
    assert len(registrations(scene)) == 501
    assert import_job().message.startswith("Imported 501 delegates.")
    assert "Imported 501 delegates." in organizer_client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_same_upload_makes_one_job(app, organizer, scene):
    reference = imports.keep_upload(people_csv(510).encode(), scene.convening.id, organizer.id)
    first = imports.request_registrations_import(scene.convening.id, reference, imports.ImportDefaults(
        ticket_type_id=scene.ticket.id), send_emails=False, mapping=None, rows=510, requested_by=organizer.id)
    second = imports.request_registrations_import(scene.convening.id, reference, imports.ImportDefaults(
        ticket_type_id=scene.ticket.id), send_emails=False, mapping=None, rows=510, requested_by=organizer.id)
    assert first.id == second.id
    assert jobs.wait(first.id, timeout=120) == "done" and len(registrations(scene)) == 510


def test_a_big_file_with_bad_rows_imports_nothing_and_the_job_page_lists_the_rows(organizer_client, scene):
    response = upload(organizer_client, scene, people_csv(600, bad_rows={10: "not-an-email", 400: ""}))
    assert response.status_code == 302
    job = import_job()
    assert jobs.wait(job.id, timeout=120) == "failed"
    assert registrations(scene) == []
    job = import_job()
    assert job.message.startswith("Nothing was imported.") and "row 12" in job.message
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="import-problems"' in page and "2 problems" in page
    assert '<td class="num">12</td><td>Email</td>' in page and '<td class="num">402</td><td>Email</td>' in page


def test_a_small_file_is_still_imported_during_the_request(organizer_client, scene):
    response = upload(organizer_client, scene, people_csv(20))
    assert response.status_code == 200 and "Imported 20 delegates." in response.get_data(as_text=True)
    assert len(registrations(scene)) == 20
    db.session.rollback()
    assert db.session.execute(sa.select(Job).where(Job.kind == "import_registrations")).first() is None


def test_a_kept_upload_is_read_by_another_app_instance_through_the_database(app, app_config, organizer, scene,
                                                                              tmp_path):
    app.config["FILE_STORAGE"] = "database"
    reference = imports.keep_upload(people_csv(3).encode(), scene.convening.id, organizer.id)
    assert not [p for p in (tmp_path / "prints").glob("import-upload-*")]  # nothing on this machine's disk
    db.session.commit()
    other = create_app({**app_config, "FILE_STORAGE": "database", "PRINTS_DIR": str(tmp_path / "elsewhere")})
    with other.app_context():
        try:
            assert imports.read_upload(reference, scene.convening.id, organizer.id) == people_csv(3).encode()
            report = imports.import_registrations(scene.convening.id, imports.read_upload(
                reference, scene.convening.id, organizer.id), imports.ImportDefaults(ticket_type_id=scene.ticket.id))
            assert report.ok and report.imported == 3
        finally:
            db.session.remove()
    assert len(registrations(scene)) == 3


def test_unread_columns_of_a_big_file_are_asked_for_before_the_job(organizer_client, scene):
    text = people_csv(520).replace("Organization", "Where they work", 1)
    response = upload(organizer_client, scene, text)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Where they work" in page and "columns-upload" in page
    db.session.rollback()
    assert db.session.execute(sa.select(Job).where(Job.kind == "import_registrations")).first() is None


def test_erasing_personal_data_deletes_an_import_jobs_upload_and_report(app, organizer):
    from datetime import date

    from convene import storage
    from convene.services.privacy import erase_personal_data

    convening = make_convening(slug="erased", starts_on=date(2020, 1, 1), ends_on=date(2020, 1, 2))
    ticket = make_ticket(convening, capacity=None)
    reference = imports.keep_upload(people_csv(510, bad_rows={3: "nope"}).encode(), convening.id, organizer.id)
    job = imports.request_registrations_import(convening.id, reference, imports.ImportDefaults(
        ticket_type_id=ticket.id), send_emails=False, mapping=None, rows=510, requested_by=organizer.id)
    assert jobs.wait(job.id, timeout=120) == "failed"
    upload_name = import_job().params["upload"]
    assert storage.exists(upload_name) and storage.exists(imports.report_file(job.id))
    erase_personal_data(convening.id)
    assert not storage.exists(upload_name) and not storage.exists(imports.report_file(job.id))


@pytest.mark.one_database
def test_a_big_import_is_done_by_a_real_worker_process_reading_the_upload_from_the_database(
        app, organizer_client, scene, redis_queue, workers):
    app.config.update(FILE_STORAGE="database", JOB_HEARTBEAT_SECONDS=1)
    response = upload(organizer_client, scene, people_csv(600))
    job = import_job()
    assert response.status_code == 302 and job.status == "queued"  # nothing runs it in this process
    workers.start()
    assert jobs.wait(job.id, timeout=180) == "done", import_job().message
    emails = registrations(scene)
    assert len(emails) == 600 == len(set(emails))
    assert "Imported 600 delegates." in organizer_client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_big_file_whose_columns_step_says_what_a_column_feeds_is_imported_by_the_job(organizer_client, scene):
    from tests.web.test_admin_imports import form_values

    text = people_csv(520).replace("Organization", "Where they work", 1)
    page = upload(organizer_client, scene, text).get_data(as_text=True)
    action = f"/admin/c/{scene.convening.id}/import/columns"
    values = {**form_values(page, action), "columns-col_3": "organization"}
    values.pop("columns-send_emails", None)  # the page leaves it unticked; a ticked box would email 520 people
    response = organizer_client.post(action, data={**values, "columns-confirm": "Import"})
    assert response.status_code == 302, response.get_data(as_text=True)
    job = import_job()
    assert job.params["mapping"]["3"] == "organization" and job.total == 520 and job.params["send_emails"] is False
    assert jobs.wait(job.id, timeout=120) == "done"
    assert len(registrations(scene)) == 520
    db.session.rollback()
    organizations = set(db.session.execute(sa.select(Registration.organization).where(
        Registration.convening_id == scene.convening.id)).scalars())
    assert organizations == {"Newcomer Centre"}


def test_staff_see_an_import_jobs_status_but_not_the_rows_it_names(app, client, organizer, staff_user, scene):
    from tests.conftest import login

    reference = imports.keep_upload(people_csv(505, bad_rows={1: "nope"}).encode(), scene.convening.id, organizer.id)
    job = imports.request_registrations_import(scene.convening.id, reference, imports.ImportDefaults(
        ticket_type_id=scene.ticket.id), send_emails=False, mapping=None, rows=505, requested_by=organizer.id)
    assert jobs.wait(job.id, timeout=120) == "failed"
    login(client, organizer.email)
    assert 'id="import-problems"' in client.get(f"/admin/c/{scene.convening.id}/jobs/{job.id}").get_data(as_text=True)
    client.post("/admin/logout")
    login(client, staff_user.email)
    page = client.get(f"/admin/c/{scene.convening.id}/jobs/{job.id}")
    assert page.status_code == 200 and "Failed" in page.get_data(as_text=True)
    assert 'id="import-problems"' not in page.get_data(as_text=True)
