"""Merging duplicates organizers find: two delegations that are one, two registrations of one person."""
from __future__ import annotations

import sqlalchemy as sa

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.models import Convening, Delegation
from convene.models.program_revision import bump_program_revision
from convene.services.db import lock, unit_of_work


def _columns_referencing(table_name: str) -> list[sa.Column]:
    """Every column in the schema with a foreign key to that table's id, found from the metadata.

    Found rather than listed, so a table added later that points at a delegation moves with a merge too.
    """
    return sorted((column for table in db.metadata.sorted_tables for column in table.columns
                   for key in column.foreign_keys if key.column.table.name == table_name and key.column.name == "id"),
                  key=lambda column: (column.table.name, column.name))


def delegation_references(delegation_id: int) -> dict[str, int]:
    """How many rows of each table point at the delegation, e.g. {"registration": 3, "orders": 1}."""
    counts = {}
    for column in _columns_referencing("delegation"):
        count = db.session.scalar(sa.select(sa.func.count()).select_from(column.table).where(column == delegation_id))
        if count:
            counts[column.table.name] = counts.get(column.table.name, 0) + count
    return counts


def merge_delegations(source_id: int, target_id: int) -> Delegation:
    """Move everything that points at delegation `source_id` to `target_id` and delete the source; one locked unit."""
    if source_id == target_id:
        raise ConveneError("delegation_merge_self", field="into")
    with unit_of_work():
        found = {d.id: d for d in db.session.execute(
            sa.select(Delegation).where(Delegation.id.in_([source_id, target_id]))).scalars()}
        if len(found) != 2 or found[source_id].convening_id != found[target_id].convening_id:
            raise NotFound("delegation_not_found")
        # The convening first, as every delegation write does, then both delegations in id order.
        lock(Convening, found[source_id].convening_id)
        source, target = (d for d in sorted(lock(Delegation, source_id, target_id), key=lambda d: d.id != source_id))
        for column in _columns_referencing("delegation"):
            db.session.execute(sa.update(column.table).where(column == source.id).values({column.name: target.id}))
        # Keep a contact the target lacks, so merging never loses how to reach the delegation.
        if not target.contact_name and not target.contact_email:
            target.contact_name, target.contact_email = source.contact_name, source.contact_email
        db.session.execute(sa.delete(Delegation).where(Delegation.id == source.id))
    return target


# What the kept registration already has wins: a row of the duplicate moves only if the kept one has
# no row in the same group (the same question, session, programme block, visit slot; visit
# preferences are a ranked list, so taken whole or not at all). Tables not named here move whole.
_REGISTRATION_GROUPS = {
    "answer": ("question_id",),
    "session_signup": ("session_id",),
    "session_preference": ("block_id",),
    "visit_preference": (),
    "visit_assignment": ("slot_id",),
}
# A cancelled registration's sign-ups and visit places would hold seats nobody uses: those not moved go.
_DROP_LEFTOVERS = ("session_signup", "visit_assignment")
_REGISTRATION_HISTORY = ("outbox_message",)  # what was sent to whom stays as it was


def _paid(registration) -> bool:
    order = registration.order
    return order is not None and order.paid_cents - order.refunded_cents > 0


def check_registration_merge(keep, drop) -> None:
    """Raise the ConveneError that stops merging `drop` into `keep`, if any."""
    from convene.models import ENDED, Status

    if keep.id == drop.id:
        raise ConveneError("registration_merge_self", field="other")
    if keep.convening_id != drop.convening_id:
        raise ConveneError("registration_merge_other_convening", field="other")
    if keep.status in ENDED or drop.status in ENDED:
        raise ConveneError("registration_merge_cancelled", field="other")
    if _paid(keep) and _paid(drop):
        raise ConveneError("registration_merge_both_paid", field="other")
    if _paid(drop):
        raise ConveneError("registration_merge_keep_paid", field="other")
    if drop.status == Status.PENDING:
        raise ConveneError("registration_merge_pending", field="other")


def merge_registrations(keep_id: int, drop_id: int, *, now=None):
    """Fold registration `drop_id` into `keep_id` (one person registered twice) and cancel it without emailing them.

    One locked unit of work: the convening and its ticket types (seats change), both registrations,
    any unpaid invoice of the duplicate (credited for its seat). Returns the kept registration.
    """
    from convene.models import Order, Registration, Status, utcnow
    from convene.services import payments, registrations
    from convene.services.visits import release_visits

    now = now or utcnow()
    with unit_of_work():
        first = db.session.get(Registration, keep_id)
        second = db.session.get(Registration, drop_id)
        if first is None or second is None:
            raise NotFound("registration_not_found")
        convening, _ = registrations._lock_for_seats(first.convening_id)
        lock(Registration, keep_id, drop_id)
        keep, drop = db.session.get(Registration, keep_id), db.session.get(Registration, drop_id)
        check_registration_merge(keep, drop)
        order = lock(Order, drop.order_id)[0] if drop.order_id else None
        for column in _columns_referencing("registration"):
            table = column.table
            if table.name in _REGISTRATION_HISTORY:
                continue
            if table.name == "answer":
                # An answer left empty on the kept registration counts as missing.
                db.session.execute(sa.delete(table).where(
                    column == keep.id, table.c.question_id.in_(sa.select(table.c.question_id).where(column == drop.id)),
                    sa.or_(table.c.value.is_(None), sa.cast(table.c.value, sa.String).in_(['""', "[]", "null"]))))
            group = _REGISTRATION_GROUPS.get(table.name)
            moving = sa.update(table).where(column == drop.id)
            if group is not None:
                kept = sa.select(1).select_from(table.alias("kept")).where(sa.literal_column("kept." + column.name) == keep.id)
                for name in group:
                    kept = kept.where(sa.literal_column("kept." + name) == table.c[name])
                moving = moving.where(~sa.exists(kept))
            db.session.execute(moving.values({column.name: keep.id}).execution_options(synchronize_session=False))
            if table.name in _DROP_LEFTOVERS:
                db.session.execute(sa.delete(table).where(column == drop.id))
        # The moves above are Core statements the flush listener does not see; a presenter may be one of them.
        bump_program_revision(db.session.connection(), [convening.id])
        if keep.delegation_id is None:
            keep.delegation_id = drop.delegation_id
        if order is not None:  # credited before the cancellation, as credit_invoice_locked needs
            note = payments.credit_invoice_locked(convening, order, [drop], now)
            if note is not None and order.buyer_email != drop.email:
                payments.queue_credit_note_email(convening, order, note)  # someone else was asked to pay for it
        # The person keeps their place: not told about a cancellation, which was only a duplicate.
        drop.status, drop.cancelled_at, drop.offer_expires_at = Status.CANCELLED, now, None
        release_visits(drop.id)
        db.session.flush()
        registrations.offer_seats_locked(convening, now)
    db.session.expire_all()
    return db.session.get(Registration, keep_id)
