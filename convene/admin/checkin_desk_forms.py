"""Forms of the check-in desk: a walk-in registered and checked in at once, a badge fixed and reprinted."""
from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, RadioField, SelectField

from convene.admin.registration_forms import BADGE_FORM_FIELDS, BadgeForm
from convene.forms import ConveneForm, PersonForm, choice_list
from convene.models import CheckinList, Convening
from convene.printing import LAYOUTS
from convene.printing.receipts import format_amount
from convene.services.desk import DESK_BADGE_LAYOUT, payment_choices

WALK_IN_FIELDS = ("given_name", "family_name", "email", "organization")


def _layout_select() -> SelectField:
    return SelectField(_l("Badge layout"), default=DESK_BADGE_LAYOUT, validate_choice=True,
                       choices=choice_list((key, layout.label) for key, layout in LAYOUTS.items()))


class WalkInDeskForm(ConveneForm):
    """Who they are, their ticket, how they pay, and the list they are checked in on."""

    given_name = PersonForm.given_name
    family_name = PersonForm.family_name
    email = PersonForm.email
    organization = PersonForm.organization
    ticket_type_id = RadioField(_l("Ticket"), coerce=int, validate_choice=True)
    # Checked by the service against the chosen ticket's price: a free ticket needs none.
    payment = RadioField(_l("How do they pay?"), validate_choice=False,
                         description=_l("For a ticket with a price. Paid here: the full price is recorded and a "
                                     "receipt is emailed."))
    list_id = SelectField(_l("Check them in on"), coerce=int, validate_choice=True)
    layout = _layout_select()
    send_email = BooleanField(_l("Email them their confirmation and the link to their registration"), default=True)

    def fill(self, convening: Convening, lists: list[CheckinList], now: datetime, *, all_tickets: bool,
             invoice_allowed: bool) -> None:
        """Public tickets at today's price (hidden ones too for organizers); the convening's lists, entrance first."""
        tickets = [t for t in convening.ticket_types if all_tickets or not t.hidden]
        self.prices = {t.id: t.price_at(now) for t in tickets}
        self.ticket_type_id.choices = choice_list(
            (t.id, f"{t.name} · "
                   f"{format_amount(self.prices[t.id], convening.currency) if self.prices[t.id] else 'free'}")
            for t in tickets)
        self.payment.choices = choice_list(payment_choices(invoice_allowed=invoice_allowed).items())
        self.list_id.choices = choice_list((item.id, item.name) for item in lists)
        if self.list_id.data is None and lists:
            self.list_id.data = lists[0].id

    def person_data(self) -> dict:
        return {name: getattr(self, name).data for name in WALK_IN_FIELDS}


class DeskBadgeForm(BadgeForm):
    """The badge's names and organization, corrected at the desk, and the layout to reprint it in."""

    layout = _layout_select()

    def badge_data(self) -> dict:
        return {name: getattr(self, name).data for name in BADGE_FORM_FIELDS}


class ReprintForm(ConveneForm):
    """Reprint a badge as it is."""

    layout = _layout_select()
