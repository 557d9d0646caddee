"""The order page a buyer (or delegation lead) comes back to, Stripe's return to it, and the webhook."""
from __future__ import annotations

from flask import flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import csrf, db
from convene.forms import EmptyForm
from convene.models import Order, OrderStatus, Registration, utcnow
from convene.payments import bp
from convene.public.routes import checkout_redirect, published_convening, registration_from_token
from convene.services import payments as service
from convene.services import receipts, stripe_api
from convene.services.tokens import manage_token


def _order_or_redirect(slug: str, token: str):
    convening = published_convening(slug)
    try:
        return convening, service.order_from_token(convening, token)
    except ConveneError as error:
        flash(error.message, "error")
        return convening, None


@bp.get("/c/<slug>/order/<token>")
def order_page(slug: str, token: str):
    """An order: what it covers, what is owed or paid, and what can be done next."""
    convening, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    if order.status == OrderStatus.PENDING and order.hold_expires_at and order.hold_expires_at <= utcnow():
        from convene.services.registrations import expire_offers

        expire_offers(convening.id)
        db.session.rollback()
        order = db.session.get(Order, order.id)
    if request.args.get("checkout") == "cancelled" and order.status == OrderStatus.PENDING:
        flash(gettext("The payment was not completed. Your seat is still held for a while: pay now, or release it."),
              "warning")
    people = [(r, manage_token(r)) for r in order.registrations]
    return render_template("payments/order.html", convening=convening, order=order, token=token, people=people,
                           form=EmptyForm(), has_receipt=receipts.has_receipt(order),
                           has_invoice=receipts.has_invoice(order))


@bp.post("/c/<slug>/order/<token>/pay")
def pay(slug: str, token: str):
    """Go (back) to Stripe Checkout for a pending order."""
    convening, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    if not EmptyForm().validate_on_submit():
        flash(gettext("The form expired; please try again."), "error")
        return redirect(url_for("payments.order_page", slug=slug, token=token))
    return checkout_redirect(order, url_for("payments.order_page", slug=slug, token=token))


@bp.get("/c/<slug>/order/<token>/return")
def checkout_return(slug: str, token: str):
    """Stripe sends the buyer here after paying; the payment is recorded now if the webhook has not done it."""
    convening, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    try:
        order = service.confirm_from_return(order.id, request.args.get("session_id", "")[:255])
    except ConveneError:
        # Stripe could not be asked; the webhook will record the payment, so this is not an error for the buyer.
        flash(gettext("Thank you. We are confirming your payment with the payment provider; you will get an email "
                      "as soon as it is recorded."), "info")
        return redirect(url_for("payments.order_page", slug=slug, token=token))
    if order.status == OrderStatus.PAID:
        flash(gettext("Payment received. Your registration is confirmed and a receipt is on its way."), "success")
    elif order.status == OrderStatus.PROCESSING:
        flash(gettext("Your payment is being processed. Your seat stays held and we will email you once it clears."),
              "info")
    elif order.status == OrderStatus.PENDING:
        flash(gettext("We have not received the payment yet. If you paid, it will show here in a moment."), "info")
    return redirect(url_for("payments.order_page", slug=slug, token=token))


@bp.post("/c/<slug>/order/<token>/release")
def release(slug: str, token: str):
    """The buyer gives up a held seat instead of paying."""
    convening, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    if EmptyForm().validate_on_submit():
        try:
            service.release_order(order.id)
        except ConveneError as error:
            flash(error.message, "error" if error.code != "order_already_paid" else "success")
        else:
            flash(gettext("The held seat is released. Nothing was charged."), "success")
    return redirect(url_for("payments.order_page", slug=slug, token=token))


def _pdf_response(order: Order, kind: str):
    try:
        filename, data = receipts.order_pdf(order, kind)
    except ConveneError as error:
        return render_template("errors/error.html", status=404, title=gettext("Not available"), message=error.message), 404
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/c/<slug>/order/<token>/<any(receipt, invoice):kind>.pdf")
def order_document(slug: str, token: str, kind: str):
    """The order's receipt or invoice as a PDF."""
    convening, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    return _pdf_response(order, kind)


@bp.get("/c/<slug>/order/<token>/credit-notes/<int:note_id>.pdf")
def credit_note_document(slug: str, token: str, note_id: int):
    """One of the order's credit notes as a PDF."""
    _, order = _order_or_redirect(slug, token)
    if order is None:
        return redirect(url_for("public.manage_link", slug=slug))
    try:
        filename, data = receipts.credit_note_pdf(receipts.order_credit_note(order, note_id))
    except ConveneError as error:
        return render_template("errors/error.html", status=404, title=gettext("Not available"), message=error.message), 404
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/c/<slug>/manage/<token>/<any(receipt, invoice):kind>.pdf")
def registration_document(slug: str, token: str, kind: str):
    """The receipt or invoice of the order that paid for this registration, from the attendee's own page."""
    convening = published_convening(slug)
    try:
        registration: Registration = registration_from_token(convening, token)
    except ConveneError as error:
        flash(error.message, "error")
        return redirect(url_for("public.manage_link", slug=slug))
    if registration.order is None or registration.order.is_group:  # a delegation's papers go to its lead
        return render_template("errors/error.html", status=404, title=gettext("Not available"),
                               message=gettext("There is no receipt or invoice for this registration on its own.")), 404
    return _pdf_response(registration.order, kind)


@bp.post("/stripe/webhook")
@csrf.exempt
def stripe_webhook():
    """Stripe's events: verified by signature, checked for shape, stored once by id, then acted on."""
    try:
        event = stripe_api.verify_event(request.get_data(), request.headers.get("Stripe-Signature"))
        outcome = service.handle_stripe_event(event)
    except ConveneError as error:
        return jsonify(error="bad_request", message=error.message), error.status_code
    return jsonify(received=True, outcome=outcome)

