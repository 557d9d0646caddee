"""Discount and access codes: the rules for creating, changing and deleting them, against the real database."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import CodeKind, DiscountCode, Order, Status
from convene.services import codes as service
from convene.services.payments import new_order_reference
from tests.factories import make_convening, make_registration, make_ticket
from tests.racing import race


@pytest.fixture
def scene(app):
    convening = make_convening()  # America/Toronto
    public = make_ticket(convening, name="Delegate", price_cents=45000)
    hidden = make_ticket(convening, name="Partner", price_cents=20000, hidden=True)
    return type("Scene", (), dict(convening=convening, public=public, hidden=hidden))


def data(**changes) -> dict:
    values = {"code": " spring-25 ", "kind": "percent", "percent": 15, "amount_cents": None, "max_uses": None,
              "valid_from": None, "valid_until": None, "ticket_type_ids": [], "active": True, "note": " newsletter "}
    values.update(changes)
    return values


def codes(convening_id: int) -> list[DiscountCode]:
    db.session.rollback()
    return db.session.execute(sa.select(DiscountCode).where(DiscountCode.convening_id == convening_id)
                              .order_by(DiscountCode.id)).scalars().all()


def problems_of(error: ConveneError) -> dict[str, str]:
    return {p.field: p.code for p in error.details.get("problems", [error])}


def test_a_code_is_stored_upper_case_and_trimmed(scene):
    code = service.create_code(scene.convening.id, data())
    assert (code.code, code.kind, code.percent, code.amount_cents, code.note) == ("SPRING-25", "percent", 15, 0,
                                                                                  "newsletter")
    assert code.active and code.max_uses is None and code.ticket_type_ids == []


def test_a_fixed_code_keeps_its_amount_and_drops_the_percent(scene):
    code = service.create_code(scene.convening.id, data(kind="fixed", percent=40, amount_cents=2500, max_uses=10))
    assert (code.kind, code.percent, code.amount_cents, code.max_uses) == ("fixed", 0, 2500, 10)


def test_the_validity_window_is_read_in_the_convenings_time_zone(scene):
    code = service.create_code(scene.convening.id, data(valid_from=datetime(2026, 3, 1, 9, 0),
                                                        valid_until=datetime(2026, 3, 31, 17, 0)))
    assert code.valid_from == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)  # EST
    assert code.valid_until == datetime(2026, 3, 31, 21, 0, tzinfo=UTC)  # EDT


@pytest.mark.parametrize(("changes", "field", "code"), [
    ({"code": "ab"}, "code", "code_text_invalid"),
    ({"code": "x" * 41}, "code", "code_text_invalid"),
    ({"code": "ÉTÉ25"}, "code", "code_text_invalid"),
    ({"code": "a;b--"}, "code", "code_text_invalid"),
    ({"kind": "free_beer"}, "kind", "code_kind_invalid"),
    ({"percent": None}, "percent", "percent_invalid"),
    ({"percent": 0}, "percent", "percent_invalid"),
    ({"percent": 101}, "percent", "percent_invalid"),
    ({"percent": True}, "percent", "percent_invalid"),
    ({"kind": "fixed", "amount_cents": 0}, "amount_cents", "amount_invalid"),
    ({"kind": "fixed", "amount_cents": None}, "amount_cents", "amount_invalid"),
    ({"kind": "fixed", "amount_cents": 2**31}, "amount_cents", "amount_too_large"),
    ({"max_uses": 0}, "max_uses", "max_uses_invalid"),
    ({"max_uses": -4}, "max_uses", "max_uses_invalid"),
    ({"max_uses": 2**31}, "max_uses", "max_uses_invalid"),
    ({"max_uses": "many"}, "max_uses", "max_uses_invalid"),
    ({"valid_from": datetime(2026, 3, 8, 2, 30)}, "valid_from", "local_time_missing"),
    ({"valid_from": datetime(2026, 3, 2), "valid_until": datetime(2026, 3, 2)}, "valid_until",
     "code_window_out_of_order"),
    ({"ticket_type_ids": [999999]}, "ticket_type_ids", "code_ticket_unknown"),
    ({"ticket_type_ids": ["abc"]}, "ticket_type_ids", "code_ticket_unknown"),
])
def test_bad_codes_are_refused_and_nothing_is_written(scene, changes, field, code):
    with pytest.raises(ConveneError) as caught:
        service.create_code(scene.convening.id, data(**changes))
    assert problems_of(caught.value).get(field) == code
    assert codes(scene.convening.id) == []


def test_every_problem_is_reported_at_once(scene):
    with pytest.raises(ConveneError) as caught:
        service.create_code(scene.convening.id, data(code="x", percent=500, max_uses=0,
                                                     valid_from=datetime(2026, 5, 1), valid_until=datetime(2026, 4, 1)))
    assert problems_of(caught.value) == {"code": "code_text_invalid", "percent": "percent_invalid",
                                         "max_uses": "max_uses_invalid", "valid_until": "code_window_out_of_order"}


def test_an_access_code_must_unlock_a_hidden_ticket_type(scene):
    for tickets in ([], [scene.public.id]):
        with pytest.raises(ConveneError) as caught:
            service.create_code(scene.convening.id, data(kind="access", ticket_type_ids=tickets))
        assert caught.value.code == "access_needs_tickets" and caught.value.field == "ticket_type_ids"
    code = service.create_code(scene.convening.id, data(kind="access", percent=50,
                                                        ticket_type_ids=[scene.hidden.id, scene.public.id,
                                                                         scene.hidden.id]))
    assert (code.kind, code.percent, code.ticket_type_ids) == ("access", 0, sorted([scene.hidden.id,
                                                                                    scene.public.id]))


def test_a_ticket_type_of_another_convening_is_refused(scene):
    elsewhere = make_ticket(make_convening(), name="Elsewhere", hidden=True)
    with pytest.raises(ConveneError) as caught:
        service.create_code(scene.convening.id, data(kind="access", ticket_type_ids=[elsewhere.id]))
    assert problems_of(caught.value)["ticket_type_ids"] == "code_ticket_unknown"


def test_code_text_is_unique_per_convening_whatever_its_case(scene):
    service.create_code(scene.convening.id, data(code="SPRING"))
    with pytest.raises(ConveneError) as caught:
        service.create_code(scene.convening.id, data(code="spring"))
    assert (caught.value.code, caught.value.field) == ("code_exists", "code")
    other = make_convening()
    assert service.create_code(other.id, data(code="spring")).code == "SPRING"  # another convening may


def test_update_changes_a_code_and_refuses_another_codes_text(scene):
    first = service.create_code(scene.convening.id, data(code="FIRST"))
    second = service.create_code(scene.convening.id, data(code="SECOND"))
    with pytest.raises(ConveneError) as caught:
        service.update_code(second.id, data(code="first"))
    assert caught.value.code == "code_exists"
    updated = service.update_code(first.id, data(code="first", kind="fixed", amount_cents=1000, active=False))
    assert (updated.id, updated.code, updated.kind, updated.amount_cents, updated.percent, updated.active) == (
        first.id, "FIRST", "fixed", 1000, 0, False)
    assert [c.code for c in codes(scene.convening.id)] == ["FIRST", "SECOND"]


def test_an_invalid_update_changes_nothing(scene):
    code = service.create_code(scene.convening.id, data(code="KEEP", percent=10))
    with pytest.raises(ConveneError):
        service.update_code(code.id, data(code="KEEP", percent=0, note="changed"))
    [stored] = codes(scene.convening.id)
    assert (stored.percent, stored.note) == (10, "newsletter")


def test_deleting_removes_an_unused_code(scene):
    code = service.create_code(scene.convening.id, data())
    assert service.delete_code(code.id) == "deleted"
    assert codes(scene.convening.id) == []


def test_a_code_used_even_by_a_cancelled_seat_is_only_deactivated(scene):
    code = service.create_code(scene.convening.id, data())
    make_registration(scene.convening, scene.public, 1, status=Status.CANCELLED, discount_code_id=code.id)
    assert service.delete_code(code.id) == "deactivated"
    [stored] = codes(scene.convening.id)
    assert not stored.active


def test_a_code_named_by_an_order_is_only_deactivated(scene):
    code = service.create_code(scene.convening.id, data())
    db.session.add(Order(convening_id=scene.convening.id, reference=new_order_reference(scene.convening),
                         buyer_name="A", buyer_email="a@example.org", currency="CAD", status="expired",
                         discount_code_id=code.id))
    db.session.commit()
    assert service.delete_code(code.id) == "deactivated"


def test_missing_codes_are_not_found(scene):
    for call in (lambda: service.update_code(999999, data()), lambda: service.delete_code(999999)):
        with pytest.raises(ConveneError) as caught:
            call()
        assert caught.value.code == "code_not_found" and caught.value.status_code == 404


def test_ten_organizers_adding_the_same_code_at_once_make_exactly_one(app, scene, backend):
    convening_id = scene.convening.id

    def create(n: int):
        def action() -> str:
            service.create_code(convening_id, data(code="rush" if n % 2 else "RUSH", percent=n + 1))
            return "created"
        return action

    outcomes = race(app, [create(n) for n in range(10)])
    assert sorted(outcomes) == ["code_exists"] * 9 + ["created"]
    assert [c.code for c in codes(convening_id)] == ["RUSH"]
    print(f"[{backend}] 10 racers for one code: {outcomes.count('created')} created")


def test_the_kind_labels_cover_every_kind():
    assert {k.value for k in CodeKind} == {"percent", "fixed", "access"}
