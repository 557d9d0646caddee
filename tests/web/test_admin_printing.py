"""The print queue through the test client: choosing, previewing, making and downloading PDFs, marking printed."""
from __future__ import annotations

import io
import re
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from convene.extensions import db
from convene.models import PrintJob, Registration, VisitAssignment, utcnow
from convene.services import printing as service
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_visit,
)


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["PRINTS_DIR"] = str(tmp_path / "prints")
    return app_config


@pytest.fixture
def scene(app):
    """Three confirmed people (two in Maryland), one site visit with one of them on it."""
    convening = make_convening(slug="print-web")
    ticket = make_ticket(convening)
    maryland = make_delegation(convening, "Maryland")
    people = [
        make_registration(convening, ticket, 1, given_name="Amina", family_name="Hassan", delegation_id=maryland.id),
        make_registration(convening, ticket, 2, given_name="Omar", family_name="Farouk", delegation_id=maryland.id),
        make_registration(convening, ticket, 3, given_name="Zoë", family_name="Ångström", role="speaker"),
    ]
    slot = make_slot(convening, "Morning", 9)
    visit = make_visit(make_host(convening, "Magnet"), slot, 10)
    db.session.add(VisitAssignment(registration_id=people[0].id, slot_id=slot.id, site_visit_id=visit.id))
    db.session.commit()
    return type("Scene", (), dict(convening=convening, ticket=ticket, maryland=maryland, people=people, visit=visit))


def url(scene, path: str = "") -> str:
    return f"/admin/c/{scene.convening.id}/print{path}"


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def job_id_from(location: str) -> int:
    return int(re.search(r"/print/jobs/(\d+)$", location).group(1))


PAGES = ["", "/preview.png", "/rosters.pdf", "/rosters/{visit}.pdf", "/jobs/{job}", "/jobs/{job}.pdf", "/program.pdf",
         "/agendas/{registration}.pdf"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, scene, path):
    job = PrintJob(convening_id=scene.convening.id, kind="badges")
    db.session.add(job)
    db.session.commit()
    response = client.get(url(scene, path.format(visit=scene.visit.id, job=job.id, registration=scene.people[0].id)))
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    for action in ("", "/agendas", f"/jobs/{job.id}/printed"):
        assert client.post(url(scene, action), data={"which": "all"}).status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(PrintJob.id))) == 1
    assert db.session.get(Registration, scene.people[0].id).badge_printed_at is None


@pytest.mark.parametrize("who", ["staff_client", "organizer_client"])
def test_staff_and_organizers_use_the_print_queue(request, scene, who):
    client = request.getfixturevalue(who)
    page = client.get(url(scene, "?which=all"))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "3 badges chosen" in body and "Amina" in body and "Zoë" in body
    assert "preview.png" in body and "Make the PDF" in body and "rosters.pdf" in body


def test_filters_choose_the_badges(staff_client, scene):
    body = staff_client.get(url(scene, f"?which=all&delegation={scene.maryland.id}")).get_data(as_text=True)
    assert "2 badges chosen" in body and "Omar" in body and "Zoë" not in body
    body = staff_client.get(url(scene, "?which=all&role=speaker")).get_data(as_text=True)
    assert "1 badge chosen" in body and "Zoë" in body and "Omar" not in body
    reference = scene.people[1].reference
    body = staff_client.get(url(scene, f"?which=all&reference={reference}")).get_data(as_text=True)
    assert "1 badge chosen" in body and "Omar" in body and "Amina" not in body
    body = staff_client.get(url(scene, f"?which=all&registration={scene.people[0].id}")).get_data(as_text=True)
    assert "1 badge chosen" in body and "Amina" in body and "Omar" not in body
    assert staff_client.get(url(scene, "?layout=no-such-stock")).status_code == 400


def test_preview_is_a_png_of_the_first_sheet(staff_client, scene):
    response = staff_client.get(url(scene, "/preview.png?which=all&layout=a6-on-a4"))
    assert response.status_code == 200 and response.content_type == "image/png"
    assert response.data.startswith(b"\x89PNG")
    assert staff_client.get(url(scene, "/preview.png?which=changed")).status_code == 404


def test_make_download_and_mark_a_small_batch_printed(staff_client, scene):
    response = staff_client.post(url(scene), data={"which": "pending", "layout": "avery-5392", "duplex": "y"})
    assert response.status_code == 302
    job_id = job_id_from(response.headers["Location"])
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ready: 2 pages" in page and "Download the PDF" in page and 'http-equiv="refresh"' not in page

    download = staff_client.get(url(scene, f"/jobs/{job_id}.pdf"))
    assert download.status_code == 200 and download.content_type == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]
    text = pdf_text(download.data)
    assert "Amina" in text and "Omar" in text and "Zoë" in text
    download.close()

    marked = staff_client.post(url(scene, f"/jobs/{job_id}/printed"))
    assert marked.status_code == 302 and marked.headers["Location"].endswith("/print")
    db.session.expire_all()
    assert all(db.session.get(Registration, p.id).badge_printed_at for p in scene.people)
    body = staff_client.get(url(scene)).get_data(as_text=True)
    assert "3 badges marked printed." in body and "0 badges chosen" in body


def test_a_large_batch_renders_in_the_background_while_the_page_refreshes(staff_client, scene, app):
    app.config.update(PRINT_INLINE_MAX=1, PRINT_WORKERS=0)
    response = staff_client.post(url(scene), data={"which": "all", "layout": "badge-4x6"})
    job_id = job_id_from(response.headers["Location"])
    job = db.session.get(PrintJob, job_id)
    db.session.rollback()
    if job.status in ("queued", "running"):
        page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
        assert 'http-equiv="refresh"' in page or "Ready" in page
    assert service.wait_for_print_job(job_id, timeout=120)
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ready: 3 pages" in page and 'http-equiv="refresh"' not in page
    db.session.rollback()
    job = db.session.get(PrintJob, job_id)
    assert job.status == "done" and job.done == job.total == 3


def test_nothing_to_print_is_explained(staff_client, scene):
    response = staff_client.post(url(scene), data={"which": "changed", "layout": "avery-5392"})
    assert response.status_code == 302
    # Followed by hand: the shared IsolatedClient cannot follow redirects (see tests/conftest.py).
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No badges match these choices." in page


def test_rosters_download_for_all_visits_and_one(staff_client, scene):
    everything = staff_client.get(url(scene, "/rosters.pdf"))
    assert everything.status_code == 200 and everything.content_type == "application/pdf"
    assert "Magnet" in pdf_text(everything.data) and "Amina Hassan" in pdf_text(everything.data)
    one = staff_client.get(url(scene, f"/rosters/{scene.visit.id}.pdf?paper=a4"))
    assert one.status_code == 200
    assert float(PdfReader(io.BytesIO(one.data)).pages[0].mediabox.width) == pytest.approx(595.3, abs=1)
    assert staff_client.get(url(scene, "/rosters/999999.pdf")).status_code == 404


def test_another_convenings_job_is_not_found(staff_client, scene):
    other = make_convening(slug="elsewhere")
    job = PrintJob(convening_id=other.id, kind="badges", status="done", file_name="x.pdf")
    db.session.add(job)
    db.session.commit()
    assert staff_client.get(url(scene, f"/jobs/{job.id}")).status_code == 404
    assert staff_client.get(url(scene, f"/jobs/{job.id}.pdf")).status_code == 404
    assert staff_client.post(url(scene, f"/jobs/{job.id}/printed")).status_code == 404


def test_program_book_and_agendas_from_the_print_page(staff_client, scene):
    program = staff_client.get(url(scene, "/program.pdf"))
    assert program.status_code == 200 and program.content_type == "application/pdf"
    agenda = staff_client.get(url(scene, f"/agendas/{scene.people[0].id}.pdf"))
    assert agenda.status_code == 200 and "Amina Hassan" in pdf_text(agenda.data)
    assert staff_client.get(url(scene, "/agendas/999999.pdf")).status_code == 404
    response = staff_client.post(url(scene, "/agendas"))
    assert response.status_code == 302
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Batch of 3 personal agendas" in page and "Download the PDF" in page and "Mark these" not in page


def test_a_batch_whose_process_died_shows_failed_with_a_way_to_start_again(staff_client, scene):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)  # a pid that no longer runs: the worker was killed mid-batch
    job = PrintJob(convening_id=scene.convening.id, kind="badges", status="running", total=3, done=1,
                   worker=f"{socket.gethostname()}:{process.pid}", heartbeat_at=utcnow(), file_name="gone.pdf",
                   params={"layout": "a6-on-a4", "duplex": True,
                           "filter": {"which": "all", "delegation": scene.maryland.id}})
    db.session.add(job)
    db.session.commit()
    body = staff_client.get(url(scene)).get_data(as_text=True)
    row = re.search(rf'<tr>(?:(?!</tr>).)*/print/jobs/{job.id}"(?:(?!</tr>).)*</tr>', body, re.S).group(0)
    assert ">failed<" in row and "The process rendering this batch stopped; start it again." in row
    again = re.search(r'href="([^"]+)">Start again<', row).group(1).replace("&amp;", "&")
    assert "which=all" in again and f"delegation={scene.maryland.id}" in again and "duplex=y" in again
    chosen = staff_client.get(again).get_data(as_text=True)
    assert "2 badges chosen" in chosen and "Make the PDF" in chosen
    page = staff_client.get(url(scene, f"/jobs/{job.id}")).get_data(as_text=True)
    assert "Failed" in page and "start it again" in page and 'http-equiv="refresh"' not in page
    db.session.rollback()
    assert db.session.get(PrintJob, job.id).status == "failed"


@pytest.mark.parametrize(("kind", "heading", "text"), [
    ("program", "Program book", "Contents"),
    ("rosters", "Site-visit rosters and sign-in sheets", "Amina Hassan"),
])
def test_the_program_book_and_rosters_are_made_by_the_background_worker(app, staff_client, scene, kind, heading,
                                                                        text):
    from convene import jobs

    page = staff_client.get(url(scene)).get_data(as_text=True)
    assert f'action="/admin/c/{scene.convening.id}/print/{kind}"' in page
    response = staff_client.post(url(scene, f"/{kind}"), data={"paper": "a4"})
    job = db.session.get(PrintJob, job_id_from(response.headers["Location"]))
    assert job.kind == kind and job.job_id is not None and job.params == {"paper": "a4"}
    assert jobs.wait(job.job_id, timeout=120) == "done"
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert heading in page and "Download the PDF" in page and "Mark these" not in page
    pdf = staff_client.get(url(scene, f"/jobs/{job.id}.pdf"))
    assert pdf.status_code == 200 and text in pdf_text(pdf.data)
    assert float(PdfReader(io.BytesIO(pdf.data)).pages[0].mediabox.width) == pytest.approx(595.3, abs=1)


def test_rosters_of_a_convening_without_visits_are_refused_with_a_message(staff_client, scene):
    other = make_convening(slug="no-visits")
    response = staff_client.post(f"/admin/c/{other.id}/print/rosters", follow_redirects=True)
    assert "no site visits yet" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(PrintJob.id)).where(PrintJob.convening_id == other.id)) == 0
