"""The check-in desk: register a walk-in and check them in at once, fix a name and reprint a badge.

A walk-in is one unit of work made of the services that already own each step, joined by nesting:
`registrations.add_registration` takes the seat (capacity still counts; the registration window does
not apply at the desk) and, on a ticket with a price, opens its order as an invoice;
`payments.record_desk_payment` settles that invoice when the money is taken at the desk; and
`checkin.check_in` checks them in on the desk's list. Any refusal rolls all of it back, so a bad form
leaves nothing behind. After the commit the badge is made like any print batch (`printing`), one
badge in the layout the desk chose, and marked printed.
"""
from __future__ import annotations

from dataclasses import dataclass

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import CheckinList, Order, OrderStatus, PrintJob, Registration, ScanResult, TicketType, User
from convene.services import checkin, payments, printing, registrations
from convene.services.db import unit_of_work

DESK_DEVICE = "desk"
INVOICE = "invoice"
DESK_BADGE_LAYOUT = "badge-4x6"  # single badges for a desk's badge printer


@dataclass(frozen=True)
class WalkIn:
    registration: Registration
    answer: checkin.ScanAnswer
    order: Order | None


def payment_choices(*, invoice_allowed: bool) -> dict[str, str]:
    """How a walk-in may pay at this desk: the desk's ways of taking money, and an invoice when allowed."""
    choices = {method: f"{label} at the desk" for method, label in payments.DESK_METHODS.items()}
    if invoice_allowed:
        choices[INVOICE] = "Invoice (emailed to them, paid later)"
    return choices


def register_walk_in(convening_id: int, list_id: int, ticket_type_id: int, person: dict, *, payment: str | None,
                     by: User | None, invoice_allowed: bool = False, send_email: bool = True) -> WalkIn:
    """Register someone at the desk and check them in on `list_id`, all or nothing.

    `person`: given_name, family_name, email, organization (and optionally badge_name, pronouns, phone).
    `payment`, for a ticket with a price: one of payments.DESK_METHODS (paid in full now, a receipt is
    emailed) or "invoice" (only when `invoice_allowed`: an invoice is emailed). A free ticket needs none.
    """
    with unit_of_work():
        checkin_list = db.session.get(CheckinList, list_id)
        if checkin_list is None or checkin_list.convening_id != convening_id:
            raise ConveneError("checkin_list_not_found", field="list_id", status_code=404)
        ticket = db.session.get(TicketType, ticket_type_id)  # add_registration locks it to take the seat
        if ticket is None or ticket.convening_id != convening_id:
            raise ConveneError("ticket_unavailable", field="ticket_type_id")
        price = ticket.price_at()
        if price > 0 and payment not in payment_choices(invoice_allowed=invoice_allowed):
            raise ConveneError("walk_in_invoice_not_allowed" if payment == INVOICE else "walk_in_settlement_invalid",
                               field="payment")
        paid_here = price > 0 and payment != INVOICE
        try:
            registration = registrations.add_registration(
                convening_id, ticket_type_id, person, settlement="invoice",
                # Paid here: the receipt below (and the confirmation) go out, never an invoice.
                send_email=send_email and not paid_here)
        except ConveneError as error:
            if error.code == "already_registered" and error.details.get("registration_id"):
                known = db.session.get(Registration, error.details["registration_id"])
                raise ConveneError("walk_in_already_registered", field="email", registration_id=known.id,
                                   name=known.full_name, reference=known.reference) from None
            raise
        order = registration.order
        if paid_here and order is not None and order.status == OrderStatus.INVOICED:
            if send_email:
                registrations.queue_status_email(registration)
            payments.record_desk_payment(order.id, payment, order.balance_cents,
                                         user_id=by.id if by else None)
        answer = checkin.check_in(checkin_list, registration.checkin_token, by=by, device=DESK_DEVICE)
        if answer.result is not ScanResult.CHECKED_IN:
            # The desk's list does not take this ticket (or role): register nobody rather than half of it.
            raise ConveneError("walk_in_not_on_list", field="ticket_type_id", list=checkin_list.name,
                               reason=answer.reason or answer.headline)
    return WalkIn(registration, answer, registration.order)


def print_badge(registration_id: int, *, layout: str = DESK_BADGE_LAYOUT, requested_by: str = "") -> PrintJob:
    """One person's badge as a print batch, rendered now and marked printed (the desk prints it at once)."""
    registration = db.session.get(Registration, registration_id)
    if registration is None:
        raise ConveneError("registration_not_found", status_code=404)
    job = printing.request_badge_batch(
        registration.convening_id, printing.BadgeFilter(which="all", registration_id=registration.id), layout,
        requested_by=requested_by, inline_max=1)
    if job.status == "done":
        printing.mark_job_printed(job.id)
        db.session.refresh(job)
    return job


def fix_badge(registration_id: int, badge: dict) -> Registration:
    """Correct what prints on a badge (names, pronouns, organization); the badge is then marked changed."""
    allowed = {key: badge[key] for key in ("given_name", "family_name", "badge_name", "pronouns", "organization")
               if key in badge}
    return registrations.update_registration(registration_id, allowed)
