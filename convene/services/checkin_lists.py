"""Managing check-in lists beside the entrance: a session, a site visit (the bus), a named gathering.

Who is on a list is asked in one place, `convene.services.checkin.members_query`, so the scanning
page, the lists page, the live numbers and the reports agree. This module is the one place lists
change: add one with its limits checked (a session that takes no sign-ups is always for
everyone), rename it or change its limits, and delete it only once its check-ins are confirmed gone.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.models import (
    Checkin,
    CheckinList,
    CheckinScan,
    Convening,
    ListKind,
    ProgramSession,
    Registration,
    Role,
    SiteVisit,
    TicketType,
)
from convene.services import checkin
from convene.services.audit import name_action
from convene.services.db import lock, unit_of_work
from convene.services.previews import Deletion, Effect, digest, plural

NAME_MAX = 120
ADDED_KINDS = (ListKind.SESSION, ListKind.VISIT, ListKind.GATHERING)  # the entrance comes with the convening


# ---------------------------------------------------------------- who is on a list


def expected_conditions(checkin_list: CheckinList) -> list:
    """WHERE clauses for the people a list expects: the members `checkin.members_query` names (confirmed)."""
    return [Registration.id.in_(checkin.members_query(checkin_list))]


def expected_count(checkin_list: CheckinList) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(checkin.members_query(checkin_list).subquery()))


def describe_rule(checkin_list: CheckinList, tickets: Mapping[int, str] | None = None) -> str:
    """Who the list is for, in one sentence for the lists page and the scanning page."""
    kind = checkin_list.kind
    if kind == ListKind.SESSION:
        title = checkin_list.session.title if checkin_list.session else "the session"
        who = (f"Everyone confirmed, at “{title}”" if checkin_list.everyone
               else f"People signed up for “{title}”, and its presenters")
    elif kind == ListKind.VISIT:
        who = f"People placed on the site visit to {visit_label(checkin_list.site_visit)}" \
            if checkin_list.site_visit else "People placed on the site visit"
    else:
        who = "Everyone confirmed"
    limits = []
    if checkin_list.ticket_type_ids:
        names = [(tickets or {}).get(t, f"ticket {t}") for t in checkin_list.ticket_type_ids]
        limits.append("tickets: " + ", ".join(names))
    if checkin_list.roles:
        labels = dict((r.value, r.label) for r in Role)
        limits.append("roles: " + ", ".join(labels.get(r, r) for r in checkin_list.roles))
    return who + (f" (only {'; '.join(limits)})" if limits else "") + "."


def visit_label(visit: SiteVisit) -> str:
    return f"{visit.host.name} · {visit.slot.label}"


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class ListSummary:
    """One row of the lists page."""

    checkin_list: CheckinList
    rule: str
    expected: int
    arrived: int


def list_summaries(convening: Convening) -> list[ListSummary]:
    """Every list with who it is for and how many arrived of how many expected."""
    lists = checkin.lists_of(convening.id)
    arrived = dict(db.session.execute(
        sa.select(Checkin.list_id, sa.func.count(Checkin.id))
        .where(Checkin.list_id.in_([item.id for item in lists]), Checkin.reverted_at.is_(None))
        .group_by(Checkin.list_id)
    ).all()) if lists else {}
    tickets = {t.id: t.name for t in convening.ticket_types}
    return [ListSummary(item, describe_rule(item, tickets), expected_count(item), arrived.get(item.id, 0))
            for item in lists]


def checkin_list_of(convening_id: int, list_id: int) -> CheckinList:
    """A list of this convening, or NotFound."""
    return checkin.get_list(list_id, convening_id)


# ---------------------------------------------------------------- writing


def _text(value) -> str:
    return " ".join(str(value or "").split())


def _clean_limits(convening: Convening, ticket_type_ids: Iterable, roles: Iterable) -> tuple[list[int], list[str]]:
    known_tickets = {t.id for t in db.session.execute(
        sa.select(TicketType).where(TicketType.convening_id == convening.id)).scalars()}
    tickets = sorted({int(t) for t in ticket_type_ids or () if str(t).lstrip("-").isdigit()})
    if any(t not in known_tickets for t in tickets):
        raise ConveneError("checkin_list_ticket_unknown", field="ticket_type_ids")
    known_roles = [r.value for r in Role]
    chosen = set(roles or ())
    if chosen - set(known_roles):
        raise ConveneError("checkin_list_role_unknown", field="roles")
    return tickets, [r for r in known_roles if r in chosen]


def _target(convening: Convening, kind: str, data: Mapping) -> tuple[ProgramSession | None, SiteVisit | None]:
    session = visit = None
    if kind == ListKind.SESSION:
        session = db.session.get(ProgramSession, data.get("session_id") or 0)
        if session is None or session.convening_id != convening.id:
            raise ConveneError("checkin_list_session_required", field="session_id")
    elif kind == ListKind.VISIT:
        visit = db.session.get(SiteVisit, data.get("site_visit_id") or 0)
        if visit is None or visit.convening_id != convening.id:
            raise ConveneError("checkin_list_visit_required", field="site_visit_id")
    return session, visit


def default_name(kind: str, session: ProgramSession | None, visit: SiteVisit | None) -> str:
    if session is not None:
        return session.title[:NAME_MAX]
    if visit is not None:
        return visit_label(visit)[:NAME_MAX]
    return ""


def _check_name(convening: Convening, name: str, list_id: int | None) -> None:
    if not name:
        raise ConveneError("checkin_list_name_required", field="name")
    if len(name) > NAME_MAX:
        raise ConveneError("checkin_list_name_too_long", field="name", max=NAME_MAX)
    same = sa.select(CheckinList.id).where(CheckinList.convening_id == convening.id,
                                           sa.func.lower(CheckinList.name) == name.lower())
    if list_id is not None:
        same = same.where(CheckinList.id != list_id)
    if db.session.execute(same).first():
        raise ConveneError("checkin_list_name_taken", field="name")


def _locked_convening(convening_id: int) -> Convening:
    [convening] = lock(Convening, convening_id) or [None]
    if convening is None:
        raise ConveneError("convening_not_found", status_code=404)
    return convening


def create_checkin_list(convening_id: int, data: Mapping) -> CheckinList:
    """Add a list for a session, a site visit or a named gathering, optionally limited to tickets and roles.

    `data`: kind, name (a session's or visit's own name when empty), session_id or site_visit_id,
    everyone (sessions), ticket_type_ids, roles. Each problem is refused beside its field; everything is
    checked under the convening's lock, so two organizers adding the same name make one list.
    """
    kind = str(data.get("kind") or "")
    if kind not in ADDED_KINDS:
        raise ConveneError("checkin_list_kind_invalid", field="kind")
    try:
        with unit_of_work():
            convening = _locked_convening(convening_id)
            session, visit = _target(convening, kind, data)
            name = _text(data.get("name")) or default_name(kind, session, visit)
            _check_name(convening, name, None)
            tickets, roles = _clean_limits(convening, data.get("ticket_type_ids"), data.get("roles"))
            # Nobody signs up for a session open to all, so its list can only be for everyone confirmed.
            everyone = session is not None and (bool(data.get("everyone")) or not session.signup_required)
            checkin_list = CheckinList(convening_id=convening.id, kind=kind, name=name,
                                       session_id=session.id if session else None,
                                       site_visit_id=visit.id if visit else None, everyone=everyone,
                                       ticket_type_ids=tickets, roles=roles)
            db.session.add(checkin_list)
    except IntegrityError:
        raise ConveneError("checkin_list_name_taken", field="name") from None
    return checkin_list


def update_checkin_list(list_id: int, data: Mapping) -> CheckinList:
    """Rename a list, change its limits, or (a session's) whether it is for everyone; check-ins made stay.

    What a list is for (its kind, session or visit) stays: a different one is a new list.
    """
    try:
        with unit_of_work():
            checkin_list = db.session.get(CheckinList, list_id)
            if checkin_list is None:
                raise NotFound("checkin_list_not_found")
            convening = _locked_convening(checkin_list.convening_id)
            db.session.refresh(checkin_list)
            if checkin_list.kind == ListKind.MAIN:
                raise ConveneError("checkin_list_main_unchanged")
            name = _text(data.get("name")) or default_name(checkin_list.kind, checkin_list.session,
                                                           checkin_list.site_visit)
            _check_name(convening, name, checkin_list.id)
            tickets, roles = _clean_limits(convening, data.get("ticket_type_ids"), data.get("roles"))
            checkin_list.name = name
            checkin_list.ticket_type_ids = tickets
            checkin_list.roles = roles
            if checkin_list.kind == ListKind.SESSION:
                session = checkin_list.session
                checkin_list.everyone = bool(data.get("everyone")) or (session is not None
                                                                       and not session.signup_required)
    except IntegrityError:
        raise ConveneError("checkin_list_name_taken", field="name") from None
    return checkin_list


def _deletion(checkin_list: CheckinList) -> Deletion:
    counts = dict(db.session.execute(
        sa.select(Checkin.reverted_at.is_(None), sa.func.count(Checkin.id))
        .where(Checkin.list_id == checkin_list.id).group_by(Checkin.reverted_at.is_(None))
    ).all())
    active, undone = counts.get(True, 0), counts.get(False, 0)
    scans = db.session.scalar(sa.select(sa.func.count(CheckinScan.id)).where(CheckinScan.list_id == checkin_list.id))
    effects = []
    if active:
        effects.append(Effect("checkins", f"{plural(active, 'check-in')} on it go (who came is forgotten)"))
    if undone:
        effects.append(Effect("undone", f"{plural(undone, 'undone check-in')} go too"))
    if scans:
        effects.append(Effect("scans", f"its log of {plural(scans, 'scan')} goes"))
    blocked = ConveneError("checkin_list_main_fixed") if checkin_list.kind == ListKind.MAIN else None
    return Deletion(kind="check-in list", name=checkin_list.name, effects=effects, blocked=blocked,
                    token=digest(checkin_list.id, checkin_list.name, active, undone),
                    done=f"The list “{checkin_list.name}” is deleted.")


def checkin_list_deletion(list_id: int) -> Deletion:
    """What deleting a list would do now (its check-ins and scans go), for its confirmation page."""
    checkin_list = db.session.get(CheckinList, list_id)
    if checkin_list is None:
        raise NotFound("checkin_list_not_found")
    return _deletion(checkin_list)


def delete_checkin_list(list_id: int, *, expected: str | None = None) -> Deletion:
    """Delete a list that is not the entrance. One with check-ins goes only as previewed (`expected`, the
    preview's token): a check-in made since the organizer looked refuses the deletion."""
    with unit_of_work():
        checkin_list = db.session.get(CheckinList, list_id)
        if checkin_list is None:
            raise NotFound("checkin_list_not_found")
        _locked_convening(checkin_list.convening_id)
        deletion = _deletion(checkin_list)
        deletion.check(expected)
        has_checkins = any(effect.key in ("checkins", "undone") for effect in deletion.effects)
        if has_checkins and expected is None:
            raise ConveneError("checkin_list_has_checkins")
        # Check-ins go by a statement of their own, so the log keeps each one that went; the scans of the
        # list go with it (by the foreign key).
        db.session.execute(sa.delete(Checkin).where(Checkin.list_id == checkin_list.id))
        name_action(checkin_list, "checkin_list.deleted")
        db.session.delete(checkin_list)
    return deletion
