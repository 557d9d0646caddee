"""Forms of the back office's payments and codes pages."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from convene.admin.forms import COUNT, PriceField, _local_datetime
from convene.errors import MESSAGES, ConveneError
from convene.forms import ConveneForm, IntegerField, MultiCheckboxField, choice_list
from convene.models import CodeKind, Convening, DiscountCode
from convene.services.codes import CODE_FIELDS
from convene.services.convenings import PRICE_RE, price_to_cents, utc_to_local
from convene.services.payments import DESK_METHODS


def amount_to_cents(text: str) -> int | None:
    """Cents from an amount typed in currency units ("45.50"); None when empty; ConveneError when unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    if not PRICE_RE.fullmatch(text) or text.startswith("-"):
        raise ConveneError("amount_invalid")
    try:
        return price_to_cents(text)
    except ConveneError as error:  # too many decimals, or too large: say it about an amount
        if error.code == "price_too_large":
            raise ConveneError("amount_too_large") from None
        raise ConveneError(error.code) from None


class AmountField(PriceField):
    """An amount of money typed as a decimal in the convening's currency; its data is in cents (None if empty)."""

    parse = staticmethod(amount_to_cents)


class RefundForm(ConveneForm):
    """Send back part or all of what an order paid."""

    amount = AmountField(_l("Amount to refund"), description=_l("In the order's currency, for example 45.50."))
    reason = StringField(_l("Reason"), [Optional(), Length(max=300)],
                         description=_l("Shown to the buyer in the email."))
    cancel_registrations = BooleanField(_l("Also cancel the registrations and free their seats"))


class MarkPaidForm(ConveneForm):
    """Record that an invoice was paid in full."""

    note = StringField(_l("Note"), [Optional(), Length(max=300)],
                       description=_l("How it was paid, for example “Bank transfer received 3 March”."))


class DeskPaymentForm(ConveneForm):
    """Money taken at the desk against what an order still owes."""

    method = RadioField(_l("How was it paid?"), choices=choice_list(DESK_METHODS.items()), validate_choice=True,
                        validators=[InputRequired(message=MESSAGES["desk_method_invalid"])])
    amount = AmountField(_l("Amount received"), validators=[InputRequired(message=MESSAGES["amount_invalid"])],
                         description=_l("In the order's currency, for example 45.50; less than the balance records a "
                                        "part payment."))
    note = StringField(_l("Note"), [Optional(), Length(max=120)],
                       description=_l("For example the cheque number or the terminal's slip number."))


KIND_CHOICES = choice_list((kind.value, kind.label) for kind in CodeKind)


class CodeForm(ConveneForm):
    """A discount or access code; its validity window is in the convening's time zone."""

    code = StringField(_l("Code"), [Length(max=60)], render_kw={"autocomplete": "off", "spellcheck": "false"},
                       description=_l("3 to 40 letters, digits, hyphens or underscores; people may type it in any "
                                      "case."))
    kind = RadioField(_l("What it does"), choices=KIND_CHOICES, default=CodeKind.PERCENT.value, validate_choice=False)
    percent = IntegerField(_l("Percent off"), [Optional()],
                           invalid_value_message=_l("Enter a whole percentage from 1 to 100."),
                           range_message=MESSAGES["percent_invalid"],
                           description=_l("For a percent-off code: 1 to 100."))
    amount_cents = AmountField(_l("Amount off each ticket"), description=_l("For an amount-off code, for example 25."))
    max_uses = IntegerField(_l("Maximum uses"), [Optional()], invalid_value_message=COUNT,
                            range_message=MESSAGES["max_uses_invalid"],
                            description=_l("Each seat booked with the code is one use; leave empty for no limit."))
    valid_from = _local_datetime(_l("Valid from"))
    valid_until = _local_datetime(_l("Valid until"))
    ticket_type_ids = MultiCheckboxField(
        _l("Ticket types"), coerce=int, validate_choice=False,
        description=_l("None ticked: every public ticket type. A hidden ticket type ticked here is unlocked by the "
                       "code."),
    )
    active = BooleanField(_l("Active (people can use it)"), default=True)
    note = TextAreaField(_l("Note for organizers"), [Optional(), Length(max=200)])

    @classmethod
    def for_code(cls, code: DiscountCode, convening: Convening) -> CodeForm:
        data = {key: getattr(code, key) for key in CODE_FIELDS}
        for key in ("valid_from", "valid_until"):
            data[key] = utc_to_local(data[key], convening.tz)
        if code.kind != CodeKind.PERCENT:
            data["percent"] = None
        if code.kind != CodeKind.FIXED:
            data["amount_cents"] = None
        return cls(data=data)

    def fill_choices(self, convening: Convening) -> None:
        self.ticket_type_ids.choices = choice_list(
            (t.id, _("%(name)s (hidden)", name=t.name) if t.hidden else t.name) for t in convening.ticket_types)

    def code_data(self) -> dict:
        return {key: getattr(self, key).data for key in CODE_FIELDS}
