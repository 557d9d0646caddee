"""Copying a convening for a new edition: the whole setup on new dates, no people, orders or logs."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import (
    Answer,
    AssignmentRun,
    AuditEntry,
    Base,
    CodeKind,
    Convening,
    Delegation,
    DiscountCode,
    HostOrganization,
    Membership,
    Order,
    Presenter,
    ProgramSession,
    ProgramSettings,
    Question,
    Registration,
    Room,
    SessionBlock,
    SessionPresenter,
    SessionSignup,
    SiteVisit,
    TicketType,
    VisitAssignment,
    VisitPreference,
    VisitSlot,
)
from convene.services import editions
from convene.services.codes import code_ever_used
from convene.services.schedule import is_published
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_question,
    make_registration,
    make_ticket,
    make_user,
    make_visit,
)
from tests.schedule_helpers import make_block, make_presenter, make_room, make_session, publish

TORONTO = ZoneInfo("America/Toronto")


def at(day: date, hhmm: str) -> datetime:
    """An instant at a wall-clock time in Toronto, in UTC."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=TORONTO).astimezone(timezone.utc)


def rows(model, **where) -> list:
    query = sa.select(model).order_by(model.id)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.execute(query).scalars().all()


def count(table_name: str) -> int:
    table = Base.metadata.tables[table_name]
    return db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


@dataclass
class Scene:
    convening: Convening
    delegate: TicketType
    hosts_ticket: TicketType
    code: DiscountCode
    keynote: ProgramSession
    person: Registration


def make_scene(starts_on: date = date(2027, 1, 12)) -> Scene:
    """A winter convening in Toronto with every kind of setup, and people, money and plans on it."""
    convening = make_convening(
        slug="winter-summit-2027", name="Winter Summit 2027", starts_on=starts_on,
        ends_on=starts_on + timedelta(days=2), capacity=250, venue="Metro Centre", reference_prefix="WS",
        registration_opens_at=at(starts_on - timedelta(days=100), "09:00"),
        registration_closes_at=at(starts_on - timedelta(days=7), "17:00"),
        role_colours={"speaker": "#b42318"}, invoice_enabled=True, invoice_issuer="Cities Network\n1 Main St",
        invoice_instructions="Quote the invoice number.", invoice_due_days=14, invoice_counter=7,
        visits_per_person=1, visit_preferences_open=True, visits_published_at=at(starts_on, "08:00"),
        privacy_notice="We keep your data for six months.", retention_months=6, allow_new_delegations=True,
    )
    delegate = make_ticket(convening, name="Delegate", price_cents=45000, early_price_cents=30000,
                           early_until_at=at(starts_on - timedelta(days=40), "23:59"),
                           sales_start_at=at(starts_on - timedelta(days=100), "09:00"),
                           sales_end_at=at(starts_on - timedelta(days=1), "12:00"))
    hosts_ticket = make_ticket(convening, name="Host", hidden=True)
    make_delegation(convening, "Maryland")
    make_question(convening, "Which workshop?", "single_choice", choices=["Media", "Policy"], required=True)
    code = DiscountCode(convening_id=convening.id, code="HOSTS", kind=CodeKind.ACCESS,
                        ticket_type_ids=[hosts_ticket.id], max_uses=10, note="for hosts",
                        valid_from=at(starts_on - timedelta(days=60), "00:00"), valid_until=at(starts_on, "00:00"))
    db.session.add(code)
    db.session.commit()
    host = make_host(convening, "Magnet", contact_email="host@example.org")
    second_day = starts_on + timedelta(days=1)
    slot = VisitSlot(convening_id=convening.id, label="Morning visits", starts_at=at(second_day, "09:30"),
                     ends_at=at(second_day, "12:00"))
    db.session.add(slot)
    db.session.commit()
    visit = make_visit(host, slot, 12, departs_at=at(starts_on + timedelta(days=1), "09:00"),
                       details_changed_at=at(starts_on, "07:00"))
    salon = make_room(convening, "Salon A", 120)
    block = make_block(convening, "Working groups", preferences_open=True)
    block.allocated_at = at(starts_on, "07:00")
    person = make_registration(convening, delegate, 1, discount_code_id=code.id, role="speaker")
    presenter = make_presenter(convening, registration=person, organization="City of Dayton")
    keynote = make_session(convening, "Opening keynote", 0, "09:00", "10:00", room=salon, presenters=(presenter,),
                           kind="keynote", sequence=4)
    group = make_session(convening, "Housing working group", 2, "13:00", "15:00", room=salon, block_id=block.id,
                         kind="working_group", signup_required=True)
    make_session(convening, "Site visits", 1, "09:30", "12:00", kind="site_visit", visit_slot_id=slot.id)
    publish(convening, {"room_double_booked": "warning"})
    # People, money and plans: none of it may come along.
    question = rows(Question, convening_id=convening.id)[0]
    order = Order(convening_id=convening.id, reference="WS-ORDER1", buyer_name="Amina Hassan",
                  buyer_email="amina1@example.org", currency="CAD", total_cents=45000, discount_code_id=code.id)
    db.session.add(order)
    db.session.flush()
    person.order_id = order.id
    db.session.add_all([
        Answer(registration_id=person.id, question_id=question.id, value="Media"),
        SessionSignup(session_id=group.id, registration_id=person.id),
        VisitPreference(registration_id=person.id, host_id=host.id, rank=1),
        VisitAssignment(registration_id=person.id, slot_id=slot.id, site_visit_id=visit.id,
                        published_site_visit_id=visit.id),
        AssignmentRun(convening_id=convening.id, people=1),
    ])
    db.session.commit()
    return Scene(convening, delegate, hosts_ticket, code, keynote, person)


def copy(scene: Scene, starts_on: date = date(2028, 1, 11), **overrides):
    values = dict(name="Winter Summit 2028", slug="winter-summit-2028", starts_on=starts_on)
    values.update(overrides)
    return editions.copy_convening(scene.convening.id, **values)


# -- what comes along ------------------------------------------------------------------------------

def test_the_whole_setup_is_copied_with_its_foreign_keys_pointing_at_the_copies(app):
    scene = make_scene()
    edition = copy(scene)
    old, new = scene.convening.id, edition.id
    assert [(k.table, k.count) for k in editions.setup_counts(new)] == [
        (k.table, k.count) for k in editions.setup_counts(old)]
    assert {k.table: k.count for k in editions.setup_counts(new)} == {
        "ticket_type": 2, "discount_code": 1, "question": 1, "delegation": 1, "host_organization": 1,
        "visit_slot": 1, "site_visit": 1, "room": 1, "program_session": 3, "session_block": 1, "presenter": 1}
    # Settings, badge colours and invoice settings.
    for key in ("venue", "city", "timezone", "currency", "capacity", "reference_prefix", "role_colours",
                "invoice_enabled", "invoice_issuer", "invoice_instructions", "invoice_due_days", "privacy_notice",
                "retention_months", "allow_new_delegations", "visits_per_person", "contact_email"):
        assert getattr(edition, key) == getattr(scene.convening, key), key
    assert (edition.name, edition.slug) == ("Winter Summit 2028", "winter-summit-2028")
    # Each copy points at the copies, never at the old edition's rows.
    [room] = rows(Room, convening_id=new)
    [host] = rows(HostOrganization, convening_id=new)
    [slot] = rows(VisitSlot, convening_id=new)
    [block] = rows(SessionBlock, convening_id=new)
    [visit] = rows(SiteVisit, convening_id=new)
    assert (visit.host_id, visit.slot_id, visit.capacity, visit.meeting_point) == (host.id, slot.id, 12, "Hotel lobby")
    assert host.contact_email == "host@example.org"
    sessions = {s.title: s for s in rows(ProgramSession, convening_id=new)}
    assert sessions["Opening keynote"].room_id == room.id and room.name == "Salon A" and room.capacity == 120
    assert sessions["Housing working group"].block_id == block.id and sessions["Housing working group"].signup_required
    assert sessions["Site visits"].visit_slot_id == slot.id
    [presenter] = rows(Presenter, convening_id=new)
    assert (presenter.name, presenter.organization, presenter.registration_id) == (
        "Amina1 Hassan", "City of Dayton", None)
    links = db.session.execute(sa.select(SessionPresenter).where(
        SessionPresenter.session_id == sessions["Opening keynote"].id)).scalars().all()
    assert [link.presenter_id for link in links] == [presenter.id]
    tickets = {t.name: t for t in rows(TicketType, convening_id=new)}
    assert tickets["Host"].hidden and tickets["Delegate"].price_cents == 45000
    assert tickets["Delegate"].early_price_cents == 30000
    [code] = rows(DiscountCode, convening_id=new)
    assert (code.code, code.kind, code.max_uses, code.note) == ("HOSTS", "access", 10, "for hosts")
    assert code.ticket_type_ids == [tickets["Host"].id]
    [question] = rows(Question, convening_id=new)
    assert (question.label, question.choices, question.required) == ("Which workshop?", ["Media", "Policy"], True)
    assert [d.name for d in rows(Delegation, convening_id=new)] == ["Maryland"]
    [settings] = rows(ProgramSettings, convening_id=new)
    assert settings.conflict_rules == {"room_double_booked": "warning"}
    # The source is untouched.
    db.session.expire_all()
    source = db.session.get(Convening, old)
    assert source.published and source.invoice_counter == 7 and is_published(old)
    assert rows(Room, convening_id=old)[0].id != room.id


def test_no_person_order_answer_plan_or_log_of_the_old_edition_comes_along(app):
    scene = make_scene()
    left_behind = [name for name in editions.NEVER_COPIED if name in Base.metadata.tables]
    before = {name: count(name) for name in left_behind}
    assert before["registration"] == 1 and before["orders"] == 1 and before["answer"] == 1
    assert before["session_signup"] == 1 and before["visit_assignment"] == 1 and before["visit_preference"] == 1
    edition = copy(scene)
    after = {name: count(name) for name in left_behind}
    assert {name: after[name] - before[name] for name in left_behind if name != "audit_entry"} == {
        name: 0 for name in left_behind if name != "audit_entry"}
    assert rows(Registration, convening_id=edition.id) == [] and rows(Order, convening_id=edition.id) == []
    [code] = rows(DiscountCode, convening_id=edition.id)
    assert code_ever_used(scene.code.id) and not code_ever_used(code.id)


def test_the_copy_starts_unpublished_closed_and_with_its_counters_at_zero(app):
    scene = make_scene()
    scene.convening.personal_data_erased_at = at(date(2027, 9, 1), "12:00")
    db.session.commit()
    edition = copy(scene)
    assert not edition.published and edition.invoice_counter == 0 and edition.personal_data_erased_at is None
    assert not edition.visit_preferences_open and edition.visits_published_at is None
    assert not is_published(edition.id)
    [settings] = rows(ProgramSettings, convening_id=edition.id)
    assert settings.published_at is None
    [block] = rows(SessionBlock, convening_id=edition.id)
    assert not block.preferences_open and block.allocated_at is None
    [visit] = rows(SiteVisit, convening_id=edition.id)
    assert visit.details_changed_at is None
    keynote = next(s for s in rows(ProgramSession, convening_id=edition.id) if s.title == "Opening keynote")
    assert keynote.sequence == 0


# -- dates -----------------------------------------------------------------------------------------

def test_every_date_moves_by_the_same_offset_keeping_wall_clock_times(app):
    scene = make_scene(starts_on=date(2027, 1, 12))  # a Tuesday in winter (EST)
    edition = copy(scene, starts_on=date(2027, 7, 13))  # 182 days later, in summer (EDT)
    days = 182
    first = date(2027, 7, 13)
    assert (edition.starts_on, edition.ends_on) == (first, first + timedelta(days=2))

    def local(instant):
        return instant.astimezone(TORONTO).replace(tzinfo=None)

    def moved(instant):
        return local(instant) + timedelta(days=days)

    old = scene.convening
    assert local(edition.registration_opens_at) == moved(old.registration_opens_at)
    assert local(edition.registration_closes_at) == moved(old.registration_closes_at)
    tickets = {t.name: t for t in rows(TicketType, convening_id=edition.id)}
    for key in ("sales_start_at", "sales_end_at", "early_until_at"):
        assert local(getattr(tickets["Delegate"], key)) == moved(getattr(scene.delegate, key)), key
    [code] = rows(DiscountCode, convening_id=edition.id)
    assert local(code.valid_from) == moved(scene.code.valid_from) == datetime(2027, 5, 14, 0, 0)
    assert local(code.valid_until) == moved(scene.code.valid_until) == datetime(2027, 7, 13, 0, 0)
    [slot] = rows(VisitSlot, convening_id=edition.id)
    assert (local(slot.starts_at), local(slot.ends_at)) == (datetime(2027, 7, 14, 9, 30), datetime(2027, 7, 14, 12))
    [visit] = rows(SiteVisit, convening_id=edition.id)
    assert local(visit.departs_at) == datetime(2027, 7, 14, 9, 0)
    sessions = {s.title: s for s in rows(ProgramSession, convening_id=edition.id)}
    assert local(sessions["Housing working group"].starts_at) == datetime(2027, 7, 15, 13, 0)


@pytest.mark.parametrize("old_start, new_start, old_utc_hour, new_utc_hour", [
    (date(2027, 1, 12), date(2027, 7, 13), 14, 13),  # January (EST, UTC-5) to July (EDT, UTC-4)
    (date(2027, 3, 9), date(2028, 3, 14), 14, 13),  # the week before the March change to the week after it
    (date(2027, 7, 13), date(2027, 12, 7), 13, 14),  # summer back to winter
])
def test_the_program_falls_on_the_new_dates_at_the_same_local_time_across_a_dst_change(
        app, old_start, new_start, old_utc_hour, new_utc_hour):
    scene = make_scene(starts_on=old_start)
    assert scene.keynote.starts_at == datetime.combine(old_start, time(old_utc_hour), tzinfo=timezone.utc)
    edition = copy(scene, starts_on=new_start)
    keynote = next(s for s in rows(ProgramSession, convening_id=edition.id) if s.title == "Opening keynote")
    assert keynote.starts_at.astimezone(TORONTO).replace(tzinfo=None) == datetime.combine(new_start, time(9))
    assert keynote.ends_at.astimezone(TORONTO).replace(tzinfo=None) == datetime.combine(new_start, time(10))
    assert keynote.starts_at == datetime.combine(new_start, time(new_utc_hour), tzinfo=timezone.utc)
    assert keynote.ends_at - keynote.starts_at == timedelta(hours=1)


def test_a_session_in_the_hour_the_clocks_skip_moves_to_the_hour_after_and_still_ends_after_it_starts(app):
    scene = make_scene(starts_on=date(2027, 3, 9))
    night = make_session(scene.convening, "Night owl", 0, "02:00", "03:00")
    assert night.ends_at - night.starts_at == timedelta(hours=1)
    edition = copy(scene, starts_on=date(2028, 3, 12))  # 02:00 to 03:00 does not exist in Toronto that day
    copied = next(s for s in rows(ProgramSession, convening_id=edition.id) if s.title == "Night owl")
    assert copied.starts_at.astimezone(TORONTO).replace(tzinfo=None) == datetime(2028, 3, 12, 3, 0)
    assert copied.ends_at - copied.starts_at == timedelta(hours=1)


# -- who and the log -------------------------------------------------------------------------------

def test_the_person_copying_owns_the_copy_and_both_convenings_log_the_copy(app):
    scene = make_scene()
    user = make_user("lead@example.org", role="organizer")
    edition = copy(scene, user_id=user.id)
    assert [(m.user_id, m.role) for m in rows(Membership, convening_id=edition.id)] == [(user.id, "owner")]
    copied = rows(AuditEntry, action="convening.copied")
    assert [(e.convening_id, e.object_id, e.object_label, e.changes) for e in copied] == [
        (edition.id, edition.id, "Winter Summit 2028", {"copied_from": [None, "winter-summit-2027"]})]
    copied_to = rows(AuditEntry, action="convening.copied_to")
    assert [(e.convening_id, e.object_id, e.changes) for e in copied_to] == [
        (scene.convening.id, scene.convening.id, {"copied_to": [None, "winter-summit-2028"]})]
    created = {e.action for e in rows(AuditEntry, convening_id=edition.id)}
    assert {"convening.created", "room.created", "session.created", "ticket_type.created"} <= created


def test_without_a_user_the_copy_has_no_team_member(app):
    edition = copy(make_scene())
    assert rows(Membership, convening_id=edition.id) == []


# -- refusals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("slug, code", [("winter-summit-2027", "slug_taken"), ("Winter Summit", "slug_invalid"),
                                        ("", "slug_invalid")])
def test_a_taken_or_malformed_slug_is_refused_beside_the_field_and_creates_nothing(app, slug, code):
    scene = make_scene()
    before = (count("convening"), count("ticket_type"), count("program_session"), count("audit_entry"))
    with pytest.raises(ConveneError) as refused:
        copy(scene, slug=slug)
    assert (refused.value.code, refused.value.field) == (code, "slug")
    assert (count("convening"), count("ticket_type"), count("program_session"), count("audit_entry")) == before


@pytest.mark.parametrize("starts_on", [date(1999, 12, 31), date(2101, 1, 1), None])
def test_a_first_day_out_of_range_is_refused_beside_the_field(app, starts_on):
    scene = make_scene()
    with pytest.raises(ConveneError) as refused:
        copy(scene, starts_on=starts_on)
    assert (refused.value.code, refused.value.field) == ("edition_starts_on_invalid", "starts_on")
    assert refused.value.message == "Enter a first day between 2000 and 2100."
    assert count("convening") == 1


def test_an_empty_name_is_refused_and_an_unknown_convening_is_not_found(app):
    scene = make_scene()
    with pytest.raises(ConveneError) as refused:
        copy(scene, name="  ")
    assert (refused.value.code, refused.value.field) == ("name_required", "name")
    with pytest.raises(ConveneError) as missing:
        editions.copy_convening(scene.convening.id + 100, name="X", slug="x", starts_on=date(2028, 1, 1))
    assert missing.value.status_code == 404
    assert count("convening") == 1


# -- the plan stays complete as the schema grows ---------------------------------------------------

def test_every_table_of_a_convening_is_copied_or_deliberately_left_behind():
    assert editions.plan_problems() == []
    assert set(editions.COPIED).isdisjoint(editions.NEVER_COPIED)


def test_a_new_table_with_a_convening_id_fails_the_plan_until_it_is_listed():
    probe = sa.Table("edition_probe", Base.metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("convening_id", sa.ForeignKey("convening.id")))
    child = sa.Table("edition_probe_child", Base.metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("probe_id", sa.ForeignKey("edition_probe.id")))
    try:
        assert editions.plan_problems() == ["edition_probe: neither copied nor listed as never copied",
                                            "edition_probe_child: neither copied nor listed as never copied"]
    finally:
        Base.metadata.remove(child)
        Base.metadata.remove(probe)
    assert editions.plan_problems() == []


def test_a_json_column_foreign_key_or_unique_value_the_plan_does_not_know_fails_it(monkeypatch):
    monkeypatch.setattr(editions, "JSON_PLAIN", editions.JSON_PLAIN - {("question", "choices")})
    monkeypatch.setattr(editions, "GIVEN_COLUMNS", editions.GIVEN_COLUMNS - {("convening", "slug")})
    monkeypatch.setitem(editions.COPIED, "presenter", {})
    assert editions.plan_problems() == [
        "convening: a copy would repeat the unique slug",
        "question.choices: JSON not known to hold ids or not",
        "presenter.registration_id: points at registration, which is not copied",
    ]


# -- the form's suggestion -------------------------------------------------------------------------

def test_the_suggestion_is_a_year_later_on_the_same_weekday_with_the_year_moved_on(app):
    convening = make_convening(name="Winter Summit 2027", slug="winter-summit-2027", starts_on=date(2027, 1, 12),
                               ends_on=date(2027, 1, 14))
    suggestion = editions.suggest_edition(convening)
    assert suggestion == {"name": "Winter Summit 2028", "slug": "winter-summit-2028", "starts_on": date(2028, 1, 11)}
    assert suggestion["starts_on"].weekday() == convening.starts_on.weekday()
    plain = make_convening(name="Cohort gathering", slug="cohort", starts_on=date(2027, 6, 1), ends_on=date(2027, 6, 2))
    assert editions.suggest_edition(plain) == {"name": "Cohort gathering", "slug": "cohort-2028",
                                               "starts_on": date(2028, 5, 30)}


# -- the command line ------------------------------------------------------------------------------

def test_the_command_copies_and_logs_it_as_the_command(app, runner):
    scene = make_scene()
    result = runner.invoke(args=["convene", "copy-convening", "winter-summit-2027", "winter-summit-2028",
                                 "--name", "Winter Summit 2028", "--starts-on", "2028-01-11"])
    assert result.exit_code == 0, result.output
    assert "Copied winter-summit-2027 to winter-summit-2028 (2028-01-11 to 2028-01-13)" in result.output
    assert "2 ticket types" in result.output and "3 sessions" in result.output and "unpublished" in result.output
    edition = db.session.execute(sa.select(Convening).where(Convening.slug == "winter-summit-2028")).scalar_one()
    assert not edition.published and edition.id != scene.convening.id
    [entry] = rows(AuditEntry, action="convening.copied")
    assert (entry.actor_kind, entry.actor_label) == ("command", "flask convene copy-convening")
    again = runner.invoke(args=["convene", "copy-convening", "winter-summit-2027", "winter-summit-2028",
                                "--name", "Again", "--starts-on", "2028-01-11"])
    assert again.exit_code != 0 and "Another convening already uses that web address." in again.output
    unknown = runner.invoke(args=["convene", "copy-convening", "nowhere", "x-2028", "--name", "X",
                                  "--starts-on", "2028-01-11"])
    assert unknown.exit_code != 0 and "No convening with slug 'nowhere'" in unknown.output
    assert count("convening") == 2
