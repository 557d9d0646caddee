"""Sheet layouts for badges: paper size, badge size and where each badge sits, in PDF points."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

INCH = 72.0
MM = 72.0 / 25.4

T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """A grid of equal badges on a sheet; `left`/`top` place the first one, gaps separate the rest."""

    key: str
    label: str
    page_width: float
    page_height: float
    badge_width: float
    badge_height: float
    columns: int
    rows: int
    left: float
    top: float
    gap_x: float = 0.0
    gap_y: float = 0.0

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    @property
    def portrait(self) -> bool:
        return self.badge_height > self.badge_width

    def origin(self, index: int, *, mirrored: bool = False) -> tuple[float, float]:
        """Top-left corner of slot `index` (row by row); mirrored swaps columns for the back of the sheet.

        Duplex printing flips the sheet about its long edge, so the badge printed in the left
        column on the front must have its back printed in the right column.
        """
        row, column = divmod(index, self.columns)
        if mirrored:
            column = self.columns - 1 - column
            # Reflect the grid about the page's centre line, so backs line up even with unequal side margins.
            left = self.page_width - self.left - self.columns * self.badge_width - (self.columns - 1) * self.gap_x
        else:
            left = self.left
        return (left + column * (self.badge_width + self.gap_x), self.top + row * (self.badge_height + self.gap_y))

    def cut_lines(self, *, mirrored: bool = False) -> tuple[list[float], list[float]]:
        """x positions of vertical and y positions of horizontal cut guides (badge edges)."""
        xs, ys = set(), set()
        for index in range(self.per_sheet):
            x, y = self.origin(index, mirrored=mirrored)
            xs.update((round(x, 3), round(x + self.badge_width, 3)))
            ys.update((round(y, 3), round(y + self.badge_height, 3)))
        # Lines on the paper's edge would not print; the sheet already ends there.
        xs = {x for x in xs if 0.5 < x < self.page_width - 0.5}
        ys = {y for y in ys if 0.5 < y < self.page_height - 0.5}
        return sorted(xs), sorted(ys)

    def check(self) -> None:
        """Raise ValueError when the grid does not fit on the sheet."""
        right = self.left + self.columns * self.badge_width + (self.columns - 1) * self.gap_x
        bottom = self.top + self.rows * self.badge_height + (self.rows - 1) * self.gap_y
        if right > self.page_width + 0.01 or bottom > self.page_height + 0.01:
            raise ValueError(f"layout {self.key} does not fit its sheet")


LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        # Avery 5392 / 74459 name badge inserts: 2 columns × 3 rows of 4″×3″ cards on US Letter,
        # 1″ top and bottom margins, 0.25″ side margins, no gutters (the cards are perforated).
        Layout("avery-5392", "Avery 5392 / 74459 — 4″×3″, 6 per US Letter sheet",
               8.5 * INCH, 11 * INCH, 4 * INCH, 3 * INCH, 2, 3, 0.25 * INCH, 1 * INCH),
        # One 4″×6″ portrait badge per page, for thermal and direct badge printers.
        Layout("badge-4x6", "4″×6″ single badges (badge printers)",
               4 * INCH, 6 * INCH, 4 * INCH, 6 * INCH, 1, 1, 0, 0),
        # A6 portrait badges, 2 × 2 on A4 (210×297 mm): edge to edge across, 0.5 mm top and bottom.
        Layout("a6-on-a4", "A6 — 4 per A4 sheet",
               210 * MM, 297 * MM, 105 * MM, 148 * MM, 2, 2, 0, 0.5 * MM),
    )
}
DEFAULT_LAYOUT = "avery-5392"

for _layout in LAYOUTS.values():
    _layout.check()


@dataclass(frozen=True)
class Slot(Generic[T]):
    """One badge position on a sheet and what goes there (None leaves it blank)."""

    x: float
    y: float
    item: T | None


@dataclass(frozen=True)
class Sheet(Generic[T]):
    """One printed page: the fronts of a sheet of badges, or their backs."""

    side: str  # "front" or "back"
    slots: tuple[Slot[T], ...]
    cut_x: tuple[float, ...]
    cut_y: tuple[float, ...]


def sheets(items: list[T], layout: Layout, *, duplex: bool = False, cut_guides: bool = True) -> list[Sheet[T]]:
    """Lay items out sheet by sheet; with duplex each front is followed by its mirrored back."""
    pages: list[Sheet[T]] = []
    per = layout.per_sheet
    for start in range(0, len(items), per):
        chunk = items[start:start + per]
        for side in ("front", "back") if duplex else ("front",):
            mirrored = side == "back"
            slots = tuple(
                Slot(*layout.origin(index, mirrored=mirrored), chunk[index] if index < len(chunk) else None)
                for index in range(per)
            )
            cut_x, cut_y = layout.cut_lines(mirrored=mirrored) if cut_guides else ([], [])
            pages.append(Sheet(side, slots, tuple(cut_x), tuple(cut_y)))
    return pages
