"""What the log of changes costs: the same writes with the audit hooks on and off, in one run.

    python bench/audit.py                # 1,000 people on SQLite
    python bench/audit.py --people 5000
    CONVENE_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/convene_bench python bench/audit.py

Each case runs on a fresh schema: add N registrations in one unit of work, change one field of each
(N row updates in one unit of work), one bulk UPDATE of N rows, and N small units of work of one
change each (the shape of N attendees editing their registration). Times are the best of three; the
ratio is logged / unlogged.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from convene import create_app  # noqa: E402
from convene.extensions import db  # noqa: E402
from convene.models import AuditEntry, Base, Convening, Registration, TicketType  # noqa: E402
from convene.services import audit  # noqa: E402
from convene.services.db import unit_of_work  # noqa: E402


def fresh_schema() -> tuple[int, int]:
    db.session.remove()
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    from datetime import date

    with unit_of_work():
        convening = Convening(slug="bench", name="Bench", starts_on=date(2027, 6, 1), ends_on=date(2027, 6, 3),
                              timezone="America/New_York")
        db.session.add(convening)
        db.session.flush()
        ticket = TicketType(convening_id=convening.id, name="Delegate")
        db.session.add(ticket)
        db.session.flush()
        return convening.id, ticket.id


def add_people(convening_id: int, ticket_id: int, n: int) -> None:
    with unit_of_work():
        for i in range(n):
            db.session.add(Registration(
                convening_id=convening_id, ticket_type_id=ticket_id, reference=f"B-{i:06d}", status="confirmed",
                given_name=f"Amina{i}", family_name="Hassan", email=f"amina{i}@example.org",
                organization="City of Syracuse"))


def update_each(convening_id: int) -> None:
    with unit_of_work():
        for person in db.session.execute(sa.select(Registration).where(
                Registration.convening_id == convening_id)).scalars():
            person.organization = "City of Toronto"


def bulk_update(convening_id: int) -> None:
    with unit_of_work():
        db.session.execute(sa.update(Registration).where(Registration.convening_id == convening_id)
                           .values(job_title="Coordinator"))


def small_units(convening_id: int, n: int) -> None:
    ids = db.session.execute(sa.select(Registration.id).where(Registration.convening_id == convening_id)).scalars()
    for registration_id in list(ids)[:n]:
        with unit_of_work():
            db.session.get(Registration, registration_id).pronouns = "they/them"


def run(n: int, logged: bool) -> dict[str, float]:
    convening_id, ticket_id = fresh_schema()
    count = sa.select(sa.func.count()).select_from(AuditEntry)
    before = db.session.execute(count).scalar()
    times = {}
    steps = [("add", lambda: add_people(convening_id, ticket_id, n)), ("update each", lambda: update_each(convening_id)),
             ("bulk update", lambda: bulk_update(convening_id)),
             ("small units", lambda: small_units(convening_id, min(n, 500)))]
    for name, step in steps:
        start = time.perf_counter()
        if logged:
            step()
        else:
            with audit.unlogged():
                step()
        times[name] = time.perf_counter() - start
    entries = db.session.execute(count).scalar() - before
    assert (entries > 0) == logged, entries
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("CONVENE_BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url, "MAIL_SERVER": ""})
    with app.app_context():
        best = {True: {}, False: {}}
        for _ in range(args.repeat):
            for logged in (False, True):
                for name, seconds in run(args.people, logged).items():
                    best[logged][name] = min(best[logged].get(name, seconds), seconds)
        print(f"{args.people} people on {db.engine.dialect.name}; best of {args.repeat}")
        print(f"{'step':<14}{'unlogged s':>12}{'logged s':>12}{'ratio':>8}")
        for name in best[True]:
            off, on = best[False][name], best[True][name]
            print(f"{name:<14}{off:>12.3f}{on:>12.3f}{on / off:>8.2f}")


if __name__ == "__main__":
    main()
