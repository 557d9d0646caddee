"""HTML for badges, rosters and agendas from plain data, and PDF bytes from that HTML with WeasyPrint.

Nothing here touches Flask or the database: it runs the same in a web request, a pool worker,
the command line and the bench. Templates live in templates/printing/ and escape everything.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from convene.printing.badges import BadgeData, badge_view, design_for
from convene.printing.fetcher import StaticOnlyFetcher
from convene.printing.fit import is_rtl
from convene.printing.layouts import Layout, sheets
from convene.printing.qr import qr_svg

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "printing"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

# Documents people read on screen (an attendee's agenda, receipts and invoices) are written as
# PDF/UA-1: tagged, with a title and a language, so screen readers can follow them. Badge sheets
# and print batches stay plain: they are for paper, and the chunks of a batch are merged page by
# page, which would drop the structure tree anyway.
ACCESSIBLE_VARIANT = "pdf/ua-1"
DEFAULT_LANG = "en"
RTL_LANGUAGES = frozenset({"ar"})  # as convene.languages; this module stays free of Flask


def _pt(value: float) -> Markup:
    """A length in points for a style attribute (numbers only, so nothing else can get in)."""
    return Markup(f"{float(value):.2f}pt")


@lru_cache(maxsize=8)
def translations(lang: str = DEFAULT_LANG):
    """The compiled catalogues of one language, `admin` over `messages` (Babel's own loader: no Flask, so print
    workers can use it); staff-only documents (rosters, attendance) read the `admin` one."""
    from babel.support import Translations

    catalogue = Translations.load(str(TRANSLATIONS), [lang or DEFAULT_LANG])
    if isinstance(catalogue, Translations):
        catalogue.merge(Translations.load(str(TRANSLATIONS), [lang or DEFAULT_LANG], domain="admin"))
    return catalogue


def text_direction(lang: str) -> str:
    return "rtl" if lang in RTL_LANGUAGES else "ltr"


@lru_cache(maxsize=8)
def environment(lang: str = DEFAULT_LANG) -> Environment:
    """The printing templates' own Jinja environment in one language: autoescaped, strict about missing values."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"])
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(lang), newstyle=True)
    env.filters["pt"] = _pt
    env.globals["lang_dir"] = text_direction(lang)
    return env


def badges_html(badges: list[BadgeData], layout: Layout, *, duplex: bool = False, cut_guides: bool = True,
                title: str = "Badges", qr: dict[str, str] | None = None) -> str:
    """One HTML document printing `badges` on `layout` sheets (fronts, then mirrored backs when duplex).

    `qr` may carry QR SVGs already made for some tokens (by qr_svg, in another process).
    """
    design = design_for(layout)
    views = [badge_view(badge, design) for badge in badges]
    pages = sheets(views, layout, duplex=duplex, cut_guides=cut_guides)
    made = qr or {}

    def qr_for(token: str) -> Markup:
        return Markup(made[token]) if token in made else qr_svg(token)

    return environment().get_template("badges.html").render(
        sheets=pages, layout=layout, design=design, title=title, qr_for=qr_for, lang=badges_language(badges),
        rtl_languages=RTL_LANGUAGES,
    )


def badges_language(badges: list[BadgeData]) -> str:
    """A sheet's language: its badges' one language when they share it, else the default (each back says its own)."""
    languages = {badge.lang for badge in badges}
    return languages.pop() if len(languages) == 1 else DEFAULT_LANG


def rosters_html(rosters: list, *, title: str = "Site-visit rosters", paper: str = "letter") -> str:
    """One HTML document with a roster and sign-in sheet per site visit, each starting a new page."""
    return environment().get_template("rosters.html").render(rosters=rosters, title=title, paper=paper)


def program_html(book, *, paper: str = "letter") -> str:
    """The program book: cover, contents with page numbers, a section per day, the site-visit schedule."""
    lang = getattr(book, "lang", DEFAULT_LANG)
    return environment(lang).get_template("program.html").render(book=book, paper=paper, lang=lang)


def agendas_html(agendas: list, *, title: str = "", paper: str = "letter", lang: str = DEFAULT_LANG) -> str:
    """Personal agendas, each starting a new page, each in its attendee's language (a batch may mix them)."""
    if len(agendas) == 1 and lang == DEFAULT_LANG:
        lang = getattr(agendas[0], "lang", DEFAULT_LANG)
    return environment(lang).get_template("agendas.html").render(
        agendas=agendas, title=title or agenda_title(agendas, lang), paper=paper, rtl=is_rtl, lang=lang,
        direction=text_direction,
    )


def agenda_title(agendas: list, lang: str = DEFAULT_LANG) -> str:
    """The document title screen readers announce: whose agenda it is when there is one."""
    gettext = translations(lang).gettext
    if len(agendas) == 1:
        return gettext("Agenda for %(name)s · %(convening)s") % {"name": agendas[0].name,
                                                                  "convening": agendas[0].convening}
    return gettext("Personal agendas")


@lru_cache(maxsize=1)
def _font_config():
    # Loading the system fonts takes a while; one configuration serves every document in a process.
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


@lru_cache(maxsize=1)
def fetcher() -> StaticOnlyFetcher:
    return StaticOnlyFetcher()


def write_pdf(html: str, *, tagged: bool = False) -> bytes:
    """Render HTML to PDF bytes (PDF/UA-1 when `tagged`); only files in static/ may be fetched.

    A tagged document takes its title from <title> and its language from <html lang>.
    """
    from weasyprint import HTML

    url_fetcher = fetcher()
    document = HTML(string=html, base_url=url_fetcher.base_url, url_fetcher=url_fetcher)
    return document.write_pdf(font_config=_font_config(), pdf_variant=ACCESSIBLE_VARIANT if tagged else None)


def render_badges(badges: list[BadgeData], layout: Layout, *, duplex: bool = False, cut_guides: bool = True,
                  qr: dict[str, str] | None = None) -> bytes:
    """Badges as one PDF, in this process (small batches, previews and each chunk of a big one)."""
    return write_pdf(badges_html(badges, layout, duplex=duplex, cut_guides=cut_guides, qr=qr))


def render_rosters(rosters: list, *, paper: str = "letter") -> bytes:
    return write_pdf(rosters_html(rosters, paper=paper))


def render_program(book, *, paper: str = "letter") -> bytes:
    return write_pdf(program_html(book, paper=paper))


def render_agendas(agendas: list, *, paper: str = "letter", lang: str = DEFAULT_LANG, tagged: bool = True) -> bytes:
    """Personal agendas as one PDF, tagged unless it is a chunk of a print batch."""
    return write_pdf(agendas_html(agendas, paper=paper, lang=lang), tagged=tagged)


def first_page_png(pdf: bytes, *, width_px: int = 900) -> bytes:
    """Page 1 of a PDF as a PNG `width_px` wide (for previews)."""
    import io

    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        scale = width_px / page.get_width()
        image = page.render(scale=scale).to_pil()
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=True)
        page.close()
    finally:
        document.close()
    return out.getvalue()
