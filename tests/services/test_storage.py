"""File storage: job-made files kept in a folder or in the database, streamed in chunks, expired when old."""
from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from convene import storage
from convene.extensions import db
from convene.models import Job, PrintJob, StoredFile, StoredFileChunk, utcnow
from convene.services import printing
from tests.conftest import login
from tests.factories import make_convening, make_registration, make_ticket

STORAGES = ("folder", "database")


@pytest.fixture(params=STORAGES)
def file_storage(request, app):
    app.config.update(FILE_STORAGE=request.param, FILE_CHUNK_BYTES=1000)
    return request.param


def test_a_stored_file_reads_back_whole_and_in_chunks_and_replaces_an_older_one(app, file_storage, tmp_path):
    data = os.urandom(4500)
    scratch = storage.scratch_path("report-1.pdf")
    scratch.write_bytes(b"old")
    storage.store("report-1.pdf", scratch)
    scratch = storage.scratch_path("report-1.pdf")
    scratch.write_bytes(data)
    assert storage.store("report-1.pdf", scratch) == 4500
    assert storage.exists("report-1.pdf") and storage.read("report-1.pdf") == data
    pieces = list(storage.stream("report-1.pdf"))
    assert b"".join(pieces) == data
    if file_storage == "database":
        assert [len(p) for p in pieces] == [1000, 1000, 1000, 1000, 500]
        assert not scratch.exists()  # the database holds it: no copy left on this machine's disk
        assert db.session.scalar(sa.select(sa.func.count(StoredFile.id))) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredFileChunk)) == 5
    storage.delete("report-1.pdf")
    assert not storage.exists("report-1.pdf") and storage.read("report-1.pdf") is None


@pytest.mark.parametrize("name", ["../secret.pdf", ".hidden", "a/b.pdf", ""])
def test_a_name_with_a_folder_in_it_is_never_read_or_written(app, file_storage, name):
    assert not storage.exists(name) and storage.stream(name) is None
    with pytest.raises(ValueError):
        storage.store(name, data=b"x")


def test_files_older_than_the_retention_go_and_newer_ones_stay(app, file_storage):
    app.config["FILE_RETENTION_DAYS"] = 7
    storage.store("old.pdf", data=b"old file")
    storage.store("new.pdf", data=b"new file")
    storage.scratch_path("left.pdf.part").write_bytes(b"half")  # a dead job's scratch copy
    ten_days_ago = time.time() - 10 * 86400
    for name in ("old.pdf", "left.pdf.part"):
        if (storage.folder() / name).exists():
            os.utime(storage.folder() / name, (ten_days_ago, ten_days_ago))
    if file_storage == "database":
        with db.engine.begin() as connection:
            connection.execute(sa.update(StoredFile).where(StoredFile.name == "old.pdf")
                               .values(created_at=utcnow() - timedelta(days=10)))
    assert storage.expire_files() == 1
    assert not storage.exists("old.pdf") and storage.read("new.pdf") == b"new file"
    assert not (storage.folder() / "left.pdf.part").exists()


def test_the_scheduler_sweep_deletes_old_files_through_a_job(app, runner):
    app.config.update(FILE_STORAGE="database", FILE_RETENTION_DAYS=1, SCHEDULER_INTERVAL_SECONDS=3600)
    storage.store("stale.pdf", data=b"x" * 10)
    with db.engine.begin() as connection:
        connection.execute(sa.update(StoredFile).values(created_at=utcnow() - timedelta(days=2)))
    from convene import jobs

    assert runner.invoke(args=["convene", "scheduler", "--once"]).exit_code == 0
    job = db.session.execute(sa.select(Job).where(Job.kind == "expire_files")).scalar_one()
    assert jobs.wait(job.id, timeout=30) == "done"
    db.session.rollback()
    assert not storage.exists("stale.pdf")


def test_a_badge_batch_is_downloaded_from_the_database_in_chunks_and_gone_once_expired(app, client, organizer):
    app.config.update(FILE_STORAGE="database", FILE_CHUNK_BYTES=2048, PRINT_WORKERS=0)
    convening = make_convening(slug="stored")
    ticket = make_ticket(convening)
    for i in range(3):
        make_registration(convening, ticket, i, given_name=f"Stored{i}")
    job = printing.request_badge_batch(convening.id, printing.BadgeFilter(which="all"), "badge-4x6")
    assert job.status == "done"
    assert printing.job_file(job) is None and not list(storage.folder().glob("*.pdf"))
    size = db.session.scalar(sa.select(StoredFile.size).where(StoredFile.name == job.file_name))
    assert size > 2048
    login(client, organizer.email)
    response = client.get(f"/admin/c/{convening.id}/print/jobs/{job.id}.pdf")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Length"] == str(size)
    assert f"filename={job.file_name}" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"%PDF") and len(body) == size
    storage.expire_files(timedelta(0))
    assert client.get(f"/admin/c/{convening.id}/print/jobs/{job.id}.pdf").status_code == 404
    page = client.get(f"/admin/c/{convening.id}/print/jobs/{job.id}").get_data(as_text=True)
    assert "no longer on the server" in page
    assert db.session.get(PrintJob, job.id).status == "done"


def test_erasing_a_convenings_personal_data_deletes_its_exports_and_pdfs_from_the_database(app):
    from datetime import date

    from convene.services.privacy import erase_personal_data, erasure_preview
    from convene.services.db import unit_of_work

    app.config["FILE_STORAGE"] = "database"
    convening = make_convening(slug="erased", starts_on=date(2020, 1, 1), ends_on=date(2020, 1, 2))
    make_registration(convening, make_ticket(convening), 1)
    storage.store("erased-registrations-9.csv", data=b"Reference,Email\nTOR-1,amina1@example.org\n",
                  content_type="text/csv")
    storage.store("erased-badges-3.pdf", data=b"%PDF-1.7 badges")
    storage.store("other-registrations-10.csv", data=b"someone else's")
    with unit_of_work():
        db.session.add(Job(kind="export_registrations", convening_id=convening.id, status="done",
                           result_file="erased-registrations-9.csv"))
        db.session.add(PrintJob(convening_id=convening.id, kind="badges", status="done",
                                file_name="erased-badges-3.pdf"))
    plan = erasure_preview(convening.id)
    assert sorted(path.name for path in plan.print_files) == ["erased-badges-3.pdf", "erased-registrations-9.csv"]
    erase_personal_data(convening.id)
    assert not storage.exists("erased-registrations-9.csv") and not storage.exists("erased-badges-3.pdf")
    assert storage.read("other-registrations-10.csv") == b"someone else's"
