"""sendable_address: the domain IDNA-encoded, SMTPUTF8 only when the server takes it, nothing else let through."""
from __future__ import annotations

import pytest

from convene.emails import LOCAL_PART_NOT_SENDABLE, UnsendableAddress, sendable_address
from convene.errors import ConveneError


@pytest.mark.parametrize(("typed", "sendable"), [
    ("amina@example.org", "amina@example.org"),
    ("  amina@example.org ", "amina@example.org"),
    ("USER@exämple.com", "USER@xn--exmple-cua.com"),
    ("user@EXÄMPLE.com", "user@xn--exmple-cua.com"),
    ("ana@münchen.de", "ana@xn--mnchen-3ya.de"),
    ("li@例え.jp", "li@xn--r8jz45g.jp"),
    ("user@xn--exmple-cua.com", "user@xn--exmple-cua.com"),
])
def test_the_domain_is_written_in_idna(typed, sendable):
    assert sendable_address(typed, smtputf8=False) == sendable


@pytest.mark.parametrize("typed", ["ÜSER@exämple.com", "josé@example.org", "用户@例子.广告"])
def test_a_non_ascii_local_part_is_refused_without_smtputf8(typed):
    with pytest.raises(ConveneError) as refused:
        sendable_address(typed, smtputf8=False)
    assert refused.value.message == ("This address has characters before the @ that mail servers may not "
                                     "deliver; use another address.") == LOCAL_PART_NOT_SENDABLE
    assert refused.value.code == "email_not_sendable" and refused.value.field == "email"


def test_a_non_ascii_local_part_is_kept_with_smtputf8():
    assert sendable_address("ÜSER@exämple.com", smtputf8=True) == "ÜSER@xn--exmple-cua.com"


@pytest.mark.parametrize("typed", ["", "amina", "amina@", "@example.org", "a b@example.org", "amina@example",
                                   "Amina <amina@example.org>", "amina@example.org\r\nBcc: x@example.org",
                                   "amina@-bad-.org", "amina@x.invalid"])
def test_what_is_not_an_address_is_refused(typed):
    with pytest.raises(UnsendableAddress) as refused:
        sendable_address(typed, smtputf8=True)
    assert refused.value.message == "Enter an email address like name@example.org."


def test_the_app_setting_decides_smtputf8(app):
    with pytest.raises(UnsendableAddress):
        sendable_address("ÜSER@example.com")
    app.config["MAIL_SMTPUTF8"] = True
    assert sendable_address("ÜSER@example.com") == "ÜSER@example.com"


def test_outside_an_app_smtputf8_is_off():
    with pytest.raises(UnsendableAddress):
        sendable_address("ÜSER@example.com")


def test_the_form_validator_shows_the_message_next_to_the_field(app):
    from flask_wtf import FlaskForm
    from wtforms import StringField

    from convene.emails import SendableEmail

    class Form(FlaskForm):
        class Meta:
            csrf = False

        email = StringField("Email", [SendableEmail()])

    for typed, error in [("USER@exämple.com", None), ("", None),
                         ("ÜSER@exämple.com", LOCAL_PART_NOT_SENDABLE),
                         ("nope", "Enter an email address like name@example.org.")]:
        with app.test_request_context(method="POST", data={"email": typed}):
            form = Form()
            assert form.validate() is (error is None)
            assert form.email.errors == ([error] if error else [])
