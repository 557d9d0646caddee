"""Numbers for the back office: counts per convening, the dashboard, and its registrations chart.

Each report runs a fixed handful of grouped queries whatever the number of registrations: the
database counts, and Python reads back a few rows per status, list of needs or quarter hour. The
chart geometry is a pure function of day counts, so it is tested without a database.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from convene.extensions import db
from convene.models import (
    ACCESSIBILITY_NEEDS,
    ACTIVE,
    DIETARY_NEEDS,
    Convening,
    Delegation,
    Registration,
    Role,
    Status,
    utcnow,
)
from convene.services.privacy import kept_need_counts
from convene.services.registrations import seat_usage


def _zero_statuses() -> dict[str, int]:
    return {status.value: 0 for status in Status}


def counts_by_convening() -> dict[int, dict[str, int]]:
    """Registrations per status for every convening, in one grouped query."""
    rows = db.session.execute(
        sa.select(Registration.convening_id, Registration.status, sa.func.count())
        .group_by(Registration.convening_id, Registration.status)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for convening_id, status, count in rows:
        counts.setdefault(convening_id, _zero_statuses())[status] = count
    return counts


def active_counts_by_delegation(convening_id: int) -> dict[int, int]:
    """Active registrations per delegation id, in one grouped query."""
    rows = db.session.execute(
        sa.select(Registration.delegation_id, sa.func.count())
        .where(Registration.convening_id == convening_id, Registration.status.in_(ACTIVE),
               Registration.delegation_id.is_not(None))
        .group_by(Registration.delegation_id)
    ).all()
    return {delegation_id: count for delegation_id, count in rows}


# -- the chart -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chart:
    """Geometry of a cumulative line chart in SVG user units (the template draws it)."""

    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    points: list[tuple[float, float]]
    x_labels: list[tuple[float, str]]
    y_labels: list[tuple[float, str]]
    total: int
    title: str
    description: str

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:g},{y:g}" for x, y in self.points)

    @property
    def empty(self) -> bool:
        return not self.points


def daily_counts(instants: Iterable[datetime], tz: ZoneInfo) -> dict[date, int]:
    """How many instants fall on each local day in `tz`."""
    return dict(Counter(instant.astimezone(tz).date() for instant in instants))


# Every time zone's offset is a whole number of quarter hours, so instants grouped by UTC quarter hour
# fall on one local day each.
_QUARTER = 900


def _quarter_hour(column) -> sa.ColumnElement:
    """The UTC quarter hour an instant falls in, as a whole number, computed by the database."""
    if db.session.get_bind().dialect.name == "postgresql":
        seconds = sa.func.extract("epoch", column)
    else:  # SQLite keeps UTC text; strftime('%s') reads it as UTC seconds
        seconds = sa.func.strftime("%s", column)
    return sa.cast(sa.func.floor(sa.cast(seconds, sa.Float) / _QUARTER), sa.BigInteger)


def cumulative_chart(
    day_counts: Mapping[date, int],
    *,
    until: date | None = None,
    width: int = 640,
    height: int = 240,
    title: str = "Registrations over time",
    what: str = "registrations",
) -> Chart:
    """Points of a running total per day, from the first day with a count to `until` (or the last such day).

    Days without a count repeat the running total, so the line stays flat through them. One day
    becomes one point in the middle; no days give an empty chart with its axes.
    """
    left, top, right, bottom = 48.0, 16.0, width - 16.0, height - 36.0
    plot_w, plot_h = right - left, bottom - top
    days = sorted(d for d, n in day_counts.items() if n)
    if not days:
        return Chart(width, height, left, top, right, bottom, [], [], [(bottom, "0")], 0, title, f"No {what} yet.")

    first, last = days[0], max(days[-1], until or days[-1])
    span = (last - first).days
    running, totals = 0, []
    for offset in range(span + 1):
        running += day_counts.get(first + timedelta(days=offset), 0)
        totals.append(running)
    total = totals[-1]

    def x_at(index: int) -> float:
        return round(left + (plot_w * index / span if span else plot_w / 2), 1)

    def y_at(value: int) -> float:
        return round(bottom - plot_h * value / total, 1)

    points = [(x_at(i), y_at(v)) for i, v in enumerate(totals)]
    label_days = sorted({0, span // 2, span}) if span >= 2 else sorted({0, span})
    x_labels = [(x_at(i), (first + timedelta(days=i)).strftime("%d %b")) for i in label_days]
    y_labels = [(y_at(v), str(v)) for v in sorted({0, total // 2, total})]
    if span:
        period = f"from {first:%d %b %Y} to {last:%d %b %Y}"
    else:
        period = f"on {first:%d %b %Y}"
    description = f"{total} {what} {period}, counted cumulatively by day."
    return Chart(width, height, left, top, right, bottom, points, x_labels, y_labels, total, title, description)


# -- the dashboard ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TicketRow:
    """One ticket type's registrations by status and its seats."""

    ticket_id: int
    name: str
    hidden: bool
    capacity: int | None
    by_status: dict[str, int]
    held: int
    left: int | None  # None: no limit applies


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows, as plain numbers."""

    by_status: dict[str, int]
    tickets: list[TicketRow]
    held: int
    capacity: int | None
    seats_left: int | None  # None: unlimited
    waitlist: int
    active: int
    dietary: dict[str, int]
    dietary_notes: int
    accessibility: dict[str, int]
    accessibility_notes: int
    roles: dict[str, int]
    delegations: list[tuple[str, int]]
    no_delegation: int
    chart: Chart
    # Active registrations per language they read in (the convening's languages), and interpretation asked for.
    languages: dict[str, int] = field(default_factory=dict)
    interpretation: dict[str, int] = field(default_factory=dict)
    bounced: int = 0  # active registrations whose address bounces (messages skip them)

    @property
    def status_columns(self) -> list[Status]:
        """Statuses the tables show: payment ones only once some registration has one, so free convenings
        keep a narrow table."""
        paying = self.by_status.get(Status.PENDING, 0) or self.by_status.get(Status.EXPIRED, 0)
        return [s for s in Status if paying or s not in (Status.PENDING, Status.EXPIRED)]


def build_dashboard(convening: Convening, *, now: datetime | None = None) -> Dashboard:
    """The dashboard's numbers for one convening, in four queries plus the ticket and delegation lists."""
    now = now or utcnow()
    usage = seat_usage(convening.id)
    status_rows = db.session.execute(
        sa.select(Registration.ticket_type_id, Registration.status, sa.func.count())
        .where(Registration.convening_id == convening.id)
        .group_by(Registration.ticket_type_id, Registration.status)
    ).all()
    by_status = _zero_statuses()
    by_ticket_status: dict[int, dict[str, int]] = {}
    for ticket_id, status, count in status_rows:
        by_status[status] = by_status.get(status, 0) + count
        by_ticket_status.setdefault(ticket_id, _zero_statuses())[status] = count

    tickets = [
        TicketRow(
            ticket_id=ticket.id, name=ticket.name, hidden=ticket.hidden, capacity=ticket.capacity,
            by_status=by_ticket_status.get(ticket.id, _zero_statuses()), held=usage.by_ticket.get(ticket.id, 0),
            left=usage.seats_left(convening, ticket),
        )
        for ticket in convening.ticket_types
    ]
    limits = []
    if convening.capacity is not None:
        limits.append(convening.capacity - usage.total)
    if tickets and all(t.capacity is not None for t in tickets):
        limits.append(sum(max(0, t.capacity - t.held) for t in tickets))
    seats_left = max(0, min(limits)) if limits else None

    # Counted by the database, grouped, in one statement of several groupings (kind, text key, number key,
    # count): the rows never come to Python, whatever the convening's size, and the page's round trips stay few.
    active = [Registration.convening_id == convening.id, Registration.status.in_(ACTIVE)]
    roles = Counter({role.value: 0 for role in Role})
    by_delegation: Counter[int | None] = Counter()
    languages = Counter({code: 0 for code in dict.fromkeys([convening.default_language, *convening.languages])})
    interpretation = Counter({code: 0 for code in convening.interpretation_languages or []})
    dietary = Counter({code: 0 for code in DIETARY_NEEDS})
    accessibility = Counter({code: 0 for code in ACCESSIBILITY_NEEDS})
    day_counts: Counter[date] = Counter()
    # JSON lists group by their text (a handful of distinct lists), read back here: portable to SQLite.
    lists = {"dietary": (Registration.dietary_needs, dietary, DIETARY_NEEDS),
             "accessibility": (Registration.accessibility_needs, accessibility, ACCESSIBILITY_NEEDS),
             "interpretation": (Registration.interpretation_needs, interpretation, interpretation)}

    # The active rows are read once, only the columns counted, into a CTE every grouping reads (referenced
    # more than once, it is materialized on both databases): one pass over a large convening, not ten.
    rows = sa.select(
        sa.cast(Registration.role, sa.Text).label("role"),
        sa.cast(Registration.delegation_id, sa.BigInteger).label("delegation_id"),
        sa.cast(Registration.language, sa.Text).label("language"),
        *(sa.cast(column, sa.Text).label(kind) for kind, (column, _, _) in lists.items()),
        _quarter_hour(Registration.created_at).label("quarter"),
        (Registration.dietary_notes != "").label("dietary_notes"),
        (Registration.accessibility_notes != "").label("accessibility_notes"),
        Registration.email_bounced_at.is_not(None).label("bounced"),
    ).where(*active).cte("active_rows")

    def grouping(kind: str, *, text=None, number=None, where=()) -> sa.Select:
        """One branch: rows (kind, text key, number key, count), grouped by the keys it has."""
        keys = [key for key in (text, number) if key is not None]
        return (sa.select(sa.literal(kind, sa.Text),
                          sa.cast(sa.null(), sa.Text) if text is None else text,
                          sa.cast(sa.null(), sa.BigInteger) if number is None else number,
                          sa.func.count())
                .select_from(rows).where(*where).group_by(*keys))

    groupings = [
        grouping("role", text=rows.c.role, number=rows.c.delegation_id),
        grouping("language", text=rows.c.language),
        *(grouping(kind, text=rows.c[kind]) for kind in lists),
        grouping("quarter", number=rows.c.quarter),
        grouping("active"),
        *(grouping(kind, where=[rows.c[kind]]) for kind in ("dietary_notes", "accessibility_notes", "bounced")),
    ]
    totals: Counter[str] = Counter()
    for kind, text, number, count in db.session.execute(sa.union_all(*groupings)):
        if kind == "role":
            roles[text] += count
            by_delegation[number] += count
        elif kind == "language":
            languages[text] += count
        elif kind in lists:
            _, counter, known = lists[kind]
            for code in set(json.loads(text) or []) if text else ():
                if code in known:
                    counter[code] += count
        elif kind == "quarter":
            day_counts[datetime.fromtimestamp(int(number) * _QUARTER, convening.tz).date()] += count
        else:
            totals[kind] += count
    active_count, bounced = totals["active"], totals["bounced"]
    dietary_notes, accessibility_notes = totals["dietary_notes"], totals["accessibility_notes"]
    # Erasing personal data takes the needs off each person and keeps their counts apart.
    kept = kept_need_counts(convening.id)
    dietary.update(kept["dietary"])
    accessibility.update(kept["accessibility"])
    dietary_notes += kept["dietary_notes"]
    accessibility_notes += kept["accessibility_notes"]

    names = dict(db.session.execute(
        sa.select(Delegation.id, Delegation.name).where(Delegation.convening_id == convening.id)
    ).all())
    delegations = sorted(
        ((names.get(delegation_id, "?"), count) for delegation_id, count in by_delegation.items()
         if delegation_id is not None),
        key=lambda item: (-item[1], item[0].casefold()),
    )

    today = now.astimezone(convening.tz).date()
    chart = cumulative_chart(
        dict(day_counts),
        until=min(today, convening.ends_on),
        title=f"Registrations over time ({convening.timezone})",
        what="active registrations",
    )
    return Dashboard(
        by_status=by_status, tickets=tickets, held=usage.total, capacity=convening.capacity,
        seats_left=seats_left, waitlist=usage.waitlist, active=active_count,
        dietary=dict(dietary), dietary_notes=dietary_notes, accessibility=dict(accessibility),
        accessibility_notes=accessibility_notes, roles=dict(roles), delegations=delegations,
        no_delegation=by_delegation.get(None, 0), chart=chart, languages=dict(languages),
        interpretation=dict(interpretation), bounced=bounced,
    )
