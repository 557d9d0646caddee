"""The audit log: each write leaves its entries in the same transaction, named, attributed, secrets hidden."""
import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import ActorKind, AuditEntry, Registration, Status, VisitAssignment
from convene.services import audit
from convene.services.db import unit_of_work
from convene.services.registrations import cancel_registration, register_attendee
from tests.factories import (make_convening, make_host, make_question, make_registration, make_slot, make_ticket,
                             make_user, make_visit, person)


def entries(**where):
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    for key, value in where.items():
        query = query.where(getattr(AuditEntry, key) == value)
    return db.session.execute(query).scalars().all()


def test_registering_logs_the_registration_and_its_answers_under_the_convening(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    question = make_question(convening, "Working group")
    before = len(entries())
    registration = register_attendee(convening.id, ticket.id, person(1), {question.id: "Housing"})
    new = entries()[before:]
    assert [e.action for e in new] == ["registration.created", "answer.created"]
    created, answer = new
    assert (created.convening_id, created.object_id, created.parent_type, created.parent_id) == (
        convening.id, registration.id, "registration", registration.id)
    assert created.changes["email"] == [None, "amina1@example.org"]
    assert created.changes["status"] == [None, "confirmed"]
    assert created.object_label == registration.reference
    # The answer is part of the registration's history, and of its convening's log.
    assert (answer.convening_id, answer.parent_type, answer.parent_id) == (convening.id, "registration",
                                                                          registration.id)
    assert answer.actor_kind == ActorKind.SYSTEM


def test_cancelling_is_named_by_the_new_status_with_old_and_new(app):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 2)
    before = len(entries())
    cancel_registration(registration.id, by_attendee=False)
    cancelled = [e for e in entries()[before:] if e.object_type == "registration"]
    assert [e.action for e in cancelled] == ["registration.cancelled"]
    assert cancelled[0].changes["status"] == ["confirmed", "cancelled"]


def test_a_failed_unit_of_work_leaves_no_entry(app):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening), 3)
    before = len(entries())
    with pytest.raises(ConveneError):
        with unit_of_work():
            db.session.get(Registration, registration.id).badge_name = "Someone Else"
            db.session.flush()
            assert len(entries()) == before + 1  # written in the transaction...
            raise ConveneError("nope")
    assert len(entries()) == before  # ...and gone with it
    assert db.session.get(Registration, registration.id).badge_name == ""


def test_bulk_updates_and_deletes_are_logged_row_by_row(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    people = [make_registration(convening, ticket, n) for n in (4, 5)]
    before = len(entries())
    with unit_of_work():
        db.session.execute(sa.update(Registration).where(Registration.convening_id == convening.id)
                           .values(organization="City of Toronto"))
    updated = entries()[before:]
    assert sorted(e.object_id for e in updated) == sorted(p.id for p in people)
    assert {e.action for e in updated} == {"registration.updated"}
    assert updated[0].changes == {"organization": ["City of Dayton", "City of Toronto"]}
    before = len(entries())
    with unit_of_work():
        db.session.execute(sa.update(Registration).where(Registration.id == people[0].id)
                           .values(status=Status.CANCELLED))
        db.session.execute(sa.delete(Registration).where(Registration.id == people[1].id))
    actions = [(e.action, e.object_id) for e in entries()[before:]]
    assert actions == [("registration.cancelled", people[0].id), ("registration.deleted", people[1].id)]


def test_a_moved_visitor_shows_on_their_registrations_history(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    slot = make_slot(convening, "Morning", 9)
    first, second = make_visit(make_host(convening, "Library"), slot, 10), make_visit(
        make_host(convening, "Clinic"), slot, 10)
    registration = make_registration(convening, ticket, 6)
    db.session.add(VisitAssignment(registration_id=registration.id, slot_id=slot.id, site_visit_id=first.id))
    db.session.commit()
    from convene.services.visits import move_visitor

    move_visitor(registration.id, slot.id, second.id)
    history = db.session.execute(audit.history_query(convening_id=convening.id, object_type="registration",
                                                     object_id=registration.id)).scalars().all()
    moved = [e for e in history if e.object_type == "visit" and not e.action.endswith(".created")]
    assert [e.action for e in moved] == ["visit.moved"]
    assert moved[0].changes["site_visit_id"] == [first.id, second.id]


def test_passwords_and_tokens_never_reach_the_log(app):
    user = make_user("finance@example.org")
    with unit_of_work():
        db.session.get(type(user), user.id).set_password("a-new-long-password-1")
    logged = entries(object_type="account", object_id=user.id)
    assert logged[-1].changes["password_hash"] == ["(hidden)", "(hidden)"]
    text = " ".join(str(e.changes) for e in entries())
    assert "pbkdf2" not in text and "scrypt" not in text and "correct-horse" not in text


def test_changes_made_as_a_command_name_the_command(app):
    convening = make_convening()
    with audit.acting_as(audit.Actor(ActorKind.COMMAND, label="flask convene demo")):
        make_ticket(convening, name="Observer")
    logged = entries(object_type="ticket_type")[-1]
    assert (logged.actor_kind, logged.actor_label, logged.action) == ("command", "flask convene demo",
                                                                     "ticket_type.created")


def test_an_object_changed_after_its_row_expired_is_logged_under_its_convening(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    with unit_of_work():
        found = db.session.get(type(ticket), ticket.id)
        db.session.expire(found, ["convening_id"])
        found.name = "Observer"
    [entry] = entries(object_type="ticket_type", action="ticket_type.updated")
    assert (entry.convening_id, entry.changes) == (convening.id, {"name": ["Delegate", "Observer"]})
