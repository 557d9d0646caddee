"""Organizers merge two registrations of one person: what moves, who is told, and when it is refused."""
from __future__ import annotations

import sqlalchemy as sa

from convene.extensions import db
from convene.models import (
    Answer,
    OutboxMessage,
    Registration,
    SessionSignup,
    Status,
    VisitAssignment,
    VisitPreference,
)
from tests.factories import (
    make_convening,
    make_delegation,
    make_host,
    make_question,
    make_registration,
    make_slot,
    make_ticket,
)
from tests.schedule_helpers import make_presenter, make_session
from tests.web.test_admin_payments import make_order


def rows_pointing_at(registration_id: int) -> dict[str, int]:
    """For every column with a foreign key to registration.id: how many rows hold this id."""
    found = {}
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if any(k.column.table.name == "registration" for k in column.foreign_keys):
                found[f"{table.name}.{column.name}"] = db.session.scalar(
                    sa.select(sa.func.count()).select_from(table).where(column == registration_id))
    return found


def add(*rows):
    db.session.add_all(rows)
    db.session.commit()


def test_organizer_merges_a_duplicate_registration_moving_what_the_kept_one_lacks(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    delegation = make_delegation(convening, "Dayton, OH")
    keep = make_registration(convening, ticket, 1, given_name="Ana", family_name="Lima", email="ana@example.org")
    drop = make_registration(convening, ticket, 2, given_name="Ana", family_name="Lima", email="ana.lima@work.org",
                             delegation_id=delegation.id)
    keep_id, drop_id = keep.id, drop.id
    diet, topic = make_question(convening, "Diet"), make_question(convening, "Topic")
    both, only_drop = make_session(convening, "Opening", 1, "09:00", "10:00"), make_session(convening, "Lab", 1, "11:00", "12:00")
    host, slot = make_host(convening, "Plant"), make_slot(convening, "Morning", 9)
    add(Answer(registration_id=keep_id, question_id=diet.id, value="vegan"),
        Answer(registration_id=drop_id, question_id=diet.id, value="none"),
        Answer(registration_id=drop_id, question_id=topic.id, value="housing"),
        SessionSignup(registration_id=keep_id, session_id=both.id),
        SessionSignup(registration_id=drop_id, session_id=both.id),
        SessionSignup(registration_id=drop_id, session_id=only_drop.id),
        VisitPreference(registration_id=drop_id, host_id=host.id, rank=1),
        VisitAssignment(registration_id=drop_id, slot_id=slot.id))
    make_presenter(convening, registration=drop)
    base = f"/admin/c/{convening.id}/registrations/{keep_id}/merge"
    choose = organizer_client.get(base).text
    assert f'<option value="{drop_id}">' in choose  # same name: offered
    compare = organizer_client.get(f"{base}?other={drop_id}").text
    assert "ana@example.org" in compare and "ana.lima@work.org" in compare and "confirm-merge" in compare
    assert organizer_client.post(base, data={"other": drop_id}).status_code == 302
    db.session.expire_all()
    keep, drop = db.session.get(Registration, keep_id), db.session.get(Registration, drop_id)
    assert keep.status == Status.CONFIRMED and drop.status == Status.CANCELLED
    assert keep.delegation_id == delegation.id
    assert {a.question_id: a.value for a in keep.answers} == {diet.id: "vegan", topic.id: "housing"}
    assert sorted(db.session.execute(sa.select(SessionSignup.session_id).where(
        SessionSignup.registration_id == keep_id)).scalars()) == sorted([both.id, only_drop.id])
    left = rows_pointing_at(drop_id)
    assert left["session_signup.registration_id"] == 0 and left["visit_assignment.registration_id"] == 0
    assert left["visit_preference.registration_id"] == 0 and left["presenter.registration_id"] == 0
    assert left["answer.registration_id"] == 1  # the duplicate's own answer to a question already answered
    kept = rows_pointing_at(keep_id)
    assert kept["visit_preference.registration_id"] == 1 and kept["visit_assignment.registration_id"] == 1
    assert kept["presenter.registration_id"] == 1
    # Nobody was told of a cancellation: the person still has their place.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_merging_is_refused_when_both_are_paid_and_when_only_the_dropped_one_is(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening, price_cents=10000)
    first, second = make_order(convening, ticket), make_order(convening, ticket)
    paid_a, paid_b = first.registrations[0], second.registrations[0]
    free = make_registration(convening, ticket, 9)
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{paid_a.id}/merge?other={paid_b.id}").text
    assert "Refund one of them first" in page and "confirm-merge" not in page
    response = organizer_client.post(f"/admin/c/{convening.id}/registrations/{paid_a.id}/merge",
                                     data={"other": paid_b.id})
    assert "Refund one of them first" in response.text
    page = organizer_client.post(f"/admin/c/{convening.id}/registrations/{free.id}/merge", data={"other": paid_a.id}).text
    assert "keep it and merge this one into it" in page
    db.session.expire_all()
    assert {r.status for r in db.session.execute(sa.select(Registration)).scalars()} == {Status.CONFIRMED}
    # The paid one may be kept.
    assert organizer_client.post(f"/admin/c/{convening.id}/registrations/{paid_a.id}/merge",
                                 data={"other": free.id}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, free.id).status == Status.CANCELLED


def test_a_registration_is_not_merged_with_itself_or_one_of_another_convening(organizer_client):
    convening, other_convening = make_convening(), make_convening()
    ticket = make_ticket(convening)
    mine = make_registration(convening, ticket, 1)
    theirs = make_registration(other_convening, make_ticket(other_convening), 2)
    assert organizer_client.get(f"/admin/c/{convening.id}/registrations/{mine.id}/merge?other={theirs.id}").status_code == 404
    page = organizer_client.post(f"/admin/c/{convening.id}/registrations/{mine.id}/merge", data={"other": mine.id}).text
    assert "Choose another registration to merge with." in page
    db.session.expire_all()
    assert db.session.get(Registration, mine.id).status == Status.CONFIRMED


def test_the_registration_page_links_organizers_to_the_merge(organizer_client):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening))
    merge = f"/admin/c/{convening.id}/registrations/{registration.id}/merge"
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}").get_data(as_text=True)
    assert f'href="{merge}"' in page
