"""Badge batches merged from chunks: every badge page in order, each font embedded once, the pool only when it wins."""
from __future__ import annotations

import io

from pypdf import PdfReader

from convene.printing import batch
from convene.printing.badges import VisitLine
from convene.printing.batch import render_badges_pdf
from convene.printing.layouts import LAYOUTS
from tests.unit.test_badge_layout import badge

NAMES = ["Amina", "محمد", "प्रिया", "王芳", "አበበ", "Nguyễn Thị", "Zoë", "Ramón"]


def embedded_fonts(pdf: bytes) -> dict[str, set[int]]:
    """Each font the pages use, by name, with the object numbers of the font files embedded for it."""
    files: dict[str, set[int]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"].get("/Font", {}).values():
            font = font.get_object()
            described = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = described["/FontDescriptor"].get_object()
            ref = next(descriptor.raw_get(k) for k in ("/FontFile2", "/FontFile3", "/FontFile") if k in descriptor)
            files.setdefault(str(descriptor["/FontName"]).split("+")[-1], set()).add(ref.idnum)
    return files


def test_a_merged_batch_has_every_badge_page_and_each_font_once():
    layout = LAYOUTS["badge-4x6"]
    badges = [badge(n, NAMES[n % len(NAMES)] + str(n), organization=NAMES[(n + 3) % len(NAMES)],
                    visits=(VisitLine(when="Tue 14 Oct, 09:00–11:00", host="Host – Détroit"),))
              for n in range(8)]
    merged, plain = io.BytesIO(), io.BytesIO()
    pages = render_badges_pdf(badges, layout, merged, workers=0, chunk_sheets=2, duplex=True)
    render_badges_pdf(badges, layout, plain, workers=0, chunk_sheets=100, duplex=True)
    merged_pdf, plain_pdf = merged.getvalue(), plain.getvalue()
    assert pages == 16 == len(PdfReader(io.BytesIO(merged_pdf)).pages)  # fronts and backs, no font pages
    texts = [page.extract_text() for page in PdfReader(io.BytesIO(merged_pdf)).pages]
    assert texts == [page.extract_text() for page in PdfReader(io.BytesIO(plain_pdf)).pages]
    fonts = embedded_fonts(merged_pdf)
    # Four chunks, yet each outline font once. Noto Color Emoji draws its glyphs as images and embeds a
    # stub of about a kilobyte that differs from chunk to chunk: that one stays per chunk.
    outline = {name: files for name, files in fonts.items() if "Emoji" not in name}
    assert len(outline) >= 6 and all(len(files) == 1 for files in outline.values()), fonts
    assert len(merged_pdf) <= 1.2 * len(plain_pdf), (len(merged_pdf), len(plain_pdf))


ORGANIZATIONS = ["City of Dayton", "مؤسسة الأمل للتنمية", "दिल्ली नगर निगम", "北京市人民政府", "የአዲስ አበባ ከተማ አስተዳደር",
                 "Ủy ban Nhân dân Thành phố Hồ Chí Minh"]


def test_a_merged_batch_of_40_badges_is_at_most_a_fifth_larger_than_one_document():
    layout = LAYOUTS["avery-5392"]
    badges = [badge(n, NAMES[n % len(NAMES)] + str(n), full_name=f"{NAMES[(n * 3) % len(NAMES)]} Family{n}",
                    organization=ORGANIZATIONS[n % len(ORGANIZATIONS)], pronouns=["", "she/her", "they/them"][n % 3])
              for n in range(40)]
    merged, plain = io.BytesIO(), io.BytesIO()
    pages = render_badges_pdf(badges, layout, merged, workers=0, chunk_sheets=2)  # four chunks of two sheets
    render_badges_pdf(badges, layout, plain, workers=0, chunk_sheets=100)  # one document
    merged_pdf, plain_pdf = merged.getvalue(), plain.getvalue()
    assert pages == 7 == len(PdfReader(io.BytesIO(plain_pdf)).pages)
    assert [p.extract_text() for p in PdfReader(io.BytesIO(merged_pdf)).pages] == \
        [p.extract_text() for p in PdfReader(io.BytesIO(plain_pdf)).pages]
    assert len(merged_pdf) <= 1.2 * len(plain_pdf), (len(merged_pdf), len(plain_pdf))
    # Each page carries only what it draws: the font pages' glyph images and fonts are gone.
    for page in PdfReader(io.BytesIO(merged_pdf)).pages:
        content = page.get_contents().get_data()
        for category in ("/Font", "/XObject"):
            for name in page["/Resources"].get(category, {}):
                assert name.encode() in content, (category, name)


def test_small_batches_render_as_one_document_without_the_pool(monkeypatch):
    started = []
    monkeypatch.setattr(batch, "pool", lambda workers: started.append(workers))
    monkeypatch.setattr(batch, "POOL_MIN_BADGES", 10)
    out = io.BytesIO()
    assert render_badges_pdf([badge(n) for n in range(6)], LAYOUTS["badge-4x6"], out) == 6
    assert started == [] and all(len(files) == 1 for files in embedded_fonts(out.getvalue()).values())
