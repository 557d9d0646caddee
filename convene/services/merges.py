"""Merging duplicates organizers find: two delegations that are one, two registrations of one person."""
from __future__ import annotations

import sqlalchemy as sa

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.models import Convening, Delegation
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
