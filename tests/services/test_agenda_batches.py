"""Personal agendas in a batch: the program read once, sign-ups and visits for everyone at once, the same agendas."""
from __future__ import annotations

import io
import re

import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy import event

from convene.extensions import db
from convene.models import Registration, SessionSignup, Status, utcnow
from convene.services import printing as service
from convene.services.schedule import agenda_sources, sessions_of
from tests.services.test_printing import program_scene, scene, visit_scene  # noqa: F401 - fixtures


def statements_of(action) -> int:
    sent: list[str] = []

    def before(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    return len(sent)


def confirmed(convening) -> list[Registration]:
    return list(db.session.scalars(sa.select(Registration).where(
        Registration.convening_id == convening.id, Registration.status == Status.CONFIRMED).order_by(Registration.id)))


def test_a_batch_says_what_each_persons_own_agenda_says_in_a_few_queries(program_scene):
    convening, people = program_scene
    roundtable = next(s for s in sessions_of(convening.id) if s.title == "Employer engagement")
    db.session.add(SessionSignup(session_id=roundtable.id, registration_id=people[1].id))
    convening.visits_published_at = utcnow()  # people[3] has a published visit; the others none
    db.session.commit()
    everyone = confirmed(convening)
    one_by_one = [service.personal_agenda_data(convening, r) for r in everyone]
    assert any(e.tag == "Signed up" for d in one_by_one[1].days for e in d.entries)
    assert any("Site visit" in e.title for a in one_by_one for d in a.days for e in d.entries)

    db.session.expire_all()
    everyone = confirmed(convening)
    sources: list = []
    count = statements_of(lambda: sources.append(agenda_sources(convening, [p.id for p in everyone])))
    batch = [service.personal_agenda_data(convening, r, sources[0]) for r in everyone]
    assert batch == one_by_one
    # Sources for everyone are a fixed handful of queries; each person then costs none.
    assert statements_of(lambda: [service.personal_agenda_data(convening, r, sources[0]) for r in everyone]) == 0
    assert count <= 15, count


def test_the_batch_pdf_has_the_text_of_each_persons_own_pdf_in_order(program_scene):
    convening, people = program_scene
    job = service.request_agenda_batch(convening.id, requested_by="desk@example.org")
    assert job.status == "done"
    batch = [_without_page_number(page.extract_text()) for page in PdfReader(str(service.job_file(job))).pages]
    order = {rid: n for n, rid in enumerate(job.registration_ids)}
    in_job_order = sorted((r for r in confirmed(convening) if r.id in order), key=lambda r: order[r.id])
    own = [_without_page_number(page.extract_text()) for r in in_job_order
           for page in PdfReader(io.BytesIO(service.render_agenda_pdf(convening.id, r.id))).pages]
    assert batch == own and len(batch) >= 5


def _without_page_number(text: str) -> str:
    """A page's text without its footer's page number (a batch numbers its pages its own way)."""
    return re.sub(r"\s*\d+\s*$", "", text)
