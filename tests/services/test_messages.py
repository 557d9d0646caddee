"""Messages to registrants: the filters pick exactly the right people, each person reads their own (escaped)
version in their language, each message goes once per person even across a killed worker, bounces are skipped."""
from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from convene import jobs
from convene.extensions import db
from convene.models import (
    Checkin,
    CheckinList,
    Convening,
    Job,
    ListKind,
    Message,
    MessageRecipient,
    Order,
    OrderStatus,
    ProgramSession,
    Registration,
    Role,
    SessionSignup,
    Status,
    VisitAssignment,
    utcnow,
)
from convene.services import messages
from convene.services.db import unit_of_work
from tests import jobs_helpers
from tests.factories import (make_convening, make_delegation, make_host, make_registration, make_slot, make_ticket,
                             make_visit)
from tests.jobs_helpers import wait_until
from tests.services.test_mail import SmtpSink

redis_queue, workers = jobs_helpers.redis_queue, jobs_helpers.workers  # fixtures


def draft(subject="Hello {given_name}", body="Dear {given_name},\n\nSee you soon.", **filter_values):
    chosen = messages.RecipientFilter(**filter_values) if filter_values else messages.RecipientFilter()
    return messages.MessageDraft(subjects={"en": subject}, bodies={"en": body}, recipient_filter=chosen)


def fresh(model, row_id):
    db.session.rollback()
    return db.session.execute(sa.select(model).where(model.id == row_id).execution_options(populate_existing=True)
                              ).scalar_one()


# ---------------------------------------------------------------- filters against a plain-Python reference


class FilterScene:
    """A convening with two of everything a filter can name; people are drawn by hypothesis, one batch at a time."""

    def __init__(self):
        self.convening = make_convening(slug="filters")
        self.tickets = [make_ticket(self.convening, name="Delegate"), make_ticket(self.convening, name="Speaker")]
        self.delegations = [make_delegation(self.convening, "Maryland"), make_delegation(self.convening, "Ohio")]
        slot = make_slot(self.convening, "Morning", 9)
        self.visits = [make_visit(make_host(self.convening, "Library"), slot, 50),
                       make_visit(make_host(self.convening, "Clinic"), slot, 50)]
        start = datetime.combine(self.convening.starts_on, datetime.min.time(), tzinfo=timezone.utc)
        self.sessions = []
        for n in range(2):
            session = ProgramSession(convening_id=self.convening.id, title=f"Workshop {n}", kind="workshop",
                                     starts_at=start + timedelta(hours=9 + n), ends_at=start + timedelta(hours=10 + n))
            db.session.add(session)
            self.sessions.append(session)
        db.session.flush()
        # the entrance (everyone confirmed) and the first workshop's list (those signed up for it)
        self.lists = [CheckinList(convening_id=self.convening.id, kind=ListKind.MAIN, name="Entrance"),
                      CheckinList(convening_id=self.convening.id, kind=ListKind.SESSION, name="Workshop 0",
                                  session_id=self.sessions[0].id)]
        db.session.add_all(self.lists)
        db.session.commit()
        self.n = 0

    def populate(self, people: list[dict]) -> list[tuple[Registration, dict]]:
        db.session.execute(sa.delete(Registration).where(Registration.convening_id == self.convening.id))
        db.session.execute(sa.delete(Order).where(Order.convening_id == self.convening.id))
        db.session.commit()
        made = []
        for spec in people:
            self.n += 1
            order_id = None
            if spec["payment"] is not None:
                order = Order(convening_id=self.convening.id, reference=f"ORD-{self.n}", status=spec["payment"],
                              buyer_name="B", buyer_email=f"b{self.n}@example.org", currency="CAD")
                db.session.add(order)
                db.session.flush()
                order_id = order.id
            delegation = self.delegations[spec["delegation"]].id if spec["delegation"] is not None else None
            registration = make_registration(
                self.convening, self.tickets[spec["ticket"]], self.n, status=spec["status"], role=spec["role"],
                delegation_id=delegation, order_id=order_id,
                email_bounced_at=utcnow() if spec["bounced"] else None)
            if spec["visit"] is not None:
                visit = self.visits[spec["visit"]]
                db.session.add(VisitAssignment(registration_id=registration.id, slot_id=visit.slot_id,
                                               site_visit_id=visit.id, published_site_visit_id=visit.id))
            for index in spec["sessions"]:
                db.session.add(SessionSignup(session_id=self.sessions[index].id, registration_id=registration.id))
            for index in spec["undone"]:  # an undone check-in is not an arrival
                db.session.add(Checkin(list_id=self.lists[index].id, registration_id=registration.id,
                                       reverted_at=utcnow()))
            for index in spec["arrived"]:
                db.session.add(Checkin(list_id=self.lists[index].id, registration_id=registration.id))
            db.session.commit()
            made.append((registration, spec))
        return made


PERSON = st.fixed_dictionaries({
    "status": st.sampled_from([s.value for s in Status]),
    "ticket": st.integers(0, 1),
    "delegation": st.none() | st.integers(0, 1),
    "role": st.sampled_from([Role.DELEGATE.value, Role.SPEAKER.value, Role.STAFF.value]),
    "visit": st.none() | st.integers(0, 1),
    "sessions": st.sets(st.integers(0, 1)),
    "payment": st.none() | st.sampled_from([OrderStatus.PAID.value, OrderStatus.PENDING.value,
                                            OrderStatus.INVOICED.value]),
    "bounced": st.booleans(),
    "arrived": st.sets(st.integers(0, 1)),
    "undone": st.sets(st.integers(0, 1)),
})
CHOICE = st.fixed_dictionaries({
    "statuses": st.sets(st.sampled_from([s.value for s in Status]), max_size=3),
    "tickets": st.sets(st.integers(0, 1)),
    "delegations": st.sets(st.none() | st.integers(0, 1), max_size=2),
    "roles": st.sets(st.sampled_from([Role.DELEGATE.value, Role.SPEAKER.value, Role.STAFF.value]), max_size=2),
    "visits": st.sets(st.integers(0, 1)),
    "sessions": st.sets(st.integers(0, 1)),
    "payments": st.sets(st.none() | st.sampled_from([OrderStatus.PAID.value, OrderStatus.PENDING.value]),
                        max_size=2),
    "references": st.none() | st.sets(st.integers(0, 11), max_size=4),
    "checkins": st.sets(st.tuples(st.integers(0, 1), st.sampled_from([messages.ARRIVED, messages.NOT_ARRIVED])),
                        max_size=2),
})


def on_list(spec, index) -> bool:
    """Who each scene list is for: the entrance everyone confirmed, the workshop's list its sign-ups."""
    return spec["status"] == Status.CONFIRMED.value and (index == 0 or 0 in spec["sessions"])


def checkin_holds(spec, index, arrival) -> bool:
    if arrival == messages.ARRIVED:
        return index in spec["arrived"]
    return on_list(spec, index) and index not in spec["arrived"]


def reference_selection(made, choice) -> set[int]:
    """The same filter in plain Python: every criterion given must hold, any of its values will do."""
    chosen = set()
    references = choice["references"]
    for position, (registration, spec) in enumerate(made):
        if choice["statuses"] and spec["status"] not in choice["statuses"]:
            continue
        if choice["tickets"] and spec["ticket"] not in choice["tickets"]:
            continue
        if choice["delegations"] and spec["delegation"] not in choice["delegations"]:
            continue
        if choice["roles"] and spec["role"] not in choice["roles"]:
            continue
        if choice["visits"] and spec["visit"] not in choice["visits"]:
            continue
        if choice["sessions"] and not spec["sessions"] & choice["sessions"]:
            continue
        if choice["payments"] and spec["payment"] not in choice["payments"]:
            continue
        if choice["checkins"] and not any(checkin_holds(spec, i, arrival) for i, arrival in choice["checkins"]):
            continue
        if references is not None and position not in references:
            continue
        chosen.add(registration.id)
    return chosen


def as_filter(scene: FilterScene, made, choice) -> messages.RecipientFilter:
    references = [made[i][0].reference.lower() for i in choice["references"] or () if i < len(made)]
    return messages.RecipientFilter(
        statuses=sorted(choice["statuses"]),
        ticket_ids=[scene.tickets[i].id for i in choice["tickets"]],
        delegation_ids=[scene.delegations[i].id if i is not None else messages.NO_DELEGATION
                        for i in choice["delegations"]],
        roles=sorted(choice["roles"]),
        site_visit_ids=[scene.visits[i].id for i in choice["visits"]],
        session_ids=[scene.sessions[i].id for i in choice["sessions"]],
        payment_statuses=[p if p is not None else messages.NO_ORDER for p in choice["payments"]],
        checkins=[messages.checkin_choice(scene.lists[i].id, arrival) for i, arrival in choice["checkins"]],
        # an unknown reference rides along with the known ones: reported, and matching nobody
        references=messages.parse_references(" ".join(references) + " NOPE-1") if choice["references"] is not None
        else [],
    )


def test_filters_pick_exactly_the_people_a_plain_python_reading_picks(app):
    scene = FilterScene()

    # No shrinking: each example writes rows, and a failure prints its example as drawn anyway.
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(people=st.lists(PERSON, max_size=12), choices=st.lists(CHOICE, min_size=1, max_size=4))
    def check(people, choices):
        made = scene.populate(people)
        for choice in choices:
            if choice["references"] is not None and not made:
                choice = {**choice, "references": None}
            chosen = as_filter(scene, made, choice)
            expected = reference_selection(made, choice)
            got = {r.id for r in messages.matching_registrations(scene.convening, chosen)}
            assert got == expected
            # what a message would reach now: the same people less those whose address bounced
            with unit_of_work():
                message = Message(convening_id=scene.convening.id, subjects={"en": "s"}, bodies={"en": "b"},
                                  filter=chosen.to_json())
                db.session.add(message)
            audience = messages.audience(message)
            bounced = {r.id for r, spec in made if spec["bounced"]}
            assert audience.count == len(expected - bounced)
            assert {r.id for r in audience.bounced} == expected & bounced
            if chosen.references:
                assert audience.unknown_references == ["NOPE-1"]

    check()


# ---------------------------------------------------------------- what each person reads


def test_hostile_names_are_escaped_and_placeholders_filled_in_the_email(app, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    hostile = make_registration(convening, ticket, 1, given_name="<script>alert(1)</script>",
                                badge_name="**Bold** [x](javascript:alert(1))", organization="A & B")
    message = messages.save_message(convening.id, draft(
        subject="For {given_name}", body="Hi {given_name} ({badge_name}) of {organization}, ref {reference}.\n\n"
                                         "[Your page]({manage_link})"))
    messages.send_message(message.id)
    assert jobs.wait(fresh(Message, message.id).job_id, timeout=60) == "done"
    [email] = outbox.to(hostile.email)
    html = outbox.html(email)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html.replace("[x](javascript:alert(1))", "")  # shown as text, never a link
    assert 'href="javascript' not in html and "<strong>Bold</strong>" not in html
    assert "A &amp; B" in html and hostile.reference in html
    assert '<a href="http' in html and "/manage/" in html
    text = outbox.text(email)
    assert "Hi <script>alert(1)</script> (**Bold** [x](javascript:alert(1))) of A & B" in text
    assert email["Subject"] == "For <script>alert(1)</script>"


def test_an_unknown_placeholder_is_refused_beside_its_field(app):
    convening = make_convening()
    with pytest.raises(Exception) as raised:
        messages.save_message(convening.id, draft(body="Hello {first_name}"))
    [problem] = raised.value.details["problems"]
    assert problem.field == "body_en" and "{first_name} is not a placeholder" in problem.message
    assert db.session.scalar(sa.select(sa.func.count(Message.id))) == 0


def test_each_person_reads_the_version_in_their_language(app, outbox):
    convening = make_convening(languages=["en", "fr"], default_language="en",
                               translations={"fr": {"name": "Rencontre de Toronto"}})
    ticket = make_ticket(convening)
    english = make_registration(convening, ticket, 1, email="en@example.org")
    french = make_registration(convening, ticket, 2, email="fr@example.org", language="fr")
    # Spanish is not one of this convening's languages: the default version, and its frame, in English
    spanish = make_registration(convening, ticket, 3, email="es@example.org", language="es")
    missing = messages.MessageDraft(subjects={"en": "Hello"}, bodies={"en": "Hi"},
                                    recipient_filter=messages.RecipientFilter())
    with pytest.raises(Exception) as raised:
        messages.save_message(convening.id, missing)
    assert {p.field for p in raised.value.details["problems"]} == {"subject_fr", "body_fr"}
    message = messages.save_message(convening.id, messages.MessageDraft(
        subjects={"en": "Hotel block closes Friday", "fr": "Le bloc d'hôtel ferme vendredi"},
        bodies={"en": "Hello {given_name}, welcome to {convening}",
                "fr": "Bonjour {given_name}, bienvenue à {convening}"},
        recipient_filter=messages.RecipientFilter()))
    assert messages.preview_message(message, french).subject == "Le bloc d'hôtel ferme vendredi"
    # the language filter: the default version also reaches people whose language is not offered
    only = {code: {r.id for r in messages.matching_registrations(convening, messages.RecipientFilter(
        languages=[code]))} for code in ("en", "fr")}
    assert only == {"en": {english.id, spanish.id}, "fr": {french.id}}
    messages.send_message(message.id)
    assert jobs.wait(fresh(Message, message.id).job_id, timeout=60) == "done"
    [en_mail], [fr_mail], [es_mail] = outbox.to(english.email), outbox.to(french.email), outbox.to(spanish.email)
    for mail, person in ((en_mail, english), (es_mail, spanish)):
        assert mail["Subject"] == "Hotel block closes Friday"
        assert f"Hello {person.given_name}, welcome to {convening.name}" in outbox.text(mail)
        assert "Questions? Write to hello@example.org." in outbox.text(mail) and 'lang="en"' in outbox.html(mail)
    assert fr_mail["Subject"] == "Le bloc d'hôtel ferme vendredi"
    assert f"Bonjour {french.given_name}, bienvenue à Rencontre de Toronto" in outbox.text(fr_mail)
    # the frame around the text is French too: the convening's name, the footer, the page's language
    assert "Des questions ? Écrivez à hello@example.org." in outbox.text(fr_mail)
    assert '<html lang="fr"' in outbox.html(fr_mail) and "Rencontre de Toronto</strong>" in outbox.html(fr_mail)
    db.session.rollback()
    languages = dict(db.session.execute(sa.select(MessageRecipient.to_address, MessageRecipient.language)).all())
    assert languages == {"en@example.org": "en", "fr@example.org": "fr", "es@example.org": "en"}


def test_delegation_leads_get_one_copy_each_and_people_sent_before_are_skipped(app, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    maryland = make_delegation(convening, "Maryland")
    maryland.contact_email, maryland.contact_name = "lead@maryland.example.org", "Lee"
    db.session.commit()
    people = [make_registration(convening, ticket, n, delegation_id=maryland.id) for n in range(3)]
    message = messages.save_message(convening.id, draft(subject="Bus at 8 for {delegation}"))
    with unit_of_work():
        fresh_message = db.session.get(Message, message.id)
        fresh_message.copy_delegation_leads = True
    messages.send_message(message.id)
    job_id = fresh(Message, message.id).job_id
    assert jobs.wait(job_id, timeout=60) == "done"
    [copy] = outbox.to("lead@maryland.example.org")
    assert copy["Subject"] == "[Copy for Maryland] Bus at 8 for Maryland"
    # running the job again (as after a crash) writes and sends nothing new
    with unit_of_work():
        db.session.execute(sa.update(Job).where(Job.id == job_id).values(status="queued"))
        db.session.execute(sa.update(Message).where(Message.id == message.id).values(status="sending"))
    assert jobs.run(job_id) == "done"
    assert len(outbox.messages()) == 4 and Counter(m["To"] for m in outbox.messages())[people[0].email] == 1
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(MessageRecipient.id))) == 4


# ---------------------------------------------------------------- bounces

SECRET = "whsec-test-bounces"


def signed_post(client, payload: dict, secret: str = SECRET):
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post("/webhooks/mail/bounces", data=body, content_type="application/json",
                       headers={"X-Convene-Signature": f"sha256={signature}"})


def test_bounce_webhook_refuses_bad_signatures_flags_good_ones_and_the_next_send_skips(app, client, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    bouncing = make_registration(convening, ticket, 1, email="gone@example.org")
    staying = make_registration(convening, ticket, 2)
    first = messages.save_message(convening.id, draft())
    messages.send_message(first.id)
    assert jobs.wait(fresh(Message, first.id).job_id, timeout=60) == "done"
    db.session.rollback()
    outbox_id = db.session.scalar(sa.select(MessageRecipient.outbox_id).where(
        MessageRecipient.registration_id == bouncing.id))
    assert outbox_id is not None
    event = {"type": "bounce", "email": "Gone@Example.org", "reason": "550 mailbox unavailable",
             "message_id": f"<convene-{outbox_id}@convene.local>"}

    assert signed_post(client, event).status_code == 400  # no secret configured: nothing is trusted
    app.config["MAIL_BOUNCE_WEBHOOK_SECRET"] = SECRET
    assert signed_post(client, event, secret="guessed").status_code == 401
    unsigned = client.post("/webhooks/mail/bounces", data=json.dumps(event), content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.is_json
    assert fresh(Registration, bouncing.id).email_bounced_at is None

    response = signed_post(client, event)
    assert response.status_code == 200 and response.get_json() == {"received": 1, "flagged": 1}
    bouncing = fresh(Registration, bouncing.id)
    assert bouncing.email_bounced_at is not None and "550 mailbox unavailable" in bouncing.email_bounce_reason
    first = fresh(Message, first.id)
    assert first.bounced_count == 1 and first.sent_count == 2
    assert messages.bounced_count(convening.id) == 1
    assert signed_post(client, {"type": "delivered", "email": "x@example.org"}).status_code == 400

    second = messages.save_message(convening.id, draft(subject="Second"))
    assert messages.audience(second).count == 1
    messages.send_message(second.id)
    assert jobs.wait(fresh(Message, second.id).job_id, timeout=60) == "done"
    assert [m["Subject"] for m in outbox.to("gone@example.org")] == ["Hello Amina1"]  # the first message only
    assert len(outbox.to(staying.email)) == 2
    assert fresh(Message, second.id).skipped_count == 1

    # corrected, by whichever path: the flag goes
    with unit_of_work():
        db.session.get(Registration, bouncing.id).email = "found@example.org"
    assert fresh(Registration, bouncing.id).email_bounced_at is None
    assert messages.bounced_count(convening.id) == 0


def test_the_dashboard_counts_bounced_addresses(app, organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1, email_bounced_at=utcnow(), email_bounce_reason="The address bounced")
    page = organizer_client.get(f"/admin/c/{convening.id}/").get_data(as_text=True)
    assert 'id="bounced-emails"' in page and "1 registration has an email address that bounced" in page


# ---------------------------------------------------------------- a thousand people, a worker killed


@pytest.mark.one_database
def test_a_message_to_a_thousand_people_sends_a_thousand_emails_once_though_its_worker_is_killed(
        app, redis_queue, workers):
    sink = SmtpSink()
    try:
        app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                          MAIL_USERNAME="", MAIL_LEASE_SECONDS=2)
        convening = make_convening(slug="thousand")
        ticket = make_ticket(convening)
        rows = [Registration(convening_id=convening.id, ticket_type_id=ticket.id, reference=f"TOR-{n:05d}",
                             given_name=f"Person{n}", email=f"p{n}@example.org", status="confirmed",
                             confirmed_at=utcnow()) for n in range(1000)]
        db.session.add_all(rows)
        db.session.commit()
        killed = threading.Event()
        first: list[subprocess.Popen] = []

        def kill_part_way(n: int) -> None:
            if n == 400 and not killed.is_set():
                workers.kill(first[0])
                killed.set()

        sink.on_mail = kill_part_way
        message = messages.save_message(convening.id, draft(subject="Hello {given_name}"))
        messages.send_message(message.id)
        assert sink.counts() == Counter()  # the request only queued the job
        first.append(workers.start())
        assert killed.wait(180), "the worker never got to the 400th email"
        assert fresh(Message, message.id).status == "sending"
        workers.start()
        job_id = fresh(Message, message.id).job_id
        wait_until(lambda: fresh(Job, job_id).status == "done", timeout=300, interval=0.2,
                   message="the message's job to finish")
        outbox_ids = db.session.execute(sa.select(MessageRecipient.outbox_id)).scalars().all()
        assert len(outbox_ids) == 1000 and sink.counts() == Counter(outbox_ids)  # each of 1,000 exactly once
        subjects = Counter(m["Subject"] for m in sink.messages)
        assert len(subjects) == 1000 and set(subjects.values()) == {1}
        message = fresh(Message, message.id)
        assert (message.status, message.sent_count, message.recipient_count) == ("sent", 1000, 1000)
        job = fresh(Job, job_id)
        assert job.attempts == 2 and job.done == job.total == 1000
    finally:
        sink.stop()


def test_bounce_webhook_calls_are_throttled_per_client(app, client):
    from convene.extensions import limiter

    app.config.update(MAIL_BOUNCE_WEBHOOK_SECRET=SECRET, RATELIMIT_BOUNCE_WEBHOOK="2 per minute")
    body = json.dumps({"type": "bounce", "email": "nobody@example.org"}).encode()
    headers = {"X-Convene-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    try:
        answers = [client.post("/webhooks/mail/bounces", data=body, headers=headers, content_type="application/json",
                               environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code for _ in range(3)]
        other = client.post("/webhooks/mail/bounces", data=body, headers=headers, content_type="application/json",
                            environ_base={"REMOTE_ADDR": "10.9.8.6"})
    finally:
        limiter.storage.reset()
    assert answers == [200, 200, 429] and other.status_code == 200


def test_hostile_bounce_events_are_refused_or_stored_cleanly(app, client):
    app.config["MAIL_BOUNCE_WEBHOOK_SECRET"] = SECRET
    convening = make_convening()
    person = make_registration(convening, make_ticket(convening), 1, email="odd@example.org")
    for event in ({"type": "bounce", "email": "a\u0000@example.org"}, {"type": "bounce", "email": ["x@y.org"]},
                  {"events": [{"type": "bounce", "email": "x@example.org"}] * 501}, {"events": "nope"}, [1, 2]):
        assert signed_post(client, event).status_code == 400, event
    body = b"\xff\xfe not json"
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert client.post("/webhooks/mail/bounces", data=body,
                       headers={"X-Convene-Signature": signature}).status_code == 400
    assert client.post("/webhooks/mail/bounces", data=b"{}",
                       headers={"X-Convene-Signature": "sha256=é"}).status_code == 401
    response = signed_post(client, {"type": "complaint", "email": "odd@example.org",
                                    "reason": "spam\u0000\nreport", "message_id": {"nested": True}})
    assert response.status_code == 200
    person = fresh(Registration, person.id)
    assert person.email_bounce_reason == "The person marked a message as spam: spam report"


def test_erasing_personal_data_blanks_who_each_message_went_to(app, outbox):
    from datetime import date

    from convene.services import privacy

    convening = make_convening(starts_on=date(2024, 5, 1), ends_on=date(2024, 5, 2))
    person = make_registration(convening, make_ticket(convening), 1, email="erase.me@example.org")
    message = messages.save_message(convening.id, draft())
    messages.send_message(message.id)
    assert jobs.wait(fresh(Message, message.id).job_id, timeout=60) == "done"
    with unit_of_work():
        db.session.get(Registration, person.id).email_bounced_at = utcnow()
        db.session.get(Registration, person.id).email_bounce_reason = "550 erase.me@example.org unknown"
    privacy.erase_personal_data(convening.id)
    db.session.rollback()
    assert db.session.execute(sa.select(MessageRecipient.to_address)).scalars().all() == [""]
    person = fresh(Registration, person.id)
    assert "erase.me" not in person.email_bounce_reason and fresh(Message, message.id).sent_count == 1
