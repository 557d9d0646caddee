"""The log page and history panels: who changed what, seen by those who may read the log and nobody else."""
import sqlalchemy as sa

from convene.extensions import db
from convene.models import AuditEntry
from convene.services import registrations as service
from tests.conftest import login
from tests.factories import make_convening, make_ticket, make_user, person


def test_an_organizers_cancel_shows_in_the_log_under_their_name_and_on_the_registrations_history(
        organizer_client, organizer):
    convening = make_convening()
    ticket = make_ticket(convening)
    registration = service.register_attendee(convening.id, ticket.id, person(1))
    organizer_client.post(f"/admin/c/{convening.id}/registrations/{registration.id}/cancel")
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "registration.cancelled")).scalar_one()
    assert (entry.actor_kind, entry.actor_user_id, entry.actor_label) == ("account", organizer.id, organizer.email)
    page = organizer_client.get(f"/admin/c/{convening.id}/log").get_data(as_text=True)
    assert "<code>registration.cancelled</code>" in page and organizer.email in page
    assert registration.reference in page
    filtered = organizer_client.get(f"/admin/c/{convening.id}/log?action=registration.cancelled").get_data(
        as_text=True)
    assert "<code>registration.cancelled</code>" in filtered and "<code>registration.created</code>" not in filtered
    by_actor = organizer_client.get(f"/admin/c/{convening.id}/log?actor=system").get_data(as_text=True)
    assert "<code>registration.cancelled</code>" not in by_actor
    assert "<code>registration.created</code>" in by_actor  # register_attendee ran outside any request: system
    history = organizer_client.get(f"/admin/c/{convening.id}/registrations/{registration.id}").get_data(as_text=True)
    assert 'id="history"' in history and "registration.cancelled" in history


def test_an_attendees_own_change_is_logged_as_the_attendee(client):
    convening = make_convening()
    ticket = make_ticket(convening)
    before = db.session.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar()
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page)
    data = {**{k: v for k, v in person(7).items() if isinstance(v, str)}, "ticket_type_id": ticket.id}
    if token:
        data["csrf_token"] = token.group(1)
    client.post(f"/c/{convening.slug}/register", data=data)
    entries = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "registration.created")).scalars(
        ).all()
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar() > before
    assert [e.actor_kind for e in entries] == ["attendee"]


def test_the_log_is_for_those_who_may_read_it(client):
    convening = make_convening()
    other = make_convening()
    make_user("finance@example.org", role="finance", convening=convening)
    make_user("desk@example.org", role="desk", convening=convening)
    make_user("owner@example.org", role="owner", convening=other)
    for email, status in (("finance@example.org", 200), ("desk@example.org", 403), ("owner@example.org", 404)):
        login(client, email)
        assert client.get(f"/admin/c/{convening.id}/log").status_code == status, email
        client.post("/admin/logout")


def test_an_orders_page_shows_its_history(organizer_client):
    from convene.models import Order

    convening = make_convening(invoice_enabled=True)
    ticket = make_ticket(convening, price_cents=10000)
    registration = service.register_attendee(convening.id, ticket.id, person(3), payment={"method": "invoice"})
    order = db.session.get(Order, registration.order_id)
    page = organizer_client.get(f"/admin/c/{convening.id}/payments/{order.id}").get_data(as_text=True)
    assert 'id="history"' in page and "order.created" in page and order.invoice_number in page
