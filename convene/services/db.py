"""Write transactions that serialize on SQLite (BEGIN IMMEDIATE) and lock rows on PostgreSQL."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from convene.extensions import db

_write_intent: ContextVar[bool] = ContextVar("convene_write_intent", default=False)
# Work handed on once a unit of work has committed, by name (e.g. "jobs" → convene.jobs dispatches them).
_after_commit_hooks: dict[str, Callable[[list], None]] = {}


def register_after_commit(name: str, hook: Callable[[list], None]) -> None:
    """Have `hook(items)` called after each unit of work that `after_commit(name, item)`-ed something commits."""
    _after_commit_hooks[name] = hook


def after_commit(name: str, item) -> None:
    """Hand `item` to the `name` hook once the current unit of work commits (never if it rolls back)."""
    if not _write_intent.get():
        raise RuntimeError("after_commit() is only for use inside unit_of_work()")
    db.session.info["after_commit"].setdefault(name, []).append(item)


def configure_sqlite(engine: Engine, busy_timeout_seconds: int = 30) -> None:
    """Take transaction control from pysqlite so a write transaction can start with BEGIN IMMEDIATE.

    A writer waits for another's lock at most `busy_timeout_seconds`, then fails (a 503 page).
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")  # what is erased or deleted is overwritten in the file, not left in free pages
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


@contextmanager
def unit_of_work() -> Iterator:
    """One write transaction: everything inside commits together or not at all.

    Any read transaction a view left open is ended first, so the write one starts fresh (and, on
    SQLite, takes the write lock at its first statement). Nested calls join the outer unit. Email
    queued inside is delivered once the commit has succeeded, never before.
    """
    session = db.session
    if _write_intent.get():
        yield session
        return
    session.rollback()
    token = _write_intent.set(True)
    session.info["queued_email"] = []
    session.info["email_by_job"] = []
    session.info["after_commit"] = {}
    try:
        yield session
        if session.info["email_by_job"]:
            from convene.services.mail import hand_to_delivery_job

            hand_to_delivery_job(session.info["email_by_job"])
        queued = [message.id for message in session.info["queued_email"]]
        handed_on = session.info["after_commit"]
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop("queued_email", None)
        session.info.pop("email_by_job", None)
        session.info.pop("after_commit", None)
        _write_intent.reset(token)
    for name, items in handed_on.items():
        _after_commit_hooks[name](items)
    if queued:
        from convene.services.mail import deliver_after_commit

        deliver_after_commit(queued)


def lock(model, *ids: int) -> list:
    """Lock rows of `model` by id, in id order so concurrent units never deadlock; return them."""
    rows = db.session.execute(
        sa.select(model).where(model.id.in_(sorted(set(ids)))).order_by(model.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalars().all()
    return rows
