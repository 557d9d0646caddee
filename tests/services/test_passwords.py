"""Resetting a forgotten password against the real database and a real SMTP server."""
from __future__ import annotations

import time

import pytest

from convene import jobs
from convene.errors import ConveneError
from convene.extensions import db
from convene.models import User
from convene.services import passwords
from convene.services.users import authenticate, change_password
from tests.accounts import RESET_LINK, plain, tokens_sent
from tests.factories import make_user
from tests.services.test_mail import smtp  # noqa: F401  (the SMTP server fixture)


def _reset_and_wait(email: str, **kwargs) -> None:
    job_id = passwords.request_password_reset(email, **kwargs)
    if job_id is not None:
        assert jobs.wait(job_id, timeout=30) == "done"


def test_a_reset_link_is_emailed_only_to_an_active_account(app, smtp):
    make_user("active@example.org", role="viewer")
    gone = make_user("gone@example.org", role="viewer")
    gone.active = False
    db.session.commit()
    for email in ("nobody@example.org", "gone@example.org", " Active@Example.org "):
        _reset_and_wait(email)
    assert [m["To"] for m in smtp.messages] == ["active@example.org"]
    [token] = tokens_sent(smtp, "active@example.org", RESET_LINK)
    assert passwords.check_reset_link(token).email == "active@example.org"
    assert "2 hours" in plain(smtp.messages[0])


def test_a_reset_link_sets_the_password_once_and_ends_every_session(app, smtp):
    user = make_user("r@example.org", role="viewer")
    version = user.session_version
    _reset_and_wait("r@example.org")
    [token] = tokens_sent(smtp, "r@example.org", RESET_LINK)
    passwords.reset_password(token, "brand-new-password")
    db.session.rollback()
    user = db.session.get(User, user.id)
    assert user.session_version == version + 1 and user.check_password("brand-new-password")
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(token, "yet-another-password")
    assert refused.value.code == "reset_link_used"
    assert db.session.get(User, user.id).check_password("brand-new-password")


def test_a_reset_link_dies_once_the_password_changes_another_way(app, smtp):
    make_user("c@example.org", role="viewer")
    _reset_and_wait("c@example.org")
    [token] = tokens_sent(smtp, "c@example.org", RESET_LINK)
    change_password("c@example.org", "changed-by-hand", current_password="correct-horse-battery")
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(token, "from-the-old-link")
    assert refused.value.code == "reset_link_used"
    assert authenticate("c@example.org", "changed-by-hand") is not None


def test_an_expired_tampered_or_weak_reset_is_refused_and_changes_nothing(app, smtp):
    user = make_user("t@example.org", role="viewer")
    _reset_and_wait("t@example.org")
    [token] = tokens_sent(smtp, "t@example.org", RESET_LINK)
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(token, "short")
    assert refused.value.code == "weak_password" and refused.value.field == "new_password"
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(token[:-2] + ("xx" if not token.endswith("xx") else "yy"), "long-enough-pw")
    assert refused.value.code == "reset_link_invalid"
    forged = passwords.make_token("manage", {"u": user.id, "v": user.session_version})  # signed for another use
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(forged, "long-enough-pw")
    assert refused.value.code == "reset_link_invalid"
    app.config["PASSWORD_RESET_MAX_AGE_MINUTES"] = 0
    time.sleep(1.1)
    with pytest.raises(ConveneError) as refused:
        passwords.reset_password(token, "long-enough-pw")
    assert refused.value.code == "reset_link_expired"
    db.session.rollback()
    user = db.session.get(User, user.id)
    assert user.check_password("correct-horse-battery") and user.session_version == 0


def test_reset_emails_to_one_address_stop_at_the_hourly_cap(app, smtp):
    make_user("cap@example.org", role="viewer")
    for _ in range(5):
        _reset_and_wait("cap@example.org", hourly_cap=3)
    assert len(tokens_sent(smtp, "cap@example.org", RESET_LINK)) == 3


def test_a_known_address_is_answered_as_fast_as_an_unknown_one_even_with_a_slow_mail_server(app, smtp):
    make_user("slow@example.org", role="viewer")
    smtp.on_data = lambda outbox_id: time.sleep(2)

    def seconds(email):
        start = time.perf_counter()
        job_id = passwords.request_password_reset(email)
        return time.perf_counter() - start, job_id

    known, job_id = seconds("slow@example.org")
    unknown, none = seconds("nobody@example.org")
    assert none is None and known < 1.0 and unknown < 1.0, (known, unknown)
    assert jobs.wait(job_id, timeout=30) == "done"  # sent by the delivery job, not the request
    assert len(tokens_sent(smtp, "slow@example.org", RESET_LINK)) == 1
