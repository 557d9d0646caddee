"""A past convening holding personal data in every place Convene keeps it, and a scan of the whole database for it.

Every value a person typed carries a marker ("qx" for the convening to erase, "qy" for another one) so a scan
of every text and JSON column of every table finds each copy, wherever it was written: the rows themselves,
their search keys, the emails, the credit notes, the audit log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from convene.extensions import db
from convene.models import Delegation, HostOrganization, OutboxMessage, Presenter, PrintJob, Registration
from convene.services import checkin, payments
from convene.services import registrations as registrations_service
from tests.factories import make_convening, make_question, make_ticket

SHARED_EMAIL = "zainab.qx@example.net"  # registered at both convenings: the other one keeps it
# What the person and the buyer typed at the convening to erase: none of it may be left anywhere.
ERASED_VALUES = ["Zainabqx", "Okonkwoqx", "Zeeqx", "xe/xemqx", "555 0199", "Qxorg Refugee Network",
                 "Qxjob Coordinator", "allergic to qxnuts", "qxwheelchair ramp", "qxanswer about my journey",
                 "Lenaqx Ortizqx", "lena.qx@example.net", "Lenaqxorg", "1 Qxstreet", "Omarqx", "Faroukqx",
                 "omar.qx@example.net", "Fatimaqx", "fatima.qx@example.net", "cheque from qxpayer",
                 "qxrefund reason", "Contactqx Person", "contact.qx@example.net", "Presenterqx Guest", "qxbio",
                 "Qxpresorg", "Hostqx Contact", "host.qx@example.net", "555 0111", "Qxtyped Stranger"]
OTHER_VALUES = ["Yusufqy", "yusuf.qy@example.net", "Zainabqy"]


@dataclass
class Scene:
    convening: object
    other: object
    free: object
    paid: object
    zainab: Registration
    order: object
    questions: dict


def zainab(**overrides) -> dict:
    values = dict(given_name="Zainabqx", family_name="Okonkwoqx", badge_name="Zeeqx", pronouns="xe/xemqx",
                  email=SHARED_EMAIL, phone="+1 613 555 0199", organization="Qxorg Refugee Network",
                  job_title="Qxjob Coordinator", dietary_needs=["vegan", "halal"], dietary_notes="allergic to qxnuts",
                  accessibility_needs=["step_free"], accessibility_notes="qxwheelchair ramp")
    values.update(overrides)
    return values


def other_person(given_name: str, email: str) -> dict:
    return dict(given_name=given_name, family_name="Adeyemi", badge_name="", pronouns="", email=email, phone="",
                organization="Qyorg", job_title="", dietary_needs=["vegetarian"], dietary_notes="",
                accessibility_needs=[], accessibility_notes="")


def past_convening(**overrides):
    today = date.today()
    values = dict(starts_on=today - timedelta(days=40), ends_on=today - timedelta(days=38), invoice_enabled=True,
                  invoice_issuer="Convene Events Inc.\n1 Organizer Way")
    values.update(overrides)
    return make_convening(**values)


def build_scene() -> Scene:
    """The convening to erase (over since 38 days) and another one sharing a person, both full of personal data."""
    convening = past_convening(slug="erase-me", name="Erase Me Summit")
    free = make_ticket(convening, name="Delegate")
    paid = make_ticket(convening, name="Observer", price_cents=45000)
    questions = {
        "story": make_question(convening, "Your story", "long_text"),
        "region": make_question(convening, "Region", "single_choice", choices=["North", "South"]),
        "childcare": make_question(convening, "Need childcare?", "yes_no"),
    }
    host = HostOrganization(convening_id=convening.id, name="Magnet", address="1 Host St",
                            contact_name="Hostqx Contact", contact_email="host.qx@example.net",
                            contact_phone="+1 613 555 0111")
    db.session.add(host)
    db.session.commit()

    person = registrations_service.register_attendee(
        convening.id, free.id, zainab(),
        {questions["story"].id: "qxanswer about my journey", questions["region"].id: "North",
         questions["childcare"].id: True})
    order = registrations_service.register_delegation(
        convening.id, {"name": "Lenaqx Ortizqx", "email": "lena.qx@example.net", "organization": "Lenaqxorg"},
        "Dayton",
        [{"given_name": "Omarqx", "family_name": "Faroukqx", "email": "omar.qx@example.net",
          "organization": "Lenaqxorg", "ticket_type_id": paid.id},
         {"given_name": "Fatimaqx", "family_name": "Faroukqx", "email": "fatima.qx@example.net",
          "organization": "Lenaqxorg", "ticket_type_id": paid.id}],
        payment={"method": "invoice", "billing_address": "1 Qxstreet\nDayton OH", "po_number": "PO-77"})
    order_id = order.id
    omar = next(r for r in order.registrations if r.given_name == "Omarqx")
    registrations_service.cancel_registration(omar.id)  # a credit note naming Omar
    payments.mark_invoice_paid(order_id, note="cheque from qxpayer")
    payments.refund_order(order_id, 1000, reason="qxrefund reason")

    db.session.rollback()
    delegation = db.session.execute(sa.select(Delegation).where(Delegation.convening_id == convening.id)).scalar_one()
    delegation.contact_name, delegation.contact_email = "Contactqx Person", "contact.qx@example.net"
    person = db.session.get(Registration, person.id)
    db.session.add_all([
        Presenter(convening_id=convening.id, name="Presenterqx Guest", organization="Qxpresorg", bio="qxbio"),
        Presenter(convening_id=convening.id, registration_id=person.id, name=person.full_name,
                  organization=person.organization),
        # An email still waiting to go out when the data is erased: it must never go.
        OutboxMessage(kind="reminder", registration_id=person.id, to_address=person.email,
                      subject="Zainabqx, see you", text_body="Dear Zainabqx Okonkwoqx", html_body="<p>Zainabqx</p>"),
        PrintJob(convening_id=convening.id, kind="badges", status="done", total=1, done=1,
                 registration_ids=[person.id], file_name="erase-me-badges-1.pdf"),
    ])
    db.session.commit()
    prints = Path(current_app.config["PRINTS_DIR"])
    prints.mkdir(parents=True, exist_ok=True)
    (prints / "erase-me-badges-1.pdf").write_text("%PDF-1.7 Zainabqx Okonkwoqx")

    # Names the desk typed: the person's own (found), and one nobody registered under.
    entrance = checkin.main_list(convening.id)
    checkin.check_in(entrance, "Zainabqx Okonkwoqx")
    checkin.check_in(entrance, "Qxtyped Stranger")

    other = make_convening(slug="keep-me", name="Keep Me Forum")
    other_ticket = make_ticket(other)
    registrations_service.register_attendee(other.id, other_ticket.id, other_person("Zainabqy", SHARED_EMAIL))
    registrations_service.register_attendee(other.id, other_ticket.id, other_person("Yusufqy", "yusuf.qy@example.net"))
    checkin.check_in(checkin.main_list(other.id), "Yusufqy")
    db.session.rollback()
    return Scene(convening=convening, other=other, free=free, paid=paid, zainab=person,
                 order=db.session.get(type(order), order_id), questions=questions)


def text_columns() -> list[tuple[sa.Table, list[sa.Column]]]:
    """Every table with its text and JSON columns, straight from the models' metadata (new tables included)."""
    found = []
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.c if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
        if columns:
            found.append((table, columns))
    return found


def scan(values: list[str]) -> list[tuple[str, str, dict]]:
    """(value, table, row) for each row of any table where one of `values` shows, in any case."""
    db.session.rollback()
    wanted = [v.casefold() for v in values]
    hits = []
    for table, columns in text_columns():
        for row in db.session.execute(sa.select(table)).mappings():
            for column in columns:
                cell = row[column.key]
                if cell is None:
                    continue
                text = (cell if isinstance(cell, str) else json.dumps(cell, ensure_ascii=False)).casefold()
                hits += [(value, table.name, dict(row)) for value, folded in zip(values, wanted) if folded in text]
    return hits


def files_with(folder: Path, values: list[str]) -> list[str]:
    """Files under `folder` whose decoded text shows one of `values` (emails are read through their MIME parts)."""
    import email
    from email import policy

    found = []
    if not folder.exists():
        return found
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        texts = [raw.decode("utf-8", "replace")]
        if path.suffix == ".eml":
            message = email.message_from_bytes(raw, policy=policy.default)
            texts += [str(message["To"]), str(message["Subject"])]
            texts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
        if any(v.casefold() in t.casefold() for v in values for t in texts):
            found.append(path.name)
    return found
