"""The back office at 500, 5,000 and 50,000 registrations: the old way and the new way in one run.

    python bench/backoffice.py                               # SQLite in a temporary folder
    python bench/backoffice.py --sizes 500 5000              # fewer sizes
    python bench/backoffice.py --sizes 50000 --pages-only    # the list pages and the dashboard only
    CONVENE_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/convene_bench_x python bench/backoffice.py

The database's tables are dropped and made again. One convening of each size shares the table (so
every query also has to skip the others' rows). For each size it times, best of --repeat:

- list page: the first page, sorted by name. Old: Flask-SQLAlchemy's paginate (a COUNT, the page)
  plus the counts by status, the search run three times. New: the counts by status (the total comes
  from them) and the page. "http" is the whole new page through the Flask test client, signed in.
- search: the same with a search for a family name a tenth of the people share; on PostgreSQL the
  old way runs with index scans off (there was no index), the new way uses the trigram index.
- search 1, search 2ch, search 2w: a search for one person's reference, for two letters (too short for
  SQLite's trigram index: LIKE reads the rows) and for two words.
- f:status, f:ticket, f:delegation, f:no deleg., f:role: the first page under one filter (an empty
  delegation, people without one, the speakers: one in fifty).
- deep page: the last page. Old: OFFSET. New: keyset, after the last row of the page before.
- dashboard: build_dashboard of the baseline commit (rows looped over in Python) and of this one.
- CSV export: the baseline commit's registrations_csv (ORM objects) and the streamed one; the
  two files are checked to be identical.
- import: 5,000 new people into a convening of their own, with new references checked one query
  per row (old) or a thousand at a time (new); the table already holds the size's rows.

The old code is read from the baseline commit with `git show` (default: the commit before these
changes), so it is exactly what ran before. Ratios are old / new, measured in the same run: the
machine's load moves both alike.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import types
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from convene import create_app  # noqa: E402
from convene.extensions import db  # noqa: E402
from convene.models import (  # noqa: E402
    Answer,
    Base,
    Convening,
    Delegation,
    Question,
    Registration,
    Status,
    TicketType,
    User,
)
from convene.services import exports, imports, registration_lists, reports  # noqa: E402
from convene.services.registrations import new_reference  # noqa: E402
from convene.text import name_sort_key, search_text  # noqa: E402

BASELINE = "928e5b5ddd852360952d7ef12737a4e914f9a9fa"
PAGE = 50
FAMILY = ["Okafor", "Hassan", "Morales", "Nguyễn", "Bérubé", "Adeyemi", "Volkova", "Mensah", "Tadros", "Ångström"]
ORGS = ["City of Dayton", "Welcoming Workforce Alliance", "Salt City Community College", "Detroit Welcoming Center",
        "Delaware Valley Workforce Board"]
STATUSES = [Status.CONFIRMED] * 8 + [Status.WAITLISTED, Status.CANCELLED]


def old_module(path: str, rev: str) -> types.ModuleType:
    """A module of the baseline commit, loaded under another name next to today's."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True, capture_output=True,
                            text=True).stdout
    module = types.ModuleType("baseline_" + path.replace("/", "_").removesuffix(".py"))
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{rev[:8]}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own code at a commit
    return module


def seed(n: int, rng: random.Random) -> int:
    """A convening of n registrations with tickets, delegations and one answered question, written in bulk."""
    convening = Convening(slug=f"bench-{n}", name=f"Bench {n}", starts_on=date(2027, 6, 1),
                          ends_on=date(2027, 6, 3), timezone="America/New_York", reference_prefix="B")
    db.session.add(convening)
    db.session.flush()
    tickets = [TicketType(convening_id=convening.id, name=f"Ticket {t}") for t in range(3)]
    delegations = [Delegation(convening_id=convening.id, name=f"Delegation {d}") for d in range(20)]
    question = Question(convening_id=convening.id, label="Networking dinner?", kind="yes_no")
    db.session.add_all([*tickets, *delegations, question])
    db.session.flush()
    start = datetime(2027, 3, 1, tzinfo=timezone.utc)
    for first in range(0, n, 5000):
        rows = []
        for i in range(first, min(n, first + 5000)):
            given, family = f"Amina{i}", FAMILY[i % len(FAMILY)]
            email, org, ref = f"p{i}.{n}@example.org", ORGS[i % len(ORGS)], f"B{n}-{i:06d}"
            rows.append(dict(
                convening_id=convening.id, ticket_type_id=tickets[i % 3].id, reference=ref,
                status=rng.choice(STATUSES), given_name=given, family_name=family, email=email, organization=org,
                job_title="Analyst", delegation_id=delegations[i % 20].id if i % 4 else None,
                role="speaker" if i % 50 == 0 else "delegate",
                dietary_needs=["vegan"] if i % 7 == 0 else [], accessibility_needs=[],
                created_at=start + timedelta(minutes=rng.randrange(60 * 24 * 60)),
                search_text=search_text(given, family, "", email, org, ref), sort_key=name_sort_key(family, given),
            ))
        db.session.execute(sa.insert(Registration), rows)
    ids = db.session.scalars(sa.select(Registration.id).where(Registration.convening_id == convening.id)).all()
    db.session.execute(sa.insert(Answer), [dict(registration_id=i, question_id=question.id, value=i % 2 == 0)
                                           for i in ids])
    db.session.commit()
    return convening.id


def best(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        db.session.rollback()
        db.session.expire_all()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    db.session.rollback()
    return min(times)


def old_page(convening_id: int, q: str, page: int, *, no_index: bool, filters: dict | None = None) -> None:
    """The baseline view's queries: paginate with its COUNT, and the counts by status."""
    from sqlalchemy.orm import joinedload

    if no_index and db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        db.session.execute(sa.text("SET LOCAL enable_indexscan = off"))
    where = [Registration.convening_id == convening_id,
             *registration_lists.ListArgs(**(filters or {})).conditions(with_status=False)]
    if q:
        where.append(Registration.search_text.like(f"%{q}%"))
    db.paginate(sa.select(Registration).options(joinedload(Registration.ticket_type),
                                                joinedload(Registration.delegation))
                .where(*where, *registration_lists.ListArgs(**(filters or {})).conditions())
                .order_by(Registration.sort_key, Registration.id),
                page=page, per_page=PAGE, error_out=False, count=True).items
    db.session.execute(sa.select(Registration.status, sa.func.count()).where(*where)
                       .group_by(Registration.status)).all()


def new_page(convening_id: int, q: str, page: int, after: int | None = None, filters: dict | None = None) -> list:
    """The view's queries: the counts by status (the total comes from them) and the page."""
    args = registration_lists.ListArgs(q=q, **(filters or {}))
    counts = registration_lists.status_counts(convening_id, args.conditions(with_status=False))
    return registration_lists.list_page(
        convening_id, args.conditions(), (Registration.sort_key, Registration.id), descending=False, page=page,
        per_page=PAGE, total=registration_lists.total_for(counts, args.status), after=after).items


def import_text(n: int, tag: str) -> str:
    lines = ["given_name,family_name,email,organization,job_title"]
    lines += [f"Given{i},Family{i},imp{tag}.{i}@example.org,Org {i % 50},Analyst" for i in range(n)]
    return "\n".join(lines) + "\n"


def timed_import(n: int, tag: str, per_row: bool) -> float:
    convening = Convening(slug=f"imp-{tag}", name=f"Import {tag}", starts_on=date(2027, 6, 1),
                          ends_on=date(2027, 6, 3), timezone="UTC", reference_prefix="I")
    db.session.add(convening)
    db.session.flush()
    ticket = TicketType(convening_id=convening.id, name="Delegate")
    db.session.add(ticket)
    db.session.commit()
    kept = imports.new_references
    if per_row:  # what the import did before: one query per new reference
        def one_by_one(c, count):
            references: set[str] = set()
            while len(references) < count:
                references.add(new_reference(c))
            return list(references)

        imports.new_references = one_by_one
    try:
        started = time.perf_counter()
        report = imports.import_registrations(convening.id, import_text(n, tag),
                                              imports.ImportDefaults(ticket_type_id=ticket.id))
        elapsed = time.perf_counter() - started
    finally:
        imports.new_references = kept
    assert report.ok and report.imported == n, report.message
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--import-rows", type=int, default=5000)
    parser.add_argument("--baseline", default=BASELINE, help="commit whose dashboard and export are the old way")
    parser.add_argument("--pages-only", action="store_true", help="leave out the CSV export and the import")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    url = os.environ.get("CONVENE_BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url, "MAIL_SERVER": "",
                      "ADMIN_PAGE_SIZE": PAGE, "WTF_CSRF_ENABLED": False})
    old_reports = old_module("convene/services/reports.py", args.baseline)
    old_exports = old_module("convene/services/exports.py", args.baseline)
    rng = random.Random(17)
    with app.app_context():
        db.session.remove()
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        user = User(email="bench@example.org", name="bench", is_admin=True)
        user.set_password("correct-horse-battery")
        db.session.add(user)
        db.session.commit()
        convenings = {n: seed(n, rng) for n in args.sizes}
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(sa.text("VACUUM ANALYZE registration"))
        client = app.test_client()
        client.post("/admin/login", data={"email": "bench@example.org", "password": "correct-horse-battery"})
        print(f"{db.engine.dialect.name}; {sum(args.sizes):,} registrations in all; best of {args.repeat}; "
              f"old = baseline {args.baseline[:8]}, ratio = old / new")
        print(f"{'size':>7} {'what':<12}{'old ms':>10}{'new ms':>10}{'ratio':>8}{'new http ms':>13}")

        def line(n, what, old, new, http=None):
            http_text = f"{http * 1000:>13.1f}" if http is not None else ""
            print(f"{n:>7,} {what:<12}{old * 1000:>10.1f}{new * 1000:>10.1f}{old / new:>8.1f}{http_text}",
                  flush=True)

        for n in args.sizes:
            cid = convenings[n]
            convening = db.session.get(Convening, cid)
            base = f"/admin/c/{cid}/registrations"

            def http(path):
                return lambda: client.get(path).status_code == 200 or sys.exit(f"{path} failed")

            line(n, "list page", best(args.repeat, lambda: old_page(cid, "", 1, no_index=False)),
                 best(args.repeat, lambda: new_page(cid, "", 1)), best(args.repeat, http(base)))
            line(n, "search", best(args.repeat, lambda: old_page(cid, "okafor", 1, no_index=True)),
                 best(args.repeat, lambda: new_page(cid, "okafor", 1)), best(args.repeat, http(base + "?q=Okafor")))
            rare = f"b{n}-000123"  # one person's reference
            line(n, "search 1", best(args.repeat, lambda: old_page(cid, rare, 1, no_index=True)),
                 best(args.repeat, lambda: new_page(cid, rare, 1)), best(args.repeat, http(f"{base}?q={rare}")))
            line(n, "search 2ch", best(args.repeat, lambda: old_page(cid, "ok", 1, no_index=True)),
                 best(args.repeat, lambda: new_page(cid, "ok", 1)), best(args.repeat, http(base + "?q=ok")))
            line(n, "search 2w", best(args.repeat, lambda: old_page(cid, "amina1 okafor", 1, no_index=True)),
                 best(args.repeat, lambda: new_page(cid, "amina1 okafor", 1)),
                 best(args.repeat, http(base + "?q=amina1+okafor")))
            ticket_id = min(t.id for t in convening.ticket_types)
            delegation_id = min(d.id for d in convening.delegations)
            for what, filters in (("status", {"status": "waitlisted"}), ("ticket", {"ticket": ticket_id}),
                                  ("delegation", {"delegation": delegation_id}), ("no deleg.", {"delegation": "none"}),
                                  ("role", {"role": "speaker"})):
                query = "&".join(f"{k}={v}" for k, v in filters.items())
                line(n, f"f:{what}", best(args.repeat, lambda: old_page(cid, "", 1, no_index=False, filters=filters)),
                     best(args.repeat, lambda: new_page(cid, "", 1, filters=filters)),
                     best(args.repeat, http(f"{base}?{query}")))
            last = -(-n // PAGE)
            before_last = db.session.scalars(
                sa.select(Registration.id).where(Registration.convening_id == cid)
                .order_by(Registration.sort_key, Registration.id).offset((last - 1) * PAGE - 1).limit(1)).first()
            assert [r.id for r in new_page(cid, "", last, after=before_last)] == [
                r.id for r in db.paginate(sa.select(Registration).where(Registration.convening_id == cid)
                                          .order_by(Registration.sort_key, Registration.id),
                                          page=last, per_page=PAGE, error_out=False).items]
            line(n, "deep page", best(args.repeat, lambda: old_page(cid, "", last, no_index=False)),
                 best(args.repeat, lambda: new_page(cid, "", last, after=before_last)),
                 best(args.repeat, http(f"{base}?page={last}&after={before_last}")))
            line(n, "dashboard", best(args.repeat, lambda: old_reports.build_dashboard(convening)),
                 best(args.repeat, lambda: reports.build_dashboard(convening)))
            if args.pages_only:
                continue
            old_text, new_text = old_exports.registrations_csv(convening), "".join(
                exports.iter_registrations_csv(convening))
            if old_text.partition("\n")[0] == new_text.partition("\n")[0]:
                assert old_text == new_text, "the streamed export differs from the old one"
            else:  # columns were added since the baseline: the same people, not the same file
                assert old_text.count("\n") == new_text.count("\n"), "the exports list different people"
            line(n, "CSV export", best(args.repeat, lambda: old_exports.registrations_csv(convening)),
                 best(args.repeat, lambda: "".join(exports.iter_registrations_csv(convening))),
                 best(args.repeat, lambda: client.get(base.replace("registrations", "registrations.csv")).data))
            line(n, f"import {args.import_rows:,}", timed_import(args.import_rows, f"old{n}", True),
                 timed_import(args.import_rows, f"new{n}", False))


if __name__ == "__main__":
    main()
