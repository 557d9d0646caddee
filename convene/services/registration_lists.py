"""The back office's list of registrations: its search, filters and sort, read leniently from a query string;
one page by key (or by number); and the counts by status.

The list page, its CSV export and the export job (which reads the query string its request saved) share them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from convene.extensions import db
from convene.models import ACTIVE, Convening, Registration, Role, Status
from convene.models.registrations import SEARCH_INDEX_TABLE
from convene.text import search_key

MAX_PAGE = 100_000  # beyond any real list; keeps OFFSET inside a bigint

SORTS = {
    "name": (Registration.sort_key, Registration.id),
    "created": (Registration.created_at, Registration.id),
    "organization": (Registration.organization, Registration.sort_key, Registration.id),
    "status": (Registration.status, Registration.sort_key, Registration.id),
    "reference": (Registration.reference,),
}
STATUS_FILTERS = {"active": "Active (confirmed, offered, waitlisted)", **{s.value: s.label for s in Status}}


@dataclass
class ListArgs:
    """The list's search, filters, sort and page, read leniently from the query string."""

    q: str = ""
    status: str = ""
    ticket: int | None = None
    delegation: int | str | None = None  # an id, or "none" for people without one
    role: str = ""
    sort: str = "name"
    direction: str = "asc"
    page: int = 1
    ignored: list[str] = field(default_factory=list)

    def conditions(self, *, with_status: bool = True) -> list:
        """WHERE clauses on Registration for everything but the convening."""
        where = search_conditions(search_terms(self.q))
        if with_status and self.status == "active":
            where.append(Registration.status.in_(ACTIVE))
        elif with_status and self.status:
            where.append(Registration.status == self.status)
        if self.ticket is not None:
            where.append(Registration.ticket_type_id == self.ticket)
        if self.delegation == "none":
            where.append(Registration.delegation_id.is_(None))
        elif self.delegation is not None:
            where.append(Registration.delegation_id == self.delegation)
        if self.role:
            where.append(Registration.role == self.role)
        return where

    def order_by(self) -> list:
        columns = SORTS[self.sort]
        return [c.desc() for c in columns] if self.direction == "desc" else list(columns)

    @property
    def filtering(self) -> bool:
        return bool(self.q or self.status or self.ticket is not None or self.delegation is not None or self.role)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_conditions(terms: Sequence[str]) -> list:
    """WHERE clauses on Registration for rows whose search_text holds every term (folded by search_key).

    A term is found as LIKE '%term%' finds it. PostgreSQL's trigram index serves LIKE itself. On SQLite, terms
    of three characters or more are looked up in the FTS5 trigram index (registration_search), whose
    case-sensitive match of a quoted phrase is exactly a substring; shorter terms have no trigram to look up
    and are read by LIKE.
    """
    # search_text is folded the same way (see Registration), so case and accents never matter.
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    indexed = [term for term in terms if sqlite and len(term) >= 3]
    where = [Registration.search_text.like(f"%{_escape_like(term)}%", escape="\\")
             for term in terms if term not in indexed]
    if indexed:
        # Each term a quoted phrase ("" for a quote inside), so NEAR, AND, *, -, : are only text to find.
        query = " AND ".join('"' + term.replace('"', '""') + '"' for term in indexed)
        index = sa.table(SEARCH_INDEX_TABLE, sa.column("rowid"), sa.column(SEARCH_INDEX_TABLE))
        where.append(Registration.id.in_(sa.select(index.c.rowid).where(index.c[SEARCH_INDEX_TABLE].match(query))))
    return where


def search_terms(q: str) -> list[str]:
    """Up to six words of a search, each folded by search_key as search_text is."""
    return [key for key in (search_key(term) for term in q.split()[:6]) if key]


def _int_arg(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if re.fullmatch(r"[0-9]{1,9}", value) else None


def parse_list_args(convening: Convening, args: Mapping[str, str]) -> ListArgs:
    """Read a query string; a value that makes no sense is dropped and named, never an error."""
    parsed = ListArgs()
    # Control characters match nothing, and PostgreSQL refuses a NUL in any text parameter.
    parsed.q = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", args.get("q", "")).split())[:200]
    status = args.get("status", "")
    if status in STATUS_FILTERS:
        parsed.status = status
    elif status:
        parsed.ignored.append("status")
    raw = args.get("ticket", "")
    if raw:
        parsed.ticket = _int_arg(raw)
        if parsed.ticket not in {t.id for t in convening.ticket_types}:
            parsed.ticket = None
            parsed.ignored.append("ticket type")
    raw = args.get("delegation", "")
    if raw == "none":
        parsed.delegation = "none"
    elif raw:
        parsed.delegation = _int_arg(raw)
        if parsed.delegation not in {d.id for d in convening.delegations}:
            parsed.delegation = None
            parsed.ignored.append("delegation")
    role = args.get("role", "")
    if role in {r.value for r in Role}:
        parsed.role = role
    elif role:
        parsed.ignored.append("role")
    sort = args.get("sort", "")
    if sort in SORTS:
        parsed.sort = sort
    elif sort:
        parsed.ignored.append("sort")
    direction = args.get("dir", "")
    if direction in ("asc", "desc"):
        parsed.direction = direction
    elif direction:
        parsed.ignored.append("sort direction")
    raw = args.get("page", "")
    page = _int_arg(raw)
    if raw and (page is None or not 1 <= page <= MAX_PAGE):
        parsed.ignored.append("page")
    parsed.page = page if page and 1 <= page <= MAX_PAGE else 1
    return parsed


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
