"""What a destructive action will do, said before it is done: the shape every confirmation page shares.

A preview and its action are computed by one function, the action under its locks. The page carries
the preview's token; the action computes the token again and refuses (nothing done) when it differs,
so what the organizer confirmed is exactly what happens. A refusal the action would raise anyway (a
ticket type with registrations, a room in use) is in the preview too, so the page says it first.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from convene.errors import ConveneError


@dataclass
class Effect:
    """One consequence, e.g. key "registrations", text "3 registrations lose their delegation", and who."""

    key: str
    text: str
    names: list[str] = field(default_factory=list)


@dataclass
class Deletion:
    """Deleting one thing: what goes with it, or why it cannot go; `token` names exactly that."""

    kind: str  # "ticket type", "room"... for the page's title
    name: str
    effects: list[Effect]
    token: str
    done: str  # what the result message says once it is deleted
    blocked: ConveneError | None = None
    verb: str = "delete"  # "cancel" for an order, "deactivate" for a used code: the page's title and button

    @property
    def gerund(self) -> str:
        return {"cancel": "Cancelling", "deactivate": "Deactivating"}.get(self.verb, "Deleting")

    def check(self, expected: str | None) -> None:
        """Raise the refusal, or `<verb>_changed` when the confirmed token is not this one (None: no check)."""
        if self.blocked is not None:
            raise self.blocked
        if expected is not None and expected != self.token:
            raise ConveneError("cancel_changed" if self.verb == "cancel" else "delete_changed")


def digest(*parts) -> str:
    """A short token naming `parts` (ids, counts, names) for a confirmation form."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def plural(count: int, one: str, many: str | None = None) -> str:
    """'1 registration', '3 registrations' (or the given plural)."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
