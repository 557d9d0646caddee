"""Badge layout, read back from the PDFs: pages and sizes, names, QR codes, fitting, escaping, fetching."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader

from convene.printing import LAYOUTS, BadgeData, VisitLine, role_colour
from convene.printing.badges import DEFAULT_ROLE_COLOURS, badge_view, design_for, ink_for
from convene.printing.batch import chunks, render_badges_pdf
from convene.printing.documents import badges_html, first_page_png, render_badges, render_rosters, write_pdf
from convene.printing.fetcher import STATIC_ROOT, RefusedURL, StaticOnlyFetcher
from convene.printing.fit import fit_text, is_rtl, text_em
from convene.printing.layouts import INCH, MM, sheets
from convene.printing.rosters import RosterData, RosterPerson

NAMES = [
    "Amina Hassan",
    "محمد عبد الله",  # Arabic
    "प्रिया",  # Devanagari
    "王芳",  # Chinese
    "አበበ ቢቂላ",  # Amharic
    "Nguyễn Thị Minh Khai",  # Vietnamese
    "Zoë Ångström-Ñúñez",  # accented Latin
]
LONG_NAME = "Maximiliana " + "Wolfeschlegelsteinhausenbergerdorff" * 2 + " de la Santísima Trinidad Ortega"
LONG_ORG = "The International Association of Municipal Workforce Development and Newcomer Integration Professionals"


def badge(n: int, name: str = "", **overrides) -> BadgeData:
    values = dict(
        registration_id=n, checkin_token=f"chk-{n:04d}-Zq9xK2vLp8", name=name or f"Person{n}",
        full_name=f"{name or f'Person{n}'} Family", pronouns="they/them", organization="City of Dayton",
        delegation="Ohio", role_label="Delegate", role_colour=DEFAULT_ROLE_COLOURS["delegate"],
        convening="Welcoming Cities 2026",
    )
    values.update(overrides)
    return BadgeData(**values)


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def page_images(pdf: bytes, scale: float = 3.0):
    document = pdfium.PdfDocument(pdf)
    try:
        for index in range(len(document)):
            page = document[index]
            yield page.render(scale=scale).to_pil()
            page.close()
    finally:
        document.close()


def char_boxes(pdf: bytes, page_index: int = 0) -> tuple[float, list[tuple[str, tuple[float, float, float, float]]]]:
    """Page height and (character, box) for every printed character, boxes in PDF points from the bottom left."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[page_index]
        height = page.get_height()
        text_page = page.get_textpage()
        boxes = []
        for index in range(text_page.count_chars()):
            char = text_page.get_text_range(index, 1)
            box = text_page.get_charbox(index)
            if char.strip() and any(box):
                boxes.append((char, box))
        text_page.close()
        page.close()
    finally:
        document.close()
    return height, boxes


# ---------------------------------------------------------------- sheets


@pytest.mark.parametrize("key, width_in, height_in, per_sheet", [
    ("avery-5392", 8.5, 11, 6),
    ("badge-4x6", 4, 6, 1),
    ("a6-on-a4", 210 / 25.4, 297 / 25.4, 4),
])
def test_each_layout_prints_full_sheets_of_the_right_size(key, width_in, height_in, per_sheet):
    layout = LAYOUTS[key]
    assert layout.per_sheet == per_sheet
    pdf = render_badges([badge(n) for n in range(per_sheet + 1)], layout)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2
    for page in reader.pages:
        assert float(page.mediabox.width) == pytest.approx(width_in * INCH, abs=0.5)
        assert float(page.mediabox.height) == pytest.approx(height_in * INCH, abs=0.5)


def test_avery_5392_grid_matches_the_stock():
    layout = LAYOUTS["avery-5392"]
    assert (layout.columns, layout.rows) == (2, 3)
    assert (layout.badge_width, layout.badge_height) == (4 * INCH, 3 * INCH)
    assert layout.origin(0) == (0.25 * INCH, 1 * INCH)
    assert layout.origin(5) == (4.25 * INCH, 7 * INCH)
    # 1″ left at the bottom as at the top, 0.25″ at the right as at the left.
    assert layout.page_height - (layout.origin(5)[1] + layout.badge_height) == pytest.approx(1 * INCH)
    assert layout.page_width - (layout.origin(5)[0] + layout.badge_width) == pytest.approx(0.25 * INCH)


def test_a6_badges_fill_an_a4_sheet_two_by_two():
    layout = LAYOUTS["a6-on-a4"]
    assert (layout.badge_width, layout.badge_height) == pytest.approx((105 * MM, 148 * MM))
    assert layout.origin(3) == pytest.approx((105 * MM, 0.5 * MM + 148 * MM))


def test_duplex_backs_follow_their_fronts_with_columns_mirrored():
    layout = LAYOUTS["avery-5392"]
    items = list(range(8))
    pages = sheets(items, layout, duplex=True)
    assert [p.side for p in pages] == ["front", "back", "front", "back"]
    front, back = pages[0], pages[1]
    for index in range(6):
        (fx, fy), (bx, by) = (front.slots[index].x, front.slots[index].y), (back.slots[index].x, back.slots[index].y)
        assert front.slots[index].item == back.slots[index].item == index
        assert fy == by
        # Flipped on the long edge, the back of a badge sits where the page mirrors its front.
        assert bx == pytest.approx(layout.page_width - fx - layout.badge_width)
    assert [s.item for s in pages[2].slots] == [6, 7, None, None, None, None]


def test_duplex_pdf_has_a_back_page_per_sheet_showing_the_site_visits():
    visits = (VisitLine("Tue 14 Oct, 09:00–11:00 EDT", "Dayton Public Library", "Hotel lobby", "08:40"),)
    pdf = render_badges([badge(1, visits=visits), badge(2)], LAYOUTS["avery-5392"], duplex=True)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2
    back = reader.pages[1].extract_text()
    assert "Dayton Public Library" in back and "Hotel lobby" in back and "08:40" in back
    assert "Person1" not in back  # the back carries visits, the front the name


def test_cut_guides_are_drawn_between_badges_not_on_the_paper_edge():
    layout = LAYOUTS["avery-5392"]
    xs, ys = layout.cut_lines()
    assert xs == pytest.approx([0.25 * INCH, 4.25 * INCH, 8.25 * INCH])
    assert ys == pytest.approx([1 * INCH, 4 * INCH, 7 * INCH, 10 * INCH])
    assert LAYOUTS["badge-4x6"].cut_lines() == ([], [])


def test_chunks_hold_whole_sheets_spread_evenly_over_the_workers():
    layout = LAYOUTS["avery-5392"]
    badges = [badge(n) for n in range(130)]  # 22 sheets, the last one not full
    parts = chunks(badges, layout, chunk_sheets=10)
    assert [len(p) for p in parts] == [48, 42, 40]
    assert [b for part in parts for b in part] == badges
    # Two workers: an even number of chunks, none larger than 10 sheets, every one starting a sheet.
    parts = chunks(badges, layout, chunk_sheets=10, workers=2)
    assert len(parts) == 4 and [len(p) for p in parts] == [36, 36, 30, 28]
    assert chunks(badges[:5], layout, chunk_sheets=10, workers=2) == [badges[:5]]


# ---------------------------------------------------------------- what prints


def test_every_name_prints_in_every_script():
    badges = [badge(n, name) for n, name in enumerate(NAMES)]
    text = squash(pdf_text(render_badges(badges, LAYOUTS["avery-5392"])))
    for name in NAMES:
        assert squash(name) in text, name


def test_emoji_in_names_print_in_colour_and_stay_in_the_text_layer():
    """Noto Color Emoji (fonts-noto-color-emoji, in the Makefile's system packages) draws them, not empty boxes."""
    layout = LAYOUTS["avery-5392"]
    many = "Amina " + "🌍✨🎉" * 5
    pdf = render_badges([badge(1, "Amina 🌍✨", organization="Org 👩🏽‍💻"), badge(2, many)], layout)
    text = pdf_text(pdf)
    assert "Amina 🌍✨" in text and "👩🏽\u200d💻" in text and squash(many) in squash(text)
    fonts = {str(font.get_object()["/BaseFont"])
             for font in PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"].values()}
    assert any("Noto-Color-Emoji" in font for font in fonts), fonts
    # A missing glyph is an outline box in the (near-black) ink: only the emoji bring colour to the name.
    scale = 2.0
    [image, *_] = list(page_images(pdf, scale=scale))
    x, y = layout.origin(0)
    box = design_for(layout).name
    name_area = image.convert("RGB").crop(tuple(round(v * scale) for v in (
        x + box.x, y + box.y, x + box.x + box.w, y + box.y + box.h)))
    pixels = name_area.tobytes()
    coloured = sum(1 for i in range(0, len(pixels), 3) if max(pixels[i:i + 3]) - min(pixels[i:i + 3]) > 80)
    assert coloured > 500, f"only {coloured} coloured pixels where the emoji should be"
    # The fitting counts emoji at their real width, so a name full of them still stays inside its badge.
    _, boxes = char_boxes(pdf)
    x2, _ = layout.origin(1)
    emoji = [(left, right) for char, (left, _, right, _) in boxes if ord(char[0]) >= 0x2600]
    assert len(emoji) >= 6  # every ✨ (pdfium leaves the characters outside the BMP out of its text)
    for left, right in emoji:
        assert any(x0 - 0.5 <= left and right <= x0 + layout.badge_width + 0.5 for x0 in (x, x2)), (left, right)


def test_right_to_left_names_are_set_right_to_left():
    assert is_rtl("محمد عبد الله") and not is_rtl("Amina") and not is_rtl("王芳")
    html = badges_html([badge(1, "محمد عبد الله")], LAYOUTS["avery-5392"])
    assert re.search(r'<div class="t name" dir="rtl"', html)


def test_qr_code_on_the_page_decodes_to_the_checkin_token():
    badges = [badge(n) for n in range(6)]
    pdf = render_badges(badges, LAYOUTS["avery-5392"])
    [image] = list(page_images(pdf))
    found = {result.text for result in zxingcpp.read_barcodes(image)}
    assert found == {b.checkin_token for b in badges}


@pytest.mark.parametrize("key", sorted(LAYOUTS))
def test_a_very_long_name_and_organization_stay_inside_the_badge(key):
    layout = LAYOUTS[key]
    badges = [badge(1, LONG_NAME, full_name=LONG_NAME, organization=LONG_ORG, delegation=LONG_ORG),
              badge(2, "Wolfeschlegelsteinhausenbergerdorffwolfeschlegelsteinhausen"),
              badge(3, "عبد الرحمن بن عبد العزيز بن فيصل آل سعود", organization=LONG_ORG)]
    badges = badges[:layout.per_sheet] if layout.per_sheet < len(badges) else badges
    view = badge_view(badges[0], design_for(layout))
    assert 7 <= view.name.size < design_for(layout).name_max
    pdf = render_badges(badges, layout)
    height, boxes = char_boxes(pdf)
    slots = [(x, height - y - layout.badge_height, x + layout.badge_width, height - y)
             for x, y in (layout.origin(i) for i in range(len(badges)))]
    assert squash(LONG_NAME)[:40] in squash(pdf_text(pdf))
    for char, (left, bottom, right, top) in boxes:
        inside = any(x0 - 0.5 <= left and right <= x1 + 0.5 and y0 - 0.5 <= bottom and top <= y1 + 0.5
                     for x0, y0, x1, y1 in slots)
        assert inside, f"{char!r} at {(left, bottom, right, top)} is outside every badge"


def test_longer_text_never_gets_a_larger_size():
    sizes = [fit_text("Amina " * n, 264, 62, max_size=40, max_lines=2).size for n in range(1, 12)]
    assert sizes == sorted(sizes, reverse=True)
    assert fit_text("Amina", 264, 62, max_size=40).size == 40


def test_fitting_is_deterministic_and_breaks_at_spaces():
    first = fit_text("Nguyễn Thị Minh Khai", 264, 62, max_size=40, max_lines=2)
    assert first == fit_text("Nguyễn Thị Minh Khai", 264, 62, max_size=40, max_lines=2)
    assert first.lines == ("Nguyễn Thị", "Minh Khai")
    assert text_em("王芳") == pytest.approx(2 * 1.02)


def test_html_in_a_name_is_printed_as_text():
    hostile = badge(1, "<b>Amina</b>", organization="<script>alert(1)</script>", delegation='"><i>x</i>')
    html = badges_html([hostile], LAYOUTS["avery-5392"])
    assert "<b>Amina</b>" not in html and "&lt;b&gt;Amina&lt;/b&gt;" in html
    text = pdf_text(write_pdf(html))
    assert "<b>Amina</b>" in text
    assert "<script>alert(1)</script>" in text


def test_a_role_colour_that_is_not_a_plain_hex_colour_is_refused():
    assert role_colour("speaker", {"speaker": "#123abc"}) == "#123abc"
    assert role_colour("speaker", {"speaker": "red; background: url(file:///etc/passwd)"}) == \
        DEFAULT_ROLE_COLOURS["speaker"]
    assert role_colour("unknown_role", {}) == "#475467"
    html = badges_html([badge(1, role_colour="red;background:url(x)")], LAYOUTS["avery-5392"])
    assert "url(x)" not in html
    assert ink_for("#ffffff") == "#000000" and ink_for("#0b6e4f") == "#ffffff"


# ---------------------------------------------------------------- fetching


class RecordingFetcher(StaticOnlyFetcher):
    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def fetch(self, url, headers=None):
        self.asked.append(url)
        return super().fetch(url, headers)


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file:///etc/hostname",
    (STATIC_ROOT / ".." / "config.py").resolve().as_uri(),
    (STATIC_ROOT.as_uri() + "/../config.py"),
    "https://example.org/logo.png",
    "http://127.0.0.1:5000/admin",
    "ftp://example.org/x",
    "data:text/plain,hello",
])
def test_the_fetcher_refuses_anything_outside_static(url):
    with pytest.raises(RefusedURL):
        StaticOnlyFetcher().fetch(url)


def test_the_fetcher_serves_the_projects_static_files():
    css = next(STATIC_ROOT.rglob("*.css"))
    response = StaticOnlyFetcher().fetch(css.as_uri())
    assert response.read() == css.read_bytes()
    response.close()


def test_a_file_reference_in_a_badge_field_fetches_nothing(caplog, monkeypatch):
    secret = Path("/etc/hostname")
    fetcher = RecordingFetcher()
    monkeypatch.setattr("convene.printing.documents.fetcher", lambda: fetcher)
    html = badges_html([badge(1, f'<img src="{secret.as_uri()}">',
                              organization=f'<link rel="stylesheet" href="{secret.as_uri()}">')],
                       LAYOUTS["avery-5392"])
    pdf = write_pdf(html)
    assert fetcher.asked == []  # escaped: the markup never reached WeasyPrint as markup
    assert f'<img src="{secret.as_uri()}">' in pdf_text(pdf)


def test_a_file_reference_that_reaches_weasyprint_is_refused(monkeypatch):
    fetcher = RecordingFetcher()
    monkeypatch.setattr("convene.printing.documents.fetcher", lambda: fetcher)
    secret = Path("/etc/hostname")
    html = (f'<html><head><link rel="stylesheet" href="{secret.as_uri()}"></head><body><p>Before</p>'
            f'<img src="{secret.as_uri()}"><img src="https://example.org/x.png"><p>After</p></body></html>')
    pdf = write_pdf(html)
    assert set(fetcher.asked) == {secret.as_uri(), "https://example.org/x.png"}
    text = pdf_text(pdf)
    assert "Before" in text and "After" in text
    if secret.exists() and secret.read_text().strip():
        assert secret.read_text().strip() not in text


# ---------------------------------------------------------------- batches, previews, rosters


def test_chunked_render_merges_every_page_in_order_and_reports_progress():
    layout = LAYOUTS["badge-4x6"]
    badges = [badge(n, f"Name{n:02d}") for n in range(5)]
    out, seen = io.BytesIO(), []
    pages = render_badges_pdf(badges, layout, out, workers=0, chunk_sheets=2, progress=seen.append)
    assert pages == 5 and seen == [2, 4, 5]
    reader = PdfReader(io.BytesIO(out.getvalue()))
    assert [f"Name{n:02d}" in page.extract_text() for n, page in enumerate(reader.pages)] == [True] * 5


def test_chunks_render_in_a_pool_of_processes(tmp_path):
    layout = LAYOUTS["badge-4x6"]
    badges = [badge(n, f"Pooled{n}") for n in range(4)]
    path = tmp_path / "pooled.pdf"
    pages = render_badges_pdf(badges, layout, path, workers=2, chunk_sheets=1)
    assert pages == 4 and path.exists() and not (tmp_path / "pooled.pdf.part").exists()
    text = pdf_text(path.read_bytes())
    assert all(f"Pooled{n}" in text for n in range(4))


def test_first_page_preview_is_a_png():
    png = first_page_png(render_badges([badge(1)], LAYOUTS["avery-5392"]), width_px=400)
    assert png.startswith(b"\x89PNG")


def test_roster_lists_everyone_with_a_signature_column():
    roster = RosterData(
        convening="Welcoming Cities 2026", host="Dayton Public Library", host_address="215 E Third St",
        slot_label="Morning", when="Tue 14 Oct, 09:00–11:00 EDT", meeting_point="Hotel lobby", departs="08:40",
        capacity=12, people=(RosterPerson("Amina Hassan", "City of Dayton", "Ohio"),
                             RosterPerson("<b>Omar</b>", "Detroit Welcoming Center")),
    )
    text = pdf_text(render_rosters([roster, roster]))
    for expected in ("Dayton Public Library", "09:00–11:00", "Hotel lobby", "08:40", "Amina Hassan", "City of Dayton",
                     "Signature", "<b>Omar</b>", "2 people of 12 places"):
        assert expected in text
    assert len(PdfReader(io.BytesIO(render_rosters([roster, roster]))).pages) == 2


# ---------------------------------------------------------------- program book and agendas


def test_program_book_has_a_cover_contents_with_page_numbers_and_a_page_run_per_day():
    from convene.printing.agendas import ProgramBook, ProgramDay, ProgramEntry, VisitScheduleEntry
    from convene.printing.documents import render_program

    days = tuple(
        ProgramDay(anchor=f"day-{n}", title=f"Day {n} title", entries=(
            ProgramEntry("09:00–10:30", f"Opening {n}", "Plenary", "Great Hall", ("Amina Hassan (City of Dayton)",)),
            ProgramEntry("11:00–12:00", "<i>Roundtable</i>", "Roundtable", "Salon A", note="Sign-up required"),
        ))
        for n in (1, 2)
    )
    book = ProgramBook(convening="Welcoming Cities 2026", dates="13–15 October 2026", venue="Metro Centre",
                       description="", timezone="America/Toronto", days=days,
                       visits=(VisitScheduleEntry("Morning", "Tue 14 Oct, 09:00–11:00 EDT", "Magnet", departs="08:40"),))
    reader = PdfReader(io.BytesIO(render_program(book)))
    texts = [page.extract_text() for page in reader.pages]
    assert len(texts) == 5  # cover, contents, day 1, day 2, site visits
    assert "Welcoming Cities 2026" in texts[0]
    contents = squash(texts[1])
    assert "Day1title" in contents and "Sitevisits" in contents
    assert re.search(r"Day1title\.*3", contents) and re.search(r"Sitevisits\.*5", contents)
    assert "Opening 1" in texts[2] and "Great Hall" in texts[2] and "Amina Hassan" in texts[2]
    assert "<i>Roundtable</i>" in texts[2] and "Sign-up required" in texts[2]
    assert "Magnet" in texts[4] and texts[4].rstrip().endswith("5")  # numbered pages


def test_each_personal_agenda_starts_a_page():
    from convene.printing.agendas import AgendaDay, AgendaEntry, PersonalAgenda
    from convene.printing.documents import render_agendas

    agendas = [
        PersonalAgenda(convening="Welcoming Cities 2026", dates="13–15 October 2026", name=name, days=(
            AgendaDay("Tuesday 14 October 2026", (
                AgendaEntry("09:30–12:00", "Site visit: Magnet", "Hotel lobby", "Your group", (("Departs", "09:00"),)),
            )),
        ))
        for name in ("Amina Hassan", "محمد عبد الله")
    ]
    reader = PdfReader(io.BytesIO(render_agendas(agendas)))
    assert len(reader.pages) == 2
    assert "Amina Hassan" in reader.pages[0].extract_text() and "Site visit: Magnet" in reader.pages[0].extract_text()
    assert "محمد عبد الله" in reader.pages[1].extract_text()
