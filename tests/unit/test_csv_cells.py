"""Spreadsheet cells: formulas are defused, phone numbers stay as typed."""
import pytest

from convene.services.exports import csv_safe


@pytest.mark.parametrize("typed", ["+1 315 555 5707", "+44 (0)20 7946 0958", "+1-416-555-0199", "+33.1.23.45.67.89"])
def test_a_phone_number_with_a_plus_is_not_quoted(typed):
    assert csv_safe(typed) == typed


@pytest.mark.parametrize("typed", ["=HYPERLINK(\"http://x\")", "+1+cmd|' /C calc'!A0", "+SUM(A1)", "-2+3", "@x",
                                   "+", "+ 1", "\t=1"])
def test_anything_else_starting_like_a_formula_is_quoted(typed):
    assert csv_safe(typed) == "'" + typed
