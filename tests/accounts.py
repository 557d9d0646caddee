"""Helpers for tests of accounts and teams: links read from the emails sent, whose session a browser holds,
hostile values posted into forms."""
from __future__ import annotations

import re
import time

PASSWORD = "correct-horse-battery"  # what tests.factories.make_user gives every account
INVITE_LINK = re.compile(r"https?://[^\s\"<]+(/admin/invitations/([A-Za-z0-9_\-]+))")
RESET_LINK = re.compile(r"https?://[^\s\"<]+(/admin/password/reset/([A-Za-z0-9_\-.]+))")


def plain(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def tokens_sent(sink, address: str, pattern: re.Pattern = INVITE_LINK) -> list[str]:
    """The tokens of the links an SMTP sink (tests/services/test_mail.py) received for `address`, oldest first;
    each message's HTML part carries the same link."""
    found = []
    for message in sink.messages:
        if message["To"] == address:
            [(_, token)] = set(pattern.findall(plain(message)))
            assert token in html(message)
            found.append(token)
    return found


def emailed_path(outbox, address: str, pattern: re.Pattern = INVITE_LINK, *, wait: float = 0) -> str:
    """The path of the one link emailed to `address` in the outbox files (waiting up to `wait` seconds for a
    background sender)."""
    deadline = time.monotonic() + wait
    while not outbox.to(address) and time.monotonic() < deadline:
        time.sleep(0.05)
    [message] = outbox.to(address)
    [(path, _)] = set(pattern.findall(outbox.text(message)))
    return path


def signed_in_as(client) -> str | None:
    """Whose session the browser holds, read from a page every signed-in account may open."""
    response = client.get("/admin/account/password")
    if response.status_code != 200:
        return None
    found = re.search(r'<span class="muted">([^<\s]+@[^<\s]+)', response.text)
    return found.group(1) if found else None


def post_hostile_values(pages) -> None:
    """Post each value of the hostile-input walker into each field of each (client, path, fields, valid data):
    never a server error, and a refusal shows its message."""
    from tests.web.test_hostile_input import HOSTILE

    for value in HOSTILE:
        for client, path, fields, valid in pages:
            for name in fields:
                response = client.post(path, data={**valid, name: value})
                assert response.status_code < 500, (path, name, value)
                if response.status_code == 400 and "\x00" not in value:  # NUL: the app refuses any such request
                    assert 'class="error"' in response.text or "error-summary" in response.text, (path, name, value)
