"""Agenda batches merged from chunks: each person's pages, in order, read back as their own agenda does."""
from __future__ import annotations

import io
import re

from pypdf import PdfReader

from convene.printing import batch
from convene.printing.agendas import AgendaDay, AgendaEntry, PersonalAgenda
from convene.printing.batch import render_agendas_pdf
from convene.printing.documents import render_agendas

PEOPLE = [  # name, language, the sessions they signed up for
    ("Amina Hassan", "en", ("Opening plenary", "Employer engagement")),
    ("محمد عبد الله", "ar", ("Opening plenary", "Language access")),
    ("Sofía Ibáñez", "es", ("Opening plenary", "Credential recognition", "Closing")),
    ("François Bérubé", "fr", ("Opening plenary",)),
    ("فاطمة السيد", "ar", ("Opening plenary", "Employer engagement", "Language access")),
]


def agenda(name: str, lang: str, sessions: tuple[str, ...]) -> PersonalAgenda:
    entries = tuple(AgendaEntry(f"{9 + 2 * n:02d}:00–{10 + 2 * n:02d}:15", title, f"Room {n + 1}",
                                "Signed up" if n else "", (("Presenters", "Ngozi Adeyemi (City of Dayton)"),))
                    for n, title in enumerate(sessions))
    return PersonalAgenda(convening="Welcoming Cities 2026", dates="13–15 October 2026", name=name,
                          organization="City of Dayton", reference=f"WC-{len(name):04d}", timezone="America/Toronto",
                          days=(AgendaDay("Tuesday 14 October 2026", entries),), lang=lang,
                          zone_text="Times are in Toronto time.")


def page_texts(pdf: bytes) -> list[str]:
    """Each page's text without its footer's page number (a batch numbers its pages its own way)."""
    return [re.sub(r"\s*\d+\s*$", "", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_a_merged_batch_reads_back_each_persons_own_agenda_in_order():
    agendas = [agenda(*person) for person in PEOPLE]
    out = io.BytesIO()
    pages = render_agendas_pdf(agendas, out, workers=0, per_chunk=2)  # three chunks, merged
    merged = page_texts(out.getvalue())
    own = [page_texts(render_agendas([a], tagged=False)) for a in agendas]
    assert pages == len(merged) == sum(len(texts) for texts in own)
    assert merged == [text for texts in own for text in texts]
    starts = [sum(len(texts) for texts in own[:n]) for n in range(len(own))]
    for (name, _lang, sessions), first in zip(PEOPLE, starts):
        assert name in merged[first]
        assert all(title in merged[first] for title in sessions)
    # Nobody's page shows a session someone else signed up for alone.
    assert "Credential recognition" not in "".join(merged[:starts[2]] + merged[starts[3]:])


def times_x(pdf: bytes) -> list[float]:
    """Per page, where the first session's time starts across the page (0 at the left edge, 1 at the right)."""
    found = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        xs: list[float] = []

        def visit(text, cm, tm, font, size, xs=xs):
            if "09:00" in text:
                xs.append(cm[4] + tm[4] * cm[0])

        page.extract_text(visitor_text=visit)
        found.append(min(xs) / float(page.mediabox.width) if xs else -1.0)
    return found


def test_arabic_agendas_keep_their_right_to_left_layout_in_a_merged_batch():
    agendas = [agenda(*person) for person in PEOPLE[:3]]  # English, Arabic, Spanish
    out = io.BytesIO()
    render_agendas_pdf(agendas, out, workers=0, per_chunk=1)
    english, arabic, spanish = times_x(out.getvalue())[:3]
    assert english < 0.3 and spanish < 0.3, (english, arabic, spanish)  # the time at the left margin
    assert arabic > 0.6, (english, arabic, spanish)  # and at the right one on the Arabic page


def test_small_agenda_batches_are_one_document_without_the_pool(monkeypatch):
    started = []
    monkeypatch.setattr(batch, "pool", lambda workers: started.append(workers))
    out = io.BytesIO()
    agendas = [agenda(*person) for person in PEOPLE]
    assert render_agendas_pdf(agendas, out, pool_min=len(agendas) + 1) == len(agendas)
    assert started == []
    assert page_texts(out.getvalue()) == page_texts(render_agendas(agendas, tagged=False))
