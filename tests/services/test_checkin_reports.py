"""Check-in numbers: live per list after check-ins and an undo, the arrivals chart, and the attendance report."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Checkin
from convene.services import checkin, checkin_lists, checkin_reports
from convene.services.checkin_reports import arrivals_chart
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, make_user

TORONTO = ZoneInfo("America/Toronto")


def at(hour: int, minute: int) -> datetime:
    return datetime(2027, 6, 1, hour, minute, tzinfo=TORONTO).astimezone(timezone.utc)


# -- the chart, pure --------------------------------------------------------------------------------

def test_the_chart_climbs_by_each_arrival_towards_the_expected_line():
    arrivals = [at(8, 1), at(8, 2), at(8, 14), at(8, 31)]
    chart = arrivals_chart(arrivals, 10, TORONTO, now=at(8, 31))
    ys = [y for _, y in chart.points]
    assert ys == sorted(ys, reverse=True)  # never goes down (SVG's y grows downwards)
    assert chart.points[0][1] < chart.bottom  # the first step already holds the 08:01 arrival
    bottom, top = chart.bottom, chart.top
    assert chart.points[-1][1] == round(bottom - (bottom - top) * 4 / 10, 1)
    assert chart.target_y == top and chart.expected == 10
    assert chart.x_labels[0][1] == "08:01" and chart.x_labels[-1][1] == "08:31"  # a step per minute
    assert "4 of 10 expected arrived, the first at 08:01 and the latest at 08:31" in chart.description


def test_the_chart_runs_on_to_now_while_arrivals_are_recent_and_is_empty_before_anyone():
    chart = arrivals_chart([at(8, 0)], 2, TORONTO, now=at(9, 0))
    assert chart.x_labels[-1][1] == "09:00"
    long_after = arrivals_chart([at(8, 0)], 2, TORONTO, now=at(8, 0) + timedelta(days=3))
    assert long_after.x_labels[0][1] == "08:00" and len(long_after.points) == 2  # one step, not three days
    empty = arrivals_chart([], 5, TORONTO)
    assert empty.empty and empty.description == "Nobody has arrived yet; 5 expected."
    assert len(arrivals_chart([at(6, 0), at(22, 0)], 2, TORONTO).points) <= checkin_reports.MAX_POINTS + 1


# -- live numbers -----------------------------------------------------------------------------------

@pytest.fixture
def scene(app):
    convening = make_convening()
    delegate, partner = make_ticket(convening, name="Delegate"), make_ticket(convening, name="Partner")
    maryland, ohio = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    people = [
        make_registration(convening, delegate, 1, delegation_id=maryland.id, phone="+1 410 555 0101",
                          organization="=HYPERLINK(\"http://evil\")"),
        make_registration(convening, delegate, 2, delegation_id=maryland.id, organization="City of Dayton"),
        make_registration(convening, partner, 3, delegation_id=ohio.id, organization="city of  dayton"),
        make_registration(convening, partner, 4, organization=""),
    ]
    desk = make_user("desk@example.org", role="desk", convening=convening)
    return convening, people, desk


def test_live_numbers_count_arrivals_by_delegation_and_ticket_and_forget_an_undone_check_in(scene):
    convening, people, desk = scene
    entrance = checkin.main_list(convening.id)
    answers = [checkin.check_in(entrance, p.checkin_token, by=desk, device="d", scan_id=str(n))
               for n, p in enumerate(people[:3])]
    checkin.check_in(entrance, people[0].checkin_token, by=desk, device="d", scan_id="again")  # counted once
    checkin.revert_check_in(answers[2].checkin_id, by=desk)

    live = checkin_reports.live_numbers(entrance)
    assert (live.arrived, live.arrived_expected, live.expected, live.waiting, live.percent) == (2, 2, 4, 2, 50)
    assert [(r.label, r.arrived, r.expected) for r in live.by_delegation] == [
        ("Maryland", 2, 2), ("Ohio", 0, 1), ("No delegation", 0, 1)]
    assert [(r.label, r.arrived, r.expected) for r in live.by_ticket] == [("Delegate", 2, 2), ("Partner", 0, 2)]
    assert live.chart.total == 2
    assert [r.id for r in checkin_reports.not_arrived(entrance)] == [people[2].id, people[3].id]

    checkin.check_in(entrance, people[2].checkin_token, by=desk, device="d", scan_id="back")
    assert checkin_reports.live_numbers(entrance).arrived_expected == 3


def test_someone_checked_in_who_leaves_the_list_is_not_counted_as_expected_arriving(scene):
    convening, people, desk = scene
    dinner = checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Dinner"})
    checkin.check_in(dinner, people[2].checkin_token, by=desk, device="d", scan_id="1")
    checkin_lists.update_checkin_list(dinner.id, {"name": "Dinner", "ticket_type_ids": [people[0].ticket_type_id]})
    live = checkin_reports.live_numbers(dinner)
    assert (live.arrived, live.arrived_expected, live.expected) == (1, 0, 2)


# -- after the event --------------------------------------------------------------------------------

def rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_the_attendance_csv_has_each_persons_check_in_time_per_list_in_local_time_and_safe_cells(scene):
    convening, people, desk = scene
    entrance = checkin.main_list(convening.id)
    dinner = checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Dinner"})
    checkin.check_in(entrance, people[0].checkin_token, by=desk, device="d", scan_id="1")
    checkin.check_in(dinner, people[0].checkin_token, by=desk, device="d", scan_id="2")
    checkin.check_in(entrance, people[1].checkin_token, by=desk, device="d", scan_id="3")
    when = db.session.scalar(sa.select(Checkin.checked_in_at).where(Checkin.registration_id == people[0].id,
                                                                    Checkin.list_id == entrance.id))

    table = rows(checkin_reports.attendance_csv(convening))
    header, body = table[0], {row[0]: row for row in table[1:]}
    assert header[-3:] == ["Lists checked in", "Checked in: Entrance", "Checked in: Dinner"]
    first = body[people[0].reference]
    assert first[3] == "'=HYPERLINK(\"http://evil\")"  # a formula is shown as text
    assert first[-3:] == ["2", convening.local(when).strftime("%Y-%m-%d %H:%M"), first[-1]] and first[-1]
    assert body[people[1].reference][-3] == "1" and body[people[1].reference][-1] == ""
    assert body[people[3].reference][-3:] == ["0", "", ""]

    no_shows = rows(checkin_reports.no_shows_csv(entrance))
    assert no_shows[0][:3] == ["List", "Reference", "Given name"]
    assert [row[1] for row in no_shows[1:]] == [people[2].reference, people[3].reference]


def test_the_attendance_summary_groups_by_delegation_and_organization_and_reads_back_from_its_pdf(scene):
    from pypdf import PdfReader

    convening, people, desk = scene
    entrance = checkin.main_list(convening.id)
    for n, person in enumerate(people[:3]):
        checkin.check_in(entrance, person.checkin_token, by=desk, device="d", scan_id=str(n))

    summary = checkin_reports.attendance_summary(convening)
    assert (summary.entrance.arrived, summary.entrance.expected) == (3, 4)
    assert [(r.label, r.arrived, r.expected) for r in summary.by_delegation] == [
        ("Maryland", 2, 2), ("Ohio", 1, 1), ("No delegation", 0, 1)]
    organizations = {r.label: (r.arrived, r.expected) for r in summary.by_organization}
    assert organizations["City of Dayton"] == (2, 2)  # one organization however it was typed
    assert organizations["No organization given"] == (0, 1)
    assert (summary.organizations_represented, summary.delegations_represented) == (2, 2)

    pdf = checkin_reports.attendance_summary_pdf(convening)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert f"Attendance: {convening.name}" in text
    assert "3 of 4 confirmed participants came (75%), from 2 organizations and 2 delegations" in " ".join(text.split())
    assert "Maryland" in text and "City of Dayton" in text and "Entrance" in text
