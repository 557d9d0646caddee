"""Big batches: render badges in chunks in a pool of processes and merge the chunks with pypdf.

WeasyPrint lays a document out on one core and keeps all of it in memory until the PDF is written.
Cutting a batch into chunks of whole sheets (10 by default: 60 badges on Avery 5392) and rendering
them in parallel makes the time fall with the number of cores and keeps each worker's memory at
one chunk's worth, however large the batch. Small chunks also let a worker pause Python's cycle
collector while it renders one (see render_chunk), which a single big document cannot afford.

Workers get plain data (BadgeData and QR SVGs), never ORM objects. They are forked from a
forkserver, never from the caller, so a pool is safe to start from a web process's background
thread (no fork of a threaded process), and they stay up for later batches.
"""
from __future__ import annotations

import gc
import io
import logging
import math
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import BinaryIO

from convene.printing.badges import BadgeData, subline_text
from convene.printing.layouts import LAYOUTS, Layout
from convene.printing.qr import qr_svg

log = logging.getLogger(__name__)

CHUNK_SHEETS = 10
# Batches smaller than these render as one document in this process when the caller leaves `workers`
# to us (config: PRINT_POOL_MIN_BADGES, PRINT_POOL_MIN_AGENDAS). Measured with bench/badges.py and
# bench/agendas.py on 2 cores: starting the pool costs a few seconds of CPU (each worker imports
# WeasyPrint and loads the fonts) and each badge chunk lays out the batch's font pages again.
POOL_MIN_BADGES = 300
POOL_MIN_AGENDAS = 60

_pool: ProcessPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def default_workers() -> int:
    """One worker per core this process may use (at least one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _context():
    """Forkserver where available (Linux): workers fork from a small server process with no threads.

    The server preloads only this module; each worker imports WeasyPrint itself, so the imports
    of both workers run in parallel and the server stays small (memory it held would count once
    more for every worker forked from it).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["convene.printing.batch"])
        return context
    return multiprocessing.get_context("spawn")


def _start_worker(owner_pid: int) -> None:
    """Pool worker start-up: watch the pool's owner, import WeasyPrint, keep the collector off what it loaded."""
    threading.Thread(target=_exit_with_owner, args=(owner_pid,), name="owner-watch", daemon=True).start()
    import convene.printing.documents  # noqa: F401  (imports WeasyPrint)

    gc.collect()
    gc.freeze()


def _exit_with_owner(owner_pid: int, interval: float = 2.0) -> None:
    """Exit when the process that started the pool is gone.

    A worker blocks on a queue whose write end it holds itself, so if its owner is killed (a web
    worker stopped with SIGTERM, say) nothing would ever tell it to stop: it and the forkserver
    would linger for good.
    """
    while True:
        time.sleep(interval)
        try:
            os.kill(owner_pid, 0)
        except (ProcessLookupError, PermissionError):  # gone (or the pid now belongs to another user)
            os._exit(0)


def pool(workers: int | None = None) -> ProcessPoolExecutor:
    """The process's shared rendering pool, started on first use and kept for later batches."""
    global _pool, _pool_workers
    workers = workers or default_workers()
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_start_worker,
                                        initargs=(os.getpid(),))
            _pool_workers = workers
        return _pool


def shutdown_pool() -> None:
    """Stop the shared pool's workers (tests and the bench call this; the pool restarts on demand)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def _discard_broken_pool(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None


def chunks(badges: list[BadgeData], layout: Layout, chunk_sheets: int = CHUNK_SHEETS, *,
           workers: int = 1) -> list[list[BadgeData]]:
    """Badges cut into runs of whole sheets (at most `chunk_sheets` each), so every chunk starts a sheet.

    Sheets are spread evenly, over a number of chunks that is a multiple of `workers`, so the
    workers finish together instead of one of them rendering a last chunk alone.
    """
    per = layout.per_sheet
    sheet_count = math.ceil(len(badges) / per)
    if not sheet_count:
        return []
    count = math.ceil(sheet_count / max(1, chunk_sheets))
    if workers > 1 and count > 1:
        count = min(sheet_count, math.ceil(count / workers) * workers)
    base, extra = divmod(sheet_count, count)
    parts, start = [], 0
    for index in range(count):
        size = (base + (1 if index < extra else 0)) * per
        parts.append(badges[start:start + size])
        start += size
    return parts


def _ready() -> int:
    """A no-op task: submitting it starts the pool's processes."""
    return os.getpid()


@contextmanager
def _collector_paused(pause: bool) -> Iterator[None]:
    """Python's cycle collector off for the block, then one full collection.

    WeasyPrint allocates millions of small objects, and collecting every few hundred allocations
    costs more than a chunk's garbage is worth. Only pool workers pause it: a chunk is small (its
    garbage is bounded) and the worker does nothing else meanwhile; a web process never does.
    """
    if not pause:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def render_chunk(badges: list[BadgeData], layout_key: str, duplex: bool, cut_guides: bool,
                 qr: dict[str, str] | None = None, pause_gc: bool = False, font_text: dict[int, str] | None = None
                 ) -> bytes:
    """Render one chunk of badges (in a pool worker; arguments are plain, picklable data).

    `qr` maps check-in tokens to QR SVGs the caller already made (and cached). With `font_text`,
    pages setting that text follow the badges (see font_pages), for the caller to drop.
    """
    from convene.printing.documents import badges_html, write_pdf

    with _collector_paused(pause_gc):
        html = badges_html(badges, LAYOUTS[layout_key], duplex=duplex, cut_guides=cut_guides, qr=qr)
        if font_text:
            html = html.replace("</body>", font_pages(font_text) + "</body>", 1)
        return write_pdf(html)


# Text the templates add around the people's own: labels, digits, punctuation, what fitting inserts.
_TEMPLATE_CHARACTERS = "".join(chr(c) for c in range(32, 127)) + "\u2026\u2013\u2014\u2019\u201c\u201d\u00b7\u2022"


def font_text(badges: list[BadgeData]) -> dict[int, str]:
    """Every word the batch's badges print, by the font weight badges.css sets it in, once each."""
    by_weight: dict[int, set[str]] = {400: set(), 600: set(), 700: set()}
    for badge in badges:
        by_weight[700].update((badge.name, badge.role_label.upper(), badge.convening))  # name, ribbon, back title
        by_weight[600].add(badge.organization)
        by_weight[400].update((badge.convening, subline_text(badge), badge.delegation, badge.back_note))
        for visit in badge.visits:
            by_weight[700].add(visit.when)
            by_weight[400].update((visit.host, visit.meeting_point, visit.departs))
    # Shaping happens within words, so each word once gives the glyphs of every string made of them,
    # and each chunk lays out a fraction of the text (names and organizations repeat words).
    return {weight: " ".join(sorted({word for s in strings for word in s.split()})) + " " + _TEMPLATE_CHARACTERS
            for weight, strings in by_weight.items()}


def font_pages(text: dict[int, str]) -> str:
    """HTML setting each weight's text (font_text) in that weight, after the sheets.

    WeasyPrint embeds a subset of each font holding the glyphs its document uses. When every chunk
    of a batch also sets the whole batch's text, every chunk embeds the same subsets, byte for byte,
    and the merged file keeps one copy of each (compress_identical_objects) instead of one per chunk.
    """
    blocks = "".join(f'<p style="font-weight: {weight}; margin: 0">{escape(line)}</p>' for weight, line in text.items())
    return f'<section style="break-before: page; font-size: 6pt; white-space: normal">{blocks}</section>'


def render_agenda_chunk(agendas: list, paper: str, pause_gc: bool = False) -> bytes:
    """Render one chunk of personal agendas (in a pool worker)."""
    from convene.printing.documents import render_agendas

    with _collector_paused(pause_gc):
        # Untagged: merging chunks page by page would drop their structure trees.
        return render_agendas(agendas, paper=paper, tagged=False)


def _qr_map(badges: list[BadgeData]) -> dict[str, str]:
    return {badge.checkin_token: str(qr_svg(badge.checkin_token)) for badge in badges}


# A name in a content stream: resources are called by name (/F1 Tf, /Im1 Do, /a1 gs, ...).
_NAME = re.compile(rb"/([^\s/\[\]()<>{}%]+)")
_NAMED_RESOURCES = ("/Font", "/XObject", "/ExtGState", "/Pattern", "/Shading", "/ColorSpace", "/Properties")


def _only_resources_used(page):
    """`page` with a resource dictionary of its own, holding only the fonts, images and states its content names.

    WeasyPrint gives every page of a document one shared resource dictionary. Merged page by page,
    each page would carry everything any page of its chunk used: the font pages' glyph images and
    fonts the badges never show, for one.
    """
    from pypdf.generic import DictionaryObject, NameObject

    resources = page.get("/Resources")
    contents = page.get_contents()
    if resources is None or contents is None:
        return page
    used = {b"/" + name for name in _NAME.findall(contents.get_data())}
    own = DictionaryObject()
    for category, entries in resources.get_object().items():
        entries = entries.get_object()
        if category in _NAMED_RESOURCES and isinstance(entries, DictionaryObject):
            entries = DictionaryObject({key: value for key, value in entries.items() if key.encode() in used})
        own[NameObject(category)] = entries
    page[NameObject("/Resources")] = own
    return page


def _dedupe(writer) -> None:
    """Keep one copy of objects equal to the byte, dropping what nothing refers to any more.

    A pass merges objects equal to the byte, references included, so a font whose parts were merged
    becomes equal to its twins only in the next pass: repeat while it still finds some.
    """
    left = None
    while left != (left := sum(o is not None for o in writer._objects)):
        writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)


def _font_signature(font) -> tuple | None:
    """What a composite font draws and how its text reads back: same signature, same font on the page.

    Chunks embed identical subsets (font_pages) but list the glyph-to-text map in the order each met
    its glyphs, so their font dictionaries differ by bytes, not by meaning.
    """
    from hashlib import sha256

    if font.get("/Subtype") != "/Type0" or "/ToUnicode" not in font:
        return None
    described = font["/DescendantFonts"][0].get_object()
    descriptor = described["/FontDescriptor"].get_object()
    files = [descriptor[key] for key in ("/FontFile2", "/FontFile3", "/FontFile") if key in descriptor]
    if not files:
        return None
    to_unicode = font["/ToUnicode"].get_object().get_data()
    return (str(font["/BaseFont"]), sha256(files[0].get_object()._data).digest(), repr(described.get("/W")),
            repr(described.get("/W2")), frozenset(_CMAP_PAIR.findall(to_unicode)), _CMAP_PAIR.sub(b"", to_unicode))


_CMAP_PAIR = re.compile(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>")


def _share_fonts(writer) -> None:
    """Pages of every chunk point at one font dictionary for each font whose signature is the same."""
    from pypdf.generic import NameObject

    signatures: dict[int, tuple | None] = {}
    first: dict[tuple, object] = {}
    for page in writer.pages:
        fonts = page["/Resources"].get("/Font")
        if fonts is None:
            continue
        fonts = fonts.get_object()
        for key, reference in list(fonts.items()):
            if not hasattr(reference, "idnum"):
                continue
            if reference.idnum not in signatures:
                signatures[reference.idnum] = _font_signature(reference.get_object())
            signature = signatures[reference.idnum]
            if signature is not None:
                fonts[NameObject(key)] = first.setdefault(signature, reference)


def _write(writer, out: Path | str | BinaryIO) -> None:
    if isinstance(out, (str, Path)):
        path = Path(out)
        partial = path.with_name(path.name + ".part")
        with open(partial, "wb") as handle:
            writer.write(handle)
        partial.replace(path)  # a half-written file never appears under the final name
    else:
        writer.write(out)


def _write_bytes(pdf: bytes, out: Path | str | BinaryIO) -> None:
    if isinstance(out, (str, Path)):
        path = Path(out)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(pdf)
        partial.replace(path)
    else:
        out.write(pdf)


def render_in_chunks(
    task: Callable[..., bytes], sizes: list[int], args_for: Callable[[int, bool], tuple],
    out: Path | str | BinaryIO, *, workers: int | None = None, progress: Callable[[int], None] | None = None,
    keep_pages: Callable[[int], int] | None = None,
) -> int:
    """Run `task(*args_for(index, in_pool))` for every chunk, merge the PDFs in order into `out`; returns pages.

    `sizes[index]` is how many items chunk `index` holds (for `progress`, called with the running
    total as chunks finish). `args_for` runs here, in order, and may be slow (it makes QR codes):
    it runs while the pool starts. With workers=0, or a single chunk, everything runs in this
    process. Chunks are appended as soon as they and all before them are done, so only chunks that
    finished out of order wait in memory.
    """
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    done = 0
    finished: dict[int, bytes] = {}
    next_index = 0

    def collect(index: int, pdf: bytes) -> None:
        nonlocal done, next_index
        finished[index] = pdf
        done += sizes[index]
        while next_index in finished:
            # add_page copies a page and what it uses; append() would also merge outlines and
            # named destinations, which badge sheets do not have, at twice the cost.
            pages = PdfReader(io.BytesIO(finished.pop(next_index))).pages
            for page in pages[:keep_pages(next_index)] if keep_pages else pages:
                writer.add_page(_only_resources_used(page))
            next_index += 1
        if progress:
            progress(done)

    if len(sizes) == 1 and not keep_pages:
        # One document: WeasyPrint's own file (object streams and all) is the result, no merge.
        pdf = task(*args_for(0, False))
        _write_bytes(pdf, out)
        if progress:
            progress(sizes[0])
        return len(PdfReader(io.BytesIO(pdf)).pages)
    if workers == 0 or len(sizes) == 1:
        for index in range(len(sizes)):
            collect(index, task(*args_for(index, False)))
    else:
        executor = pool(workers)
        # Starting the pool's processes takes a moment: prepare the chunks' arguments meanwhile.
        starter = threading.Thread(target=executor.submit, args=(_ready,), daemon=True)
        starter.start()
        futures: dict[Future, int] = {}
        waiting: list[tuple[int, tuple]] = []
        try:
            for index in range(len(sizes)):
                waiting.append((index, args_for(index, True)))
                if not starter.is_alive():
                    futures.update({executor.submit(task, *args): i for i, args in waiting})
                    waiting.clear()
            starter.join()
            futures.update({executor.submit(task, *args): i for i, args in waiting})
            pending = set(futures)
            while pending:
                complete, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in complete:
                    collect(futures[future], future.result())
        except BrokenProcessPool:
            _discard_broken_pool(executor)
            raise
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    pages = len(writer.pages)
    if keep_pages and len(sizes) > 1:
        # The chunks' font subsets are identical (font_pages): keep one copy of each, drop the font pages' objects.
        # A pass merges objects equal to the byte, references included, so a font whose parts were merged
        # becomes equal to its twins only in the next pass: repeat while it still finds some.
        _dedupe(writer)
        _share_fonts(writer)
        _dedupe(writer)
    _write(writer, out)
    writer.close()
    return pages


def render_badges_pdf(
    badges: list[BadgeData], layout: Layout, out: Path | str | BinaryIO, *, duplex: bool = False,
    cut_guides: bool = True, workers: int | None = None, chunk_sheets: int = CHUNK_SHEETS,
    progress: Callable[[int], None] | None = None, pool_min: int | None = None,
) -> int:
    """Render a batch of badges into `out` (a path or binary file); returns the number of pages.

    The QR codes are made here (and cached) while the pool starts, and handed to the workers.
    Below `pool_min` badges (POOL_MIN_BADGES when None) and with `workers` left to None, the batch is one document.
    """
    if not badges:
        raise ValueError("no badges to render")
    if workers is None and len(badges) < (POOL_MIN_BADGES if pool_min is None else pool_min):
        # Below this, starting the pool and laying out every chunk's font pages cost more than two cores gain.
        workers, chunk_sheets = 0, math.ceil(len(badges) / layout.per_sheet)
    pool_size = 1 if workers == 0 else (workers or default_workers())
    parts = chunks(badges, layout, chunk_sheets, workers=pool_size)
    shared = font_text(badges) if len(parts) > 1 else None
    sides = 2 if duplex else 1

    def args_for(index: int, in_pool: bool) -> tuple:
        qr = _qr_map(parts[index]) if in_pool else None
        return (parts[index], layout.key, duplex, cut_guides, qr, in_pool, shared)

    def badge_pages(index: int) -> int:
        return math.ceil(len(parts[index]) / layout.per_sheet) * sides

    return render_in_chunks(render_chunk, [len(p) for p in parts], args_for, out, workers=workers,
                            progress=progress, keep_pages=badge_pages if shared else None)


AGENDAS_PER_CHUNK = 25


def render_agendas_pdf(
    agendas: list, out: Path | str | BinaryIO, *, paper: str = "letter", workers: int | None = None,
    per_chunk: int = AGENDAS_PER_CHUNK, progress: Callable[[int], None] | None = None, pool_min: int | None = None,
) -> int:
    """Render personal agendas (one or more pages each) into `out`, in chunks; returns the number of pages.

    Below `pool_min` agendas (POOL_MIN_AGENDAS when None) and with `workers` left to None, the batch is one document.
    """
    if not agendas:
        raise ValueError("no agendas to render")
    if workers is None and len(agendas) < (POOL_MIN_AGENDAS if pool_min is None else pool_min):
        workers, per_chunk = 0, len(agendas)
    pool_size = 1 if workers == 0 else (workers or default_workers())
    count = math.ceil(len(agendas) / max(1, per_chunk))
    if pool_size > 1 and count > 1:
        count = min(len(agendas), math.ceil(count / pool_size) * pool_size)
    base, extra = divmod(len(agendas), count)
    parts, start = [], 0
    for index in range(count):
        size = base + (1 if index < extra else 0)
        parts.append(agendas[start:start + size])
        start += size
    return render_in_chunks(render_agenda_chunk, [len(p) for p in parts],
                            lambda index, in_pool: (parts[index], paper, in_pool), out, workers=workers,
                            progress=progress)
