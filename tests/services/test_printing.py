"""Printing on the real database: choosing badges, print jobs inline and in the background, rosters, CLI."""
from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import PrintJob, Registration, Status, VisitAssignment, utcnow
from convene.services import printing as service
from convene.services.registrations import update_registration
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_visit,
    person,
)


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config["PRINTS_DIR"] = str(tmp_path / "prints")
    return app_config


@pytest.fixture
def scene(app):
    """Five confirmed people in two delegations and two ticket types, one waitlisted, one cancelled."""
    convening = make_convening(slug="print-scene", role_colours={"speaker": "#112233"})
    delegate_ticket, speaker_ticket = make_ticket(convening, name="Delegate"), make_ticket(convening, name="Speaker")
    maryland, ohio = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    people = [
        make_registration(convening, delegate_ticket, 1, given_name="Amina", family_name="Hassan",
                          delegation_id=maryland.id),
        make_registration(convening, delegate_ticket, 2, given_name="محمد", family_name="عبد الله",
                          delegation_id=maryland.id),
        make_registration(convening, delegate_ticket, 3, given_name="Nguyễn", family_name="Thị Minh Khai",
                          delegation_id=ohio.id),
        make_registration(convening, speaker_ticket, 4, given_name="Priya", family_name="Sharma", role="speaker"),
        make_registration(convening, delegate_ticket, 5, given_name="Zoë", family_name="Ångström"),
    ]
    make_registration(convening, delegate_ticket, 6, given_name="Wanda", family_name="Waiting",
                      status=Status.WAITLISTED)
    make_registration(convening, delegate_ticket, 7, given_name="Carl", family_name="Cancelled",
                      status=Status.CANCELLED)
    return convening, (delegate_ticket, speaker_ticket), (maryland, ohio), people


def given_names(registrations) -> set[str]:
    return {r.given_name for r in registrations}


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


# ---------------------------------------------------------------- choosing


def test_only_confirmed_registrations_get_badges(scene):
    convening, *_ = scene
    chosen = service.badge_registrations(convening.id, service.BadgeFilter(which="all"))
    assert given_names(chosen) == {"Amina", "محمد", "Nguyễn", "Priya", "Zoë"}


def test_filters_by_delegation_ticket_role_and_single_registration(scene):
    convening, (_, speaker_ticket), (maryland, _), people = scene
    pick = lambda **kw: given_names(service.badge_registrations(convening.id, service.BadgeFilter(which="all", **kw)))  # noqa: E731
    assert pick(delegation=maryland.id) == {"Amina", "محمد"}
    assert pick(delegation="none") == {"Priya", "Zoë"}
    assert pick(ticket_type_id=speaker_ticket.id) == {"Priya"}
    assert pick(role="speaker") == {"Priya"}
    assert pick(registration_id=people[2].id) == {"Nguyễn"}
    assert pick(reference=people[4].reference.lower()) == {"Zoë"}


def test_unprinted_changed_and_pending_follow_the_print_and_change_times(scene):
    convening, _, _, people = scene
    count = lambda which: service.count_badges(convening.id, service.BadgeFilter(which=which))  # noqa: E731
    assert (count("unprinted"), count("changed"), count("pending"), count("all")) == (5, 0, 5, 5)

    assert service.mark_badges_printed(convening.id, [p.id for p in people[:3]]) == 3
    assert (count("unprinted"), count("changed"), count("pending")) == (2, 0, 2)

    # A typo fixed after printing: the badge needs printing again.
    data = person(1, given_name="Amina", family_name="Hassan-Ali", email=people[0].email)
    update_registration(people[0].id, data)
    assert given_names(service.badge_registrations(convening.id, service.BadgeFilter(which="changed"))) == {"Amina"}
    assert (count("unprinted"), count("changed"), count("pending")) == (2, 1, 3)

    # Changing something not on the badge (the phone) does not.
    update_registration(people[1].id, person(2, given_name="محمد", family_name="عبد الله", email=people[1].email,
                                             phone="+1 555 0100"))
    assert count("changed") == 1


def test_marking_printed_only_touches_this_convening(scene):
    convening, *_ = scene
    other = make_convening(slug="other-convening")
    stranger = make_registration(other, make_ticket(other), 50)
    assert service.mark_badges_printed(convening.id, [stranger.id]) == 0
    assert db.session.get(Registration, stranger.id).badge_printed_at is None


# ---------------------------------------------------------------- plain data


def test_badge_data_carries_the_token_colours_delegation_and_published_visits(scene):
    convening, _, (maryland, _), people = scene
    host = make_host(convening, "Dayton Public Library")
    slot = make_slot(convening, "Morning", 9)
    visit = make_visit(host, slot, 10, meeting_point="Hotel lobby", departs_at=slot.starts_at - timedelta(minutes=20))
    db.session.add(VisitAssignment(registration_id=people[0].id, slot_id=slot.id, site_visit_id=visit.id,
                                   published_site_visit_id=visit.id))
    db.session.commit()
    chosen = service.badge_registrations(convening.id, service.BadgeFilter(which="all"))
    badges = {b.registration_id: b for b in service.badge_data(convening, chosen)}
    amina, priya = badges[people[0].id], badges[people[3].id]
    assert amina.checkin_token == people[0].checkin_token and amina.delegation == "Maryland"
    assert amina.name == "Amina" and amina.full_name == "Amina Hassan"
    assert priya.role_label == "Speaker" and priya.role_colour == "#112233"  # the convening's own colour
    assert amina.role_colour == "#0b6e4f"  # the default for delegates
    [line] = amina.visits
    # 09:00 in the convening's zone (America/Toronto), whatever the server's zone.
    assert line.host == "Dayton Public Library" and line.when.endswith(("09:00–11:00 EDT", "09:00–11:00 EST"))
    assert line.meeting_point == "Hotel lobby" and line.departs == "08:40"
    assert badges[people[1].id].visits == ()


# ---------------------------------------------------------------- jobs


def test_a_small_batch_renders_during_the_request_and_is_stored(scene, app):
    convening, _, _, people = scene
    job = service.request_badge_batch(convening.id, service.BadgeFilter(which="all"), "avery-5392",
                                      requested_by="desk@example.org")
    assert job.status == "done" and job.done == job.total == 5 and job.pages == 1
    path = service.job_file(job)
    assert path is not None and path.parent == Path(app.config["PRINTS_DIR"])
    text = pdf_text(path)
    for name in ("Amina", "محمد", "Nguyễn", "Priya", "Zoë"):
        assert name in text
    assert sorted(job.registration_ids) == sorted(p.id for p in people)


def test_a_large_batch_runs_in_the_background_and_finishes_with_progress_equal_to_total(scene, app):
    convening, *_ = scene
    app.config.update(PRINT_INLINE_MAX=2, PRINT_CHUNK_SHEETS=1, PRINT_WORKERS=2)
    job = service.request_badge_batch(convening.id, service.BadgeFilter(which="all"), "badge-4x6", duplex=True)
    assert job.status in ("queued", "running", "done")
    assert service.wait_for_print_job(job.id, timeout=120)
    db.session.rollback()  # end this session's read transaction to see what the job's thread wrote
    job = db.session.get(PrintJob, job.id)
    assert job.status == "done", job.error
    assert job.done == job.total == 5 and job.pages == 10 and job.finished_at is not None
    assert len(PdfReader(str(service.job_file(job))).pages) == 10


def test_marking_a_job_printed_marks_exactly_its_people(scene):
    convening, (ticket, _), _, people = scene
    job = service.request_badge_batch(convening.id, service.BadgeFilter(which="all"), "avery-5392")
    late = make_registration(convening, ticket, 9, given_name="Late", family_name="Comer")
    assert service.mark_job_printed(job.id) == 5
    db.session.expire_all()
    assert all(db.session.get(Registration, p.id).badge_printed_at is not None for p in people)
    assert db.session.get(Registration, late.id).badge_printed_at is None
    assert db.session.get(PrintJob, job.id).params["marked"] == 5


def test_nothing_to_print_is_refused_and_no_job_is_left(scene):
    convening, *_ = scene
    with pytest.raises(ConveneError) as caught:
        service.request_badge_batch(convening.id, service.BadgeFilter(which="changed"), "avery-5392")
    assert caught.value.code == "nothing_to_print"
    assert db.session.scalar(sa.select(sa.func.count(PrintJob.id))) == 0


def test_a_job_that_cannot_render_is_marked_failed_with_the_reason(scene):
    convening, *_ = scene
    job = PrintJob(convening_id=convening.id, kind="badges", params={"layout": "no-such-stock"},
                   registration_ids=[], total=0, file_name="x.pdf")
    db.session.add(job)
    db.session.commit()
    service.run_print_job(job.id, workers=0)
    db.session.expire_all()
    job = db.session.get(PrintJob, job.id)
    assert job.status == "failed" and "layout" in job.error
    assert service.job_file(job) is None


def test_a_job_running_for_too_long_counts_as_stale(scene):
    convening, *_ = scene
    job = PrintJob(convening_id=convening.id, kind="badges", status="running",
                   created_at=utcnow() - timedelta(hours=2))
    assert service.job_is_stale(job)
    job.status = "done"
    assert not service.job_is_stale(job)


# ---------------------------------------------------------------- jobs whose process died


def dead_pid() -> int:
    """The pid of a process that ran and exited (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(30)
    return process.pid


def running_job(convening, *, worker: str, heartbeat_ago: timedelta | None = timedelta(0),
                status: str = "running", created_ago: timedelta = timedelta(0)) -> PrintJob:
    now = utcnow()
    job = PrintJob(convening_id=convening.id, kind="badges", status=status, total=5, done=2, worker=worker,
                   heartbeat_at=None if heartbeat_ago is None else now - heartbeat_ago, created_at=now - created_ago,
                   params={"layout": "avery-5392", "filter": {"which": "all"}})
    db.session.add(job)
    db.session.flush()
    job.file_name = f"print-scene-badges-{job.id}.pdf"
    db.session.commit()
    return job


def job_state(job_id: int) -> tuple[str, str]:
    db.session.rollback()
    job = db.session.get(PrintJob, job_id)
    return job.status, job.error


def test_a_job_whose_worker_process_died_is_failed_on_the_next_read(scene, app):
    convening, *_ = scene
    job = running_job(convening, worker=f"{socket.gethostname()}:{dead_pid()}")
    partial = Path(app.config["PRINTS_DIR"]) / f"{job.file_name}.part"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"%PDF-1.7 half")
    assert service.fail_dead_print_jobs(convening.id) == 1
    assert job_state(job.id) == ("failed", "The process rendering this batch stopped; start it again.")
    assert not partial.exists()
    assert service.fail_dead_print_jobs() == 0


def test_a_job_whose_worker_is_alive_stays_running(scene):
    convening, *_ = scene
    here = running_job(convening, worker=service.this_worker(), heartbeat_ago=timedelta(minutes=2))
    elsewhere = running_job(convening, worker="another-host:1", heartbeat_ago=timedelta(minutes=2))
    waiting = running_job(convening, worker="", heartbeat_ago=None, status="queued")
    assert service.fail_dead_print_jobs() == 0
    assert {job_state(j.id)[0] for j in (here, elsewhere)} == {"running"} and job_state(waiting.id)[0] == "queued"


def test_a_job_silent_for_longer_than_the_heartbeat_timeout_is_failed(scene, app):
    convening, *_ = scene
    silent = running_job(convening, worker="another-host:1", heartbeat_ago=timedelta(minutes=11))
    never_started = running_job(convening, worker="", heartbeat_ago=None, status="queued",
                                created_ago=timedelta(minutes=11))
    alive_here = running_job(convening, worker=service.this_worker(), heartbeat_ago=timedelta(minutes=9))
    assert service.fail_dead_print_jobs(convening.id) == 2
    assert job_state(silent.id)[0] == job_state(never_started.id)[0] == "failed"
    assert job_state(alive_here.id)[0] == "running"
    app.config["PRINT_HEARTBEAT_TIMEOUT"] = 60
    assert service.fail_dead_print_jobs(convening.id) == 1 and job_state(alive_here.id)[0] == "failed"


def test_a_job_records_its_worker_and_heartbeat(scene):
    convening, *_ = scene
    job = service.request_badge_batch(convening.id, service.BadgeFilter(which="all"), "avery-5392")
    assert job.status == "done" and job.worker == service.this_worker()
    assert (utcnow() - job.heartbeat_at).total_seconds() < 60


def test_the_heartbeat_beats_while_a_job_renders_and_notices_when_it_is_taken_away(scene, app):
    convening, *_ = scene
    job = running_job(convening, worker=service.this_worker(), heartbeat_ago=timedelta(minutes=5))
    before = db.session.get(PrintJob, job.id).heartbeat_at
    heartbeat = service._Heartbeat(app, job.id, service.this_worker(), 0.05)
    heartbeat.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and db.session.get(PrintJob, job.id).heartbeat_at == before:
            time.sleep(0.05)
            db.session.rollback()
        assert db.session.get(PrintJob, job.id).heartbeat_at > before
        # A write transaction of its own (BEGIN IMMEDIATE on SQLite): a read upgraded to a write while the
        # heartbeat writes would be refused at once with "database is locked".
        with service.unit_of_work():
            db.session.execute(sa.update(PrintJob).where(PrintJob.id == job.id).values(status="failed"))
        assert heartbeat.lost.wait(10)
    finally:
        heartbeat.stop()


def test_a_worker_whose_job_was_failed_as_dead_stops_and_leaves_it_failed(scene, app, monkeypatch):
    """A worker that was only slow, not dead, must not overwrite the failure or leave a file nobody offers."""
    from convene.printing import batch

    convening, _, _, people = scene
    app.config["PRINT_CHUNK_SHEETS"] = 1  # 5 badges, 4 to a sheet: two chunks
    job = PrintJob(convening_id=convening.id, kind="badges", status="queued", total=5, file_name="slow.pdf",
                   registration_ids=[p.id for p in people], params={"layout": "a6-on-a4"})
    db.session.add(job)
    db.session.commit()
    render_chunk, chunks = batch.render_chunk, []

    def failed_as_dead_during_the_first_chunk(*args, **kwargs):
        chunks.append(args)
        if len(chunks) == 1:  # what fail_dead_print_jobs does when the heartbeat looked too old
            with service.unit_of_work():
                db.session.execute(sa.update(PrintJob).where(PrintJob.id == job.id)
                                   .values(status="failed", error=service.WORKER_GONE))
        return render_chunk(*args, **kwargs)

    monkeypatch.setattr(batch, "render_chunk", failed_as_dead_during_the_first_chunk)
    service.run_print_job(job.id, workers=0)
    assert job_state(job.id) == ("failed", service.WORKER_GONE)
    assert len(chunks) == 1, "the worker went on rendering a job that was no longer its own"
    assert not list(Path(app.config["PRINTS_DIR"]).glob("slow.pdf*"))


def test_print_jobs_command_fails_dead_jobs_and_lists_live_ones(scene, runner):
    convening, *_ = scene
    dead = running_job(convening, worker=f"{socket.gethostname()}:{dead_pid()}")
    live = running_job(convening, worker=service.this_worker())
    result = runner.invoke(args=["convene", "print-jobs", "print-scene"])
    assert result.exit_code == 0, result.output
    assert "1 batch(es) whose process stopped marked failed." in result.output
    assert f"#{live.id} badges: running, 2/5" in result.output and f"#{dead.id} " not in result.output
    assert job_state(dead.id)[0] == "failed"


# ---------------------------------------------------------------- rosters


@pytest.fixture
def visit_scene(scene):
    convening, _, _, people = scene
    host = make_host(convening, "Magnet", contact_name="Jo Host", contact_phone="+1 416 555 0100")
    other_host = make_host(convening, "George Brown College")
    slot = make_slot(convening, "Morning", 9)
    visit, other = make_visit(host, slot, 8), make_visit(other_host, slot, 8)
    for p in people[:3]:
        db.session.add(VisitAssignment(registration_id=p.id, slot_id=slot.id, site_visit_id=visit.id))
    db.session.add(VisitAssignment(registration_id=people[3].id, slot_id=slot.id, site_visit_id=other.id,
                                   published_site_visit_id=visit.id))
    db.session.commit()
    return convening, people, visit, other


def test_rosters_follow_the_working_plan_until_it_is_published(visit_scene):
    convening, people, visit, other = visit_scene
    [draft] = service.rosters_for(convening, visit.id)
    assert draft.draft and {p.name for p in draft.people} == {"Amina Hassan", "محمد عبد الله", "Nguyễn Thị Minh Khai"}
    assert draft.host_contact == "Jo Host · +1 416 555 0100" and draft.capacity == 8
    convening.visits_published_at = utcnow()
    db.session.commit()
    [published] = service.rosters_for(convening, visit.id)
    assert not published.draft and [p.name for p in published.people] == ["Priya Sharma"]


def test_all_rosters_print_in_one_pdf_with_names_and_organizations(visit_scene):
    convening, people, visit, other = visit_scene
    pdf = service.render_rosters_pdf(convening.id)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2  # one visit per page run
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Magnet" in text and "George Brown College" in text and "Amina Hassan" in text
    assert "City of Dayton" in text and "Signature" in text
    with pytest.raises(ConveneError):
        service.render_rosters_pdf(convening.id, site_visit_id=999_999)


# ---------------------------------------------------------------- command line


def test_badges_command_writes_the_pdf_and_marks_printed(scene, runner, tmp_path):
    convening, _, _, people = scene
    out = tmp_path / "badges.pdf"
    result = runner.invoke(args=["convene", "badges", "print-scene", "--layout", "a6-on-a4", "--out", str(out),
                                 "--only-unprinted", "--mark-printed", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "Wrote 5 badges on 2 page(s)" in result.output and "Marked 5 badge(s) printed" in result.output
    assert len(PdfReader(str(out)).pages) == 2
    again = runner.invoke(args=["convene", "badges", "print-scene", "--out", str(out), "--only-unprinted"])
    assert again.exit_code != 0 and "No badges to print" in again.output


def test_rosters_command_writes_every_roster(visit_scene, runner, tmp_path):
    out = tmp_path / "rosters.pdf"
    result = runner.invoke(args=["convene", "rosters", "print-scene", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Magnet" in pdf_text(out)
    missing = runner.invoke(args=["convene", "rosters", "nope", "--out", str(out)])
    assert missing.exit_code != 0 and "No convening" in missing.output


# ---------------------------------------------------------------- program book and agendas


@pytest.fixture
def program_scene(visit_scene):
    """A published program: a plenary for everyone and a roundtable one person presents."""
    from datetime import datetime, time

    from convene.services import schedule

    convening, people, visit, other = visit_scene
    hall = schedule.create_room(convening.id, {"name": "Great Hall", "capacity": 100})
    salon = schedule.create_room(convening.id, {"name": "Salon A", "capacity": 20})
    presenter = schedule.create_presenter(convening.id, {"registration_id": people[3].id})
    day = convening.starts_on

    def at(hour: int) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=convening.tz)

    schedule.create_session(convening.id, {"title": "Opening plenary", "kind": "plenary", "starts_at": at(9),
                                           "ends_at": at(10), "room_id": hall.id})
    schedule.create_session(convening.id, {"title": "Employer engagement", "kind": "roundtable", "starts_at": at(11),
                                           "ends_at": at(12), "room_id": salon.id, "presenter_ids": [presenter.id],
                                           "description": "Bringing employers in."})
    schedule.publish_program(convening.id)
    db.session.rollback()
    return convening, people


def test_program_book_lists_sessions_with_rooms_and_presenters(program_scene):
    convening, people = program_scene
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(service.render_program_pdf(convening.id))).pages)
    for expected in ("Opening plenary", "09:00–10:00", "Great Hall", "Employer engagement", "Salon A",
                     "Priya Sharma", "Bringing employers in.", "Site visits", "Magnet"):
        assert expected in text, expected


def test_personal_agenda_shows_what_the_person_attends_and_presents(program_scene):
    convening, people = program_scene
    priya = PdfReader(io.BytesIO(service.render_agenda_pdf(convening.id, people[3].id)))
    text = "\n".join(p.extract_text() for p in priya.pages)
    assert "Priya Sharma" in text and "Opening plenary" in text and "Employer engagement" in text
    assert "Presenting" in text
    amina = "\n".join(p.extract_text() for p in
                      PdfReader(io.BytesIO(service.render_agenda_pdf(convening.id, people[0].id))).pages)
    assert "Opening plenary" in amina and "Employer engagement" not in amina
    waiting = db.session.execute(sa.select(Registration).where(Registration.status == Status.WAITLISTED)).scalar_one()
    with pytest.raises(ConveneError):
        service.render_agenda_pdf(convening.id, waiting.id)


def test_all_agendas_print_as_one_job_a_page_run_each(program_scene):
    convening, people = program_scene
    job = service.request_agenda_batch(convening.id, requested_by="desk@example.org")
    assert job.kind == "agendas" and job.status == "done" and job.done == job.total == 5
    reader = PdfReader(str(service.job_file(job)))
    assert len(reader.pages) >= 5
    with pytest.raises(ConveneError):
        service.mark_job_printed(job.id)  # agendas are not badges


def test_agendas_and_program_commands(program_scene, runner, tmp_path):
    agendas, program = tmp_path / "agendas.pdf", tmp_path / "program.pdf"
    result = runner.invoke(args=["convene", "agendas", "print-scene", "--out", str(agendas), "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "Wrote 5 agendas" in result.output and "Priya Sharma" in pdf_text(agendas)
    result = runner.invoke(args=["convene", "program", "print-scene", "--out", str(program)])
    assert result.exit_code == 0, result.output
    assert "Opening plenary" in pdf_text(program)


def test_a_personal_agenda_is_a_tagged_pdf_titled_with_the_persons_name(program_scene):
    convening, people = program_scene
    reader = PdfReader(io.BytesIO(service.render_agenda_pdf(convening.id, people[3].id)))
    catalog = reader.trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"].value is True
    assert str(catalog["/Lang"]) == "en"
    assert reader.metadata["/Title"] == f"Agenda for Priya Sharma · {convening.name}"
    tree = catalog["/StructTreeRoot"].get_object()
    document = tree["/K"][0].get_object() if isinstance(tree["/K"], list) else tree["/K"].get_object()
    assert document["/S"] == "/Document" and document["/K"], "the tag tree is empty"
    assert b"pdfuaid:part" in catalog["/Metadata"].get_object().get_data()


# ---------------------------------------------------------------- session sign-in sheets


@pytest.fixture
def session_scene(scene):
    from convene.models import SessionSignup
    from tests.schedule_helpers import make_presenter, make_room, make_session

    convening, _, _, people = scene
    convening.venue = "Metro Centre"
    room = make_room(convening, "Salon A", 30, floor="Second floor")
    workshop = make_session(convening, "Budget workshop", 0, "10:00", "11:30", room=room, kind="workshop",
                            signup_required=True, presenters=(make_presenter(convening, "Dana Whitfield"),))
    plenary = make_session(convening, "Closing plenary", 1, "16:00", "17:00", kind="plenary",
                           location="City Hall, 100 Queen St W")
    waiting = db.session.execute(sa.select(Registration).where(Registration.given_name == "Wanda")).scalar_one()
    for r in (people[3], people[4], people[0], waiting):  # Sharma, Ångström, Hassan; Wanda is waitlisted
        db.session.add(SessionSignup(session_id=workshop.id, registration_id=r.id))
    db.session.add(SessionSignup(session_id=plenary.id, registration_id=people[0].id))
    db.session.commit()
    return convening, workshop, plenary


def test_a_session_sign_in_sheet_lists_its_confirmed_sign_ups_by_family_name(session_scene):
    convening, workshop, _ = session_scene
    roster = service.session_roster_for(convening, workshop)
    assert [p.name for p in roster.people] == ["Zoë Ångström", "Amina Hassan", "Priya Sharma"]
    assert roster.host_address == "Salon A, Second floor, Metro Centre" and roster.capacity == 30
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(
        service.render_session_roster_pdf(convening, workshop))).pages)
    assert "Budget workshop" in text and "Dana Whitfield" in text and "Signature" in text
    assert text.index("Ångström") < text.index("Hassan") < text.index("Sharma")
    assert "Wanda" not in text and "3 people of 30 seats" in text


def test_a_session_without_sign_up_prints_blank_lines_and_nobody(session_scene):
    convening, _, plenary = session_scene
    roster = service.session_roster_for(convening, plenary)
    assert roster.people == () and roster.blank_rows == service.OPEN_SESSION_BLANK_ROWS
    text = PdfReader(io.BytesIO(service.render_session_roster_pdf(convening, plenary))).pages[0].extract_text()
    assert "Closing plenary" in text and "City Hall, 100 Queen St W" in text and "Not needed" in text
    assert "Hassan" not in text and "Nobody has signed up" not in text


# ---------------------------------------------------------------- A–Z order whatever the accents


def test_badges_agendas_and_exports_come_out_a_to_z_with_accented_names_among_their_letter(app):
    import csv
    import io

    from convene.services.exports import registrations_csv

    convening = make_convening(slug="a-to-z")
    ticket = make_ticket(convening)
    for n, (given, family) in enumerate((("Zoe", "Young"), ("Luis", "Álvarez"), ("Thu", "Đặng"), ("Amra", "Šehić"),
                                         ("Eva", "Ñúñez"), ("Bo", "Adams"), ("Al", "Smith"), ("Zed", "Smit")), 1):
        make_registration(convening, ticket, 100 + n, given_name=given, family_name=family)
    expected = ["Adams", "Álvarez", "Đặng", "Ñúñez", "Šehić", "Smit", "Smith", "Young"]

    badges = service.badge_registrations(convening.id, service.BadgeFilter(which="all"))
    assert [r.family_name for r in badges] == expected
    job = service.request_badge_batch(convening.id, service.BadgeFilter(which="all"), "avery-5392")
    names = dict(db.session.execute(sa.select(Registration.id, Registration.family_name)).all())
    assert [names[i] for i in job.registration_ids] == expected
    job = service.request_agenda_batch(convening.id)
    assert [names[i] for i in job.registration_ids] == expected
    rows = list(csv.reader(io.StringIO(registrations_csv(convening).lstrip("\ufeff"))))
    family = rows[0].index("Family name")
    assert [row[family] for row in rows[1:]] == expected
