"""Receipts, invoices and credit notes as plain data, HTML and PDF (the template is templates/printing/receipt.html).

Nothing here touches Flask or the database: a service gathers the order into a MoneyDocument, and
this module only prints it. Amounts are printed exactly as given (subtotal, discount, total); only
the sums of payments and refunds, the net paid and the balance due are worked out here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from convene.i18n_marks import N_
from convene.printing.documents import DEFAULT_LANG, environment, translations, write_pdf
from convene.printing.fit import is_rtl

KINDS = ("receipt", "invoice", "credit_note")
TITLES = {"receipt": N_("Receipt"), "invoice": N_("Invoice"), "credit_note": N_("Credit note")}

# Symbols printed before the amount; any other currency prints as "1,234.50 CHF".
CURRENCY_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$"}

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass(frozen=True)
class DocumentLine:
    """One line of an order: a ticket or an add-on, with its per-unit price and discount."""

    description: str
    quantity: int
    unit_cents: int  # price per unit before discount
    discount_cents: int  # discount per unit (0 when none)
    total_cents: int  # quantity * (unit - discount)


@dataclass(frozen=True)
class Payment:
    """A payment received, or a refund paid back (amounts are positive either way)."""

    on: date
    description: str
    amount_cents: int


@dataclass(frozen=True)
class MoneyDocument:
    """Everything a receipt, an invoice or a credit note prints, already looked up and formatted where noted.

    A credit note gives its amounts as positive numbers (what is credited); it prints them negative.
    """

    kind: str  # "receipt", "invoice" or "credit_note"
    number: str
    issued_on: date
    currency: str
    issuer_name: str  # empty: the convening's name is printed instead
    issuer_details: str  # multi-line: legal name, address, tax id
    convening_name: str
    convening_dates: str  # already formatted, e.g. "3–5 June 2026"
    convening_venue: str
    order_reference: str
    bill_to_name: str
    bill_to_organization: str
    bill_to_email: str
    bill_to_address: str  # multi-line
    po_number: str
    lines: tuple[DocumentLine, ...]
    subtotal_cents: int
    discount_cents: int
    discount_label: str  # e.g. "Code MEMBER10 (10 %)"; empty when no discount
    total_cents: int
    payments: tuple[Payment, ...] = ()
    refunds: tuple[Payment, ...] = ()
    due_on: date | None = None  # invoices
    payment_instructions: str = ""  # invoices: multi-line bank details etc.
    attendees: tuple[tuple[str, str, str], ...] = ()  # (full name, registration reference, ticket name)
    credits: tuple[Payment, ...] = ()  # credit notes against the invoice (description names each)
    invoice_number: str = ""  # credit notes: the invoice credited
    voids_invoice: bool = False  # credit notes: nothing is left owed on the invoice


def format_amount(cents: int, currency: str, lang: str = DEFAULT_LANG) -> str:
    """An amount as finance reads it: "CA$1,234.50", "-$5.00", "1,234.50 CHF" (in English; Babel's in others)."""
    code = (currency or "").strip().upper()
    if lang != DEFAULT_LANG and code:
        from babel.numbers import format_currency

        return format_currency(cents / 100, code, locale=lang)
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    number = f"{whole:,}.{part:02d}"
    symbol = CURRENCY_SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {code}".rstrip()


def format_date(day: date, lang: str = DEFAULT_LANG) -> str:
    """A date as "3 June 2026", with the month named in the document's language."""
    if lang != DEFAULT_LANG:
        from babel.dates import format_date as babel_date

        return babel_date(day, "d MMMM y", locale=lang)
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def document_filename(doc: MoneyDocument) -> str:
    """A download name made of safe characters only, e.g. "invoice-TOR-2026-0007.pdf"."""
    number = re.sub(r"[^A-Za-z0-9._-]+", "-", doc.number, flags=re.ASCII)
    number = re.sub(r"\.{2,}", ".", number).strip(".-_")[:80].strip(".-_")
    return f"{_kind(doc).replace('_', '-')}-{number or 'document'}.pdf"


def money_document_html(doc: MoneyDocument, *, lang: str = DEFAULT_LANG) -> str:
    """One HTML document printing `doc` as a receipt, an invoice or a credit note on US Letter."""
    return environment(lang).get_template("receipt.html").render(doc=doc, v=_view(doc, lang), rtl=is_rtl, lang=lang)


def money_document_pdf(doc: MoneyDocument, *, lang: str = DEFAULT_LANG) -> bytes:
    """The receipt, invoice or credit note as a tagged PDF (PDF/UA-1); only files in static/ may be fetched."""
    return write_pdf(money_document_html(doc, lang=lang), tagged=True)


def _kind(doc: MoneyDocument) -> str:
    if doc.kind not in KINDS:
        raise ValueError(f"a money document is a receipt, an invoice or a credit note, not {doc.kind!r}")
    return doc.kind


def _text(value: str) -> str:
    """A multi-line field with its line breaks kept (the template sets white-space: pre-line)."""
    lines = [line.strip() for line in (value or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _view(doc: MoneyDocument, lang: str = DEFAULT_LANG) -> dict:
    """What the template prints, with every amount formatted and every derived figure worked out."""
    kind = _kind(doc)
    _ = translations(lang).gettext

    def money(cents: int) -> str:
        return format_amount(cents, doc.currency, lang)

    def day(on: date) -> str:
        return format_date(on, lang)

    def rows(entries: tuple[Payment, ...]) -> list[dict]:
        return [{"on": day(p.on), "description": p.description, "amount": money(abs(p.amount_cents))}
                for p in entries]

    paid = sum(p.amount_cents for p in doc.payments)
    refunded = sum(abs(p.amount_cents) for p in doc.refunds)
    credited = sum(abs(p.amount_cents) for p in doc.credits)
    net_paid = paid - refunded
    balance = doc.total_cents - credited - net_paid
    refunded_in_full = bool(doc.refunds) and paid > 0 and refunded >= paid

    if kind == "receipt":
        if refunded_in_full:
            status = _("Refunded in full")
        elif refunded:
            status = _("Partially refunded")
        elif paid and balance <= 0:
            status = _("Paid in full")
        elif paid:
            status = _("Part paid")
        elif doc.total_cents <= 0:
            status = _("No charge")
        else:
            status = _("No payment received")
    elif kind == "credit_note":
        status = _("Invoice %(number)s is void") % {"number": doc.invoice_number} if doc.voids_invoice else ""
    elif doc.total_cents > 0 and credited >= doc.total_cents:
        status = _("Void: credited in full")
    else:
        status = _("Paid") if doc.total_cents > 0 and balance <= 0 and paid else ""
    # A credit note takes money off what is owed, so it prints its amounts below zero.
    sign = -1 if kind == "credit_note" else 1

    return {
        "title": _(TITLES[kind]),
        "is_invoice": kind == "invoice",
        "is_credit_note": kind == "credit_note",
        "issuer": doc.issuer_name.strip() or doc.convening_name,
        "issuer_details": _text(doc.issuer_details),
        "bill_to_address": _text(doc.bill_to_address),
        "payment_instructions": _text(doc.payment_instructions),
        "issued_on": day(doc.issued_on),
        "due_on": day(doc.due_on) if doc.due_on else "",
        "currency": (doc.currency or "").strip().upper(),
        "lines": [{
            "description": line.description,
            "quantity": f"{line.quantity:,}",  # small counts: the same digits in every language offered
            "unit": money(sign * line.unit_cents),
            "discount": money(-sign * line.discount_cents) if line.discount_cents else "—",
            "amount": money(sign * line.total_cents),
        } for line in doc.lines],
        "any_line_discount": any(line.discount_cents for line in doc.lines),
        "subtotal": money(sign * doc.subtotal_cents),
        "discount": money(-sign * doc.discount_cents) if doc.discount_cents else "",
        "total": money(sign * doc.total_cents),
        "unsigned_total": money(doc.total_cents),
        "credits": [{"on": day(p.on), "description": p.description, "amount": money(-abs(p.amount_cents))}
                    for p in doc.credits],
        "payments": rows(doc.payments),
        "refunds": rows(doc.refunds),
        "paid": money(paid),
        "refunded": money(refunded),
        "net_paid": money(net_paid),
        "balance_label": _("Credit") if balance < 0 else _("Balance due"),
        "balance": money(abs(balance)),
        "amount_due": money(max(balance, 0)),
        "owing": balance > 0,
        "refunded_in_full": refunded_in_full,
        "status": status,
        "attendees": [{"name": name, "reference": reference, "ticket": ticket}
                      for name, reference, ticket in doc.attendees],
    }
