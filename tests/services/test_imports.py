"""The CSV import service against the real database: parsing, checks, capacity, all or nothing."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Delegation, OutboxMessage, Registration, Status
from convene.services import registrations as service
from convene.services.imports import ImportDefaults, decode_csv, import_registrations, sniff_delimiter, template_csv
from tests.factories import make_convening, make_delegation, make_registration, make_ticket, person
from tests.racing import race

HEADER = "given_name,family_name,email,organization,job_title,delegation"


def csv_of(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def delegate_rows(count: int, start: int = 1, delegation: str = "Maryland") -> list[str]:
    return [f"Given{n},Family{n},person{n}@example.org,Org {n},Analyst,{delegation}"
            for n in range(start, start + count)]


def registrations_of(convening) -> list[Registration]:
    db.session.rollback()
    return db.session.execute(
        sa.select(Registration).where(Registration.convening_id == convening.id).order_by(Registration.email)
    ).scalars().all()


def count_statements():
    """A context manager counting SQL statements sent to the database."""
    statements: list[str] = []

    def before(conn, cursor, statement, *args):
        statements.append(statement)

    class Counter:
        def __enter__(self):
            event.listen(db.engine, "before_cursor_execute", before)
            return statements

        def __exit__(self, *exc):
            event.remove(db.engine, "before_cursor_execute", before)

    return Counter()


def test_good_file_imports_every_row_confirmed_and_creates_delegations(app, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_delegation(convening, "Maryland")
    text = csv_of(*delegate_rows(3, 1, "maryland"), *delegate_rows(2, 4, "Ohio"), "Solo,Person,solo@example.org,Org,,")
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok and report.imported == 6 and report.problems == []
    assert report.created_delegations == ["Ohio"]
    registrations = registrations_of(convening)
    assert len(registrations) == 6
    assert {r.status for r in registrations} == {Status.CONFIRMED}
    assert {r.source for r in registrations} == {"import"}
    assert all(r.reference.startswith("TOR-") and r.confirmed_at for r in registrations)
    assert len({r.reference for r in registrations}) == 6
    by_email = {r.email: r for r in registrations}
    assert by_email["person1@example.org"].delegation.name == "Maryland"  # matched whatever the case
    assert by_email["person4@example.org"].delegation.name == "Ohio"
    assert by_email["solo@example.org"].delegation_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 2
    assert outbox.messages() == []  # not asked to email


def test_headers_are_read_whatever_their_case_and_common_spelling(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    text = csv_of("Lena,Okafor,LENA@Example.org,Metro Works,Lee,they/them,+1 555 0100,Extra",
                  header="First Name,LAST NAME,E-mail address,Organisation,Badge name,Pronouns,Phone number,Notes")
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok, report.problems
    assert report.ignored_columns == ["Notes"]
    [registration] = registrations_of(convening)
    assert (registration.given_name, registration.family_name, registration.email) == ("Lena", "Okafor",
                                                                                      "lena@example.org")
    assert (registration.organization, registration.badge_name, registration.pronouns, registration.phone) == (
        "Metro Works", "Lee", "they/them", "+1 555 0100")


def test_cells_with_line_breaks_and_control_characters_are_stored_as_one_line(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    # A quoted cell may span lines in CSV; a name must not, or its calendar and badge break.
    text = csv_of('"Lena\r\nMaria\x0b",Oka\x1bfor,lena@example.org,"Metro\u2028Works\t",Lead,"New\nYork"')
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id, new_delegation_name=""))
    assert report.ok, report.problems
    [registration] = registrations_of(convening)
    assert (registration.given_name, registration.family_name, registration.organization) == (
        "Lena Maria", "Okafor", "Metro Works")
    assert registration.delegation.name == "New York"


def test_a_name_made_only_of_invisible_characters_is_a_missing_name(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    report = import_registrations(convening.id, csv_of("\u200b\u3164,Okafor,lena@example.org,Metro Works"),
                                  ImportDefaults(ticket_type_id=ticket.id, new_delegation_name=""))
    assert not report.ok
    assert [(p.column, p.message) for p in report.problems] == [("given_name", "given_name is required.")]
    assert registrations_of(convening) == []


def test_roles_ticket_names_and_needs_accept_labels_or_codes(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Delegate")
    comp = make_ticket(convening, name="Host (comp)", hidden=True)
    header = "given_name,family_name,email,organization,role,ticket_type,dietary_needs,accessibility_needs"
    text = csv_of(
        'Ana,Ruiz,ana@example.org,Org,TA provider,host (COMP),"Vegan; halal",Step-free (wheelchair) access',
        'Ben,Cole,ben@example.org,Org,speaker,,gluten_free,"quiet room, LARGE-PRINT materials, quiet_room"',
        header=header,
    )
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id, role="host"))
    assert report.ok, report.problems
    ana, ben = registrations_of(convening)
    assert (ana.role, ana.ticket_type_id, ana.dietary_needs, ana.accessibility_needs) == (
        "ta_provider", comp.id, ["vegan", "halal"], ["step_free"])
    assert (ben.role, ben.ticket_type_id, ben.dietary_needs) == ("speaker", ticket.id, ["gluten_free"])
    assert ben.accessibility_needs == ["large_print", "quiet_room"]
    report = import_registrations(convening.id, csv_of("Cy,Dee,cy@example.org,Org,,,,", header=header),
                                  ImportDefaults(ticket_type_id=ticket.id, role="host"))
    assert report.ok and registrations_of(convening)[-1].role == "host"  # the form's default role


def test_two_bad_rows_among_ten_import_nothing_and_report_both_with_spreadsheet_row_numbers(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    rows = delegate_rows(10)
    rows[2] = "Given3,,person3@example.org,Org 3,Analyst,Maryland"  # row 4 in the spreadsheet: no family name
    rows[7] = "Given8,Family8,not-an-email,Org 8,Analyst,Maryland"  # row 9: bad email
    report = import_registrations(convening.id, csv_of(*rows), ImportDefaults(ticket_type_id=ticket.id))
    assert not report.ok and report.code == "import_invalid" and report.imported == 0
    assert [(p.row, p.column) for p in report.problems] == [(4, "family_name"), (9, "email")]
    assert "required" in report.problems[0].message and "not a valid email" in report.problems[1].message
    assert registrations_of(convening) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 0


def test_duplicate_emails_inside_the_file_are_reported_on_the_later_row(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    rows = delegate_rows(3) + ["Again,Someone,PERSON2@example.org,Org,,"]
    report = import_registrations(convening.id, csv_of(*rows), ImportDefaults(ticket_type_id=ticket.id))
    assert [(p.row, p.column) for p in report.problems] == [(5, "email")]
    assert "also on row 3" in report.problems[0].message
    assert registrations_of(convening) == []


def test_emails_already_registered_are_reported_but_cancelled_ones_come_back_with_their_reference(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    taken = make_registration(convening, ticket, email="person2@example.org")
    gone = make_registration(convening, ticket, email="person3@example.org", status=Status.CANCELLED)
    report = import_registrations(convening.id, csv_of(*delegate_rows(3)), ImportDefaults(ticket_type_id=ticket.id))
    assert [(p.row, p.column) for p in report.problems] == [(3, "email")]
    assert taken.reference in report.problems[0].message
    assert len(registrations_of(convening)) == 2

    report = import_registrations(convening.id, csv_of(delegate_rows(3)[0], delegate_rows(3)[2]),
                                  ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok and report.imported == 2 and report.reactivated == 1
    back = db.session.get(Registration, gone.id)
    assert back.status == Status.CONFIRMED and back.reference == gone.reference and back.cancelled_at is None
    assert back.given_name == "Given3" and back.source == "import"


def test_more_people_than_seats_left_imports_nothing(app):
    convening = make_convening(capacity=10)
    ticket = make_ticket(convening)
    for n in range(7):
        make_registration(convening, ticket, 100 + n)
    report = import_registrations(convening.id, csv_of(*delegate_rows(4)), ImportDefaults(ticket_type_id=ticket.id))
    assert report.code == "import_over_capacity" and report.imported == 0
    assert report.shortfalls == ["The convening has 3 seats left; the file has 4 people."]
    assert len(registrations_of(convening)) == 7
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 0
    assert import_registrations(convening.id, csv_of(*delegate_rows(3)), ImportDefaults(ticket_type_id=ticket.id)).ok


def test_a_ticket_types_own_capacity_binds_too(app):
    convening = make_convening()
    small = make_ticket(convening, name="Speaker", capacity=1)
    big = make_ticket(convening, name="Delegate")
    text = csv_of("A,B,a@example.org,Org,Speaker", "C,D,c@example.org,Org,speaker", "E,F,e@example.org,Org,",
                  header="given_name,family_name,email,organization,ticket_type")
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=big.id))
    assert report.shortfalls == ["“Speaker” has 1 seat left; the file has 2 people for it."]
    assert registrations_of(convening) == [] and small.id


def test_waitlisted_people_get_freed_seats_before_the_imported_ones(app):
    convening = make_convening(capacity=2)
    ticket = make_ticket(convening)
    first = service.register_attendee(convening.id, ticket.id, person(1))
    service.register_attendee(convening.id, ticket.id, person(2))
    waiting = service.register_attendee(convening.id, ticket.id, person(3), join_waitlist=True)
    service.cancel_registration(first.id)  # the seat is offered to the waitlisted person
    assert db.session.get(Registration, waiting.id).status == Status.OFFERED
    report = import_registrations(convening.id, csv_of(*delegate_rows(1)), ImportDefaults(ticket_type_id=ticket.id))
    assert report.code == "import_over_capacity"


def test_semicolon_delimited_windows_1252_file_with_accents_imports(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    text = ("First name;Last name;Email;Organisation\r\n"
            "José;Müller-Peña;jose@example.org;Société Générale, Québec\r\n"
            "Zoë;Ångström;zoe@example.org;Café Ñandú\r\n")
    data = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = import_registrations(convening.id, data, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok, report.problems
    jose, zoe = registrations_of(convening)
    assert (jose.given_name, jose.family_name, jose.organization) == ("José", "Müller-Peña",
                                                                      "Société Générale, Québec")
    assert (zoe.given_name, zoe.family_name, zoe.organization) == ("Zoë", "Ångström", "Café Ñandú")


def test_utf8_with_bom_and_tab_delimited_utf16_are_read(app):
    assert decode_csv("\ufeffa,b".encode()) == "a,b"
    assert decode_csv("given_name\tfamily_name\nÉlise\tN\n".encode("utf-16")) == "given_name\tfamily_name\nÉlise\tN\n"
    assert sniff_delimiter("given_name\tfamily_name\tEmail\nA\tB\tC\n") == "\t"
    assert sniff_delimiter("given_name,family_name\n\"x;y;z\",b\n") == ","
    convening = make_convening()
    ticket = make_ticket(convening)
    data = ("\ufeff" + csv_of("Élise,Ndiaye,elise@example.org,Org,,")).encode("utf-8")
    report = import_registrations(convening.id, data, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok and registrations_of(convening)[0].given_name == "Élise"


def test_blank_lines_are_skipped_but_row_numbers_still_match_the_spreadsheet(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    text = csv_of("", *delegate_rows(1), ",,,,,", "Bad,Row,nope,Org,,")
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert report.rows == 2
    assert [(p.row, p.column) for p in report.problems] == [(5, "email")]


def test_unknown_role_ticket_type_and_needs_and_too_long_values_are_reported(app):
    convening = make_convening()
    ticket = make_ticket(convening, name="Delegate")
    header = "given_name,family_name,email,organization,role,ticket_type,dietary_needs,job_title"
    text = csv_of(
        "A,B,a@example.org,Org,Chief,,,",
        "C,D,c@example.org,Org,,Platinum,,",
        "E,F,e@example.org,Org,,,vegan; pescatarian,",
        "G,H,g@example.org,Org,,,," + "x" * 201,
        header=header,
    )
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert [(p.row, p.column) for p in report.problems] == [
        (2, "role"), (3, "ticket_type"), (4, "dietary_needs"), (5, "job_title")]
    assert "Chief" in report.problems[0].message and "TA provider" in report.problems[0].message
    assert "Platinum" in report.problems[1].message and "Delegate" in report.problems[1].message
    assert "pescatarian" in report.problems[2].message
    assert "200 characters" in report.problems[3].message
    assert registrations_of(convening) == []


def test_missing_required_columns_are_reported_on_the_header_row(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    report = import_registrations(convening.id, "Name,Email\nAna,ana@example.org\n",
                                  ImportDefaults(ticket_type_id=ticket.id))
    assert {(p.row, p.column) for p in report.problems} == {(1, "Given name"), (1, "Family name"),
                                                            (1, "Organization")}
    assert import_registrations(convening.id, "", ImportDefaults(ticket_type_id=ticket.id)).problems[0].row == 1
    assert not import_registrations(convening.id, HEADER + "\n", ImportDefaults(ticket_type_id=ticket.id)).ok


def test_rows_without_ticket_type_need_a_default_one(app):
    convening = make_convening()
    make_ticket(convening)
    report = import_registrations(convening.id, csv_of(*delegate_rows(1)), ImportDefaults())
    assert [(p.row, p.column) for p in report.problems] == [(2, "Ticket type")]  # not in the file: its label


def test_a_new_delegation_name_on_the_form_applies_to_rows_without_one(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    existing = make_delegation(convening, "Ohio")
    text = csv_of(*delegate_rows(2, delegation=""), *delegate_rows(1, 3, "ohio"))
    report = import_registrations(
        convening.id, text, ImportDefaults(ticket_type_id=ticket.id, delegation_id=existing.id,
                                           new_delegation_name="  Greater   Dayton "))
    assert report.ok and report.created_delegations == ["Greater Dayton"]
    names = [r.delegation.name for r in registrations_of(convening)]
    assert names == ["Greater Dayton", "Greater Dayton", "Ohio"]


def test_defaults_from_another_convening_are_refused(app):
    convening, other = make_convening(), make_convening()
    foreign_ticket = make_ticket(other)
    foreign_delegation = make_delegation(other)
    with pytest.raises(ConveneError) as caught:
        import_registrations(convening.id, csv_of(*delegate_rows(1)), ImportDefaults(ticket_type_id=foreign_ticket.id))
    assert caught.value.field == "ticket_type_id"
    with pytest.raises(ConveneError) as caught:
        import_registrations(convening.id, csv_of(*delegate_rows(1)),
                             ImportDefaults(ticket_type_id=make_ticket(convening).id,
                                            delegation_id=foreign_delegation.id))
    assert caught.value.field == "delegation_id"


def test_confirmation_emails_go_out_only_when_asked(app, outbox):
    convening = make_convening()
    ticket = make_ticket(convening)
    import_registrations(convening.id, csv_of(*delegate_rows(2)), ImportDefaults(ticket_type_id=ticket.id))
    assert outbox.messages() == []
    report = import_registrations(convening.id, csv_of(*delegate_rows(2, 3)), ImportDefaults(ticket_type_id=ticket.id),
                                  send_emails=True)
    assert report.emails_queued == 2
    [message] = outbox.to("person3@example.org")
    assert "You are registered" in message["Subject"] and f"/c/{convening.slug}/manage/" in outbox.text(message)
    kinds = db.session.execute(sa.select(OutboxMessage.kind, OutboxMessage.status)).all()
    assert kinds == [("confirmation", "sent"), ("confirmation", "sent")]


def test_the_template_has_every_header_and_reads_back_as_an_empty_file(app):
    text = template_csv()
    assert text.startswith("\ufeffGiven name,Family name,Email,Organization,")
    convening = make_convening()
    ticket = make_ticket(convening)
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ignored_columns == [] and report.problems[0].message.startswith("The file has no rows")


def test_checking_a_file_takes_the_same_few_queries_for_10_or_1000_rows(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1)
    counts = []
    for size in (10, 1000):
        rows = delegate_rows(size) + ["Bad,Row,nope,Org,,"]  # one bad row: checked in full, nothing written
        db.session.rollback()
        with count_statements() as statements:
            report = import_registrations(convening.id, csv_of(*rows), ImportDefaults(ticket_type_id=ticket.id))
        assert [p.row for p in report.problems] == [size + 2]
        counts.append(len(statements))
    assert counts[0] == counts[1] <= 6, counts


def test_writing_a_file_takes_statements_per_batch_not_per_row(app, backend):
    convening = make_convening()
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1)
    counts = {}
    for size, start in ((10, 10), (400, 100)):
        db.session.rollback()
        with count_statements() as statements:
            report = import_registrations(convening.id, csv_of(*delegate_rows(size, start, "Maryland")),
                                          ImportDefaults(ticket_type_id=ticket.id))
        assert report.ok and report.imported == size
        if backend == "sqlite":  # SQLAlchemy sends SQLite one INSERT per row (RETURNING order is not promised)
            statements = [s for s in statements if not s.startswith("INSERT INTO registration ")]
        counts[size] = len(statements)
    # References are checked a thousand at a time and, on PostgreSQL, the rows go in as multi-row INSERTs,
    # so 40 times the rows adds a few statements, not 390.
    assert counts[400] <= counts[10] + 6, counts
    assert len({r.reference for r in registrations_of(convening)}) == 411


def test_a_thousand_rows_import_in_a_few_seconds(app, backend):
    convening = make_convening(capacity=2000)
    ticket = make_ticket(convening, capacity=1500)
    text = csv_of(*delegate_rows(500, 1, "Maryland"), *delegate_rows(500, 501, "Ohio"))
    started = time.perf_counter()
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    elapsed = time.perf_counter() - started
    assert report.ok and report.imported == 1000
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 1000
    assert elapsed < 10, f"{elapsed:.1f}s"
    print(f"[{backend}] 1,000 rows imported in {elapsed:.2f}s")


def test_nul_characters_in_a_file_are_dropped_rather_than_refused_by_the_database(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    report = import_registrations(convening.id, csv_of("An\x00a,Ruiz,ana@example.org,Org\x00,,").encode(),
                                  ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok, report.problems
    [ana] = registrations_of(convening)
    assert (ana.given_name, ana.organization) == ("Ana", "Org")


def test_two_imports_racing_for_the_last_seats_cannot_overbook(app, backend):
    convening = make_convening(capacity=5)
    ticket = make_ticket(convening)
    convening_id, ticket_id = convening.id, ticket.id
    files = [csv_of(*delegate_rows(3, start)) for start in (1, 11, 21, 31)]  # 12 people for 5 seats

    def run(text: str):
        return lambda: import_registrations(convening_id, text, ImportDefaults(ticket_type_id=ticket_id)).code \
            or "imported"

    outcomes = race(app, [run(text) for text in files])
    assert sorted(outcomes) == ["import_over_capacity"] * 3 + ["imported"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Registration)) == 3
    print(f"[{backend}] 4 imports of 3 racing for 5 seats: {outcomes}")


# Paid tickets: every imported seat gets its order (issue 11, item 17) -------------------------------------------

def _paid_scene():
    from datetime import timedelta

    from convene.models import utcnow

    convening = make_convening(name="Paid Import", reference_prefix="TOR")
    # An early-bird price: the orders carry what the seat costs today, not the later price.
    ticket = make_ticket(convening, name="Delegate", price_cents=45000, early_price_cents=35000,
                         early_until_at=utcnow() + timedelta(days=30))
    free = make_ticket(convening, name="Host", price_cents=0)
    return convening, ticket, free


def test_import_on_a_paid_ticket_makes_an_order_per_row_the_file_choice_and_the_payment_column(app, outbox):
    from convene.models import Order, OrderStatus, PaymentMethod

    convening, ticket, _ = _paid_scene()
    header = "given_name,family_name,email,organization,ticket type,payment,payment note"
    text = csv_of("Ann,One,ann@example.org,Org,,,",
                  "Ben,Two,ben@example.org,Org,,paid,Cheque 1042 received",
                  "Cy,Three,cy@example.org,Org,,comp,",
                  "Di,Four,di@example.org,Org,,Invoice,",
                  "Ed,Five,ed@example.org,Org,Host,paid,",  # a free ticket: nothing to settle, no note needed
                  header=header)
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id, settlement="invoice"),
                                  send_emails=True)
    assert report.ok, report.problems
    people = {r.email: r for r in registrations_of(convening)}
    ann, ben, cy, di, ed = (people[f"{n}@example.org"] for n in ("ann", "ben", "cy", "di", "ed"))
    assert (ann.order.method, ann.order.status, ann.order.total_cents, ann.price_cents) == (
        PaymentMethod.INVOICE, OrderStatus.INVOICED, 35000, 35000)
    assert (ben.order.method, ben.order.status, ben.order.paid_cents, ben.order.payment_note) == (
        PaymentMethod.OFFLINE, OrderStatus.PAID, 35000, "Cheque 1042 received")
    assert (cy.order.method, cy.order.status, cy.order.total_cents, cy.price_cents) == (
        PaymentMethod.COMP, OrderStatus.PAID, 0, 0)
    assert di.order.method == PaymentMethod.INVOICE and ed.order is None
    year = ann.order.invoice_issued_at.year
    assert [ann.order.invoice_number, di.order.invoice_number] == [f"TOR-{year}-0001", f"TOR-{year}-0002"]
    assert report.invoice_numbers == [f"TOR-{year}-0001", f"TOR-{year}-0002"]
    assert report.orders == {"Invoice": 2, "Paid elsewhere": 1, "Complimentary": 1}
    assert {r.buyer_email for r in db.session.execute(sa.select(Order)).scalars()} == {
        "ann@example.org", "ben@example.org", "cy@example.org", "di@example.org"}
    assert any(m["Subject"].startswith("Invoice TOR-") for m in outbox.to("ann@example.org"))


def test_import_on_a_paid_ticket_checks_payment_cells_first_and_writes_no_order_when_a_row_is_wrong(app):
    from convene.models import Order

    convening, ticket, _ = _paid_scene()
    header = "given_name,family_name,email,organization,payment"
    text = csv_of("Ann,One,ann@example.org,Org,paid", "Ben,Two,ben@example.org,Org,maybe",
                  "Cy,Three,cy@example.org,Org,comp", header=header)
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert not report.ok
    assert [(p.row, p.column) for p in report.problems] == [(2, "Payment note"), (3, "payment")]
    assert "use invoice, paid or comp" in report.problems[1].message
    assert registrations_of(convening) == [] and db.session.scalar(sa.select(sa.func.count(Order.id))) == 0
    # The file-level note settles the paid row; no email goes out unless asked.
    report = import_registrations(convening.id, csv_of("Ann,One,ann@example.org,Org,paid", header=header),
                                  ImportDefaults(ticket_type_id=ticket.id, payment_note="Bank transfer, batch 7"))
    assert report.ok
    [ann] = registrations_of(convening)
    assert ann.order.payment_note == "Bank transfer, batch 7"
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


def test_a_failed_import_takes_no_invoice_number(app):
    convening, ticket, _ = _paid_scene()
    taken = make_registration(convening, ticket, 99)
    text = csv_of("Ann,One,ann@example.org,Org,,", f"Ben,Two,{taken.email},Org,,", header=HEADER)
    assert not import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id)).ok
    report = import_registrations(convening.id, csv_of("Ann,One,ann@example.org,Org,,"),
                                  ImportDefaults(ticket_type_id=ticket.id))
    [order_number] = report.invoice_numbers
    assert order_number.endswith("-0001")


def test_import_matches_delegations_ignoring_case_accents_and_punctuation(app):
    convening = make_convening()
    ticket = make_ticket(convening)
    dayton = make_delegation(convening, "Dayton, OH")
    text = csv_of(*delegate_rows(1, 1, "dayton oh"), *delegate_rows(1, 2, "DAYTON OH."), *delegate_rows(1, 3, "..."))
    report = import_registrations(convening.id, text, ImportDefaults(ticket_type_id=ticket.id))
    assert report.ok and report.created_delegations == []
    assert [r.delegation_id for r in registrations_of(convening)] == [dayton.id, dayton.id, None]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delegation)) == 1
