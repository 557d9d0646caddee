"""A fake Stripe API on loopback: the real stripe-python library talks to it over HTTP, no mocks.

Only what Convene uses is implemented (Checkout Sessions in payment mode, payment intents, charges,
refunds, signed webhooks, a hosted checkout page), but that part answers like Stripe does: the same
form encoding, error bodies, idempotent replays and validation, so the library's own parsing, error
classes and retries are exercised for real.
"""
from __future__ import annotations

import copy
import html
import json
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import stripe
from stripe.params import RefundCreateParams
from stripe.params.checkout import (
    SessionCreateParams,
    SessionCreateParamsLineItem,
    SessionCreateParamsLineItemPriceData,
    SessionCreateParamsLineItemPriceDataProductData,
)
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

# The params TypedDicts also list per-request options (api_key, idempotency_key...) that travel as
# headers, never as form fields, so they are not valid parameter names on the wire.
_REQUEST_OPTIONS = frozenset(stripe.RequestOptions.__annotations__)

# Currencies whose amounts are in whole units (Stripe's list), for showing amounts on the page.
_ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
# Stripe refuses a payment below the currency's minimum charge; those not listed use 50 minor units.
_MINIMUM_CHARGE = {"gbp": 30, "hkd": 400, "jpy": 50, "mxn": 1000, "nok": 300, "sek": 300, "dkk": 250}

_MODES = ("payment", "setup", "subscription")
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_ALNUM = string.ascii_letters + string.digits


class StripeError(Exception):
    """An error answer in Stripe's JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        stored: bool = True,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        # Stripe saves an idempotent result only once the endpoint started executing: a request
        # that failed parameter validation can be retried with the same key and fixed params.
        self.stored = stored

    def body(self) -> dict:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    """A parameter validation error (400, never saved for idempotent replay)."""
    return StripeError(400, message, param=param, code=code, stored=False)


def _missing(param: str) -> StripeError:
    return _invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def _new_id(prefix: str, length: int = 24) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALNUM) for _ in range(length))


def _now() -> int:
    return int(time.time())


def _pname(prefix: str, key: str | int) -> str:
    """Stripe's name for a nested parameter, as its errors report it: line_items[0][quantity]."""
    return f"{prefix}[{key}]" if prefix else str(key)


def decode_params(pairs: list[tuple[str, str]]) -> dict:
    """Nested dict (lists for [0], [1]... or []) from Stripe's bracket form encoding."""
    root: dict = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        if bracket and rest.endswith("]"):
            parts = [head, *rest[:-1].split("][")]
        else:
            parts = [key]
        node = root
        for part in parts[:-1]:
            part = part or str(len(node))
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1] or str(len(node))] = value
    return _listify(root)


def _listify(value: Any, key: str | None = None) -> Any:
    """Turn the {"0": ..., "1": ...} dicts that indexed keys produce into lists."""
    if not isinstance(value, dict):
        return value
    # Metadata keys are free text: a metadata key "0" is a key, not an index.
    children = {k: (v if key == "metadata" else _listify(v, k)) for k, v in value.items()}
    if children and key != "metadata" and sorted(children) == sorted(str(i) for i in range(len(children))):
        return [children[str(i)] for i in range(len(children))]
    return children


def _check_known(params: dict, typed_dict: type, prefix: str = "") -> None:
    """Refuse parameter names the API does not have, as Stripe does (catches typos in the app)."""
    known = set(typed_dict.__annotations__) - _REQUEST_OPTIONS
    for key in params:
        if key not in known:
            name = _pname(prefix, key)
            raise _invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _int(value: Any, param: str, *, minimum: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise _invalid(
            f"This value must be greater than or equal to {minimum}.",
            param=param,
            code="parameter_invalid_integer",
        )
    return number


def _string(value: Any, param: str) -> str | None:
    """A string param; Stripe reads an empty string as 'unset'."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _invalid(f"Invalid string: {value}", param=param, code="parameter_invalid_string")
    return value


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Metadata with Stripe's limits: 50 keys, keys up to 40 characters, values up to 500."""
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid("Invalid object", param=param)
    if len(value) > 50:
        raise _invalid("Metadata can have a maximum of 50 keys.", param=param)
    result = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise _invalid(f"Invalid string: {item}", param=_pname(param, key), code="parameter_invalid_string")
        if len(key) > 40:
            raise _invalid("Metadata keys can have a maximum length of 40 characters.", param=_pname(param, key))
        if len(item) > 500:
            raise _invalid("Metadata values can have a maximum length of 500 characters.", param=_pname(param, key))
        if item:  # an empty value unsets the key
            result[key] = item
    return result


def format_amount(amount: int, currency: str) -> str:
    """12.50 USD from (1250, "usd"), in the currency's own minor unit."""
    if currency.lower() in _ZERO_DECIMAL:
        return f"{amount} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d} {currency.upper()}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stripe counts a 3xx answer to a webhook as a failed delivery and does not follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (test output stays readable)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class FakeStripe:
    """Stripe's API on 127.0.0.1 for tests, with controls to play the customer and Stripe's side."""

    def __init__(self, webhook_secret: str = "whsec_test_secret"):
        self.webhook_secret = webhook_secret
        self.url = ""
        self._server = None
        self._thread: threading.Thread | None = None
        # Reentrant: test controls call each other while holding it.
        self._lock = threading.RLock()
        self.reset()

    # --- server lifecycle -------------------------------------------------------------------

    def start(self) -> FakeStripe:
        """Serve on a free loopback port in a daemon thread."""
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll interval keeps stop() quick; the default would add half a second per run.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-stripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every object, stored idempotent result, queued failure, record and setting."""
        with self._lock:
            self._sessions: dict[str, dict] = {}
            self._line_items: dict[str, list[dict]] = {}
            self._intent_metadata: dict[str, dict] = {}  # session id -> payment_intent_data[metadata]
            self._payment_intents: dict[str, dict] = {}
            self._charges: dict[str, dict] = {}
            self._refunds: dict[str, dict] = {}
            self._idempotent: dict[tuple[str, str], dict] = {}
            self._failures: list[tuple[int, bool]] = []
            self._requests: list[dict] = []
            self._deliveries: list[dict] = []
            # Where the hosted page's Pay button delivers checkout.session.completed (None: nowhere).
            self.webhook_url: str | None = None
            # False: the Pay button skips the webhook, so only the return page can fulfil.
            self.deliver_webhook_first = True

    # --- records and failure injection ------------------------------------------------------

    @property
    def requests(self) -> list[dict]:
        """Every /v1 call so far: {method, path, idempotency_key, params, status, replayed}."""
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def webhook_deliveries(self) -> list[dict]:
        """Webhooks POSTed to webhook_url: {event_id, type, status} (status None: no answer)."""
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def fail_next(self, n: int = 1, status: int = 500, *, lose_response: bool = False) -> None:
        """Answer the next n API requests with `status` and an api_error body.

        By default the failure happens before any work, so a retry does the real work. With
        lose_response=True the work is done (and saved for idempotent replay) but the answer is
        lost on the way back, as in a timeout: a retry with the same key gets the replay.
        """
        with self._lock:
            self._failures.extend([(status, lose_response)] * n)

    # --- test controls: Stripe's side of a payment ------------------------------------------

    @property
    def sessions(self) -> list[dict]:
        """Every Checkout Session, in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._sessions.values()))

    @property
    def refunds(self) -> list[dict]:
        """Every refund, in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._refunds.values()))

    def session(self, session_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._session(session_id))

    def payment_intent(self, payment_intent_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._payment_intents[payment_intent_id])

    def charge_for(self, payment_intent_id: str) -> dict:
        """The charge of a payment intent (KeyError if it has none yet)."""
        with self._lock:
            charge_id = self._payment_intents[payment_intent_id]["latest_charge"]
            if charge_id is None:
                raise KeyError(f"{payment_intent_id} has no charge")
            return copy.deepcopy(self._charges[charge_id])

    def complete(
        self, session_id: str, *, paid: bool = True, amount_total: int | None = None, currency: str | None = None
    ) -> dict:
        """The customer pays: paid now, or (paid=False) by an async method still processing.

        amount_total/currency override what the session asked for, to play a payment that does
        not match the order.
        """
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise ValueError(f"{session_id} is {session['status']}; only an open session can complete")
            if amount_total is not None:
                session["amount_total"] = amount_total
            if currency is not None:
                session["currency"] = currency.lower()
            intent = {
                "id": _new_id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": 0,
                "currency": session["currency"],
                "status": "processing",
                "latest_charge": None,
                "last_payment_error": None,
                "metadata": dict(self._intent_metadata.get(session_id, {})),
                "created": _now(),
                "livemode": False,
            }
            self._payment_intents[intent["id"]] = intent
            session.update(
                status="complete",
                payment_status="unpaid",
                payment_intent=intent["id"],
                customer_details={"email": session["customer_email"] or "customer@example.com", "name": None},
            )
            if paid:
                self._succeed(session, intent)
            return copy.deepcopy(session)

    def settle_async(self, session_id: str, succeeded: bool) -> dict:
        """A delayed payment method (bank debit...) finally succeeds or fails."""
        with self._lock:
            session = self._session(session_id)
            intent = self._payment_intents.get(session["payment_intent"] or "")
            if session["status"] != "complete" or intent is None or intent["status"] != "processing":
                raise ValueError(f"{session_id} has no payment still processing")
            if succeeded:
                self._succeed(session, intent)
            else:
                # What Stripe does when a delayed payment fails: the intent wants a new method.
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "type": "card_error",
                    "code": "payment_method_provider_decline",
                    "message": "The payment was declined.",
                }
            return copy.deepcopy(session)

    def expire(self, session_id: str) -> dict:
        """The session's expires_at passes without payment."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise ValueError(f"{session_id} is {session['status']}; only an open session can expire")
            session["status"] = "expired"
            return copy.deepcopy(session)

    # --- test controls: webhooks ------------------------------------------------------------

    def event(self, type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> dict:
        """A Stripe event carrying `obj`, as webhooks deliver it."""
        return {
            "id": event_id or _new_id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": _now() if created is None else created,
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }

    def sign(self, payload: str, *, secret: str | None = None, timestamp: int | None = None) -> str:
        """The Stripe-Signature header for `payload`, made by the library's own helper."""
        return stripe.WebhookSignature.generate_signature_header(payload, secret or self.webhook_secret, timestamp)

    def webhook(
        self,
        type: str,
        obj: dict,
        *,
        event_id: str | None = None,
        created: int | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[str, dict[str, str]]:
        """(payload, headers) of a signed event, ready to POST to the app's webhook endpoint."""
        payload = json.dumps(self.event(type, obj, event_id=event_id, created=created))
        headers = {
            "Stripe-Signature": self.sign(payload, secret=secret, timestamp=timestamp),
            "Content-Type": "application/json",
        }
        return payload, headers

    def deliver(self, type: str, obj: dict, **kw: Any) -> int | None:
        """POST a signed event to webhook_url now (kw as for webhook()); the answer's status, None if none."""
        if not self.webhook_url:
            raise ValueError("set webhook_url first")
        payload, headers = self.webhook(type, obj, **kw)
        event_id = json.loads(payload)["id"]
        request = urllib.request.Request(self.webhook_url, data=payload.encode(), headers=headers, method="POST")
        status: int | None = None
        try:
            with urllib.request.build_opener(_NoRedirect).open(request, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as refusal:
            status = refusal.code
            refusal.close()  # it holds the response socket open otherwise
        except (urllib.error.URLError, OSError):
            pass  # as with Stripe, the app being down is the app's problem; the record shows it
        with self._lock:
            self._deliveries.append({"event_id": event_id, "type": type, "status": status})
        return status

    # --- internals: state -------------------------------------------------------------------

    def _session(self, session_id: str) -> dict:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise KeyError(f"no Checkout Session {session_id}") from None

    def _succeed(self, session: dict, intent: dict) -> None:
        """The money arrives: a charge, a succeeded intent, a paid session."""
        charge = {
            "id": _new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "captured": True,
            "currency": intent["currency"],
            "paid": True,
            "payment_intent": intent["id"],
            "refunded": False,
            "status": "succeeded",
            "metadata": dict(intent["metadata"]),
            "created": _now(),
            "livemode": False,
        }
        self._charges[charge["id"]] = charge
        intent.update(status="succeeded", amount_received=intent["amount"], latest_charge=charge["id"])
        session["payment_status"] = "paid"

    def _lookup(self, object_id: str) -> dict | None:
        stores = {
            "cs": self._sessions,
            "pi": self._payment_intents,
            "ch": self._charges,
            "re": self._refunds,
        }
        return stores.get(object_id.split("_", 1)[0], {}).get(object_id)

    def _expand(self, obj: dict, paths: Any) -> dict:
        """A copy of obj with the expand[] paths replaced by the objects they name."""
        obj = copy.deepcopy(obj)
        if paths in (None, ""):
            return obj
        if not isinstance(paths, list):
            raise _invalid("Invalid array", param="expand")
        for path in paths:
            field, _, rest = str(path).partition(".")
            if field == "line_items" and obj.get("object") == "checkout.session":
                obj["line_items"] = self._line_items_list(obj["id"])
            elif field in obj and obj[field] is None:
                pass  # Stripe leaves an expanded null as null
            elif isinstance(obj.get(field), str) and (target := self._lookup(obj[field])) is not None:
                obj[field] = self._expand(target, [rest] if rest else None)
            else:
                raise _invalid(f"This property cannot be expanded ({path}).", param="expand")
        return obj

    def _line_items_list(self, session_id: str) -> dict:
        return {
            "object": "list",
            "data": copy.deepcopy(self._line_items[session_id]),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }

    # --- internals: HTTP --------------------------------------------------------------------

    _ROUTES = [
        ("POST", re.compile(r"/v1/checkout/sessions"), "_create_session"),
        ("GET", re.compile(r"/v1/checkout/sessions/(cs_[\w]+)"), "_retrieve_session"),
        ("GET", re.compile(r"/v1/checkout/sessions/(cs_[\w]+)/line_items"), "_list_line_items"),
        ("POST", re.compile(r"/v1/checkout/sessions/(cs_[\w]+)/expire"), "_expire_session"),
        ("POST", re.compile(r"/v1/refunds"), "_create_refund"),
        ("GET", re.compile(r"/v1/refunds/([\w]+)"), "_retrieve_refund"),
        ("GET", re.compile(r"/v1/payment_intents/([\w]+)"), "_retrieve_payment_intent"),
        ("GET", re.compile(r"/v1/charges/([\w]+)"), "_retrieve_charge"),
    ]

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/v1/"):
            response = self._api(request)
        elif request.path.startswith("/checkout/"):
            response = self._hosted(request)
        else:
            response = Response("Not found", 404, content_type="text/plain")
        return response(environ, start_response)

    def _api(self, request: Request) -> Response:
        if request.method == "POST":
            raw = request.get_data(as_text=True)
        else:
            raw = request.query_string.decode()
        params = decode_params(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        # The library sends a key with every POST; GETs are naturally idempotent and have none.
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        # One request at a time: idempotency checks and state changes must not interleave.
        with self._lock:
            record = {
                "method": request.method,
                "path": request.path,
                "idempotency_key": key,
                "params": params,
                "status": None,
                "replayed": False,
            }
            self._requests.append(record)
            status, body, headers = self._answer(request, params, key)
            record["status"] = status
            record["replayed"] = headers.get("Idempotent-Replayed") == "true"
        headers["Request-Id"] = _new_id("req", 14)
        return Response(json.dumps(body, indent=2), status, headers, content_type="application/json")

    def _answer(self, request: Request, params: dict, key: str | None) -> tuple[int, dict, dict]:
        """(status, body, headers) for one API call, or an injected failure; the caller holds the lock."""
        if not self._failures:
            return self._serve(request, params, key)
        status, lose_response = self._failures.pop(0)
        if lose_response:  # the work is done and saved, but the client never hears of it
            self._serve(request, params, key)
        error = StripeError(status, "Injected failure (fake_stripe.fail_next).", type="api_error")
        return error.status, error.body(), {}

    def _serve(self, request: Request, params: dict, key: str | None) -> tuple[int, dict, dict]:
        """Authentication, then an idempotent replay or the endpoint itself."""
        api_key = self._api_key(request)
        if api_key is None:
            error = StripeError(
                401,
                "Invalid API Key provided. Send it as a Bearer token: Authorization: Bearer sk_test_...",
            )
            return error.status, error.body(), {}

        saved_key = (api_key, key) if key else None
        if saved_key and saved_key in self._idempotent:
            saved = self._idempotent[saved_key]
            if (saved["method"], saved["path"], saved["params"]) != (request.method, request.path, params):
                error = StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error",
                )
                return error.status, error.body(), {}
            return saved["status"], copy.deepcopy(saved["body"]), {"Idempotent-Replayed": "true"}

        status, body, stored = self._route(request, params)
        if saved_key and stored:
            self._idempotent[saved_key] = {
                "method": request.method,
                "path": request.path,
                "params": params,
                "status": status,
                "body": copy.deepcopy(body),
            }
        return status, body, {}

    @staticmethod
    def _api_key(request: Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token.startswith(("sk_", "rk_")):
            return None
        return token

    def _route(self, request: Request, params: dict) -> tuple[int, dict, bool]:
        """(status, body, whether idempotency may save it) from the matching endpoint."""
        path_known = False
        for method, pattern, handler in self._ROUTES:
            match = pattern.fullmatch(request.path)
            if match:
                path_known = True
                if method == request.method:
                    try:
                        return 200, getattr(self, handler)(params, *match.groups()), True
                    except StripeError as error:
                        return error.status, error.body(), error.stored
        message = f"Unrecognized request URL ({request.method}: {request.path})."
        if path_known:
            message += " This URL exists, but not with that method."
        error = StripeError(404, message)
        return error.status, error.body(), False

    # --- endpoints --------------------------------------------------------------------------

    def _create_session(self, params: dict) -> dict:
        _check_known(params, SessionCreateParams)
        mode = _string(params.get("mode"), "mode")
        if mode is None:
            raise _missing("mode")
        if mode not in _MODES:
            raise _invalid(f"Invalid mode: must be one of {', '.join(_MODES)}", param="mode")
        if mode != "payment":
            raise _invalid("fake_stripe implements only mode=payment", param="mode")
        success_url = _string(params.get("success_url"), "success_url")
        if success_url is None:
            raise _missing("success_url")
        for name in ("success_url", "cancel_url"):
            url = _string(params.get(name), name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise _invalid("Not a valid URL", param=name, code="url_invalid")
        customer_email = _string(params.get("customer_email"), "customer_email")
        if customer_email is not None and "@" not in customer_email:
            raise _invalid(f"Invalid email address: {customer_email}", param="customer_email", code="email_invalid")
        client_reference_id = _string(params.get("client_reference_id"), "client_reference_id")
        if client_reference_id is not None and len(client_reference_id) > 200:
            raise _invalid("client_reference_id can be at most 200 characters.", param="client_reference_id")
        metadata = _metadata(params.get("metadata"))
        intent_data = params.get("payment_intent_data") or {}
        intent_metadata = _metadata(
            intent_data.get("metadata") if isinstance(intent_data, dict) else None, "payment_intent_data[metadata]"
        )

        raw_items = params.get("line_items")
        if raw_items in (None, ""):
            raise _invalid("line_items is required in payment mode.", param="line_items", code="parameter_missing")
        if not isinstance(raw_items, list) or not raw_items:
            raise _invalid("Invalid array", param="line_items")
        items = [self._line_item(raw, _pname("line_items", i)) for i, raw in enumerate(raw_items)]
        currencies = {item["currency"] for item in items}
        if len(currencies) > 1:
            raise _invalid(
                "All line items must use the same currency; this session has " + ", ".join(sorted(currencies)) + ".",
                param="line_items",
            )
        currency = currencies.pop()
        amount = sum(item["amount_total"] for item in items)
        minimum = _MINIMUM_CHARGE.get(currency, 50)
        if amount < minimum:
            raise _invalid(
                "The Checkout Session's total amount due must add up to at least "
                f"{format_amount(minimum, currency)}.",
                param="line_items",
                code="amount_too_small",
            )

        now = _now()
        expires_at = now + 24 * 3600
        if params.get("expires_at") not in (None, ""):
            expires_at = _int(params["expires_at"], "expires_at")
            # Stripe's window is 30 minutes to 24 hours; a minute of slack under 30 min absorbs
            # the time between the app computing the timestamp and the request arriving.
            if expires_at < now + 30 * 60 - 60:
                raise _invalid(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                    param="expires_at",
                )
            if expires_at > now + 24 * 3600:
                raise _invalid(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                    param="expires_at",
                )

        session_id = _new_id("cs_test", 58)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": _string(params.get("cancel_url"), "cancel_url"),
            "client_reference_id": client_reference_id,
            "created": now,
            "currency": currency,
            "customer_details": None,
            "customer_email": customer_email,
            "expires_at": expires_at,
            "livemode": False,
            "metadata": metadata,
            "mode": mode,
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success_url,
            "ui_mode": "hosted",
            "url": f"{self.url}/checkout/{session_id}",
        }
        self._sessions[session_id] = session
        self._line_items[session_id] = items
        self._intent_metadata[session_id] = intent_metadata
        try:
            return self._expand(session, params.get("expand"))
        except StripeError:  # Stripe checks expand[] before creating anything
            del self._sessions[session_id], self._line_items[session_id], self._intent_metadata[session_id]
            raise

    def _line_item(self, raw: Any, prefix: str) -> dict:
        """One line item from its params, as Stripe lists it (object "item")."""
        if not isinstance(raw, dict):
            raise _invalid("Invalid object", param=prefix)
        _check_known(raw, SessionCreateParamsLineItem, prefix)
        if "price" in raw:
            raise _invalid("fake_stripe has no Price objects; send price_data", param=_pname(prefix, "price"))
        price_data = raw.get("price_data")
        price_prefix = _pname(prefix, "price_data")
        if not isinstance(price_data, dict):
            raise _missing(price_prefix)
        _check_known(price_data, SessionCreateParamsLineItemPriceData, price_prefix)
        currency = _string(price_data.get("currency"), _pname(price_prefix, "currency"))
        if currency is None:
            raise _missing(_pname(price_prefix, "currency"))
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise _invalid(f"Invalid currency: {currency}", param=_pname(price_prefix, "currency"))
        if price_data.get("unit_amount") in (None, ""):
            raise _missing(_pname(price_prefix, "unit_amount"))
        unit_amount = _int(price_data["unit_amount"], _pname(price_prefix, "unit_amount"), minimum=0)
        product_data = price_data.get("product_data")
        product_prefix = _pname(price_prefix, "product_data")
        if not isinstance(product_data, dict):
            raise _missing(product_prefix)
        _check_known(product_data, SessionCreateParamsLineItemPriceDataProductData, product_prefix)
        name = _string(product_data.get("name"), _pname(product_prefix, "name"))
        if name is None:
            raise _missing(_pname(product_prefix, "name"))
        _metadata(product_data.get("metadata"), _pname(product_prefix, "metadata"))
        if raw.get("quantity") in (None, ""):
            raise _missing(_pname(prefix, "quantity"))
        quantity = _int(raw["quantity"], _pname(prefix, "quantity"), minimum=1)
        currency = currency.lower()
        return {
            "id": _new_id("li"),
            "object": "item",
            "amount_subtotal": unit_amount * quantity,
            "amount_total": unit_amount * quantity,
            "currency": currency,
            "description": name,
            "price": {
                "id": _new_id("price"),
                "object": "price",
                "currency": currency,
                "unit_amount": unit_amount,
                "product": _new_id("prod", 14),
            },
            "quantity": quantity,
        }

    def _retrieve_session(self, params: dict, session_id: str) -> dict:
        return self._expand(self._existing(self._sessions, session_id, "checkout.session"), params.get("expand"))

    def _list_line_items(self, params: dict, session_id: str) -> dict:
        self._existing(self._sessions, session_id, "checkout.session")
        return self._line_items_list(session_id)

    def _expire_session(self, params: dict, session_id: str) -> dict:
        session = self._existing(self._sessions, session_id, "checkout.session")
        if session["status"] != "open":
            raise StripeError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. '
                f'This Checkout Session has a status of "{session["status"]}".',
            )
        session["status"] = "expired"
        return self._expand(session, params.get("expand"))

    def _create_refund(self, params: dict) -> dict:
        _check_known(params, RefundCreateParams)
        intent_id = _string(params.get("payment_intent"), "payment_intent")
        charge_id = _string(params.get("charge"), "charge")
        if intent_id is None and charge_id is None:
            raise _missing("payment_intent")
        amount = None
        if params.get("amount") not in (None, ""):
            amount = _int(params["amount"], "amount", minimum=1)
        reason = _string(params.get("reason"), "reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise _invalid(f"Invalid reason: must be one of {', '.join(_REFUND_REASONS)}", param="reason")
        metadata = _metadata(params.get("metadata"))

        # From here on the endpoint is executing: its refusals are saved for idempotent replay.
        if intent_id is None:
            charge = self._charges.get(charge_id or "")
            if charge is None:
                raise StripeError(400, f"No such charge: '{charge_id}'", code="resource_missing", param="charge")
            intent_id = charge["payment_intent"]
        intent = self._payment_intents.get(intent_id)
        if intent is None:
            raise StripeError(
                400, f"No such payment_intent: '{intent_id}'", code="resource_missing", param="payment_intent"
            )
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise StripeError(
                400,
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="payment_intent_unexpected_state",
                param="payment_intent",
            )
        charge = self._charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise StripeError(
                400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount is None:
            amount = left
        if amount > left:
            raise StripeError(
                400,
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded amount "
                f"on charge ({format_amount(left, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": _now(),
            "currency": charge["currency"],
            "metadata": metadata,
            "payment_intent": intent["id"],
            "reason": reason,
            "status": "succeeded",
        }
        self._expand(refund, params.get("expand"))  # a bad expand[] must fail before the money moves
        self._refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return self._expand(refund, params.get("expand"))

    def _retrieve_refund(self, params: dict, refund_id: str) -> dict:
        return self._expand(self._existing(self._refunds, refund_id, "refund"), params.get("expand"))

    def _retrieve_payment_intent(self, params: dict, intent_id: str) -> dict:
        intent = self._existing(self._payment_intents, intent_id, "payment_intent")
        return self._expand(intent, params.get("expand"))

    def _retrieve_charge(self, params: dict, charge_id: str) -> dict:
        return self._expand(self._existing(self._charges, charge_id, "charge"), params.get("expand"))

    @staticmethod
    def _existing(store: dict, object_id: str, kind: str) -> dict:
        if object_id not in store:
            raise StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param="id")
        return store[object_id]

    # --- hosted checkout page ---------------------------------------------------------------

    def _hosted(self, request: Request) -> Response:
        session_id = request.path.removeprefix("/checkout/").strip("/")
        with self._lock:
            session = copy.deepcopy(self._sessions.get(session_id))
            items = copy.deepcopy(self._line_items.get(session_id, []))
        if session is None:
            return self._page("No such Checkout Session.", status=404)
        if request.method == "POST":
            return self._pay(session)
        return self._page(self._summary(session, items), session=session)

    def _pay(self, session: dict) -> Response:
        """The Pay button: the session completes, Stripe notifies the app, the customer returns."""
        if session["status"] == "expired":
            return self._page("This Checkout Session has expired.", session=session, status=409)
        if session["status"] == "open":
            try:
                session = self.complete(session["id"])
            except ValueError:  # a second click that lost the race: already complete
                session = self.session(session["id"])
            # Outside the lock: the app's webhook handler may well call this server back.
            if self.deliver_webhook_first and self.webhook_url:
                self.deliver("checkout.session.completed", session)
        success = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
        return Response("", 303, {"Location": success})

    @staticmethod
    def _summary(session: dict, items: list[dict]) -> str:
        if session["status"] == "complete":
            return "This Checkout Session is already paid."
        if session["status"] == "expired":
            return "This Checkout Session has expired."
        rows = "".join(
            f"<li>{html.escape(item['description'])} &times; {item['quantity']}: "
            f"{format_amount(item['amount_total'], item['currency'])}</li>"
            for item in items
        )
        total = format_amount(session["amount_total"], session["currency"])
        return (
            f"<ul>{rows}</ul>"
            f'<p>Total: <strong id="amount">{total}</strong></p>'
            f'<form method="post" action="/checkout/{html.escape(session["id"])}">'
            '<button id="pay" type="submit">Pay</button></form>'
        )

    @staticmethod
    def _page(body: str, *, session: dict | None = None, status: int = 200) -> Response:
        back = ""
        if session and session.get("cancel_url"):
            back = f'<p><a id="back" href="{html.escape(session["cancel_url"])}">Back</a></p>'
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Fake Stripe Checkout</title></head><body>"
            f"<h1>Fake Stripe Checkout</h1>{body}{back}</body></html>"
        )
        return Response(page, status, content_type="text/html; charset=utf-8")
