"""Folding text for search and sort: case and accents never matter, in any script."""
import importlib.util
from pathlib import Path

import pytest

from convene.text import name_sort_key, search_key, search_text

SAMPLES = [
    ("Álvarez", "alvarez"), ("ÁLVAREZ", "alvarez"), ("Ñúñez", "nunez"), ("Šehić", "sehic"), ("Đặng", "dang"),
    ("Øvergård", "overgard"), ("Łukasz", "lukasz"), ("Ærø", "aero"), ("Œuvre", "oeuvre"), ("Þórsdóttir", "thorsdottir"),
    ("Straße", "strasse"), ("İSTANBUL", "istanbul"), ("Işık", "isik"), ("Ðorđe", "dorde"), ("ﬁnn", "finn"),
    ("O’Brien", "o'brien"), ("Jean‐Luc", "jean-luc"), ("  Ana \t María\n", "ana maria"), ("", ""), (None, ""),
    # Other scripts keep their letters, lower-cased where they have case.
    ("Иванов", "иванов"), ("ΣΩΚΡΆΤΗΣ", "σωκρατησ"), ("张伟", "张伟"), ("ገብረመድህን", "ገብረመድህን"),
    ("Ｔａｒｏ", "taro"),  # full-width Latin, as some Japanese keyboards type it
]


@pytest.mark.parametrize("typed, folded", SAMPLES)
def test_search_key_folds_case_accents_and_letters_nfkd_leaves_whole(typed, folded):
    assert search_key(typed) == folded


def test_arabic_and_hebrew_vowel_marks_and_tatweel_do_not_matter():
    assert search_key("مُحَمَّد") == search_key("محمد") == search_key("محـــمد") == "محمد"
    assert search_key("שָׁלוֹם") == search_key("שלום")


def test_search_text_joins_the_folded_parts_so_no_word_spans_two_fields():
    assert search_text("Ana", "Álvarez", "", "ana@x.org", None, "CNV-1") == "ana alvarez ana@x.org cnv-1"


def test_names_sort_a_to_z_by_family_then_given_name_whatever_the_accents():
    people = [("Young", "Zoe"), ("Álvarez", "Luis"), ("Đặng", "Thu"), ("Šehić", "Amra"), ("Ñúñez", "Eva"),
              ("Adams", "Bo"), ("Smith", "Al"), ("Smit", "Zoe"), ("alvarez", "Ana")]
    ordered = sorted(people, key=lambda p: name_sort_key(*p))
    assert ordered == [("Adams", "Bo"), ("alvarez", "Ana"), ("Álvarez", "Luis"), ("Đặng", "Thu"), ("Ñúñez", "Eva"),
                       ("Šehić", "Amra"), ("Smit", "Zoe"), ("Smith", "Al"), ("Young", "Zoe")]


def test_control_characters_cannot_forge_the_sort_separator():
    assert "\x1f" not in search_key("Smith\x1fAl") and name_sort_key("Smith\x1f", "Al").count("\x1f") == 1


def test_the_migration_backfills_with_the_same_keys_the_app_writes():
    path = Path(__file__).parents[2] / "migrations" / "versions" / "0009_registration_search_keys.py"
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    for typed, _ in SAMPLES + [("مُحَمَّد", ""), ("a\x1fb", "")]:
        assert migration._search_key(typed) == search_key(typed)


@pytest.mark.parametrize("text, shown", [
    ("\u200b", False), ("\u3164\u3164", False), ("\u2800", False), (" \u00a0\u2003", False), ("\u200f\u0651", False),
    ("محمد", True), ("👩\u200d💻", True), ("a\u200bb", True), ("-", True), ("ـ", True),
])
def test_has_visible_tells_text_that_shows_something_from_fillers_and_joiners(text, shown):
    from convene.text import has_visible

    assert has_visible(text) is shown
