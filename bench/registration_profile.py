"""The registration path in one process: statements per GET and POST of the form, and a pyinstrument profile.

    python bench/registration_profile.py                        # SQLite file under the temp folder
    CONVENE_PROFILE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/convene_bench_x python bench/registration_profile.py
    python bench/registration_profile.py --attempts 200 --html /tmp/reg.html
    python bench/registration_profile.py --seats 20 --get   # GET and POST, most of them finding no seat left

It builds the schema with the real migrations, adds a free ticket of `--seats` seats, then drives the real
form (GET, then POST with its CSRF token) through Flask's test client, with the development settings
(CSRF on, mail written as .eml files, the in-process job queue). Mail is delivered as configured, so the
POST's numbers include what runs after its commit.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=100)
    parser.add_argument("--seats", type=int, default=100_000)
    parser.add_argument("--html", help="write pyinstrument's HTML report of the POSTs here")
    parser.add_argument("--show", action="store_true", help="print the statements of one GET and one POST")
    parser.add_argument("--get", action="store_true", help="profile the GETs of the form too")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from pyinstrument import Profiler

    from convene import create_app
    from convene.extensions import db
    from convene.models import Convening, Registration, TicketType

    url = os.environ.get("CONVENE_PROFILE_DATABASE_URL") or f"sqlite:///{tempfile.gettempdir()}/convene-profile.db"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    mail = Path(tempfile.mkdtemp(prefix="convene-profile-mail-"))
    app = create_app({"ENV_NAME": "development", "DEBUG": False, "SQLALCHEMY_DATABASE_URI": url,
                      "MAIL_OUTBOX_DIR": str(mail), "RATELIMIT_REGISTER": "1000000 per minute",
                      "RATELIMIT_STORAGE_URI": "memory://", "JOBS_REDIS_URL": "",
                      "JOBS_EMBEDDED_SCHEDULER": False, "SERVER_NAME": "localhost"})
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "migrations"))
        start = date.today() + timedelta(days=120)
        convening = Convening(slug="profile-launch", name="Launch", starts_on=start, ends_on=start + timedelta(days=2),
                              timezone="America/Toronto", currency="CAD", published=True, waitlist_enabled=False,
                              reference_prefix="LCH", contact_email="team@convene.example")
        db.session.add(convening)
        db.session.flush()
        ticket = TicketType(convening_id=convening.id, name="Delegate", price_cents=0, capacity=args.seats)
        db.session.add(ticket)
        db.session.commit()
        ticket_id = ticket.id
        db.session.remove()

    statements: list[str] = []
    event.listen(db.engine if False else _engine(app), "before_cursor_execute",
                 lambda conn, cursor, statement, *a: statements.append(statement))
    client = app.test_client()
    form_url = "/c/profile-launch/register"

    def attempt(i: int, profiler=None) -> tuple[list[str], list[str], int]:
        statements.clear()
        if profiler and args.get:
            profiler.start()
        page = client.get(form_url)
        if profiler and args.get:
            profiler.stop()
        got = list(statements)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)  # none once sold out
        data = {"csrf_token": token.group(1) if token else "", "given_name": f"Amina{i}", "family_name": "Hassan",
                "email": f"amina{i}@bench.example", "organization": "City of Toronto", "ticket_type_id": ticket_id}
        statements.clear()
        if profiler:
            profiler.start()
        response = client.post(form_url, data=data)
        if profiler:
            profiler.stop()
        return got, list(statements), response.status_code

    for i in range(5):  # warm the caches a long-running worker would have
        attempt(10_000_000 + i)
    get_sql, post_sql, status = attempt(20_000_000)
    print(f"database: {url.split('://')[0]}   GET: {len(get_sql)} statements   POST: {len(post_sql)} statements "
          f"(status {status})")
    if args.show:
        for name, sql in (("GET", get_sql), ("POST", post_sql)):
            print(f"\n{name}")
            for s in sql:
                print("  ", " ".join(s.split())[:160])
    profiler = Profiler(interval=0.0005)
    codes: Counter[int] = Counter()
    started = time.perf_counter()
    for i in range(args.attempts):
        codes[attempt(i, profiler)[2]] += 1
    elapsed = time.perf_counter() - started
    print(f"{args.attempts} GET+POST in {elapsed:.2f} s ({elapsed / args.attempts * 1000:.1f} ms each), "
          f"POST statuses {dict(codes)}")
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())
    with app.app_context():
        print("registrations:", db.session.scalar(sa.select(sa.func.count()).select_from(Registration)))


def _engine(app):
    from convene.extensions import db

    with app.app_context():
        return db.engine


if __name__ == "__main__":
    main()
