"""Cleaning typed and imported text: what no single-line value (a name, a title) may hold.

Control characters break the formats people's text ends up in (iCalendar lines, CSV rows, email
headers, PDF badges) and PostgreSQL refuses NUL outright. Format characters such as the zero-width
joiner and right-to-left marks are kept: Arabic, Hebrew and emoji need them.
"""
from __future__ import annotations

import re
import unicodedata

# Unicode category Cc is exactly these two ranges (fixed by the standard), plus the line and
# paragraph separators, which are format characters but end a line in JavaScript and some readers.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SINGLE_LINE_BREAKS_RE = re.compile("[\t\n\x0b\x0c\r\x85\u2028\u2029]+")
_LINE_BREAK_RE = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")


# Letters and symbols that draw nothing: fillers some keyboards and spammers use to look like a name.
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})


def has_visible(text: str) -> bool:
    """Whether the text shows anything: not only spaces, joiners, marks and blank fillers."""
    return any(ch not in _BLANK_CHARACTERS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def single_line(text):
    """Text fit for one line: tabs and line breaks become one space, other control characters go.

    Text that would show nothing at all (zero-width spaces, Hangul fillers) is empty, so a required
    name made only of them is refused like an empty one.
    """
    if not isinstance(text, str):
        return text
    text = CONTROL_RE.sub("", _SINGLE_LINE_BREAKS_RE.sub(" ", text))
    return text if has_visible(text) or not text else ""


def multi_line(text):
    """Text that may span lines: each line break becomes "\\n", a tab a space, other control characters go."""
    if not isinstance(text, str):
        return text
    text = _LINE_BREAK_RE.sub("\n", text).replace("\t", " ")
    return CONTROL_RE.sub(lambda match: match.group() if match.group() == "\n" else "", text)


# Letters NFKD leaves whole (they are letters of their own, not a base letter plus a mark), folded
# to what someone typing on a plain keyboard would write. Applied after casefold, so lower case only.
_FOLD_LETTERS = str.maketrans({
    "đ": "d", "ð": "d", "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i", "ȷ": "j",
    "ħ": "h", "ŧ": "t", "ƒ": "f", "ɨ": "i", "ʉ": "u", "ŋ": "n", "ɖ": "d", "ɗ": "d", "ƴ": "y", "ƙ": "k",
    "ɓ": "b", "ɛ": "e", "ɔ": "o", "ĸ": "k",
    # Apostrophes and dashes people type interchangeably in names (O’Brien, Jean‐Luc).
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u0640": "",  # Arabic tatweel: stretches a word for looks, never part of the spelling
})
_SPACES_RE = re.compile(r"\s+")
SORT_SEPARATOR = "\x1f"  # below every printable character, so "Smit, Zoe" sorts before "Smith, Al"


def search_key(text) -> str:
    """Text folded for matching and sorting: NFKD, nonspacing marks dropped, casefolded, letters folded."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", str(text)).casefold())
    # Only nonspacing and enclosing marks go (accents, Arabic harakat, Hebrew niqqud); spacing marks
    # (Mc, mostly Indic vowel signs) are spelled out and keep names in those scripts apart.
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Me"))
    return _SPACES_RE.sub(" ", CONTROL_RE.sub(" ", text.translate(_FOLD_LETTERS))).strip()


def search_text(*parts) -> str:
    """The search_key of several values joined by spaces, so no match spans two of them."""
    return " ".join(key for key in map(search_key, parts) if key)


def name_sort_key(family_name, given_name) -> str:
    """A byte-order sort key that puts people A–Z by family then given name, whatever their accents."""
    return f"{search_key(family_name)}{SORT_SEPARATOR}{search_key(given_name)}"


_PUNCTUATION_CATEGORIES = frozenset({"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"})


def delegation_key(name) -> str:
    """A delegation name folded for matching: search_key with punctuation dropped, so "Dayton, OH" == "dayton oh"."""
    folded = "".join(" " if unicodedata.category(c) in _PUNCTUATION_CATEGORIES else c for c in search_key(name))
    return _SPACES_RE.sub(" ", folded).strip()
