"""Every attendee-facing word is marked for translation, and every shipped catalogue translates all of them.

The back office's words are marked too, for their own catalogue (admin.pot, babel-admin.cfg), which
languages other than English may fill later.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
TRANSLATIONS = ROOT / "convene" / "translations"
LANGUAGES = ("en", "fr", "es", "ar")
TRANSLATED = ("fr", "es", "ar")  # English is the source language: its catalogue only has to know every string

# Templates attendees (and the people they register) read: pages, emails, printed documents.
ATTENDEE_FACING = [
    TEMPLATES / "base.html", TEMPLATES / "_forms.html",
    *sorted((TEMPLATES / "public").rglob("*.html")),
    *sorted((TEMPLATES / "errors").rglob("*.html")),
    *sorted((TEMPLATES / "payments").rglob("*.html")),
    *sorted((TEMPLATES / "email").rglob("*.html")), *sorted((TEMPLATES / "email").rglob("*.txt")),
    *sorted((TEMPLATES / "printing").rglob("*.html")),
]
# Read by the organizing team, not by attendees: the back office may stay English.
STAFF_ONLY = {"email/invitation.html", "email/invitation.txt", "email/password_reset.html",
              "email/password_reset.txt", "printing/rosters.html", "printing/attendance.html"}
# Read by the organizing team: their words go to the back office's catalogue, admin.pot (babel-admin.cfg).
BACK_OFFICE = sorted({*(TEMPLATES / "admin").rglob("*.html"), *(TEMPLATES / name for name in STAFF_ONLY)})
# The back office's views and forms, and the services that write the staff-only emails' subjects.
BACK_OFFICE_PYTHON = sorted([*(ROOT / "convene" / "admin").glob("*.py"), ROOT / "convene" / "services" / "teams.py",
                             ROOT / "convene" / "services" / "passwords.py"])
# Words that are the same in every language: the product's name.
ALLOWED_WORDS = {"Convene"}
# Pieces of markup that macros write outside a tag (an id suffix, an attribute), not words anyone reads.
ALLOWED_FRAGMENTS = {"-error", 'action="', "checkin-page", "page-visit-plan", "page-roster",
                     "registration.cancelled"}  # an example of an audit action's code, in a search box
# CSS classes chosen in expressions ({{ ' refunded' if ... }}): they contain spaces but are not sentences.
CLASS_NAMES = {"choice-disabled", "button button-small button-secondary", "button button-secondary", "refunded",
               "button button-small", "button-small button-secondary", "button button-danger", "desk-ok", "card"}
# Attributes a screen reader or a browser shows to people.
READ_ATTRIBUTES = re.compile(r'\b(?:aria-label|title|alt|placeholder|data-label)="([^"]*)"')
HOLE = "\x00"  # stands where a Jinja tag or expression was
GETTEXT = {"_", "gettext", "ngettext", "pgettext", "npgettext"}


def untranslated_text(source: str) -> list[str]:
    """Words of a template's literal text that are outside {% trans %} blocks and gettext calls."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    pieces, in_trans, tag, words = [], False, [], []
    calls: list[int] = []  # the bracket depth at which each open gettext call started
    depth, previous = 0, ""
    for _, kind, value in env.lex(source):
        if kind == "block_begin":
            tag = []
        elif kind == "name" and not tag:
            tag.append(value)
            if value == "trans":
                in_trans = True
            elif value == "endtrans":
                in_trans = False
        elif kind == "operator" and value == "(":
            depth += 1
            if previous in GETTEXT:
                calls.append(depth)
        elif kind == "operator" and value == ")":
            if calls and calls[-1] == depth:
                calls.pop()
            depth -= 1
        elif kind == "string" and not calls and " " in value and _has_words(value) \
                and ast.literal_eval(value).strip() not in CLASS_NAMES:
            words.append(ast.literal_eval(value))  # a sentence in an expression, e.g. {{ 'Register' if a else 'Join the waitlist' }}
        previous = value if kind == "name" else ""
        if kind == "data" and not in_trans:
            pieces.append(value)
        else:
            pieces.append(HOLE)
    text = "".join(pieces)
    words += [value for value in READ_ATTRIBUTES.findall(text) if _has_words(value) and value not in ALLOWED_FRAGMENTS]
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", text)
    text = re.sub(r"&[#\w]+;", " ", text)
    for chunk in text.split(HOLE):
        if _has_words(chunk) and chunk.strip() not in ALLOWED_FRAGMENTS:
            words.append(chunk.strip())
    return words


def _has_words(chunk: str) -> bool:
    return any(re.search(r"[^\W\d_]{2,}", word) and word not in ALLOWED_WORDS
               for word in re.split(r"[\s.,:;!?()\[\]/·—–\-\"'“”]+", chunk.replace(HOLE, " ")))


@pytest.mark.parametrize("path", [p for p in ATTENDEE_FACING if str(p.relative_to(TEMPLATES)) not in STAFF_ONLY],
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_attendee_facing_templates_mark_every_word_for_translation(path):
    assert untranslated_text(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", BACK_OFFICE, ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_back_office_templates_mark_every_word_for_translation(path):
    assert untranslated_text(path.read_text(encoding="utf-8")) == []


def test_the_checker_finds_plain_words_and_lets_marked_ones_through():
    assert untranslated_text("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated_text('<a aria-label="Close" href="{{ url }}">×</a>') == ["Close"]
    assert untranslated_text("<p>{{ _('Hello') }} · {{ name }}:</p>{% trans %}Bye {{ x }}{% endtrans %}") == []
    assert untranslated_text("<style>.a { color: red }</style><b>{{ 3 }}</b> Convene") == []
    assert untranslated_text("{{ 'Join us' if a else _('Register now') }}") == ["Join us"]
    assert untranslated_text("<p class=\"{{ ' button button-secondary' if a }}\">") == []
    assert untranslated_text("{{ ngettext('%(num)d seat left', '%(num)d seats left', n) }}") == []


@pytest.fixture(scope="module")
def fresh_template(tmp_path_factory) -> Path:
    """The messages a fresh extraction finds (what `make translations-extract` writes)."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "--no-location",
                    "-k", "lazy_gettext", "-k", "_l", "-k", "N_", "-o", str(out), "."],
                   cwd=ROOT, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def fresh_admin_template(tmp_path_factory) -> Path:
    """The back office's messages a fresh extraction finds (what `make translations-extract` writes to admin.pot)."""
    out = tmp_path_factory.mktemp("pot") / "admin.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel-admin.cfg", "--no-location",
                    "-k", "lazy_gettext", "-k", "_l", "-k", "N_", "-o", str(out), "."],
                   cwd=ROOT, check=True, capture_output=True)
    return out


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_catalogue_has_every_string_translated_and_nothing_fuzzy(fresh_template, lang):
    wanted = _catalog(fresh_template)
    shipped = _catalog(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", locale=lang)
    missing = [m.id for m in wanted if m.id and m.id not in shipped]
    assert missing == [], f"{lang}: run `make translations` and translate these"
    fuzzy = [m.id for m in shipped if m.id and m.fuzzy]
    assert fuzzy == []
    if lang in TRANSLATED:
        empty = [m.id for m in shipped if m.id and m.id in wanted and not all(
            (m.string if isinstance(m.string, tuple) else (m.string,)))]
        assert empty == [], f"{lang}: untranslated"


def test_arabic_has_all_six_plural_forms():
    catalog = _catalog(TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po", locale="ar")
    assert catalog.num_plurals == 6
    plurals = [m for m in catalog if m.id and m.pluralizable]
    assert plurals, "the catalogue has plural messages"
    for message in plurals:
        assert len(message.string) == 6 and all(message.string), message.id


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_keep_every_placeholder(lang):
    catalog = _catalog(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", locale=lang)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(re.findall(r"%\(\w+\)[sd]|\{\w+\}", " ".join(ids))) - {"%(num)d"}
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            found = set(re.findall(r"%\(\w+\)[sd]|\{\w+\}", string)) - {"%(num)d"}
            assert found == wanted, (lang, message.id, string)


def _first_method(config: Path, path: Path) -> str | None:
    """The extraction method the first matching pattern of a babel config gives a file (as pybabel picks it)."""
    from babel.messages.extract import pathmatch
    from babel.messages.frontend import parse_mapping_cfg

    with config.open(encoding="utf-8") as handle:
        method_map, _ = parse_mapping_cfg(handle)
    relative = path.relative_to(ROOT).as_posix()
    return next((method for pattern, method in method_map if pathmatch(pattern, relative)), None)


@pytest.mark.parametrize("path", BACK_OFFICE + BACK_OFFICE_PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_back_office_files_feed_only_the_admin_catalogue(path):
    assert _first_method(ROOT / "babel.cfg", path) == "ignore"
    assert _first_method(ROOT / "babel-admin.cfg", path) in {"python", "jinja2"}


def test_attendee_files_still_feed_the_messages_catalogue():
    for path in (TEMPLATES / "public" / "register.html", TEMPLATES / "email" / "confirmation.txt",
                 TEMPLATES / "printing" / "agendas.html", ROOT / "convene" / "public" / "forms.py"):
        assert _first_method(ROOT / "babel.cfg", path) in {"python", "jinja2"}, path
        assert _first_method(ROOT / "babel-admin.cfg", path) is None, path


def test_shipped_admin_template_is_up_to_date(fresh_admin_template, fresh_template):
    fresh = {m.id for m in _catalog(fresh_admin_template) if m.id}
    shipped = {m.id for m in _catalog(TRANSLATIONS / "admin.pot") if m.id}
    assert sorted(fresh - shipped, key=str) == [], "run `make translations`"
    assert sorted(shipped - fresh, key=str) == [], "run `make translations`"
    assert "Log of changes" in fresh  # a back-office heading...
    assert "Log of changes" not in {m.id for m in _catalog(fresh_template)}  # ...that the attendee catalogue leaves out


def test_each_admin_catalogue_knows_every_back_office_string(fresh_admin_template):
    wanted = _catalog(fresh_admin_template)
    catalogues = sorted(TRANSLATIONS.glob("*/LC_MESSAGES/admin.po"))
    assert TRANSLATIONS / "en" / "LC_MESSAGES" / "admin.po" in catalogues
    for path in catalogues:
        shipped = _catalog(path, locale=path.parent.parent.name)
        assert [m.id for m in wanted if m.id and m.id not in shipped] == [], f"{path}: run `make translations`"
        assert [m.id for m in shipped if m.id and m.fuzzy] == [], path
