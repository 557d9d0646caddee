"""Check-in numbers: live, per list, for the desk lead; and after the event, attendance for the funder's report.

Live numbers take a handful of narrow queries per refresh whatever the size of the list: who the list
expects (`checkin.members_query`) and its active check-ins, counted in Python by delegation and ticket
type. Arrived counts every active check-in on the list; expected counts the confirmed people the
list is for now. The chart's geometry is a pure function of check-in instants, tested without a
database. Everything reads; nothing here writes.
"""
from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from convene.extensions import db
from convene.models import Checkin, CheckinList, Convening, Delegation, ListKind, Registration, TicketType, utcnow
from convene.models.registrations import ROLE_LABELS
from convene.services import checkin
from convene.services.exports import BOM, csv_safe
from convene.services.reports import Chart
from convene.text import search_key

NO_DELEGATION = "No delegation"
NO_ORGANIZATION = "No organization given"
BUCKETS_MINUTES = (1, 5, 10, 15, 30, 60, 120, 240, 720, 1440)
MAX_POINTS = 96
LIVE_TAIL = timedelta(hours=12)  # the chart runs on to now while the last arrival is this recent


# ---------------------------------------------------------------- the chart


@dataclass(frozen=True)
class ArrivalsChart(Chart):
    """A cumulative step line of arrivals, with a dashed line where everyone expected would be."""

    target_y: float | None = None
    expected: int = 0


def _bucket_minutes(span: timedelta) -> int:
    minutes = span.total_seconds() / 60
    return next((size for size in BUCKETS_MINUTES if minutes / size <= MAX_POINTS), BUCKETS_MINUTES[-1])


def arrivals_chart(instants: Iterable[datetime], expected: int, tz: ZoneInfo, *, now: datetime | None = None,
                   width: int = 640, height: int = 240, title: str = "Arrivals over time") -> ArrivalsChart:
    """Running total of arrivals from the first one to the last (or to now, while arrivals are recent).

    Times are cut into equal steps (1 minute to 1 day, at most MAX_POINTS of them); the y axis
    reaches the larger of expected and arrived, so a list filling up climbs towards its target line.
    """
    left, top, right, bottom = 48.0, 16.0, width - 16.0, height - 36.0
    plot_w, plot_h = right - left, bottom - top
    times = sorted(instants)
    top_value = max(expected, len(times), 1)

    def y_at(value: int) -> float:
        return round(bottom - plot_h * value / top_value, 1)

    target = y_at(expected) if expected else None
    y_labels = [(y_at(v), str(v)) for v in sorted({0, top_value // 2, top_value})]
    if not times:
        return ArrivalsChart(width, height, left, top, right, bottom, [], [], y_labels, 0, title,
                             f"Nobody has arrived yet; {expected} expected.", target, expected)
    now = now or utcnow()
    first, last = times[0], times[-1]
    end = now if last <= now <= last + LIVE_TAIL else last
    minutes = _bucket_minutes(end - first)
    step = timedelta(minutes=minutes)
    # Steps start on a round time of the convening's clock (08:00, 08:15...), so the labels read well.
    start = first.astimezone(tz).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % minutes if minutes < 60 else start.minute)
    steps = max(1, math.ceil((end - start) / step))
    points, index = [], 0
    for n in range(steps + 1):
        edge = start + step * n
        while index < len(times) and times[index] <= edge:
            index += 1
        points.append(index)
    points[-1] = len(times)  # the last arrival always counts, whatever the rounding at the edge

    def x_at(n: int) -> float:
        return round(left + plot_w * n / steps, 1)

    xy = [(x_at(n), y_at(v)) for n, v in enumerate(points)]
    span_days = (end - start) >= timedelta(days=1)
    fmt = "%d %b %H:%M" if span_days else "%H:%M"
    label_steps = sorted({0, steps // 2, steps})
    x_labels = [(x_at(n), (start + step * n).astimezone(tz).strftime(fmt)) for n in label_steps]
    first_local, last_local = first.astimezone(tz), last.astimezone(tz)
    description = (f"{len(times)} of {expected} expected arrived, the first at {first_local:%H:%M}"
                   f" and the latest at {last_local:{fmt}}, counted every {_step_text(step)}.")
    return ArrivalsChart(width, height, left, top, right, bottom, xy, x_labels, y_labels, len(times), title,
                         description, target, expected)


def _step_text(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return "day" if minutes == 1440 else f"{minutes // 1440} days"
    if minutes % 60 == 0:
        return "hour" if minutes == 60 else f"{minutes // 60} hours"
    return "minute" if minutes == 1 else f"{minutes} minutes"


# ---------------------------------------------------------------- live numbers


@dataclass(frozen=True)
class Row:
    """Arrived and expected for one delegation, ticket type, organization or list."""

    label: str
    arrived: int
    expected: int

    @property
    def percent(self) -> int:
        return round(100 * self.arrived / self.expected) if self.expected else 0

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.arrived)


@dataclass(frozen=True)
class LiveNumbers:
    list_id: int
    list_name: str
    arrived: int
    expected: int
    arrived_expected: int  # arrivals the list still expects (not counting people it no longer does)
    by_delegation: list[Row]
    by_ticket: list[Row]
    chart: ArrivalsChart
    at: datetime

    @property
    def percent(self) -> int:
        return round(100 * self.arrived_expected / self.expected) if self.expected else 0

    @property
    def waiting(self) -> int:
        return self.expected - self.arrived_expected


def _rows(expected: Counter, arrived: Counter, names: dict, empty_label: str) -> list[Row]:
    keys = set(expected) | set(arrived)
    rows = [Row(names.get(k, empty_label) if k is not None else empty_label, arrived.get(k, 0), expected.get(k, 0))
            for k in keys]
    return sorted(rows, key=lambda r: (r.label == empty_label, -r.expected, search_key(r.label)))


def _expected_rows(checkin_list: CheckinList) -> list[tuple[int, int | None, int]]:
    """(registration id, delegation id, ticket type id) of everyone the list expects."""
    members = checkin.members_query(checkin_list).subquery()
    return db.session.execute(
        sa.select(Registration.id, Registration.delegation_id, Registration.ticket_type_id)
        .where(Registration.id.in_(sa.select(members.c.id)))
    ).all()


def _arrivals(checkin_list: CheckinList) -> list[tuple[int, int | None, int, datetime]]:
    """(registration id, delegation id, ticket type id, when) of every active check-in on the list."""
    return db.session.execute(
        sa.select(Checkin.registration_id, Registration.delegation_id, Registration.ticket_type_id,
                  Checkin.checked_in_at)
        .join(Registration, Registration.id == Checkin.registration_id)
        .where(Checkin.list_id == checkin_list.id, Checkin.reverted_at.is_(None))
    ).all()


def _names(convening_id: int) -> tuple[dict[int, str], dict[int, str]]:
    delegations = dict(db.session.execute(
        sa.select(Delegation.id, Delegation.name).where(Delegation.convening_id == convening_id)).all())
    tickets = dict(db.session.execute(
        sa.select(TicketType.id, TicketType.name).where(TicketType.convening_id == convening_id)).all())
    return delegations, tickets


def live_numbers(checkin_list: CheckinList, *, now: datetime | None = None) -> LiveNumbers:
    """Arrived / expected on one list, by delegation and ticket type, and arrivals over time."""
    convening = checkin_list.convening
    expected_rows = _expected_rows(checkin_list)
    arrivals = _arrivals(checkin_list)
    expected_ids = {row[0] for row in expected_rows}
    delegations, tickets = _names(convening.id)
    arrived_by_delegation = Counter(row[1] for row in arrivals)
    arrived_by_ticket = Counter(row[2] for row in arrivals)
    return LiveNumbers(
        list_id=checkin_list.id, list_name=checkin_list.name, arrived=len(arrivals), expected=len(expected_rows),
        arrived_expected=sum(1 for row in arrivals if row[0] in expected_ids),
        by_delegation=_rows(Counter(row[1] for row in expected_rows), arrived_by_delegation, delegations,
                            NO_DELEGATION),
        by_ticket=_rows(Counter(row[2] for row in expected_rows), arrived_by_ticket, tickets, "Other"),
        chart=arrivals_chart((row[3] for row in arrivals), len(expected_rows), convening.tz, now=now,
                             title=f"Arrivals on {checkin_list.name} ({convening.timezone})"),
        at=now or utcnow(),
    )


def not_arrived(checkin_list: CheckinList) -> list[Registration]:
    """Everyone the list expects who has no active check-in on it, by family name (phones for the desk lead)."""
    arrived = sa.select(Checkin.registration_id).where(Checkin.list_id == checkin_list.id,
                                                       Checkin.reverted_at.is_(None))
    members = checkin.members_query(checkin_list).subquery()
    return list(db.session.execute(
        sa.select(Registration)
        .where(Registration.id.in_(sa.select(members.c.id)), Registration.id.not_in(arrived))
        .options(selectinload(Registration.delegation), selectinload(Registration.ticket_type))
        .order_by(Registration.sort_key, Registration.id)
    ).scalars())


# ---------------------------------------------------------------- after the event


def _local(convening: Convening, instant: datetime | None) -> str:
    return convening.local(instant).strftime("%Y-%m-%d %H:%M") if instant else ""


ATTENDANCE_HEADERS = ("Reference", "Given name", "Family name", "Organization", "Delegation", "Ticket type", "Role",
                      "Status", "Lists checked in")


def attendance_csv(convening: Convening) -> str:
    """One row per person (everyone confirmed, and anyone checked in since): the check-in time on each list."""
    lists = checkin.lists_of(convening.id)
    times: dict[tuple[int, int], datetime] = {
        (registration_id, list_id): at for registration_id, list_id, at in db.session.execute(
            sa.select(Checkin.registration_id, Checkin.list_id, Checkin.checked_in_at)
            .join(CheckinList, CheckinList.id == Checkin.list_id)
            .where(CheckinList.convening_id == convening.id, Checkin.reverted_at.is_(None)))
    }
    checked = {registration_id for registration_id, _ in times}
    people = db.session.execute(
        sa.select(Registration)
        .where(Registration.convening_id == convening.id,
               sa.or_(Registration.status == "confirmed", Registration.id.in_(checked) if checked else sa.false()))
        .options(selectinload(Registration.delegation), selectinload(Registration.ticket_type))
        .order_by(Registration.sort_key, Registration.id)
    ).scalars()
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow([*ATTENDANCE_HEADERS, *(f"Checked in: {item.name}" for item in lists)])
    for r in people:
        cells = [_local(convening, times.get((r.id, item.id))) for item in lists]
        writer.writerow([csv_safe(value) for value in (
            r.reference, r.given_name, r.family_name, r.organization, r.delegation.name if r.delegation else "",
            r.ticket_type.name if r.ticket_type else "", ROLE_LABELS.get(r.role, r.role), r.status_enum.label,
            sum(1 for cell in cells if cell), *cells)])
    return buffer.getvalue()


NO_SHOW_HEADERS = ("List", "Reference", "Given name", "Family name", "Email", "Phone", "Organization", "Delegation",
                   "Ticket type", "Role")


def no_shows_csv(checkin_list: CheckinList) -> str:
    """Everyone a list expected who never checked in on it (a check-in undone counts as not come)."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(NO_SHOW_HEADERS)
    for r in not_arrived(checkin_list):
        writer.writerow([csv_safe(value) for value in (
            checkin_list.name, r.reference, r.given_name, r.family_name, r.email, r.phone, r.organization,
            r.delegation.name if r.delegation else "", r.ticket_type.name if r.ticket_type else "",
            ROLE_LABELS.get(r.role, r.role))])
    return buffer.getvalue()


@dataclass(frozen=True)
class AttendanceSummary:
    """The funder's report: the entrance by delegation and organization, and every list's totals."""

    convening: str
    dates: str
    venue: str
    entrance: Row
    by_delegation: list[Row]
    by_organization: list[Row]
    lists: list[tuple[int, str, Row]]  # (list id, kind label, numbers named after the list)
    made_at: str

    @property
    def delegations_represented(self) -> int:
        return sum(1 for r in self.by_delegation if r.arrived and r.label != NO_DELEGATION)

    @property
    def organizations_represented(self) -> int:
        return sum(1 for r in self.by_organization if r.arrived and r.label != NO_ORGANIZATION)


def _organization_rows(expected: list[tuple[int, str]], arrived_ids: set[int]) -> list[Row]:
    """People grouped by organization as typed, ignoring case, accents and spacing; the commonest spelling names it."""
    spellings: dict[str, Counter] = {}
    expected_count: Counter = Counter()
    arrived_count: Counter = Counter()
    for registration_id, organization in expected:
        key = search_key(organization)
        spellings.setdefault(key, Counter())[" ".join((organization or "").split())] += 1
        expected_count[key] += 1
        arrived_count[key] += registration_id in arrived_ids
    names = {key: (counts.most_common(1)[0][0] if key else NO_ORGANIZATION) for key, counts in spellings.items()}
    return _rows(expected_count, arrived_count, names, NO_ORGANIZATION)


def attendance_summary(convening: Convening, *, now: datetime | None = None) -> AttendanceSummary:
    """Who came, of who was expected at the entrance, per delegation and organization; and per list."""
    from convene.templating import date_range

    main = checkin.main_list(convening.id)
    delegations, _ = _names(convening.id)
    members = checkin.members_query(main).subquery()
    expected = db.session.execute(
        sa.select(Registration.id, Registration.delegation_id, Registration.organization)
        .where(Registration.id.in_(sa.select(members.c.id)))
    ).all()
    arrived_ids = {row[0] for row in _arrivals(main)}
    came = [row for row in expected if row[0] in arrived_ids]
    by_delegation = _rows(Counter(row[1] for row in expected), Counter(row[1] for row in came), delegations,
                          NO_DELEGATION)
    lists = []
    for item in checkin.lists_of(convening.id):
        expected_ids = {row[0] for row in _expected_rows(item)}
        came_ids = {row[0] for row in _arrivals(item)}
        lists.append((item.id, ListKind(item.kind).label, Row(item.name, len(came_ids & expected_ids),
                                                             len(expected_ids))))
    made = convening.local(now or utcnow())
    return AttendanceSummary(
        convening=convening.name, dates=date_range(convening.starts_on, convening.ends_on),
        venue=", ".join(part for part in (convening.venue, convening.city) if part),
        entrance=Row(main.name, len(came), len(expected)), by_delegation=by_delegation,
        by_organization=_organization_rows([(row[0], row[2]) for row in expected], arrived_ids),
        lists=lists, made_at=f"{made:%Y-%m-%d %H:%M} ({convening.timezone})")


def attendance_summary_pdf(convening: Convening) -> bytes:
    """The summary as a PDF (WeasyPrint, like the rosters): tagged, for reading on screen and attaching to a report."""
    from convene.printing.documents import environment, write_pdf

    summary = attendance_summary(convening)
    html = environment().get_template("attendance.html").render(summary=summary)
    return write_pdf(html, tagged=True)
