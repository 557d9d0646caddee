"""Receipts and invoices, read back from the PDFs: numbers, totals, payments and refunds, attendees, escaping."""
from __future__ import annotations

import ast
import io
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from convene.printing import receipts
from convene.printing.receipts import (
    DocumentLine,
    MoneyDocument,
    Payment,
    document_filename,
    format_amount,
    money_document_html,
    money_document_pdf,
)

ARABIC = "محمد عبد الله"
CHINESE = "王芳"


def document(kind: str = "invoice", **overrides) -> MoneyDocument:
    values = dict(
        kind=kind,
        number="TOR-2026-0007" if kind == "invoice" else "R-TOR-P7K3QX",
        issued_on=date(2026, 5, 1),
        currency="CAD",
        issuer_name="Welcoming Cities Network",
        issuer_details=("Welcoming Cities Network Inc.\n100 King St W, Suite 5\nToronto ON M5X 1A9\n"
                        "GST/HST 123456789 RT0001"),
        convening_name="Toronto Cohort Convening",
        convening_dates="3–5 June 2026",
        convening_venue="Metro Toronto Convention Centre",
        order_reference="ORD-8K2P",
        bill_to_name="Amina Hassan",
        bill_to_organization="City of Dayton",
        bill_to_email="amina@dayton.example",
        bill_to_address="101 W Third St\nDayton OH 45402",
        po_number="PO-55123",
        lines=(
            DocumentLine("Delegate — Toronto Cohort Convening", 3, 45_000, 4_500, 121_500),
            DocumentLine("Site-visit lunch", 2, 2_500, 0, 5_000),
        ),
        subtotal_cents=126_500,
        discount_cents=12_650,
        discount_label="Code MEMBER10 (10 %)",
        total_cents=113_850,
        payments=(),
        refunds=(),
        due_on=date(2026, 5, 31) if kind == "invoice" else None,
        payment_instructions="Bank: RBC Royal Bank\nAccount 1234567\nSWIFT ROYCCAT2" if kind == "invoice" else "",
        attendees=(("Amina Hassan", "REG-0001", "Delegate"), ("Lee Park", "REG-0002", "Delegate")),
    )
    values.update(overrides)
    return MoneyDocument(**values)


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def pdf_text(pdf: bytes) -> str:
    return "\n".join(pages(pdf))


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def line_with(text: str, label: str) -> str:
    """The first extracted line that starts with `label` (a totals row: the label, then its amount)."""
    found = [line.strip() for line in text.splitlines() if line.strip().startswith(label)]
    assert found, f"no line starts with {label!r}"
    return found[0]


def has_line(text: str, expected: str) -> bool:
    return expected in [line.strip() for line in text.splitlines()]


# ---------------------------------------------------------------- amounts and file names


@pytest.mark.parametrize(("cents", "currency", "expected"), [
    (123_450, "CAD", "CA$1,234.50"),
    (0, "USD", "$0.00"),
    (5, "USD", "$0.05"),
    (123_450, "CHF", "1,234.50 CHF"),
    (100_000_000, "EUR", "€1,000,000.00"),
    (999, "GBP", "£9.99"),
    (250_000, "AUD", "A$2,500.00"),
    (-1_050, "CAD", "-CA$10.50"),
    (-1_050, "CHF", "-10.50 CHF"),
    (-5, "USD", "-$0.05"),
    (1_234, "cad", "CA$12.34"),
])
def test_amounts_are_numeric_with_symbol_or_code_and_a_leading_minus(cents, currency, expected):
    assert format_amount(cents, currency) == expected


@pytest.mark.parametrize(("kind", "number", "expected"), [
    ("invoice", "TOR-2026-0007", "invoice-TOR-2026-0007.pdf"),
    ("receipt", "R-TOR-P7K3QX", "receipt-R-TOR-P7K3QX.pdf"),
    ("invoice", "../x y", "invoice-x-y.pdf"),
    ("receipt", "a/b\\c..d\x00é", "receipt-a-b-c.d.pdf"),
    ("invoice", "", "invoice-document.pdf"),
    ("invoice", "../..", "invoice-document.pdf"),
])
def test_file_names_use_safe_characters_only(kind, number, expected):
    name = document_filename(document(kind, number=number))
    assert name == expected
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name) and ".." not in name and "/" not in name


def test_a_document_is_a_receipt_or_an_invoice_and_nothing_else():
    with pytest.raises(ValueError):
        money_document_html(document("credit-note"))
    with pytest.raises(ValueError):
        document_filename(document("credit-note"))


def test_the_module_imports_neither_flask_nor_the_database():
    tree = ast.parse(Path(receipts.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    forbidden = {"flask", "flask_sqlalchemy", "sqlalchemy"}
    assert not {name for name in imported if name.split(".")[0] in forbidden or name.startswith("convene.models")}


# ---------------------------------------------------------------- invoices


def test_an_invoice_shows_its_number_due_date_lines_totals_and_balance_due():
    doc = document("invoice", payments=(Payment(date(2026, 5, 2), "Bank transfer, ref 4471", 50_000),))
    text = pdf_text(money_document_pdf(doc))

    assert "Invoice" in text and "TOR-2026-0007" in text
    assert "Issued 1 May 2026" in text and "Due 31 May 2026" in text
    assert "Delegate — Toronto Cohort Convening 3 CA$450.00 -CA$45.00 CA$1,215.00" in text
    assert "Site-visit lunch 2 CA$25.00 — CA$50.00" in text
    assert line_with(text, "Subtotal") == "Subtotal CA$1,265.00"
    assert line_with(text, "Discount — Code MEMBER10 (10 %)").endswith("-CA$126.50")
    assert line_with(text, "Total (CAD)") == "Total (CAD) CA$1,138.50"
    assert line_with(text, "Amount paid") == "Amount paid CA$500.00"
    assert line_with(text, "Balance due") == "Balance due CA$638.50"
    assert line_with(text, "Amount due").startswith("Amount due CA$638.50")
    assert "Bank transfer, ref 4471" in text
    # Billed to, the convening and the payment instructions, each multi-line field on its own lines.
    for expected in ("Amina Hassan", "City of Dayton", "amina@dayton.example", "PO number: PO-55123",
                     "Toronto Cohort Convening", "3–5 June 2026", "Metro Toronto Convention Centre",
                     "Order reference: ORD-8K2P", "How to pay".upper()):
        assert expected in text, expected
    lines = [line.strip() for line in text.splitlines()]
    for expected in ("101 W Third St", "Dayton OH 45402", "Bank: RBC Royal Bank", "Account 1234567",
                     "SWIFT ROYCCAT2", "GST/HST 123456789 RT0001"):
        assert expected in lines, expected
    assert "Please quote invoice TOR-2026-0007" in text


def test_an_unpaid_invoice_owes_its_whole_total_and_a_paid_one_owes_nothing():
    unpaid = pdf_text(money_document_pdf(document("invoice")))
    assert line_with(unpaid, "Amount paid") == "Amount paid CA$0.00"
    assert line_with(unpaid, "Balance due") == "Balance due CA$1,138.50"

    paid = pdf_text(money_document_pdf(document("invoice", payments=(
        Payment(date(2026, 5, 2), "Card payment (Stripe pi_123)", 113_850),))))
    assert line_with(paid, "Balance due") == "Balance due CA$0.00"
    assert "PAID" in paid


def test_the_issuer_defaults_to_the_convening_name():
    html = money_document_html(document("invoice", issuer_name="", issuer_details=""))
    assert '<p class="issuer-name" dir="ltr">Toronto Cohort Convening</p>' in html
    assert '<p class="issuer-details' not in html


# ---------------------------------------------------------------- receipts


def test_a_receipt_with_a_partial_refund_shows_payments_the_refund_and_net_paid():
    doc = document("receipt", payments=(
        Payment(date(2026, 5, 2), "Card payment (Stripe pi_123)", 100_000),
        Payment(date(2026, 5, 9), "Bank transfer, ref 4471", 13_850),
    ), refunds=(Payment(date(2026, 5, 20), "Refund", 45_000),))
    text = pdf_text(money_document_pdf(doc))

    assert "Receipt" in text and "R-TOR-P7K3QX" in text
    assert "2 May 2026 Card payment (Stripe pi_123) CA$1,000.00" in text
    assert "9 May 2026 Bank transfer, ref 4471 CA$138.50" in text
    assert "Total received CA$1,138.50" in text
    assert "20 May 2026 Refund -CA$450.00" in text
    assert "Total refunded -CA$450.00" in text
    assert has_line(text, "Net paid CA$688.50")
    assert line_with(text, "Net paid") == "Net paid CA$688.50 PARTIALLY REFUNDED"  # the headline
    assert "Refunded in full" not in text and "Balance due" not in text and "Due " not in text


def test_a_receipt_refunded_in_full_says_so():
    doc = document("receipt", payments=(Payment(date(2026, 5, 2), "Card payment (Stripe pi_123)", 113_850),),
                   refunds=(Payment(date(2026, 5, 20), "Refund", 60_000), Payment(date(2026, 5, 21), "Refund", 53_850)))
    text = pdf_text(money_document_pdf(doc))
    assert "Refunded in full" in text and "REFUNDED IN FULL" in text
    assert has_line(text, "Net paid CA$0.00")


def test_a_paid_receipt_says_paid_in_full():
    doc = document("receipt", payments=(Payment(date(2026, 5, 2), "Card payment (Stripe pi_123)", 113_850),))
    text = pdf_text(money_document_pdf(doc))
    assert line_with(text, "Net paid") == "Net paid CA$1,138.50 PAID IN FULL"
    assert has_line(text, "Net paid CA$1,138.50") and "REFUNDS" not in text


# ---------------------------------------------------------------- attendees and escaping


def test_arabic_and_chinese_attendee_names_print():
    doc = document("receipt", attendees=(
        (ARABIC, "REG-0001", "Delegate"), (CHINESE, "REG-0002", "Delegate"), ("Zoë Ångström", "REG-0003", "Speaker")))
    html = money_document_html(doc)
    assert f'<td class="name" dir="rtl">{ARABIC}</td>' in html
    pdf = money_document_pdf(doc)
    assert len(pages(pdf)) == 1
    text = squash(pdf_text(pdf))
    for name in (ARABIC, CHINESE, "Zoë Ångström"):
        assert squash(name) in text, name


def test_html_in_a_name_is_printed_as_text():
    hostile = '<b>Amina</b><img src="file:///etc/passwd">'
    doc = document("invoice", bill_to_name="<script>alert(1)</script>", bill_to_address="<i>x</i>\nline two",
                   payment_instructions="<a href='http://evil.example'>pay here</a>",
                   attendees=((hostile, "REG-<1>", "<em>Delegate</em>"),))
    html = money_document_html(doc)
    assert "<b>Amina</b>" not in html and "&lt;b&gt;Amina&lt;/b&gt;" in html
    assert "<script>" not in html and "<img" not in html and "<a href" not in html
    text = pdf_text(money_document_pdf(doc))
    for literal in ("<b>Amina</b>", "<script>alert(1)</script>", "<i>x</i>", "REG-<1>", "<em>Delegate</em>",
                    "<a href='http://evil.example'>pay here</a>"):
        assert literal in text, literal


def test_forty_five_attendees_flow_across_pages_with_the_table_header_repeated():
    attendees = tuple((f"Delegate Person {n}", f"REG-{n:04d}", "Delegate") for n in range(1, 46))
    pdf = money_document_pdf(document("receipt", attendees=attendees))
    texts = pages(pdf)
    assert len(texts) > 1
    everything = "\n".join(texts)
    assert "ATTENDEES COVERED (45)" in everything
    assert all(f"REG-{n:04d}" in everything for n in range(1, 46))
    # Every page carries its footer, and every page the table runs onto repeats its header.
    for number, page in enumerate(texts, start=1):
        assert f"Page {number} of {len(texts)}" in page
        assert "R-TOR-P7K3QX" in page
        if re.search(r"REG-\d{4}", page):
            assert "Name Reference Ticket" in page


def test_each_document_has_a_footer_naming_it_with_page_x_of_y():
    text = pdf_text(money_document_pdf(document("invoice")))
    assert "Invoice TOR-2026-0007 · Welcoming Cities Network" in text
    assert "Page 1 of 1" in text


def test_the_template_fetches_nothing():
    doc = replace(document("invoice"), issuer_details="url(file:///etc/passwd)")
    html = money_document_html(doc)
    assert "<img" not in html and "<link" not in html and "@import" not in html
    assert money_document_pdf(doc).startswith(b"%PDF")


# ---------------------------------------------------------------- tagged for screen readers (PDF/UA-1)


def structure(pdf: bytes) -> tuple[dict, list[str]]:
    """The PDF's catalog and document info, read back, and every structure element type in its tag tree."""
    reader = PdfReader(io.BytesIO(pdf))
    catalog = reader.trailer["/Root"]
    kinds: list[str] = []

    def walk(node) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, list):
            for child in node:
                walk(child)
        elif hasattr(node, "get") and node.get("/S") is not None:
            kinds.append(str(node["/S"]))
            walk(node.get("/K", []))

    assert "/StructTreeRoot" in catalog, "the PDF is not tagged"
    walk(catalog["/StructTreeRoot"].get_object().get("/K", []))
    facts = {
        "marked": catalog.get("/MarkInfo", {}).get("/Marked"),
        "lang": str(catalog.get("/Lang", "")),
        "title": str((reader.metadata or {}).get("/Title", "")),
        "display_title": catalog.get("/ViewerPreferences", {}).get("/DisplayDocTitle"),
        "ua": b"pdfuaid:part" in reader.trailer["/Root"]["/Metadata"].get_object().get_data(),
    }
    return facts, kinds


@pytest.mark.parametrize("kind", ["receipt", "invoice"])
def test_receipts_and_invoices_are_tagged_pdf_ua_with_a_title_and_a_language(kind):
    doc = document(kind)
    facts, kinds = structure(money_document_pdf(doc))
    title = "Receipt R-TOR-P7K3QX" if kind == "receipt" else "Invoice TOR-2026-0007"
    assert facts == {"marked": True, "lang": "en", "title": title, "display_title": True, "ua": True}
    assert "/H1" in kinds and "/Table" in kinds and "/TH" in kinds and "/TD" in kinds and "/P" in kinds


def test_the_language_of_a_money_document_comes_from_its_caller():
    html = money_document_html(document("invoice"), lang="fr")
    assert '<html lang="fr" dir="ltr">' in html
    facts, _ = structure(money_document_pdf(document("invoice"), lang="fr"))
    assert facts["lang"] == "fr"
