"""Payments and codes: orders with their totals, one order's money and actions, the CSV, discount codes.

Organizers only: staff run the day (check-in, badges) but do not see orders; they may record a payment taken
at the desk, from the registration's page (admin/registrations.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import aliased

from convene.admin import bp
from convene.admin.access import allow
from convene.admin.confirm import confirm_deletion
from convene.permissions import Permission
from convene.admin.payment_forms import CodeForm, DeskPaymentForm, MarkPaidForm, RefundForm
from convene.admin.registrations import MAX_PAGE, _csv_response, _escape_like, _int_arg
from convene.admin.util import child_or_404, convening_or_404, show_error
from convene.errors import ConveneError
from convene.extensions import db
from convene.forms import EmptyForm
from convene.models import CodeKind, Convening, DiscountCode, Order, OrderStatus, PaymentMethod, Refund, Registration
from convene.printing.receipts import format_amount
from convene.services import codes as code_service
from convene.services import payment_reports as reports
from convene.services import payments as service
from convene.services.receipts import credit_note_pdf, has_invoice, has_receipt, order_credit_note, order_pdf
from convene.services.stripe_api import stripe_configured
from convene.text import search_key

SHOW_FILTERS = {"review": _l("Needs review"), "outstanding": _l("Outstanding invoices")}


@bp.context_processor
def money_helpers():
    """`amount(cents, currency)` prints 0 as an amount ("$0.00"), where the `money` filter says "Free"."""
    return {"amount": format_amount}


# -- the orders list -------------------------------------------------------------------------------

@dataclass
class OrderArgs:
    """The orders list's search, filters and page, read leniently from the query string."""

    q: str = ""
    status: str = ""
    method: str = ""
    show: str = ""
    page: int = 1
    ignored: list[str] = field(default_factory=list)

    def conditions(self) -> list:
        """WHERE clauses on Order for everything but the convening."""
        where = []
        person = aliased(Registration)  # its own name, so the EXISTS never correlates with an outer join
        for term in self.q.split()[:6]:
            pattern = f"%{_escape_like(term.lower())}%"
            like = [sa.func.lower(column).like(pattern, escape="\\") for column in (
                Order.reference, Order.buyer_name, Order.buyer_email, Order.buyer_organization, Order.invoice_number)]
            # Attendees are matched on their folded search_text, so "alvarez" finds Álvarez.
            folded = search_key(term)
            attendee = sa.select(person.id).where(
                person.order_id == Order.id, person.search_text.like(f"%{_escape_like(folded)}%", escape="\\"),
            ).exists() if folded else sa.false()
            where.append(sa.or_(*like, attendee))
        if self.status:
            where.append(Order.status == self.status)
        if self.method:
            where.append(Order.method == self.method)
        if self.show == "review":
            where.append(reports.needs_review())
        elif self.show == "outstanding":
            where.append(reports.outstanding_invoice())
        return where

    @property
    def filtering(self) -> bool:
        return bool(self.q or self.status or self.method or self.show)


def _order_args() -> OrderArgs:
    """Read the query string; a value that makes no sense is dropped and named, never an error."""
    args, parsed = request.args, OrderArgs()
    parsed.q = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", args.get("q", "")).split())[:200]
    for name, allowed, label in (("status", {s.value for s in OrderStatus}, _("status")),
                                 ("method", {m.value for m in PaymentMethod}, _("payment method")),
                                 ("show", set(SHOW_FILTERS), _("view"))):
        value = args.get(name, "")
        if value in allowed:
            setattr(parsed, name, value)
        elif value:
            parsed.ignored.append(label)
    raw = args.get("page", "")
    page = _int_arg(raw)
    if raw and (page is None or not 1 <= page <= MAX_PAGE):
        parsed.ignored.append(_("page"))
    parsed.page = page if page and 1 <= page <= MAX_PAGE else 1
    return parsed


@bp.get("/c/<int:convening_id>/payments")
@allow(Permission.PAYMENTS_VIEW)
def payments(convening_id: int):
    """Orders with totals by status; filter by status, method, review, outstanding invoices or a search."""
    convening = convening_or_404(convening_id)
    args = _order_args()
    page = db.paginate(reports.orders_select(convening.id, args.conditions()), page=args.page,
                       per_page=current_app.config["ADMIN_PAGE_SIZE"], error_out=False, count=True)
    ids = [order.id for order in page.items]
    export_args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "admin/payments/list.html", convening=convening, page=page, args=args,
        totals=reports.payment_totals(convening), seats=reports.registration_counts(ids),
        failed_refunds=reports.failed_refund_orders(ids), statuses=list(OrderStatus), methods=list(PaymentMethod),
        show_filters=SHOW_FILTERS, export_args=export_args, stripe_ready=stripe_configured(),
    )


@bp.get("/c/<int:convening_id>/payments.csv")
@allow(Permission.PAYMENTS_VIEW)
def payments_csv(convening_id: int):
    """Download the orders (filtered like the list) as a spreadsheet."""
    convening = convening_or_404(convening_id)
    text = reports.orders_csv(convening, _order_args().conditions())
    return _csv_response(text, f"{convening.slug}-payments.csv")


# -- one order -------------------------------------------------------------------------------------

def _order(convening: Convening, order_id: int) -> Order:
    return child_or_404(Order, convening, order_id)


def desk_form_for(order: Order) -> DeskPaymentForm | None:
    """A blank desk-payment form offering the balance, or None when nothing can be taken at the desk."""
    if order.status != OrderStatus.INVOICED or order.balance_cents <= 0:
        return None
    return DeskPaymentForm(formdata=None, data={"amount": order.balance_cents})


def record_desk_payment_from(form: DeskPaymentForm, order: Order) -> bool:
    """Call the service with the form's values; flash what happened, or put the error beside its field."""
    try:
        service.record_desk_payment(order.id, form.method.data, form.amount.data, note=form.note.data or "",
                                    user_id=current_user.id)
    except ConveneError as error:
        if error.field:
            show_error(form, error)
        else:
            flash(error.message, "error")
        return False
    db.session.refresh(order)
    recorded = format_amount(form.amount.data, order.currency)
    if order.balance_cents:
        flash(_("%(amount)s is recorded; %(owed)s is still owed. A receipt went to %(email)s.", amount=recorded,
                owed=format_amount(order.balance_cents, order.currency), email=order.buyer_email), "success")
    else:
        flash(_("%(amount)s is recorded. A receipt went to %(email)s.", amount=recorded, email=order.buyer_email),
              "success")
    return True


def _order_page(convening: Convening, order: Order, *, refund_form: RefundForm | None = None,
                paid_form: MarkPaidForm | None = None, desk_form: DeskPaymentForm | None = None, status: int = 200):
    left = reports.refund_left(order)
    refund_form = refund_form or RefundForm(formdata=None, data={"amount": left or None})
    paid_form = paid_form or MarkPaidForm(formdata=None)
    desk_form = desk_form or desk_form_for(order)
    return render_template(
        "admin/payments/order.html", convening=convening, order=order, events=reports.order_events(order.id),
        refund_left=left, refund_form=refund_form, paid_form=paid_form, desk_form=desk_form, button_form=EmptyForm(),
        has_receipt=has_receipt(order), has_invoice=has_invoice(order), stripe_ready=stripe_configured(),
        cancellable=order.status in (OrderStatus.INVOICED, OrderStatus.PENDING, OrderStatus.PROCESSING)
        and not order.paid_cents,
    ), status


def _back(convening: Convening, order: Order):
    return redirect(url_for("admin.order", convening_id=convening.id, order_id=order.id))


@bp.get("/c/<int:convening_id>/payments/<int:order_id>")
@allow(Permission.PAYMENTS_VIEW)
def order(convening_id: int, order_id: int):
    """One order: buyer, amounts, seats, refunds, Stripe events, documents and what can be done with it."""
    convening = convening_or_404(convening_id)
    return _order_page(convening, _order(convening, order_id))


@bp.get("/c/<int:convening_id>/payments/<int:order_id>/<any(receipt, invoice):kind>.pdf")
@allow(Permission.PAYMENTS_VIEW)
def order_document(convening_id: int, order_id: int, kind: str):
    """Download the order's receipt or invoice as a PDF."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    if not (has_receipt(order) if kind == "receipt" else has_invoice(order)):
        abort(404)
    filename, pdf = order_pdf(order, kind)
    return Response(pdf, content_type="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.get("/c/<int:convening_id>/payments/<int:order_id>/credit-notes/<int:note_id>.pdf")
@allow(Permission.PAYMENTS_VIEW)
def credit_note_document(convening_id: int, order_id: int, note_id: int):
    """Download one of the order's credit notes as a PDF."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    try:
        filename, pdf = credit_note_pdf(order_credit_note(order, note_id))
    except ConveneError:
        abort(404)
    return Response(pdf, content_type="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/refund")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_refund(convening_id: int, order_id: int):
    """Refund part or all of what the order paid (through Stripe for card payments), perhaps cancelling its seats."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    form = RefundForm()
    if form.validate_on_submit():
        try:
            refund = service.refund_order(order.id, form.amount.data, reason=form.reason.data or "",
                                          cancel=form.cancel_registrations.data, user_id=current_user.id)
        except ConveneError as error:
            if not error.field:  # Stripe refused or was unreachable: the refund is listed as failed
                flash(error.message, "error")
                return _back(convening, order)
            show_error(form, error)
        else:
            refunded = format_amount(refund.amount_cents, order.currency)
            if refund.cancel_registrations:
                flash(_("%(amount)s is refunded and the registrations are cancelled.", amount=refunded), "success")
            else:
                flash(_("%(amount)s is refunded and the buyer is emailed.", amount=refunded), "success")
            return _back(convening, order)
    return _order_page(convening, order, refund_form=form, status=400)


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/refunds/<int:refund_id>/retry")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_retry_refund(convening_id: int, order_id: int, refund_id: int):
    """Ask Stripe again for a refund that failed (the same idempotency key, so never twice)."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    refund = db.session.get(Refund, refund_id)
    if refund is None or refund.order_id != order.id:
        abort(404)
    if EmptyForm().validate_on_submit():
        try:
            service.send_refund(refund.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("The refund went through."), "success")
    return _back(convening, order)


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/mark-paid")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_mark_paid(convening_id: int, order_id: int):
    """Record that the invoice was paid in full; the buyer gets a receipt."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    form = MarkPaidForm()
    if form.validate_on_submit():
        try:
            service.mark_invoice_paid(order.id, note=form.note.data or "", user_id=current_user.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("Invoice %(number)s is marked paid; a receipt went to %(email)s.", number=order.invoice_number,
                    email=order.buyer_email), "success")
        return _back(convening, order)
    return _order_page(convening, order, paid_form=form, status=400)


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/desk-payment")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_desk_payment(convening_id: int, order_id: int):
    """Record money taken at the desk (cash, card terminal, cheque, bank transfer); the buyer gets a receipt."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    form = DeskPaymentForm()
    if form.validate_on_submit() and record_desk_payment_from(form, order):
        return _back(convening, order)
    if not form.errors:  # refused as a whole (nothing outstanding): the message is flashed
        return _back(convening, order)
    return _order_page(convening, order, desk_form=form, status=400)


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/accept")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_accept(convening_id: int, order_id: int):
    """Accept a payment flagged for review: its seats are confirmed if they are still free."""
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    if EmptyForm().validate_on_submit():
        try:
            service.accept_flagged_order(order.id)
        except ConveneError as error:
            flash(error.message, "error")
        else:
            flash(_("The payment is accepted and the seats are confirmed."), "success")
    return _back(convening, order)


@bp.post("/c/<int:convening_id>/payments/<int:order_id>/cancel")
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def order_cancel(convening_id: int, order_id: int):
    """Say whom cancelling an unpaid order emails and what it credits, then cancel it on confirmation.

    POST only: the order page's button posts here and gets the confirmation page back, whose form
    posts again with the preview's token.
    """
    convening = convening_or_404(convening_id)
    order = _order(convening, order_id)
    page = url_for("admin.order", convening_id=convening.id, order_id=order.id)
    return confirm_deletion(convening, lambda: service.order_cancellation(order.id),
                            lambda token: service.cancel_order_as_previewed(order.id, expected=token),
                            back=page, after=page)


# -- codes -----------------------------------------------------------------------------------------

@bp.get("/c/<int:convening_id>/codes")
@allow(Permission.PAYMENTS_VIEW)
def codes(convening_id: int):
    """Discount and access codes with their uses and validity windows."""
    convening = convening_or_404(convening_id)
    return render_template("admin/payments/codes.html", convening=convening, rows=reports.code_rows(convening),
                           delete_form=EmptyForm(), kinds=CodeKind)


def _code_form(convening: Convening, code: DiscountCode | None) -> CodeForm:
    if request.method == "POST" or code is None:
        form = CodeForm()
    else:
        form = CodeForm.for_code(code, convening)
    form.fill_choices(convening)
    return form


@bp.route("/c/<int:convening_id>/codes/new", methods=["GET", "POST"])
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def new_code(convening_id: int):
    """Add a discount or access code."""
    convening = convening_or_404(convening_id)
    form = _code_form(convening, None)
    if form.validate_on_submit():
        try:
            code = code_service.create_code(convening.id, form.code_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("Code %(code)s is added.", code=code.code), "success")
            return redirect(url_for("admin.codes", convening_id=convening.id))
    return render_template("admin/payments/code_form.html", convening=convening, form=form, code=None), (
        400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/codes/<int:code_id>", methods=["GET", "POST"])
@allow(Permission.PAYMENTS_VIEW, Permission.PAYMENTS_MANAGE)
def edit_code(convening_id: int, code_id: int):
    """Change a code; seats booked with it keep their price."""
    convening = convening_or_404(convening_id)
    code = child_or_404(DiscountCode, convening, code_id)
    form = _code_form(convening, code)
    if form.validate_on_submit():
        try:
            code_service.update_code(code.id, form.code_data())
        except ConveneError as error:
            show_error(form, error)
        else:
            flash(_("The code is saved."), "success")
            return redirect(url_for("admin.codes", convening_id=convening.id))
    return render_template("admin/payments/code_form.html", convening=convening, form=form, code=code,
                           delete_form=EmptyForm()), (400 if form.errors else 200)


@bp.route("/c/<int:convening_id>/codes/<int:code_id>/delete", methods=["GET", "POST"])
@allow(Permission.PAYMENTS_MANAGE, Permission.PAYMENTS_MANAGE)
def delete_code(convening_id: int, code_id: int):
    """Say whether a code goes or, used, is deactivated (keeping its history), then do that on confirmation."""
    convening = convening_or_404(convening_id)
    code = child_or_404(DiscountCode, convening, code_id)
    return confirm_deletion(convening, lambda: code_service.code_deletion(code.id),
                            lambda token: code_service.delete_code_as_previewed(code.id, expected=token),
                            back=url_for("admin.edit_code", convening_id=convening.id, code_id=code.id),
                            after=url_for("admin.codes", convening_id=convening.id))
