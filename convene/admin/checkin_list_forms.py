"""Forms of the check-in lists page: a list for a session, a site visit or a named gathering, and its limits."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length, Optional

from convene.forms import ConveneForm, MultiCheckboxField, choice_list
from convene.models import CheckinList, Convening, ListKind, ProgramSession, Role, SiteVisit
from convene.services.checkin_lists import NAME_MAX, visit_label

NONE = 0


class CheckinListForm(ConveneForm):
    """What a list is for and whom it admits; the session or visit is chosen once, when the list is added."""

    name = StringField(_l("Name"), [Optional(), Length(max=NAME_MAX)],
                       description=_l("Shown on the scanning page. Left empty, a session's or visit's own name."))
    session_id = SelectField(_l("Session"), coerce=int, default=NONE)
    everyone = BooleanField(_l("Everyone confirmed may come in, not only those signed up"),
                            description=_l("Sessions that take no sign-ups are always for everyone."))
    site_visit_id = SelectField(_l("Site visit"), coerce=int, default=NONE)
    ticket_type_ids = MultiCheckboxField(_l("Only these ticket types"), coerce=int,
                                         description=_l("None ticked: every ticket type."))
    roles = MultiCheckboxField(_l("Only these roles"), description=_l("None ticked: every role."))

    def fill(self, convening: Convening, sessions: list[ProgramSession], visits: list[SiteVisit]) -> None:
        self.session_id.choices = choice_list(
            [(NONE, _l("— choose a session —"))]
            + [(s.id, f"{convening.local(s.starts_at):%a %d %b %H:%M} · {s.title}") for s in sessions])
        self.site_visit_id.choices = choice_list(
            [(NONE, _l("— choose a site visit —"))] + [(v.id, visit_label(v)) for v in visits])
        self.ticket_type_ids.choices = choice_list(
            (t.id, t.name + (" (hidden)" if t.hidden else "")) for t in convening.ticket_types)
        self.roles.choices = choice_list((r.value, r.label) for r in Role)

    @classmethod
    def for_list(cls, checkin_list: CheckinList) -> CheckinListForm:
        return cls(data={"name": checkin_list.name, "everyone": checkin_list.everyone,
                         "session_id": checkin_list.session_id or NONE,
                         "site_visit_id": checkin_list.site_visit_id or NONE,
                         "ticket_type_ids": list(checkin_list.ticket_type_ids or []),
                         "roles": list(checkin_list.roles or [])})

    def list_data(self, kind: str) -> dict:
        return {"kind": kind, "name": self.name.data, "session_id": self.session_id.data or None,
                "site_visit_id": self.site_visit_id.data or None, "everyone": self.everyone.data,
                "ticket_type_ids": self.ticket_type_ids.data or [], "roles": self.roles.data or []}


KIND_CHOICES = {ListKind.SESSION.value: _l("a session"), ListKind.VISIT.value: _l("a site visit"),
                ListKind.GATHERING.value: _l("a gathering")}
