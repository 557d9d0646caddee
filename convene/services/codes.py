"""Discount and access codes: creating, changing and deleting them (using them is in services/payments.py).

Each write is one unit of work that locks the convening first, then the code (the lock order of
the payments service), so a code never changes halfway through a booking that counts its uses.
Every problem a form can show beside its field is collected before the first is raised.
"""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.models import CodeKind, Convening, DiscountCode, Order, Registration, TicketType
from convene.services.convenings import MAX_PRICE_CENTS, local_to_utc, problem
from convene.services.db import lock, unit_of_work
from convene.services.previews import Deletion, Effect, digest, plural

CODE_RE = re.compile(r"[A-Z0-9_-]{3,40}")
CODE_FIELDS = (
    "code", "kind", "percent", "amount_cents", "max_uses", "valid_from", "valid_until", "ticket_type_ids",
    "active", "note",
)
MAX_USES = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL


def normalize_code_text(text: str | None) -> str:
    """Codes are stored upper-case, so people may type them in any case."""
    return (text or "").strip().upper()


def _int_or_none(value) -> int | None | str:
    """An int, None for empty, or "bad" for anything else (a bool is not a number here)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return "bad"
    try:
        return int(value)
    except (TypeError, ValueError):
        return "bad"


def clean_code(data: dict, tz: ZoneInfo, tickets: dict[int, TicketType]) -> dict:
    """A code's fields, normalized, its validity window read in the convening's zone; raises with every problem."""
    problems: list[ConveneError] = []
    clean: dict = {}
    clean["code"] = normalize_code_text(data.get("code"))
    if not CODE_RE.fullmatch(clean["code"]):
        problems.append(problem("code_text_invalid", "code"))
    try:
        kind = CodeKind(data.get("kind") or "")
    except ValueError:
        problems.append(problem("code_kind_invalid", "kind"))
        kind = None
    clean["kind"] = kind.value if kind else None

    percent = _int_or_none(data.get("percent"))
    if kind == CodeKind.PERCENT and (percent in (None, "bad") or not 1 <= percent <= 100):
        problems.append(problem("percent_invalid", "percent"))
    clean["percent"] = percent if kind == CodeKind.PERCENT else 0

    amount = _int_or_none(data.get("amount_cents"))
    if kind == CodeKind.FIXED:
        if amount in (None, "bad") or amount <= 0:
            problems.append(problem("amount_invalid", "amount_cents"))
        elif amount > MAX_PRICE_CENTS:
            problems.append(problem("amount_too_large", "amount_cents"))
    clean["amount_cents"] = amount if kind == CodeKind.FIXED else 0

    max_uses = _int_or_none(data.get("max_uses"))
    if max_uses == "bad" or (max_uses is not None and not 1 <= max_uses <= MAX_USES):
        problems.append(problem("max_uses_invalid", "max_uses"))
    clean["max_uses"] = max_uses

    for key in ("valid_from", "valid_until"):
        try:
            clean[key] = local_to_utc(data.get(key), tz, field=key)
        except ConveneError as error:
            problems.append(error)
            clean[key] = None
    if clean["valid_from"] and clean["valid_until"] and clean["valid_until"] <= clean["valid_from"]:
        problems.append(problem("code_window_out_of_order", "valid_until"))

    ticket_ids: set[int] = set()
    unknown = False
    for value in data.get("ticket_type_ids") or []:
        ticket_id = _int_or_none(value)
        if ticket_id in (None, "bad") or ticket_id not in tickets:
            unknown = True
        else:
            ticket_ids.add(ticket_id)
    clean["ticket_type_ids"] = sorted(ticket_ids)
    if unknown:
        problems.append(problem("code_ticket_unknown", "ticket_type_ids"))
    # An access code exists to unlock hidden ticket types; one naming none would do nothing at all.
    elif kind == CodeKind.ACCESS and not any(tickets[t].hidden for t in ticket_ids):
        problems.append(problem("access_needs_tickets", "ticket_type_ids"))

    clean["active"] = bool(data.get("active"))
    clean["note"] = ("" if data.get("note") is None else str(data["note"]).strip())[:200]
    _raise_problems(problems)
    return clean


def _raise_problems(problems: list[ConveneError]) -> None:
    """Raise the first problem, carrying all of them so a form can show each beside its field."""
    if problems:
        problems[0].details["problems"] = problems
        raise problems[0]


def _locked_convening(convening_id: int) -> Convening:
    rows = lock(Convening, convening_id)
    if not rows:
        raise ConveneError("convening_not_found", status_code=404)
    return rows[0]


def _tickets_of(convening_id: int) -> dict[int, TicketType]:
    rows = db.session.execute(sa.select(TicketType).where(TicketType.convening_id == convening_id)).scalars()
    return {ticket.id: ticket for ticket in rows}


def _check_code_free(convening_id: int, text: str, code_id: int | None = None) -> None:
    query = sa.select(DiscountCode.id).where(DiscountCode.convening_id == convening_id,
                                             sa.func.upper(DiscountCode.code) == text)
    if code_id is not None:
        query = query.where(DiscountCode.id != code_id)
    if db.session.execute(query).first():
        raise problem("code_exists", "code")


def _code(code_id: int, convening_id: int | None = None) -> DiscountCode:
    code = db.session.get(DiscountCode, code_id)
    if code is None or (convening_id is not None and code.convening_id != convening_id):
        raise NotFound("code_not_found")
    return code


def create_code(convening_id: int, data: dict) -> DiscountCode:
    """Add a discount or access code; its text is unique within the convening, whatever its case."""
    try:
        with unit_of_work():
            convening = _locked_convening(convening_id)
            clean = clean_code(data, convening.tz, _tickets_of(convening.id))
            _check_code_free(convening.id, clean["code"])
            code = DiscountCode(convening_id=convening.id, **clean)
            db.session.add(code)
    except IntegrityError:  # two organizers added the same code at the same moment
        raise problem("code_exists", "code") from None
    return code


def update_code(code_id: int, data: dict) -> DiscountCode:
    """Change a code; seats already booked with it keep the price they were booked at."""
    try:
        with unit_of_work():
            convening = _locked_convening(_code(code_id).convening_id)
            [code] = lock(DiscountCode, code_id)
            clean = clean_code(data, convening.tz, _tickets_of(convening.id))
            _check_code_free(convening.id, clean["code"], code.id)
            for key, value in clean.items():
                setattr(code, key, value)
    except IntegrityError:
        raise problem("code_exists", "code") from None
    return db.session.get(DiscountCode, code_id)


def code_ever_used(code_id: int) -> bool:
    """Whether any registration or order (even a cancelled one) was booked with the code."""
    registration = sa.select(Registration.id).where(Registration.discount_code_id == code_id).limit(1)
    order = sa.select(Order.id).where(Order.discount_code_id == code_id).limit(1)
    return bool(db.session.execute(registration).first() or db.session.execute(order).first())


def _code_deletion(code: DiscountCode) -> Deletion:
    seats = db.session.scalar(sa.select(sa.func.count(Registration.id)).where(Registration.discount_code_id == code.id))
    orders = db.session.scalar(sa.select(sa.func.count(Order.id)).where(Order.discount_code_id == code.id))
    if not (seats or orders):
        return Deletion(kind="code", name=code.code, effects=[], token=digest("code", code.id, 0, 0),
                        done=f"Code {code.code} is deleted.")
    # A used code stays for the history of what was paid; deactivated, nobody can book with it again.
    effects = [Effect("used", f"It was used for {plural(seats, 'seat')} in {plural(orders, 'order')} (cancelled "
                      "ones count too), so it is deactivated instead of deleted: those stay as they are and "
                      "nobody can book with it any more")]
    return Deletion(kind="code", name=code.code, effects=effects, verb="deactivate",
                    token=digest("code", code.id, seats, orders),
                    done=f"Code {code.code} was used, so it is deactivated instead of deleted.")


def code_deletion(code_id: int) -> Deletion:
    """What deleting a code would do now (deactivate it, when anyone booked with it), for its confirmation page."""
    return _code_deletion(_code(code_id))


def delete_code(code_id: int, *, expected: str | None = None) -> str:
    """Delete a code nobody booked with ("deleted"); a used one is deactivated instead ("deactivated").

    With `expected` (the token of the confirmed preview), refuse if its uses changed since.
    """
    deletion = delete_code_as_previewed(code_id, expected=expected)
    return "deactivated" if deletion.verb == "deactivate" else "deleted"


def delete_code_as_previewed(code_id: int, *, expected: str | None = None) -> Deletion:
    """`delete_code`, answering the preview it carried out (its `done` says what happened)."""
    with unit_of_work():
        _locked_convening(_code(code_id).convening_id)
        [code] = lock(DiscountCode, code_id)
        deletion = _code_deletion(code)
        deletion.check(expected)
        if deletion.verb == "deactivate":
            code.active = False
        else:
            db.session.delete(code)
    return deletion
