"""What a badge shows (plain data) and where each part goes on it, fitted to its box."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from convene.printing.fit import Fitted, fit_text
from convene.printing.layouts import Layout

# Ribbon colours when a convening sets none for a role; all carry white text at WCAG AA contrast.
DEFAULT_ROLE_COLOURS = {
    "delegate": "#0b6e4f",
    "speaker": "#b42318",
    "facilitator": "#6941c6",
    "staff": "#1d2430",
    "host": "#175cd3",
    "ta_provider": "#b54708",
}
FALLBACK_COLOUR = "#475467"
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


def role_colour(role: str, overrides: dict | None = None) -> str:
    """The ribbon colour for a role: the convening's own when it is a valid #rgb/#rrggbb, else the default.

    The value ends up in a style attribute, so anything that is not a plain hex colour is refused.
    """
    chosen = (overrides or {}).get(role)
    if isinstance(chosen, str) and _HEX_COLOUR.fullmatch(chosen.strip()):
        return chosen.strip().lower()
    return DEFAULT_ROLE_COLOURS.get(role, FALLBACK_COLOUR)


def ink_for(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (relative luminance, WCAG)."""
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = []
    for i in (0, 2, 4):
        c = int(value[i:i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


@dataclass(frozen=True)
class VisitLine:
    """One site visit as printed on the back of a badge."""

    when: str  # e.g. "Tue 14 Oct, 09:00–11:00"
    host: str
    meeting_point: str = ""
    departs: str = ""  # local time, e.g. "08:40"


@dataclass(frozen=True)
class BadgeData:
    """Everything a badge prints, as plain values (no ORM objects: this crosses process boundaries)."""

    registration_id: int
    checkin_token: str
    name: str
    full_name: str = ""
    pronouns: str = ""
    organization: str = ""
    delegation: str = ""
    role_label: str = ""
    role_colour: str = DEFAULT_ROLE_COLOURS["delegate"]
    convening: str = ""
    visits: tuple[VisitLine, ...] = ()
    back_note: str = ""  # shown on the back when the person has no site visits
    # The back is read by its wearer: its language, and its fixed words already in it ({place}, {time} filled here).
    lang: str = "en"
    back_heading: str = "Your site visits"
    meet_at: str = "Meet at {place}"
    meet_at_departs: str = "Meet at {place}, departs {time}"
    departs_at: str = "Departs {time}"
    more_visits: tuple[str, ...] = ()  # "and 1 more: see your registration page", for 1, 2, ... more


@dataclass(frozen=True)
class Box:
    """A rectangle inside a badge, in points from the badge's top-left corner."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Design:
    """Where each part of a badge goes and how large its text may be, for one badge size."""

    width: float
    height: float
    header: Box
    header_max: float
    name: Box
    name_max: float
    name_lines: int
    subline: Box
    subline_max: float
    organization: Box
    organization_max: float
    delegation: Box
    delegation_max: float
    qr: Box
    ribbon: Box
    ribbon_label: Box  # inside the ribbon, which starts at its own top-left corner
    ribbon_max: float
    back_title_max: float
    back_visit_max: float
    back_visits: int

    def boxes(self) -> list[tuple[str, Box]]:
        """CSS class and box of every positioned part, for the document's stylesheet."""
        back = Box(0, 0, self.width, self.ribbon.y)
        return [
            ("header", self.header), ("name", self.name), ("subline", self.subline),
            ("organization", self.organization), ("delegation", self.delegation), ("qr", self.qr),
            ("ribbon", self.ribbon), ("ribbon-label", self.ribbon_label), ("back", back),
        ]


def design_for(layout: Layout) -> Design:
    """The badge design for a layout's badge size: landscape 4″×3″ or portrait (4″×6″, A6)."""
    w, h = layout.badge_width, layout.badge_height
    if not layout.portrait:
        pad, qr, ribbon_h = 10.0, 76.0, 30.0
        inner = w - 2 * pad
        lower_y = 104.0
        return Design(
            width=w, height=h,
            header=Box(pad, 8, inner, 12), header_max=7.5,
            name=Box(pad, 22, inner, 62), name_max=40, name_lines=2,
            subline=Box(pad, 86, inner, 14), subline_max=10,
            organization=Box(pad, lower_y + 2, inner - qr - 8, 34), organization_max=12,
            delegation=Box(pad, lower_y + 40, inner - qr - 8, 16), delegation_max=10,
            qr=Box(w - pad - qr, lower_y - 2, qr, qr),
            ribbon=Box(0, h - ribbon_h, w, ribbon_h), ribbon_label=Box(8, 3, w - 16, ribbon_h - 6), ribbon_max=15,
            back_title_max=11, back_visit_max=10, back_visits=3,
        )
    pad, qr, ribbon_h = 14.0, 100.0, 48.0
    inner = w - 2 * pad
    qr_y = h - ribbon_h - 10 - qr
    return Design(
        width=w, height=h,
        header=Box(pad, 12, inner, 16), header_max=10,
        name=Box(pad, 34, inner, 128), name_max=58, name_lines=3,
        subline=Box(pad, 166, inner, 18), subline_max=13,
        organization=Box(pad, 188, inner, 42), organization_max=16,
        delegation=Box(pad, 232, inner, 18), delegation_max=12,
        qr=Box((w - qr) / 2, qr_y, qr, qr),
        ribbon=Box(0, h - ribbon_h, w, ribbon_h), ribbon_label=Box(10, 4, w - 20, ribbon_h - 8), ribbon_max=22,
        back_title_max=15, back_visit_max=13, back_visits=5,
    )


@dataclass(frozen=True)
class BackVisit:
    when: Fitted
    host: Fitted
    meeting: Fitted


@dataclass
class BadgeView:
    """A badge ready for the template: the data plus fitted text for every box."""

    data: BadgeData
    header: Fitted
    name: Fitted
    subline: Fitted
    organization: Fitted
    delegation: Fitted
    ribbon: Fitted
    ribbon_colour: str
    ribbon_ink: str
    back_title: Fitted
    back_visits: list[BackVisit] = field(default_factory=list)
    back_more: int = 0
    back_more_text: str = ""
    back_note: Fitted | None = None


def subline_text(badge: BadgeData) -> str:
    """The small line under the name: the full name when the badge name differs, and the pronouns."""
    parts = []
    if badge.full_name and badge.full_name.strip() != badge.name.strip():
        parts.append(badge.full_name)
    if badge.pronouns:
        parts.append(badge.pronouns)
    return " · ".join(parts)


def badge_view(badge: BadgeData, design: Design) -> BadgeView:
    """Fit every text of a badge to its box."""
    d = design
    colour = badge.role_colour if _HEX_COLOUR.fullmatch(badge.role_colour or "") else FALLBACK_COLOUR
    view = BadgeView(
        data=badge,
        header=fit_text(badge.convening, d.header.w, d.header.h, max_size=d.header_max, min_size=5),
        name=fit_text(badge.name, d.name.w, d.name.h, max_size=d.name_max, min_size=7, max_lines=d.name_lines,
                      line_height=1.2),
        subline=fit_text(subline_text(badge), d.subline.w, d.subline.h, max_size=d.subline_max, min_size=5),
        organization=fit_text(badge.organization, d.organization.w, d.organization.h, max_size=d.organization_max,
                              min_size=5, max_lines=3),
        delegation=fit_text(badge.delegation, d.delegation.w, d.delegation.h, max_size=d.delegation_max,
                            min_size=5),
        ribbon=fit_text(badge.role_label.upper(), d.ribbon_label.w, d.ribbon_label.h, max_size=d.ribbon_max,
                        min_size=6),
        ribbon_colour=colour,
        ribbon_ink=ink_for(colour),
        back_title=fit_text(badge.back_heading if badge.visits else badge.convening, d.width - 24, 20,
                            max_size=d.back_title_max, min_size=6),
    )
    inner = d.width - 24
    for visit in badge.visits[:d.back_visits]:
        if visit.meeting_point and visit.departs:
            meeting = badge.meet_at_departs.format(place=visit.meeting_point, time=visit.departs)
        elif visit.meeting_point:
            meeting = badge.meet_at.format(place=visit.meeting_point)
        else:
            meeting = badge.departs_at.format(time=visit.departs) if visit.departs else ""
        size = d.back_visit_max
        view.back_visits.append(BackVisit(
            when=fit_text(visit.when, inner, size * 1.3, max_size=size, min_size=5),
            host=fit_text(visit.host, inner, size * 1.3, max_size=size, min_size=5),
            meeting=fit_text(meeting, inner, size * 2.2, max_size=size * 0.8, min_size=5, max_lines=2),
        ))
    view.back_more = max(0, len(badge.visits) - d.back_visits)
    if view.back_more:
        texts = badge.more_visits
        view.back_more_text = (texts[view.back_more - 1] if len(texts) >= view.back_more
                               else f"and {view.back_more} more: see your registration page")
    if not badge.visits and badge.back_note:
        view.back_note = fit_text(badge.back_note, inner, d.height / 3, max_size=d.back_visit_max, min_size=5,
                                  max_lines=4)
    return view
