"""Shrink-to-fit text: choose a font size and line breaks from the text and its box, deterministically.

WeasyPrint cannot shrink text to fit a box by itself, and measuring in the renderer would make
every badge a two-pass layout. Instead the width of a text is estimated here from per-character
advance widths of Noto Sans Bold (measured once with fontTools and kept below), with cautious
per-script figures for scripts set in other Noto faces. Estimates err wide, so text fitted here
never spills out of its box; the box still clips as a last resort.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Advance widths (em) of printable ASCII in Noto Sans Bold, in code-point order from " " to "~".
_ASCII_WIDTHS = (
    0.260, 0.286, 0.472, 0.646, 0.572, 0.901, 0.750, 0.266, 0.339, 0.339, 0.545, 0.572, 0.285, 0.322, 0.285,
    0.413, 0.572, 0.572, 0.572, 0.572, 0.572, 0.572, 0.572, 0.572, 0.572, 0.572, 0.285, 0.285, 0.572, 0.572,
    0.572, 0.477, 0.897, 0.690, 0.672, 0.637, 0.740, 0.560, 0.549, 0.724, 0.765, 0.389, 0.331, 0.664, 0.565,
    0.943, 0.813, 0.796, 0.628, 0.796, 0.660, 0.551, 0.579, 0.756, 0.650, 0.967, 0.667, 0.624, 0.579, 0.331,
    0.413, 0.331, 0.572, 0.411, 0.362, 0.604, 0.633, 0.514, 0.633, 0.591, 0.387, 0.633, 0.657, 0.305, 0.305,
    0.620, 0.305, 0.982, 0.657, 0.619, 0.633, 0.633, 0.454, 0.497, 0.434, 0.657, 0.569, 0.856, 0.578, 0.569,
    0.488, 0.394, 0.551, 0.394, 0.572,
)

# (first, last code point, em width) for scripts outside ASCII; the first match wins.
_SCRIPT_WIDTHS = (
    (0x0080, 0x024F, 0.80),  # Latin-1 and Latin Extended letters not reduced to ASCII below
    (0x0370, 0x03FF, 0.70),  # Greek
    (0x0400, 0x052F, 0.75),  # Cyrillic
    (0x0590, 0x05FF, 0.65),  # Hebrew
    (0x0600, 0x06FF, 0.75),  # Arabic (isolated forms average 0.73; joined ones are narrower)
    (0x0750, 0x077F, 0.75),
    (0x08A0, 0x08FF, 0.75),
    (0xFB50, 0xFEFF, 0.75),  # Arabic presentation forms
    (0x0900, 0x097F, 0.70),  # Devanagari
    (0x0980, 0x0DFF, 0.75),  # other Indic scripts
    (0x0E00, 0x0E7F, 0.65),  # Thai
    (0x1200, 0x139F, 0.80),  # Ethiopic (Amharic)
    (0x1E00, 0x1EFF, 0.80),  # Latin Extended Additional (Vietnamese) when not decomposable
)
_DEFAULT_WIDTH = 0.80

# Scripts whose marks reach far above or below Latin letters (Arabic dots and vowels, Indic vowel
# signs, Thai tone marks): their lines need more room or the box would clip them.
_TALL_SCRIPTS = (
    (0x0600, 0x08FF), (0xFB50, 0xFEFF),  # Arabic
    (0x0900, 0x0DFF),  # Devanagari and the other Indic scripts
    (0x0E00, 0x0FFF),  # Thai, Lao, Tibetan
    (0x1000, 0x109F), (0x1780, 0x17FF),  # Myanmar, Khmer
)
TALL_LINE_HEIGHT = 1.55
_WIDE_WIDTH = 1.02  # CJK ideographs, kana, Hangul and full-width forms are one em
_EMOJI_WIDTH = 1.25  # every glyph of Noto Color Emoji is 2550/2048 em wide


def is_emoji(char: str) -> bool:
    """A pictographic symbol that Noto Color Emoji draws (🌍, ✨, ❤, ⭐...)."""
    code = ord(char)
    return unicodedata.category(char) == "So" and (
        0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF or 0x1F000 <= code <= 0x1FAFF)


def _joins_previous(char: str, cluster: str) -> bool:
    """Whether `char` belongs to the grapheme before it: a mark, a joiner, or a part of an emoji sequence."""
    code = ord(char)
    return (unicodedata.category(char).startswith("M") or char in "\u200c\u200d"
            or cluster.endswith("\u200d")  # 👩‍💻: what follows a zero-width joiner
            or 0x1F3FB <= code <= 0x1F3FF  # skin tones
            or 0xE0020 <= code <= 0xE007F  # the tag characters of subdivision flags
            or (0x1F1E6 <= code <= 0x1F1FF and len(cluster) == 1 and 0x1F1E6 <= ord(cluster) <= 0x1F1FF))


@lru_cache(maxsize=8192)
def char_em(char: str) -> float:
    """Estimated advance width of one character, in em, for a bold sans face."""
    code = ord(char)
    if 0x20 <= code <= 0x7E:
        return _ASCII_WIDTHS[code - 0x20]
    category = unicodedata.category(char)
    if category in ("Mn", "Me", "Cf") or char in "\u200b\u200c\u200d":
        return 0.0  # combining marks and joiners take no room of their own
    if category == "Mc":
        return 0.35  # spacing vowel signs (Devanagari and friends)
    if is_emoji(char):
        return _EMOJI_WIDTH
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return _WIDE_WIDTH
    if category.startswith("Z"):
        return 0.26
    base = unicodedata.normalize("NFD", char)[0]
    if base != char and 0x20 <= ord(base) <= 0x7E:
        return _ASCII_WIDTHS[ord(base) - 0x20] + 0.02  # accented Latin (é, ư, ñ): as wide as its base
    for first, last, width in _SCRIPT_WIDTHS:
        if first <= code <= last:
            return width
    return _DEFAULT_WIDTH


def text_em(text: str) -> float:
    """Estimated width of a single line of text, in em."""
    return sum(char_em(c) for c in text)


def line_height_for(text: str, minimum: float = 1.2) -> float:
    """The line height (in em) a text needs: more for scripts with tall marks."""
    for char in text:
        code = ord(char)
        if code >= 0x0600 and any(first <= code <= last for first, last in _TALL_SCRIPTS):
            return max(minimum, TALL_LINE_HEIGHT)
    return minimum


def is_rtl(text: str) -> bool:
    """True when the first strongly directional character is right-to-left (Arabic, Hebrew...).

    WeasyPrint honours dir="rtl" and dir="ltr" but not dir="auto", so the direction is found here.
    """
    for char in text:
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


@dataclass(frozen=True)
class Fitted:
    """A text laid out for its box: the font size in points and the lines to print."""

    size: float
    lines: tuple[str, ...]
    rtl: bool = False
    line_height: float = 1.2

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass(frozen=True)
class _Piece:
    """An unbreakable run of text, its width in em, and whether a space separates it from the one before."""

    text: str
    width: float
    space_before: bool


_SPACE = char_em(" ")


def _pieces(text: str, *, split_words: bool = False) -> list[_Piece]:
    """Break opportunities: between words, between characters of scripts written without spaces
    (Chinese, Japanese), and, with split_words, between any two characters (for words too long for a line).
    """
    pieces: list[_Piece] = []
    for word in text.split():
        if pieces and all(unicodedata.category(c)[0] in "PS" for c in word):
            # A lone "·", "–" or "/" stays with the word before it rather than starting a line.
            last = pieces[-1]
            pieces[-1] = _Piece(f"{last.text} {word}", last.width + _SPACE + text_em(word), last.space_before)
            continue
        clusters: list[str] = []
        for char in word:
            if clusters and _joins_previous(char, clusters[-1]):
                clusters[-1] += char  # never separate a mark from its base letter, nor split an emoji
            else:
                clusters.append(char)
        run, first = "", True
        for cluster in clusters:
            if split_words or unicodedata.east_asian_width(cluster[0]) in ("W", "F"):
                if run:
                    pieces.append(_Piece(run, text_em(run), first))
                    run, first = "", False
                pieces.append(_Piece(cluster, text_em(cluster), first))
                first = False
            else:
                run += cluster
        if run:
            pieces.append(_Piece(run, text_em(run), first))
    return pieces


def _wrap(pieces: list[_Piece], limit: float) -> list[list[_Piece]]:
    """Greedy line filling: as many pieces per line as fit in `limit` em."""
    lines: list[list[_Piece]] = []
    used = 0.0
    for piece in pieces:
        extra = piece.width + (_SPACE if lines and lines[-1] and piece.space_before else 0.0)
        if lines and lines[-1] and used + extra <= limit + 1e-9:
            lines[-1].append(piece)
            used += extra
        else:
            lines.append([piece])
            used = piece.width
    return lines


def _line_width(line: list[_Piece]) -> float:
    return sum(p.width for p in line) + sum(_SPACE for p in line[1:] if p.space_before)


def _line_text(line: list[_Piece]) -> str:
    return "".join((" " if i and p.space_before else "") + p.text for i, p in enumerate(line))


def _balanced(pieces: list[_Piece], count: int) -> list[list[_Piece]]:
    """At most `count` lines whose widest line is as narrow as possible (binary search on the width)."""
    low, high = max(p.width for p in pieces), _line_width(pieces)
    if count <= 1 or low >= high:
        return [pieces]
    for _ in range(40):
        middle = (low + high) / 2
        if len(_wrap(pieces, middle)) <= count:
            high = middle
        else:
            low = middle
    return _wrap(pieces, high)


SAFETY = 0.97  # kerning and shaping rarely widen text, but fitted text must never touch its box's edge
ABSOLUTE_MIN = 3.0


def fit_text(
    text: str, width: float, height: float, *, max_size: float, min_size: float = 6.0, max_lines: int = 1,
    line_height: float = 1.2,
) -> Fitted:
    """The largest font size (≤ max_size) at which `text` fits `width`×`height` points in ≤ max_lines lines.

    Lines break between words, balanced so a name splits evenly. Fewer lines win ties, so a name is
    only broken when that lets it print larger. When whole words cannot reach `min_size` (one very
    long word), words may break between characters too; the text then shrinks as far as it must
    (to 3 pt at the very least) rather than run out of its box.
    """
    text = " ".join((text or "").split())
    rtl = is_rtl(text)
    line_height = line_height_for(text, line_height)
    if not text:
        return Fitted(max_size, (), rtl, line_height)
    best: Fitted | None = None
    for split_words in (False, True):
        pieces = _pieces(text, split_words=split_words)
        for count in range(1, max(1, max_lines) + 1):
            lines = _balanced(pieces, count)
            if count > 1 and len(lines) < count:
                break  # no more places to break
            widest = max(_line_width(line) for line in lines) or 1.0
            size = min(max_size, width * SAFETY / widest, height / (len(lines) * line_height))
            size = math.floor(size * 4) / 4  # quarter points, rounded down
            if best is None or size > best.size:
                best = Fitted(size, tuple(_line_text(line) for line in lines), rtl, line_height)
            if size >= max_size:
                break
        if best.size >= min_size:
            break
    return Fitted(max(best.size, ABSOLUTE_MIN), best.lines, rtl, line_height)
