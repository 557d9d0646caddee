"""The demo convening: complete, realistic, upcoming, and loaded once however often it is asked for."""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convene.extensions import db
from convene.models import Answer, Convening, Delegation, Question, Registration, Status, TicketType, User, utcnow
from convene.services import demo
from convene.services.registrations import seat_usage
from tests.factories import make_convening
from tests.conftest import login


def count(model) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def counts() -> dict[str, int]:
    return {m.__name__: count(m) for m in (Convening, TicketType, Delegation, Question, Registration, Answer, User)}


def registrations(convening: Convening, status: str | None = None) -> list[Registration]:
    query = sa.select(Registration).where(Registration.convening_id == convening.id)
    if status:
        query = query.where(Registration.status == status)
    return db.session.execute(query.order_by(Registration.id)).scalars().all()


def test_loading_twice_creates_once_and_changes_nothing(app):
    convening, created = demo.load_demo()
    assert created
    before = counts()
    again, created_again = demo.load_demo()
    assert not created_again
    assert again.id == convening.id
    assert counts() == before
    assert before["Convening"] == 1 and before["User"] == len(demo.ACCOUNTS) == 4


def test_demo_accounts_are_not_duplicated_when_they_already_exist(app):
    from tests.factories import make_user

    make_user(demo.DEMO_ORGANIZER_EMAIL, password="kept-password")
    demo.load_demo()
    users = {u.email: u for u in db.session.execute(sa.select(User)).scalars()}
    assert sorted(users) == sorted(email for email, _role, _name in demo.ACCOUNTS)
    assert users[demo.DEMO_ORGANIZER_EMAIL].check_password("kept-password")  # an existing account keeps it
    assert users[demo.DEMO_STAFF_EMAIL].check_password(demo.DEMO_ORGANIZER_PASSWORD)


def test_the_demo_team_holds_its_roles_on_the_demo_only(app):
    from convene.models import Membership
    from convene.permissions import Permission, can

    convening, _ = demo.load_demo()
    other = make_convening(slug="elsewhere")
    roles = {(m.user.email, m.convening_id): m.role for m in db.session.execute(sa.select(Membership)).scalars()}
    assert roles == {(email, convening.id): role for email, role, _name in demo.ACCOUNTS}
    users = {u.email: u for u in db.session.execute(sa.select(User)).scalars()}
    organizer, finance = users[demo.DEMO_ORGANIZER_EMAIL], users["finance@convene.example"]
    assert organizer.is_admin and can(organizer, Permission.TEAM, convening)
    assert can(finance, Permission.PAYMENTS_MANAGE, convening) and not can(finance, Permission.EDIT, convening)
    assert not can(finance, Permission.VIEW, other)


def test_demo_is_an_upcoming_three_day_june_convening_open_for_registration(app):
    now = utcnow()
    convening, _ = demo.load_demo()
    assert convening.slug == "toronto-cohort" and convening.published
    assert convening.timezone == "America/Toronto" and convening.currency == "CAD"
    assert convening.reference_prefix == "TOR" and convening.contact_email
    assert convening.starts_on.year == now.year + 1 and convening.starts_on.month == 6
    assert convening.starts_on.day <= 7
    assert (convening.ends_on - convening.starts_on).days == 2
    assert convening.registration_state(now) == "open"
    closes_local = convening.local(convening.registration_closes_at)
    assert closes_local.date() == convening.starts_on - timedelta(days=7)
    assert len(convening.description.split("\n\n")) == 3
    assert 100 <= convening.capacity <= 140


def test_demo_has_full_delegate_ticket_and_a_waitlist_of_three(app):
    convening, _ = demo.load_demo()
    confirmed = registrations(convening, Status.CONFIRMED)
    waitlisted = registrations(convening, Status.WAITLISTED)
    assert 60 <= len(confirmed) <= 80
    assert len(waitlisted) == 3
    tickets = {t.name: t for t in convening.ticket_types}
    assert [t.name for t in convening.ticket_types if not t.hidden] == ["Cohort delegate", "Observer (partner agencies)"]
    # Delegates and hidden tickets are free; observers pay (early-bird until three weeks before registration closes).
    assert [t.name for t in tickets.values() if t.price_cents] == ["Observer (partner agencies)"]
    observer = tickets["Observer (partner agencies)"]
    assert observer.price_at(convening.registration_closes_at) == 35000 and observer.price_at() == 29500
    assert convening.invoice_enabled and "Toronto, ON" in convening.invoice_issuer
    delegate = tickets["Cohort delegate"]
    usage = seat_usage(convening.id)
    assert usage.seats_left(convening, delegate) == 0 and usage.waitlist == 3
    assert usage.total < convening.capacity
    assert {r.ticket_type_id for r in waitlisted} == {delegate.id}
    assert max(r.confirmed_at for r in confirmed) < min(r.waitlisted_at for r in waitlisted)


def test_demo_has_every_role_on_its_own_ticket(app):
    convening, _ = demo.load_demo()
    by_role: dict[str, set[str]] = {}
    number: dict[str, int] = {}
    for registration in registrations(convening, Status.CONFIRMED):
        by_role.setdefault(registration.role, set()).add(registration.ticket_type.name)
        number[registration.role] = number.get(registration.role, 0) + 1
    assert by_role == {
        "delegate": {"Cohort delegate"}, "ta_provider": {"Technical assistance provider"},
        "host": {"Host organization"}, "speaker": {"Speaker"}, "staff": {"Staff"},
    }
    assert 6 <= number["ta_provider"] <= 8
    assert number["host"] == 5 and number["staff"] == 3 and number["speaker"] == 2


def test_demo_has_eight_delegations_of_six_to_ten_delegates(app):
    convening, _ = demo.load_demo()
    assert len(convening.delegations) == 8
    sizes = dict(db.session.execute(
        sa.select(Delegation.name, sa.func.count(Registration.id))
        .join(Registration, Registration.delegation_id == Delegation.id)
        .where(Delegation.convening_id == convening.id, Registration.status == Status.CONFIRMED)
        .group_by(Delegation.name)
    ).all())
    assert len(sizes) == 8 and all(6 <= n <= 10 for n in sizes.values()), sizes
    assert all(d.contact_name and d.contact_email for d in convening.delegations)
    assert all(r.delegation_id for r in registrations(convening) if r.role == "delegate")


def test_demo_people_are_varied_and_printable(app):
    convening, _ = demo.load_demo()
    people = registrations(convening)
    scripts = {unicodedata.name(ch).split()[0] for r in people for ch in r.badge_name if ch.isalpha()}
    assert {"ARABIC", "DEVANAGARI", "CJK", "ETHIOPIC", "CYRILLIC", "HANGUL", "HEBREW"} <= scripts
    assert any("ễ" in r.badge_name for r in people)  # Vietnamese in its own spelling
    assert any(not r.family_name.isascii() for r in people)  # accented Latin names
    assert len({r.email for r in people}) == len(people)
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.example", r.email) for r in people)
    assert len({r.reference for r in people}) == len(people)
    assert all(re.fullmatch(r"TOR-[A-Z0-9]{5}", r.reference) for r in people)
    assert sum(r.needs_step_free_access for r in people) >= 3
    assert {"halal", "vegetarian", "gluten_free"} <= {need for r in people for need in r.dietary_needs}
    assert sum(bool(r.pronouns) for r in people) >= 10
    assert all(r.organization and r.job_title for r in people)


def test_demo_questions_are_answered_by_most_people(app):
    convening, _ = demo.load_demo()
    questions = {q.label: q for q in convening.questions}
    assert len(questions) == 4
    working = questions["Which working group would you most like to join?"]
    dinner = questions["Will you attend the networking dinner on the first evening?"]
    roundtables = questions["Which topics would you like roundtables on?"]
    assert dinner.required and dinner.kind == "yes_no"
    assert len(working.choices) == 7 and working.kind == "single_choice"
    assert roundtables.kind == "multiple_choice"
    delegates = [r for r in registrations(convening) if r.role == "delegate"]
    assert all(isinstance(r.answer_for(dinner.id), bool) for r in delegates)  # required on the form
    assert sum(r.answer_for(working.id) is not None for r in delegates) >= 0.75 * len(delegates)
    assert all(r.answer_for(working.id) in (None, *working.choices) for r in delegates)
    assert all(set(r.answer_for(roundtables.id) or []) <= set(roundtables.choices) for r in delegates)
    assert sum(bool(r.answers) for r in registrations(convening)) >= 0.8 * len(registrations(convening))


def test_demo_registrations_spread_over_six_weeks(app):
    now = utcnow()
    convening, _ = demo.load_demo()
    created = [r.created_at for r in registrations(convening)]
    assert all(convening.registration_opens_at <= at <= now for at in created)
    assert now - min(created) > timedelta(days=35)
    days = {at.date() for at in created}
    assert len(days) >= 15  # a shape on the chart, not one spike
    assert all(r.confirmed_at == r.created_at for r in registrations(convening, Status.CONFIRMED))


def test_demo_is_the_same_every_time(app):
    now = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)

    def snapshot():
        convening, _ = demo.load_demo(now=now)
        rows = sorted(
            (r.email, r.status, r.role, r.created_at, sorted((a.question.label, str(a.value)) for a in r.answers))
            for r in registrations(convening)
        )
        return convening, rows

    convening, first = snapshot()
    db.session.delete(convening)
    db.session.commit()
    _, second = snapshot()
    assert first == second
    assert demo.demo_dates(now.date())[0].isoformat() == "2027-06-01"


def test_demo_host_organizations_are_ready_for_site_visits(app):
    assert len(demo.HOST_ORGANIZATIONS) == 5
    assert [h["accessible"] for h in demo.HOST_ORGANIZATIONS].count(False) == 1
    assert all(h["name"] and h["address"] and h["description"] for h in demo.HOST_ORGANIZATIONS)
    assert [p.org for p in demo.HOSTS] == [h["name"] for h in demo.HOST_ORGANIZATIONS]


def test_demo_organizer_can_sign_in(app, client):
    convening, _ = demo.load_demo()
    response = login(client, demo.DEMO_ORGANIZER_EMAIL, demo.DEMO_ORGANIZER_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    page = client.get("/admin/")
    assert page.status_code == 200
    assert convening.name in page.get_data(as_text=True)


def test_demo_public_page_offers_the_waitlist(app, client):
    demo.load_demo()
    page = client.get("/c/toronto-cohort/").get_data(as_text=True)
    assert "Full — waitlist open" in page
    form = client.get("/c/toronto-cohort/register").get_data(as_text=True)
    assert "Cohort delegate — Free — waitlist" in form  # observers still have seats, delegates wait
    assert "Observer (partner agencies) — CA$295.00 (early-bird price until" in form
    assert "Paid tickets are paid by invoice" in form  # no Stripe keys here, and the demo allows invoices


def test_demo_command_loads_once_and_prints_the_login(app, runner):
    first = runner.invoke(args=["convene", "demo"])
    assert first.exit_code == 0, first.output
    assert "Loaded demo convening" in first.output and "/c/toronto-cohort/" in first.output
    assert f"{demo.DEMO_ORGANIZER_EMAIL} / {demo.DEMO_ORGANIZER_PASSWORD}" in first.output
    second = runner.invoke(args=["convene", "demo"])
    assert second.exit_code == 0 and "already loaded" in second.output
    assert demo.DEMO_ORGANIZER_PASSWORD in second.output
    assert count(Convening) == 1


def test_demo_if_empty_loads_only_into_an_empty_database(app, runner):
    first = runner.invoke(args=["convene", "demo-if-empty"])
    assert first.exit_code == 0, first.output
    assert "Loaded demo convening" in first.output
    assert demo.DEMO_ORGANIZER_EMAIL in first.output and demo.DEMO_ORGANIZER_PASSWORD in first.output
    registrations_before = count(Registration)
    second = runner.invoke(args=["convene", "demo-if-empty"])
    assert second.exit_code == 0 and "Loaded" not in second.output
    assert demo.DEMO_ORGANIZER_EMAIL in second.output
    assert count(Registration) == registrations_before


def test_demo_if_empty_leaves_a_database_with_other_convenings_alone(app, runner):
    from tests.factories import make_convening

    make_convening()
    result = runner.invoke(args=["convene", "demo-if-empty"])
    assert result.exit_code == 0 and "Loaded" not in result.output
    assert count(Convening) == 1 and count(Registration) == 0


def test_demo_has_hosts_slots_and_rankings_and_the_assigner_places_everyone(app):
    from convene.models import HostOrganization, SiteVisit, VisitPreference
    from convene.services.visits import assign_site_visits

    convening, _ = demo.load_demo()
    hosts = db.session.scalars(sa.select(HostOrganization).where(HostOrganization.convening_id == convening.id)).all()
    assert len(hosts) == 5 and sum(not h.accessible for h in hosts) == 1
    assert db.session.scalar(sa.select(sa.func.count(SiteVisit.id))) == 10
    assert db.session.scalar(sa.select(sa.func.count(VisitPreference.id))) > 100
    result = assign_site_visits(convening.id)
    assert result.solution.optimal and not result.solution.unassigned
    assert result.run.people >= 60


def test_demo_has_an_entrance_a_dinner_and_a_bus_list_with_arrivals_in_the_live_numbers(app):
    from convene.models import Checkin, CheckinScan
    from convene.services import checkin, checkin_lists, checkin_reports

    convening, _ = demo.load_demo()
    summaries = {s.checkin_list.name: s for s in checkin_lists.list_summaries(convening)}
    assert set(summaries) == {"Entrance", demo.DINNER_LIST, next(n for n in summaries if n.startswith("Bus: "))}
    entrance, dinner = summaries["Entrance"], summaries[demo.DINNER_LIST]
    confirmed = len(registrations(convening, Status.CONFIRMED))
    assert entrance.expected == confirmed and 0 < entrance.arrived < confirmed
    assert dinner.expected == confirmed and 0 < dinner.arrived < entrance.arrived
    live = checkin_reports.live_numbers(entrance.checkin_list)
    assert live.arrived == entrance.arrived
    # every arrival has its scan, made by the demo desk account, and the next scan of one of them says so
    assert count(CheckinScan) == count(Checkin) == entrance.arrived + dinner.arrived
    someone = db.session.execute(sa.select(Checkin).where(Checkin.list_id == entrance.checkin_list.id)
                                 ).scalars().first()
    again = checkin.check_in(entrance.checkin_list.id, someone.registration.reference)
    assert again.result.value == "already" and again.checked_in_by
