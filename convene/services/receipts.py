"""Receipts, invoices and credit notes: an order read into plain data for convene/printing/receipts.py."""
from __future__ import annotations

from collections import OrderedDict

from flask_babel import gettext

from convene.errors import ConveneError
from convene.extensions import db
from convene.i18n import in_language, person_language
from convene.languages import localized
from convene.models import Order, OrderStatus, PaymentMethod
from convene.models.payments import CreditNote
from convene.printing.receipts import (
    DocumentLine,
    MoneyDocument,
    Payment,
    document_filename,
    money_document_pdf,
)
from convene.templating import date_range


def has_receipt(order: Order) -> bool:
    """Money was received and accepted (a payment held for review gets its receipt once accepted)."""
    # An invoice paid in part at the desk has a receipt for what was taken.
    return order.paid_cents > 0 and order.status in (OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.INVOICED)


def has_invoice(order: Order) -> bool:
    """An invoice stands until its order is cancelled (then it would wrongly say an amount is due)."""
    return bool(order.invoice_number) and order.status != OrderStatus.CANCELLED


def order_document(order: Order, kind: str) -> MoneyDocument:
    """The receipt or invoice of an order, as the renderer's plain data."""
    if kind == "receipt" and not has_receipt(order):
        raise ConveneError("no_receipt", status_code=404)
    if kind == "invoice" and not has_invoice(order):
        raise ConveneError("no_invoice", status_code=404)
    convening = order.convening
    grouped: OrderedDict[tuple, list] = OrderedDict()
    for registration in order.registrations:
        key = (localized(registration.ticket_type, "name"), registration.price_cents, registration.discount_cents)
        grouped.setdefault(key, []).append(registration)
    lines = tuple(
        DocumentLine(description=f"{name} — {localized(convening, 'name')}", quantity=len(people), unit_cents=unit,
                     discount_cents=off, total_cents=len(people) * (unit - off))
        for (name, unit, off), people in grouped.items()
    )
    code = order.discount_code
    payments: tuple[Payment, ...] = ()
    if order.paid_cents and order.paid_at:
        if order.method == PaymentMethod.CARD:
            how = gettext("Card payment (Stripe %(reference)s)", reference=order.stripe_payment_intent_id) \
                if order.stripe_payment_intent_id else gettext("Card payment (Stripe)")
        else:
            how = gettext("Paid elsewhere") if order.method == PaymentMethod.OFFLINE else gettext("Invoice payment")
            how += f": {order.payment_note}" if order.payment_note else ""
        payments = (Payment(on=convening.local(order.paid_at).date(), description=how, amount_cents=order.paid_cents),)
    refunds = tuple(
        Payment(on=convening.local(r.completed_at or r.created_at).date(),
                description=gettext("Refund") + (f": {r.reason}" if r.reason else ""), amount_cents=r.amount_cents)
        for r in order.refunds if r.status == "succeeded"
    )
    if sum(r.amount_cents for r in refunds) < order.refunded_cents:  # refunded in Stripe's own dashboard
        refunds += (Payment(on=convening.local(order.updated_at).date(), description=gettext("Refund (through Stripe)"),
                            amount_cents=order.refunded_cents - sum(r.amount_cents for r in refunds)),)
    issued = order.invoice_issued_at if kind == "invoice" else (order.paid_at or order.created_at)
    credits = tuple(Payment(on=convening.local(note.issued_at).date(), description=gettext("Credit note %(number)s", number=note.number),
                            amount_cents=note.amount_cents) for note in order.credit_notes)
    return MoneyDocument(
        kind=kind,
        number=order.invoice_number if kind == "invoice" else f"R-{order.reference}",
        issued_on=convening.local(issued).date(),
        currency=order.currency,
        **_parties(order),
        lines=lines,
        subtotal_cents=order.subtotal_cents,
        discount_cents=order.discount_cents,
        discount_label=gettext("Code %(code)s (%(what)s)", code=code.code, what=code.describe)
        if code is not None and order.discount_cents else "",
        total_cents=order.total_cents,
        payments=payments,
        refunds=refunds,
        due_on=order.invoice_due_on if kind == "invoice" else None,
        payment_instructions=convening.invoice_instructions if kind == "invoice" else "",
        attendees=tuple((r.full_name, r.reference, localized(r.ticket_type, "name")) for r in order.registrations),
        credits=credits,
    )


def _parties(order: Order) -> dict:
    """Who issues and who is billed, and for which convening: the same on receipts, invoices and credit notes."""
    convening = order.convening
    issuer = convening.invoice_issuer.splitlines() if convening.invoice_issuer else []
    return dict(
        issuer_name=issuer[0] if issuer else convening.name,
        issuer_details="\n".join(issuer[1:]),
        convening_name=localized(convening, "name"),
        convening_dates=date_range(convening.starts_on, convening.ends_on),
        convening_venue=", ".join(p for p in (convening.venue, convening.city) if p),
        order_reference=order.reference,
        bill_to_name=order.buyer_name,
        bill_to_organization=order.buyer_organization,
        bill_to_email=order.buyer_email,
        bill_to_address=order.billing_address,
        po_number=order.po_number,
    )


def credit_note_document(note: CreditNote) -> MoneyDocument:
    """A credit note as the renderer's plain data: a line per cancelled seat, amounts positive (printed negative)."""
    order = note.order
    convening = order.convening
    lines = [DocumentLine(description=f"{seat['ticket']} — {seat['name']} ({seat['reference']})", quantity=1,
                          unit_cents=seat["cents"], discount_cents=0, total_cents=seat["cents"])
             for seat in note.seats or []]
    rest = note.amount_cents - sum(line.total_cents for line in lines)
    if rest:  # seats no longer listed on the order (their people registered again elsewhere), or rounding
        lines.append(DocumentLine(description=gettext("Rest of invoice %(number)s", number=note.invoice_number), quantity=1,
                                  unit_cents=rest, discount_cents=0, total_cents=rest))
    return MoneyDocument(
        kind="credit_note",
        number=note.number,
        issued_on=convening.local(note.issued_at).date(),
        currency=order.currency,
        **_parties(order),
        lines=tuple(lines),
        subtotal_cents=note.amount_cents,
        discount_cents=0,
        discount_label="",
        total_cents=note.amount_cents,
        attendees=tuple((seat["name"], seat["reference"], seat["ticket"]) for seat in note.seats or []),
        invoice_number=note.invoice_number,
        voids_invoice=note.voids_invoice,
    )


def order_language(order: Order) -> str:
    """The language an order's documents are printed in: its first registration's, else the convening's default."""
    people = order.registrations or []
    return person_language(people[0] if people else None, order.convening)


def credit_note_pdf(note: CreditNote, *, lang: str | None = None) -> tuple[str, bytes]:
    """(file name, tagged PDF bytes) of a credit note, in `lang` (by default the order's language)."""
    lang = lang or order_language(note.order)
    with in_language(lang):
        document = credit_note_document(note)
    return document_filename(document), money_document_pdf(document, lang=lang)


def order_credit_note(order: Order, note_id: int) -> CreditNote:
    """One of the order's credit notes; a 404 ConveneError for any other id."""
    note = db.session.get(CreditNote, note_id)
    if note is None or note.order_id != order.id:
        raise ConveneError("no_credit_note", status_code=404)
    return note


def order_pdf(order: Order, kind: str, *, lang: str | None = None) -> tuple[str, bytes]:
    """(file name, tagged PDF bytes) of an order's receipt or invoice, in `lang` (by default the order's language)."""
    lang = lang or order_language(order)
    with in_language(lang):
        document = order_document(order, kind)
    return document_filename(document), money_document_pdf(document, lang=lang)


def attachment_pdf(attachment: dict) -> tuple[str, bytes] | None:
    """Render an email attachment named in the outbox; None when its order is gone."""
    order = db.session.get(Order, attachment.get("order_id"))
    if order is None:
        return None
    if attachment.get("kind") == "credit_note":
        note = db.session.get(CreditNote, attachment.get("credit_note_id"))
        return credit_note_pdf(note) if note is not None and note.order_id == order.id else None
    if attachment.get("kind") not in ("receipt", "invoice"):
        return None
    return order_pdf(order, attachment["kind"])
