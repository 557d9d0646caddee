"""The Stripe webhook against validly signed but malformed events: a 400 that changes nothing, never a 500.

A leaked webhook secret, a Stripe API change or a bug on Stripe's side can all deliver a body that
verifies yet is not the event the handlers expect. Every body here is signed with the real
secret through the stripe library's own helper, and posted to the app's real endpoint.
"""
from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from convene.extensions import db
from convene.models import Order, OrderStatus
from tests.services.test_payments import paid_convening, register_and_checkout

HANDLED = ["checkout.session.completed", "checkout.session.async_payment_succeeded",
           "checkout.session.async_payment_failed", "checkout.session.expired", "charge.refunded"]

# Placeholders the strategies use for the real ids of the orders at stake; filled in per example.
REAL = ["$session", "$other_session", "$paid_session", "$intent", "$order_id", "$other_order_id",
        "$paid_order_id", "$reference", "$other_reference", "$paid_reference", "$total"]
NASTY_STRINGS = ["", " ", "\x00", "cs_\x00", "\ud800", "²", "١٢", "9" * 5000, "-1", "0", "2147483648",
                 "1e3", "x" * 300, "evt_" + "a" * 300, "CAD\x00", "ÇÀD", "null"]
NASTY_INTS = [-1, 0, 2**31, 2**63, -(2**63) - 1, 2**200]


def snapshot() -> dict:
    """Every row of every table, as committed."""
    db.session.rollback()
    rows = {}
    for table in db.metadata.sorted_tables:
        order_by = list(table.primary_key.columns) or list(table.columns)
        rows[table.name] = [tuple(r) for r in db.session.execute(sa.select(table).order_by(*order_by)).all()]
    db.session.rollback()
    return rows


@pytest.fixture
def at_stake(app, fake_stripe, client):
    """A pending order, a paid one (with a payment intent) and another convening's pending order."""
    convening, ticket = paid_convening()
    _, pending, _ = register_and_checkout(convening, ticket, 1)
    _, paid, _ = register_and_checkout(convening, ticket, 2)
    fake_stripe.complete(paid.stripe_session_id)
    payload, headers = fake_stripe.webhook("checkout.session.completed", fake_stripe.session(paid.stripe_session_id))
    assert client.post("/stripe/webhook", data=payload, headers=headers).json["outcome"] == "paid"
    other_convening, other_ticket = paid_convening()
    _, other, _ = register_and_checkout(other_convening, other_ticket, 3)
    db.session.rollback()
    paid = db.session.get(Order, paid.id)
    return {
        "$session": pending.stripe_session_id, "$other_session": other.stripe_session_id,
        "$paid_session": paid.stripe_session_id, "$intent": paid.stripe_payment_intent_id,
        "$order_id": str(pending.id), "$other_order_id": str(other.id), "$paid_order_id": str(paid.id),
        "$reference": pending.reference, "$other_reference": other.reference, "$paid_reference": paid.reference,
        "$total": pending.total_cents,
    }


def resolve(value, real: dict):
    """The value with each placeholder replaced by the real id it stands for."""
    if isinstance(value, str):
        return real.get(value, value)
    if isinstance(value, list):
        return [resolve(v, real) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, real) for k, v in value.items()}
    return value


def post_signed(client, fake_stripe, body, *, timestamp: int | None = None):
    payload = json.dumps(body)
    headers = {"Stripe-Signature": fake_stripe.sign(payload, timestamp=timestamp),
               "Content-Type": "application/json"}
    return client.post("/stripe/webhook", data=payload, headers=headers)


def event(kind, obj, **extra) -> dict:
    return {"id": "evt_hostile", "object": "event", "type": kind, "data": {"object": obj}, **extra}


# ---------------------------------------------------------------- random shapes

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(NASTY_INTS), st.floats(), st.text(max_size=12),
    st.sampled_from(NASTY_STRINGS), st.sampled_from(REAL), st.sampled_from(HANDLED),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=10,
)


# A realistic session or charge: the fields the handlers read, with ids of the orders at stake.
stripe_objects = st.fixed_dictionaries({
    "id": st.sampled_from(["$session", "$other_session", "$paid_session", "cs_unknown"]),
    "object": st.sampled_from(["checkout.session", "charge"]),
    "metadata": st.fixed_dictionaries({
        "order_id": st.sampled_from(["$order_id", "$other_order_id", "$paid_order_id", "abc", "²"]),
        "order_reference": st.sampled_from(["$reference", "$other_reference", "$paid_reference"]),
    }),
    "client_reference_id": st.sampled_from(["$reference", "$other_reference", "$paid_reference", "SHOP-1"]),
    "payment_intent": st.sampled_from(["$intent", "pi_new", None]),
    "payment_status": st.sampled_from(["paid", "unpaid", "no_payment_required"]),
    "status": st.sampled_from(["complete", "open", "expired"]),
    "amount_total": st.one_of(st.just("$total"), st.integers(min_value=0, max_value=10**6)),
    "currency": st.sampled_from(["cad", "CAD", "usd"]),
    "amount_refunded": st.integers(min_value=0, max_value=10**6),
})
# Where a mutation may strike: the envelope, the object, and every field a handler reads.
PATHS = [("id",), ("type",), ("data",), ("data", "object")] + [
    ("data", "object", key) for key in ("id", "metadata", "client_reference_id", "payment_intent", "payment_status",
                                        "status", "amount_total", "currency", "amount_refunded")
] + [("data", "object", "metadata", "order_id"), ("data", "object", "metadata", "order_reference")]
DROP = object()


def mutate(body: dict, path: tuple, value) -> None:
    """Drop or replace the value at `path`, if the body still has the dicts leading to it."""
    for key in path[:-1]:
        body = body.get(key) if isinstance(body, dict) else None
    if not isinstance(body, dict):
        return
    if value is DROP:
        body.pop(path[-1], None)
    else:
        body[path[-1]] = value


@st.composite
def events(draw):
    """A realistic event of a handled (or ignored) type, with up to three fields dropped or made hostile."""
    body = {"id": draw(st.sampled_from(["$event", "$event", "$event", "evt_repeated"])), "object": "event",
            "type": draw(st.sampled_from(HANDLED + ["customer.created"])), "data": {"object": draw(stripe_objects)}}
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        mutate(body, draw(st.sampled_from(PATHS)), draw(st.one_of(st.just(DROP), json_values)))
    return body


HYPOTHESIS = settings(
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check_answer(client, fake_stripe, body, real: dict) -> None:
    before = snapshot()
    answer = post_signed(client, fake_stripe, resolve(body, {**real, "$event": f"evt_{uuid.uuid4().hex}"}))
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)
    assert answer.is_json
    tally(f"{answer.status_code} {answer.json.get('outcome', '')}".strip())  # --hypothesis-show-statistics
    if answer.status_code == 400:
        assert answer.json["error"] == "bad_request"
        assert snapshot() == before
    else:
        assert answer.json["received"] is True


@settings(HYPOTHESIS, max_examples=200)
@given(body=events())
def test_any_signed_event_shape_gets_200_or_a_400_that_changes_nothing(client, fake_stripe, at_stake, body):
    check_answer(client, fake_stripe, body, at_stake)


@settings(HYPOTHESIS, max_examples=80)
@given(body=json_values)
def test_any_signed_json_body_gets_200_or_a_400_that_changes_nothing(client, fake_stripe, at_stake, body):
    check_answer(client, fake_stripe, body, at_stake)


# ---------------------------------------------------------------- the shapes that used to crash, named

MALFORMED = {
    "not_an_object": [1, 2, 3],
    "a_string": "checkout.session.completed",
    "no_id": {"type": "charge.refunded", "data": {"object": {}}},
    "id_not_a_string": {"id": 7, "type": "charge.refunded", "data": {"object": {}}},
    "id_with_nul": {"id": "evt_\x00", "type": "customer.created", "data": {"object": {}}},
    "id_lone_surrogate": {"id": "evt_\ud800", "type": "customer.created", "data": {"object": {}}},
    "no_type": {"id": "evt_1", "data": {"object": {}}},
    "type_a_list": {"id": "evt_1", "type": ["charge.refunded"], "data": {"object": {}}},
    "no_data": {"id": "evt_1", "type": "checkout.session.completed"},
    "data_null": event("checkout.session.completed", None) | {"data": None},
    "object_null": event("checkout.session.completed", None),
    "object_a_list": event("checkout.session.completed", ["$session"]),
    "ignored_event_with_a_list_for_payment_intent": event("customer.created", {"payment_intent": ["pi_1"]}),
    "session_id_a_number": event("checkout.session.completed", {"id": 5}),
    "session_id_with_nul": event("checkout.session.expired", {"id": "cs_\x00"}),
    "metadata_a_list": event("checkout.session.completed", {"id": "cs_nobody", "metadata": ["$order_id"]}),
    "currency_a_number": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                              "amount_total": "$total", "currency": 124}),
    "currency_with_nul": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                              "amount_total": 1, "currency": "CA\x00"}),
    "amount_a_string": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                            "amount_total": "lots", "currency": "cad"}),
    "amount_huge": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                        "amount_total": 2**70, "currency": "cad"}),
    "amount_nan": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                       "amount_total": float("nan"), "currency": "cad"}),
    "amount_true": event("checkout.session.completed", {"id": "$session", "payment_status": "paid",
                                                        "amount_total": True, "currency": "cad"}),
    "payment_intent_a_number": event("checkout.session.completed", {"id": "$session", "payment_intent": 42}),
    "payment_intent_too_long": event("checkout.session.completed", {"id": "$session", "payment_intent": "pi_" + "x" * 300}),
    "charge_intent_a_dict": event("charge.refunded", {"payment_intent": {"id": ["$intent"]}}),
    "refunded_a_string": event("charge.refunded", {"payment_intent": "$intent", "amount_refunded": "all"}),
    "refunded_a_list": event("charge.refunded", {"payment_intent": "$intent", "amount_refunded": [100]}),
}


@pytest.fixture
def warnings_logged(caplog, monkeypatch):
    """Captured warnings of the payment services.

    The migrations' logging.config.fileConfig disables every logger that exists when the schema is
    built, so the ones under test are switched back on for this test.
    """
    for name in ("convene.services.payments", "convene.services.stripe_api"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="convene"):
        yield caplog


@pytest.mark.one_database  # parsing a malformed event is Python's; PostgreSQL, the stricter (NUL bytes), runs it
@pytest.mark.parametrize("name", MALFORMED)
def test_a_signed_but_malformed_event_is_a_logged_400_that_changes_nothing(client, fake_stripe, at_stake,
                                                                           warnings_logged, name):
    before = snapshot()
    answer = post_signed(client, fake_stripe, resolve(MALFORMED[name], at_stake))
    assert answer.status_code == 400 and answer.is_json
    assert answer.json == {"error": "bad_request", "message": "The webhook body is not a Stripe event."}
    assert snapshot() == before
    assert any("malformed Stripe event" in r.getMessage() for r in warnings_logged.records
               if r.levelno == logging.WARNING)


def test_a_body_nested_too_deep_to_parse_is_a_logged_400(client, fake_stripe, at_stake, warnings_logged):
    payload = "[" * 100_000 + "]" * 100_000
    headers = {"Stripe-Signature": fake_stripe.sign(payload), "Content-Type": "application/json"}
    before = snapshot()
    answer = client.post("/stripe/webhook", data=payload, headers=headers)
    assert answer.status_code == 400 and answer.is_json
    assert snapshot() == before
    assert any("not JSON (RecursionError)" in r.getMessage() for r in warnings_logged.records)


@pytest.mark.parametrize("order_id", ["abc", "²", "9" * 5000, "$other_order_id", "-1", " 1"])
def test_an_order_id_in_metadata_that_is_not_one_of_ours_is_an_unknown_order(client, fake_stripe, at_stake,
                                                                             order_id):
    """Metadata is free text to Stripe: a string, or another convening's order, is not our order."""
    session = {"id": "cs_elsewhere", "object": "checkout.session", "client_reference_id": "$reference",
               "metadata": {"order_id": order_id, "order_reference": "$reference"}, "payment_status": "paid",
               "status": "complete", "amount_total": "$total", "currency": "cad"}
    before = snapshot()
    answer = post_signed(client, fake_stripe, resolve(event("checkout.session.completed", session), at_stake))
    assert answer.status_code == 200 and answer.json["outcome"] == "unknown_order"
    after = snapshot()
    assert {k: v for k, v in after.items() if k != "stripe_event"} == {
        k: v for k, v in before.items() if k != "stripe_event"}
    db.session.rollback()
    assert db.session.get(Order, int(at_stake["$other_order_id"])).status == OrderStatus.PENDING


def test_a_payment_intent_two_orders_were_given_refunds_neither(client, fake_stripe, at_stake):
    """Only a forged checkout event can give a pending order the intent that paid another; a refund then names both."""
    garbled = {"id": "$session", "object": "checkout.session", "payment_intent": "$intent", "payment_status": "unpaid",
               "status": "open"}
    first = post_signed(client, fake_stripe, resolve(event("checkout.session.completed", garbled), at_stake))
    assert first.status_code == 200 and first.json["outcome"] == "not_paid"
    refund = {"id": "ch_1", "object": "charge", "payment_intent": "$intent", "amount_refunded": 45000}
    second = post_signed(client, fake_stripe, resolve(event("charge.refunded", refund, id="evt_refund"), at_stake))
    assert second.status_code == 200 and second.json["outcome"] == "unknown_order"
    db.session.rollback()
    assert db.session.get(Order, int(at_stake["$paid_order_id"])).refunded_cents == 0


# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize("ahead, status", [(60, 200), (290, 200), (301, 400), (3600, 400), (10**9, 400)])
def test_a_signature_from_more_than_five_minutes_in_the_future_is_refused(client, fake_stripe, at_stake,
                                                                          warnings_logged, ahead, status):
    session = resolve({"id": "$session", "object": "checkout.session", "status": "expired",
                       "payment_status": "unpaid"}, at_stake)
    before = snapshot()
    answer = post_signed(client, fake_stripe, event("checkout.session.expired", session),
                         timestamp=int(time.time()) + ahead)
    assert answer.status_code == status and answer.is_json
    if status == 400:
        assert answer.json["error"] == "bad_request" and "future" in answer.json["message"]
        assert snapshot() == before
        assert any("in the future" in r.getMessage() for r in warnings_logged.records)
    else:
        assert answer.json["outcome"] == "released"


def test_a_signature_header_that_is_not_ascii_is_refused_not_a_crash(client, fake_stripe, at_stake):
    answer = client.post("/stripe/webhook", data="{}", headers={"Stripe-Signature": "t=1,v1=\u00e9\u00e9"})
    assert answer.status_code == 400 and answer.is_json
