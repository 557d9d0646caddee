"""Check-in: who gets checked in on which list, once, and what the desk is told otherwise."""
from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import AuditEntry, Order, Registration, SessionSignup, Status, VisitAssignment, utcnow
from convene.models.checkin import Checkin, CheckinList, CheckinScan, ListKind, ScanResult
from convene.services import checkin, checkin_lists
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_registration,
    make_slot,
    make_ticket,
    make_user,
    make_visit,
)
from tests.racing import race
from tests.schedule_helpers import make_session


@pytest.fixture
def scene(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Delegate")
    desk = make_user("desk@example.org", role="desk", convening=convening)
    ana = make_registration(convening, ticket, given_name="Ana", family_name="Müller", badge_name="Ani",
                            delegation_id=make_delegation(convening, "Maryland").id,
                            accessibility_needs=["step_free"])
    return convening, ticket, desk, ana


def active_checkins(list_id: int, registration_id: int | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(Checkin).where(Checkin.list_id == list_id,
                                                                   Checkin.reverted_at.is_(None))
    if registration_id is not None:
        query = query.where(Checkin.registration_id == registration_id)
    return db.session.scalar(query)


def test_a_badge_scan_checks_the_person_in_and_tells_the_desk_what_to_act_on(scene):
    convening, _, desk, ana = scene
    entrance = checkin.main_list(convening.id)
    answer = checkin.check_in(entrance, ana.checkin_token, by=desk, device="desk-1", scan_id="s1")
    assert answer.result is ScanResult.CHECKED_IN and answer.ok
    assert (answer.person.name, answer.person.badge_name, answer.person.delegation, answer.person.ticket) == (
        "Ana Müller", "Ani", "Maryland", "Delegate")
    assert "Step-free (wheelchair) access" in answer.person.notes
    assert "Badge not printed yet" in answer.person.notes
    assert active_checkins(entrance.id, ana.id) == 1
    [scan] = db.session.scalars(sa.select(CheckinScan)).all()
    assert (scan.result, scan.device, scan.scan_id, scan.user_id, scan.registration_id) == (
        "checked_in", "desk-1", "s1", desk.id, ana.id)
    assert db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.object_type == "checkin")) == \
        "checkin.checked_in"


def test_a_second_scan_says_already_checked_in_when_and_by_whom(scene):
    convening, _, desk, ana = scene
    entrance = checkin.main_list(convening.id)
    first = checkin.check_in(entrance, ana.checkin_token, by=desk, device="d1", scan_id="a")
    again = checkin.check_in(entrance, ana.reference.lower(), by=None, device="d2", scan_id="b")
    assert again.result is ScanResult.ALREADY and not again.ok
    assert again.checked_in_by == "desk" and again.checked_in_at is not None
    assert again.checkin_id == first.checkin_id and again.person.reference == ana.reference
    assert active_checkins(entrance.id) == 1
    assert [s.result for s in db.session.scalars(sa.select(CheckinScan).order_by(CheckinScan.id))] == [
        "checked_in", "already"]


def test_a_scan_sent_again_gets_its_first_answer_and_changes_nothing(scene):
    convening, _, desk, ana = scene
    entrance = checkin.main_list(convening.id)
    first = checkin.check_in(entrance, ana.checkin_token, by=desk, device="d1", scan_id="same")
    resent = checkin.check_in(entrance, ana.checkin_token, by=desk, device="d1", scan_id="same")
    assert resent.result is ScanResult.CHECKED_IN and resent.repeated and not first.repeated
    assert resent.checkin_id == first.checkin_id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 1
    # The same scan id from another device is another scan.
    other = checkin.check_in(entrance, ana.checkin_token, by=desk, device="d2", scan_id="same")
    assert other.result is ScanResult.ALREADY


@pytest.mark.parametrize("status, result", [
    (Status.CANCELLED, ScanResult.CANCELLED), (Status.LAPSED, ScanResult.CANCELLED),
    (Status.WAITLISTED, ScanResult.NOT_CONFIRMED), (Status.PENDING, ScanResult.NOT_CONFIRMED),
])
def test_people_without_a_confirmed_seat_are_not_checked_in(scene, status, result):
    convening, ticket, desk, _ = scene
    person = make_registration(convening, ticket, status=status)
    answer = checkin.check_in(checkin.main_list(convening.id), person.checkin_token, by=desk)
    assert answer.result is result and answer.person.reference == person.reference
    assert Status(status).label in answer.reason
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 0


def test_an_unknown_code_or_another_convenings_badge_is_unknown_and_logged(scene):
    convening, _, desk, _ = scene
    other = make_convening()
    stranger = make_registration(other, make_ticket(other))
    entrance = checkin.main_list(convening.id)
    for code in ("no-such-token-xyz", stranger.checkin_token, stranger.reference):
        assert checkin.check_in(entrance, code, by=desk).result is ScanResult.UNKNOWN
    assert db.session.scalars(sa.select(CheckinScan.result)).all() == ["unknown"] * 3
    with pytest.raises(ConveneError) as empty:
        checkin.check_in(entrance, " \r\n", by=desk)
    assert empty.value.code == "checkin_code_required"


def test_a_name_search_lists_the_people_to_choose_from_accent_and_case_blind(scene):
    convening, ticket, desk, ana = scene
    make_registration(convening, ticket, given_name="Anabel", family_name="Mulligan")
    arabic = make_registration(convening, ticket, given_name="فاطمة", family_name="الزهراء")
    entrance = checkin.main_list(convening.id)
    answer = checkin.check_in(entrance, "ANA MULL", by=desk)
    assert answer.result is ScanResult.MATCHES
    assert {m.name for m in answer.matches} == {"Ana Müller", "Anabel Mulligan"}
    assert checkin.check_in(entrance, "muller", by=desk).matches[0].reference == ana.reference
    assert [m.reference for m in checkin.check_in(entrance, "فاطمة", by=desk).matches] == [arabic.reference]
    assert active_checkins(entrance.id) == 0  # searching checks nobody in
    # Picking one sends their reference.
    assert checkin.check_in(entrance, ana.reference, by=desk).result is ScanResult.CHECKED_IN


def test_lists_are_independent_and_limited_to_whom_they_are_for(scene):
    convening, ticket, desk, ana = scene
    speaker_ticket = make_ticket(convening, name="Speaker")
    speaker = make_registration(convening, speaker_ticket, role="speaker")
    session = make_session(convening, "Housing first", 1, "10:00", "11:00", kind="breakout", signup_required=True)
    db.session.add(SessionSignup(session_id=session.id, registration_id=ana.id))
    db.session.commit()
    signups = checkin_lists.create_checkin_list(convening.id, dict(kind="session", session_id=session.id))
    speakers = checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Speakers' dinner",
                                                                    roles=["speaker"]))
    host = make_host(convening, "Welcome Centre")
    visit = make_visit(host, make_slot(convening, "Tuesday morning", 9), 20)
    db.session.add(VisitAssignment(registration_id=speaker.id, slot_id=visit.slot_id, site_visit_id=visit.id))
    db.session.commit()
    bus = checkin_lists.create_checkin_list(convening.id, dict(kind="visit", site_visit_id=visit.id))
    assert signups.name == "Housing first" and bus.name == "Welcome Centre · Tuesday morning"

    assert checkin.check_in(signups, ana.checkin_token, by=desk).result is ScanResult.CHECKED_IN
    assert checkin.check_in(signups, speaker.checkin_token, by=desk).result is ScanResult.NOT_ON_LIST
    assert checkin.check_in(speakers, ana.checkin_token, by=desk).result is ScanResult.NOT_ON_LIST
    assert checkin.check_in(speakers, speaker.checkin_token, by=desk).result is ScanResult.CHECKED_IN
    assert checkin.check_in(bus, speaker.checkin_token, by=desk).result is ScanResult.CHECKED_IN
    assert checkin.check_in(bus, ana.checkin_token, by=desk).result is ScanResult.NOT_ON_LIST
    # Being checked in on a session says nothing about the entrance.
    assert checkin.check_in(checkin.main_list(convening.id), ana.checkin_token, by=desk).result is \
        ScanResult.CHECKED_IN
    by_ticket = checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Speaker lounge",
                                                                     ticket_type_ids=[speaker_ticket.id]))
    assert checkin.check_in(by_ticket, ana.checkin_token, by=desk).result is ScanResult.NOT_ON_LIST
    with pytest.raises(ConveneError) as taken:
        checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Speaker lounge"))
    assert taken.value.code == "checkin_list_name_taken"


def test_undo_keeps_the_history_and_lets_the_person_be_checked_in_again(scene):
    convening, _, desk, ana = scene
    organizer = make_user("org@example.org", role="organizer")
    entrance = checkin.main_list(convening.id)
    first = checkin.check_in(entrance, ana.checkin_token, by=desk)
    undone = checkin.revert_check_in(first.checkin_id, by=organizer)
    assert undone.reverted_at is not None and undone.reverted_by_id == organizer.id
    with pytest.raises(ConveneError) as twice:
        checkin.revert_check_in(first.checkin_id, by=organizer)
    assert twice.value.code == "checkin_already_reverted"
    again = checkin.check_in(entrance, ana.checkin_token, by=desk)
    assert again.result is ScanResult.CHECKED_IN and again.checkin_id != first.checkin_id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 2
    assert active_checkins(entrance.id) == 1
    assert db.session.scalars(sa.select(CheckinScan.result).order_by(CheckinScan.id)).all() == [
        "checked_in", "reverted", "checked_in"]
    assert "checkin.reverted" in db.session.scalars(sa.select(AuditEntry.action)).all()


def test_notes_say_payment_outstanding_and_badge_to_reprint(scene):
    convening, ticket, desk, ana = scene
    order = Order(convening_id=convening.id, reference="ORD-1", buyer_name="Ana", buyer_email=ana.email,
                  total_cents=15000,
                  currency="CAD", status="invoiced", method="invoice")
    db.session.add(order)
    db.session.flush()
    ana.order_id = order.id
    ana.badge_printed_at = utcnow()
    ana.badge_changed_at = utcnow()
    db.session.commit()
    notes = checkin.check_in(checkin.main_list(convening.id), ana.checkin_token, by=desk).person.notes
    assert "Payment outstanding: 150.00 CAD" in notes
    assert "Badge changed since it was printed: reprint it" in notes


def test_the_entrance_list_is_made_once_with_the_convening(app):
    from convene.services.convenings import create_convening

    made = create_convening({"slug": "made-here", "name": "Made here", "timezone": "UTC",
                             "starts_on": date(2030, 5, 1), "ends_on": date(2030, 5, 2), "reference_prefix": "MAD"})
    [entrance] = checkin.lists_of(made.id)
    assert entrance.kind == ListKind.MAIN and entrance.name == "Entrance"
    assert checkin.main_list(made.id).id == entrance.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinList)) == 1


def test_twenty_desks_scanning_the_same_badge_make_exactly_one_checkin(app, scene):
    convening, _, desk, ana = scene
    entrance_id = checkin.main_list(convening.id).id
    token, desk_id = ana.checkin_token, desk.id

    def scan(n):
        def run():
            return checkin.check_in(entrance_id, token, by=db.session.get(type(desk), desk_id), device=f"d{n}",
                                    scan_id=f"scan-{n}").result.value
        return run

    outcomes = race(app, [scan(n) for n in range(20)])
    assert sorted(outcomes) == ["already"] * 19 + ["checked_in"], outcomes
    assert active_checkins(entrance_id, db.session.scalar(sa.select(Registration.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 20


def test_the_same_scan_sent_from_twenty_threads_is_logged_once(app, scene):
    convening, _, desk, ana = scene
    entrance_id = checkin.main_list(convening.id).id
    token = ana.checkin_token
    outcomes = race(app, [lambda: checkin.check_in(entrance_id, token, device="d", scan_id="one").result.value
                          for _ in range(20)])
    assert outcomes == ["checked_in"] * 20
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 1


def test_the_command_checks_in_by_token_reference_or_list_name(app, runner, scene):
    convening, _, _, ana = scene
    checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Dinner"))
    # A badge token may begin with "-" (one in 64): "--" keeps it from being read as an option.
    first = runner.invoke(args=["convene", "checkin", "--", convening.slug, ana.checkin_token])
    assert first.exit_code == 0, first.output
    assert "Checked in (Entrance)" in first.output and "Ana Müller" in first.output and "! Badge not printed" in \
        first.output
    again = runner.invoke(args=["convene", "checkin", convening.slug, ana.reference.lower()])
    assert again.exit_code == 1 and "Already checked in" in again.output and " at " in again.output
    dinner = runner.invoke(args=["convene", "checkin", convening.slug, ana.reference, "--list", "Dinner"])
    assert dinner.exit_code == 0 and "Checked in (Dinner)" in dinner.output
    unknown = runner.invoke(args=["convene", "checkin", convening.slug, "nobody-like-this"])
    assert unknown.exit_code == 2 and "Unknown code" in unknown.output
    missing = runner.invoke(args=["convene", "checkin", convening.slug, ana.reference, "--list", "Lunch"])
    assert missing.exit_code == 1 and "'Entrance', 'Dinner'" in missing.output
    assert db.session.scalar(sa.select(AuditEntry.actor_label).where(AuditEntry.action == "checkin.checked_in")
                             .limit(1)) == "flask convene checkin"


@pytest.mark.one_database
def test_the_migration_gives_each_existing_convening_its_entrance_list(backend, app_config, tmp_path):
    """Convenings made before check-in existed get an entrance list, on SQLite and PostgreSQL alike."""
    from flask_migrate import upgrade

    from convene import create_app

    settings = {"ENV_NAME": "testing", "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
                "PRINTS_DIR": str(tmp_path / "prints")}
    engine = None
    if backend == "sqlite":
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'migrations.db'}"
    else:
        url = app_config["SQLALCHEMY_DATABASE_URI"]
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS migration_0016 CASCADE; CREATE SCHEMA migration_0016"))
        settings |= {"SQLALCHEMY_DATABASE_URI": url,
                     "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c search_path=migration_0016"}}}
    app = create_app(settings)
    try:
        with app.app_context():
            upgrade(revision="0013")
            with db.engine.begin() as connection:
                for slug in ("before-a", "before-b"):
                    connection.execute(sa.text(
                        "INSERT INTO convening (slug, name, description, city, venue, venue_address, timezone, "
                        "starts_on, ends_on, currency, contact_email, published, reference_prefix, waitlist_enabled, "
                        "role_colours, created_at, updated_at) VALUES (:slug, :slug, '', '', '', '', 'UTC', "
                        "'2026-05-01', '2026-05-02', 'USD', '', false, 'OLD', true, '{}', "
                        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"slug": slug})
            upgrade(revision="0016")
            with db.engine.connect() as connection:
                rows = connection.execute(sa.text(
                    "SELECT c.slug, l.kind, l.name, l.ticket_type_ids, l.roles FROM checkin_list l "
                    "JOIN convening c ON c.id = l.convening_id ORDER BY c.slug")).all()
            db.engine.dispose()
    finally:
        if engine is not None:
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA migration_0016 CASCADE"))
            engine.dispose()
    assert [(slug, kind, name) for slug, kind, name, _, _ in rows] == [
        ("before-a", "main", "Entrance"), ("before-b", "main", "Entrance")]
    assert [tuple(str(v).replace(" ", "") for v in row[3:]) for row in rows] == [("[]", "[]")] * 2


def test_who_is_on_a_list_reads_the_same_for_one_person_as_for_the_whole_list(scene):
    convening, ticket, _, ana = scene
    other_ticket = make_ticket(convening, name="Partner")
    people = [ana, make_registration(convening, other_ticket, role="speaker"),
              make_registration(convening, ticket, role="staff"),
              make_registration(convening, ticket, status=Status.CANCELLED),
              make_registration(convening, other_ticket, status=Status.WAITLISTED)]
    session = make_session(convening, "Open plenary", 1, "09:00", "10:00")
    lists = [checkin.main_list(convening.id),
             checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Dinner")),
             checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Partners",
                                                                  ticket_type_ids=[other_ticket.id])),
             checkin_lists.create_checkin_list(convening.id, dict(kind="gathering", name="Speakers",
                                                                  roles=["speaker", "staff"])),
             checkin_lists.create_checkin_list(convening.id, dict(kind="session", session_id=session.id,
                                                                  everyone=True, roles=["delegate"]))]
    for checkin_list in lists:
        members = set(db.session.scalars(checkin.members_query(checkin_list)))
        assert {p.id for p in people if checkin.is_on_list(checkin_list, p)} == members, checkin_list.name
    assert len(set(db.session.scalars(checkin.members_query(lists[2])))) == 1
