"""Setting up a convening: its details, ticket types, questions and delegations.

Every write is one unit of work that locks the convening first (then a ticket type), like the
registration service, so a setting never changes halfway through someone's registration.

Rules that need no database (formats, the order of dates, time zones) are all checked before the
first one is raised: the error carries the full list in `details["problems"]`, so a form can show
every problem beside its own field at once.
"""
from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.languages import DEFAULT_LANGUAGE, INTERPRETATION_LANGUAGES, LANGUAGES
from convene.models import (
    Answer,
    Convening,
    Delegation,
    DiscountCode,
    Question,
    QuestionKind,
    Registration,
    TicketType,
)
from convene.services.db import lock, unit_of_work
from convene.services.previews import Deletion, Effect, digest, plural
from convene.text import delegation_key

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
REFERENCE_PREFIX_RE = re.compile(r"[A-Z0-9]{2,5}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
PRICE_RE = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
MAX_PRICE_CENTS = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL

CONVENING_FIELDS = (
    "name", "slug", "description", "city", "venue", "venue_address", "timezone", "starts_on", "ends_on",
    "registration_opens_at", "registration_closes_at", "currency", "capacity", "contact_email", "published",
    "reference_prefix", "waitlist_enabled", "allow_new_delegations",
    "invoice_enabled", "invoice_issuer", "invoice_instructions", "invoice_due_days",
    "languages", "default_language", "interpretation_languages",
)
TICKET_FIELDS = (
    "name", "description", "price_cents", "capacity", "sales_start_at", "sales_end_at", "hidden", "position",
    "early_price_cents", "early_until_at",
)
MAX_INVOICE_DUE_DAYS = 365
QUESTION_FIELDS = ("label", "help_text", "kind", "required", "choices")
DELEGATION_FIELDS = ("name", "contact_name", "contact_email")

def problem(code: str, field: str | None = None, **format_values) -> ConveneError:
    """A ConveneError for `code`, its message filled in from the central table."""
    return ConveneError(code, field=field, **format_values)


def _raise_problems(problems: list[ConveneError]) -> None:
    """Raise the first problem, carrying all of them so a form can show each beside its field."""
    if problems:
        first = problems[0]
        first.details["problems"] = problems
        raise first


# -- pure helpers --------------------------------------------------------------------------------

@functools.cache
def _zones_by_folded_name() -> dict[str, str]:
    # "localtime" names whatever the server uses and "Factory" is a placeholder: neither is a place.
    return {name.casefold(): name for name in zoneinfo.available_timezones() - {"localtime", "Factory"}}


def canonical_zone(name: str | None) -> str | None:
    """The IANA name as spelled in the database ('europe/berlin' → 'Europe/Berlin'), or None if unknown."""
    return _zones_by_folded_name().get((name or "").strip().casefold())


def local_to_utc(value: datetime | None, tz: ZoneInfo, field: str | None = None) -> datetime | None:
    """An instant from a wall-clock time in `tz` (aware values pass through).

    A time the clocks skip when they spring forward does not exist and is refused; a time that
    happens twice when they fall back is read as the first of the two.
    """
    if value is None:
        return None
    if value.tzinfo is not None:
        return value.astimezone(timezone.utc)
    aware = value.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(timezone.utc)
    if instant.astimezone(tz).replace(tzinfo=None) != value.replace(fold=0):
        raise problem("local_time_missing", field, when=f"{value:%d %b %Y %H:%M}", zone=tz.key)
    return instant


def utc_to_local(instant: datetime | None, tz: ZoneInfo) -> datetime | None:
    """The wall-clock time (naive) an instant shows in `tz`: what a datetime-local input displays."""
    return instant.astimezone(tz).replace(tzinfo=None) if instant else None


def price_to_cents(value: str | Decimal | int | None) -> int:
    """Cents from a price typed as a decimal ('150', '149.99'); empty means free."""
    text = str(value if value is not None else "").strip()
    if text == "":
        return 0
    if not PRICE_RE.fullmatch(text):
        raise problem("price_invalid", "price_cents")
    amount = Decimal(text)
    if amount < 0:
        raise problem("price_negative", "price_cents")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise problem("price_too_precise", "price_cents")
    if cents > MAX_PRICE_CENTS:
        raise problem("price_too_large", "price_cents")
    return int(cents)


def cents_to_price(cents: int | None) -> str:
    """The inverse of price_to_cents, for an input box: 14999 → '149.99'."""
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}"


def parse_choices(value: str | Iterable[str] | None) -> list[str]:
    """Choices from a textarea (one per line) or a list: trimmed, blank lines dropped."""
    if value is None:
        return []
    lines = value.splitlines() if isinstance(value, str) else list(value)
    return [line.strip() for line in lines if line and line.strip()]


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _lines(value) -> str:
    """Multi-line text with each line trimmed, Windows line ends made plain, blank lines at either end dropped."""
    return "\n".join(line.rstrip() for line in _text(value).splitlines()).strip()


def _check_capacity(value, field: str, problems: list[ConveneError]) -> int | None:
    if value in (None, ""):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        problems.append(problem("capacity_invalid", field))
        return None
    if value < 0:
        problems.append(problem("capacity_negative", field))
    return value


def _more_room(old: int | None, new: int | None) -> bool:
    return old is not None and (new is None or new > old)


def _codes(value) -> list[str]:
    return [code for code in (value or []) if isinstance(code, str)] if isinstance(value, (list, tuple)) else []


def _clean_languages(clean: dict, problems: list[ConveneError]) -> None:
    """Enabled languages in a fixed order with the default always among them; interpretation as offered."""
    default = clean.get("default_language") or DEFAULT_LANGUAGE
    if default not in LANGUAGES:
        problems.append(problem("default_language_unknown", "default_language"))
        default = DEFAULT_LANGUAGE
    enabled = set(_codes(clean.get("languages", [default])))
    if enabled - set(LANGUAGES):
        problems.append(problem("language_unknown", "languages"))
    clean["default_language"] = default
    clean["languages"] = [code for code in LANGUAGES if code in enabled or code == default]
    asked = _codes(clean.get("interpretation_languages"))
    if set(asked) - set(INTERPRETATION_LANGUAGES):
        problems.append(problem("interpretation_language_unknown", "interpretation_languages"))
    clean["interpretation_languages"] = [code for code in INTERPRETATION_LANGUAGES if code in asked]


def clean_convening(data: dict) -> dict:
    """The convening's fields, normalized; raises with every problem found (no database needed)."""
    problems: list[ConveneError] = []
    clean = {key: data[key] for key in CONVENING_FIELDS if key in data}
    for key in ("name", "slug", "description", "city", "venue", "venue_address", "timezone", "contact_email"):
        clean[key] = _text(clean.get(key))
    clean["currency"] = _text(clean.get("currency") or "USD").upper()
    clean["reference_prefix"] = _text(clean.get("reference_prefix") or "REG").upper()
    clean["published"] = bool(clean.get("published"))
    clean["waitlist_enabled"] = bool(clean.get("waitlist_enabled", True))
    clean["allow_new_delegations"] = bool(clean.get("allow_new_delegations"))
    clean["invoice_enabled"] = bool(clean.get("invoice_enabled"))
    clean["invoice_issuer"] = _lines(clean.get("invoice_issuer"))
    clean["invoice_instructions"] = _lines(clean.get("invoice_instructions"))

    if not clean["name"]:
        problems.append(problem("name_required", "name"))
    if not SLUG_RE.fullmatch(clean["slug"]) or len(clean["slug"]) > 64:
        problems.append(problem("slug_invalid", "slug"))
    zone_name = canonical_zone(clean["timezone"])
    tz = ZoneInfo(zone_name) if zone_name else None
    if tz is None:
        problems.append(problem("timezone_invalid", "timezone"))
    else:
        clean["timezone"] = zone_name
    starts_on, ends_on = clean.get("starts_on"), clean.get("ends_on")
    if not isinstance(starts_on, date) or not isinstance(ends_on, date):
        raise problem("dates_missing", "starts_on")
    if ends_on < starts_on:
        problems.append(problem("dates_out_of_order", "ends_on"))
    if not CURRENCY_RE.fullmatch(clean["currency"]):
        problems.append(problem("currency_invalid", "currency"))
    if not REFERENCE_PREFIX_RE.fullmatch(clean["reference_prefix"]):
        problems.append(problem("reference_prefix_invalid", "reference_prefix"))
    clean["capacity"] = _check_capacity(clean.get("capacity"), "capacity", problems)
    _clean_languages(clean, problems)
    due_days = clean.get("invoice_due_days", 30)
    if isinstance(due_days, bool) or not isinstance(due_days, int) or not 0 <= due_days <= MAX_INVOICE_DUE_DAYS:
        problems.append(problem("invoice_due_days_invalid", "invoice_due_days"))
    clean["invoice_due_days"] = due_days

    if tz is not None:
        for key in ("registration_opens_at", "registration_closes_at"):
            try:
                clean[key] = local_to_utc(clean.get(key), tz, field=key)
            except ConveneError as error:
                problems.append(error)
                clean[key] = None
        opens, closes = clean["registration_opens_at"], clean["registration_closes_at"]
        if opens and closes and closes <= opens:
            problems.append(problem("window_out_of_order", "registration_closes_at"))
    _raise_problems(problems)
    return clean


def clean_ticket_type(data: dict, tz: ZoneInfo) -> dict:
    """A ticket type's fields, normalized, its sale window read in the convening's zone."""
    problems: list[ConveneError] = []
    clean = {key: data[key] for key in TICKET_FIELDS if key in data}
    clean["name"] = _text(clean.get("name"))
    clean["description"] = _text(clean.get("description"))
    clean["hidden"] = bool(clean.get("hidden"))
    if not clean["name"]:
        problems.append(problem("name_required", "name"))
    price = clean.get("price_cents") or 0
    if not isinstance(price, int) or price < 0:
        problems.append(problem("price_negative", "price_cents"))
    elif price > MAX_PRICE_CENTS:
        problems.append(problem("price_too_large", "price_cents"))
    clean["price_cents"] = price
    clean["capacity"] = _check_capacity(clean.get("capacity"), "capacity", problems)
    for key in ("sales_start_at", "sales_end_at"):
        try:
            clean[key] = local_to_utc(clean.get(key), tz, field=key)
        except ConveneError as error:
            problems.append(error)
            clean[key] = None
    if clean["sales_start_at"] and clean["sales_end_at"] and clean["sales_end_at"] <= clean["sales_start_at"]:
        problems.append(problem("sales_out_of_order", "sales_end_at"))
    _clean_early_bird(clean, tz, problems)
    _raise_problems(problems)
    return clean


def _clean_early_bird(clean: dict, tz: ZoneInfo, problems: list[ConveneError]) -> None:
    """An early-bird price must undercut the regular one and say when it ends; without one, no end date."""
    early = clean.get("early_price_cents")
    if early is None:
        clean["early_price_cents"] = clean["early_until_at"] = None
        return
    regular = clean["price_cents"] if isinstance(clean["price_cents"], int) else 0
    if not isinstance(early, int) or isinstance(early, bool) or early < 0 or early >= regular:
        problems.append(problem("early_price_invalid", "early_price_cents"))
    clean["early_price_cents"] = early
    try:
        clean["early_until_at"] = local_to_utc(clean.get("early_until_at"), tz, field="early_until_at")
    except ConveneError as error:
        problems.append(error)
        clean["early_until_at"] = None
        return
    if clean["early_until_at"] is None:
        problems.append(problem("early_until_missing", "early_until_at"))


def clean_question(data: dict) -> dict:
    """A question's fields, normalized; choices kept only for the kinds that have them."""
    problems: list[ConveneError] = []
    clean = {key: data[key] for key in QUESTION_FIELDS if key in data}
    clean["label"] = _text(clean.get("label"))
    clean["help_text"] = _text(clean.get("help_text"))
    clean["required"] = bool(clean.get("required"))
    if not clean["label"]:
        problems.append(problem("label_required", "label"))
    try:
        kind = QuestionKind(clean.get("kind") or QuestionKind.SHORT_TEXT)
    except ValueError:
        problems.append(problem("question_kind_invalid", "kind"))
        kind = QuestionKind.SHORT_TEXT
    clean["kind"] = kind.value
    choices = parse_choices(clean.get("choices"))
    if kind.has_choices:
        seen: set[str] = set()
        for choice in choices:
            if choice.casefold() in seen:
                problems.append(problem("choices_duplicate", "choices", choice=choice))
                break
            seen.add(choice.casefold())
        else:
            if len(choices) < 2:
                problems.append(problem("choices_needed", "choices"))
        clean["choices"] = choices
    else:
        clean["choices"] = []
    _raise_problems(problems)
    return clean


# -- convenings ------------------------------------------------------------------------------------

def _locked_convening(convening_id: int) -> Convening:
    rows = lock(Convening, convening_id)
    if not rows:
        raise ConveneError("convening_not_found", status_code=404)
    return rows[0]


def _check_slug_free(slug: str, convening_id: int | None = None) -> None:
    query = sa.select(Convening.id).where(Convening.slug == slug)
    if convening_id is not None:
        query = query.where(Convening.id != convening_id)
    if db.session.execute(query).first():
        raise ConveneError("slug_taken", field="slug")


def create_convening(data: dict) -> Convening:
    """Make a convening from its settings; the registration window may be given in local time."""
    clean = clean_convening(data)
    try:
        with unit_of_work():
            _check_slug_free(clean["slug"])
            convening = Convening(**clean)
            db.session.add(convening)
            db.session.flush()
            from convene.services.checkin import add_main_list

            add_main_list(convening.id)
    except IntegrityError:  # two organizers took the same slug at the same moment
        raise ConveneError("slug_taken", field="slug") from None
    return convening


def update_convening(convening_id: int, data: dict) -> Convening:
    """Change a convening's settings (fields left out keep their value); more seats go to the waitlist."""
    try:
        with unit_of_work():
            convening = _locked_convening(convening_id)
            current = {key: getattr(convening, key) for key in CONVENING_FIELDS}
            clean = clean_convening({**current, **{k: v for k, v in data.items() if k in CONVENING_FIELDS}})
            if clean["slug"] != convening.slug:
                _check_slug_free(clean["slug"], convening.id)
            old_capacity = convening.capacity
            for key, value in clean.items():
                setattr(convening, key, value)
    except IntegrityError:
        raise ConveneError("slug_taken", field="slug") from None
    if _more_room(old_capacity, clean["capacity"]):
        from convene.services.registrations import offer_freed_seats

        offer_freed_seats(convening_id)
    return db.session.get(Convening, convening_id)


# -- ticket types ----------------------------------------------------------------------------------

def _next_position(model, convening_id: int) -> int:
    highest = db.session.execute(
        sa.select(sa.func.max(model.position)).where(model.convening_id == convening_id)
    ).scalar_one()
    return 0 if highest is None else highest + 1


def create_ticket_type(convening_id: int, data: dict) -> TicketType:
    """Add a ticket type; its sale window may be given in the convening's local time."""
    with unit_of_work():
        convening = _locked_convening(convening_id)
        clean = clean_ticket_type(data, convening.tz)
        if clean.get("position") is None:
            clean["position"] = _next_position(TicketType, convening.id)
        ticket = TicketType(convening_id=convening.id, **clean)
        db.session.add(ticket)
    return ticket


def _ticket(ticket_type_id: int) -> TicketType:
    ticket = db.session.get(TicketType, ticket_type_id)
    if ticket is None:
        raise NotFound("ticket_not_found")
    return ticket


def update_ticket_type(ticket_type_id: int, data: dict) -> TicketType:
    """Change a ticket type (fields left out keep their value); more seats go to the waitlist."""
    with unit_of_work():
        convening_id = _ticket(ticket_type_id).convening_id
        convening = _locked_convening(convening_id)
        [ticket] = lock(TicketType, ticket_type_id)
        current = {key: getattr(ticket, key) for key in TICKET_FIELDS}
        clean = clean_ticket_type({**current, **{k: v for k, v in data.items() if k in TICKET_FIELDS}}, convening.tz)
        if clean.get("position") is None:
            clean["position"] = ticket.position
        old_capacity = ticket.capacity
        for key, value in clean.items():
            setattr(ticket, key, value)
    if _more_room(old_capacity, clean["capacity"]):
        from convene.services.registrations import offer_freed_seats

        offer_freed_seats(convening_id)
    return db.session.get(TicketType, ticket_type_id)


def _ticket_deletion(ticket: TicketType) -> Deletion:
    used = db.session.scalar(sa.select(sa.func.count(Registration.id)).where(Registration.ticket_type_id == ticket.id))
    others = set(db.session.execute(sa.select(TicketType.id).where(
        TicketType.convening_id == ticket.convening_id, TicketType.id != ticket.id)).scalars())
    codes = [c for c in db.session.execute(sa.select(DiscountCode).where(
        DiscountCode.convening_id == ticket.convening_id).order_by(DiscountCode.code)).scalars()
        if ticket.id in (c.ticket_type_ids or [])]
    # A code's list keeps the deleted id: one that named only this ticket type then applies to none.
    only = [c.code for c in codes if not others & set(c.ticket_type_ids)]
    among = [c.code for c in codes if others & set(c.ticket_type_ids)]
    effects = []
    if used:
        effects.append(Effect("registrations", f"{plural(used, 'registration')} (cancelled ones count too) "
                              f"{'uses' if used == 1 else 'use'} it"))
    if only:
        effects.append(Effect("codes-only", f"{plural(len(only), 'code')} {'applies' if len(only) == 1 else 'apply'} "
                              "only to this ticket type and then to none", only))
    if among:
        one = len(among) == 1
        effects.append(Effect("codes", f"{plural(len(among), 'code')} also {'applies' if one else 'apply'} to other "
                              f"ticket types and {'keeps' if one else 'keep'} doing so", among))
    return Deletion(kind="ticket type", name=ticket.name, effects=effects,
                    token=digest("ticket", ticket.id, used, [c.id for c in codes]),
                    done=f"Ticket type {ticket.name} is deleted.",
                    blocked=ConveneError("ticket_has_registrations") if used else None)


def ticket_type_deletion(ticket_type_id: int) -> Deletion:
    """What deleting a ticket type would do now, or why it cannot be deleted, for its confirmation page."""
    return _ticket_deletion(_ticket(ticket_type_id))


def delete_ticket_type(ticket_type_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a ticket type nobody has registered with (cancelled registrations count too).

    With `expected` (the token of the confirmed preview), refuse if what it affects changed since.
    """
    with unit_of_work():
        convening_id = _ticket(ticket_type_id).convening_id
        _locked_convening(convening_id)
        [ticket] = lock(TicketType, ticket_type_id)
        deletion = _ticket_deletion(ticket)
        deletion.check(expected)
        db.session.delete(ticket)
    return deletion


# -- questions -------------------------------------------------------------------------------------

def _question(question_id: int, convening_id: int | None = None) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or (convening_id is not None and question.convening_id != convening_id):
        raise NotFound("question_not_found")
    return question


def save_question(convening_id: int, data: dict, question_id: int | None = None) -> Question:
    """Add a question at the end of the form, or change one; its kind is fixed once answered."""
    clean = clean_question(data)
    with unit_of_work():
        convening = _locked_convening(convening_id)
        if question_id is None:
            question = Question(convening_id=convening.id, position=_next_position(Question, convening.id))
            db.session.add(question)
        else:
            question = _question(question_id, convening.id)
            if clean["kind"] != question.kind and _has_answers(question.id):
                raise problem("question_kind_locked", "kind")
        for key, value in clean.items():
            setattr(question, key, value)
    return question


def _has_answers(question_id: int) -> bool:
    query = sa.select(Answer.id).where(Answer.question_id == question_id).limit(1)
    return db.session.execute(query).first() is not None


def _question_deletion(question: Question) -> Deletion:
    answered = db.session.execute(
        sa.select(Answer.id, Registration.given_name, Registration.family_name)
        .join(Registration, Registration.id == Answer.registration_id)
        .where(Answer.question_id == question.id).order_by(Registration.sort_key, Registration.id)
    ).all()
    effects = [Effect("answers", f"{plural(len(answered), 'answer')} to it {'is' if len(answered) == 1 else 'are'} "
                      "deleted with it", [f"{given} {family}" for _, given, family in answered])] if answered else []
    return Deletion(kind="question", name=question.label, effects=effects,
                    token=digest("question", question.id, sorted(a.id for a in answered)),
                    done=f"The question and {plural(len(answered), 'answer')} to it are deleted.")


def question_deletion(question_id: int) -> Deletion:
    """What deleting a question would delete now (its answers, by whom), for its confirmation page."""
    return _question_deletion(_question(question_id))


def delete_question(question_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a question and every answer given to it; with `expected`, refuse if the answers changed since."""
    with unit_of_work():
        question = _question(question_id)
        _locked_convening(question.convening_id)
        deletion = _question_deletion(question)
        deletion.check(expected)
        db.session.delete(question)
    return deletion


def move_question(question_id: int, direction: str) -> None:
    """Move a question one place up or down the form (nothing happens at either end)."""
    if direction not in ("up", "down"):
        raise problem("bad_direction")
    with unit_of_work():
        question = _question(question_id)
        _locked_convening(question.convening_id)
        ordered = db.session.execute(
            sa.select(Question).where(Question.convening_id == question.convening_id)
            .order_by(Question.position, Question.id)
        ).scalars().all()
        index = ordered.index(question)
        other = index - 1 if direction == "up" else index + 1
        if 0 <= other < len(ordered):
            ordered[index], ordered[other] = ordered[other], ordered[index]
        # Renumber every question so equal positions from older data cannot make the swap a no-op.
        for position, item in enumerate(ordered):
            item.position = position


# -- delegations -----------------------------------------------------------------------------------

def save_delegation(convening_id: int, data: dict, delegation_id: int | None = None) -> Delegation:
    """Add or change a delegation; names are unique within a convening, whatever their case and punctuation."""
    name = _text(data.get("name"))
    if not name:
        raise problem("name_required", "name")
    try:
        with unit_of_work():
            convening = _locked_convening(convening_id)
            if delegation_id is None:
                delegation = Delegation(convening_id=convening.id)
            else:
                delegation = db.session.get(Delegation, delegation_id)
                if delegation is None or delegation.convening_id != convening.id:
                    raise NotFound("delegation_not_found")
            # "Dayton OH" beside "Dayton, OH" is the drift the group form and the import also refuse.
            key = delegation_key(name)
            others = db.session.execute(sa.select(Delegation.id, Delegation.name).where(
                Delegation.convening_id == convening.id, Delegation.id != (delegation.id or 0))).all()
            if any(delegation_key(other) == key for _, other in others):
                raise problem("delegation_exists", "name")
            db.session.add(delegation)
            delegation.name = name
            delegation.contact_name = _text(data.get("contact_name"))
            delegation.contact_email = _text(data.get("contact_email")).lower()
    except IntegrityError:
        raise problem("delegation_exists", "name") from None
    return delegation


def _delegation_deletion(delegation: Delegation) -> Deletion:
    from convene.services.merges import delegation_references

    people = db.session.execute(
        sa.select(Registration.id, Registration.given_name, Registration.family_name)
        .where(Registration.delegation_id == delegation.id).order_by(Registration.sort_key, Registration.id)
    ).all()
    # Every other row pointing at it (orders, and whatever points at delegations later) loses it too.
    references = delegation_references(delegation.id)
    effects = []
    if people:
        effects.append(Effect("registrations", f"{plural(len(people), 'registration')} "
                              f"{'loses its' if len(people) == 1 else 'lose their'} delegation and "
                              f"{'stays' if len(people) == 1 else 'stay'} registered",
                              [f"{given} {family}" for _, given, family in people]))
    orders = references.get("orders", 0)
    if orders:
        effects.append(Effect("orders", f"{plural(orders, 'order')} {'loses its' if orders == 1 else 'lose their'} "
                              "delegation (receipts and invoices stay as issued)"))
    others = {table: n for table, n in references.items() if table not in ("registration", "orders")}
    if others:
        effects.append(Effect("other", f"{plural(sum(others.values()), 'other record')} "
                              f"({', '.join(sorted(others))}) {'loses' if sum(others.values()) == 1 else 'lose'} "
                              "the delegation"))
    return Deletion(kind="delegation", name=delegation.name, effects=effects,
                    token=digest("delegation", delegation.id, [p.id for p in people], sorted(references.items())),
                    done=f"Delegation {delegation.name} is deleted"
                    + (f"; {plural(len(people), 'registration')} no longer {'has' if len(people) == 1 else 'have'} "
                       "a delegation and stay registered." if people else "."))


def _delegation(delegation_id: int) -> Delegation:
    delegation = db.session.get(Delegation, delegation_id)
    if delegation is None:
        raise NotFound("delegation_not_found")
    return delegation


def delegation_deletion(delegation_id: int) -> Deletion:
    """Who deleting a delegation would leave without one now, for its confirmation page."""
    return _delegation_deletion(_delegation(delegation_id))


def delete_delegation(delegation_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a delegation; its registrations stay, without a delegation.

    With `expected` (the token of the confirmed preview), refuse if who is in it changed since.
    """
    with unit_of_work():
        delegation = _delegation(delegation_id)
        _locked_convening(delegation.convening_id)
        deletion = _delegation_deletion(delegation)
        deletion.check(expected)
        db.session.execute(
            sa.update(Registration).where(Registration.delegation_id == delegation.id).values(delegation_id=None)
        )
        db.session.delete(delegation)
    return deletion
