"""The message markup and placeholders: what organizers write becomes safe HTML and plain text."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convene.services.message_text import TemplateError, fill_line, problems, render_html, render_text

VALUES = {"given_name": "Amina", "manage_link": "https://convene.example/c/x/manage/tok?a=1&b=2",
          "site_visits": "Tue 09:00 · Library\nTue 14:00 · Clinic"}


def test_paragraphs_line_breaks_bold_and_links():
    html = render_html("Hello {given_name},\n\n**Bring** your plan.\nSee https://example.org/plan.\n\n"
                       "[Your page]({manage_link}) · [mail](mailto:team@example.org)", VALUES)
    assert html == (
        "<p>Hello Amina,</p>\n"
        "<p><strong>Bring</strong> your plan.<br>\n"
        "See <a href=\"https://example.org/plan\">https://example.org/plan</a>.</p>\n"
        "<p><a href=\"https://convene.example/c/x/manage/tok?a=1&amp;b=2\">Your page</a> · "
        "<a href=\"mailto:team@example.org\">mail</a></p>")


def test_plain_text_keeps_the_words_and_writes_links_out():
    text = render_text("Hello {given_name},\n\n**Bring** it.\n\n[Your page]({manage_link})", VALUES)
    assert text == "Hello Amina,\n\nBring it.\n\nYour page (https://convene.example/c/x/manage/tok?a=1&b=2)"


def test_a_multiline_placeholder_keeps_its_lines_and_braces_can_be_written():
    assert "Library<br>\nTue 14:00" in render_html("{site_visits}", VALUES)
    assert render_text("{{literal}} and }}", {}) == "{literal} and }"


@pytest.mark.parametrize("text, expected", [
    ("Hello {first_name}", "{first_name} is not a placeholder"),
    ("Hello {given_name", "has no partner"),
    ("Hello given_name}", "has no partner"),
    ("Hello {}", "{} is not a placeholder"),
])
def test_unknown_placeholders_and_unbalanced_braces_are_named(text, expected):
    [problem] = problems(text)
    assert expected in problem
    with pytest.raises(TemplateError):
        render_html(text, {})


def test_only_safe_link_targets_become_links():
    html = render_html("[a](javascript:alert(1)) [b](data:text/html,x) [c]({given_name})",
                       {"given_name": "javascript:alert(2)"})
    assert "href" not in html and "javascript:alert(2)" in html


@given(st.text(max_size=60))
def test_any_value_is_escaped_and_never_becomes_markup(value):
    html = render_html("Hi {given_name}, [page]({manage_link})", {"given_name": value, "manage_link": "https://x.org/"})
    assert html.count("<a ") == 1 and "<strong>" not in html and "<script" not in html.lower()
    assert fill_line("For {given_name}", {"given_name": value}) == " ".join(f"For {value}".split())
