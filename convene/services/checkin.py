"""Check-in: finding a person from what a desk scanned or typed, checking them in once per list, undoing it.

The guarantee that two desks scanning the same badge at the same moment make one check-in is the
partial unique index on active check-ins (`uq_checkin_active`), not a read before the write: the
insert runs in a savepoint, and the loser of the race reads the winner's row and answers "already
checked in". Every scan, failed or not, is one row of the append-only scan log, in the same
transaction. A scan carries the id its page made for it; the same (device, scan id) sent again after
a dropped connection gets the answer its first sending got, and changes nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, selectinload

from convene.errors import ConveneError, NotFound
from convene.extensions import db
from convene.models import (
    ACCESSIBILITY_NEEDS,
    Convening,
    Presenter,
    Registration,
    SessionPresenter,
    SessionSignup,
    Status,
    User,
    VisitAssignment,
)
from convene.models.base import utcnow
from convene.models.checkin import Checkin, CheckinList, CheckinScan, ListKind, ScanResult
from convene.models.registrations import ROLE_LABELS
from convene.services import audit
from convene.services.db import lock, unit_of_work
from convene.text import search_key

MAX_CODE = 200
MAX_MATCHES = 12
MAIN_LIST_NAME = "Entrance"
NOT_CONFIRMED = (Status.WAITLISTED, Status.OFFERED, Status.PENDING)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# What a desk reads in one glance, per result.
HEADLINES = {
    ScanResult.CHECKED_IN: "Checked in",
    ScanResult.ALREADY: "Already checked in",
    ScanResult.NOT_ON_LIST: "Not on this list",
    ScanResult.CANCELLED: "Registration cancelled",
    ScanResult.NOT_CONFIRMED: "Not confirmed",
    ScanResult.UNKNOWN: "Unknown code",
    ScanResult.MATCHES: "Choose the person",
    ScanResult.REVERTED: "Check-in undone",
}


# -- what staff see ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    """One registration as the desk sees it: enough to hand over the right badge, nothing more."""

    registration_id: int
    reference: str
    name: str
    badge_name: str
    organization: str
    delegation: str
    ticket: str
    role: str
    status: str
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"reference": self.reference, "name": self.name, "badge_name": self.badge_name,
                "organization": self.organization, "delegation": self.delegation, "ticket": self.ticket,
                "role": self.role, "status": self.status, "notes": list(self.notes)}


@dataclass(frozen=True)
class ScanAnswer:
    """The answer to one scan: a result kind, the line to read, and who it was about."""

    result: ScanResult
    list_id: int
    list_name: str
    reason: str = ""
    person: Person | None = None
    matches: tuple[Person, ...] = ()
    checkin_id: int | None = None
    # For "already checked in": when the first check-in was made (aware UTC) and by whom.
    checked_in_at: datetime | None = None
    checked_in_by: str = ""
    # True when this was a scan sent again and answered with what its first sending got.
    repeated: bool = False
    scan_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def headline(self) -> str:
        return HEADLINES[self.result]

    @property
    def ok(self) -> bool:
        return self.result.ok

    def as_json(self, tz=None) -> dict:
        when = self.checked_in_at.astimezone(tz) if (self.checked_in_at and tz) else self.checked_in_at
        return {"result": self.result.value, "ok": self.ok, "headline": self.headline, "reason": self.reason,
                "list": {"id": self.list_id, "name": self.list_name},
                "person": self.person.as_json() if self.person else None,
                "matches": [match.as_json() for match in self.matches],
                "checkin_id": self.checkin_id,
                "checked_in_at": when.isoformat() if when else None,
                "checked_in_at_text": when.strftime("%H:%M") if when else "",
                "checked_in_by": self.checked_in_by, "repeated": self.repeated, "scan_id": self.scan_id}


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.2f} {currency}"


def staff_notes(registration: Registration) -> tuple[str, ...]:
    """What the desk must act on: access needs, a badge still to print, money still owed."""
    notes = [ACCESSIBILITY_NEEDS.get(need, need) for need in registration.accessibility_needs or []]
    if registration.accessibility_notes:
        notes.append(registration.accessibility_notes)
    if registration.badge_printed_at is None:
        notes.append("Badge not printed yet")
    elif registration.badge_changed_at and registration.badge_changed_at > registration.badge_printed_at:
        notes.append("Badge changed since it was printed: reprint it")
    order = registration.order
    if order is not None and order.balance_cents > 0:
        notes.append(f"Payment outstanding: {_money(order.balance_cents, order.currency)}")
    return tuple(notes)


def person_of(registration: Registration) -> Person:
    return Person(
        registration_id=registration.id, reference=registration.reference, name=registration.full_name,
        badge_name=registration.display_badge_name, organization=registration.organization,
        delegation=registration.delegation.name if registration.delegation else "",
        ticket=registration.ticket_type.name if registration.ticket_type else "",
        role=ROLE_LABELS.get(registration.role, registration.role), status=registration.status_enum.label,
        notes=staff_notes(registration))


def _user_label(user: User | None) -> str:
    if user is None:
        return ""
    return user.name or user.email


# -- lists ------------------------------------------------------------------------------------------

def main_list(convening_id: int) -> CheckinList:
    """The convening's entrance list, made now if the convening has none yet."""
    found = db.session.execute(sa.select(CheckinList).where(
        CheckinList.convening_id == convening_id, CheckinList.kind == ListKind.MAIN)).scalar_one_or_none()
    if found is not None:
        return found
    try:
        with unit_of_work():
            add_main_list(convening_id)
    except IntegrityError:  # made at the same moment by another request: theirs is the one
        pass
    return db.session.execute(sa.select(CheckinList).where(
        CheckinList.convening_id == convening_id, CheckinList.kind == ListKind.MAIN)).scalar_one()


def add_main_list(convening_id: int) -> CheckinList:
    """Add the entrance list in the current unit of work (for services that make convenings)."""
    checkin_list = CheckinList(convening_id=convening_id, kind=ListKind.MAIN, name=MAIN_LIST_NAME,
                               ticket_type_ids=[], roles=[], position=0)
    db.session.add(checkin_list)
    db.session.flush()
    return checkin_list


def lists_of(convening_id: int) -> list[CheckinList]:
    """A convening's check-in lists, the entrance first."""
    main_list(convening_id)
    return list(db.session.execute(
        sa.select(CheckinList).where(CheckinList.convening_id == convening_id)
        .order_by(CheckinList.kind != ListKind.MAIN, CheckinList.position, CheckinList.name, CheckinList.id)
    ).scalars())


def get_list(list_id: int, convening_id: int | None = None) -> CheckinList:
    checkin_list = db.session.get(CheckinList, list_id)
    if checkin_list is None or (convening_id is not None and checkin_list.convening_id != convening_id):
        raise NotFound("checkin_list_not_found")
    return checkin_list


def members_query(checkin_list: CheckinList) -> sa.Select:
    """A select of the ids of every registration this list is for (all confirmed, whoever has arrived)."""
    query = sa.select(Registration.id).where(
        Registration.convening_id == checkin_list.convening_id, Registration.status == Status.CONFIRMED)
    if checkin_list.ticket_type_ids:
        query = query.where(Registration.ticket_type_id.in_(checkin_list.ticket_type_ids))
    if checkin_list.roles:
        query = query.where(Registration.role.in_(checkin_list.roles))
    if checkin_list.kind == ListKind.SESSION and not checkin_list.everyone:
        # Its presenters come in too: they signed up for nothing, but the session is theirs.
        presenting = sa.select(Presenter.registration_id).join(
            SessionPresenter, SessionPresenter.presenter_id == Presenter.id).where(
            SessionPresenter.session_id == checkin_list.session_id, Presenter.registration_id.is_not(None))
        query = query.where(sa.or_(sa.exists().where(SessionSignup.session_id == checkin_list.session_id,
                                                     SessionSignup.registration_id == Registration.id),
                                   Registration.id.in_(presenting)))
    elif checkin_list.kind == ListKind.VISIT:
        # Once the plan is published, the bus takes whom people were told; before, the working plan.
        published = db.session.execute(sa.select(Convening.visits_published_at).where(
            Convening.id == checkin_list.convening_id)).scalar_one()
        column = VisitAssignment.published_site_visit_id if published else VisitAssignment.site_visit_id
        query = query.where(sa.exists().where(column == checkin_list.site_visit_id,
                                              VisitAssignment.registration_id == Registration.id))
    return query


def is_on_list(checkin_list: CheckinList, registration: Registration) -> bool:
    """Whether this list is for this registration: `members_query` for one person.

    The entrance and gatherings need only the registration's own columns, so they are answered without
    a query (a scan at the door is the busiest moment); the test suite checks both ways agree.
    """
    if checkin_list.kind in (ListKind.MAIN, ListKind.GATHERING) or (
            checkin_list.kind == ListKind.SESSION and checkin_list.everyone):
        return (registration.convening_id == checkin_list.convening_id and registration.status == Status.CONFIRMED
                and (not checkin_list.ticket_type_ids or registration.ticket_type_id in checkin_list.ticket_type_ids)
                and (not checkin_list.roles or registration.role in checkin_list.roles))
    return db.session.execute(members_query(checkin_list).where(Registration.id == registration.id)).first() is not None


# -- finding people ---------------------------------------------------------------------------------

def clean_code(code) -> str:
    """What a scanner or a person typed, as one line: scanners may add a carriage return or a tab.

    Lone surrogates (possible in JSON, never in real text) go too: no database can store them.
    """
    text = _CONTROL.sub(" ", str(code or "")).strip()[:MAX_CODE]
    return _SURROGATES.sub("", text).strip()


def find_people(convening_id: int, code: str) -> tuple[str, list[Registration]]:
    """('token' | 'reference' | 'name', registrations) for a scanned token, a typed reference or a name."""
    loading = (joinedload(Registration.ticket_type), joinedload(Registration.delegation),
               joinedload(Registration.order))
    base = sa.select(Registration).where(Registration.convening_id == convening_id).options(*loading)
    if not code:
        return "name", []
    if " " not in code:
        found = db.session.execute(base.where(Registration.checkin_token == code)).scalars().all()
        if found:
            return "token", list(found)
        found = db.session.execute(base.where(Registration.reference == code.upper())).scalars().all()
        if found:
            return "reference", list(found)
    words = search_key(code).split()[:6]
    if not words or sum(len(word) for word in words) < 2:
        return "name", []
    query = base
    for word in words:
        query = query.where(Registration.search_text.contains(word, autoescape=True))
    # Cancelled people are listed after the others, so a desk still learns why someone is turned away.
    query = query.order_by(Registration.status.in_([s.value for s in (Status.CANCELLED, Status.LAPSED,
                                                                        Status.EXPIRED)]),
                           Registration.sort_key, Registration.id).limit(MAX_MATCHES + 1)
    return "name", list(db.session.execute(query).scalars())


# -- checking in ------------------------------------------------------------------------------------

def _active_checkin(list_id: int, registration_id: int) -> Checkin | None:
    return db.session.execute(sa.select(Checkin).where(
        Checkin.list_id == list_id, Checkin.registration_id == registration_id, Checkin.reverted_at.is_(None))
        .options(selectinload(Checkin.checked_in_by))).scalar_one_or_none()


def _prior_scan(device: str, scan_id: str | None) -> CheckinScan | None:
    if not scan_id:
        return None
    return db.session.execute(sa.select(CheckinScan).where(
        CheckinScan.device == device, CheckinScan.scan_id == scan_id)).scalar_one_or_none()


def _replay(scan: CheckinScan, checkin_list: CheckinList) -> ScanAnswer:
    """The answer a scan got the first time, rebuilt from the log (its person as they are now)."""
    registration = db.session.get(Registration, scan.registration_id) if scan.registration_id else None
    checkin = db.session.get(Checkin, scan.checkin_id) if scan.checkin_id else None
    result = ScanResult(scan.result)
    return ScanAnswer(
        result=result, list_id=checkin_list.id, list_name=checkin_list.name, reason=scan.reason,
        person=person_of(registration) if registration else None, checkin_id=scan.checkin_id,
        checked_in_at=checkin.checked_in_at if checkin and result is ScanResult.ALREADY else None,
        checked_in_by=_user_label(checkin.checked_in_by) if checkin and result is ScanResult.ALREADY else "",
        repeated=True, scan_id=scan.scan_id)


def check_in(checkin_list: CheckinList | int, code, *, by: User | None = None, device: str = "",
             scan_id: str | None = None, scanned_at: datetime | None = None,
             convening_id: int | None = None) -> ScanAnswer:
    """Check in the person a scanned or typed code names on this list, once; log the scan whatever it finds.

    With `convening_id`, a list of another convening is not found (the back office passes the one in its URL).
    """
    list_id = checkin_list if isinstance(checkin_list, int) else checkin_list.id
    # Read before the unit of work begins: it starts by ending the request's read transaction, which
    # would make the account be read again just for its id and name.
    by_id, by_label = (by.id, _user_label(by)) if by is not None else (None, "")
    code = clean_code(code)
    device = clean_code(device)[:64]
    scan_id = clean_code(scan_id)[:64] or None
    if not code:
        raise ConveneError("checkin_code_required", field="code")
    try:
        with unit_of_work():
            answer = _check_in(list_id, code, by_id=by_id, by_label=by_label, device=device, scan_id=scan_id,
                               scanned_at=scanned_at, convening_id=convening_id)
    except IntegrityError:
        # Only the scan log's (device, scan id) can clash here: the same scan sent twice at the same moment.
        prior = _prior_scan(device, scan_id)
        if prior is None:
            raise
        return _replay(prior, get_list(list_id))
    return answer


def _check_in(list_id, code, *, by_id, by_label, device, scan_id, scanned_at, convening_id) -> ScanAnswer:
    checkin_list = get_list(list_id, convening_id)
    prior = _prior_scan(device, scan_id)
    if prior is not None:
        return _replay(prior, checkin_list)
    how, found = find_people(checkin_list.convening_id, code)
    registration, checkin, reason = None, None, ""
    answer_fields: dict = {}
    if not found:
        result = ScanResult.UNKNOWN
        reason = "No registration of this convening has this code, reference or name."
    elif how == "name":
        # A name search never checks anyone in by itself, even with one match: the desk picks the person.
        result = ScanResult.MATCHES
        answer_fields["matches"] = tuple(person_of(r) for r in found[:MAX_MATCHES])
        more = "+" if len(found) > MAX_MATCHES else ""
        reason = f"{len(answer_fields['matches'])}{more} found: choose the person."
    else:
        registration = found[0]
        result, checkin, reason = _check_in_registration(checkin_list, registration, by_id=by_id, device=device)
    if checkin is not None and result is ScanResult.ALREADY:
        answer_fields["checked_in_at"] = checkin.checked_in_at
        answer_fields["checked_in_by"] = _user_label(checkin.checked_in_by)
    scan = CheckinScan(convening_id=checkin_list.convening_id, list_id=checkin_list.id,
                       user_id=by_id, device=device, scan_id=scan_id, scanned_at=scanned_at,
                       code=code, result=result, reason=reason[:200],
                       registration_id=registration.id if registration else None,
                       checkin_id=checkin.id if checkin else None)
    db.session.add(scan)
    db.session.flush()
    return ScanAnswer(result=result, list_id=checkin_list.id, list_name=checkin_list.name, reason=reason,
                      person=person_of(registration) if registration else None,
                      checkin_id=checkin.id if checkin else None, scan_id=scan_id, **answer_fields)


def _check_in_registration(checkin_list, registration, *, by_id, device) -> tuple[ScanResult, Checkin | None, str]:
    status = registration.status_enum
    if status in (Status.CANCELLED, Status.LAPSED, Status.EXPIRED):
        return ScanResult.CANCELLED, None, f"{status.label}."
    if status in NOT_CONFIRMED:
        return ScanResult.NOT_CONFIRMED, None, f"{status.label}: send them to the registration desk."
    if not is_on_list(checkin_list, registration):
        return ScanResult.NOT_ON_LIST, None, f"Not on the list for {checkin_list.name}."
    # Insert first: the unique index on active check-ins decides between desks, and most scans are first scans.
    checkin = Checkin(list_id=checkin_list.id, registration_id=registration.id, checked_in_at=utcnow(),
                      checked_in_by_id=by_id, device=device)
    try:
        with db.session.begin_nested():
            db.session.add(checkin)
            audit.name_action(checkin, "checkin.checked_in")
            db.session.flush()
        return ScanResult.CHECKED_IN, checkin, ""
    except IntegrityError:
        # Checked in before, or by another desk at this very moment: theirs is the check-in.
        existing = _active_checkin(checkin_list.id, registration.id)
        if existing is None:
            raise
    return ScanResult.ALREADY, existing, ""


def revert_check_in(checkin_id: int, *, by: User | None = None, device: str = "",
                    convening_id: int | None = None) -> Checkin:
    """Undo a check-in: it stays in the history as reverted, and the person can be checked in again."""
    with unit_of_work():
        rows = lock(Checkin, checkin_id)
        if not rows:
            raise NotFound("checkin_not_found")
        checkin = rows[0]
        checkin_list = db.session.get(CheckinList, checkin.list_id)
        if convening_id is not None and checkin_list.convening_id != convening_id:
            raise NotFound("checkin_not_found")
        if checkin.reverted_at is not None:
            raise ConveneError("checkin_already_reverted")
        checkin.reverted_at = utcnow()
        checkin.reverted_by_id = by.id if by else None
        audit.name_action(checkin, "checkin.reverted")
        db.session.add(CheckinScan(
            convening_id=checkin_list.convening_id, list_id=checkin_list.id, user_id=by.id if by else None,
            device=clean_code(device)[:64], code=checkin.registration.reference, result=ScanResult.REVERTED,
            reason=f"Check-in of {checkin.checked_in_at:%Y-%m-%d %H:%M} UTC undone.",
            registration_id=checkin.registration_id, checkin_id=checkin.id))
    return checkin


def answer_for_checkin(checkin_id: int) -> tuple[Checkin, Person]:
    checkin = db.session.get(Checkin, checkin_id)
    if checkin is None:
        raise NotFound("checkin_not_found")
    return checkin, person_of(checkin.registration)


def active_checkins(list_id: int) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Checkin).where(
        Checkin.list_id == list_id, Checkin.reverted_at.is_(None))).scalar_one()
