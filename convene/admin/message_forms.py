"""The compose form: subject and body per language, and the recipient filter."""
from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from convene.extensions import db
from convene.forms import ConveneForm, DateTimeLocalField, MultiCheckboxField, choice_list
from convene.models import (
    Convening,
    Message,
    OrderStatus,
    ProgramSession,
    Role,
    SessionSignup,
    SiteVisit,
    Status,
    VisitSlot,
)
from convene.models.payments import ORDER_STATUS_LABELS
from convene.models.registrations import ROLE_LABELS, STATUS_LABELS
from convene.services import messages as service
from convene.services.message_text import PLACEHOLDERS

FILTER_FIELDS = ("statuses", "ticket_ids", "delegation_ids", "roles", "languages", "site_visit_ids", "session_ids",
                 "payment_statuses", "checkins")


def _visit_choices(convening: Convening) -> list:
    rows = db.session.execute(
        sa.select(SiteVisit).join(VisitSlot, VisitSlot.id == SiteVisit.slot_id)
        .where(SiteVisit.convening_id == convening.id).order_by(VisitSlot.starts_at, SiteVisit.id)).scalars().all()
    return [(str(v.id), f"{v.slot.label}: {v.host.name}") for v in rows]


def _session_choices(convening: Convening) -> list:
    """Sessions people sign up for (or were placed in): the ones a filter by sign-up can name."""
    rows = db.session.execute(
        sa.select(ProgramSession).where(ProgramSession.convening_id == convening.id, ProgramSession.id.in_(
            sa.select(SessionSignup.session_id))).order_by(ProgramSession.starts_at, ProgramSession.id)
    ).scalars().all()
    return [(str(s.id), f"{convening.local(s.starts_at):%a %H:%M} · {s.title}") for s in rows]


def _checkin_choices(convening: Convening) -> list:
    """Each check-in list twice: who arrived on it, and who it is for and has not arrived yet."""
    from convene.services.checkin import lists_of

    choices = []
    for item in lists_of(convening.id):
        choices.append((service.checkin_choice(item.id, service.ARRIVED), _l("%(name)s: arrived", name=item.name)))
        choices.append((service.checkin_choice(item.id, service.NOT_ARRIVED), _l("%(name)s: not arrived yet",
                                                                                 name=item.name)))
    return choices


def message_form(convening: Convening, message: Message | None = None, formdata=True):
    """The compose form for this convening: one subject and body per enabled language, then who gets it."""
    languages = service.languages_of(convening)
    several = len(languages) > 1
    names = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)

    class MessageForm(ConveneForm):
        statuses = MultiCheckboxField(_l("Status"), choices=choice_list((s.value, STATUS_LABELS[s]) for s in Status),
                                      default=[Status.CONFIRMED.value])
        ticket_ids = MultiCheckboxField(_l("Ticket type"), coerce=int, choices=choice_list(
            (t.id, t.name) for t in convening.ticket_types), description=_l("None ticked: every ticket type."))
        delegation_ids = MultiCheckboxField(_l("Delegation"), coerce=int, choices=choice_list(
            [(d.id, d.name) for d in convening.delegations] + [(service.NO_DELEGATION, _l("No delegation"))]),
            description=_l("None ticked: everyone, in a delegation or not."))
        roles = MultiCheckboxField(_l("Role"), choices=choice_list((r.value, ROLE_LABELS[r]) for r in Role),
                                   description=_l("None ticked: every role."))
        site_visit_ids = MultiCheckboxField(_l("Site visit (published)"), coerce=int, choices=choice_list(
            _visit_choices(convening)), description=_l("People whose published plan has one of these visits."))
        session_ids = MultiCheckboxField(_l("Signed up for"), coerce=int,
                                         choices=choice_list(_session_choices(convening)))
        payment_statuses = MultiCheckboxField(_l("Payment"), choices=choice_list(
            [(s.value, ORDER_STATUS_LABELS[s]) for s in OrderStatus] + [(service.NO_ORDER, _l("Nothing to pay"))]))
        checkins = MultiCheckboxField(_l("Check-in"), choices=choice_list(_checkin_choices(convening)),
                                      description=_l("None ticked: whoever has arrived or not. “Not arrived yet”: "
                                                  "the people the list is for who are not checked in on it."))
        references = TextAreaField(_l("Only these references"), validators=[Optional(), Length(max=20_000)],
                                   description=_l("Paste references, one per line or separated by commas; the other "
                                               "choices still apply."))
        copy_delegation_leads = BooleanField(_l("Send a copy to the lead of each delegation it reaches"))

    if several:
        MessageForm.languages = MultiCheckboxField(
            _l("Language"), choices=choice_list((c, service.language_name(c)) for c in languages),
            description=_l("None ticked: everyone. People who chose no language read %(language_name)s.",
                           language_name=service.language_name(languages[0])))
    for code in languages:
        suffix = f" ({service.language_name(code)})" if several else ""
        setattr(MessageForm, f"subject_{code}", StringField(_l("Subject%(suffix)s",
                                                               suffix=suffix), validators=[Length(max=300)]))
        setattr(MessageForm, f"body_{code}", TextAreaField(
            _l("Message%(suffix)s",
               suffix=suffix), validators=[Length(max=50_000)], render_kw={"rows": 12, "lang": code},
            description=_l("A blank line starts a paragraph; **bold**; [words](https://...) for a link. Placeholders: "
                           "%(names)s.", names=names)))
    data = None
    if message is not None:
        chosen = service.RecipientFilter.from_json(message.filter)
        data = {name: getattr(chosen, name) for name in FILTER_FIELDS}
        data["references"] = "\n".join(chosen.references)
        data["copy_delegation_leads"] = message.copy_delegation_leads
        for code in languages:
            data[f"subject_{code}"] = message.subjects.get(code, "")
            data[f"body_{code}"] = message.bodies.get(code, "")
    form = MessageForm(formdata=None, data=data) if formdata is None else MessageForm(data=data)
    form.language_codes = languages
    return form


def draft_from(form) -> service.MessageDraft:
    """What the form says, as the service takes it."""
    values = {name: getattr(form, name).data or [] for name in FILTER_FIELDS if hasattr(form, name)}
    recipient_filter = service.RecipientFilter(
        **values, references=service.parse_references(form.references.data or ""))
    return service.MessageDraft(
        subjects={code: getattr(form, f"subject_{code}").data or "" for code in form.language_codes},
        bodies={code: getattr(form, f"body_{code}").data or "" for code in form.language_codes},
        recipient_filter=recipient_filter, copy_delegation_leads=bool(form.copy_delegation_leads.data))


class SendForm(ConveneForm):
    """Send now, or at a time in the convening's time zone."""

    send_at = DateTimeLocalField(_l("Send at (the convening's local time)"), validators=[Optional()])


class TestForm(ConveneForm):
    as_registration = SelectField(_l("As"), coerce=int, validate_choice=False)
