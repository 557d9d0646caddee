"""The messages pages: compose with errors beside fields, audience and preview, test send, send, schedule, cancel."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from convene import jobs
from convene.extensions import db
from convene.models import Convening, Message, Registration, utcnow
from convene.services import checkin
from convene.services import messages as service
from convene.services.db import unit_of_work
from tests.factories import make_convening, make_delegation, make_registration, make_ticket

BODY = "Hello {given_name},\n\nThe venue changed: **Hall B**. Your page: [manage]({manage_link})"


def scene():
    convening = make_convening()
    ticket = make_ticket(convening)
    maryland = make_delegation(convening, "Maryland")
    people = [make_registration(convening, ticket, n, given_name=f"Person{n}", delegation_id=maryland.id)
              for n in range(3)]
    other = make_registration(convening, ticket, 9, given_name="Elsewhere")
    return convening, maryland, people, other


def compose(client, convening, **changes):
    data = {"subject_en": "Venue change for {given_name}", "body_en": BODY, "statuses": ["confirmed"]}
    data.update(changes)
    return client.post(f"/admin/c/{convening.id}/messages/new", data=data)


def test_an_unknown_placeholder_is_an_error_beside_its_field_and_nothing_is_saved(organizer_client):
    convening, *_ = scene()
    response = compose(organizer_client, convening, body_en="Hello {given_nam}, see you {", subject_en="")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "{given_nam} is not a placeholder" in page and "has no partner" in page
    assert 'id="body_en-error' in page and "Write the subject in English." in page
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_organizer_writes_to_one_delegation_previews_tests_and_sends_once(organizer_client, outbox, organizer):
    convening, maryland, people, other = scene()
    response = compose(organizer_client, convening, delegation_ids=[str(maryland.id)], copy_delegation_leads="y")
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    message = db.session.execute(sa.select(Message)).scalar_one()
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="recipient-count">3<', page)
    assert "Person0" in page and "Elsewhere" not in page
    assert "Venue change for Person0" in page and "<strong>Hall B</strong>" in page
    # a test copy to oneself, as the second person reads it
    organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/test",
                          data={"as_registration": str(people[1].id)})
    [test] = outbox.to(organizer.email)
    assert test["Subject"] == "[Test] Venue change for Person1"
    send = organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/send", data={"send_at": ""})
    assert send.status_code == 302
    job_id = db.session.scalar(sa.select(Message.job_id))
    assert jobs.wait(job_id, timeout=60) == "done"
    db.session.rollback()
    for person in people:
        [email] = outbox.to(person.email)
        assert email["Subject"] == f"Venue change for {person.given_name}"
        assert "Hall B" in outbox.text(email) and "/manage/" in outbox.text(email)
    assert outbox.to(other.email) == []
    message = db.session.get(Message, message.id)
    assert (message.status, message.sent_count, message.recipient_count) == ("sent", 3, 3)
    # a late registrant: sending again reaches only them, and nobody twice
    late = make_registration(convening, people[0].ticket_type, 7, given_name="Late", delegation_id=maryland.id)
    page = organizer_client.get(f"/admin/c/{convening.id}/messages/{message.id}").get_data(as_text=True)
    assert re.search(r'id="recipient-count">1<', page) and "Late" in page and "3 already got this message" in page
    organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/send", data={"send_at": ""})
    db.session.rollback()
    assert jobs.wait(db.session.get(Message, message.id).job_id, timeout=60) == "done"
    db.session.rollback()
    assert len(outbox.to(late.email)) == 1 and all(len(outbox.to(p.email)) == 1 for p in people)
    message = db.session.get(Message, message.id)
    assert (message.status, message.sent_count, message.recipient_count) == ("sent", 4, 4)
    history = organizer_client.get(f"/admin/c/{convening.id}/messages").get_data(as_text=True)
    assert "Venue change for {given_name}" in history and "Delegation: Maryland" in history
    person_page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{people[0].id}").get_data(as_text=True)
    assert f"/messages/{message.id}" in person_page and "Venue change for Person0" in person_page


def test_a_scheduled_message_starts_when_due_and_a_cancelled_one_never(organizer_client, outbox):
    from convene.services import messages

    convening, maryland, people, other = scene()
    compose(organizer_client, convening)
    compose(organizer_client, convening, subject_en="Second")
    first, second = db.session.execute(sa.select(Message).order_by(Message.id)).scalars().all()
    later = convening.local(utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    for message in (first, second):
        response = organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/send",
                                         data={"send_at": later})
        assert response.status_code == 302
    db.session.rollback()
    assert {m.status for m in db.session.execute(sa.select(Message)).scalars()} == {"scheduled"}
    organizer_client.post(f"/admin/c/{convening.id}/messages/{second.id}/cancel")
    assert messages.start_due_messages() == 0  # not yet
    assert messages.start_due_messages(utcnow() + timedelta(hours=3)) == 1
    job_id = db.session.get(Message, first.id).job_id
    assert jobs.wait(job_id, timeout=60) == "done"
    db.session.rollback()
    assert db.session.get(Message, first.id).status == "sent"
    assert db.session.get(Message, second.id).status == "cancelled"
    assert len(outbox.messages()) == 4
    cancel = organizer_client.post(f"/admin/c/{convening.id}/messages/{first.id}/cancel")
    assert "cannot be called back" in organizer_client.get(cancel.headers["Location"]).get_data(as_text=True)


def test_compose_page_offers_each_filter_and_pasted_references_report_unknown_ones(organizer_client):
    convening, maryland, people, other = scene()
    page = organizer_client.get(f"/admin/c/{convening.id}/messages/new").get_data(as_text=True)
    assert 'name="subject_en"' in page and 'name="body_en"' in page and "{manage_link}" in page
    assert "Maryland" in page and 'name="payment_statuses"' in page and 'name="references"' in page
    response = compose(organizer_client, convening, references=f"{people[1].reference.lower()}, TOR-NOPE\n")
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="recipient-count">1<', page) and "Person1" in page
    assert "TOR-NOPE" in page and 'id="unknown-references"' in page
    message = db.session.execute(sa.select(Message)).scalar_one()
    edit = organizer_client.get(f"/admin/c/{convening.id}/messages/{message.id}/edit").get_data(as_text=True)
    assert people[1].reference in edit and "Venue change for {given_name}" in edit
    changed = organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/edit", data={
        "subject_en": "Changed", "body_en": "Hi {given_name}", "statuses": ["confirmed"]})
    assert changed.status_code == 302 and db.session.get(Message, message.id).subjects == {"en": "Changed"}


def test_a_desk_member_cannot_open_messages(client):
    from tests.conftest import login
    from tests.factories import make_user

    convening, *_ = scene()
    desk = make_user("desk@example.org", role="desk", convening=convening)
    login(client, desk.email)
    assert client.get(f"/admin/c/{convening.id}/messages").status_code == 403
    assert compose(client, convening).status_code == 403
    assert "/messages" not in client.get(f"/admin/c/{convening.id}/").get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_without_a_scheduler_a_due_message_starts_when_the_team_opens_the_messages_page(organizer_client, outbox):
    convening, maryland, people, other = scene()
    compose(organizer_client, convening)
    message = db.session.execute(sa.select(Message)).scalar_one()
    with unit_of_work():
        row = db.session.get(Message, message.id)
        row.status, row.scheduled_for = "scheduled", utcnow() - timedelta(minutes=1)
    page = organizer_client.get(f"/admin/c/{convening.id}/messages/{message.id}").get_data(as_text=True)
    assert 'id="message-status">Sending' in page
    db.session.rollback()
    assert jobs.wait(db.session.get(Message, message.id).job_id, timeout=60) == "done"
    assert len(outbox.messages()) == 4


def test_organizer_writes_to_the_maryland_delegation_who_has_not_arrived_yet_in_english_and_french(
        organizer_client, outbox):
    convening, maryland, people, other = scene()
    with unit_of_work():
        row = db.session.get(Convening, convening.id)
        row.languages, row.default_language = ["en", "fr"], "en"
        db.session.get(Registration, people[1].id).language = "fr"
    entrance = checkin.main_list(convening.id)
    assert checkin.check_in(entrance, people[0].reference).ok
    # an undone check-in is not an arrival; a check-in on another list does not count at the entrance
    undone = checkin.check_in(entrance, people[2].reference)
    checkin.revert_check_in(undone.checkin_id)
    other_convening = make_convening()
    foreign = checkin.main_list(other_convening.id)

    form = organizer_client.get(f"/admin/c/{convening.id}/messages/new").get_data(as_text=True)
    assert 'name="subject_en"' in form and 'name="subject_fr"' in form and 'name="body_fr"' in form
    assert "Entrance: arrived" in form and "Entrance: not arrived yet" in form
    not_arrived = f"{entrance.id}:not_arrived"
    refused = compose(organizer_client, convening, subject_fr="Changement de salle", body_fr="Bonjour {given_name}",
                      checkins=[f"{foreign.id}:not_arrived"])
    assert refused.status_code == 400 and 'id="checkins-error' in refused.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0

    response = compose(organizer_client, convening, subject_fr="Changement de salle pour {given_name}",
                       body_fr="Bonjour {given_name},\n\nLa salle a changé : **salle B**.",
                       delegation_ids=[str(maryland.id)], checkins=[not_arrived])
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="recipient-count">2<', page)
    assert "Person1" in page and "Person2" in page and "Elsewhere" not in page
    assert "Check-in: Entrance: not arrived" in page
    message = db.session.execute(sa.select(Message)).scalar_one()
    organizer_client.post(f"/admin/c/{convening.id}/messages/{message.id}/send", data={"send_at": ""})
    db.session.rollback()
    assert jobs.wait(db.session.get(Message, message.id).job_id, timeout=60) == "done"
    assert outbox.to(people[0].email) == [] and outbox.to(other.email) == []
    [french] = outbox.to(people[1].email)
    [english] = outbox.to(people[2].email)
    assert french["Subject"] == "Changement de salle pour Person1" and "Des questions ?" in outbox.text(french)
    assert english["Subject"] == "Venue change for Person2" and "Questions? Write to" in outbox.text(english)
    # who has arrived: one ticked value, the other people of the delegation left out
    db.session.rollback()
    arrived = service.matching_registrations(convening, service.RecipientFilter(
        delegation_ids=[maryland.id], checkins=[f"{entrance.id}:arrived"]))
    assert [r.id for r in arrived] == [people[0].id]
