"""Forms of the back office's printing area: which badges, on what stock."""
from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, SelectField, StringField
from wtforms.validators import Length, Optional, Regexp

from convene.forms import ConveneForm, choice_list
from convene.models import Convening, Role
from convene.printing import DEFAULT_LAYOUT, LAYOUTS
from convene.services.printing import SELECTIONS, BadgeFilter

ALL = ""
NO_DELEGATION = "none"


class BadgeBatchForm(ConveneForm):
    """Choose badges and a layout; read from the query string to preview, posted to make the PDF."""

    which = SelectField(_l("Badges"), choices=choice_list(SELECTIONS.items()), default="pending")
    delegation = SelectField(_l("Delegation"), default=ALL)
    ticket = SelectField(_l("Ticket type"), default=ALL)
    role = SelectField(_l("Role"), choices=choice_list([(ALL, _l("All roles"))] + [(r.value, r.label) for r in Role]),
                       default=ALL)
    reference = StringField(
        _l("One registration (reference)"), [Optional(), Length(max=16),
                                         Regexp(r"^\s*[A-Za-z0-9]{1,5}-[A-Za-z0-9]{3,10}\s*$",
                                                message=_l("Enter a reference like TOR-7K3QX."))],
        description=_l("Print a single badge, e.g. after fixing a typo."),
    )
    registration = HiddenField(validators=[Optional(), Regexp(r"^[0-9]{1,9}$")])
    layout = SelectField(_l("Layout"), choices=choice_list((key, layout.label) for key, layout in LAYOUTS.items()),
                         default=DEFAULT_LAYOUT)
    duplex = BooleanField(_l("Print backs too (site visits; duplex, long-edge flip)"))

    def fill_choices(self, convening: Convening) -> None:
        self.delegation.choices = choice_list(
            [(ALL, _l("All delegations")), (NO_DELEGATION, _l("No delegation"))]
            + [(str(d.id), d.name) for d in convening.delegations]
        )
        self.ticket.choices = choice_list([(ALL, _l("All ticket types"))]
                                          + [(str(t.id), t.name) for t in convening.ticket_types])

    def badge_filter(self) -> BadgeFilter:
        """The chosen badges as a service filter (call after validation)."""
        delegation = self.delegation.data or None
        if delegation not in (None, NO_DELEGATION):
            delegation = int(delegation)
        registration = self.registration.data
        return BadgeFilter(
            which=self.which.data,
            delegation=delegation,
            ticket_type_id=int(self.ticket.data) if self.ticket.data else None,
            role=self.role.data or "",
            registration_id=int(registration) if registration and re.fullmatch(r"[0-9]{1,9}", registration) else None,
            reference=(self.reference.data or "").strip().upper(),
        )

    def query_args(self) -> dict:
        """The choices as query-string arguments (for the preview image and links)."""
        args = {
            "which": self.which.data, "delegation": self.delegation.data, "ticket": self.ticket.data,
            "role": self.role.data, "reference": (self.reference.data or "").strip(),
            "registration": self.registration.data, "layout": self.layout.data,
            "duplex": "y" if self.duplex.data else "",
        }
        return {key: value for key, value in args.items() if value}
