"""The back office's list of registrations: one page by key (or by number), and the counts by status."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from convene.extensions import db
from convene.models import ACTIVE, Registration


@dataclass
class ListPage:
    """One page of the list, shaped like Flask-SQLAlchemy's Pagination for the templates."""

    items: list[Registration]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return -(-self.total // self.per_page) if self.total else 0

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages and bool(self.items)

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1

    @property
    def first_id(self) -> int | None:
        return self.items[0].id if self.items else None

    @property
    def last_id(self) -> int | None:
        return self.items[-1].id if self.items else None


def status_counts(convening_id: int, where: Sequence) -> dict[str, int]:
    """How many registrations match `where`, by status, in one grouped query."""
    return dict(db.session.execute(
        sa.select(Registration.status, sa.func.count())
        .where(Registration.convening_id == convening_id, *where)
        .group_by(Registration.status)
    ).all())


def total_for(by_status: dict[str, int], status: str) -> int:
    """The list's total under a status filter ("" for all, "active"), from the counts by status."""
    if status == "active":
        return sum(n for s, n in by_status.items() if s in ACTIVE)
    if status:
        return by_status.get(status, 0)
    return sum(by_status.values())


def _boundary(convening_id: int, registration_id: int | None, columns: Sequence) -> tuple | None:
    """The sort key of the row a page link points from, if it is still this convening's."""
    if registration_id is None:
        return None
    return db.session.execute(
        sa.select(*columns).where(Registration.id == registration_id, Registration.convening_id == convening_id)
    ).first()


def list_page(convening_id: int, where: Sequence, columns: Sequence, *, descending: bool, page: int, per_page: int,
              total: int, after: int | None = None, before: int | None = None) -> ListPage:
    """The page of registrations matching `where` in the order of `columns` (the last one unique).

    With `after` (the last row of the page before) or `before` (the first row of the page after), the page
    starts from that row's key, so deep pages cost what the first does; a bare page number uses OFFSET.
    """
    where = [Registration.convening_id == convening_id, *where]
    query = sa.select(Registration).options(joinedload(Registration.ticket_type), joinedload(Registration.delegation))
    backwards = False
    key = _boundary(convening_id, after, columns)
    if key is None and before is not None:
        key, backwards = _boundary(convening_id, before, columns), True
    if key is not None:
        forwards = descending == backwards  # the direction in which rows are read from the key
        row, values = sa.tuple_(*columns), sa.tuple_(*key)
        # The bound on the first column alone lets the database seek in its index before comparing whole keys.
        where += ([columns[0] >= key[0], row > values] if forwards else [columns[0] <= key[0], row < values])
        order = [c if forwards else c.desc() for c in columns]
        items = list(db.session.execute(query.where(*where).order_by(*order).limit(per_page)).unique().scalars())
        if backwards:
            items.reverse()
        return ListPage(items, total, page, per_page)
    order = [c.desc() for c in columns] if descending else list(columns)
    items = list(db.session.execute(
        query.where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    ).unique().scalars())
    return ListPage(items, total, page, per_page)
