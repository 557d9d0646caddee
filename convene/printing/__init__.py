"""Printing with WeasyPrint: badges and site-visit rosters from plain data (no Flask, no database).

- `badges`: what a badge shows (BadgeData) and the design each layout's badges follow
- `layouts`: sheet layouts (Avery 5392, 4″×6″, A6 on A4) and duplex mirroring
- `fit`: shrink-to-fit text sizes, computed in Python
- `documents`: HTML from templates/printing/ and PDF bytes from it; page-1 previews
- `batch`: big batches in chunks in a process pool, merged with pypdf
- `fetcher`: WeasyPrint may fetch the project's static files and nothing else
"""
from convene.printing.badges import BadgeData, VisitLine, role_colour
from convene.printing.layouts import DEFAULT_LAYOUT, LAYOUTS, Layout
from convene.printing.rosters import RosterData, RosterPerson

__all__ = [
    "DEFAULT_LAYOUT", "LAYOUTS", "BadgeData", "Layout", "RosterData", "RosterPerson", "VisitLine", "role_colour",
]
