"""The back office's registrations through the test client: list, detail, edit, cancel, add, export, import."""
from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import g
from sqlalchemy import event

from convene.extensions import db
from convene.models import Delegation, OutboxMessage, Registration, Status, utcnow
from convene.services import registrations as service
from convene.services.registrations import new_reference
from tests.factories import (
    make_convening,
    make_delegation,
    make_question,
    make_registration,
    make_ticket,
    person,
)


@pytest.fixture
def scene(app):
    """A convening with a ticket type, a hidden comp ticket, a delegation, a question and one registration."""
    convening = make_convening(name="Toronto Cohort Convening")
    ticket = make_ticket(convening, name="Delegate")
    comp = make_ticket(convening, name="Host (comp)", hidden=True)
    delegation = make_delegation(convening, "Maryland")
    question = make_question(convening, "Networking dinner?", "yes_no")
    registration = service.add_registration(convening.id, ticket.id, person(1), {question.id: True},
                                            delegation_id=delegation.id, send_email=False)
    return type("Scene", (), dict(convening=convening, ticket=ticket, comp=comp, delegation=delegation,
                                  question=question, registration=registration))


def url(scene, path: str) -> str:
    return "/admin/c/{c}".format(c=scene.convening.id) + path.format(r=scene.registration.id)


def bulk_registrations(convening, ticket, count: int, start: int = 1, **overrides) -> None:
    """Many registrations in one commit (the factory commits each)."""
    now = utcnow()
    for n in range(start, start + count):
        data = person(n)
        data.update(overrides)
        db.session.add(Registration(convening_id=convening.id, ticket_type_id=ticket.id,
                                    reference=new_reference(convening), status=Status.CONFIRMED, confirmed_at=now,
                                    **data))
    db.session.commit()


def names_in(page: str) -> list[str]:
    """'Family, Given' names in the order the list shows them."""
    return re.findall(r'/registrations/\d+">([^<]+, [^<]+)</a>', page)


def form_data(n: int = 1, **overrides) -> dict:
    data = {k: v for k, v in person(n).items() if not isinstance(v, list)}
    data.update(overrides)
    return data


def count_statements():
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    class Counting:
        def __enter__(self):
            event.listen(db.engine, "before_cursor_execute", before)
            return statements

        def __exit__(self, *exc):
            event.remove(db.engine, "before_cursor_execute", before)

    return Counting()


def fresh(registration_id: int) -> Registration:
    db.session.rollback()
    return db.session.get(Registration, registration_id)


# Access ---------------------------------------------------------------------------------------------------------

PAGES = [  # method, path, staff may open it
    ("get", "/registrations", True),
    ("get", "/registrations/{r}", True),
    ("post", "/registrations/{r}/badge", True),  # staff fix what prints on the badge (issue 11: 23)
    ("get", "/registrations/walk-in", True),  # and add walk-ins at the desk
    ("post", "/registrations/walk-in", True),
    ("get", "/registrations/{r}/edit", False),
    ("post", "/registrations/{r}/edit", False),
    ("get", "/registrations/new", False),
    ("post", "/registrations/new", False),
    ("get", "/registrations/{r}/cancel", False),
    ("post", "/registrations/{r}/cancel", False),
    ("post", "/registrations/{r}/resend", False),
    ("post", "/registrations/{r}/visit-preferences", False),  # organizers enter rankings (issue 11: 15)
    ("get", "/registrations.csv", False),
    ("get", "/import", False),
    ("post", "/import", False),
    ("post", "/import/columns", False),  # the import's columns step
    ("get", "/import/template.csv", False),
]


@pytest.mark.one_database  # who may open what is decided in Python, the same on either database
@pytest.mark.parametrize("method,path,staff_allowed", PAGES)
@pytest.mark.parametrize("role", ["anonymous", "staff", "organizer"])
def test_registrations_pages_need_a_login_and_changes_need_an_organizer(request, scene, method, path, staff_allowed,
                                                                        role):
    client = request.getfixturevalue({"anonymous": "client", "staff": "staff_client",
                                      "organizer": "organizer_client"}[role])
    response = getattr(client, method)(url(scene, path))
    if role == "anonymous":
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    elif role == "staff" and not staff_allowed:
        assert response.status_code == 403
    elif method == "get":
        assert response.status_code == 200
    else:  # an empty POST from someone allowed: refused as a form, or done and redirected, never 403/500
        assert response.status_code in (200, 302, 400)
    assert fresh(scene.registration.id).status == (
        Status.CANCELLED if (role == "organizer" and path.endswith("/cancel") and method == "post")
        else Status.CONFIRMED)


def test_staff_see_no_buttons_that_change_things(staff_client, scene):
    page = staff_client.get(url(scene, "/registrations/{r}")).get_data(as_text=True)
    assert scene.registration.reference in page
    assert "/edit" not in page and "/cancel" not in page and "/resend" not in page
    listing = staff_client.get(url(scene, "/registrations")).get_data(as_text=True)
    assert "registrations.csv" not in listing and "/registrations/new" not in listing


def test_other_conventions_registrations_are_not_found(organizer_client, scene):
    other = make_convening()
    assert organizer_client.get(f"/admin/c/{other.id}/registrations/{scene.registration.id}").status_code == 404
    assert organizer_client.get(f"/admin/c/{other.id}/registrations/{scene.registration.id}/edit").status_code == 404
    assert organizer_client.get("/admin/c/999999/registrations").status_code == 404


# List -----------------------------------------------------------------------------------------------------------

def test_search_matches_names_email_organization_and_reference_ignoring_case(organizer_client, app):
    convening = make_convening()
    ticket = make_ticket(convening)
    ana = make_registration(convening, ticket, given_name="Ana", family_name="Ruiz", email="ana@ruiz.example",
                            organization="City of Dayton")
    make_registration(convening, ticket, given_name="Ben", family_name="Okafor", email="ben@metro.example",
                      organization="Metro_Works 100%")
    make_registration(convening, ticket, given_name="Cy", family_name="Dee", email="cy@example.org",
                      organization="Ohio DOL")

    def search(q: str) -> list[str]:
        page = organizer_client.get(f"/admin/c/{convening.id}/registrations", query_string={"q": q})
        assert page.status_code == 200
        return names_in(page.get_data(as_text=True))

    assert search("ana") == ["Ruiz, Ana"]
    assert search("OKAFOR") == ["Okafor, Ben"]
    assert search("metro.EXAMPLE") == ["Okafor, Ben"]
    assert search("dayton") == ["Ruiz, Ana"]
    assert search(ana.reference.lower()) == ["Ruiz, Ana"]
    assert search("ana ruiz") == ["Ruiz, Ana"]  # every word must match somewhere
    assert search("_") == ["Okafor, Ben"]  # LIKE wildcards are searched for literally
    assert search("100%") == ["Okafor, Ben"]
    assert search("%") == ["Okafor, Ben"]
    assert search("nobody") == []


def test_filters_by_status_ticket_delegation_and_role_and_shows_counts(organizer_client, app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Delegate")
    comp = make_ticket(convening, name="Comp", hidden=True)
    maryland = make_delegation(convening, "Maryland")
    make_registration(convening, ticket, 1, family_name="Alpha", delegation_id=maryland.id)
    make_registration(convening, ticket, 2, family_name="Bravo", status=Status.WAITLISTED)
    make_registration(convening, comp, 3, family_name="Charlie", role="speaker")
    make_registration(convening, ticket, 4, family_name="Delta", status=Status.CANCELLED)

    def listed(**args) -> tuple[list[str], str]:
        page = organizer_client.get(f"/admin/c/{convening.id}/registrations", query_string=args)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        return [n.split(",")[0] for n in names_in(text)], text

    names, page = listed()
    assert names == ["Alpha", "Bravo", "Charlie", "Delta"]
    assert "<strong>4</strong> registrations" in page and "Confirmed: 2" in page and "Waitlisted: 1" in page
    assert listed(status="waitlisted")[0] == ["Bravo"]
    assert listed(status="active")[0] == ["Alpha", "Bravo", "Charlie"]
    assert listed(ticket=comp.id)[0] == ["Charlie"]
    assert listed(delegation=maryland.id)[0] == ["Alpha"]
    assert listed(delegation="none")[0] == ["Bravo", "Charlie", "Delta"]
    assert listed(role="speaker")[0] == ["Charlie"]
    names, page = listed(ticket=ticket.id, status="confirmed")
    assert names == ["Alpha"] and "<strong>1</strong> registration match" in page


def test_sorts_by_clickable_columns_both_ways(organizer_client, app):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1, family_name="Bravo", organization="Zulu Org", status=Status.WAITLISTED)
    make_registration(convening, ticket, 2, family_name="Alpha", organization="Mike Org")
    make_registration(convening, ticket, 3, family_name="Charlie", organization="Alpha Org",
                      status=Status.CANCELLED)

    def order(**args) -> list[str]:
        page = organizer_client.get(f"/admin/c/{convening.id}/registrations", query_string=args)
        return [n.split(",")[0] for n in names_in(page.get_data(as_text=True))]

    assert order() == ["Alpha", "Bravo", "Charlie"]
    assert order(sort="name", dir="desc") == ["Charlie", "Bravo", "Alpha"]
    assert order(sort="organization") == ["Charlie", "Alpha", "Bravo"]
    assert order(sort="created", dir="desc") == ["Charlie", "Alpha", "Bravo"]
    assert order(sort="status") == ["Charlie", "Alpha", "Bravo"]  # cancelled, confirmed, waitlisted
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations?sort=organization&q=org").get_data(
        as_text=True)
    link = re.search(r'<a href="([^"]+)">Organization', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {"sort": ["organization"], "dir": ["desc"], "q": ["org"]}


def test_pages_keep_the_filters_in_their_links(organizer_client, app):
    app.config["ADMIN_PAGE_SIZE"] = 3
    convening = make_convening()
    ticket = make_ticket(convening)
    bulk_registrations(convening, ticket, 7, organization="Ohio DOL")
    bulk_registrations(convening, ticket, 2, start=50, organization="Elsewhere")
    first = organizer_client.get(f"/admin/c/{convening.id}/registrations?q=ohio").get_data(as_text=True)
    assert len(names_in(first)) == 3 and "Page 1 of 3 (7 in all)" in first
    next_link = re.search(r'<a href="([^"]+)">Next', first).group(1).replace("&amp;", "&")
    last_on_page = re.findall(r'/registrations/(\d+)">', first)[-1]
    assert parse_qs(urlsplit(next_link).query) == {"q": ["ohio"], "page": ["2"], "after": [last_on_page]}
    last = organizer_client.get(f"/admin/c/{convening.id}/registrations?q=ohio&page=3").get_data(as_text=True)
    assert len(names_in(last)) == 1 and "Page 3 of 3" in last
    beyond = organizer_client.get(f"/admin/c/{convening.id}/registrations?q=ohio&page=9")
    assert beyond.status_code == 200 and "There is nothing on page 9" in beyond.get_data(as_text=True)


@pytest.mark.parametrize("query", [
    "status=nonsense&page=abc&ticket=xyz",
    "ticket=999999&delegation=12abc&role=emperor&sort=drop+table&dir=sideways",
    "page=-3", "page=0", "page=99999999999999999999999", "page=1e9", "ticket=-1", "delegation=0x1F",
    "q=" + "%25" * 300, "q=%00", "q=%27%3B--", "status=", "sort=&dir=",
])
def test_garbage_in_the_query_string_never_breaks_the_list(organizer_client, scene, query):
    expected = 400 if "%00" in query else 200  # NUL is refused app-wide with a clear page, never a crash
    response = organizer_client.get(url(scene, "/registrations?") + query)
    assert response.status_code == expected
    export = organizer_client.get(url(scene, "/registrations.csv?") + query)
    assert export.status_code == expected


def test_ignored_filters_are_named_on_the_page(organizer_client, scene):
    page = organizer_client.get(url(scene, "/registrations?status=nonsense&page=abc&ticket=xyz")).get_data(
        as_text=True)
    assert "Ignored a status, ticket type, page value" in page
    assert scene.registration.reference in page  # and the list still shows everyone


LIST_QUERIES = ("", "?q=amina&sort=created&dir=desc", "?status=confirmed&sort=organization&page=2",
                "?delegation=none&role=delegate")


def list_statements(client, convening_id: int, query: str) -> int:
    """Statements one list request sends, starting from an empty session (as a real request does)."""
    # Start cold, like a real request, even where the client shares the test's app context.
    db.session.remove()
    g.pop("_login_user", None)  # Flask-Login's cached user would belong to the removed session
    with count_statements() as statements:
        response = client.get(f"/admin/c/{convening_id}/registrations{query}")
    assert response.status_code == 200
    return len(statements)


def test_the_list_takes_the_same_number_of_queries_for_10_or_200_registrations(organizer_client, app, backend):
    convening = make_convening()
    convening_id = convening.id
    ticket_ids = [make_ticket(convening, name=f"Ticket {n}").id for n in range(3)]
    counts = {}
    for total in (10, 200):
        convening = db.session.get(type(convening), convening_id)
        have = db.session.scalar(sa.select(sa.func.count()).select_from(Registration))
        for n in range(have, total):  # a delegation each, so a lazy load per row could not hide in the cache
            delegation = Delegation(convening_id=convening_id, name=f"Delegation {n}")
            db.session.add(Registration(
                convening_id=convening_id, ticket_type_id=ticket_ids[n % 3], delegation=delegation,
                reference=new_reference(convening), status=Status.CONFIRMED, **person(1000 + n)))
        db.session.commit()
        for query in LIST_QUERIES:
            counts[(total, query)] = list_statements(organizer_client, convening_id, query)
    for query in LIST_QUERIES:
        assert counts[(10, query)] == counts[(200, query)] <= 10, counts
    print(f"[{backend}] statements per list request: {sorted(set(counts.values()))}")


# Detail ---------------------------------------------------------------------------------------------------------

def test_detail_shows_every_field_answers_history_and_emails_sent(organizer_client, scene, outbox):
    service.update_registration(scene.registration.id, {"dietary_needs": ["vegan", "halal"], "pronouns": "she/her",
                                                        "accessibility_notes": "Needs a ramp"})
    service.send_manage_link(scene.convening.id, scene.registration.email)
    page = organizer_client.get(url(scene, "/registrations/{r}")).get_data(as_text=True)
    r = fresh(scene.registration.id)
    for text in (r.reference, r.given_name, r.family_name, r.email, r.organization, r.job_title, "she/her",
                 "Vegan; Halal", "Needs a ramp", "Maryland", "Delegate", "Added in the back office",
                 "Networking dinner?", "Yes", "manage_link", f"Your registration for {scene.convening.name}"):
        assert text in page, text
    local = r.confirmed_at.astimezone(scene.convening.tz).strftime("%H:%M")
    assert local in page and ("EST" in page or "EDT" in page)  # America/Toronto, not UTC


def test_detail_lists_the_offer_deadline_and_cancellation_time(organizer_client, app):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    waiting = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    service.cancel_registration(first.id)
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{waiting.id}").get_data(as_text=True)
    assert "Joined the waitlist" in page and "Seat held until" in page and "offer" in page
    page = organizer_client.get(f"/admin/c/{convening.id}/registrations/{first.id}").get_data(as_text=True)
    assert "Cancelled" in page and "Cancel registration" not in page


# Edit -----------------------------------------------------------------------------------------------------------

def test_edit_form_is_filled_and_saves_details_answers_role_delegation_and_ticket(organizer_client, scene):
    form = organizer_client.get(url(scene, "/registrations/{r}/edit")).get_data(as_text=True)
    assert 'value="amina1@example.org"' in form
    assert re.search(rf'<select id="delegation_id".*?<option selected value="{scene.delegation.id}">Maryland', form,
                     re.S)
    assert re.search(r'<input checked id="q_\d+-0" name="q_\d+" type="radio" value="yes">', form)
    ohio = make_delegation(scene.convening, "Ohio")
    response = organizer_client.post(url(scene, "/registrations/{r}/edit"), data=form_data(
        1, organization="Maryland DOL", ticket_type_id=scene.comp.id, role="host", delegation_id=ohio.id,
        **{scene.question.field_name: "no"}))
    assert response.status_code == 302
    r = fresh(scene.registration.id)
    assert (r.organization, r.ticket_type_id, r.role, r.delegation_id) == ("Maryland DOL", scene.comp.id, "host",
                                                                           ohio.id)
    assert r.answer_for(scene.question.id) is False
    organizer_client.post(url(scene, "/registrations/{r}/edit"), data=form_data(
        1, ticket_type_id=scene.ticket.id, role="delegate", delegation_id=0))
    assert fresh(scene.registration.id).delegation_id is None


def test_edit_to_an_email_already_registered_shows_the_message_beside_the_field_and_changes_nothing(
        organizer_client, scene):
    other = make_registration(scene.convening, scene.ticket, 2)
    response = organizer_client.post(url(scene, "/registrations/{r}/edit"), data=form_data(
        1, email=other.email.upper(), organization="Changed", ticket_type_id=scene.ticket.id, role="delegate",
        delegation_id=scene.delegation.id))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'id="email-error">This email address is already registered', page)
    r = fresh(scene.registration.id)
    assert r.email == "amina1@example.org" and r.organization == "City of Dayton"


def test_edit_refuses_a_full_ticket_type_beside_the_ticket_field(organizer_client, scene):
    full = make_ticket(scene.convening, name="Speaker", capacity=1)
    make_registration(scene.convening, full, 9)
    response = organizer_client.post(url(scene, "/registrations/{r}/edit"), data=form_data(
        1, ticket_type_id=full.id, role="delegate", delegation_id=0))
    assert response.status_code == 400
    assert 'id="ticket_type_id-error">There are not enough seats' in response.get_data(as_text=True)
    assert fresh(scene.registration.id).ticket_type_id == scene.ticket.id


def test_edit_shows_form_errors_for_bad_input(organizer_client, scene):
    response = organizer_client.post(url(scene, "/registrations/{r}/edit"), data=form_data(
        1, email="nope", given_name="", ticket_type_id="abc", role="emperor", delegation_id="x"))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="email-error"' in page and 'id="given_name-error"' in page and 'id="role-error"' in page
    assert fresh(scene.registration.id).given_name == "Amina1"


# Cancel and resend ----------------------------------------------------------------------------------------------

def test_cancel_asks_first_then_frees_the_seat_for_the_waitlist(organizer_client, outbox, app):
    convening = make_convening(capacity=1)
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    waiting = service.register_attendee(convening.id, ticket.id, person(2), join_waitlist=True)
    path = f"/admin/c/{convening.id}/registrations/{first.id}/cancel"
    page = organizer_client.get(path).get_data(as_text=True)
    assert "Cancel this registration?" in page and first.reference in page
    assert fresh(first.id).status == Status.CONFIRMED
    response = organizer_client.post(path)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/registrations/{first.id}")
    assert fresh(first.id).status == Status.CANCELLED
    assert fresh(waiting.id).status == Status.OFFERED
    assert any("held for you" in m["Subject"] for m in outbox.to("amina2@example.org"))
    cancelled = [m for m in outbox.to("amina1@example.org") if "cancelled" in m["Subject"]]
    assert len(cancelled) == 1 and "The organizers cancelled" in outbox.text(cancelled[0])
    again = organizer_client.post(path, follow_redirects=True).get_data(as_text=True)
    assert "already cancelled" in again


def test_resend_emails_the_manage_link(organizer_client, scene, outbox):
    response = organizer_client.post(url(scene, "/registrations/{r}/resend"), follow_redirects=True)
    assert "was sent to amina1@example.org" in response.get_data(as_text=True)
    [message] = outbox.to("amina1@example.org")
    assert f"/c/{scene.convening.slug}/manage/" in outbox.text(message)
    assert db.session.scalar(sa.select(OutboxMessage.kind).where(
        OutboxMessage.registration_id == scene.registration.id)) == "manage_link"


# Add by hand ----------------------------------------------------------------------------------------------------

def test_add_by_hand_takes_a_hidden_comp_ticket_and_emails_the_confirmation(organizer_client, scene, outbox):
    form = organizer_client.get(url(scene, "/registrations/new")).get_data(as_text=True)
    assert "Host (comp) (hidden)" in form and re.search(r'<input checked id="send_email"', form)
    response = organizer_client.post(url(scene, "/registrations/new"), data=form_data(
        5, ticket_type_id=scene.comp.id, role="host", delegation_id=scene.delegation.id, send_email="y",
        **{scene.question.field_name: "yes"}))
    assert response.status_code == 302
    added = db.session.execute(sa.select(Registration).where(Registration.email == "amina5@example.org")).scalar_one()
    assert response.headers["Location"].endswith(f"/registrations/{added.id}")
    assert (added.ticket_type_id, added.role, added.source, added.status, added.delegation_id) == (
        scene.comp.id, "host", "admin", Status.CONFIRMED, scene.delegation.id)
    assert added.answer_for(scene.question.id) is True
    [message] = outbox.to("amina5@example.org")
    assert added.reference in message["Subject"]


def test_add_by_hand_without_email_sends_nothing_and_refuses_a_full_ticket(organizer_client, scene, outbox):
    organizer_client.post(url(scene, "/registrations/new"), data=form_data(
        6, ticket_type_id=scene.ticket.id, role="delegate", delegation_id=0))
    assert fresh(scene.registration.id) and outbox.to("amina6@example.org") == []
    source = sa.select(Registration.source).where(Registration.email == "amina6@example.org")
    assert db.session.scalar(source) == "admin"
    full = make_ticket(scene.convening, name="Speaker", capacity=1)
    make_registration(scene.convening, full, 9)
    response = organizer_client.post(url(scene, "/registrations/new"), data=form_data(
        7, ticket_type_id=full.id, role="speaker", delegation_id=0))
    assert response.status_code == 400
    assert 'id="ticket_type_id-error">There are not enough seats' in response.get_data(as_text=True)
    response = organizer_client.post(url(scene, "/registrations/new"), data=form_data(
        1, ticket_type_id=scene.ticket.id, role="delegate", delegation_id=0))
    assert 'id="email-error">This email address is already registered' in response.get_data(as_text=True)


# Export ---------------------------------------------------------------------------------------------------------

def read_csv(response) -> list[dict]:
    raw = response.data
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_export_has_every_field_and_every_answer_and_reads_back(organizer_client, scene):
    topics = make_question(scene.convening, "Working groups", "multiple_choice", choices=["WIOA", "Refugees"])
    notes = make_question(scene.convening, "Anything else?", "long_text")
    service.update_registration(scene.registration.id, {"dietary_needs": ["vegan", "nut_allergy"],
                                                        "accessibility_needs": ["step_free"]},
                                {topics.id: ["WIOA", "Refugees"], notes.id: "Line one,\n\"quoted\" line two"})
    service.add_registration(scene.convening.id, scene.comp.id, person(2, organization="=HYPERLINK(\"http://x\")",
                                                                       given_name="@Zoë", family_name="-Ångström"),
                             {scene.question.id: False}, role="ta_provider", send_email=False)
    response = organizer_client.get(url(scene, "/registrations.csv"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f"attachment; filename={scene.convening.slug}-registrations.csv")
    rows = read_csv(response)
    assert list(rows[0])[-3:] == ["Networking dinner?", "Working groups", "Anything else?"]
    amina, zoe = sorted(rows, key=lambda row: row["Email"])
    assert amina["Reference"] == scene.registration.reference and amina["Status"] == "Confirmed"
    assert amina["Delegation"] == "Maryland" and amina["Ticket type"] == "Delegate"
    assert amina["Dietary needs"] == "Vegan; Nut allergy"
    assert amina["Accessibility needs"] == "Step-free (wheelchair) access"
    assert amina["Networking dinner?"] == "Yes" and amina["Working groups"] == "WIOA; Refugees"
    assert amina["Anything else?"] == "Line one,\n\"quoted\" line two"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", amina["Registered at"])  # Toronto time
    assert zoe["Organization"] == "'=HYPERLINK(\"http://x\")"  # formula injection defused
    assert zoe["Given name"] == "'@Zoë" and zoe["Family name"] == "'-Ångström"
    assert zoe["Role"] == "TA provider" and zoe["Networking dinner?"] == "No" and zoe["Working groups"] == ""


def test_export_has_price_payment_visits_sessions_and_working_groups(organizer_client, scene):
    from convene.models import Order, SessionSignup, VisitAssignment
    from tests.factories import make_host, make_slot, make_visit
    from tests.schedule_helpers import make_block, make_session

    paid_ticket = make_ticket(scene.convening, name="Observer", price_cents=29500)
    buyer = make_registration(scene.convening, paid_ticket, 3, phone="+1 315 555 5707")
    order = Order(convening_id=scene.convening.id, reference="TOR-ORD1", method="invoice", status="invoiced",
                  buyer_name="Amina", buyer_email=buyer.email, currency="CAD", subtotal_cents=29500,
                  total_cents=29500, invoice_number="TOR-2026-0001", po_number="PO-4471")
    db.session.add(order)
    db.session.flush()
    buyer.order_id, buyer.price_cents = order.id, 29500
    morning, afternoon = make_slot(scene.convening, "Tuesday morning", 9), make_slot(scene.convening, "Tuesday afternoon", 14)
    for slot, host in ((afternoon, "Magnet"), (morning, "George Brown College")):
        visit = make_visit(make_host(scene.convening, host), slot, 10)
        db.session.add(VisitAssignment(registration_id=buyer.id, slot_id=slot.id,
                                       site_visit_id=visit.id))
    block = make_block(scene.convening, "Working groups")
    keynote = make_session(scene.convening, "Opening keynote", 0, "09:00", "10:00")
    group = make_session(scene.convening, "Refugee employment", 1, "14:00", "16:00", block_id=block.id)
    db.session.add_all([SessionSignup(session_id=keynote.id, registration_id=buyer.id),
                        SessionSignup(session_id=group.id, registration_id=buyer.id, source="allocation")])
    db.session.commit()
    rows = {row["Email"]: row for row in read_csv(organizer_client.get(url(scene, "/registrations.csv")))}
    row = rows[buyer.email]
    assert (row["Price"], row["Currency"], row["Payment"]) == ("295.00", "CAD", "Invoice outstanding")
    assert (row["Order"], row["Invoice"], row["PO number"]) == ("TOR-ORD1", "TOR-2026-0001", "PO-4471")
    assert row["Phone"] == "+1 315 555 5707"
    assert row["Site visits"] == "Tuesday morning: George Brown College; Tuesday afternoon: Magnet"
    assert row["Session sign-ups"] == "Opening keynote"
    assert row["Working group places"] == "Working groups: Refugee employment"
    free = rows[scene.registration.email]
    assert (free["Price"], free["Payment"], free["Site visits"], free["Order"]) == ("0.00", "No payment due", "", "")


def test_export_follows_the_list_filters(organizer_client, scene):
    make_registration(scene.convening, scene.comp, 2, status=Status.CANCELLED)
    rows = read_csv(organizer_client.get(url(scene, "/registrations.csv?status=cancelled")))
    assert [row["Email"] for row in rows] == ["amina2@example.org"] and rows[0]["Status"] == "Cancelled"
    listing = organizer_client.get(url(scene, "/registrations?status=cancelled&page=1")).get_data(as_text=True)
    assert "registrations.csv?status=cancelled\"" in listing


def test_export_of_200_registrations_takes_a_constant_few_queries(organizer_client, scene, backend):
    bulk_registrations(scene.convening, scene.ticket, 199, start=10)
    for registration in db.session.execute(sa.select(Registration)).scalars():
        service._write_answers(registration, {scene.question.id: True})
    db.session.commit()
    path = url(scene, "/registrations.csv")
    db.session.remove()
    g.pop("_login_user", None)
    with count_statements() as statements:
        response = organizer_client.get(path)
    rows = read_csv(response)
    assert len(rows) == 200 and {row["Networking dinner?"] for row in rows} == {"Yes"}
    # login user, convening, registrations (ticket, delegation and order joined), questions, answers, site visits,
    # session sign-ups, the count that decides whether the worker makes it (+ BEGIN on SQLite)
    assert len(statements) <= 9, statements
    print(f"[{backend}] statements for a 200-row export: {len(statements)}")


# Import ---------------------------------------------------------------------------------------------------------

IMPORT_HEADER = "First name,Last name,Email address,Organization,Delegation"


def upload(client, scene, content: bytes | str, filename: str = "delegates.csv", **fields):
    data = {"ticket_type_id": str(scene.ticket.id), "delegation_id": "0", "role": "delegate", **fields,
            "file": (io.BytesIO(content.encode() if isinstance(content, str) else content), filename)}
    return client.post(url(scene, "/import"), data=data, content_type="multipart/form-data")


def import_rows(count: int, start: int = 10, delegation: str = "Ohio") -> list[str]:
    return [f"Given{n},Family{n},person{n}@example.org,Org {n},{delegation}" for n in range(start, start + count)]


def imported(scene) -> list[Registration]:
    db.session.rollback()
    return db.session.execute(sa.select(Registration).where(
        Registration.convening_id == scene.convening.id, Registration.source == "import")).scalars().all()


def test_import_page_explains_the_columns_and_offers_a_template(organizer_client, scene):
    page = organizer_client.get(url(scene, "/import")).get_data(as_text=True)
    assert "Given name" in page and "first name" in page and "TA provider" in page
    assert "Host (comp) (hidden)" in page
    template = organizer_client.get(url(scene, "/import/template.csv"))
    assert template.headers["Content-Disposition"] == (
        f"attachment; filename={scene.convening.slug}-import-template.csv")
    assert template.data.decode("utf-8-sig").startswith("Given name,Family name,Email,Organization")


def test_import_of_a_good_file_creates_everyone_and_their_delegations(organizer_client, scene, outbox):
    text = "\n".join([IMPORT_HEADER, *import_rows(6, delegation="Ohio"), *import_rows(3, 20, "maryland"),
                      "Solo,Person,solo@example.org,Org,"])
    response = upload(organizer_client, scene, text)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Imported 10 delegates." in page and "New delegation: Ohio." in page
    assert f'href="/admin/c/{scene.convening.id}/registrations?sort=created&amp;dir=desc"' in page
    people = imported(scene)
    assert len(people) == 10 and {p.status for p in people} == {Status.CONFIRMED}
    delegations = {d.name for d in db.session.execute(sa.select(Delegation)).scalars()}
    assert delegations == {"Maryland", "Ohio"}
    assert outbox.messages() == []


def test_import_into_a_new_delegation_with_emails(organizer_client, scene, outbox):
    text = "\n".join(["given_name,family_name,email,organization", "Ana,Ruiz,ana@example.org,Org"])
    response = upload(organizer_client, scene, text, new_delegation_name="Greater Dayton", send_emails="y",
                      ticket_type_id=str(scene.comp.id), role="speaker")
    assert "Imported 1 delegate." in response.get_data(as_text=True)
    [ana] = imported(scene)
    assert (ana.delegation.name, ana.ticket_type_id, ana.role) == ("Greater Dayton", scene.comp.id, "speaker")
    assert len(outbox.to("ana@example.org")) == 1


def test_import_with_two_bad_rows_among_ten_imports_nothing_and_lists_both(organizer_client, scene):
    rows = import_rows(10)
    rows[3] = "Given13,Family13,,Org 13,Ohio"  # spreadsheet row 5
    rows[8] = "Given18,,person18@example.org,Org 18,Ohio"  # row 10
    response = upload(organizer_client, scene, "\n".join([IMPORT_HEADER, *rows]))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Nothing was imported: fix the rows listed below" in page
    found = re.findall(r'<tr><td class="num">(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>', page)
    assert [(row, column) for row, column, _ in found] == [("5", "Email address"), ("10", "Last name")]
    assert "2 problems in 2 rows" in page
    assert imported(scene) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 1  # Ohio not created


def test_import_reports_duplicates_inside_the_file_and_against_registrations(organizer_client, scene):
    rows = import_rows(3) + ["Again,Someone,PERSON11@example.org,Org,", "Amina,Again,amina1@example.org,Org,"]
    page = upload(organizer_client, scene, "\n".join([IMPORT_HEADER, *rows])).get_data(as_text=True)
    assert "person11@example.org is also on row 3." in page
    assert f"amina1@example.org is already registered for this convening ({scene.registration.reference})." in page
    assert imported(scene) == []


def test_import_over_capacity_imports_nothing(organizer_client, scene):
    limited = make_ticket(scene.convening, name="Cohort", capacity=3)
    response = upload(organizer_client, scene, "\n".join([IMPORT_HEADER, *import_rows(4)]),
                      ticket_type_id=str(limited.id))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing was imported: the file has more people than the seats left." in page
    assert "“Cohort” has 3 seats left; the file has 4 people for it." in page
    assert imported(scene) == []


def test_import_reads_a_semicolon_windows_1252_file_with_accents(organizer_client, scene):
    text = "First name;Last name;E-mail;Organisation\r\nZoë;Ångström;zoe@example.org;Café Ñandú, Québec\r\n"
    response = upload(organizer_client, scene, text.encode("cp1252"))
    assert "Imported 1 delegate." in response.get_data(as_text=True)
    [zoe] = imported(scene)
    assert (zoe.given_name, zoe.family_name, zoe.organization) == ("Zoë", "Ångström", "Café Ñandú, Québec")


def test_import_refuses_a_missing_or_non_csv_file(organizer_client, scene):
    response = upload(organizer_client, scene, b"PK\x03\x04", filename="delegates.xlsx")
    assert response.status_code == 400 and "Upload a .csv file" in response.get_data(as_text=True)
    response = organizer_client.post(url(scene, "/import"), data={"ticket_type_id": str(scene.ticket.id),
                                                                  "delegation_id": "0", "role": "delegate"},
                                     content_type="multipart/form-data")
    assert response.status_code == 400 and "Choose a CSV file." in response.get_data(as_text=True)
    assert imported(scene) == []


# Accents and scripts in search and sort (issue 11, item 18) ------------------------------------------------------

ACCENTED = (("Luis", "Álvarez"), ("Eva", "Ñúñez"), ("Amra", "Šehić"), ("Thu", "Đặng"), ("Zoe", "Young"),
            ("Bo", "Adams"), ("مُحَمَّد", "عبد الله"))


@pytest.fixture
def accented(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    for n, (given, family) in enumerate(ACCENTED, start=1):
        make_registration(convening, ticket, n, given_name=given, family_name=family, organization="Org")
    return convening, ticket


def list_names(client, convening, **query) -> list[str]:
    page = client.get(f"/admin/c/{convening.id}/registrations", query_string=query)
    assert page.status_code == 200
    return names_in(page.get_data(as_text=True))


@pytest.mark.parametrize("typed, found", [
    ("alvarez", "Álvarez, Luis"), ("ÁLVAREZ", "Álvarez, Luis"), ("Álvarez", "Álvarez, Luis"),
    ("nunez", "Ñúñez, Eva"), ("ÑÚÑEZ", "Ñúñez, Eva"), ("sehic", "Šehić, Amra"), ("dang", "Đặng, Thu"),
    ("ĐẶNG thu", "Đặng, Thu"), ("محمد", "عبد الله, مُحَمَّد"), ("مُحَمَّد عبد", "عبد الله, مُحَمَّد"),
])
def test_search_ignores_case_and_accents_in_every_script(organizer_client, accented, typed, found):
    assert list_names(organizer_client, accented[0], q=typed) == [found]


def test_a_name_stored_without_vowel_marks_is_found_typed_with_them(organizer_client, accented):
    convening, ticket = accented
    make_registration(convening, ticket, 20, given_name="محمود", family_name="Plain")
    assert list_names(organizer_client, convening, q="مَحْمُود") == ["Plain, محمود"]


def test_the_list_sorts_accented_family_names_with_their_letter(organizer_client, accented):
    names = [name.split(",")[0] for name in list_names(organizer_client, accented[0], sort="name")]
    assert names == ["Adams", "Álvarez", "Đặng", "Ñúñez", "Šehić", "Young", "عبد الله"]
    names = [name.split(",")[0] for name in list_names(organizer_client, accented[0], sort="name", dir="desc")]
    assert names == ["عبد الله", "Young", "Šehić", "Ñúñez", "Đặng", "Álvarez", "Adams"]


def test_every_writer_keeps_the_search_columns(organizer_client, accented):
    """The public form, the back office edit and the CSV import all leave a findable, sortable row."""
    from convene.services.imports import ImportDefaults, import_registrations

    convening, ticket = accented
    assert client_register(organizer_client, convening, ticket, given_name="Renée", family_name="Øvergård")
    report = import_registrations(convening.id, "given_name,family_name,email,organization\nJosé,Łukasz,jl@example.org,Org\n",
                                  ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok
    assert list_names(organizer_client, convening, q="overgard renee") == ["Øvergård, Renée"]
    assert list_names(organizer_client, convening, q="lukasz jose") == ["Łukasz, José"]

    luis = db.session.execute(sa.select(Registration).where(Registration.family_name == "Álvarez")).scalar_one()
    service.update_registration(luis.id, {"family_name": "Öztürk"})
    assert list_names(organizer_client, convening, q="alvarez") == []
    assert list_names(organizer_client, convening, q="ozturk") == ["Öztürk, Luis"]
    db.session.rollback()
    row = db.session.get(Registration, luis.id)
    assert (row.sort_key, row.search_text.split()[:2]) == ("ozturk\x1fluis", ["luis", "ozturk"])


def client_register(client, convening, ticket, **names) -> bool:
    data = {k: v for k, v in person(30, **names).items() if not isinstance(v, list)}
    response = client.post(f"/c/{convening.slug}/register", data=data | {"ticket_type_id": ticket.id})
    return response.status_code == 302


def test_the_orders_search_finds_an_attendee_typed_without_accents(organizer_client, app):
    from tests.web.test_admin_payments import make_order

    convening = make_convening()
    ticket = make_ticket(convening, price_cents=1000)
    order = make_order(convening, ticket, buyer_name="Someone Else")
    seat = order.registrations[0]
    seat.given_name, seat.family_name = "Thu", "Đặng"
    db.session.commit()
    for typed in ("dang", "ĐẶNG", "thu"):
        page = organizer_client.get(f"/admin/c/{convening.id}/payments", query_string={"q": typed}).get_data(as_text=True)
        assert order.reference in page, typed
    page = organizer_client.get(f"/admin/c/{convening.id}/payments", query_string={"q": "sehic"}).get_data(as_text=True)
    assert order.reference not in page


def test_visitor_search_folds_accents(app, accented):
    from convene.services.visits import visitors_select

    convening, _ = accented
    found = db.session.execute(visitors_select(convening.id, search="SEHIC amra")).scalars().all()
    assert [r.family_name for r in found] == ["Šehić"]
    everyone = db.session.execute(visitors_select(convening.id)).scalars().all()
    assert [r.family_name for r in everyone][:3] == ["Adams", "Álvarez", "Đặng"]


# Organizers correct people and settle paid seats (issue 11, items 16 and 17) -------------------------------------

def test_an_imported_person_with_a_required_question_unanswered_gets_their_badge_name_fixed_in_one_save(
        organizer_client, scene):
    required = make_question(scene.convening, "Which working group?", "single_choice", required=True,
                             choices=["Youth", "Adults"])
    text = "\n".join([IMPORT_HEADER, "Ngozi,Okafor,ngozi@example.org,Dayton Works,"])
    assert "Imported 1 delegate." in upload(organizer_client, scene, text).get_data(as_text=True)
    [ngozi] = imported(scene)
    edit = url(scene, f"/registrations/{ngozi.id}/edit")
    form = organizer_client.get(edit).get_data(as_text=True)
    assert "<legend>Which working group?</legend>" in form  # not marked required for organizers
    response = organizer_client.post(edit, data=form_data(
        0, given_name="Ngozi", family_name="Okafor", email="ngozi@example.org", organization="Dayton Works",
        badge_name="Ngozi O.", ticket_type_id=scene.ticket.id, role="delegate", delegation_id=0))
    assert response.status_code == 302
    ngozi = fresh(ngozi.id)
    assert ngozi.badge_name == "Ngozi O." and ngozi.answer_for(required.id) is None
    # An answer that is given is still checked against the question's choices.
    response = organizer_client.post(edit, data=form_data(
        0, given_name="Ngozi", family_name="Okafor", email="ngozi@example.org", organization="Dayton Works",
        ticket_type_id=scene.ticket.id, role="delegate", delegation_id=0, **{required.field_name: "Martians"}))
    assert response.status_code == 400 and fresh(ngozi.id).badge_name == "Ngozi O."


def test_the_attendees_own_manage_page_still_requires_the_answer(client, scene):
    from convene.services.tokens import manage_token

    required = make_question(scene.convening, "Which working group?", "short_text", required=True)
    registration = fresh(scene.registration.id)
    page = client.get(f"/c/{scene.convening.slug}/manage/{manage_token(registration)}")
    assert page.status_code == 200
    data = {**form_data(1), scene.question.field_name: "yes", "badge_name": "Amina H."}
    response = client.post(f"/c/{scene.convening.slug}/manage/{manage_token(registration)}", data=data)
    assert "This question needs an answer." in response.get_data(as_text=True)
    assert fresh(scene.registration.id).badge_name != "Amina H."
    assert required.required


def paid_ticket(scene, price: int = 45000):
    return make_ticket(scene.convening, name="Paid delegate", price_cents=price)


def test_adding_by_hand_on_a_paid_ticket_asks_how_it_is_settled_default_invoice(organizer_client, scene, outbox):
    from convene.models import OrderStatus

    ticket = paid_ticket(scene)
    form = organizer_client.get(url(scene, "/registrations/new")).get_data(as_text=True)
    assert "How is it settled?" in form
    assert re.search(r'<input checked id="settlement-0" name="settlement" type="radio" value="invoice">', form)
    base = dict(ticket_type_id=ticket.id, role="delegate", delegation_id=0, send_email="y")
    assert organizer_client.post(url(scene, "/registrations/new"), data=form_data(5, **base)).status_code == 302
    invoiced = db.session.execute(sa.select(Registration).where(Registration.email == "amina5@example.org")).scalar_one()
    assert (invoiced.order.status, invoiced.order.total_cents) == (OrderStatus.INVOICED, 45000)
    assert any(m["Subject"].startswith(f"Invoice {invoiced.order.invoice_number}")
               for m in outbox.to("amina5@example.org"))

    # Paid elsewhere without a note is refused beside the note, and nothing is added.
    response = organizer_client.post(url(scene, "/registrations/new"),
                                     data=form_data(6, settlement="paid", **base))
    assert response.status_code == 400
    assert 'id="payment_note-error">Say how it was paid' in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(Registration.id).where(Registration.email == "amina6@example.org")) is None
    organizer_client.post(url(scene, "/registrations/new"),
                          data=form_data(6, settlement="paid", payment_note="Cheque 1042 received", **base))
    organizer_client.post(url(scene, "/registrations/new"), data=form_data(7, settlement="comp", **base))
    db.session.rollback()
    paid, comp = (db.session.execute(sa.select(Registration).where(Registration.email == e)).scalar_one()
                  for e in ("amina6@example.org", "amina7@example.org"))
    assert (paid.order.status, paid.order.paid_cents, paid.order.payment_note) == (
        OrderStatus.PAID, 45000, "Cheque 1042 received")
    assert (comp.order.method, comp.order.total_cents) == ("comp", 0)
    page = organizer_client.get(url(scene, f"/registrations/{comp.id}")).get_data(as_text=True)
    assert '<span id="settlement">Complimentary</span>' in page


def test_import_page_offers_the_settlement_and_reports_the_invoices(organizer_client, scene):
    ticket = paid_ticket(scene)
    page = organizer_client.get(url(scene, "/import")).get_data(as_text=True)
    assert "Rows on tickets with a price are settled by" in page and "Payment note" in page
    text = "\n".join(["First name,Last name,Email,Organization,Payment,Payment note",
                      "Ann,One,ann@example.org,Org,,", "Ben,Two,ben@example.org,Org,paid,Cheque 7",
                      "Cy,Three,cy@example.org,Org,invoice,"])
    response = upload(organizer_client, scene, text, ticket_type_id=str(ticket.id), settlement="comp")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Imported 3 delegates." in page
    assert "2 complimentary" not in page
    assert re.search(r"1 complimentary, 1 paid elsewhere, 1 invoice \(on tickets with a price\); invoices TOR-\d{4}-0001\.",
                     page)
    methods = {r.email: r.order.method for r in imported(scene)}
    assert methods == {"ann@example.org": "comp", "ben@example.org": "offline", "cy@example.org": "invoice"}


def test_staff_record_a_cash_payment_at_the_desk_from_the_registration_page(staff_client, scene, outbox):
    from convene.models import OrderStatus

    ticket = paid_ticket(scene)
    added = service.add_registration(scene.convening.id, ticket.id, person(8), send_email=False)
    page = staff_client.get(url(scene, f"/registrations/{added.id}")).get_data(as_text=True)
    assert "Record a payment at the desk" in page and 'value="450.00"' in page
    desk = url(scene, f"/registrations/{added.id}/desk-payment")
    response = staff_client.post(desk, data={"method": "cash", "amount": "450.01"})
    assert response.status_code == 400
    assert 'id="amount-error">That is more than the CA$450.00 still owed' in response.get_data(as_text=True)
    response = staff_client.post(desk, data={"method": "cash", "amount": "450", "note": "Till 2"},
                                 follow_redirects=True)
    assert "CA$450.00 is recorded. A receipt went to amina8@example.org." in response.get_data(as_text=True)
    order = fresh(added.id).order
    assert (order.status, order.paid_cents, order.payment_note) == (
        OrderStatus.PAID, 45000, "Cash at the desk, CA$450.00 (Till 2)")
    [receipt] = [m for m in outbox.to("amina8@example.org") if m["Subject"].startswith("Receipt")]
    assert any(part.get_filename() == f"receipt-R-{order.reference}.pdf" for part in receipt.iter_attachments())
    assert "Record a payment at the desk" not in staff_client.get(url(scene, f"/registrations/{added.id}")).text
    # Nothing is left: a second post is refused with a message, and a person with no order has no desk.
    again = staff_client.post(desk, data={"method": "cash", "amount": "1"}, follow_redirects=True)
    assert "Nothing is outstanding on this order" in again.get_data(as_text=True)
    assert staff_client.post(url(scene, "/registrations/{r}/desk-payment"),
                             data={"method": "cash", "amount": "1"}).status_code == 404


# Staff act on the day (issue 11, item 23) ------------------------------------------------------------------------

def test_staff_fix_a_badge_name_typo_in_one_save_and_the_badge_counts_as_changed(staff_client, scene):
    from datetime import timedelta

    from convene.services.printing import mark_badges_printed

    make_question(scene.convening, "Which working group?", "short_text", required=True)  # never answered
    mark_badges_printed(scene.convening.id, [scene.registration.id], at=utcnow() - timedelta(hours=1))
    detail = url(scene, "/registrations/{r}")
    page = staff_client.get(detail).get_data(as_text=True)
    assert "Fix the badge" in page and 'value="Hassan"' in page and "Edit</a>" not in page
    badge = {"given_name": "Amina1", "family_name": "Hasan", "badge_name": "Mina", "pronouns": "she/her",
             "organization": "City of Dayton"}
    # Anything besides the badge fields is ignored, however it is posted.
    response = staff_client.post(url(scene, "/registrations/{r}/badge"), data={
        **badge, "email": "someone@example.org", "role": "host", "ticket_type_id": scene.comp.id,
        "delegation_id": 0, scene.question.field_name: "no"})
    assert response.status_code == 302 and response.headers["Location"].endswith(detail)
    saved = fresh(scene.registration.id)
    assert (saved.family_name, saved.badge_name, saved.email, saved.role, saved.ticket_type_id) == (
        "Hasan", "Mina", "amina1@example.org", "delegate", scene.ticket.id)
    assert saved.delegation_id == scene.delegation.id and saved.answer_for(scene.question.id) is True
    queue = staff_client.get(f"/admin/c/{scene.convening.id}/print?which=changed").get_data(as_text=True)
    assert re.search(r'which=changed"><span class="n">1</span>', queue) and "Hasan" in queue
    # A blank name is refused beside the field, and nothing changes.
    response = staff_client.post(url(scene, "/registrations/{r}/badge"), data={**badge, "family_name": " "})
    assert response.status_code == 400
    assert 'id="family_name-error">Enter your family name.' in response.get_data(as_text=True)
    assert fresh(scene.registration.id).family_name == "Hasan"


def walk_in(n: int, ticket_id: int, **extra) -> dict:
    return {**{k: v for k, v in person(n).items() if k in (
        "given_name", "family_name", "email", "organization", "pronouns")}, "ticket_type_id": ticket_id, **extra}


def by_email(email: str) -> Registration | None:
    db.session.rollback()
    return db.session.execute(sa.select(Registration).where(Registration.email == email)).scalar_one_or_none()


def test_staff_add_a_walk_in_on_a_free_ticket_but_not_on_a_hidden_one(staff_client, scene, outbox):
    listing = staff_client.get(url(scene, "/registrations")).get_data(as_text=True)
    assert "/registrations/walk-in" in listing
    form = staff_client.get(url(scene, "/registrations/walk-in")).get_data(as_text=True)
    assert "Delegate · free" in form and "Host (comp)" not in form
    response = staff_client.post(url(scene, "/registrations/walk-in"), data=walk_in(5, scene.ticket.id, send_email="y"))
    assert response.status_code == 302
    added = by_email("amina5@example.org")
    assert response.headers["Location"].endswith(f"/registrations/{added.id}")
    assert (added.status, added.ticket_type_id, added.role, added.order) == (
        Status.CONFIRMED, scene.ticket.id, "delegate", None)
    [message] = outbox.to("amina5@example.org")
    assert added.reference in message["Subject"]
    response = staff_client.post(url(scene, "/registrations/walk-in"), data=walk_in(6, scene.comp.id))
    assert response.status_code == 400 and by_email("amina6@example.org") is None
    # Capacity is the service's: a full ticket type is refused beside the ticket.
    full = make_ticket(scene.convening, name="Speaker", capacity=1)
    make_registration(scene.convening, full, 9)
    response = staff_client.post(url(scene, "/registrations/walk-in"), data=walk_in(7, full.id))
    assert response.status_code == 400 and by_email("amina7@example.org") is None
    assert 'id="ticket_type_id-error">There are not enough seats' in response.get_data(as_text=True)


def test_staff_add_a_walk_in_on_a_paid_ticket_paid_in_cash_with_a_receipt(staff_client, scene, outbox):
    from convene.models import OrderStatus

    ticket = paid_ticket(scene)
    form = staff_client.get(url(scene, "/registrations/walk-in")).get_data(as_text=True)
    assert "Paid delegate · CA$450.00" in form and "How did they pay?" in form
    response = staff_client.post(url(scene, "/registrations/walk-in"), data=walk_in(5, ticket.id))
    assert response.status_code == 400 and by_email("amina5@example.org") is None
    assert 'id="method-error">Choose how it was paid' in response.get_data(as_text=True)
    response = staff_client.post(url(scene, "/registrations/walk-in"),
                                 data=walk_in(5, ticket.id, method="cash", send_email="y"), follow_redirects=True)
    assert "CA$450.00 is recorded (Cash) and a receipt went to amina5@example.org." in response.get_data(as_text=True)
    order = by_email("amina5@example.org").order
    assert (order.status, order.paid_cents, order.total_cents, order.payment_note) == (
        OrderStatus.PAID, 45000, 45000, "Cash at the desk, CA$450.00")
    subjects = [m["Subject"] for m in outbox.to("amina5@example.org")]
    assert sorted(s.split(" ")[0] for s in subjects) == ["Receipt", "Your"]  # the receipt and their link, no invoice
    [receipt] = [m for m in outbox.to("amina5@example.org") if m["Subject"].startswith("Receipt")]
    assert any(part.get_filename() == f"receipt-R-{order.reference}.pdf" for part in receipt.iter_attachments())


def test_a_big_export_is_made_by_the_worker_and_downloaded_from_its_job_page(app, organizer_client, scene):
    from convene import jobs
    from convene.models import Job

    app.config["EXPORT_INLINE_MAX"] = 0
    path = url(scene, "/registrations.csv")
    page = organizer_client.get(path + "?sort=name&q=")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    body = page.get_data(as_text=True)
    assert "Make the spreadsheet" in body and 'name="sort" value="name"' in body
    response = organizer_client.post(url(scene, "/registrations/export"), data={"sort": "name", "status": "bogus"})
    assert response.status_code == 302
    job = db.session.execute(sa.select(Job).where(Job.kind == "export_registrations")).scalar_one()
    assert response.headers["Location"].endswith(f"/jobs/{job.id}")
    assert job.params == {"args": {"sort": "name", "status": "bogus"}} and job.convening_id == scene.convening.id
    assert jobs.wait(job.id, timeout=60) == "done"
    db.session.rollback()
    page = organizer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Download" in page and "registration(s)" in page
    download = organizer_client.get(url(scene, f"/jobs/{job.id}/file"))
    assert download.status_code == 200 and download.content_type.startswith("text/csv")
    app.config["EXPORT_INLINE_MAX"] = 100_000
    direct = organizer_client.get(path + "?sort=name")
    assert download.get_data() == direct.get_data()  # the same spreadsheet as the direct download
