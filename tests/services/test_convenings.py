"""Setup services against the real database, and the pure helpers (time zones, prices, the chart)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Answer, Convening, Delegation, Question, Registration, Status, TicketType
from convene.services import convenings as service
from convene.services.reports import (
    active_counts_by_delegation,
    build_dashboard,
    counts_by_convening,
    cumulative_chart,
    daily_counts,
)
from tests.factories import make_convening, make_delegation, make_question, make_registration, make_ticket
from tests.racing import race

UTC = timezone.utc
TORONTO = ZoneInfo("America/Toronto")


def settings(**changes) -> dict:
    data = dict(
        name="Summit", slug="summit", timezone="America/Toronto", starts_on=date(2025, 5, 5),
        ends_on=date(2025, 5, 6), registration_opens_at=datetime(2025, 3, 1, 9, 0),
        registration_closes_at=datetime(2025, 3, 20, 9, 0), currency="cad", capacity=None,
        reference_prefix="sum", published=True, waitlist_enabled=True,
    )
    data.update(changes)
    return data


# -- pure helpers ------------------------------------------------------------------------------------

def test_local_times_become_utc_with_the_offset_of_their_own_date():
    assert service.local_to_utc(datetime(2025, 3, 1, 9, 0), TORONTO) == datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    assert service.local_to_utc(datetime(2025, 3, 20, 9, 0), TORONTO) == datetime(2025, 3, 20, 13, 0, tzinfo=UTC)


def test_a_local_time_skipped_by_spring_forward_is_refused():
    with pytest.raises(ConveneError) as caught:
        service.local_to_utc(datetime(2025, 3, 9, 2, 30), TORONTO, field="registration_opens_at")
    assert caught.value.code == "local_time_missing" and caught.value.field == "registration_opens_at"


def test_a_repeated_autumn_local_time_is_read_as_its_first_occurrence():
    assert service.local_to_utc(datetime(2025, 11, 2, 1, 30), TORONTO) == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)


def test_aware_times_pass_through_as_utc():
    instant = datetime(2025, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert service.local_to_utc(instant, TORONTO) == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_utc_to_local_is_the_inverse_for_the_form():
    assert service.utc_to_local(datetime(2025, 3, 20, 13, 0, tzinfo=UTC), TORONTO) == datetime(2025, 3, 20, 9, 0)
    assert service.utc_to_local(None, TORONTO) is None


@pytest.mark.parametrize(("name", "canonical"), [
    ("America/Toronto", "America/Toronto"), (" europe/berlin ", "Europe/Berlin"), ("UTC", "UTC"),
    ("Mars/Base", None), ("", None), ("../../etc/passwd", None), ("localtime", None),
])
def test_time_zones_are_checked_against_the_iana_list(name, canonical):
    assert service.canonical_zone(name) == canonical


@pytest.mark.parametrize(("typed", "cents"), [
    ("150", 15000), ("149.99", 14999), ("0.5", 50), (".75", 75), ("10.50", 1050), ("10.500", 1050), ("", 0),
    (None, 0), (Decimal("12.34"), 1234), (7, 700),
])
def test_prices_typed_as_decimals_become_cents(typed, cents):
    assert service.price_to_cents(typed) == cents


@pytest.mark.parametrize(("typed", "code"), [
    ("-1", "price_negative"), ("-0.01", "price_negative"), ("1.999", "price_too_precise"),
    ("0.001", "price_too_precise"), ("abc", "price_invalid"), ("1,50", "price_invalid"), ("1e2", "price_invalid"),
    ("NaN", "price_invalid"), ("$10", "price_invalid"), ("21474837", "price_too_large"),
])
def test_bad_prices_are_refused_with_a_reason(typed, code):
    with pytest.raises(ConveneError) as caught:
        service.price_to_cents(typed)
    assert caught.value.code == code and caught.value.field == "price_cents"


def test_cents_show_back_as_a_decimal():
    assert [service.cents_to_price(c) for c in (0, 5, 14999, None)] == ["0.00", "0.05", "149.99", ""]


def test_choices_come_one_per_line_without_blanks():
    assert service.parse_choices(" A \r\n\r\nB\n  \nC") == ["A", "B", "C"]
    assert service.parse_choices(["x ", "", " y"]) == ["x", "y"]


def test_all_setting_problems_are_reported_together():
    with pytest.raises(ConveneError) as caught:
        service.clean_convening(settings(slug="Bad Slug", timezone="Nowhere", ends_on=date(2025, 5, 1),
                                         currency="dollars", capacity=-3, reference_prefix="toolong"))
    fields = [problem.field for problem in caught.value.details["problems"]]
    assert fields == ["slug", "timezone", "ends_on", "currency", "reference_prefix", "capacity"]


# -- the chart ---------------------------------------------------------------------------------------

def test_chart_without_registrations_has_axes_and_no_line():
    chart = cumulative_chart({})
    assert chart.empty and chart.points == [] and chart.polyline == ""
    assert chart.y_labels == [(chart.bottom, "0")]
    assert chart.description == "No registrations yet."


def test_chart_with_one_day_puts_one_point_in_the_middle_at_the_top():
    chart = cumulative_chart({date(2025, 3, 1): 4})
    assert chart.points == [((chart.left + chart.right) / 2, chart.top)]
    assert chart.x_labels == [((chart.left + chart.right) / 2, "01 Mar")]
    assert chart.total == 4 and "4 registrations on 01 Mar 2025" in chart.description


def test_chart_is_cumulative_and_flat_on_days_without_registrations():
    chart = cumulative_chart({date(2025, 3, 1): 1, date(2025, 3, 3): 2, date(2025, 3, 5): 1}, width=440, height=236)
    # plot area: x 48..424 (4 days → 94 per day), y 16..200 (4 registrations → 46 per registration)
    assert chart.points == [(48.0, 154.0), (142.0, 154.0), (236.0, 62.0), (330.0, 62.0), (424.0, 16.0)]
    assert chart.polyline == "48,154 142,154 236,62 330,62 424,16"
    assert [label for _, label in chart.x_labels] == ["01 Mar", "03 Mar", "05 Mar"]
    assert chart.y_labels == [(200.0, "0"), (108.0, "2"), (16.0, "4")]


def test_chart_runs_on_flat_until_the_day_asked():
    chart = cumulative_chart({date(2025, 3, 1): 2}, until=date(2025, 3, 3))
    assert [y for _, y in chart.points] == [chart.top] * 3
    assert chart.x_labels[-1][1] == "03 Mar"


def test_days_are_counted_in_the_convenings_zone():
    instants = [datetime(2025, 3, 10, 3, 0, tzinfo=UTC), datetime(2025, 3, 10, 5, 0, tzinfo=UTC)]
    # 03:00 UTC is still 9 March in Toronto (23:00 EDT); 05:00 UTC is 10 March.
    assert daily_counts(instants, TORONTO) == {date(2025, 3, 9): 1, date(2025, 3, 10): 1}


# -- convenings --------------------------------------------------------------------------------------

def test_create_convening_normalizes_and_stores_the_window_in_utc(app):
    convening = service.create_convening(settings())
    stored = db.session.get(Convening, convening.id)
    assert (stored.currency, stored.reference_prefix) == ("CAD", "SUM")
    assert stored.registration_opens_at == datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    assert stored.registration_closes_at == datetime(2025, 3, 20, 13, 0, tzinfo=UTC)


def test_a_slug_can_belong_to_one_convening_only(app):
    service.create_convening(settings())
    with pytest.raises(ConveneError) as caught:
        service.create_convening(settings(name="Other"))
    assert (caught.value.code, caught.value.field) == ("slug_taken", "slug")


def test_update_keeps_fields_not_given_and_reads_new_times_in_the_new_zone(app):
    convening = service.create_convening(settings())
    service.update_convening(convening.id, {"timezone": "Europe/Berlin",
                                            "registration_opens_at": datetime(2025, 3, 1, 9, 0)})
    db.session.expire_all()
    stored = db.session.get(Convening, convening.id)
    assert stored.name == "Summit" and stored.timezone == "Europe/Berlin"
    assert stored.registration_opens_at == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert stored.registration_closes_at == datetime(2025, 3, 20, 13, 0, tzinfo=UTC)  # unchanged instant


def test_a_refused_update_changes_nothing(app):
    convening = service.create_convening(settings())
    with pytest.raises(ConveneError):
        service.update_convening(convening.id, {"name": "New", "registration_closes_at": datetime(2025, 2, 1, 9, 0)})
    db.session.expire_all()
    assert db.session.get(Convening, convening.id).name == "Summit"


def test_raising_capacity_offers_seats_in_waitlist_order_and_lowering_does_not(app, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1)
    first = make_registration(convening, ticket, 2, status=Status.WAITLISTED)
    second = make_registration(convening, ticket, 3, status=Status.WAITLISTED)
    service.update_convening(convening.id, {"capacity": 0})
    db.session.expire_all()
    assert db.session.get(Registration, first.id).status == Status.WAITLISTED
    service.update_convening(convening.id, {"capacity": 2})
    db.session.expire_all()
    assert db.session.get(Registration, first.id).status == Status.OFFERED
    assert db.session.get(Registration, second.id).status == Status.WAITLISTED
    service.update_convening(convening.id, {"capacity": None})
    db.session.expire_all()
    assert db.session.get(Registration, second.id).status == Status.OFFERED


def test_updating_a_missing_convening_is_not_found(app):
    with pytest.raises(ConveneError) as caught:
        service.update_convening(999, {"name": "x"})
    assert caught.value.status_code == 404


# -- ticket types ------------------------------------------------------------------------------------

def test_ticket_types_go_to_the_end_and_keep_their_place_when_edited(app):
    convening = make_convening(timezone="Europe/Berlin")
    first = service.create_ticket_type(convening.id, {"name": "Delegate", "price_cents": 0})
    second = service.create_ticket_type(convening.id, {
        "name": "Speaker", "price_cents": 2500, "sales_start_at": datetime(2025, 6, 1, 12, 0)})
    service.update_ticket_type(second.id, {"description": "For speakers"})
    db.session.expire_all()
    first, second = db.session.get(TicketType, first.id), db.session.get(TicketType, second.id)
    assert (first.position, second.position) == (0, 1)
    assert second.sales_start_at == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)
    assert (second.description, second.price_cents) == ("For speakers", 2500)


def test_ticket_rules_are_checked(app):
    convening = make_convening()
    with pytest.raises(ConveneError) as caught:
        service.create_ticket_type(convening.id, {
            "name": "", "price_cents": -1, "capacity": -2,
            "sales_start_at": datetime(2025, 1, 2), "sales_end_at": datetime(2025, 1, 1),
        })
    assert [p.field for p in caught.value.details["problems"]] == ["name", "price_cents", "capacity", "sales_end_at"]
    assert db.session.execute(sa.select(TicketType)).first() is None


def test_deleting_a_ticket_type_is_refused_once_anyone_registered_with_it(app):
    convening = make_convening()
    used, unused = make_ticket(convening), make_ticket(convening)
    make_registration(convening, used, 1, status=Status.CANCELLED)
    with pytest.raises(ConveneError) as caught:
        service.delete_ticket_type(used.id)
    assert caught.value.code == "ticket_has_registrations"
    service.delete_ticket_type(unused.id)
    db.session.expire_all()
    assert db.session.get(TicketType, used.id) is not None and db.session.get(TicketType, unused.id) is None


def test_raising_a_ticket_capacity_offers_its_seats(app):
    convening = make_convening()
    ticket = make_ticket(convening, capacity=1)
    make_registration(convening, ticket, 1)
    waiting = make_registration(convening, ticket, 2, status=Status.WAITLISTED)
    service.update_ticket_type(ticket.id, {"capacity": 2})
    db.session.expire_all()
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED


# -- questions ---------------------------------------------------------------------------------------

def ordered_labels(convening_id: int) -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(
        sa.select(Question.label).where(Question.convening_id == convening_id).order_by(Question.position, Question.id)
    ).scalars())


def test_questions_are_saved_at_the_end_with_clean_choices(app):
    convening = make_convening()
    service.save_question(convening.id, {"label": "First", "kind": "yes_no", "choices": "ignored\nlines"})
    question = service.save_question(convening.id, {"label": "Track", "kind": "multiple_choice",
                                                    "choices": "A\n B \n"})
    stored = db.session.get(Question, question.id)
    assert stored.choices == ["A", "B"] and stored.position == 1
    assert db.session.execute(sa.select(Question.choices).where(Question.label == "First")).scalar_one() == []
    assert ordered_labels(convening.id) == ["First", "Track"]


@pytest.mark.parametrize(("data", "code"), [
    ({"label": "Q", "kind": "single_choice", "choices": "A"}, "choices_needed"),
    ({"label": "Q", "kind": "single_choice", "choices": "A\na"}, "choices_duplicate"),
    ({"label": "Q", "kind": "essay"}, "question_kind_invalid"),
    ({"label": " ", "kind": "short_text"}, "label_required"),
])
def test_bad_questions_are_refused(app, data, code):
    convening = make_convening()
    with pytest.raises(ConveneError) as caught:
        service.save_question(convening.id, data)
    assert caught.value.code == code
    assert ordered_labels(convening.id) == []


def test_an_answered_question_keeps_its_kind(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    question = make_question(convening, "Track", kind="single_choice", choices=["A", "B"])
    registration = make_registration(convening, ticket, 1)
    db.session.add(Answer(registration_id=registration.id, question_id=question.id, value="A"))
    db.session.commit()
    with pytest.raises(ConveneError) as caught:
        service.save_question(convening.id, {"label": "Track", "kind": "short_text"}, question_id=question.id)
    assert caught.value.field == "kind"
    service.save_question(convening.id, {"label": "Which track?", "kind": "single_choice", "choices": "A\nB\nC"},
                          question_id=question.id)
    assert ordered_labels(convening.id) == ["Which track?"]


def test_a_question_of_another_convening_cannot_be_saved_through_this_one(app):
    mine, other = make_convening(), make_convening()
    question = make_question(other, "Theirs")
    with pytest.raises(ConveneError) as caught:
        service.save_question(mine.id, {"label": "Mine", "kind": "short_text"}, question_id=question.id)
    assert caught.value.status_code == 404


def test_moving_questions_swaps_neighbours_even_when_positions_were_equal(app):
    convening = make_convening()
    a, b, c = (make_question(convening, label) for label in "abc")
    db.session.execute(sa.update(Question).values(position=0))  # as older data might have them
    db.session.commit()
    service.move_question(c.id, "up")
    assert ordered_labels(convening.id) == ["a", "c", "b"]
    service.move_question(a.id, "up")  # already first: nothing happens
    service.move_question(b.id, "down")  # already last
    assert ordered_labels(convening.id) == ["a", "c", "b"]
    with pytest.raises(ConveneError):
        service.move_question(a.id, "sideways")


def test_deleting_a_question_deletes_its_answers(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    question = make_question(convening, "Why?")
    registration = make_registration(convening, ticket, 1)
    db.session.add(Answer(registration_id=registration.id, question_id=question.id, value="Because"))
    db.session.commit()
    service.delete_question(question.id)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Answer)).scalar_one() == 0


# -- delegations -------------------------------------------------------------------------------------

def test_delegation_names_are_unique_per_convening_ignoring_case(app):
    convening = make_convening()
    ohio = service.save_delegation(convening.id, {"name": " Ohio ", "contact_email": "Lead@Example.org"})
    assert (ohio.name, ohio.contact_email) == ("Ohio", "lead@example.org")
    with pytest.raises(ConveneError) as caught:
        service.save_delegation(convening.id, {"name": "OHIO"})
    assert (caught.value.code, caught.value.field) == ("delegation_exists", "name")
    service.save_delegation(convening.id, {"name": "ohio"}, delegation_id=ohio.id)  # renaming itself is fine
    service.save_delegation(make_convening().id, {"name": "Ohio"})
    assert sorted(db.session.execute(sa.select(Delegation.name)).scalars()) == ["Ohio", "ohio"]


@pytest.mark.parametrize("typed", ["Dayton OH", "dayton, oh.", "  DAYTON   OH ", "Dáyton – OH"])
def test_a_delegation_name_differing_only_in_punctuation_or_accents_is_the_same_one(app, typed):
    convening = make_convening()
    dayton = service.save_delegation(convening.id, {"name": "Dayton, OH"})
    with pytest.raises(ConveneError) as caught:
        service.save_delegation(convening.id, {"name": typed})
    assert (caught.value.code, caught.value.field) == ("delegation_exists", "name")
    service.save_delegation(convening.id, {"name": typed}, delegation_id=dayton.id)  # respelling itself is fine
    assert db.session.execute(sa.select(sa.func.count()).select_from(Delegation)).scalar() == 1


def test_deleting_a_delegation_keeps_its_registrations(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    delegation = make_delegation(convening)
    registration = make_registration(convening, ticket, 1, delegation_id=delegation.id)
    service.delete_delegation(delegation.id)
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).delegation_id is None


# -- reports -----------------------------------------------------------------------------------------

def test_counts_by_convening_and_by_delegation_come_from_grouped_queries(app):
    first, second = make_convening(), make_convening()
    ticket1, ticket2 = make_ticket(first), make_ticket(second)
    ohio = make_delegation(first, "Ohio")
    make_registration(first, ticket1, 1, delegation_id=ohio.id)
    make_registration(first, ticket1, 2, status=Status.WAITLISTED, delegation_id=ohio.id)
    make_registration(first, ticket1, 3, status=Status.CANCELLED, delegation_id=ohio.id)
    make_registration(second, ticket2, 4)
    counts = counts_by_convening()
    assert (counts[first.id]["confirmed"], counts[first.id]["waitlisted"], counts[first.id]["cancelled"]) == (1, 1, 1)
    assert counts[second.id]["confirmed"] == 1
    assert active_counts_by_delegation(first.id) == {ohio.id: 2}


def test_dashboard_numbers(app):
    convening = make_convening(capacity=5, timezone="America/Toronto", ends_on=date(2025, 5, 6))
    speaker = make_ticket(convening, name="Speaker", capacity=2)
    delegate = make_ticket(convening, name="Delegate", capacity=10)
    ohio = make_delegation(convening, "Ohio")
    make_registration(convening, speaker, 1, role="speaker", dietary_needs=["vegan", "vegan", "unknown"],
                      created_at=datetime(2025, 3, 10, 3, 0, tzinfo=UTC))
    make_registration(convening, delegate, 2, delegation_id=ohio.id, accessibility_needs=["step_free"],
                      accessibility_notes="Ramp please", created_at=datetime(2025, 3, 10, 5, 0, tzinfo=UTC))
    make_registration(convening, delegate, 3, status=Status.WAITLISTED, dietary_notes="No nuts",
                      created_at=datetime(2025, 3, 12, 12, 0, tzinfo=UTC))
    make_registration(convening, delegate, 4, status=Status.CANCELLED, dietary_needs=["halal"],
                      created_at=datetime(2025, 3, 12, 12, 0, tzinfo=UTC))

    report = build_dashboard(convening, now=datetime(2025, 3, 13, 12, 0, tzinfo=UTC))

    assert report.by_status == {"confirmed": 2, "offered": 0, "waitlisted": 1, "lapsed": 0, "cancelled": 1,
                                "pending": 0, "expired": 0}
    assert [(t.name, t.held, t.left, t.by_status["cancelled"]) for t in report.tickets] == [
        ("Speaker", 1, 1, 0), ("Delegate", 1, 3, 1)]
    assert (report.held, report.seats_left, report.waitlist, report.active) == (2, 3, 1, 3)
    assert report.dietary["vegan"] == 1 and report.dietary["halal"] == 0 and "unknown" not in report.dietary
    assert (report.dietary_notes, report.accessibility["step_free"], report.accessibility_notes) == (1, 1, 1)
    assert report.roles["speaker"] == 1 and report.roles["delegate"] == 2
    assert (report.delegations, report.no_delegation) == ([("Ohio", 1)], 2)
    # Days in Toronto: 9 March (03:00 UTC), 10 March, 12 March; the line runs flat to "today", 13 March.
    chart = report.chart
    assert [label for _, label in chart.x_labels] == ["09 Mar", "11 Mar", "13 Mar"]
    expected = [round(chart.bottom - (chart.bottom - chart.top) * n / 3, 1) for n in (1, 2, 2, 3, 3)]
    assert [y for _, y in chart.points] == expected


def test_dashboard_days_follow_a_half_hour_time_zone_to_the_minute(app):
    # Kolkata is UTC+5:30: 18:29 UTC is 23:59 on the 10th there, 18:31 UTC is 00:01 on the 11th.
    convening = make_convening(timezone="Asia/Kolkata")
    ticket = make_ticket(convening)
    for n, minute in enumerate((29, 31, 31)):
        make_registration(convening, ticket, n, created_at=datetime(2025, 3, 10, 18, minute, tzinfo=UTC),
                          dietary_needs=["vegan", "vegan"] if n else [])
    report = build_dashboard(convening, now=datetime(2025, 3, 11, 12, 0, tzinfo=UTC))
    assert [label for _, label in report.chart.x_labels][0] == "10 Mar"
    chart = report.chart
    assert [y for _, y in chart.points] == [round(chart.bottom - (chart.bottom - chart.top) * n / 3, 1) for n in (1, 3)]
    assert report.dietary["vegan"] == 2 and report.active == 3  # a need listed twice counts once per person


def test_overall_seats_left_sums_ticket_limits_when_every_ticket_has_one(app):
    convening = make_convening(capacity=None)
    a, _ = make_ticket(convening, capacity=3), make_ticket(convening, capacity=4)
    make_registration(convening, a, 1)
    assert build_dashboard(convening).seats_left == 6
    make_ticket(convening, capacity=None)
    db.session.expire_all()
    assert build_dashboard(db.session.get(Convening, convening.id)).seats_left is None


def test_of_eight_organizers_adding_the_same_delegation_at_once_exactly_one_succeeds(app, backend):
    convening_id = make_convening().id  # objects of this session stay in this thread

    def save(n: int):
        def action() -> str:
            service.save_delegation(convening_id, {"name": ["Ohio", "OHIO", "ohio", " Ohio "][n % 4]})
            return "saved"
        return action

    outcomes = race(app, [save(n) for n in range(8)])
    assert sorted(outcomes) == ["delegation_exists"] * 7 + ["saved"]
    assert db.session.execute(sa.select(sa.func.count()).select_from(Delegation)).scalar_one() == 1
