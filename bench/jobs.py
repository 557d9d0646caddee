"""Benchmark the job queue: badges through RQ workers against the in-process pool, and publishing site visits.

    python bench/jobs.py --database postgresql://postgres@127.0.0.1:5432/convene_bench --reset \\
        --redis redis://127.0.0.1:6379/7

The database is emptied and migrated first (`--reset` is required for a database that has tables):
never point it at one whose data you want. Without `--database`, a SQLite file in a temporary folder.

1. **1,000 badges** (Avery 5392, no backs). Baseline: the in-process worker (no Redis) renders one
   batch of 1,000 in its process pool of 2. Queue: two `flask convene worker` processes on Redis, each
   rendering in its own process (PRINT_WORKERS=0), take two batches of 500 — the same two cores. Time
   runs from the request that records the batches to the last one done.
2. **Publishing site visits to 1,000 people**, through the real view (the organizer's POST), with two
   RQ workers writing and sending the emails to a local SMTP server that counts them. Baseline: the
   way publishing worked before (the plan updated row by row and every email rendered inside the one
   locked transaction), reproduced here. For each: how long the request took to answer, how long a
   registration started 50 ms into it waited, and how long until the SMTP server had all 1,000.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG_ENV = "CONVENE_BENCH_JOBS_CONFIG"
PEOPLE = 1000


def worker_app():
    """The app a worker process runs (FLASK_APP=bench.jobs:worker_app()): the bench's settings, from JSON."""
    from convene import create_app

    return create_app(json.loads(os.environ[CONFIG_ENV]))


class SmtpCounter:
    """A minimal SMTP server on loopback that counts the messages it accepts."""

    def __init__(self):
        self.count = 0
        self.guard = threading.Lock()
        counter = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                try:
                    self.reply("220 bench ESMTP")
                    while line := self.rfile.readline():
                        verb = line.split(maxsplit=1)[0].upper() if line.strip() else b""
                        if verb == b"DATA":
                            self.reply("354 go on")
                            while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                                pass
                            with counter.guard:
                                counter.count += 1
                            self.reply("250 queued")
                        elif verb == b"QUIT":
                            self.reply("221 bye")
                            return
                        else:
                            self.reply("250 ok")
                except OSError:
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Workers:
    """`flask convene worker` processes on the bench's settings."""

    def __init__(self, config: dict):
        self.config, self.processes = config, []

    def start(self, n: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FLASK_APP": "bench.jobs:worker_app()",
               CONFIG_ENV: json.dumps(self.config), "LOG_LEVEL": "WARNING"}
        for _ in range(n):
            self.processes.append(subprocess.Popen([sys.executable, "-m", "flask", "convene", "worker"], cwd=ROOT,
                                                   env=env))

    def ready(self, redis_url: str, timeout: float = 300) -> None:
        """Wait until every worker has registered with Redis (made its app, connected): the timings start warm."""
        from redis import Redis
        from rq import Queue, Worker

        queue = Queue(self.config["JOBS_QUEUE"], connection=Redis.from_url(redis_url))
        deadline = time.monotonic() + timeout
        while Worker.count(queue=queue) < len(self.processes):
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.2)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []


def make_app(base: dict, **overrides):
    from convene import create_app

    return create_app({**base, **overrides})


def reset_database(app) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from convene.extensions import db

    with app.app_context():
        db.drop_all()
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=str(ROOT / "migrations"))


def people(convening, n: int, prefix: str) -> list[int]:
    """n confirmed delegates, written directly (the bench measures printing and publishing, not registering)."""
    import sqlalchemy as sa

    from convene.extensions import db
    from convene.models import Registration, TicketType, utcnow
    from convene.services.registrations import new_reference

    sys.path.insert(0, str(ROOT / "bench"))
    from badges import FAMILY, GIVEN, ORGANIZATIONS  # the names of bench/badges.py: several scripts, some long

    ticket = TicketType(convening_id=convening.id, name="Delegate", price_cents=0)
    db.session.add(ticket)
    db.session.flush()
    for i in range(n):
        db.session.add(Registration(
            convening_id=convening.id, ticket_type_id=ticket.id, reference=new_reference(convening),
            status="confirmed", role="delegate", confirmed_at=utcnow(), given_name=GIVEN[i % len(GIVEN)],
            family_name=FAMILY[(i * 7) % len(FAMILY)], email=f"{prefix}{i}@example.org",
            organization=ORGANIZATIONS[i % len(ORGANIZATIONS)], job_title="Program manager", badge_name="",
            pronouns="", phone="", dietary_needs=[], dietary_notes="", accessibility_needs=[],
            accessibility_notes="",
        ))
        if i % 200 == 199:
            db.session.flush()
    db.session.commit()
    return db.session.execute(sa.select(Registration.id).where(Registration.convening_id == convening.id)
                              .order_by(Registration.id)).scalars().all()


def new_convening(slug: str):
    from tests.factories import make_convening

    return make_convening(slug=slug, name=f"Bench {slug}", visits_per_person=1)


# ---------------------------------------------------------------- 1. badges


def badges_pool(base: dict) -> float:
    """Baseline: one batch of 1,000 in the in-process worker's pool of 2 processes."""
    from convene.printing.batch import shutdown_pool
    from convene.services import printing

    app = make_app(base, JOBS_REDIS_URL="", PRINT_INLINE_MAX=0, PRINT_WORKERS=2)
    with app.app_context():
        convening = new_convening("badges-pool")
        people(convening, PEOPLE, "pool")
        start = time.perf_counter()
        job = printing.request_badge_batch(convening.id, printing.BadgeFilter(which="all"), "avery-5392")
        assert printing.wait_for_print_job(job.id, timeout=3600)
        seconds = time.perf_counter() - start
        shutdown_pool()
        return seconds


def badges_rq(base: dict, redis_url: str) -> float:
    """Two RQ workers, each rendering in its own process, take two batches of 500."""
    from convene.extensions import db
    from convene.models import Delegation, Registration
    from convene.services import printing

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    config = {**base, "JOBS_REDIS_URL": redis_url, "JOBS_QUEUE": queue, "PRINT_INLINE_MAX": 0, "PRINT_WORKERS": 0}
    app = make_app(config)
    workers = Workers(config)
    with app.app_context():
        convening = new_convening("badges-rq")
        ids = people(convening, PEOPLE, "rq")
        halves = [Delegation(convening_id=convening.id, name=name) for name in ("East", "West")]
        db.session.add_all(halves)
        db.session.flush()
        for n, registration_id in enumerate(ids):
            db.session.get(Registration, registration_id).delegation_id = halves[n % 2].id
        db.session.commit()
        workers.start(2)
        workers.ready(redis_url)  # WeasyPrint is imported on their first badge, inside the timing
        try:
            start = time.perf_counter()
            jobs = [printing.request_badge_batch(convening.id, printing.BadgeFilter(which="all", delegation=half.id),
                                                 "avery-5392") for half in halves]
            for job in jobs:
                assert printing.wait_for_print_job(job.id, timeout=3600)
            seconds = time.perf_counter() - start
            for job in jobs:
                db.session.rollback()
                done = db.session.get(type(job), job.id)
                assert done.status == "done", done.error
        finally:
            workers.stop()
        return seconds


# ---------------------------------------------------------------- 2. publishing


def publish_in_one_transaction(convening_id: int) -> int:
    """The way publishing worked before the queue: plan rows and every email inside one locked transaction."""
    from convene.models import Convening, utcnow
    from convene.services.db import lock, unit_of_work
    from convene.services.mail import queue_email
    from convene.services.registrations import manage_url
    from convene.services.visits import _publish_preview, assignments_of, published_visits_for

    from convene.extensions import db

    with unit_of_work():
        [convening] = lock(Convening, convening_id)
        preview = _publish_preview(convening)
        for row in assignments_of(convening.id):
            if row.published_site_visit_id != row.site_visit_id:
                row.published_site_visit_id = row.site_visit_id
        convening.visits_published_at = utcnow()
        db.session.flush()
        for registration, changes in preview.people:
            queue_email("visits", registration.email, f"Your site visits at {convening.name}", "visits",
                        registration=registration, convening=convening, visits=published_visits_for(registration.id),
                        changes=changes, manage_url=manage_url(registration))
    return len(preview.people)


def plan_for(convening, ids: list[int]) -> None:
    """20 hosts in one slot, 50 places each, everyone placed in the working plan (not yet published)."""
    from datetime import timedelta

    from convene.extensions import db
    from convene.models import HostOrganization, SiteVisit, VisitAssignment, VisitSlot, utcnow

    slot = VisitSlot(convening_id=convening.id, label="Morning", starts_at=utcnow() + timedelta(days=30),
                     ends_at=utcnow() + timedelta(days=30, hours=3))
    db.session.add(slot)
    db.session.flush()
    visits = []
    for n in range(20):
        host = HostOrganization(convening_id=convening.id, name=f"Host {n}", address=f"{n} Queen Street")
        db.session.add(host)
        db.session.flush()
        visit = SiteVisit(convening_id=convening.id, host_id=host.id, slot_id=slot.id, capacity=50,
                          meeting_point="Hotel lobby")
        db.session.add(visit)
        visits.append(visit)
    db.session.flush()
    db.session.add_all(VisitAssignment(registration_id=rid, slot_id=slot.id, site_visit_id=visits[i % 20].id)
                       for i, rid in enumerate(ids))
    db.session.commit()


def publish(base: dict, redis_url: str, way: str) -> dict:
    """Publish to 1,000 people through the organizer's POST; a registration starts 50 ms in; count the emails."""
    from convene.admin import visits as visit_views
    from convene.extensions import db
    from convene.models import TicketType
    from convene.services import registrations, visits
    from tests.factories import make_user, person

    sink = SmtpCounter()
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    config = {**base, "JOBS_REDIS_URL": redis_url, "JOBS_QUEUE": queue, "MAIL_SERVER": "127.0.0.1",
              "MAIL_PORT": sink.port, "MAIL_USE_TLS": False, "MAIL_USE_SSL": False, "MAIL_USERNAME": "",
              "MAIL_INLINE_LIMIT": 25, "PUBLISH_INLINE_MAX": 25}
    app = make_app(config, WTF_CSRF_ENABLED=False)
    workers = Workers(config)
    original = visits.publish_plan
    try:
        with app.app_context():
            convening = new_convening(f"publish-{way}")
            ids = people(convening, PEOPLE, f"pub{way}")
            plan_for(convening, ids)
            ticket_id = db.session.scalar(db.select(TicketType.id).where(TicketType.convening_id == convening.id))
            organizer = make_user(f"organizer-{way}@example.org")
            convening_id, email = convening.id, organizer.email
        workers.start(2)
        workers.ready(redis_url)
        if way == "before":
            def old_publish(convening_id, *, expected=None, requested_by=None):
                return visits.Publication(emailed=publish_in_one_transaction(convening_id), job_id=None, written=True)

            visit_views.service.publish_plan = old_publish
        client = app.test_client()
        client.post("/admin/login", data={"email": email, "password": "correct-horse-battery"})
        page = client.get(f"/admin/c/{convening_id}/visits/publish").get_data(as_text=True)
        token = re.search(r'name="preview" value="([^"]*)"', page).group(1)
        waited = {}

        def register_meanwhile():
            time.sleep(0.05)
            with app.app_context():
                begun = time.perf_counter()
                try:
                    registrations.add_registration(convening_id, ticket_id,
                                                   person(0, email=f"late-{way}@example.org"), {}, send_email=False)
                except Exception as error:  # the statement timeout gave up on the lock: the person got a 503
                    waited["failed"] = type(error).__name__
                waited["seconds"] = time.perf_counter() - begun
                db.session.remove()

        other = threading.Thread(target=register_meanwhile)
        start = time.perf_counter()
        other.start()
        response = client.post(f"/admin/c/{convening_id}/visits/publish", data={"preview": token})
        answered = time.perf_counter() - start
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
        other.join()
        deadline = time.monotonic() + 1800
        while sink.count < PEOPLE and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered = time.perf_counter() - start
        return {"answered": answered, "registration_waited": waited.get("seconds", float("nan")),
                "registration_failed": waited.get("failed", ""), "all_delivered": delivered, "emails": sink.count}
    finally:
        visit_views.service.publish_plan = original
        workers.stop()
        sink.stop()


def main() -> int:
    global PEOPLE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="SQLAlchemy URL (default: a SQLite file in a temporary folder)")
    parser.add_argument("--reset", action="store_true", help="empty the database first (required if it has tables)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--skip-badges", action="store_true")
    parser.add_argument("--people", type=int, default=PEOPLE, help="badges and people (a quick trial: 50)")
    args = parser.parse_args()
    PEOPLE = args.people
    scratch = Path(tempfile.mkdtemp(prefix="convene-bench-jobs-"))
    url = args.database or f"sqlite:///{scratch / 'bench.db'}"
    base = {"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url, "PRINTS_DIR": str(scratch / "prints"),
            "MAIL_OUTBOX_DIR": str(scratch / "outbox"), "SERVER_NAME": "localhost", "BASE_URL": "http://localhost",
            "PUBLISH_INLINE_MAX": 25, "MAIL_INLINE_LIMIT": 25, "JOB_HEARTBEAT_SECONDS": 5}
    app = make_app(base)
    with app.app_context():
        import sqlalchemy as sa

        from convene.extensions import db

        if sa.inspect(db.engine).get_table_names() and not args.reset:
            parser.error(f"{url} has tables: pass --reset to empty it (everything in it is deleted)")
    reset_database(app)
    print(f"database: {make_app(base).config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}, redis: {args.redis}, "
          f"{os.cpu_count()} cores")
    if not args.skip_badges:
        pool = badges_pool(base)
        print(f"{PEOPLE:,} badges, in-process pool of 2 (baseline): {pool:7.1f} s")
        rq = badges_rq(base, args.redis)
        print(f"{PEOPLE:,} badges, 2 RQ workers (2 halves):      {rq:7.1f} s   ratio {rq / pool:.2f} of the baseline")
    before = publish(base, args.redis, "before")
    after = publish(base, args.redis, "after")
    print(f"publishing site visits to {PEOPLE:,} people   one locked transaction (baseline)   short lock + job   ratio")
    for key, label in (("answered", "request answered"), ("registration_waited", "registration meanwhile"),
                       ("all_delivered", "all emails delivered")):
        print(f"  {label:<40} {before[key]:8.2f} s {after[key]:25.2f} s   {after[key] / before[key]:7.2f}")
    for result, name in ((before, "baseline"), (after, "short lock")):
        if result["registration_failed"]:
            print(f"  {name}: the registration failed ({result['registration_failed']}: the database's statement "
                  f"timeout, DATABASE_STATEMENT_TIMEOUT, gave up waiting for the lock); a person would see a 503")
    print(f"  emails counted by the SMTP server: {before['emails']} and {after['emails']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
