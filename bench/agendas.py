"""Personal agendas in a batch: reading each person's agenda one by one (old) or in one pass (new), in one run.

    python bench/agendas.py                       # 300 and 1,000 agendas on SQLite
    python bench/agendas.py --sizes 300           # one size
    python bench/agendas.py --workers 2           # rendering processes (default: one per core)
    CONVENE_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/convene_bench_x python bench/agendas.py

A convening with a published three-day program (36 sessions in four rooms, presenters, sessions for
everyone and sessions that need a sign-up), published site visits and N confirmed people, each with
sign-ups and a visit. "old data" builds every agenda with personal_agenda_data(convening, person),
which reads the program and the person's sign-ups and visits again for each person; "new data"
reads them once with agenda_sources. The two lists of agendas are checked to be equal. "render" is
the same WeasyPrint batch (render_agendas_pdf, chunks in a process pool) for both, timed once, so
the totals are old data + render and new data + render. The ratio is old / new in the same run.
"render CPU s" is the user + system time of this process and its rendering workers during the render,
which other load on the machine barely changes: on two idle cores the render takes about half of it.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from convene import create_app  # noqa: E402
from convene.extensions import db  # noqa: E402
from convene.models import (  # noqa: E402
    Base,
    Convening,
    HostOrganization,
    Registration,
    SessionSignup,
    SiteVisit,
    Status,
    TicketType,
    VisitAssignment,
    VisitSlot,
    utcnow,
)
from convene.printing.batch import render_agendas_pdf, shutdown_pool  # noqa: E402
from convene.services import printing, schedule  # noqa: E402
from convene.text import name_sort_key, search_text  # noqa: E402


def seed(n: int) -> int:
    """A convening with a published program, published site visits and n confirmed people."""
    convening = Convening(slug=f"agendas-{n}", name="Welcoming Economies Convening", city="Toronto",
                          venue="Metro Centre", timezone="America/Toronto", starts_on=date(2027, 6, 1),
                          ends_on=date(2027, 6, 3), reference_prefix="TOR")
    db.session.add(convening)
    db.session.flush()
    ticket = TicketType(convening_id=convening.id, name="Delegate")
    db.session.add(ticket)
    db.session.commit()
    rows = [dict(convening_id=convening.id, ticket_type_id=ticket.id, reference=f"A{n}-{i:05d}",
                 status=Status.CONFIRMED, given_name=f"Amina{i}", family_name="Hassan", email=f"a{i}.{n}@example.org",
                 organization="City of Dayton", search_text=search_text(f"Amina{i}", "Hassan"),
                 sort_key=name_sort_key("Hassan", f"Amina{i}")) for i in range(n)]
    db.session.execute(sa.insert(Registration), rows)
    db.session.commit()
    people = list(db.session.scalars(sa.select(Registration.id).where(Registration.convening_id == convening.id)
                                     .order_by(Registration.id)))
    rooms = [schedule.create_room(convening.id, {"name": f"Room {r}", "capacity": 400}) for r in range(4)]
    presenters = [schedule.create_presenter(convening.id, {"registration_id": people[p]}) for p in range(12)]
    sessions = []
    for day in range(3):
        for hour in (9, 11, 14):
            at = datetime.combine(convening.starts_on + timedelta(days=day), clock(hour), tzinfo=convening.tz)
            for r, room in enumerate(rooms):
                kind = "plenary" if r == 0 else "breakout"
                saved = schedule.create_session(convening.id, {
                    "title": f"Session {day}-{hour}-{r}", "kind": kind, "starts_at": at,
                    "ends_at": at + timedelta(minutes=75), "room_id": room.id,
                    "presenter_ids": [presenters[(day * 4 + r) % 12].id], "description": "What works, and why.",
                    "signup_required": r > 0, "capacity": None,
                })
                sessions.append(saved.session if hasattr(saved, "session") else saved)
    schedule.publish_program(convening.id)
    workshops = [s for s in schedule.sessions_of(convening.id) if s.kind != "plenary"]
    db.session.execute(sa.insert(SessionSignup), [
        dict(session_id=workshops[(i + k * 7) % len(workshops)].id, registration_id=rid)
        for i, rid in enumerate(people) for k in range(3)])
    slot = VisitSlot(convening_id=convening.id, label="Afternoon", starts_at=datetime.combine(
        convening.starts_on + timedelta(days=1), clock(16), tzinfo=convening.tz),
        ends_at=datetime.combine(convening.starts_on + timedelta(days=1), clock(18), tzinfo=convening.tz))
    db.session.add(slot)
    db.session.flush()
    visits = []
    for h in range(10):
        host = HostOrganization(convening_id=convening.id, name=f"Host {h}", address=f"{h} King St, Toronto")
        db.session.add(host)
        db.session.flush()
        visit = SiteVisit(convening_id=convening.id, host_id=host.id, slot_id=slot.id, capacity=n,
                          meeting_point="Hotel lobby")
        db.session.add(visit)
        db.session.flush()
        visits.append(visit)
    db.session.execute(sa.insert(VisitAssignment), [
        dict(registration_id=rid, slot_id=slot.id, site_visit_id=visits[i % 10].id,
             published_site_visit_id=visits[i % 10].id) for i, rid in enumerate(people)])
    db.session.get(Convening, convening.id).visits_published_at = utcnow()
    db.session.commit()
    return convening.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    url = os.environ.get("CONVENE_BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url, "MAIL_SERVER": ""})
    with app.app_context():
        db.session.remove()
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        print(f"{db.engine.dialect.name}; {os.cpu_count()} cores; rendering workers: {args.workers or 'one per core'}; "
              f"load average at start {os.getloadavg()[0]:.2f}")
        print(f"{'agendas':>8}{'pages':>7}{'old data s':>12}{'new data s':>12}{'data ratio':>11}{'render s':>10}"
              f"{'render CPU s':>14}{'old total s':>13}{'new total s':>13}{'ratio':>7}")
        for n in args.sizes:
            convening_id = seed(n)
            people = list(db.session.scalars(sa.select(Registration).where(Registration.convening_id == convening_id)
                                             .order_by(Registration.sort_key, Registration.id)))
            ids = [p.id for p in people]

            def old():
                db.session.expire_all()
                convening = db.session.get(Convening, convening_id)
                return [printing.personal_agenda_data(convening, db.session.get(Registration, i)) for i in ids]

            def new():
                db.session.expire_all()
                convening = db.session.get(Convening, convening_id)
                sources = schedule.agenda_sources(convening, ids)
                return [printing.personal_agenda_data(convening, db.session.get(Registration, i), sources)
                        for i in ids]

            started = time.perf_counter()
            old_agendas = old()
            old_s = time.perf_counter() - started
            started = time.perf_counter()
            new_agendas = new()
            new_s = time.perf_counter() - started
            assert old_agendas == new_agendas, "the batch's agendas differ from the one-by-one ones"
            db.session.rollback()
            shutdown_pool()  # a fresh pool: its start-up is part of the render
            with tempfile.TemporaryDirectory() as folder:
                cpu_before = _cpu_seconds()
                started = time.perf_counter()
                pages = render_agendas_pdf(new_agendas, Path(folder) / "agendas.pdf", workers=args.workers)
                render_s = time.perf_counter() - started
                render_cpu = _cpu_seconds() - cpu_before  # before the pool stops: its workers are still there to ask
            shutdown_pool()
            print(f"{n:>8,}{pages:>7,}{old_s:>12.2f}{new_s:>12.2f}{old_s / new_s:>11.1f}{render_s:>10.1f}{render_cpu:>14.1f}"
                  f"{old_s + render_s:>13.1f}{new_s + render_s:>13.1f}{(old_s + render_s) / (new_s + render_s):>7.2f}",
                  flush=True)
        print(f"load average at end {os.getloadavg()[0]:.2f}")


def _cpu_seconds() -> float:
    """User + system seconds of this process and every process under it (the pool's forkserver and workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


if __name__ == "__main__":
    main()
