"""The registrations list read by key: next and previous links give every row once, in the list's order."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from convene.admin.registrations import SORTS
from convene.extensions import db
from convene.models import Registration, Status, utcnow
from convene.services.registrations import new_reference
from tests.factories import make_convening, make_ticket, person

PAGE = 3


@pytest.fixture
def crowd(app):
    """Eleven people, most sharing a name, organization, status and instant, so sort keys tie often."""
    app.config["ADMIN_PAGE_SIZE"] = PAGE
    convening = make_convening()
    ticket = make_ticket(convening)
    now = utcnow()
    for n in range(11):
        data = person(n, given_name="Sam" if n % 4 else f"Sam{n}", family_name="Okafor" if n < 8 else "Aziz",
                      organization="Same Org" if n % 3 else "Other Org")
        db.session.add(Registration(convening_id=convening.id, ticket_type_id=ticket.id,
                                    reference=new_reference(convening), created_at=now,
                                    status=Status.CONFIRMED if n % 5 else Status.WAITLISTED, **data))
    db.session.commit()
    return convening


def ids_in(page: str) -> list[int]:
    """Registration ids in the order the list shows them (each row links its reference and its name)."""
    return list(dict.fromkeys(int(i) for i in re.findall(r'<td><a href="/admin/c/\d+/registrations/(\d+)">', page)))


def link(page: str, label: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)">[^<]*{label}', page)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.mark.parametrize("sort", sorted(SORTS))
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_next_and_previous_links_give_every_row_once_in_order(organizer_client, crowd, sort, direction):
    base = f"/admin/c/{crowd.id}/registrations?sort={sort}&dir={direction}"
    columns = SORTS[sort]
    expected = list(db.session.scalars(
        sa.select(Registration.id).where(Registration.convening_id == crowd.id)
        .order_by(*(c.desc() if direction == "desc" else c for c in columns))))
    pages, address = [], base
    while address:  # forwards through Next, each link carrying the key of the row it follows
        page = organizer_client.get(address).get_data(as_text=True)
        pages.append(ids_in(page))
        address = link(page, "Next")
        assert address is None or "after=" in address
    assert [i for p in pages for i in p] == expected and len(pages) == 4
    assert f"Page 4 of 4 ({len(expected)} in all)" in page
    back = []
    while True:  # and back through Previous, which carries the key of the row it precedes
        address = link(page, "Previous")
        if address is None:
            break
        page = organizer_client.get(address).get_data(as_text=True)
        back.append(ids_in(page))
    assert back == pages[-2::-1]


def test_a_page_by_key_matches_the_same_page_by_number(organizer_client, crowd):
    base = f"/admin/c/{crowd.id}/registrations?sort=organization"
    second = organizer_client.get(base + "&page=2").get_data(as_text=True)
    first = organizer_client.get(base).get_data(as_text=True)
    by_key = organizer_client.get(link(first, "Next")).get_data(as_text=True)
    assert ids_in(by_key) == ids_in(second) and "Page 2 of 4" in by_key


def test_a_key_from_another_convening_or_a_deleted_row_falls_back_to_the_page_number(organizer_client, crowd):
    other = make_convening(name="Other")
    stranger = Registration(convening_id=other.id, ticket_type_id=make_ticket(other).id,
                            reference=new_reference(other), status=Status.CONFIRMED, **person(99))
    db.session.add(stranger)
    db.session.commit()
    base = f"/admin/c/{crowd.id}/registrations"
    by_number = ids_in(organizer_client.get(base + "?page=2").get_data(as_text=True))
    for key in (f"after={stranger.id}", "after=999999", "before=abc", f"before={stranger.id}"):
        response = organizer_client.get(f"{base}?page=2&{key}")
        assert response.status_code == 200
        assert ids_in(response.get_data(as_text=True)) == by_number, key


def test_filters_and_search_narrow_pages_read_by_key(organizer_client, crowd):
    base = f"/admin/c/{crowd.id}/registrations?q=OKAFOR&status=confirmed"
    expected = set(db.session.scalars(sa.select(Registration.id).where(
        Registration.convening_id == crowd.id, Registration.family_name == "Okafor",
        Registration.status == Status.CONFIRMED)))
    seen, address = [], base
    while address:
        page = organizer_client.get(address).get_data(as_text=True)
        seen += ids_in(page)
        address = link(page, "Next")
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected) == 6


def test_the_search_column_has_a_trigram_index_on_postgresql(app, backend):
    if backend != "postgresql":
        pytest.skip("SQLite has no trigram index; its LIKE scans the convening's rows")
    definition = db.session.scalar(sa.text(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_registration_search_text'"))
    assert "gin" in definition and "gin_trgm_ops" in definition
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.scalars(sa.text(
        "EXPLAIN SELECT id FROM registration WHERE search_text LIKE '%okafor%'")))
    assert "ix_registration_search_text" in plan
    db.session.rollback()
