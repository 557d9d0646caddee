"""The organizer's setup area and the dashboard, through the test client."""
from __future__ import annotations

import html
import re
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from convene.extensions import db
from convene.models import Convening, Delegation, Question, Registration, Status, TicketType

from tests.factories import make_convening, make_delegation, make_question, make_registration, make_ticket

UTC = timezone.utc


def convening_form(**changes) -> dict:
    """A valid settings form, as a browser posts it (unchecked boxes are simply absent)."""
    data = {
        "name": "Regional Housing Summit", "slug": "housing-summit", "description": "Two days on housing.",
        "city": "Toronto", "venue": "Metro Centre", "venue_address": "255 Front St W",
        "timezone": "America/Toronto", "starts_on": "2025-05-05", "ends_on": "2025-05-06",
        "registration_opens_at": "2025-03-01T09:00", "registration_closes_at": "2025-03-20T17:00",
        "currency": "CAD", "capacity": "120", "contact_email": "hello@example.org",
        "reference_prefix": "HS25", "waitlist_enabled": "y", "published": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def error_beside(page: str, field: str) -> str | None:
    """The error text the field macro renders right under `field`, or None."""
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', page)
    return html.unescape(match.group(1)) if match else None


def convenings() -> list[Convening]:
    db.session.expire_all()
    return db.session.execute(sa.select(Convening).order_by(Convening.id)).scalars().all()


@contextmanager
def counting_statements():
    statements: list[str] = []
    db.session.rollback()  # start as a fresh request would: new transaction, nothing cached

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)


# -- create and edit ---------------------------------------------------------------------------------

def test_organizer_creates_a_convening_with_its_window_stored_in_utc(organizer_client):
    response = organizer_client.post("/admin/c/new", data=convening_form())
    [convening] = convenings()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/c/{convening.id}/tickets")
    assert (convening.slug, convening.name, convening.timezone) == ("housing-summit", "Regional Housing Summit",
                                                                    "America/Toronto")
    assert (convening.starts_on, convening.ends_on) == (date(2025, 5, 5), date(2025, 5, 6))
    # 1 March is EST (UTC-5), 20 March is EDT (UTC-4): the clocks changed on 9 March 2025.
    assert convening.registration_opens_at == datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    assert convening.registration_closes_at == datetime(2025, 3, 20, 21, 0, tzinfo=UTC)
    assert (convening.capacity, convening.currency, convening.reference_prefix) == (120, "CAD", "HS25")
    assert convening.published and convening.waitlist_enabled


def test_edit_page_shows_the_window_back_in_local_time_across_a_dst_change(organizer_client):
    organizer_client.post("/admin/c/new", data=convening_form())
    [convening] = convenings()
    page = organizer_client.get(f"/admin/c/{convening.id}/settings").text
    assert 'value="2025-03-01T09:00"' in page
    assert 'value="2025-03-20T17:00"' in page


def test_a_time_skipped_by_the_spring_forward_is_refused_beside_its_field(organizer_client):
    response = organizer_client.post("/admin/c/new", data=convening_form(registration_opens_at="2025-03-09T02:30"))
    assert response.status_code == 200
    assert "does not exist in America/Toronto" in error_beside(response.text, "registration_opens_at")
    assert convenings() == []


def test_a_time_that_happens_twice_in_autumn_is_read_as_the_first(organizer_client):
    organizer_client.post("/admin/c/new", data=convening_form(
        registration_opens_at="2025-10-01T09:00", registration_closes_at="2025-11-02T01:30"))
    [convening] = convenings()
    assert convening.registration_closes_at == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"slug": "Housing Summit!"}, "slug", "Use only lowercase letters, digits and hyphens"),
        ({"slug": "-summit"}, "slug", "Use only lowercase letters, digits and hyphens"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Enter a time zone from the IANA list"),
        ({"timezone": "../../etc/passwd"}, "timezone", "Enter a time zone from the IANA list"),
        ({"ends_on": "2025-05-04"}, "ends_on", "The last day cannot be before the first day."),
        ({"registration_closes_at": "2025-02-28T09:00"}, "registration_closes_at",
         "Registration must close after it opens."),
        ({"capacity": "-1"}, "capacity", "Capacity cannot be negative"),
        ({"currency": "C1"}, "currency", "three-letter currency code"),
        ({"reference_prefix": "X"}, "reference_prefix", "Use 2 to 5 capital letters or digits"),
    ],
)
def test_bad_settings_are_refused_with_the_message_beside_the_field(organizer_client, changes, field, message):
    response = organizer_client.post("/admin/c/new", data=convening_form(**changes))
    assert response.status_code == 200
    assert message in (error_beside(response.text, field) or "")
    assert "Please correct the" in response.text
    assert convenings() == []


def test_every_problem_is_shown_at_once(organizer_client):
    response = organizer_client.post("/admin/c/new", data=convening_form(
        slug="Bad Slug", timezone="Nowhere/City", ends_on="2025-05-01"))
    for field in ("slug", "timezone", "ends_on"):
        assert error_beside(response.text, field), field


def test_a_taken_slug_is_refused_beside_the_field(organizer_client):
    make_convening(slug="housing-summit")
    response = organizer_client.post("/admin/c/new", data=convening_form())
    assert error_beside(response.text, "slug") == "Another convening already uses that web address."
    assert len(convenings()) == 1


def test_a_time_zone_typed_in_lowercase_is_stored_as_spelled_in_the_database(organizer_client):
    organizer_client.post("/admin/c/new", data=convening_form(timezone="europe/berlin"))
    [convening] = convenings()
    assert convening.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "NOT OK"}, "slug"),
        ({"timezone": "Atlantis/Capital"}, "timezone"),
        ({"ends_on": "2025-05-01"}, "ends_on"),
        ({"registration_opens_at": "2025-03-21T09:00"}, "registration_closes_at"),
    ],
)
def test_editing_with_a_bad_value_changes_nothing(organizer_client, changes, field):
    convening = make_convening(slug="kept", timezone="America/Toronto", starts_on=date(2025, 5, 5),
                               ends_on=date(2025, 5, 6))
    before = {c.key: getattr(convening, c.key) for c in sa.inspect(Convening).columns}
    response = organizer_client.post(f"/admin/c/{convening.id}/settings",
                                     data=convening_form(**{"slug": "kept", "name": "Changed", **changes}))
    assert response.status_code == 200
    assert error_beside(response.text, field)
    [after] = convenings()
    assert {c.key: getattr(after, c.key) for c in sa.inspect(Convening).columns} == before


def test_editing_saves_and_a_slug_taken_by_another_convening_is_refused(organizer_client):
    make_convening(slug="other")
    convening = make_convening(slug="mine")
    response = organizer_client.post(f"/admin/c/{convening.id}/settings",
                                     data=convening_form(slug="mine", name="Renamed", published=None))
    assert response.status_code == 302
    db.session.expire_all()
    assert convening.name == "Renamed" and not convening.published
    response = organizer_client.post(f"/admin/c/{convening.id}/settings", data=convening_form(slug="other"))
    assert error_beside(response.text, "slug") == "Another convening already uses that web address."


def test_raising_capacity_offers_the_freed_seat_to_the_waitlist(organizer_client, outbox):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1)
    waiting = make_registration(convening, ticket, 2, status=Status.WAITLISTED)
    organizer_client.post(f"/admin/c/{convening.id}/settings",
                          data=convening_form(slug=convening.slug, capacity="2"))
    db.session.expire_all()
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED
    assert outbox.to(waiting.email)


# -- ticket types ------------------------------------------------------------------------------------

def ticket_form(**changes) -> dict:
    data = {"name": "Delegate", "description": "", "price_cents": "149.99", "capacity": "",
            "sales_start_at": "", "sales_end_at": "", "position": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(("typed", "cents"), [("149.99", 14999), ("150", 15000), ("0", 0), ("", 0), (" 12.5 ", 1250)])
def test_ticket_price_is_read_as_a_decimal_and_stored_in_cents(organizer_client, typed, cents):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/tickets/new", data=ticket_form(price_cents=typed))
    assert response.status_code == 302
    ticket = db.session.execute(sa.select(TicketType)).scalar_one()
    assert ticket.price_cents == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("-5", "The price cannot be negative"),
        ("1.999", "Use at most two decimals"),
        ("abc", "Enter a price as a number"),
        ("1e3", "Enter a price as a number"),
        ("99999999999", "That price is too large."),
    ],
)
def test_a_bad_ticket_price_is_refused_beside_the_field(organizer_client, typed, message):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/tickets/new", data=ticket_form(price_cents=typed))
    assert response.status_code == 200
    assert message in error_beside(response.text, "price_cents")
    assert f'value="{typed}"' in response.text  # what was typed stays in the box
    assert db.session.execute(sa.select(TicketType)).first() is None


def test_ticket_sale_window_is_read_in_the_convenings_zone(organizer_client):
    convening = make_convening(timezone="Europe/Berlin")
    organizer_client.post(f"/admin/c/{convening.id}/tickets/new", data=ticket_form(
        sales_start_at="2025-03-01T10:00", sales_end_at="2025-04-01T10:00"))
    ticket = db.session.execute(sa.select(TicketType)).scalar_one()
    assert ticket.sales_start_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # CET
    assert ticket.sales_end_at == datetime(2025, 4, 1, 8, 0, tzinfo=UTC)  # CEST
    page = organizer_client.get(f"/admin/c/{convening.id}/tickets/{ticket.id}").text
    assert 'value="2025-04-01T10:00"' in page and 'value="149.99"' in page


def test_ticket_sales_must_end_after_they_start(organizer_client):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/tickets/new", data=ticket_form(
        sales_start_at="2025-03-01T10:00", sales_end_at="2025-03-01T09:00"))
    assert error_beside(response.text, "sales_end_at") == "Sales must end after they start."


def test_ticket_list_shows_seats_held_and_left(organizer_client):
    convening = make_convening(capacity=None)
    ticket = make_ticket(convening, name="Speaker", capacity=5)
    make_registration(convening, ticket, 1)
    make_registration(convening, ticket, 2, status=Status.OFFERED)
    make_registration(convening, ticket, 3, status=Status.CANCELLED)
    page = organizer_client.get(f"/admin/c/{convening.id}/tickets").text
    row = re.search(r"<tr>\s*<td><a [^>]*><strong>Speaker</strong>.*?</tr>", page, re.S).group(0)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["Free", "5", "2", "3"]


def preview_token(page: str) -> str:
    """The token a confirmation page carries for what it previewed."""
    return re.search(r'name="preview" value="([0-9a-f]+)"', page).group(1)


def effects(page: str) -> dict[str, str]:
    """The confirmation page's list of what goes with a deletion, by key, as plain text."""
    return {key: " ".join(html.unescape(text).split())
            for key, text in re.findall(r'<li id="effect-([\w-]+)">(.*?)</li>', page, re.S)}


def test_a_ticket_type_with_registrations_cannot_be_deleted_and_its_page_says_so_first(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1, status=Status.CANCELLED)  # even a cancelled one keeps it
    url = f"/admin/c/{convening.id}/tickets/{ticket.id}/delete"
    page = organizer_client.get(url).text
    assert "This ticket type has registrations and cannot be deleted; hide it instead." in page
    assert effects(page) == {"registrations": "1 registration (cancelled ones count too) uses it."}
    assert 'id="confirm-delete"' not in page  # nothing to confirm
    forced = organizer_client.post(url, data={"preview": "0" * 32})
    assert forced.status_code == 200 and "cannot be deleted" in forced.text
    assert db.session.get(TicketType, ticket.id) is not None


def test_an_unused_ticket_type_is_deleted_only_on_confirmation_naming_the_codes_it_affects(organizer_client):
    from convene.models import DiscountCode
    convening = make_convening()
    ticket_id, other_id = make_ticket(convening, name="Speaker").id, make_ticket(convening).id
    db.session.add_all([DiscountCode(convening_id=convening.id, code="SPEAK", ticket_type_ids=[ticket_id]),
                        DiscountCode(convening_id=convening.id, code="ALL2", ticket_type_ids=[ticket_id, other_id])])
    db.session.commit()
    url = f"/admin/c/{convening.id}/tickets/{ticket_id}/delete"
    assert f'href="{url}"' in organizer_client.get(f"/admin/c/{convening.id}/tickets").text
    response = organizer_client.post(url)  # the old one-click button: only the confirmation page
    assert response.status_code == 200 and "Delete ticket type “Speaker”?" in response.text
    assert db.session.get(TicketType, ticket_id) is not None
    assert effects(response.text) == {
        "codes-only": "1 code applies only to this ticket type and then to none: SPEAK.",
        "codes": "1 code also applies to other ticket types and keeps doing so: ALL2."}
    response = organizer_client.post(url, data={"preview": preview_token(response.text)})
    assert response.status_code == 302
    assert "Ticket type Speaker is deleted." in organizer_client.get(response.headers["Location"]).text
    assert db.session.get(TicketType, ticket_id) is None


def test_a_registration_after_the_ticket_preview_refuses_the_delete(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    url = f"/admin/c/{convening.id}/tickets/{ticket.id}/delete"
    page = organizer_client.get(url).text
    assert "Nothing else is affected." in page
    make_registration(convening, ticket, 1)
    response = organizer_client.post(url, data={"preview": preview_token(page)})
    assert response.status_code == 200 and "cannot be deleted" in response.text
    assert db.session.get(TicketType, ticket.id) is not None


def test_raising_a_ticket_capacity_offers_seats_to_the_waitlist(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening, capacity=1)
    make_registration(convening, ticket, 1)
    waiting = make_registration(convening, ticket, 2, status=Status.WAITLISTED)
    response = organizer_client.post(f"/admin/c/{convening.id}/tickets/{ticket.id}",
                                     data=ticket_form(price_cents="0", capacity="2"))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED


def test_a_ticket_of_another_convening_is_not_found(organizer_client):
    mine, other = make_convening(), make_convening()
    ticket = make_ticket(other)
    assert organizer_client.get(f"/admin/c/{mine.id}/tickets/{ticket.id}").status_code == 404
    assert organizer_client.post(f"/admin/c/{mine.id}/tickets/{ticket.id}/delete").status_code == 404
    assert organizer_client.get(f"/admin/c/{mine.id}/tickets/{ticket.id}/delete").status_code == 404


# -- questions ---------------------------------------------------------------------------------------

def question_labels(convening_id: int) -> list[str]:
    db.session.expire_all()
    return list(db.session.execute(
        sa.select(Question.label).where(Question.convening_id == convening_id).order_by(Question.position, Question.id)
    ).scalars())


def test_a_choice_question_keeps_its_choices_one_per_line(organizer_client):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/questions/new", data={
        "label": "Which track?", "kind": "single_choice", "choices": "Housing\r\n\r\n  Transit \r\nParks\r\n",
        "required": "y"})
    assert response.status_code == 302
    question = db.session.execute(sa.select(Question)).scalar_one()
    assert question.choices == ["Housing", "Transit", "Parks"]
    assert question.required and question.kind == "single_choice"
    page = organizer_client.get(f"/admin/c/{convening.id}/questions/{question.id}").text
    assert "Housing\nTransit\nParks" in page


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ("", "List at least two choices, one per line."),
        ("Only one", "List at least two choices, one per line."),
        ("Housing\nhousing", "Each choice must be different: “housing” is listed twice."),
    ],
)
def test_choice_questions_need_two_different_choices(organizer_client, choices, message):
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/questions/new", data={
        "label": "Which track?", "kind": "multiple_choice", "choices": choices})
    assert error_beside(response.text, "choices") == message
    assert question_labels(convening.id) == []


def test_choices_are_ignored_for_a_text_question(organizer_client):
    convening = make_convening()
    organizer_client.post(f"/admin/c/{convening.id}/questions/new", data={
        "label": "Anything else?", "kind": "long_text", "choices": "a\nb"})
    assert db.session.execute(sa.select(Question)).scalar_one().choices == []


def test_questions_move_up_and_down_and_stop_at_the_ends(organizer_client):
    convening = make_convening()
    first, second, third = (make_question(convening, label) for label in ("First", "Second", "Third"))
    base = f"/admin/c/{convening.id}/questions"
    organizer_client.post(f"{base}/{third.id}/move/up")
    assert question_labels(convening.id) == ["First", "Third", "Second"]
    organizer_client.post(f"{base}/{first.id}/move/down")
    assert question_labels(convening.id) == ["Third", "First", "Second"]
    organizer_client.post(f"{base}/{third.id}/move/up")
    organizer_client.post(f"{base}/{second.id}/move/down")
    assert question_labels(convening.id) == ["Third", "First", "Second"]
    page = organizer_client.get(base).text
    assert page.index("Third") < page.index("First") < page.index("Second")


def test_a_question_is_edited_and_deleted_on_confirmation_naming_whose_answers_go(organizer_client):
    from convene.models import Answer
    convening = make_convening()
    ticket = make_ticket(convening)
    question = make_question(convening, "Old label")
    organizer_client.post(f"/admin/c/{convening.id}/questions/{question.id}",
                          data={"label": "New label", "kind": "short_text"})
    assert question_labels(convening.id) == ["New label"]
    amina = make_registration(convening, ticket, 1)
    db.session.add(Answer(registration_id=amina.id, question_id=question.id, value="Yes"))
    db.session.commit()
    url = f"/admin/c/{convening.id}/questions/{question.id}/delete"
    page = organizer_client.post(url).text  # a bare post deletes nothing
    assert question_labels(convening.id) == ["New label"]
    assert effects(page) == {"answers": f"1 answer to it is deleted with it: {amina.full_name}."}
    late = make_registration(convening, ticket, 2)
    db.session.add(Answer(registration_id=late.id, question_id=question.id, value="No"))
    db.session.commit()
    refused = organizer_client.post(url, data={"preview": preview_token(page)})
    assert "Nothing was deleted: what it affects changed" in refused.text
    assert effects(refused.text)["answers"].startswith("2 answers to it are deleted with it")
    assert question_labels(convening.id) == ["New label"]
    done = organizer_client.post(url, data={"preview": preview_token(refused.text)})
    assert "The question and 2 answers to it are deleted." in organizer_client.get(done.headers["Location"]).text
    assert question_labels(convening.id) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Answer)) == 0


# -- delegations -------------------------------------------------------------------------------------

def test_delegation_names_are_unique_whatever_their_case(organizer_client):
    convening = make_convening()
    make_delegation(convening, "Maryland")
    response = organizer_client.post(f"/admin/c/{convening.id}/delegations/new", data={"name": " maryland "})
    assert error_beside(response.text, "name") == "A delegation with that name already exists."
    response = organizer_client.post(f"/admin/c/{convening.id}/delegations/new",
                                     data={"name": "Ohio", "contact_name": "Ana", "contact_email": "ana@example.org"})
    assert response.status_code == 302
    names = db.session.execute(sa.select(Delegation.name).order_by(Delegation.name)).scalars().all()
    assert names == ["Maryland", "Ohio"]


def test_the_same_delegation_name_may_be_used_by_another_convening(organizer_client):
    make_delegation(make_convening(), "Maryland")
    convening = make_convening()
    response = organizer_client.post(f"/admin/c/{convening.id}/delegations/new", data={"name": "Maryland"})
    assert response.status_code == 302


def test_delegation_list_counts_active_registrations(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    maryland, ohio = make_delegation(convening, "Maryland"), make_delegation(convening, "Ohio")
    make_registration(convening, ticket, 1, delegation_id=maryland.id)
    make_registration(convening, ticket, 2, delegation_id=maryland.id, status=Status.WAITLISTED)
    make_registration(convening, ticket, 3, delegation_id=maryland.id, status=Status.CANCELLED)
    make_registration(convening, ticket, 4, delegation_id=ohio.id)
    page = organizer_client.get(f"/admin/c/{convening.id}/delegations").text
    counts = dict(re.findall(r"<strong>(\w+)</strong>.*?<td class=\"num\">(\d+)</td>", page, re.S))
    assert counts == {"Maryland": "2", "Ohio": "1"}


def test_deleting_a_delegation_names_its_people_keeps_them_and_needs_the_confirmation(organizer_client):
    convening = make_convening()
    ticket = make_ticket(convening)
    delegation_id = make_delegation(convening).id
    registration = make_registration(convening, ticket, 1, delegation_id=delegation_id)
    url = f"/admin/c/{convening.id}/delegations/{delegation_id}/delete"
    page = organizer_client.post(url).text  # the old one-click button: only the confirmation page
    assert db.session.get(Delegation, delegation_id) is not None
    assert effects(page) == {"registrations": "1 registration loses its delegation and stays registered: "
                                              f"{registration.full_name}."}
    joined = make_registration(convening, ticket, 2, delegation_id=delegation_id)
    refused = organizer_client.post(url, data={"preview": preview_token(page)})
    assert refused.status_code == 200 and "Nothing was deleted" in refused.text
    assert joined.full_name in refused.text and db.session.get(Delegation, delegation_id) is not None
    done = organizer_client.post(url, data={"preview": preview_token(refused.text)})
    assert ("Delegation Maryland is deleted; 2 registrations no longer have a delegation and stay registered."
            in organizer_client.get(done.headers["Location"]).text)
    db.session.expire_all()
    assert db.session.get(Delegation, delegation_id) is None
    assert db.session.get(Registration, registration.id).delegation_id is None


# -- index and dashboard -----------------------------------------------------------------------------

def test_index_lists_convenings_with_confirmed_and_waitlisted_counts(organizer_client):
    convening = make_convening(name="Summit")
    ticket = make_ticket(convening)
    for n in range(3):
        make_registration(convening, ticket, n)
    make_registration(convening, ticket, 9, status=Status.WAITLISTED)
    make_convening(name="Empty one")
    page = organizer_client.get("/admin/").text
    row = re.search(r"<strong>Summit</strong>.*?</tr>", page, re.S).group(0)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["3", "1"]
    assert "Empty one" in page and "New convening" in page


def test_dashboard_shows_counts_by_status_ticket_need_role_and_delegation(staff_client):
    convening = make_convening(capacity=10)
    small = make_ticket(convening, name="Speaker", capacity=3)
    big = make_ticket(convening, name="Delegate")
    ohio = make_delegation(convening, "Ohio")
    make_registration(convening, small, 1, role="speaker", dietary_needs=["vegan", "nut_allergy"])
    make_registration(convening, small, 2, role="speaker", status=Status.OFFERED, dietary_needs=["vegan"],
                      dietary_notes="No mushrooms")
    make_registration(convening, big, 3, delegation_id=ohio.id, accessibility_needs=["step_free"])
    make_registration(convening, big, 4, delegation_id=ohio.id, status=Status.WAITLISTED,
                      accessibility_needs=["step_free", "captioning"], accessibility_notes="Guide dog")
    make_registration(convening, big, 5, status=Status.CANCELLED, dietary_needs=["vegan"])
    page = staff_client.get(f"/admin/c/{convening.id}/").text

    def rows(label: str) -> list[list[str]]:
        """The number cells of every table row headed `label`."""
        found = re.findall(rf'<th scope="row">{re.escape(label)}(?: <span[^<]*</span>)?</th>(.*?)</tr>', page, re.S)
        return [re.findall(r'<td class="num">([^<]*)</td>', row) for row in found]

    # Tickets: confirmed, offered, waitlisted, lapsed, cancelled, capacity, held, left (payment statuses only
    # appear when a registration has one). Then the role row.
    assert rows("Speaker") == [["1", "1", "0", "0", "0", "3", "2", "1"], ["2"]]
    assert rows("Delegate") == [["1", "0", "1", "0", "1", "—", "1", "7"], ["2"]]
    assert rows("All") == [["2", "1", "1", "0", "1", "10", "3", "7"]]
    assert rows("Vegan") == [["2"]]  # the cancelled vegan is not counted
    assert rows("Nut allergy") == [["1"]]
    assert rows("Wrote a dietary note") == [["1"]]
    assert rows("Step-free (wheelchair) access") == [["2"]]
    assert rows("Live captioning") == [["1"]]
    assert rows("Wrote an accessibility note") == [["1"]]
    assert rows("Host") == [["0"]]
    assert rows("Ohio") == [["2"]] and rows("No delegation") == [["2"]]
    assert '<span class="n">1</span><span class="l">Waitlisted</span>' in page
    assert '<span class="n">7</span><span class="l">Seats left</span>' in page
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert "<title" in svg and "<polyline" in svg and "4 active registrations" in svg


def test_dashboard_chart_says_so_when_nobody_registered(organizer_client):
    convening = make_convening()
    page = organizer_client.get(f"/admin/c/{convening.id}/").text
    svg = re.search(r"<svg .*?</svg>", page, re.S).group(0)
    assert "No registrations yet" in svg and "<polyline" not in svg


def _add_registrations(convening, tickets, delegations, start: int, stop: int) -> None:
    for n in range(start, stop):
        make_registration(
            convening, tickets[n % len(tickets)], n, status=[Status.CONFIRMED, Status.WAITLISTED][n % 2],
            role=["delegate", "speaker", "host"][n % 3], delegation_id=delegations[n % len(delegations)].id,
            dietary_needs=["vegan", "halal"][: n % 3], accessibility_needs=["step_free"] if n % 4 == 0 else [],
            created_at=datetime(2025, 3, 1 + n % 20, 12, tzinfo=UTC),
        )


@pytest.mark.parametrize("url", ["/admin/c/{c}/", "/admin/", "/admin/c/{c}/delegations", "/admin/c/{c}/tickets"])
def test_statements_per_page_do_not_grow_with_registrations(organizer_client, url):
    convening = make_convening()
    tickets = [make_ticket(convening, name=f"T{n}") for n in range(3)]
    delegations = [make_delegation(convening, f"D{n}") for n in range(3)]
    url = url.format(c=convening.id)
    _add_registrations(convening, tickets, delegations, 0, 5)
    organizer_client.get(url)  # warm up
    with counting_statements() as few:
        assert organizer_client.get(url).status_code == 200
    _add_registrations(convening, tickets, delegations, 5, 50)
    with counting_statements() as many:
        assert organizer_client.get(url).status_code == 200
    assert len(many) == len(few)
    assert len(few) <= 14  # the dashboard's two for the job queue's health included


# -- access ------------------------------------------------------------------------------------------

ORGANIZER_PAGES = [
    ("get", "/admin/c/new"),
    ("get", "/admin/c/{c}/settings"),
    ("post", "/admin/c/{c}/settings"),
    ("get", "/admin/c/{c}/tickets"),
    ("get", "/admin/c/{c}/tickets/new"),
    ("get", "/admin/c/{c}/tickets/{t}"),
    ("get", "/admin/c/{c}/tickets/{t}/delete"),
    ("post", "/admin/c/{c}/tickets/{t}/delete"),
    ("get", "/admin/c/{c}/questions"),
    ("get", "/admin/c/{c}/questions/new"),
    ("get", "/admin/c/{c}/questions/{q}"),
    ("get", "/admin/c/{c}/questions/{q}/delete"),
    ("post", "/admin/c/{c}/questions/{q}/delete"),
    ("post", "/admin/c/{c}/questions/{q}/move/up"),
    ("get", "/admin/c/{c}/delegations"),
    ("get", "/admin/c/{c}/delegations/new"),
    ("get", "/admin/c/{c}/delegations/{d}"),
    ("get", "/admin/c/{c}/delegations/{d}/delete"),
    ("post", "/admin/c/{c}/delegations/{d}/delete"),
]
VIEWER_PAGES = [("get", "/admin/"), ("get", "/admin/c/{c}/")]


@pytest.fixture
def scene(app):
    convening = make_convening()
    return {"c": convening.id, "t": make_ticket(convening).id, "q": make_question(convening, "Why?").id,
            "d": make_delegation(convening).id}


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize(("method", "url"), ORGANIZER_PAGES + VIEWER_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, scene, method, url):
    response = getattr(client, method)(url.format(**scene))
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize(("method", "url"), ORGANIZER_PAGES)
def test_staff_cannot_open_or_change_setup_pages(staff_client, scene, method, url):
    assert getattr(staff_client, method)(url.format(**scene)).status_code == 403
    assert db.session.get(TicketType, scene["t"]) is not None


@pytest.mark.parametrize(("method", "url"), VIEWER_PAGES)
def test_staff_can_view_the_index_and_dashboard(staff_client, scene, method, url):
    response = staff_client.get(url.format(**scene))
    assert response.status_code == 200
    assert "New convening" not in response.text


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize(("method", "url"), ORGANIZER_PAGES + VIEWER_PAGES)
def test_organizers_can_open_every_page(organizer_client, scene, method, url):
    response = getattr(organizer_client, method)(url.format(**scene))
    # An empty settings form comes back with its errors, a bare delete with its confirmation page (nothing
    # deleted); the move buttons redirect to their list.
    expected = 200 if method == "get" or url.endswith(("/settings", "/delete")) else 302
    assert response.status_code == expected
    assert db.session.get(TicketType, scene["t"]) is not None and db.session.get(Delegation, scene["d"]) is not None


# -- text and dates as the organizer typed them (issue 11: 6, 7) ------------------------------------------

def test_a_description_typed_with_browser_line_breaks_keeps_its_paragraphs(organizer_client, client):
    convening = make_convening(slug="paragraphs")
    response = organizer_client.post(f"/admin/c/{convening.id}/settings", data=convening_form(
        slug="paragraphs", description="Para one.\r\n\r\nPara two."))
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Convening, convening.id).description == "Para one.\n\nPara two."
    page = client.get("/c/paragraphs/").text
    assert "<p>Para one.</p>" in page and "<p>Para two.</p>" in page


def test_the_paragraphs_filter_splits_text_stored_with_crlf_before_forms_cleaned_it():
    from convene.templating import paragraphs

    assert paragraphs("Para one.\r\n\r\nPara two.\r\nStill two.") == ["Para one.", "Para two.\nStill two."]
    assert paragraphs("One.\r\r \n\nTwo.") == ["One.", "Two."]
    assert paragraphs(None) == [] and paragraphs("  \r\n ") == []


def test_a_description_stored_with_crlf_still_shows_two_paragraphs(client):
    make_convening(slug="old-row", description="Para one.\r\n\r\nPara two.")
    page = client.get("/c/old-row/").text
    assert "<p>Para one.</p>" in page and "<p>Para two.</p>" in page


@pytest.fixture
def early_bird(app):
    """A Toronto convening whose early-bird price ends at 23:59:59 on 4 May local (05 May 03:59:59 UTC)."""
    convening = make_convening(slug="early-bird", timezone="America/Toronto", invoice_enabled=True,
                               starts_on=date(2027, 6, 8), ends_on=date(2027, 6, 10))
    ticket = make_ticket(convening, name="Delegate", price_cents=45000, early_price_cents=35000,
                         early_until_at=datetime(2027, 5, 5, 3, 59, 59, tzinfo=UTC))
    return convening, ticket


def test_the_early_bird_end_is_the_convenings_date_in_the_back_office(organizer_client, client, early_bird):
    convening, ticket = early_bird
    page = client.get("/c/early-bird/").text
    assert "Early-bird until 04 May 2027" in page and "05 May" not in page
    tickets = organizer_client.get(f"/admin/c/{convening.id}/tickets").text
    assert "until 04 May 2027 23:59" in tickets and "05 May" not in tickets
    form = organizer_client.get(f"/admin/c/{convening.id}/tickets/{ticket.id}").text
    assert 'value="2027-05-04T23:59"' in form


@pytest.mark.parametrize("path", ["/c/early-bird/register", "/c/early-bird/register/group"])
def test_the_early_bird_end_is_the_convenings_date_on_the_forms(client, early_bird, path):
    page = client.get(path).text
    assert "early-bird price until 04 May" in page and "05 May" not in page


def rows_pointing_at(table_name: str, row_id: int) -> dict[str, int]:
    """For every column with a foreign key to table_name.id: how many rows hold row_id (all, not only known ones)."""
    found = {}
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if any(k.column.table.name == table_name for k in column.foreign_keys):
                found[f"{table.name}.{column.name}"] = db.session.scalar(
                    sa.select(sa.func.count()).select_from(table).where(column == row_id))
    return found


def test_organizer_merges_a_delegation_into_another_moving_every_reference(organizer_client):
    from convene.models import Order
    from convene.services import registrations
    convening = make_convening()
    ticket = make_ticket(convening)
    source, target = make_delegation(convening, "Dayton OH"), make_delegation(convening, "Dayton, OH (Ohio)")
    source_id, target_id = source.id, target.id
    order = registrations.register_delegation(convening.id, {"name": "Lena", "email": "lena@example.org"}, "Dayton OH",
                                              [{"given_name": "Ana", "family_name": "Lima", "email": "ana@example.org",
                                                "ticket_type_id": ticket.id}])
    make_registration(convening, ticket, 7, delegation_id=source_id)
    make_registration(convening, ticket, 8, delegation_id=target_id)
    assert order.delegation_id == source_id
    base = f"/admin/c/{convening.id}/delegations/{source_id}/merge"
    assert "Merge…" in organizer_client.get(f"/admin/c/{convening.id}/delegations").text
    choose = organizer_client.get(base).text
    assert f'<option value="{target_id}">Dayton, OH (Ohio)</option>' in choose and "confirm-merge" not in choose
    review = organizer_client.get(f"{base}?into={target_id}").text
    assert re.search(r'id="moving-registrations">2 registrations move', review)
    assert re.search(r'id="moving-orders">1 order move', review)
    assert db.session.get(Delegation, source_id) is not None  # reviewing changes nothing
    response = organizer_client.post(base, data={"into": target_id})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Delegation, source_id) is None
    assert set(rows_pointing_at("delegation", source_id).values()) == {0}
    moved = rows_pointing_at("delegation", target_id)
    assert moved["registration.delegation_id"] == 3 and moved["orders.delegation_id"] == 1
    assert db.session.get(Order, order.id).delegation_id == target_id


def test_a_delegation_is_not_merged_into_itself_or_one_of_another_convening(organizer_client):
    from convene.errors import ConveneError
    from convene.services import merges
    convening = make_convening()
    ticket = make_ticket(convening)
    mine, foreign = make_delegation(convening, "Akron"), make_delegation(make_convening(), "Akron")
    make_registration(convening, ticket, 1, delegation_id=mine.id)
    response = organizer_client.post(f"/admin/c/{convening.id}/delegations/{mine.id}/merge", data={"into": foreign.id})
    assert response.status_code == 200 and "There is no other delegation" in response.text
    with pytest.raises(ConveneError):
        merges.merge_delegations(mine.id, foreign.id)
    with pytest.raises(ConveneError):
        merges.merge_delegations(mine.id, mine.id)
    db.session.expire_all()
    assert db.session.get(Delegation, mine.id) is not None and db.session.get(Delegation, foreign.id) is not None
    assert rows_pointing_at("delegation", mine.id)["registration.delegation_id"] == 1


# -- the new-delegations switch (issue 11: 19) ---------------------------------------------------------------

def switch_ticked(page: str) -> bool:
    [box] = re.findall(r'<input[^>]*name="allow_new_delegations"[^>]*>', page)
    return " checked" in box


def test_the_settings_page_saves_the_new_delegations_switch(organizer_client):
    convening = make_convening(slug="switch", reference_prefix="SW")
    url = f"/admin/c/{convening.id}/settings"
    page = organizer_client.get(url).text
    assert "Group leads may add a delegation that is not on the list" in page
    assert not switch_ticked(page)
    response = organizer_client.post(url, data=convening_form(slug="switch", allow_new_delegations="y"))
    assert response.status_code == 302
    assert db.session.get(Convening, convening.id).allow_new_delegations is True
    assert switch_ticked(organizer_client.get(url).text)
    response = organizer_client.post(url, data=convening_form(slug="switch"))  # an unticked box is absent
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Convening, convening.id).allow_new_delegations is False


def group_form(ticket, **delegation) -> dict:
    """The public delegation form with one delegate, as a browser posts it."""
    return {"lead_name": "Lena Ortiz", "lead_email": "lena@example.org", "organization": "Welcoming Springfield",
            "delegates-0-given_name": "Ana", "delegates-0-family_name": "Lima",
            "delegates-0-email": "ana@example.org", "delegates-0-ticket_type_id": str(ticket.id), **delegation}


def delegation_names(convening_id: int) -> list[str]:
    db.session.expire_all()
    return sorted(db.session.execute(
        sa.select(Delegation.name).where(Delegation.convening_id == convening_id)).scalars())


def registered(convening_id: int) -> list[Registration]:
    db.session.expire_all()
    return db.session.execute(sa.select(Registration).where(Registration.convening_id == convening_id)).scalars().all()


def test_with_the_switch_off_a_new_delegation_is_refused_beside_the_field_and_nothing_is_created(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_delegation(convening, "Dayton, OH")
    url = f"/c/{convening.slug}/register/group"
    page = client.get(url).text
    assert 'name="delegation_choice"' in page and 'name="delegation_name"' not in page
    response = client.post(url, data=group_form(ticket, delegation_choice="new", delegation_name="Springfield"))
    assert response.status_code == 200
    assert error_beside(response.text, "delegation_choice") == "Choose your delegation."
    assert delegation_names(convening.id) == ["Dayton, OH"] and registered(convening.id) == []


def test_with_the_switch_on_a_new_delegation_is_created_and_a_near_duplicate_joins_the_existing_one(client):
    convening = make_convening(allow_new_delegations=True)
    ticket = make_ticket(convening)
    dayton = make_delegation(convening, "Dayton, OH")
    url = f"/c/{convening.slug}/register/group"
    page = client.get(url).text
    assert 'value="new">Another delegation (type its name below)</option>' in page
    assert 'name="delegation_name"' in page
    response = client.post(url, data=group_form(ticket, delegation_choice="new", delegation_name="Springfield"))
    assert response.status_code == 302
    assert delegation_names(convening.id) == ["Dayton, OH", "Springfield"]
    [ana] = registered(convening.id)
    assert ana.delegation.name == "Springfield"
    data = group_form(ticket, delegation_choice="new", delegation_name=" dayton  oh. ",
                      **{"delegates-0-email": "bo@example.org", "delegates-0-given_name": "Bo"})
    assert client.post(url, data=data).status_code == 302
    assert delegation_names(convening.id) == ["Dayton, OH", "Springfield"]
    bo = next(r for r in registered(convening.id) if r.email == "bo@example.org")
    assert bo.delegation_id == dayton.id


def test_the_service_takes_a_new_delegation_only_when_switched_on_or_while_there_are_none(app):
    from convene.errors import ConveneError
    from convene.services import registrations

    def register(convening, ticket, n, name):
        return registrations.register_delegation(
            convening.id, {"name": "Lead", "email": f"lead{n}@example.org"}, name,
            [{"given_name": "Ana", "family_name": "Lima", "email": f"d{n}@example.org", "ticket_type_id": ticket.id}])

    fresh = make_convening()
    fresh_ticket = make_ticket(fresh)
    register(fresh, fresh_ticket, 1, "Akron")  # no delegations yet: the first lead names theirs
    assert delegation_names(fresh.id) == ["Akron"]
    with pytest.raises(ConveneError) as refused:
        register(fresh, fresh_ticket, 2, "Springfield")
    assert refused.value.code == "delegation_unknown" and refused.value.field == "delegation_choice"
    assert delegation_names(fresh.id) == ["Akron"] and len(registered(fresh.id)) == 1
    db.session.get(Convening, fresh.id).allow_new_delegations = True
    db.session.commit()
    register(fresh, fresh_ticket, 3, "Springfield")
    assert delegation_names(fresh.id) == ["Akron", "Springfield"]
