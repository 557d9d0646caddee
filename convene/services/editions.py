"""Copying a convening for a new edition: its whole setup, on new dates; never a person, an order or a log.

What a copy takes is read from the table metadata, so a column added later comes along by itself:
every column of a copied table is copied unless the plan below resets it, foreign keys point at the
copies, dates move by the offset between the two first days and instants keep their wall-clock time
in the convening's zone (a 09:00 session is at 09:00 on its new day, daylight saving or not). Tables
that belong to a convening but are never copied are listed with the reason; a test fails when a
table is in neither list, so nobody adds a table without deciding.
"""
from __future__ import annotations

import copy as copying
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.forms import MAX_YEAR, MIN_YEAR
from convene.models import Base, Convening, Membership, TeamRole
from convene.models.base import UTCDateTime
from convene.services import audit
from convene.services.convenings import CONVENING_FIELDS, _check_slug_free, clean_convening
from convene.services.db import lock, unit_of_work

# Copied tables and what the copy gets instead of the source's value: the new edition starts unpublished,
# with nothing open to attendees, no numbers used up and no trace of the old edition's people.
COPIED: dict[str, dict[str, object]] = {
    "convening": {"published": False, "visit_preferences_open": False, "visits_published_at": None,
                  "invoice_counter": 0, "personal_data_erased_at": None},
    "ticket_type": {},
    "delegation": {},
    "question": {},
    "discount_code": {},  # unused on the copy: uses are counted from its bookings, and it has none
    "host_organization": {},
    "visit_slot": {},
    "site_visit": {"details_changed_at": None},  # nothing was published, so nothing changed since
    "room": {},
    "session_block": {"preferences_open": False, "allocated_at": None},
    "program_session": {"sequence": 0},
    "presenter": {"registration_id": None},  # kept by name: the old edition's registrations stay behind
    "session_presenter": {},
    "program_settings": {"published_at": None},
    "checkin_list": {},  # the lists, not who was checked in on them
}
NEVER_COPIED: dict[str, str] = {
    "registration": "people and their check-ins",
    "answer": "people's answers",
    "orders": "money",
    "refund": "money",
    "credit_note": "money",
    "stripe_event": "money",
    "visit_preference": "people's rankings",
    "visit_assignment": "people's places",
    "assignment_run": "runs of the old plan",
    "session_signup": "people's sign-ups",
    "session_preference": "people's rankings",
    "outbox_message": "emails to people",
    "message": "messages written to the old edition's people",
    "message_recipient": "emails to people",
    "print_job": "printed batches",
    "job": "background work done for the old edition",
    "membership": "the team (the person copying becomes the owner)",
    "invitation": "the team",
    "audit_entry": "the log",
    "personal_data_erasure": "the old edition's privacy record",
    "checkin": "people's check-ins",
    "checkin_scan": "the old edition's scans",
}
# Columns the database fills afresh on every copy, and those the person copying gives.
FRESH_COLUMNS = {"created_at", "updated_at"}
GIVEN_COLUMNS = {("convening", "name"), ("convening", "slug")}
# JSON columns that hold ids of copied rows, and the table they point at; other JSON is copied as it is.
JSON_IDS = {("discount_code", "ticket_type_ids"): "ticket_type", ("checkin_list", "ticket_type_ids"): "ticket_type"}
JSON_PLAIN = {("convening", "role_colours"), ("question", "choices"), ("program_settings", "conflict_rules"),
              ("convening", "languages"), ("convening", "interpretation_languages"), ("convening", "translations"),
              ("ticket_type", "translations"), ("question", "translations"), ("host_organization", "translations"),
              ("program_session", "translations"), ("program_session", "interpretation"),
              ("site_visit", "translations"), ("checkin_list", "roles")}
# What the copy page counts, in the order it lists them.
COUNTED = (
    ("ticket_type", "ticket type", "ticket types"), ("discount_code", "code", "codes"),
    ("question", "question", "questions"), ("delegation", "delegation", "delegations"),
    ("host_organization", "host", "hosts"), ("visit_slot", "visit slot", "visit slots"),
    ("site_visit", "site visit", "site visits"), ("room", "room", "rooms"),
    ("program_session", "session", "sessions"), ("session_block", "block", "blocks"),
    ("presenter", "presenter", "presenters"),
)
YEAR = re.compile(r"(?<![0-9])20[0-9]{2}(?![0-9])")


@dataclass(frozen=True)
class Shift:
    """Moves dates by whole days, and instants by whole days of wall-clock time in the convening's zone."""

    days: int
    tz: ZoneInfo

    def date(self, value: date | None) -> date | None:
        return value + timedelta(days=self.days) if value is not None else None

    def instant(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        local = value.astimezone(self.tz)
        # A wall-clock time the clocks skip on the new day reads as the hour after (02:30 becomes 03:30).
        wall = local.replace(tzinfo=None) + timedelta(days=self.days)
        return wall.replace(tzinfo=self.tz, fold=local.fold).astimezone(timezone.utc)


@dataclass(frozen=True)
class CopiedKind:
    table: str
    label: str
    count: int


# -- the plan, read from the metadata --------------------------------------------------------------

def _models() -> dict[str, type]:
    return {mapper.local_table.name: mapper.class_ for mapper in Base.registry.mappers}


def _fk_target(column: sa.Column) -> str:
    return next(iter(column.foreign_keys)).column.table.name


def convening_tables() -> set[str]:
    """Every table whose rows belong to a convening: a convening_id, or a foreign key to such a table."""
    tables = Base.metadata.tables
    found = {name for name, table in tables.items() if "convening_id" in table.c} | {"convening"}
    grew = True
    while grew:
        more = {name for name, table in tables.items() if name not in found
                and any(fk.column.table.name in found for fk in table.foreign_keys)}
        found |= more
        grew = bool(more)
    return found


def plan_problems() -> list[str]:
    """What the plan does not say: tables in neither list, and columns of copied tables it cannot copy."""
    tables = Base.metadata.tables
    problems = [f"{name}: neither copied nor listed as never copied"
                for name in sorted(convening_tables() - set(COPIED) - set(NEVER_COPIED))]
    for name, resets in COPIED.items():
        table = tables.get(name)
        if table is None:
            problems.append(f"{name}: copied but not a table")
            continue
        for column in table.c:
            key = (name, column.name)
            if column.primary_key or column.name in resets or column.name in FRESH_COLUMNS:
                continue
            if column.foreign_keys and _fk_target(column) not in COPIED:
                problems.append(f"{name}.{column.name}: points at {_fk_target(column)}, which is not copied")
            if isinstance(column.type, sa.JSON) and key not in JSON_IDS and key not in JSON_PLAIN:
                problems.append(f"{name}.{column.name}: JSON not known to hold ids or not")
        if "convening_id" not in table.c and name != "convening" and _owner_key(table) is None:
            problems.append(f"{name}: no way to find the source convening's rows")
        for columns in _unique_sets(table):
            if not any(c.foreign_keys or c.name in resets or (name, c.name) in GIVEN_COLUMNS for c in columns):
                problems.append(f"{name}: a copy would repeat the unique {', '.join(c.name for c in columns)}")
    return problems


def _unique_sets(table: sa.Table) -> list[list[sa.Column]]:
    """The column sets the table holds unique: a copy must change one of them (an id it points at will do)."""
    sets = [tuple(c.columns) for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    sets += [tuple(index.columns) for index in table.indexes if index.unique]
    sets += [(column,) for column in table.c if column.unique]
    return [list(columns) for columns in dict.fromkeys(sets)]


def _owner_key(table: sa.Table) -> tuple[sa.Column, sa.Table] | None:
    """For a table without convening_id: a required foreign key to a copied table that has one."""
    for column in table.c:
        if column.foreign_keys and not column.nullable:
            parent = Base.metadata.tables[_fk_target(column)]
            if parent.name in COPIED and "convening_id" in parent.c:
                return column, parent
    return None


def _copied_tables() -> list[sa.Table]:
    """The copied tables below the convening, parents before children (ids held in JSON count as parents)."""
    tables = Base.metadata.tables
    held = [(tables[target], tables[name]) for (name, _), target in JSON_IDS.items()]
    return [table for table in sa.schema.sort_tables(list(tables.values()), extra_dependencies=held)
            if table.name in COPIED and table.name != "convening"]


def _source_rows(table: sa.Table, source_id: int) -> list:
    model = _models()[table.name]
    if "convening_id" in table.c:
        where = table.c.convening_id == source_id
    else:
        column, parent = _owner_key(table)
        where = column.in_(sa.select(parent.c.id).where(parent.c.convening_id == source_id))
    return db.session.execute(sa.select(model).where(where).order_by(table.c.id)).scalars().all()


def _copied_values(row, table: sa.Table, shift: Shift, ids: dict[str, dict[int, int]]) -> dict | None:
    """The copy's attributes, or None when the row hangs on one that was not copied."""
    mapper = inspect(row).mapper
    resets = COPIED[table.name]
    values: dict[str, object] = {}
    for column in table.c:
        key = mapper.get_property_by_column(column).key
        if column.primary_key or column.name in FRESH_COLUMNS:
            continue
        if column.name in resets:
            values[key] = resets[column.name]
            continue
        value = getattr(row, key)
        if column.foreign_keys:
            if value is not None:
                value = ids[_fk_target(column)].get(value)
                if value is None and not column.nullable:
                    return None  # its parent was added after the parents were copied
        elif isinstance(column.type, UTCDateTime):
            value = shift.instant(value)
        elif isinstance(column.type, sa.Date):
            value = shift.date(value)
        elif isinstance(column.type, sa.JSON):
            target = JSON_IDS.get((table.name, column.name))
            value = ([ids[target][old] for old in value or [] if old in ids[target]] if target
                     else copying.deepcopy(value))
        values[key] = value
    _keep_duration(row, values)
    return values


def _keep_duration(row, values: dict) -> None:
    """An end that would fall on or before its start (a start in the hour the clocks skip) keeps the old length."""
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        values["ends_at"] = starts + (row.ends_at - row.starts_at)


# -- reading ---------------------------------------------------------------------------------------

def setup_counts(convening_id: int) -> list[CopiedKind]:
    """How many of each kind of setup a convening has: what a copy of it takes along."""
    tables = Base.metadata.tables
    kinds = []
    for name, singular, plural in COUNTED:
        table = tables[name]
        count = db.session.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.convening_id == convening_id)).scalar_one()
        kinds.append(CopiedKind(name, singular if count == 1 else plural, count))
    return kinds


def describe_counts(kinds: list[CopiedKind]) -> str:
    """'3 ticket types, 1 code and 12 sessions' (kinds with none left out), or 'no setup yet'."""
    parts = [f"{kind.count} {kind.label}" for kind in kinds if kind.count]
    if not parts:
        return "no setup yet"
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _bump_years(text: str, years: int) -> str:
    return YEAR.sub(lambda match: str(int(match.group()) + years), text)


def suggest_edition(convening: Convening) -> dict:
    """What the copy form starts with: a year later on the same weekday, the year in the name and address moved on."""
    starts_on = convening.starts_on + timedelta(weeks=52)  # the same weekday nearest the anniversary
    name = _bump_years(convening.name, 1)
    slug = _bump_years(convening.slug, 1)
    if slug == convening.slug:
        suffix = f"-{starts_on.year}"
        slug = convening.slug[:64 - len(suffix)].rstrip("-") + suffix
    return {"name": name, "slug": slug, "starts_on": starts_on}


# -- copying ---------------------------------------------------------------------------------------

def _renamed_translations(source: Convening, edition: Convening) -> dict:
    """The copy's translations: a translated name follows the new name when only its years moved on (as the
    copy form suggests), and is left out otherwise, so pages show the new name rather than the old edition's."""
    years = edition.starts_on.year - source.starts_on.year
    follows = edition.name == _bump_years(source.name, years)
    translations = {}
    for language, fields in (edition.translations or {}).items():
        fields = dict(fields)
        if "name" in fields and edition.name != source.name:
            if follows:
                fields["name"] = _bump_years(fields["name"], years)
            else:
                del fields["name"]
        translations[language] = fields
    return translations


def copy_convening(source_id: int, *, name: str, slug: str, starts_on: date, user_id: int | None = None) -> Convening:
    """Copy a convening's setup to a new, unpublished convening whose first day is `starts_on`.

    Ticket types, codes (unused), questions, delegations, hosts, slots and visits, rooms, sessions,
    blocks, presenters, conflict rules, badge colours and invoice settings come along, every date
    moved by the same number of days; registrations, orders, check-ins, the team and the log do not.
    `user_id`, when given, becomes the copy's owner.
    """
    problems = plan_problems()
    if problems:
        raise RuntimeError("the edition copier does not know: " + "; ".join(problems))
    if not isinstance(starts_on, date) or not MIN_YEAR <= starts_on.year <= MAX_YEAR:
        raise ConveneError("edition_starts_on_invalid", field="starts_on", first=MIN_YEAR, last=MAX_YEAR)
    try:
        with unit_of_work():
            rows = lock(Convening, source_id)
            if not rows:
                raise NotFound("convening_not_found")
            source = rows[0]
            shift = Shift((starts_on - source.starts_on).days, source.tz)
            clean = clean_convening({**{key: getattr(source, key) for key in CONVENING_FIELDS},
                                     "name": name, "slug": slug, "starts_on": starts_on,
                                     "ends_on": shift.date(source.ends_on), "published": False})
            _check_slug_free(clean["slug"])
            edition = Convening(**{**_copied_values(source, Convening.__table__, shift, {}),
                                   "name": clean["name"], "slug": clean["slug"]})
            edition.translations = _renamed_translations(source, edition)
            db.session.add(edition)
            db.session.flush()
            ids: dict[str, dict[int, int]] = {"convening": {source.id: edition.id}}
            for table in _copied_tables():
                model = _models()[table.name]
                pairs = []
                for row in _source_rows(table, source.id):
                    values = _copied_values(row, table, shift, ids)
                    if values is not None:
                        pairs.append((row.id, model(**values)))
                db.session.add_all([new for _, new in pairs])
                db.session.flush()
                ids[table.name] = {old: new.id for old, new in pairs}
            if user_id is not None:
                db.session.add(Membership(user_id=user_id, convening_id=edition.id, role=TeamRole.OWNER))
            audit.record("convening.copied", convening_id=edition.id, object_type="convening",
                         object_id=edition.id, label=edition.name, changes={"copied_from": [None, source.slug]})
            audit.record("convening.copied_to", convening_id=source.id, object_type="convening",
                         object_id=source.id, label=source.name, changes={"copied_to": [None, edition.slug]})
            edition_id = edition.id
    except IntegrityError:
        if db.session.execute(sa.select(Convening.id).where(Convening.slug == clean["slug"])).first():
            raise ConveneError("slug_taken", field="slug") from None  # taken at the same moment by another
        raise
    from convene.permissions import forget_roles

    forget_roles()
    return db.session.get(Convening, edition_id)
