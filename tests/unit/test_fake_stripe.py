"""The fake Stripe server, driven by the real stripe-python client over loopback HTTP."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fake_stripe import FakeStripe, decode_params

SECRET = "whsec_test_secret"


@pytest.fixture(scope="module")
def server():
    with FakeStripe(webhook_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    return server


def _client(fake: FakeStripe, retries: int, api_key: str = "sk_test_fake"):
    # An explicit http client so the test can close its keep-alive connection (no ResourceWarning).
    http = stripe.RequestsClient()
    return stripe.StripeClient(
        api_key, base_addresses={"api": fake.url}, max_network_retries=retries, http_client=http
    ), http


@pytest.fixture
def client(fake):
    client, http = _client(fake, retries=1)
    yield client
    http.close()


@pytest.fixture
def no_retry_client(fake):
    client, http = _client(fake, retries=0)
    yield client
    http.close()


def item(name: str, unit_amount: int, quantity: int = 1, currency: str = "usd", **product) -> dict:
    """A price_data line item; an empty name leaves the name out."""
    product = {"name": name, **product} if name else product
    price_data = {"currency": currency, "unit_amount": unit_amount, "product_data": product}
    return {"quantity": quantity, "price_data": price_data}


def session_params(**overrides) -> dict:
    params = {
        "mode": "payment",
        "success_url": "http://app.test/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://app.test/cart",
        "customer_email": "ada@example.com",
        "client_reference_id": "order-5",
        "metadata": {"order_id": 5, "kind": "registration"},
        "line_items": [item("Pass", 1000, quantity=2, currency="USD"), item("Dinner", 500)],
    }
    params.update(overrides)
    return params


def paid_session(client, fake, **overrides) -> dict:
    session = client.v1.checkout.sessions.create(params=session_params(**overrides))
    return fake.complete(session.id)


def test_decode_params_nests_brackets_into_dicts_and_lists():
    pairs = [
        ("line_items[0][price_data][currency]", "usd"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][quantity]", "1"),
        ("metadata[0]", "a key, not an index"),
        ("expand[]", "payment_intent"),
        ("expand[]", "line_items"),
        ("mode", "payment"),
    ]
    assert decode_params(pairs) == {
        "line_items": [{"price_data": {"currency": "usd"}, "quantity": "2"}, {"quantity": "1"}],
        "metadata": {"0": "a key, not an index"},
        "expand": ["payment_intent", "line_items"],
        "mode": "payment",
    }


def test_session_create_retrieve_expire_round_trip(client, fake):
    created = client.v1.checkout.sessions.create(params=session_params())

    assert created.object == "checkout.session"
    assert created.id.startswith("cs_test_")
    assert (created.status, created.payment_status, created.mode) == ("open", "unpaid", "payment")
    assert (created.amount_subtotal, created.amount_total, created.currency) == (2500, 2500, "usd")
    assert created.metadata.to_dict() == {"order_id": "5", "kind": "registration"}
    assert created.client_reference_id == "order-5"
    assert created.url == f"{fake.url}/checkout/{created.id}"
    assert created.payment_intent is None
    assert 23 * 3600 < created.expires_at - time.time() <= 24 * 3600

    sent = fake.requests[-1]
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", "/v1/checkout/sessions", 200)
    assert sent["idempotency_key"]  # the library adds one to every POST
    assert sent["params"]["line_items"][0] == {
        "quantity": "2",
        "price_data": {"currency": "USD", "unit_amount": "1000", "product_data": {"name": "Pass"}},
    }

    fetched = client.v1.checkout.sessions.retrieve(created.id, params={"expand": ["line_items"]})
    assert fetched.id == created.id
    assert [(item.description, item.quantity, item.amount_total) for item in fetched.line_items.data] == [
        ("Pass", 2, 2000),
        ("Dinner", 1, 500),
    ]

    expired = client.v1.checkout.sessions.expire(created.id)
    assert expired.status == "expired"
    assert fake.session(created.id)["status"] == "expired"
    with pytest.raises(stripe.InvalidRequestError, match="Only Checkout Sessions"):
        client.v1.checkout.sessions.expire(created.id)


def test_unknown_session_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"mode": None}, "mode"),
        ({"line_items": []}, "line_items"),
        ({"line_items": [item("Pass", 900, quantity=0)]}, "line_items[0][quantity]"),
        ({"line_items": [item("", 900, description="no name")]}, "line_items[0][price_data][product_data][name]"),
        ({"line_items": [item("a", 900), item("b", 900, currency="eur")]}, "line_items"),
        ({"line_items": [item("Pass", 20)]}, "line_items"),  # under Stripe's minimum charge
        ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]"),
        ({"custmer_email": "typo@example.com"}, "custmer_email"),
    ],
)
def test_session_validation_like_stripe(client, fake, overrides, param):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(**overrides))
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert fake.sessions == []


@pytest.mark.parametrize("minutes", [20, 24 * 60 + 5])
def test_expires_at_outside_stripes_window_is_refused(client, fake, minutes):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=session_params(expires_at=int(time.time()) + minutes * 60))
    assert caught.value.param == "expires_at"


def test_expires_at_inside_the_window_is_kept(client):
    expires_at = int(time.time()) + 31 * 60
    assert client.v1.checkout.sessions.create(params=session_params(expires_at=expires_at)).expires_at == expires_at


def test_same_idempotency_key_replays_the_first_answer(client, fake):
    options = {"idempotency_key": "order-5-attempt-1"}
    first = client.v1.checkout.sessions.create(params=session_params(), options=options)
    again = client.v1.checkout.sessions.create(params=session_params(), options=options)

    assert again.id == first.id
    assert len(fake.sessions) == 1
    assert [r["replayed"] for r in fake.requests] == [False, True]

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(params=session_params(client_reference_id="other"), options=options)


def test_library_retries_an_injected_500_with_the_same_key(client, fake):
    fake.fail_next(1)
    session = client.v1.checkout.sessions.create(params=session_params())

    calls = fake.requests
    assert [c["status"] for c in calls] == [500, 200]
    assert calls[0]["idempotency_key"] == calls[1]["idempotency_key"]
    assert [s["id"] for s in fake.sessions] == [session.id]


def test_a_lost_response_is_replayed_on_retry(client, fake):
    fake.fail_next(1, lose_response=True)
    session = client.v1.checkout.sessions.create(params=session_params())

    assert [(c["status"], c["replayed"]) for c in fake.requests] == [(500, False), (200, True)]
    assert [s["id"] for s in fake.sessions] == [session.id]


def test_failures_beyond_the_retries_reach_the_caller(no_retry_client, fake):
    fake.fail_next(1, status=503)
    with pytest.raises(stripe.APIError):
        no_retry_client.v1.checkout.sessions.create(params=session_params())
    assert fake.sessions == []


def test_a_bad_api_key_is_refused(fake):
    client, http = _client(fake, retries=0, api_key="pk_test_publishable")
    try:
        with pytest.raises(stripe.AuthenticationError):
            client.v1.checkout.sessions.retrieve("cs_test_whatever")
    finally:
        http.close()


def test_complete_makes_a_succeeded_intent_and_charge(client, fake):
    session = paid_session(client, fake)

    assert (session["status"], session["payment_status"]) == ("complete", "paid")
    intent = client.v1.payment_intents.retrieve(session["payment_intent"])
    assert (intent.status, intent.amount, intent.currency) == ("succeeded", 2500, "usd")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.to_dict() == fake.charge_for(intent.id)
    assert (charge.amount_captured, charge.amount_refunded, charge.refunded) == (2500, 0, False)


def test_payment_intent_data_metadata_reaches_the_intent(client, fake):
    session = paid_session(
        client,
        fake,
        line_items=[item("Pass — Convening 2026", 4200)],
        payment_intent_data={"metadata": {"order_id": "5"}, "description": "Convening 2026 — R-5"},
    )
    assert fake.payment_intent(session["payment_intent"])["metadata"] == {"order_id": "5"}
    assert fake.charge_for(session["payment_intent"])["amount"] == 4200


def test_refunds_partial_then_the_rest_then_nothing_left(client, fake):
    intent_id = paid_session(client, fake)["payment_intent"]

    partial = client.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": 1000, "metadata": {"refund_id": 7}}
    )
    assert (partial.object, partial.amount, partial.status) == ("refund", 1000, "succeeded")
    assert partial.metadata.to_dict() == {"refund_id": "7"}
    assert (fake.charge_for(intent_id)["amount_refunded"], fake.charge_for(intent_id)["refunded"]) == (1000, False)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1501})
    assert too_much.value.code == "amount_too_large"

    rest = client.v1.refunds.create(params={"payment_intent": intent_id})
    assert rest.amount == 1500
    assert client.v1.refunds.retrieve(rest.id).charge == partial.charge
    assert (fake.charge_for(intent_id)["amount_refunded"], fake.charge_for(intent_id)["refunded"]) == (2500, True)

    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1})
    assert again.value.code == "charge_already_refunded"


def test_refund_waits_for_an_async_payment_to_settle(client, fake):
    created = client.v1.checkout.sessions.create(params=session_params())
    session = fake.complete(created.id, paid=False)
    assert (session["status"], session["payment_status"]) == ("complete", "unpaid")

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": session["payment_intent"]})
    assert caught.value.code == "payment_intent_unexpected_state"

    assert fake.settle_async(created.id, succeeded=True)["payment_status"] == "paid"
    assert client.v1.refunds.create(params={"payment_intent": session["payment_intent"]}).amount == 2500


def test_failed_async_payment_leaves_the_session_unpaid(client, fake):
    created = client.v1.checkout.sessions.create(params=session_params())
    session = fake.complete(created.id, paid=False)
    assert fake.settle_async(created.id, succeeded=False)["payment_status"] == "unpaid"
    assert fake.payment_intent(session["payment_intent"])["status"] == "requires_payment_method"


def test_refund_of_an_unknown_intent_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": "pi_unknown"})
    assert caught.value.code == "resource_missing"


def test_webhook_verifies_with_the_library_and_not_with_another_secret(client, fake):
    session = paid_session(client, fake)
    payload, headers = fake.webhook("checkout.session.completed", session, event_id="evt_fixed")

    event = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], SECRET)
    assert (event.id, event.type, event.data.object.id) == ("evt_fixed", "checkout.session.completed", session["id"])
    assert event.data.object.payment_status == "paid"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], "whsec_someone_else")
    old = fake.sign(payload, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(payload, old, SECRET)


@pytest.fixture
def receiver():
    """A tiny app that records the webhooks posted to it."""
    received: list[tuple[str, str]] = []

    def app(environ, start_response):
        request = Request(environ)
        received.append((request.get_data(as_text=True), request.headers.get("Stripe-Signature", "")))
        return Response("ok")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/stripe/webhook", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_hosted_page_pays_notifies_and_returns(client, fake, receiver):
    fake.webhook_url, received = receiver
    session = client.v1.checkout.sessions.create(params=session_params())

    page = requests.get(session.url, timeout=5)
    assert "<title>Fake Stripe Checkout</title>" in page.text
    assert "25.00 USD" in page.text
    assert 'id="pay"' in page.text and 'id="back" href="http://app.test/cart"' in page.text

    answer = requests.post(session.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"http://app.test/paid?session={session.id}"
    assert (fake.session(session.id)["status"], fake.session(session.id)["payment_status"]) == ("complete", "paid")

    [(payload, signature)] = received
    event = stripe.Webhook.construct_event(payload, signature, SECRET)
    assert (event.type, event.data.object.id) == ("checkout.session.completed", session.id)
    assert fake.webhook_deliveries == [{"event_id": event.id, "type": event.type, "status": 200}]


def test_hosted_page_can_skip_the_webhook(client, fake, receiver):
    fake.webhook_url, received = receiver
    fake.deliver_webhook_first = False
    session = client.v1.checkout.sessions.create(params=session_params())

    answer = requests.post(session.url, allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    assert received == [] and fake.webhook_deliveries == []
    assert fake.session(session.id)["payment_status"] == "paid"


def test_hosted_page_of_an_expired_session_does_not_pay(client, fake):
    session = client.v1.checkout.sessions.create(params=session_params())
    fake.expire(session.id)

    assert "expired" in requests.get(session.url, timeout=5).text
    assert requests.post(session.url, allow_redirects=False, timeout=5).status_code == 409
    assert fake.session(session.id)["payment_status"] == "unpaid"


def test_event_shape(fake):
    event = fake.event("charge.refunded", {"id": "ch_1", "object": "charge"}, created=123)
    assert json.loads(json.dumps(event)) == {
        "id": event["id"],
        "object": "event",
        "api_version": stripe.api_version,
        "created": 123,
        "data": {"object": {"id": "ch_1", "object": "charge"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "charge.refunded",
    }
