"""Check-in lists organizers add: who each list is for, its limits, and deleting one only as confirmed."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import AuditEntry, Presenter, SessionPresenter, SessionSignup, Status, VisitAssignment, utcnow
from convene.models.checkin import Checkin, CheckinList, CheckinScan
from convene.services import checkin, checkin_lists
from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_user, make_visit
from tests.schedule_helpers import make_session


def expected_ids(checkin_list) -> set[int]:
    return set(db.session.scalars(checkin.members_query(checkin_list)))


@pytest.fixture
def scene(app):
    convening = make_convening()
    delegate, vip = make_ticket(convening, name="Delegate"), make_ticket(convening, name="Partner")
    people = {
        "ana": make_registration(convening, delegate, 1),
        "ben": make_registration(convening, delegate, 2, role="speaker"),
        "cho": make_registration(convening, vip, 3),
        "dan": make_registration(convening, delegate, 4, status=Status.WAITLISTED),
    }
    return convening, delegate, vip, people


def test_a_session_list_holds_its_sign_ups_and_everyone_confirmed_when_it_says_so(scene):
    convening, _, _, p = scene
    workshop = make_session(convening, "Housing workshop", 1, "10:00", "11:00", kind="breakout", signup_required=True)
    for person in (p["ana"], p["dan"]):
        db.session.add(SessionSignup(session_id=workshop.id, registration_id=person.id))
    db.session.commit()
    listed = checkin_lists.create_checkin_list(convening.id, {"kind": "session", "session_id": workshop.id})
    assert (listed.name, listed.everyone) == ("Housing workshop", False)
    assert expected_ids(listed) == {p["ana"].id}  # signed up and confirmed; the waitlisted sign-up waits
    assert checkin.is_on_list(listed, p["ana"]) and not checkin.is_on_list(listed, p["ben"])
    assert checkin_lists.expected_count(listed) == 1

    checkin_lists.update_checkin_list(listed.id, {"name": "Workshop door", "everyone": True})
    db.session.refresh(listed)
    assert listed.name == "Workshop door"
    assert expected_ids(listed) == {p["ana"].id, p["ben"].id, p["cho"].id}


def test_a_session_list_holds_its_registered_presenters_one_person_or_the_whole_list_alike(scene):
    convening, delegate, _, p = scene
    workshop = make_session(convening, "Housing workshop", 1, "10:00", "11:00", kind="breakout", signup_required=True)
    other = make_session(convening, "Legal clinic", 1, "11:00", "12:00", kind="breakout", signup_required=True)
    db.session.add(SessionSignup(session_id=workshop.id, registration_id=p["ana"].id))
    presenters = [Presenter(convening_id=convening.id, registration_id=p["ben"].id, name="Ben"),  # presents it
                  Presenter(convening_id=convening.id, registration_id=p["dan"].id, name="Dan"),  # waitlisted
                  Presenter(convening_id=convening.id, registration_id=p["cho"].id, name="Cho"),  # the other one
                  Presenter(convening_id=convening.id, name="A guest from outside")]  # no registration
    db.session.add_all(presenters)
    db.session.flush()
    for presenter, session in zip(presenters, (workshop, workshop, other, workshop), strict=True):
        db.session.add(SessionPresenter(session_id=session.id, presenter_id=presenter.id))
    db.session.commit()
    listed = checkin_lists.create_checkin_list(convening.id, {"kind": "session", "session_id": workshop.id})
    assert expected_ids(listed) == {p["ana"].id, p["ben"].id}
    assert {r.id for r in p.values() if checkin.is_on_list(listed, r)} == expected_ids(listed)
    assert "and its presenters" in checkin_lists.describe_rule(listed)
    assert checkin.check_in(listed, p["ben"].reference).ok
    assert checkin.check_in(listed, p["cho"].reference).result.value == "not_on_list"
    # limits still hold for presenters: a list for delegates only leaves the speaker out
    only = checkin_lists.create_checkin_list(convening.id, {"kind": "session", "session_id": workshop.id,
                                                            "name": "Delegates", "roles": ["delegate"]})
    assert expected_ids(only) == {p["ana"].id}
    assert {r.id for r in p.values() if checkin.is_on_list(only, r)} == {p["ana"].id}


def test_a_session_nobody_signs_up_for_is_always_for_everyone_confirmed(scene):
    convening, _, _, p = scene
    plenary = make_session(convening, "Opening plenary", 1, "09:00", "10:00", signup_required=False)
    listed = checkin_lists.create_checkin_list(convening.id, {"kind": "session", "session_id": plenary.id,
                                                              "everyone": False})
    assert listed.everyone is True
    assert expected_ids(listed) == {p["ana"].id, p["ben"].id, p["cho"].id}


def test_a_site_visit_list_holds_its_group_from_the_published_plan_once_published(scene):
    convening, _, _, p = scene
    slot = make_slot(convening, "Morning", 9)
    library = make_visit(make_host(convening, "Library"), slot, 10)
    farm = make_visit(make_host(convening, "Farm"), slot, 10)
    # Ana is on the library bus in the plan people were told; the working plan has since moved her to the farm.
    db.session.add_all([
        VisitAssignment(registration_id=p["ana"].id, slot_id=slot.id, site_visit_id=farm.id,
                        published_site_visit_id=library.id),
        VisitAssignment(registration_id=p["ben"].id, slot_id=slot.id, site_visit_id=library.id),
    ])
    db.session.commit()
    bus = checkin_lists.create_checkin_list(convening.id, {"kind": "visit", "site_visit_id": library.id})
    assert bus.name == "Library · Morning"
    assert expected_ids(bus) == {p["ben"].id}  # not published yet: the working plan
    convening.visits_published_at = utcnow()
    db.session.commit()
    assert expected_ids(bus) == {p["ana"].id}


def test_a_gathering_can_be_limited_to_ticket_types_and_roles(scene):
    convening, delegate, vip, p = scene
    dinner = checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Networking dinner"})
    assert expected_ids(dinner) == {p["ana"].id, p["ben"].id, p["cho"].id}
    checkin_lists.update_checkin_list(dinner.id, {"name": "Networking dinner", "ticket_type_ids": [vip.id]})
    assert expected_ids(dinner) == {p["cho"].id}
    checkin_lists.update_checkin_list(dinner.id, {"name": "Networking dinner", "roles": ["speaker"]})
    assert expected_ids(dinner) == {p["ben"].id}
    checkin_lists.update_checkin_list(dinner.id, {"name": "Networking dinner", "roles": ["speaker"],
                                                  "ticket_type_ids": [vip.id]})
    assert expected_ids(dinner) == set()
    summary = {s.checkin_list.name: s for s in checkin_lists.list_summaries(convening)}
    assert summary["Networking dinner"].rule == "Everyone confirmed (only tickets: Partner; roles: Speaker)."
    assert (summary["Entrance"].expected, summary["Networking dinner"].expected) == (3, 0)


@pytest.mark.parametrize("data, field", [
    ({"kind": "lunch", "name": "Lunch"}, "kind"),
    ({"kind": "session"}, "session_id"),
    ({"kind": "visit", "site_visit_id": 999_999}, "site_visit_id"),
    ({"kind": "gathering", "name": "  "}, "name"),
    ({"kind": "gathering", "name": "x" * 121}, "name"),
    ({"kind": "gathering", "name": "ENTRANCE"}, "name"),  # the entrance's name, in other capitals
    ({"kind": "gathering", "name": "Dinner", "ticket_type_ids": [999_999]}, "ticket_type_ids"),
    ({"kind": "gathering", "name": "Dinner", "roles": ["boss"]}, "roles"),
])
def test_a_list_with_bad_input_is_refused_beside_its_field_and_nothing_is_made(scene, data, field):
    convening = scene[0]
    checkin.main_list(convening.id)
    with pytest.raises(ConveneError) as refused:
        checkin_lists.create_checkin_list(convening.id, data)
    assert refused.value.field == field
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinList)) == 1


def test_another_convenings_ticket_or_session_cannot_be_used(scene):
    convening = scene[0]
    other = make_convening()
    elsewhere = make_session(other, "Elsewhere", 1, "09:00", "10:00")
    with pytest.raises(ConveneError) as refused:
        checkin_lists.create_checkin_list(convening.id, {"kind": "session", "session_id": elsewhere.id})
    assert refused.value.field == "session_id"
    with pytest.raises(ConveneError) as refused:
        checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Dinner",
                                                         "ticket_type_ids": [make_ticket(other).id]})
    assert refused.value.field == "ticket_type_ids"


def test_a_list_with_check_ins_is_deleted_only_as_previewed_and_the_entrance_never(scene):
    convening, _, _, p = scene
    desk = make_user("desk@example.org", role="desk", convening=convening)
    dinner = checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Dinner"})
    checkin.check_in(dinner, p["ana"].checkin_token, by=desk, device="d1", scan_id="1")
    preview = checkin_lists.checkin_list_deletion(dinner.id)
    assert [e.key for e in preview.effects] == ["checkins", "scans"]

    with pytest.raises(ConveneError) as refused:
        checkin_lists.delete_checkin_list(dinner.id)  # not confirmed
    assert refused.value.code == "checkin_list_has_checkins"
    checkin.check_in(dinner, p["ben"].checkin_token, by=desk, device="d1", scan_id="2")
    with pytest.raises(ConveneError) as refused:
        checkin_lists.delete_checkin_list(dinner.id, expected=preview.token)  # a check-in came in since
    assert refused.value.code == "delete_changed"
    assert db.session.get(CheckinList, dinner.id) is not None

    checkin_lists.delete_checkin_list(dinner.id, expected=checkin_lists.checkin_list_deletion(dinner.id).token)
    db.session.expire_all()
    assert db.session.get(CheckinList, dinner.id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CheckinScan)) == 0
    actions = set(db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("checkin%"))))
    assert {"checkin_list.deleted", "checkin.deleted"} <= actions

    entrance = checkin.main_list(convening.id)
    with pytest.raises(ConveneError) as refused:
        checkin_lists.update_checkin_list(entrance.id, {"name": "Front door", "roles": ["speaker"]})
    assert refused.value.code == "checkin_list_main_unchanged"
    assert checkin_lists.checkin_list_deletion(entrance.id).blocked is not None
    with pytest.raises(ConveneError):
        checkin_lists.delete_checkin_list(entrance.id, expected="anything")
    assert db.session.get(CheckinList, entrance.id) is not None


def test_a_list_without_check_ins_is_deleted_at_once(scene):
    convening = scene[0]
    dinner = checkin_lists.create_checkin_list(convening.id, {"kind": "gathering", "name": "Dinner"})
    deletion = checkin_lists.delete_checkin_list(dinner.id)
    assert deletion.effects == [] and db.session.get(CheckinList, dinner.id) is None
