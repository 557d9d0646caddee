"""The program revision: bumped in the same transaction as any change to what the public program shows.

The public program, session pages and program calendar are cached per (convening, revision); every
process reads the revision with the convening on each request, so a change made through any process
is seen at once by all. Every ORM flush is inspected here (before_flush), so no service can forget to
bump it; code that changes those rows with Core UPDATE/DELETE statements calls `bump_program_revision`.

Seats left are not part of it: the pages fill them in per request (sign-ups change them constantly).
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

import sqlalchemy as sa
from sqlalchemy.orm import Session

from convene.models.convenings import Convening
from convene.models.registrations import Registration
from convene.models.schedule import Presenter, ProgramSession, ProgramSettings, Room, SessionBlock, SessionPresenter

# Rows that belong to one convening's program, each with a convening_id.
PROGRAM_MODELS = (ProgramSession, Room, Presenter, SessionBlock, ProgramSettings)
# Convening columns that change often and that no program page shows.
QUIET_CONVENING_COLUMNS = frozenset({"invoice_counter", "updated_at", "program_revision"})
# What a presenter linked to a registration shows of it.
PRESENTER_REGISTRATION_COLUMNS = ("given_name", "family_name", "organization")


def bump_program_revision(connection, convening_ids: Iterable[int]) -> None:
    """Mark these convenings' cached program pages old (call inside the transaction that changes them)."""
    ids = sorted({cid for cid in convening_ids if cid is not None})
    if ids:  # in id order, like every other lock of convening rows
        connection.execute(sa.update(Convening.__table__).where(Convening.__table__.c.id.in_(ids))
                           .values(program_revision=Convening.__table__.c.program_revision + 1))


# Collections whose change deletes rows the flush finds only then (delete-orphan): a presenter taken
# off a session changes no column of the session.
SHOWN_COLLECTIONS = {ProgramSession: ("presenter_links",), Presenter: ("session_links",)}


def _changed(obj, only: Iterable[str] | None = None, skip: frozenset[str] = frozenset()) -> bool:
    state = sa.inspect(obj)
    names = only if only is not None else [attr.key for attr in state.mapper.column_attrs]
    if only is None:
        names = [*names, *SHOWN_COLLECTIONS.get(type(obj), ())]
    return any(state.attrs[name].history.has_changes() for name in names if name not in skip)


def _old_and_new(obj, name: str) -> set:
    """The attribute's value now (loaded if it was expired) and before this flush's change, if any."""
    return {getattr(obj, name), *(sa.inspect(obj).attrs[name].history.deleted or ())}


def changed_convenings(session: Session) -> set[int]:
    """The convenings whose program pages this flush changes (run before the flush writes)."""
    ids: set[int] = set()
    session_ids: set[int] = set()
    registration_ids: set[int] = set()
    for obj in chain(session.new, session.dirty, session.deleted):
        added_or_removed = obj in session.new or obj in session.deleted
        if isinstance(obj, Convening):
            if obj.id is not None and (obj in session.deleted or _changed(obj, skip=QUIET_CONVENING_COLUMNS)):
                ids.add(obj.id)
        elif isinstance(obj, PROGRAM_MODELS):
            if added_or_removed or _changed(obj):
                ids |= _old_and_new(obj, "convening_id")
        elif isinstance(obj, SessionPresenter):
            if added_or_removed or _changed(obj):
                session_ids |= _old_and_new(obj, "session_id")
                linked = obj.__dict__.get("session")  # set through the relationship, before its id is
                if linked is not None:
                    ids.add(linked.convening_id)
        elif isinstance(obj, Registration) and obj.id is not None:
            if obj in session.deleted or _changed(obj, PRESENTER_REGISTRATION_COLUMNS):
                registration_ids.add(obj.id)
    session_ids.discard(None)
    if session_ids:
        ids |= set(session.connection().execute(sa.select(ProgramSession.__table__.c.convening_id).where(
            ProgramSession.__table__.c.id.in_(session_ids))).scalars())
    if registration_ids:  # only a registration someone presents as shows on the program
        ids |= set(session.connection().execute(sa.select(Presenter.__table__.c.convening_id).where(
            Presenter.__table__.c.registration_id.in_(registration_ids))).scalars())
    ids.discard(None)
    return ids


@sa.event.listens_for(Session, "before_flush")
def _bump_before_flush(session: Session, flush_context, instances) -> None:
    """Bump before the flush writes its rows: the convening row is locked first, as everywhere else."""
    if session.new or session.dirty or session.deleted:
        ids = changed_convenings(session)
        if ids:
            bump_program_revision(session.connection(), ids)
