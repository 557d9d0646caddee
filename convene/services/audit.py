"""The audit log: every change to a convening's data, written in the transaction that made it.

Nothing calls this module to log an ordinary change. Two session hooks see every write: `after_flush`
reads each new, changed and deleted object's attribute history, and `do_orm_execute` reads the rows a
bulk UPDATE or DELETE touches before and after it runs. Each change becomes one row of `audit_entry`,
inserted on the same connection, so a rolled-back change leaves no entry and a committed one always
has its entry. Who acted comes from the request (an account, an attendee, the Stripe webhook) or from
`acting_as()` (commands, the system). A service may give a change a clearer name with `name_action()`;
otherwise a changed `status` names it (`registration.cancelled`), else `<object>.created/updated/deleted`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

import sqlalchemy as sa
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from convene.models.base import Base, utcnow
from convene.models.teams import ActorKind, AuditEntry


@dataclass(frozen=True)
class Actor:
    kind: str
    user_id: int | None = None
    label: str = ""


SYSTEM = Actor(ActorKind.SYSTEM, label="Convene")
_actor: ContextVar[Actor | None] = ContextVar("convene_audit_actor", default=None)
# Off only for bench/audit.py's baseline: the application always logs.
_off: ContextVar[bool] = ContextVar("convene_audit_off", default=False)

# Objects whose changes are bookkeeping of the software itself, not of the convening.
# The check-in scan log is a log of its own (check-ins themselves are logged here); message recipients are
# bookkeeping of a message's delivery.
UNLOGGED_TABLES = {"audit_entry", "outbox_message", "print_job", "job", "stripe_event", "assignment_run",
                   "stored_file", "stored_file_chunk", "checkin_scan", "message_recipient"}
# Columns kept by the software alongside others (timestamps, search keys, sign-in bookkeeping).
UNLOGGED_COLUMNS = {"id", "created_at", "updated_at", "search_text", "sort_key", "last_login_at",
                    "session_version", "invoice_counter", "recipient_count", "sent_count", "failed_count",
                    "bounced_count", "skipped_count"}
SECRET_COLUMN = re.compile(r"password|secret|token|api_key|card", re.IGNORECASE)
HIDDEN = "(hidden)"
# The page that shows an object's history: a registration's answers and visits show on the registration.
PARENTS = (("registration_id", "registration"), ("order_id", "order"), ("session_id", "session"))
OBJECT_NAMES = {"orders": "order", "program_session": "session", "user_account": "account",
                "visit_assignment": "visit", "host_organization": "host", "site_visit": "site_visit",
                "credit_note": "credit_note", "membership": "member"}
LABEL_COLUMNS = ("reference", "invoice_number", "number", "title", "name", "email", "code")


def current_actor() -> Actor:
    """Who is acting now: set explicitly, else read from the request, else the system."""
    actor = _actor.get()
    if actor is not None:
        return actor
    from flask import g, has_request_context, request

    if not has_request_context():
        return SYSTEM
    actor = g.get("audit_actor")
    if actor is not None:
        return actor
    from flask_login import current_user

    if request.blueprint == "payments":
        return Actor(ActorKind.STRIPE, label="Stripe")
    if request.blueprint == "admin" and current_user.is_authenticated:
        return Actor(ActorKind.ACCOUNT, current_user.id, current_user.email)
    return Actor(ActorKind.ATTENDEE, label="Attendee")


def set_actor(actor: Actor | None) -> Callable[[], None]:
    """Attribute every later change in this context to `actor` (a command's whole run); returns the undo."""
    token = _actor.set(actor)
    return lambda: _actor.reset(token)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute every change inside the block to `actor` (a command, a job, the system)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def name_action(obj, action: str) -> None:
    """Name the change this unit of work makes to `obj` (e.g. 'visit.moved') instead of the generic name."""
    from convene.extensions import db

    db.session.info.setdefault("audit_names", {})[id(obj)] = action


def record(action: str, *, convening_id: int | None, object_type: str, object_id: int | None = None,
           label: str = "", changes: dict | None = None, parent: tuple[str, int] | None = None) -> None:
    """Log a change no row write shows (a copy, an email sent, a sign-in) in the current transaction."""
    from convene.extensions import db

    _insert(db.session.connection(), [_row(action, convening_id, object_type, object_id, label, changes or {},
                                           parent)])


def object_name(table_name: str) -> str:
    return OBJECT_NAMES.get(table_name, table_name)


# -- the hooks ------------------------------------------------------------------------------------

def _plain(value):
    """A value as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _change(key: str, old, new) -> list:
    if SECRET_COLUMN.search(key):
        return [HIDDEN if old is not None else None, HIDDEN if new is not None else None]
    return [_plain(old), _plain(new)]


def _row(action, convening_id, object_type, object_id, label, changes, parent) -> dict:
    actor = current_actor()
    return {"at": utcnow(), "actor_kind": str(actor.kind), "actor_user_id": actor.user_id,
            "actor_label": (actor.label or "")[:254], "convening_id": convening_id, "object_type": object_type,
            "object_id": object_id, "object_label": (label or "")[:200],
            "parent_type": parent[0] if parent else None, "parent_id": parent[1] if parent else None,
            "action": action[:64], "changes": changes}


def _insert(connection, rows: list[dict]) -> None:
    if rows:
        connection.execute(sa.insert(AuditEntry.__table__), rows)


def _logged_columns(table: sa.Table) -> list[sa.Column]:
    return [c for c in table.c if c.key not in UNLOGGED_COLUMNS]


def _label(values: dict) -> str:
    for key in LABEL_COLUMNS:
        if values.get(key):
            return str(values[key])
    given, family = values.get("given_name"), values.get("family_name")
    return " ".join(v for v in (given, family) if v)


def _parent(table: sa.Table, values: dict, object_id) -> tuple[str, int] | None:
    name = object_name(table.name)
    if name in ("registration", "order", "session"):
        return name, object_id
    for column, parent in PARENTS:
        if values.get(column) is not None:
            return parent, values[column]
    return None


_PARENT_TABLES = {"registration": "registration", "order": "orders", "session": "program_session"}


def _convening_of(connection, table: sa.Table, values: dict, object_id, parent, cache: dict) -> int | None:
    if table.name == "convening":
        return object_id
    if values.get("convening_id") is not None:
        return values["convening_id"]
    if "convening_id" in table.c and object_id is not None and "id" in table.c:
        # Not loaded on the object (expired since its last commit): read it from its row.
        found = connection.execute(sa.select(table.c.convening_id).where(table.c.id == object_id)).scalar()
        if found is not None:
            return found
    if parent is None:
        return None
    if parent not in cache:
        parent_table = Base.metadata.tables[_PARENT_TABLES[parent[0]]]
        cache[parent] = connection.execute(
            sa.select(parent_table.c.convening_id).where(parent_table.c.id == parent[1])).scalar()
    return cache[parent]


# Changes whose meaning one column tells: (object, column) -> action when that column changes.
COLUMN_ACTIONS = {("visit", "site_visit_id"): "visit.moved", ("member", "role"): "member.role_changed"}


def _status_action(name: str, changes: dict, default: str) -> str:
    """A changed status names the action (registration.cancelled); so do the columns in COLUMN_ACTIONS."""
    if "status" in changes and changes["status"][1]:
        return f"{name}.{changes['status'][1]}"
    for (object_type, column), action in COLUMN_ACTIONS.items():
        if object_type == name and column in changes:
            return action
    return default


def _entries_for_objects(session: Session) -> list[tuple]:
    """(action, table, values, object_id, changes) for every logged object this flush writes."""
    names = session.info.get("audit_names", {})
    found = []
    for obj, kind in [(o, "created") for o in session.new] + [(o, "updated") for o in session.dirty] + [
            (o, "deleted") for o in session.deleted]:
        mapper = inspect(obj).mapper
        table = mapper.local_table
        if table.name in UNLOGGED_TABLES:
            continue
        state = inspect(obj)
        values, changes = {}, {}
        for column in table.c:
            attr = mapper.get_property_by_column(column)
            history = state.attrs[attr.key].history
            current = state.dict.get(attr.key)
            if kind == "updated":
                if not history.has_changes():
                    values[column.key] = current
                    continue
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                values[column.key] = new
                if column.key not in UNLOGGED_COLUMNS and old != new:
                    changes[column.key] = _change(column.key, old, new)
            else:
                values[column.key] = current
                if column.key not in UNLOGGED_COLUMNS and current not in (None, "", [], {}):
                    changes[column.key] = (_change(column.key, None, current) if kind == "created"
                                           else _change(column.key, current, None))
        if kind == "updated" and not changes:
            continue
        name = object_name(table.name)
        action = names.get(id(obj)) or (_status_action(name, changes, f"{name}.updated") if kind == "updated"
                                         else f"{name}.{kind}")
        found.append((action, table, values, obj, changes))
    return found


@contextmanager
def unlogged() -> Iterator[None]:
    """Changes inside are not logged: for measuring what the log costs (bench/audit.py), never in the app."""
    token = _off.set(True)
    try:
        yield
    finally:
        _off.reset(token)


@event.listens_for(Session, "after_flush")
def _log_flush(session: Session, _flush_context) -> None:
    if _off.get():
        return
    found = _entries_for_objects(session)
    if not found:
        return
    connection, cache, rows = session.connection(), {}, []
    for action, table, values, obj, changes in found:
        object_id = inspect(obj).identity[0] if inspect(obj).identity else values.get("id")
        values["id"] = object_id
        parent = _parent(table, values, object_id)
        convening_id = _convening_of(connection, table, values, object_id, parent, cache)
        rows.append(_row(action, convening_id, object_name(table.name), object_id, _label(values), changes, parent))
    _insert(connection, rows)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_names(session: Session) -> None:
    session.info.pop("audit_names", None)


def _table_of(statement) -> sa.Table | None:
    table = getattr(statement, "table", None)
    return Base.metadata.tables.get(table.name) if isinstance(table, sa.Table) else None


@event.listens_for(Session, "do_orm_execute")
def _log_bulk(state):
    """Bulk UPDATE and DELETE statements: read the rows they touch before and after, log the difference."""
    if not (state.is_update or state.is_delete) or state.execution_options.get("convene_unlogged") or _off.get():
        return None
    table = _table_of(state.statement)
    if table is None or table.name in UNLOGGED_TABLES or "id" not in table.c:
        return None
    session = state.session
    columns = [table.c.id, *[c for c in table.c if c.key != "id"]]
    where = state.statement.whereclause
    query = sa.select(*columns)
    if where is not None:
        query = query.where(where)
    before = {row.id: dict(row._mapping) for row in session.execute(
        query.execution_options(convene_unlogged=True))}
    result = state.invoke_statement()
    if not before:
        return result
    after = {}
    if state.is_update:
        after = {row.id: dict(row._mapping) for row in session.execute(
            sa.select(*columns).where(table.c.id.in_(list(before))).execution_options(convene_unlogged=True))}
    connection, cache, rows = session.connection(), {}, []
    name = object_name(table.name)
    for object_id, old in before.items():
        new = after.get(object_id)
        if state.is_update and new is None:
            continue
        if state.is_delete:
            if object_id in after:
                continue
            changes = {k: _change(k, v, None) for k, v in old.items()
                       if k not in UNLOGGED_COLUMNS and v not in (None, "", [], {})}
            action, values = f"{name}.deleted", old
        else:
            changes = {k: _change(k, old[k], new[k]) for k in old
                       if k not in UNLOGGED_COLUMNS and old[k] != new[k]}
            if not changes:
                continue
            action, values = _status_action(name, changes, f"{name}.updated"), new
        parent = _parent(table, values, object_id)
        rows.append(_row(action, _convening_of(connection, table, values, object_id, parent, cache), name,
                         object_id, _label(values), changes, parent))
    _insert(connection, rows)
    return result


# -- reading the log -------------------------------------------------------------------------------

def history_query(*, convening_id: int, object_type: str | None = None, object_id: int | None = None,
                  actor: str | None = None, action: str | None = None, day: date | None = None, tz=None):
    """A select of log entries, newest first, filtered as the log page and history panels ask."""
    query = sa.select(AuditEntry).where(AuditEntry.convening_id == convening_id)
    if object_type and object_id is not None:
        query = query.where(sa.or_(
            sa.and_(AuditEntry.object_type == object_type, AuditEntry.object_id == object_id),
            sa.and_(AuditEntry.parent_type == object_type, AuditEntry.parent_id == object_id)))
    elif object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if actor:
        query = query.where(sa.or_(AuditEntry.actor_kind == actor, AuditEntry.actor_label == actor))
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if day is not None:
        from datetime import time, timedelta

        start = datetime.combine(day, time(0), tz) if tz else datetime.combine(day, time(0))
        query = query.where(AuditEntry.at >= start, AuditEntry.at < start + timedelta(days=1))
    return query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


PAGE_SIZE = 100


def log_page(convening_id: int, *, object_type: str | None = None, actor: str | None = None,
             action: str | None = None, day: date | None = None, tz=None, before_id: int | None = None,
             limit: int = PAGE_SIZE) -> tuple[list[AuditEntry], int | None]:
    """One page of a convening's log, newest first, and the id to continue before (None on the last page)."""
    from convene.extensions import db

    query = history_query(convening_id=convening_id, object_type=object_type, actor=actor, action=action, day=day,
                          tz=tz)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    rows = db.session.execute(query.order_by(None).order_by(AuditEntry.id.desc()).limit(limit + 1)).scalars().all()
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def history(convening_id: int, object_type: str, object_id: int, limit: int = 200) -> list[AuditEntry]:
    """The entries of one registration, order or session (its answers, visits, refunds... included)."""
    from convene.extensions import db

    query = history_query(convening_id=convening_id, object_type=object_type, object_id=object_id)
    return db.session.execute(query.order_by(None).order_by(AuditEntry.id.desc()).limit(limit)).scalars().all()


def object_types(convening_id: int) -> list[str]:
    """The kinds of object the convening's log speaks of, for the filter."""
    from convene.extensions import db

    return list(db.session.execute(sa.select(AuditEntry.object_type).where(
        AuditEntry.convening_id == convening_id).distinct().order_by(AuditEntry.object_type)).scalars())
