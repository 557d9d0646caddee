"""Email addresses in the form mail servers deliver: the domain IDNA-encoded, SMTPUTF8 only when allowed.

A typed address such as "user@exämple.com" is valid, but written as is into a To: header or an
RCPT TO command it reaches no one: servers without SMTPUTF8 need the domain as "xn--" labels.
The part before the @ has no such ASCII spelling, so an address with accented letters there can
only go through a server that speaks SMTPUTF8 (MAIL_SMTPUTF8); otherwise it is refused up front.
"""
from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context

from convene.errors import MESSAGES, ConveneError

EMAIL_INVALID = MESSAGES["email_invalid"]
LOCAL_PART_NOT_SENDABLE = MESSAGES["email_not_sendable"]


class UnsendableAddress(ConveneError):
    """An address no mail could be sent to: malformed, or needing SMTPUTF8 where it is off."""


def smtputf8_allowed() -> bool:
    """Whether the mail server is known to take addresses with non-ASCII characters before the @."""
    return bool(has_app_context() and current_app.config.get("MAIL_SMTPUTF8", False))


def needs_smtputf8(address: str) -> bool:
    """True when an address (as sendable_address returned it) can only travel over SMTPUTF8."""
    return not address.isascii()


def sendable_address(text: str, *, smtputf8: bool | None = None) -> str:
    """The address with its domain IDNA-encoded ("a@xn--exmple-cua.com"); UnsendableAddress when it cannot be sent.

    `smtputf8` defaults to the app's MAIL_SMTPUTF8 (False outside an app context).
    """
    if smtputf8 is None:
        smtputf8 = smtputf8_allowed()
    try:
        checked = validate_email((text or "").strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise UnsendableAddress("email_invalid", field="email") from exc
    if checked.smtputf8 and not smtputf8:
        raise UnsendableAddress("email_not_sendable", field="email")
    return f"{checked.local_part}@{checked.ascii_domain}"


class SendableEmail:
    """WTForms validator: refuse an address mail could not be sent to, with sendable_address's message.

    An empty field passes (Optional or DataRequired decide about those).
    """

    def __call__(self, form, field) -> None:
        from wtforms.validators import ValidationError

        if field.data and field.data.strip():
            try:
                sendable_address(field.data)
            except UnsendableAddress as exc:
                raise ValidationError(exc.message) from exc
