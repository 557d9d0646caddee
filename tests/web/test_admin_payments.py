"""The back office's money pages through the test client: orders, totals, one order's actions, the CSV, codes,
early-bird prices, invoice settings and the dashboard's payment lines. (Stripe refunds are covered elsewhere.)"""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import g
from sqlalchemy import event

from convene.extensions import db
from convene.models import (
    CodeKind,
    Convening,
    DiscountCode,
    Order,
    OrderStatus,
    PaymentMethod,
    Refund,
    Registration,
    Status,
    StripeEvent,
    TicketType,
    utcnow,
)
from convene.services import registrations as registration_service
from convene.services.payments import new_order_reference
from convene.services.registrations import new_reference
from tests.factories import make_convening, make_registration, make_ticket, person


def error_beside(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', page)
    return html.unescape(match.group(1)) if match else None


def make_order(convening: Convening, ticket: TicketType, *, status: str = OrderStatus.PAID,
               method: str = PaymentMethod.CARD, total: int = 10000, paid: int | None = None, refunded: int = 0,
               seats: int = 1, seat_status: str = Status.CONFIRMED, **fields) -> Order:
    """An order with `seats` registrations, written directly (no capacity check, no email)."""
    now = utcnow()
    paid = (total if status in (OrderStatus.PAID, OrderStatus.REVIEW) else 0) if paid is None else paid
    values = dict(convening_id=convening.id, reference=new_order_reference(convening), method=method, status=status,
                  buyer_name="Amina Hassan", buyer_email="buyer@example.org", buyer_organization="City of Dayton",
                  currency=convening.currency, subtotal_cents=total, discount_cents=0, total_cents=total,
                  paid_cents=paid, refunded_cents=refunded, paid_at=now if paid else None)
    if method == PaymentMethod.INVOICE:
        convening.invoice_counter = (convening.invoice_counter or 0) + 1
        values.update(invoice_number=f"TOR-2026-{convening.invoice_counter:04d}", invoice_issued_at=now,
                      invoice_due_on=date.today() + timedelta(days=30))
    values.update(fields)
    order = Order(**values)
    db.session.add(order)
    for _ in range(seats):
        db.session.add(Registration(
            convening_id=convening.id, ticket_type_id=ticket.id, reference=new_reference(convening), order=order,
            status=seat_status, price_cents=total // seats, confirmed_at=now, **person()))
    db.session.commit()
    return order


@pytest.fixture
def scene(app):
    """A CAD convening with a paid ticket and a hidden one, an invoiced order, and a code."""
    convening = make_convening(name="Money Summit", invoice_enabled=True)
    ticket = make_ticket(convening, name="Delegate", price_cents=45000)
    hidden = make_ticket(convening, name="Partner", price_cents=20000, hidden=True)
    order = make_order(convening, ticket, status=OrderStatus.INVOICED, method=PaymentMethod.INVOICE, total=45000,
                       buyer_email="invoice@example.org")
    code = DiscountCode(convening_id=convening.id, code="EARLY10", kind=CodeKind.PERCENT, percent=10)
    db.session.add(code)
    db.session.commit()
    return type("Scene", (), dict(convening=convening, ticket=ticket, hidden=hidden, order=order, code=code,
                                  ids=dict(c=convening.id, o=order.id, k=code.id)))


def url(scene, path: str) -> str:
    return "/admin/c/{c}".format(**scene.ids) + path.format(**scene.ids)


def fresh_order(order_id: int) -> Order:
    db.session.rollback()
    return db.session.get(Order, order_id)


def count_statements():
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    class Counting:
        def __enter__(self):
            event.listen(db.engine, "before_cursor_execute", before)
            return statements

        def __exit__(self, *exc):
            event.remove(db.engine, "before_cursor_execute", before)

    return Counting()


# -- access ----------------------------------------------------------------------------------------

PAGES = [
    ("get", "/payments"),
    ("get", "/payments?show=review&q=x"),
    ("get", "/payments.csv"),
    ("get", "/payments/{o}"),
    ("get", "/payments/{o}/invoice.pdf"),
    ("post", "/payments/{o}/refund"),
    ("post", "/payments/{o}/mark-paid"),
    ("post", "/payments/{o}/accept"),
    ("post", "/payments/{o}/cancel"),
    ("post", "/payments/{o}/desk-payment"),  # staff take desk payments from the registration's page instead
    ("get", "/codes"),
    ("get", "/codes/new"),
    ("post", "/codes/new"),
    ("get", "/codes/{k}"),
    ("post", "/codes/{k}"),
    ("get", "/codes/{k}/delete"),
    ("post", "/codes/{k}/delete"),
]


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("method,path", PAGES)
@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
def test_money_pages_are_for_organizers_only(request, scene, method, path, role):
    client = request.getfixturevalue({"anonymous": "client", "staff": "staff_client",
                                      "organizer": "organizer_client"}[role])
    response = getattr(client, method)(url(scene, path))
    if role == "anonymous":
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    elif role == "staff":
        assert response.status_code == 403
    elif method == "get":
        assert response.status_code == 200
    else:  # an empty POST: refused as a form, or done (or refused by the service) and redirected; never 403/500
        assert response.status_code in (200, 302, 400)
    if path.endswith(("/cancel", "/delete")):  # a bare POST only shows the confirmation page
        assert fresh_order(scene.order.id).status == OrderStatus.INVOICED
        assert db.session.get(DiscountCode, scene.code.id) is not None
    if role != "organizer":
        order = fresh_order(scene.order.id)
        assert order.status == OrderStatus.INVOICED and order.paid_cents == 0
        assert db.session.get(DiscountCode, scene.code.id).active


def test_staff_see_no_payments_or_codes_links(staff_client, organizer_client, scene):
    page = staff_client.get(f"/admin/c/{scene.convening.id}/").text
    assert "/payments" not in page and "/codes" not in page


def test_orders_of_another_convening_are_not_found(organizer_client, scene):
    other = make_convening()
    assert organizer_client.get(f"/admin/c/{other.id}/payments/{scene.order.id}").status_code == 404
    assert organizer_client.post(f"/admin/c/{other.id}/payments/{scene.order.id}/mark-paid").status_code == 404
    assert organizer_client.get(f"/admin/c/{other.id}/codes/{scene.code.id}").status_code == 404
    assert fresh_order(scene.order.id).status == OrderStatus.INVOICED


# -- the list: totals, filters, search -------------------------------------------------------------

@pytest.fixture
def books(scene):
    """Orders in every state: (name, order)."""
    c, t = scene.convening, scene.ticket
    card = make_order(c, t, total=10000, refunded=2000, buyer_name="Carla Card", buyer_email="carla@example.org")
    review = make_order(c, t, status=OrderStatus.REVIEW, total=3000, paid=2500, buyer_name="Rita Review",
                        flag="amount_mismatch", flag_detail="Stripe collected 25.00 but the order is for 30.00.")
    failed = make_order(c, t, total=5000, buyer_name="Fay Failed", stripe_payment_intent_id="pi_failed")
    db.session.add(Refund(order_id=failed.id, amount_cents=1000, status="failed", error="card expired"))
    expired = make_order(c, t, status=OrderStatus.EXPIRED, total=4000, seat_status=Status.EXPIRED,
                         buyer_name="Eve Expired")
    group = make_order(c, t, status=OrderStatus.INVOICED, method=PaymentMethod.INVOICE, total=90000, seats=3,
                       buyer_name="Gus Group", buyer_email="gus@example.org")
    db.session.commit()
    return dict(invoice=scene.order, card=card, review=review, failed=failed, expired=expired, group=group)


def references(page: str) -> set[str]:
    return set(re.findall(r'class="reference">([A-Z0-9-]+)</a>', page))


def test_totals_count_and_sum_every_order_by_status(organizer_client, scene, books):
    page = organizer_client.get(url(scene, "/payments")).text

    def stat(name: str) -> str:
        return html.unescape(re.search(rf'id="total-{name}">([^<]*)<', page).group(1))

    # Owed: every order but the expired one: 450 + 100 + 30 + 50 + 900.
    assert stat("owed") == "CA$1,530.00"
    assert stat("paid") == "CA$175.00"  # 100 + 25 + 50
    assert stat("refunded") == "CA$20.00"
    assert stat("net") == "CA$155.00"
    assert stat("outstanding") == "CA$1,350.00"  # the two unpaid invoices
    assert stat("review") == "2"  # the flagged payment and the order whose refund failed
    row = re.search(r'status=invoiced">Invoice outstanding</a></th>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["2", "CA$1,350.00", "CA$0.00", "CA$0.00", "CA$0.00"]
    assert "Outstanding invoices (2)" in page
    assert references(page) == {o.reference for o in books.values()}


@pytest.mark.parametrize(("query", "expected"), [
    ("?status=invoiced", {"invoice", "group"}),
    ("?method=invoice", {"invoice", "group"}),
    ("?method=card&status=paid", {"card", "failed"}),
    ("?show=review", {"review", "failed"}),
    ("?show=outstanding", {"invoice", "group"}),
    ("?q=GUS@EXAMPLE", {"group"}),
    ("?q=carla+card", {"card"}),
    ("?q=TOR-2026", {"invoice", "group"}),  # invoice numbers
    ("?q=100%25", set()),  # a LIKE wildcard is searched for literally
])
def test_filters_and_search_pick_the_right_orders(organizer_client, scene, books, query, expected):
    page = organizer_client.get(url(scene, "/payments" + query)).text
    assert references(page) == {books[name].reference for name in expected}


def test_search_finds_an_order_by_an_attendee_in_it(organizer_client, scene, books):
    attendee = books["group"].registrations[1]
    for term in (attendee.email.upper(), attendee.reference):
        page = organizer_client.get(url(scene, f"/payments?q={term}")).text
        assert references(page) == {books["group"].reference}


@pytest.mark.parametrize("query", ["?status=bogus", "?method=cash", "?show=everything", "?page=-1", "?page=abc",
                                   "?page=99999999999999", "?q=%00", "?q=" + "x" * 5000, "?page=50"])
def test_garbage_in_the_query_string_never_breaks_the_list(organizer_client, scene, query):
    response = organizer_client.get(url(scene, "/payments" + query))
    assert response.status_code in (200, 400)
    if "bogus" in query:
        assert "Ignored a status value" in response.text


def test_the_list_takes_the_same_number_of_queries_for_5_or_60_orders(organizer_client, scene, backend):
    convening_id, ticket_id = scene.convening.id, scene.ticket.id
    counts = {}
    for total in (5, 60):
        convening = db.session.get(Convening, convening_id)
        ticket = db.session.get(TicketType, ticket_id)
        have = db.session.scalar(sa.select(sa.func.count()).select_from(Order))
        for n in range(have, total):
            code = DiscountCode(convening_id=convening_id, code=f"C{n:03d}", kind=CodeKind.PERCENT, percent=5)
            order = make_order(convening, ticket, total=1000 + n, discount_code=code, seats=2)
            if n % 3 == 0:
                db.session.add(Refund(order_id=order.id, amount_cents=100, status="failed"))
        db.session.commit()
        for query in ("", "?q=amina&show=review", "?method=card&status=paid"):
            db.session.remove()
            g.pop("_login_user", None)
            with count_statements() as statements:
                response = organizer_client.get(f"/admin/c/{convening_id}/payments{query}")
            assert response.status_code == 200
            counts[(total, query)] = len(statements)
    for query in ("", "?q=amina&show=review", "?method=card&status=paid"):
        assert counts[(5, query)] == counts[(60, query)] <= 10, counts
    print(f"[{backend}] statements per payments list: {sorted(set(counts.values()))}")


# -- the CSV ---------------------------------------------------------------------------------------

def read_csv(response) -> list[dict]:
    assert response.data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))


def test_csv_has_every_column_plain_decimals_and_defused_formulas(organizer_client, scene, books):
    make_order(scene.convening, scene.ticket, total=4550, buyer_name='=HYPERLINK("http://x")',
               buyer_email="evil@example.org", buyer_organization="+SUM(A1)", discount_code=scene.code,
               subtotal_cents=5000, discount_cents=450, stripe_payment_intent_id="pi_123")
    response = organizer_client.get(url(scene, "/payments.csv"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == f"attachment; filename={scene.convening.slug}-payments.csv"
    rows = read_csv(response)
    assert list(rows[0]) == [
        "Reference", "Created", "Status", "Method", "Buyer name", "Buyer email", "Buyer organization", "Delegation",
        "Registrations", "Currency", "Subtotal", "Discount", "Code", "Total", "Paid", "Refunded", "Credited",
        "Balance", "Invoice number", "Invoice due", "Paid at", "Stripe payment intent", "Flag"]
    by_email = {row["Buyer email"]: row for row in rows}
    evil = by_email["evil@example.org"]
    assert evil["Buyer name"] == "'=HYPERLINK(\"http://x\")" and evil["Buyer organization"] == "'+SUM(A1)"
    assert (evil["Subtotal"], evil["Discount"], evil["Code"], evil["Total"], evil["Paid"], evil["Balance"]) == (
        "50.00", "4.50", "EARLY10", "45.50", "45.50", "0.00")
    assert evil["Stripe payment intent"] == "pi_123" and evil["Status"] == "Paid" and evil["Method"] == "Card (Stripe)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", evil["Paid at"])  # Toronto time
    group = by_email["gus@example.org"]
    assert (group["Registrations"], group["Total"], group["Balance"], group["Status"]) == (
        "3", "900.00", "900.00", "Invoice outstanding")
    assert group["Invoice number"].startswith("TOR-2026-") and re.fullmatch(r"\d{4}-\d\d-\d\d", group["Invoice due"])
    review = next(row for row in rows if row["Buyer name"] == "Rita Review")
    assert review["Flag"] == "amount_mismatch — Stripe collected 25.00 but the order is for 30.00."


def test_csv_follows_the_list_filters(organizer_client, scene, books):
    rows = read_csv(organizer_client.get(url(scene, "/payments.csv?show=outstanding")))
    assert {row["Reference"] for row in rows} == {books["invoice"].reference, books["group"].reference}
    listing = organizer_client.get(url(scene, "/payments?show=outstanding&page=1")).text
    assert "payments.csv?show=outstanding\"" in listing


# -- one order -------------------------------------------------------------------------------------

def test_detail_shows_the_flag_amounts_seats_refunds_and_events(organizer_client, scene, books):
    review = books["review"]
    db.session.add(StripeEvent(event_id="evt_1", type="checkout.session.completed", order_id=review.id,
                               outcome="flagged_amount"))
    db.session.add(Refund(order_id=review.id, amount_cents=500, status="failed", via_stripe=True,
                          error="The card was closed."))
    db.session.commit()
    page = organizer_client.get(url(scene, f"/payments/{review.id}")).text
    flag = re.search(r'<div class="flash flash-error" role="alert" id="flag">(.*?)</div>', page, re.S).group(1)
    assert "Stripe collected 25.00 but the order is for 30.00." in flag
    assert "Accept payment" in page and "evt_1" in page and "flagged_amount" in page
    assert "The card was closed." in page and "/retry" in page
    registration = review.registrations[0]
    assert f"/registrations/{registration.id}\">{registration.reference}</a>" in page
    amounts = re.search(r'id="amounts">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r'<td class="num">(?:<strong>)?([^<]*)', amounts) == [
        "CA$30.00", "CA$0.00", "CA$30.00", "CA$25.00", "CA$0.00", "CA$5.00"]
    # The refund form offers what can still come back: 25.00 paid less nothing refunded.
    assert 'name="amount" type="text" value="25.00"' in page


def test_invoice_and_receipt_pdfs_download_as_attachments(organizer_client, scene, books):
    invoice = organizer_client.get(url(scene, "/payments/{o}/invoice.pdf"))
    assert invoice.status_code == 200 and invoice.headers["Content-Type"] == "application/pdf"
    assert invoice.headers["Content-Disposition"] == (
        f"attachment; filename=invoice-{scene.order.invoice_number}.pdf")
    assert invoice.data.startswith(b"%PDF")
    assert organizer_client.get(url(scene, "/payments/{o}/receipt.pdf")).status_code == 404  # nothing paid yet
    card = books["card"]
    assert organizer_client.get(url(scene, f"/payments/{card.id}/invoice.pdf")).status_code == 404
    receipt = organizer_client.get(url(scene, f"/payments/{card.id}/receipt.pdf"))
    assert receipt.status_code == 200 and "attachment; filename=receipt-" in receipt.headers["Content-Disposition"]


def test_marking_an_invoice_paid_emails_a_receipt(organizer_client, scene, outbox):
    page = organizer_client.get(url(scene, "/payments/{o}")).text
    assert "Mark invoice paid" in page and "Cancel order" in page
    response = organizer_client.post(url(scene, "/payments/{o}/mark-paid"), data={"note": "Wire received 3 March"})
    assert response.status_code == 302
    order = fresh_order(scene.order.id)
    assert (order.status, order.paid_cents, order.payment_note) == (OrderStatus.PAID, 45000, "Wire received 3 March")
    [receipt] = outbox.to("invoice@example.org")
    assert receipt["Subject"] == f"Receipt for Money Summit ({order.reference})"
    assert any(part.get_filename() == f"receipt-R-{order.reference}.pdf" for part in receipt.iter_attachments())
    page = organizer_client.get(url(scene, "/payments/{o}")).text
    assert "is marked paid" in page and "Mark invoice paid" not in page and "Receipt (PDF)" in page
    # Twice is refused with a message, not an error page.
    again = organizer_client.post(url(scene, "/payments/{o}/mark-paid"), data={}, follow_redirects=True)
    assert "This order has no outstanding invoice." in again.text
    assert len(outbox.to("invoice@example.org")) == 1


def test_refunding_an_invoice_payment_records_it_and_can_cancel_the_seats(organizer_client, scene, outbox):
    second = make_order(scene.convening, scene.ticket, status=OrderStatus.INVOICED, method=PaymentMethod.INVOICE,
                        total=90000, seats=2, buyer_email="pair@example.org")
    waiting = make_registration(scene.convening, scene.ticket, 99, status=Status.WAITLISTED)
    organizer_client.post(url(scene, f"/payments/{second.id}/mark-paid"), data={"note": ""})
    response = organizer_client.post(url(scene, f"/payments/{second.id}/refund"), data={
        "amount": "450.50", "reason": "Could not travel", "cancel_registrations": "y"})
    assert response.status_code == 302
    order = fresh_order(second.id)
    [refund] = order.refunds
    assert (refund.amount_cents, refund.status, refund.via_stripe, refund.reason) == (
        45050, "succeeded", False, "Could not travel")
    assert refund.cancel_registrations and order.refunded_cents == 45050 and order.paid_cents == 90000
    assert {r.status for r in order.registrations} == {Status.CANCELLED}
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED  # the freed seat went on
    assert any("Refund" in m["Subject"] for m in outbox.to("pair@example.org"))
    page = organizer_client.get(url(scene, f"/payments/{second.id}")).text
    assert "Recorded (paid back outside Convene)" in page and "Could not travel" in page
    assert 'value="449.50"' in page  # what is left to refund


def test_a_partial_refund_without_the_box_keeps_the_seats(organizer_client, scene):
    organizer_client.post(url(scene, "/payments/{o}/mark-paid"), data={})
    organizer_client.post(url(scene, "/payments/{o}/refund"), data={"amount": "45"})
    order = fresh_order(scene.order.id)
    assert order.refunded_cents == 4500 and order.status == OrderStatus.PAID
    assert order.registrations[0].status == Status.CONFIRMED


@pytest.mark.parametrize(("amount", "message"), [
    ("abc", "Enter an amount greater than zero"),
    ("-5", "Enter an amount greater than zero"),
    ("1e9", "Enter an amount greater than zero"),
    ("12.345", "Use at most two decimals"),
    ("99999999999", "That amount is too large."),
    ("0", "Enter an amount to refund greater than zero."),
    ("", "Enter an amount to refund greater than zero."),
    ("450.01", "At most 450.00 can still be refunded on this order."),
])
def test_bad_refund_amounts_show_beside_the_field_and_change_nothing(organizer_client, scene, amount, message):
    organizer_client.post(url(scene, "/payments/{o}/mark-paid"), data={})
    response = organizer_client.post(url(scene, "/payments/{o}/refund"),
                                     data={"amount": amount, "cancel_registrations": "y"})
    assert response.status_code == 400
    assert message in (error_beside(response.text, "amount") or ""), response.text
    order = fresh_order(scene.order.id)
    assert order.refunds == [] and order.refunded_cents == 0
    assert order.registrations[0].status == Status.CONFIRMED
    assert f'value="{html.escape(amount)}"' in response.text  # what was typed stays in the box


def test_an_unpaid_invoice_offers_no_refund(organizer_client, scene):
    page = organizer_client.get(url(scene, "/payments/{o}")).text
    assert 'id="refund"' not in page
    response = organizer_client.post(url(scene, "/payments/{o}/refund"), data={"amount": "10"})
    assert response.status_code == 400 and "At most 0.00 can still be refunded" in response.text
    assert fresh_order(scene.order.id).refunds == []


def test_accepting_a_flagged_payment_confirms_its_seat(organizer_client, scene):
    review = make_order(scene.convening, scene.ticket, status=OrderStatus.REVIEW, total=3000, paid=2500,
                        seat_status=Status.PENDING, flag="amount_mismatch", flag_detail="Short by 5.00")
    response = organizer_client.post(url(scene, f"/payments/{review.id}/accept"), follow_redirects=True)
    assert "The payment is accepted" in response.text
    order = fresh_order(review.id)
    assert order.status == OrderStatus.PAID and order.registrations[0].status == Status.CONFIRMED
    again = organizer_client.post(url(scene, f"/payments/{review.id}/accept"), follow_redirects=True)
    assert "This order is not waiting for review." in again.text


def preview_token(page: str) -> str:
    """The token a confirmation page carries for what it previewed."""
    return re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)


def effects(page: str) -> dict[str, str]:
    """The confirmation page's list of what an action does, by key, as plain text."""
    return {key: " ".join(html.unescape(text).split())
            for key, text in re.findall(r'<li id="effect-([\w-]+)">(.*?)</li>', page, re.S)}


def test_cancelling_an_unpaid_invoice_says_whom_it_emails_and_frees_its_seat_on_confirmation(
        organizer_client, scene, outbox):
    seat = fresh_order(scene.order.id).registrations[0]
    page = organizer_client.post(url(scene, "/payments/{o}/cancel"))  # the order page's button: a preview only
    assert page.status_code == 200 and "Cancel order “" in page.text and outbox.messages() == []
    assert fresh_order(scene.order.id).status == OrderStatus.INVOICED
    assert effects(page.text) == {
        "told": f"1 person loses their registration and is emailed that it is cancelled: {seat.full_name}.",
        "credit": "Invoice TOR-2026-0001 is voided by a credit note for the CA$450.00 still owed, sent to "
                  "invoice@example.org.",
        "seats": "The seats go back, to the waitlist first."}
    response = organizer_client.post(url(scene, "/payments/{o}/cancel"), data={"preview": preview_token(page.text)},
                                     follow_redirects=True)
    assert "is cancelled and its seats are released; 1 person was emailed." in response.text
    order = fresh_order(scene.order.id)
    assert order.status == OrderStatus.CANCELLED and order.registrations[0].status == Status.CANCELLED
    paid = make_order(scene.convening, scene.ticket)
    refused = organizer_client.post(url(scene, f"/payments/{paid.id}/cancel"))
    assert "Only unpaid orders can be cancelled" in refused.text and 'id="confirm-delete"' not in refused.text
    forced = organizer_client.post(url(scene, f"/payments/{paid.id}/cancel"), data={"preview": "0" * 32})
    assert "Only unpaid orders can be cancelled" in forced.text
    assert fresh_order(paid.id).status == OrderStatus.PAID


def test_a_payment_recorded_after_the_cancel_preview_refuses_the_cancellation(organizer_client, scene, outbox):
    page = organizer_client.post(url(scene, "/payments/{o}/cancel")).text
    order = fresh_order(scene.order.id)
    order.credited_cents = 1000  # a seat of it was credited meanwhile (a change the preview did not show)
    db.session.commit()
    response = organizer_client.post(url(scene, "/payments/{o}/cancel"), data={"preview": preview_token(page)})
    assert response.status_code == 200 and "Nothing was cancelled: the order or its seats changed" in response.text
    assert "the CA$440.00 still owed" in html.unescape(response.text)
    assert fresh_order(scene.order.id).status == OrderStatus.INVOICED and outbox.messages() == []


# -- credit notes for cancelled invoices ----------------------------------------------------------

def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def invoiced_delegation(scene) -> Order:
    """Three delegates on one invoice (CA$1,350.00), booked through the service as the form does."""
    delegates = [dict(person(n), ticket_type_id=scene.ticket.id) for n in range(3)]
    return registration_service.register_delegation(
        scene.convening.id, {"name": "Lena Ortiz", "email": "lena@example.org"}, "Dayton", delegates,
        payment={"method": "invoice"})


def stats(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in re.findall(r'id="total-([a-z]+)">([^<]*)<', page)}


def test_cancelling_invoiced_seats_issues_credit_notes_the_pages_and_totals_follow(organizer_client, scene, outbox):
    order = invoiced_delegation(scene)
    order_id, invoice_number, leaving = order.id, order.invoice_number, order.registrations[0]
    before = stats(organizer_client.get(url(scene, "/payments")).text)
    assert before["outstanding"] == "CA$1,800.00"  # the scene's invoice and this one

    # The organizer cancels one delegate from the back office.
    response = organizer_client.post(url(scene, f"/registrations/{leaving.id}/cancel"), follow_redirects=True)
    assert "is cancelled and the seat is released" in response.text
    order = fresh_order(order_id)
    assert (order.status, order.credited_cents, order.balance_cents) == (OrderStatus.INVOICED, 45000, 90000)
    [note] = order.credit_notes
    page = organizer_client.get(url(scene, f"/payments/{order_id}")).text
    assert note.number in page and "-CA$450.00" in html.unescape(re.search(r'id="credited">(.*?)</tr>', page).group(1))
    assert "CA$900.00" in re.search(r'id="balance">(.*?)</tr>', page).group(1)
    assert "Records CA$900.00 as paid in full" in page
    pdf = organizer_client.get(url(scene, f"/payments/{order_id}/credit-notes/{note.id}.pdf"))
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == f"attachment; filename=credit-note-{note.number}.pdf"
    text = pdf_text(pdf.data)
    assert "Credit note" in text and note.number in text and invoice_number in text and "-CA$450.00" in text
    assert leaving.reference in text
    totals = stats(organizer_client.get(url(scene, "/payments")).text)
    assert (totals["outstanding"], totals["credited"], totals["owed"]) == ("CA$1,350.00", "CA$450.00", "CA$1,350.00")
    dashboard = html.unescape(organizer_client.get(f"/admin/c/{scene.convening.id}/").text)
    assert "CA$1,350.00 in 2 outstanding invoices" in re.sub(r"\s+", " ", dashboard)

    # Then the whole order: the rest of the invoice is credited and it is void.
    confirm = organizer_client.post(url(scene, f"/payments/{order_id}/cancel")).text
    assert "is voided by a credit note for the CA$900.00 still owed" in html.unescape(confirm)
    response = organizer_client.post(url(scene, f"/payments/{order_id}/cancel"),
                                     data={"preview": preview_token(confirm)}, follow_redirects=True)
    assert "is cancelled and its seats are released" in response.text
    order = fresh_order(order_id)
    assert (order.status, order.credited_cents, order.balance_cents) == (OrderStatus.CANCELLED, 135000, 0)
    assert [n.amount_cents for n in order.credit_notes] == [45000, 90000]
    last = order.credit_notes[1]
    text = pdf_text(organizer_client.get(url(scene, f"/payments/{order_id}/credit-notes/{last.id}.pdf")).data)
    assert "-CA$900.00" in text and "is void" in text and invoice_number in text
    totals = stats(organizer_client.get(url(scene, "/payments")).text)
    assert (totals["outstanding"], totals["credited"], totals["owed"]) == ("CA$450.00", "CA$1,350.00", "CA$450.00")
    rows = read_csv(organizer_client.get(url(scene, "/payments.csv")))
    [row] = [r for r in rows if r["Reference"] == order.reference]
    assert (row["Total"], row["Credited"], row["Balance"], row["Status"]) == ("1350.00", "1350.00", "0.00", "Cancelled")


@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
def test_credit_notes_are_for_organizers_and_only_of_their_own_order(request, scene, role):
    order = invoiced_delegation(scene)
    registration_service.cancel_registration(order.registrations[0].id)
    order = fresh_order(order.id)
    [note] = order.credit_notes
    client = request.getfixturevalue({"anonymous": "client", "staff": "staff_client",
                                      "organizer": "organizer_client"}[role])
    response = client.get(url(scene, f"/payments/{order.id}/credit-notes/{note.id}.pdf"))
    expected = {"anonymous": 302, "staff": 403, "organizer": 200}[role]
    assert response.status_code == expected
    if role == "organizer":  # another order's path, or a number that is no credit note, finds nothing
        assert client.get(url(scene, f"/payments/{scene.order.id}/credit-notes/{note.id}.pdf")).status_code == 404
        assert client.get(url(scene, f"/payments/{order.id}/credit-notes/99999.pdf")).status_code == 404


# -- codes -----------------------------------------------------------------------------------------

def code_form(**changes) -> dict:
    data = {"code": "summer-25", "kind": "percent", "percent": "20", "amount_cents": "", "max_uses": "50",
            "valid_from": "2026-03-01T09:00", "valid_until": "2026-04-01T00:00", "active": "y", "note": "Newsletter"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def codes_of(scene) -> dict[str, DiscountCode]:
    db.session.rollback()
    rows = db.session.execute(sa.select(DiscountCode).where(DiscountCode.convening_id == scene.convening.id))
    return {code.code: code for code in rows.scalars()}


def test_organizer_adds_a_code_stored_upper_case_with_its_window_in_utc(organizer_client, scene):
    response = organizer_client.post(url(scene, "/codes/new"), data={
        **code_form(), "ticket_type_ids": [str(scene.ticket.id)]})
    assert response.status_code == 302 and response.headers["Location"].endswith("/codes")
    code = codes_of(scene)["SUMMER-25"]
    assert (code.kind, code.percent, code.amount_cents, code.max_uses, code.note) == ("percent", 20, 0, 50,
                                                                                      "Newsletter")
    assert code.ticket_type_ids == [scene.ticket.id] and code.active
    # 1 March is EST (UTC-5), 1 April is EDT (UTC-4).
    assert code.valid_from == datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    assert code.valid_until == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
    edit = organizer_client.get(url(scene, f"/codes/{code.id}")).text
    assert 'value="2026-03-01T09:00"' in edit and 'value="SUMMER-25"' in edit


def test_codes_list_shows_value_tickets_active_uses_and_window(organizer_client, scene):
    fixed = DiscountCode(convening_id=scene.convening.id, code="TENOFF", kind=CodeKind.FIXED, amount_cents=1000,
                         max_uses=5, ticket_type_ids=[scene.hidden.id],
                         valid_until=datetime(2026, 1, 1, 5, 0, tzinfo=UTC))
    db.session.add(fixed)
    db.session.commit()
    for n, status in enumerate((Status.CONFIRMED, Status.PENDING, Status.CANCELLED, Status.EXPIRED)):
        make_registration(scene.convening, scene.hidden, 50 + n, status=status, discount_code_id=fixed.id)
    page = organizer_client.get(url(scene, "/codes")).text
    row = re.search(rf'id="code-{fixed.id}">(.*?)</tr>', page, re.S).group(1)
    assert "CA$10.00 off each ticket" in row and "Partner" in row
    assert "2 / 5" in row  # the cancelled and expired bookings gave their uses back
    assert "until 01 Jan 2026 00:00" in row  # Toronto time
    assert "Deactivate" in row
    early = re.search(rf'id="code-{scene.code.id}">(.*?)</tr>', page, re.S).group(1)
    assert "10 %" in early and "Every public ticket type" in early and "0 / ∞" in early and "Delete" in early


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"code": "ab"}, "code", "Use 3 to 40 letters, digits, hyphens or underscores."),
    ({"code": "NO SPACES"}, "code", "Use 3 to 40 letters, digits, hyphens or underscores."),
    ({"code": "early10"}, "code", "Another code of this convening is already spelled that way."),
    ({"percent": "0"}, "percent", "Enter a percentage from 1 to 100."),
    ({"percent": "101"}, "percent", "Enter a percentage from 1 to 100."),
    ({"percent": "ten"}, "percent", "Enter a whole percentage from 1 to 100."),
    ({"kind": "fixed", "amount_cents": ""}, "amount_cents", "Enter an amount greater than zero"),
    ({"kind": "fixed", "amount_cents": "-3"}, "amount_cents", "Enter an amount greater than zero"),
    ({"kind": "fixed", "amount_cents": "2.505"}, "amount_cents", "Use at most two decimals"),
    ({"kind": "bogus"}, "kind", "Choose what the code does"),
    ({"max_uses": "0"}, "max_uses", "Enter a whole number of uses of at least 1"),
    ({"max_uses": "99999999999"}, "max_uses", "Enter a whole number of uses of at least 1"),
    ({"valid_until": "2026-02-01T00:00"}, "valid_until", "The code must stop being valid after it starts."),
    ({"valid_from": "2026-03-08T02:30"}, "valid_from", "does not exist in America/Toronto"),
    ({"kind": "access"}, "ticket_type_ids", "An access code must name at least one ticket type it unlocks."),
])
def test_bad_codes_are_refused_beside_the_field(organizer_client, scene, changes, field, message):
    response = organizer_client.post(url(scene, "/codes/new"), data=code_form(**changes))
    assert response.status_code == 400
    assert message in (error_beside(response.text, field) or ""), response.text
    assert set(codes_of(scene)) == {"EARLY10"}


def test_an_access_code_unlocks_a_hidden_ticket_and_a_foreign_ticket_is_refused(organizer_client, scene):
    other = make_ticket(make_convening(), name="Elsewhere")
    refused = organizer_client.post(url(scene, "/codes/new"), data={
        **code_form(kind="access", percent=""), "ticket_type_ids": [str(other.id)]})
    assert "Choose ticket types of this convening." in error_beside(refused.text, "ticket_type_ids")
    organizer_client.post(url(scene, "/codes/new"), data={
        **code_form(code="partners", kind="access", percent="", valid_from="", valid_until=""),
        "ticket_type_ids": [str(scene.hidden.id)]})
    code = codes_of(scene)["PARTNERS"]
    assert (code.kind, code.percent, code.ticket_type_ids, code.valid_from) == ("access", 0, [scene.hidden.id], None)


def test_editing_a_code_keeps_its_text_unique_and_saves(organizer_client, scene):
    organizer_client.post(url(scene, "/codes/new"), data=code_form(code="OTHER"))
    other = codes_of(scene)["OTHER"]
    clash = organizer_client.post(url(scene, f"/codes/{other.id}"), data=code_form(code="Early10"))
    assert error_beside(clash.text, "code") == "Another code of this convening is already spelled that way."
    organizer_client.post(url(scene, f"/codes/{other.id}"), data=code_form(
        code="other", kind="fixed", percent="", amount_cents="12.50", max_uses="", active=None))
    code = codes_of(scene)["OTHER"]
    assert (code.kind, code.amount_cents, code.percent, code.max_uses, code.active) == ("fixed", 1250, 0, None, False)


def test_deleting_an_unused_code_removes_it_and_a_used_one_is_deactivated(organizer_client, scene):
    used = DiscountCode(convening_id=scene.convening.id, code="USED", kind=CodeKind.PERCENT, percent=5)
    db.session.add(used)
    db.session.commit()
    make_registration(scene.convening, scene.ticket, 70, status=Status.CANCELLED, discount_code_id=used.id)
    bare = organizer_client.post(url(scene, "/codes/{k}/delete"))  # the old one-click button: the page only
    assert bare.status_code == 200 and "Delete code “EARLY10”?" in bare.text
    assert "Nothing else is affected." in bare.text
    assert set(codes_of(scene)) == {"EARLY10", "USED"}
    first = organizer_client.post(url(scene, "/codes/{k}/delete"), data={"preview": preview_token(bare.text)},
                                  follow_redirects=True)
    assert "Code EARLY10 is deleted." in first.text
    page = organizer_client.get(url(scene, f"/codes/{used.id}/delete")).text
    assert "Deactivate code “USED”?" in page and effects(page)["used"].startswith(
        "It was used for 1 seat in 0 orders (cancelled ones count too), so it is deactivated instead of deleted")
    second = organizer_client.post(url(scene, f"/codes/{used.id}/delete"), data={"preview": preview_token(page)},
                                   follow_redirects=True)
    assert "deactivated instead of deleted" in second.text
    assert {text: code.active for text, code in codes_of(scene).items()} == {"USED": False}


def test_a_code_used_after_its_delete_preview_is_not_deleted(organizer_client, scene):
    page = organizer_client.get(url(scene, "/codes/{k}/delete")).text
    make_registration(scene.convening, scene.ticket, 71, discount_code_id=scene.code.id)
    response = organizer_client.post(url(scene, "/codes/{k}/delete"), data={"preview": preview_token(page)})
    assert response.status_code == 200 and "Nothing was deleted" in response.text
    assert "Deactivate code “EARLY10”?" in response.text
    assert codes_of(scene)["EARLY10"].active


# -- early-bird prices and invoice settings --------------------------------------------------------

def ticket_form(**changes) -> dict:
    data = {"name": "Delegate", "price_cents": "450", "early_price_cents": "375.50",
            "early_until_at": "2026-03-07T23:59", "capacity": "", "position": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_an_early_bird_price_is_saved_with_its_local_end(organizer_client, scene):
    response = organizer_client.post(url(scene, f"/tickets/{scene.ticket.id}"), data=ticket_form())
    assert response.status_code == 302
    db.session.rollback()
    ticket = db.session.get(TicketType, scene.ticket.id)
    assert (ticket.price_cents, ticket.early_price_cents) == (45000, 37550)
    assert ticket.early_until_at == datetime(2026, 3, 8, 4, 59, tzinfo=UTC)  # EST: the clocks change on 8 March
    page = organizer_client.get(url(scene, f"/tickets/{scene.ticket.id}")).text
    assert 'value="375.50"' in page and 'value="2026-03-07T23:59"' in page
    organizer_client.post(url(scene, f"/tickets/{scene.ticket.id}"), data=ticket_form(early_price_cents=""))
    db.session.rollback()
    ticket = db.session.get(TicketType, scene.ticket.id)
    assert (ticket.early_price_cents, ticket.early_until_at) == (None, None)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"early_price_cents": "450"}, "early_price_cents", "The early-bird price must be lower than the regular price."),
    ({"early_price_cents": "10", "price_cents": "0"}, "early_price_cents", "must be lower than the regular price"),
    ({"early_price_cents": "abc"}, "early_price_cents", "Enter a price as a number"),
    ({"early_until_at": ""}, "early_until_at", "Give the date the early-bird price ends."),
    ({"early_until_at": "2026-03-08T02:30"}, "early_until_at", "does not exist in America/Toronto"),
])
def test_bad_early_bird_prices_are_refused_beside_the_field(organizer_client, scene, changes, field, message):
    response = organizer_client.post(url(scene, f"/tickets/{scene.ticket.id}"), data=ticket_form(**changes))
    assert response.status_code == 200
    assert message in (error_beside(response.text, field) or ""), response.text
    db.session.rollback()
    assert db.session.get(TicketType, scene.ticket.id).early_price_cents is None


def test_a_new_ticket_type_can_have_an_early_bird_price(organizer_client, scene):
    organizer_client.post(url(scene, "/tickets/new"), data=ticket_form(name="Observer", price_cents="100",
                                                                        early_price_cents="80"))
    db.session.rollback()
    ticket = db.session.execute(sa.select(TicketType).where(TicketType.name == "Observer")).scalar_one()
    assert (ticket.price_cents, ticket.early_price_cents) == (10000, 8000) and ticket.early_until_at is not None


def settings_form(convening: Convening, **changes) -> dict:
    data = {"name": convening.name, "slug": convening.slug, "timezone": convening.timezone,
            "starts_on": convening.starts_on.isoformat(), "ends_on": convening.ends_on.isoformat(),
            "currency": convening.currency, "reference_prefix": convening.reference_prefix, "published": "y",
            "waitlist_enabled": "y", "invoice_enabled": "y",
            "invoice_issuer": "Housing Network Inc.\r\n12 King St W  \r\nToronto ON\r\n\r\n",
            "invoice_instructions": "IBAN CA00 1234\nQuote the invoice number.", "invoice_due_days": "14"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_invoice_settings_are_saved_and_shown_again(organizer_client, scene):
    response = organizer_client.post(url(scene, "/settings"), data=settings_form(scene.convening))
    assert response.status_code == 302
    db.session.rollback()
    convening = db.session.get(Convening, scene.convening.id)
    assert convening.invoice_enabled and convening.invoice_due_days == 14
    assert convening.invoice_issuer == "Housing Network Inc.\n12 King St W\nToronto ON"
    assert convening.invoice_instructions == "IBAN CA00 1234\nQuote the invoice number."
    page = organizer_client.get(url(scene, "/settings")).text
    assert 'value="14"' in page and "Housing Network Inc." in page
    organizer_client.post(url(scene, "/settings"), data=settings_form(convening, invoice_enabled=None,
                                                                       invoice_due_days="0"))
    db.session.rollback()
    convening = db.session.get(Convening, scene.convening.id)
    assert not convening.invoice_enabled and convening.invoice_due_days == 0


@pytest.mark.parametrize("days", ["366", "-1", "thirty"])
def test_bad_invoice_due_days_are_refused_beside_the_field(organizer_client, scene, days):
    response = organizer_client.post(url(scene, "/settings"), data=settings_form(scene.convening,
                                                                                  invoice_due_days=days))
    assert response.status_code == 200
    assert error_beside(response.text, "invoice_due_days") == "Enter a number of days from 0 to 365."
    db.session.rollback()
    assert db.session.get(Convening, scene.convening.id).invoice_due_days == 30


# -- the dashboard ---------------------------------------------------------------------------------

def test_dashboard_warns_when_paid_tickets_cannot_be_paid_by_card(organizer_client, scene, books):
    page = organizer_client.get(f"/admin/c/{scene.convening.id}/").text
    warning = re.search(r'id="payments-warning">(.*?)</p>', page, re.S).group(1)
    assert warning == ("Card payments are not set up: paid tickets cannot be booked online "
                       "(attendees can still pay by invoice).")
    summary = html.unescape(re.sub(r"\s+", " ", re.search(r'id="payments-summary">(.*?)</p>', page, re.S).group(1)))
    assert "CA$175.00</strong> paid" in summary and "CA$1,350.00 in 2 outstanding invoices" in summary
    assert "2 orders need review" in summary and "show=review" in summary


def test_dashboard_without_invoices_says_only_that_cards_are_not_set_up(organizer_client, app):
    convening = make_convening(invoice_enabled=False)
    make_ticket(convening, price_cents=1000)
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    assert re.search(r'id="payments-warning">(.*?)</p>', page).group(1) == (
        "Card payments are not set up: paid tickets cannot be booked online.")


def test_dashboard_of_a_free_convening_says_nothing_about_payments(organizer_client, app):
    convening = make_convening()
    make_ticket(convening)
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    assert "payments-warning" not in page and "payments-summary" not in page


def test_dashboard_has_no_warning_once_stripe_is_set_up(app, organizer_client, scene):
    app.config.update(STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    page = organizer_client.get(f"/admin/c/{scene.convening.id}/").text
    assert "payments-warning" not in page and "payments-summary" in page


def test_staff_see_no_payment_lines_on_the_dashboard(staff_client, scene, books):
    page = staff_client.get(f"/admin/c/{scene.convening.id}/").text
    assert "payments-warning" not in page and "payments-summary" not in page


# -- seats added by hand or imported, and desk payments (issue 11, item 17) ------------------------------------------

def test_hand_added_and_imported_paid_seats_count_on_the_dashboard_and_payments_page(organizer_client, scene):
    early = make_ticket(scene.convening, name="Early delegate", price_cents=45000, early_price_cents=37500,
                        early_until_at=utcnow() + timedelta(days=20))
    before = stats(organizer_client.get(url(scene, "/payments")).text)
    assert (before["owed"], before["paid"], before["outstanding"]) == ("CA$450.00", "CA$0.00", "CA$450.00")
    new = url(scene, "/registrations/new")
    base = dict(ticket_type_id=early.id, role="delegate", delegation_id=0)
    assert organizer_client.post(new, data={**person(1), **base, "settlement": "invoice"}).status_code == 302
    assert organizer_client.post(new, data={**person(2), **base, "settlement": "paid",
                                            "payment_note": "Cheque 1042 received"}).status_code == 302
    text = "First name,Last name,Email,Organization,Payment\nCy,Three,cy@example.org,Org,\n"
    response = organizer_client.post(url(scene, "/import"), content_type="multipart/form-data", data={
        "ticket_type_id": str(early.id), "delegation_id": "0", "role": "delegate", "settlement": "invoice",
        "file": (io.BytesIO(text.encode()), "delegates.csv")})
    assert "Imported 1 delegate." in response.text
    # 450 (the scene's invoice) + 3 × 375 owed; 375 paid elsewhere; 450 + 2 × 375 outstanding.
    after = stats(organizer_client.get(url(scene, "/payments")).text)
    assert (after["owed"], after["paid"], after["outstanding"]) == ("CA$1,575.00", "CA$375.00", "CA$1,200.00")
    dashboard = html.unescape(organizer_client.get(f"/admin/c/{scene.convening.id}/").text)
    dashboard = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", dashboard))
    assert "Payments: CA$375.00 paid" in dashboard and "CA$1,200.00 in 3 outstanding invoices" in dashboard


def test_recording_desk_payments_on_the_order_page_part_then_rest_with_receipts(organizer_client, scene, outbox):
    page = organizer_client.get(url(scene, "/payments/{o}")).text
    assert "Record a payment at the desk" in page and 'value="450.00"' in page
    desk = url(scene, "/payments/{o}/desk-payment")
    response = organizer_client.post(desk, data={"method": "bitcoin", "amount": "10"})
    assert response.status_code == 400 and error_beside(response.text, "method")
    response = organizer_client.post(desk, data={"method": "cheque", "amount": "-5"})
    assert response.status_code == 400 and error_beside(response.text, "amount")
    assert fresh_order(scene.order.id).paid_cents == 0

    response = organizer_client.post(desk, data={"method": "cheque", "amount": "200", "note": "No. 1042"},
                                     follow_redirects=True)
    assert "CA$200.00 is recorded; CA$250.00 is still owed." in html.unescape(response.text)
    order = fresh_order(scene.order.id)
    assert (order.status, order.paid_cents, order.balance_cents) == (OrderStatus.INVOICED, 20000, 25000)
    assert "Receipt (PDF)" in response.text and "Record a payment at the desk" in response.text
    receipt = organizer_client.get(url(scene, "/payments/{o}/receipt.pdf"))
    assert receipt.status_code == 200 and "CA$200.00" in pdf_text(receipt.data)
    assert stats(organizer_client.get(url(scene, "/payments")).text)["outstanding"] == "CA$250.00"

    organizer_client.post(desk, data={"method": "terminal", "amount": "250"})
    order = fresh_order(scene.order.id)
    assert (order.status, order.paid_cents, order.balance_cents) == (OrderStatus.PAID, 45000, 0)
    assert order.payment_note == "Cheque at the desk, CA$200.00 (No. 1042); Card terminal at the desk, CA$250.00"
    assert len([m for m in outbox.to("invoice@example.org") if m["Subject"].startswith("Receipt")]) == 2
    page = organizer_client.get(url(scene, "/payments/{o}")).text
    assert "Record a payment at the desk" not in page
