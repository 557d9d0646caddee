"""Who may open every back-office URL, by role: each member gets exactly what their role allows.

The table below is the specification, written per page: for each endpoint, which roles may GET it and
which may POST to it. Every refused request is sent for real and must answer 403 (a member without the
permission), 404 (an account with no role on the convening) or the sign-in page (no account), and change
nothing (no log entry, no email). Every allowed one must pass the access check. A route added without a
rule, or without a line here, fails the first two tests.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask_login import login_user, logout_user

from convene.admin.access import check_request, rule_of
from convene.extensions import db
from convene.models import AuditEntry, OutboxMessage
from tests.conftest import login
from tests.factories import (make_convening, make_delegation, make_host, make_question, make_registration, make_slot,
                             make_ticket, make_user, make_visit)

OWNER, ORGANIZER, FINANCE, DESK, LEAD, VIEWER = "owner", "organizer", "finance", "desk", "site_visit_lead", "viewer"
TEAM_ROLES = (OWNER, ORGANIZER, FINANCE, DESK, LEAD, VIEWER)
EDIT = {OWNER, ORGANIZER}
MEMBER = set(TEAM_ROLES)
GROUPS = {
    "-": set(),  # no such method on this URL
    "M": MEMBER,  # any member of the team
    "S": EDIT | {FINANCE, VIEWER},  # the setup pages read: settings, tickets, questions, delegations, privacy
    "E": EDIT,  # settings, tickets, questions, delegations, registrations' details, the program
    "B": EDIT | {DESK},  # badge fields, walk-ins, desk payments at registration
    "PV": EDIT | {FINANCE, VIEWER},  # payments read
    "PM": EDIT | {FINANCE},  # refunds, invoices, codes
    "P": EDIT | {DESK, LEAD},  # printing
    "SV": EDIT | {DESK, VIEWER},  # program read
    "VV": EDIT | {DESK, LEAD, VIEWER},  # site visits read
    "VM": EDIT | {LEAD},  # site visits change
    "L": EDIT | {FINANCE, VIEWER},  # the log
    "MS": EDIT,  # messages to registrants
    "T": {OWNER},  # the team
    "C": EDIT | {DESK, LEAD},  # check-in: scanning badges (leads take their groups onto the bus)
    "AD": set(),  # platform administrators only
    "SI": MEMBER,  # any signed-in account (members and outsiders alike)
    "PUB": MEMBER,  # no account needed
}

# endpoint: (who may GET, who may POST)
EXPECTED = {
    "admin.login": ("PUB", "PUB"), "admin.logout": ("-", "SI"), "admin.account_password": ("SI", "SI"),
    "admin.index": ("SI", "-"), "admin.new_convening": ("AD", "AD"),
    "admin.dashboard": ("M", "-"), "admin.edit_convening": ("S", "E"),
    "admin.tickets": ("S", "-"), "admin.new_ticket": ("E", "E"), "admin.edit_ticket": ("S", "E"),
    "admin.delete_ticket": ("E", "E"),
    "admin.questions": ("S", "-"), "admin.new_question": ("E", "E"), "admin.edit_question": ("S", "E"),
    "admin.delete_question": ("E", "E"), "admin.move_question": ("-", "E"),
    "admin.delegations": ("S", "-"), "admin.new_delegation": ("E", "E"), "admin.edit_delegation": ("S", "E"),
    "admin.delete_delegation": ("E", "E"), "admin.merge_delegation": ("E", "E"),
    "admin.translations": ("S", "E"), "admin.interpretation": ("M", "-"),
    "admin.registrations": ("M", "-"), "admin.registration": ("M", "-"), "admin.edit_badge": ("-", "B"),
    "admin.registration_desk_payment": ("-", "B"), "admin.edit_registration": ("E", "E"),
    "admin.new_registration": ("E", "E"), "admin.add_walk_in": ("B", "B"), "admin.cancel_registration": ("E", "E"),
    "admin.resend_manage_link": ("-", "E"), "admin.export_registrations": ("PV", "-"),
    "admin.queue_registrations_export": ("-", "PV"), "admin.jobs": ("E", "-"), "admin.job": ("M", "-"),
    "admin.job_file": ("PV", "-"), "admin.retry_job": ("-", "E"),
    "admin.import_registrations": ("E", "E"), "admin.import_columns": ("E", "E"), "admin.import_template": ("E", "-"),
    "admin.merge_registration": ("E", "E"), "admin.registration_visit_preferences": ("-", "VM"),
    "admin.payments": ("PV", "-"), "admin.payments_csv": ("PV", "-"), "admin.order": ("PV", "-"),
    "admin.order_document": ("PV", "-"), "admin.credit_note_document": ("PV", "-"),
    "admin.order_refund": ("-", "PM"), "admin.order_retry_refund": ("-", "PM"), "admin.order_mark_paid": ("-", "PM"),
    "admin.order_desk_payment": ("-", "PM"), "admin.order_accept": ("-", "PM"), "admin.order_cancel": ("-", "PM"),
    "admin.codes": ("PV", "-"), "admin.new_code": ("PM", "PM"), "admin.edit_code": ("PV", "PM"),
    "admin.delete_code": ("PM", "PM"),
    "admin.print_queue": ("P", "-"), "admin.print_preview": ("P", "-"), "admin.print_badges": ("-", "P"),
    "admin.print_job": ("P", "-"), "admin.print_job_pdf": ("P", "-"), "admin.mark_job_printed": ("-", "P"),
    "admin.retry_print_job": ("-", "P"),
    "admin.print_rosters": ("P", "-"), "admin.print_roster": ("P", "-"), "admin.print_program": ("P", "-"),
    "admin.print_agenda": ("P", "-"), "admin.print_agendas": ("-", "P"), "admin.queue_document": ("-", "P"),
    "admin.schedule": ("SV", "-"), "admin.schedule_list": ("SV", "-"), "admin.schedule_session": ("SV", "-"),
    "admin.schedule_session_sign_in": ("SV", "-"), "admin.schedule_session_csv": ("SV", "-"),
    "admin.schedule_new_session": ("E", "E"), "admin.schedule_edit_session": ("E", "E"),
    "admin.schedule_duplicate_session": ("E", "E"), "admin.schedule_move_session": ("E", "E"),
    "admin.schedule_delete_session": ("E", "E"), "admin.schedule_publish": ("E", "E"),
    "admin.schedule_unpublish": ("-", "E"), "admin.schedule_rules": ("SV", "E"), "admin.schedule_rooms": ("SV", "-"),
    "admin.schedule_new_room": ("E", "E"), "admin.schedule_edit_room": ("E", "E"),
    "admin.schedule_delete_room": ("E", "E"), "admin.schedule_presenters": ("SV", "-"),
    "admin.schedule_new_presenter": ("E", "E"), "admin.schedule_edit_presenter": ("E", "E"),
    "admin.schedule_delete_presenter": ("E", "E"), "admin.schedule_blocks": ("SV", "-"),
    "admin.schedule_new_block": ("E", "E"), "admin.schedule_edit_block": ("E", "E"),
    "admin.schedule_delete_block": ("E", "E"), "admin.schedule_allocate": ("SV", "E"),
    "admin.visits": ("VV", "-"), "admin.visit_settings": ("-", "VM"), "admin.visit_host_new": ("VM", "VM"),
    "admin.visit_host_edit": ("VM", "VM"), "admin.visit_host_delete": ("VM", "VM"),
    "admin.visit_slot_new": ("VM", "VM"),
    "admin.visit_slot_edit": ("VM", "VM"), "admin.visit_slot_delete": ("VM", "VM"), "admin.visit_grid": ("VM", "VM"),
    "admin.visit_edit": ("VM", "VM"), "admin.visit_delete": ("VM", "VM"), "admin.visit_coverage": ("VV", "-"),
    "admin.visit_assign": ("VM", "VM"), "admin.visit_plan": ("VV", "-"), "admin.visit_move": ("-", "VM"),
    "admin.visit_unlock": ("-", "VM"), "admin.visit_publish": ("VM", "VM"), "admin.visit_roster": ("VV", "-"),
    "admin.visit_roster_csv": ("VV", "-"), "admin.visit_rosters_csv": ("VV", "-"),
    "admin.checkin_index": ("C", "-"), "admin.checkin_scan": ("C", "C"), "admin.checkin_scan_api": ("-", "C"),
    "admin.checkin_revert": ("-", "E"),
    "admin.checkin_lists": ("C", "-"), "admin.checkin_list_new": ("E", "E"), "admin.checkin_list_edit": ("E", "E"),
    "admin.checkin_list_delete": ("E", "E"), "admin.checkin_live": ("C", "-"), "admin.checkin_live_numbers": ("C", "-"),
    "admin.checkin_no_shows_csv": ("C", "-"), "admin.checkin_attendance_csv": ("C", "-"),
    "admin.checkin_report": ("M", "-"), "admin.checkin_report_pdf": ("M", "-"),
    "admin.checkin_desk": ("B", "B"), "admin.checkin_desk_person": ("B", "B"),
    "admin.audit_log": ("L", "-"),
    "admin.messages": ("MS", "-"), "admin.new_message": ("MS", "MS"), "admin.message": ("MS", "-"),
    "admin.edit_message": ("MS", "MS"), "admin.send_message": ("-", "MS"), "admin.test_message": ("-", "MS"),
    "admin.cancel_message": ("-", "MS"), "admin.retry_message": ("-", "MS"),
    "admin.privacy": ("S", "E"), "admin.privacy_erase": ("E", "E"),
    "admin.copy_convening": ("E", "E"),
    "admin.team": ("T", "-"), "admin.invite_member": ("-", "T"), "admin.change_member_role": ("-", "T"),
    "admin.remove_member": ("T", "T"), "admin.revoke_invitation": ("-", "T"),
    "admin.accept_invitation": ("PUB", "PUB"), "admin.forgot_password": ("PUB", "PUB"),
    "admin.reset_password": ("PUB", "PUB"),
}


def admin_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")), key=lambda r: r.rule)


def test_every_back_office_view_has_a_rule(app):
    """A new page is closed to everyone until it is given a rule, and this test names it."""
    missing = [r.endpoint for r in admin_rules(app) if rule_of(r.endpoint) is None]
    assert missing == []


def test_every_back_office_view_is_in_this_table(app):
    missing = sorted({r.endpoint for r in admin_rules(app)} - set(EXPECTED))
    assert missing == [], f"add these endpoints to EXPECTED: {missing}"


def test_a_view_without_a_rule_is_refused_even_to_an_administrator(app, organizer_client):
    from convene.admin import bp  # noqa: F401

    def naked():
        return "should never be seen"

    app.view_functions["admin.index"], original = naked, app.view_functions["admin.index"]
    try:
        response = organizer_client.get("/admin/")
    finally:
        app.view_functions["admin.index"] = original
    assert response.status_code == 403 and b"should never be seen" not in response.data


class Scene:
    def __init__(self):
        self.convening = make_convening()
        self.other = make_convening()
        convening = self.convening
        ticket = make_ticket(convening)
        registration = make_registration(convening, ticket, 1)
        host, slot = make_host(convening, "Library"), make_slot(convening, "Morning", 9)
        visit = make_visit(host, slot, 10)
        self.ids = {
            "convening_id": convening.id, "ticket_id": ticket.id, "registration_id": registration.id,
            "question_id": make_question(convening, "Working group").id,
            "delegation_id": make_delegation(convening).id, "host_id": host.id, "slot_id": slot.id,
            "visit_id": visit.id, "site_visit_id": visit.id,
        }
        self.users = {role: make_user(f"{role}@example.org", role=role, convening=convening) for role in TEAM_ROLES}
        self.users["outsider"] = make_user("outsider@example.org", role=OWNER, convening=self.other)
        self.users["admin"] = make_user("admin@example.org")

    def url(self, rule) -> str:
        values = {}
        for name in rule.arguments:
            converter = rule._converters[name]
            if name == "kind":
                values[name] = "receipt"
            elif name == "direction":
                values[name] = "up"
            elif name == "token":
                values[name] = "x" * 40
            elif type(converter).__name__ == "AnyConverter":
                values[name] = sorted(converter.items)[0] if hasattr(converter, "items") else "x"
            else:
                values[name] = self.ids.get(name, 1)
        from flask import url_for

        return url_for(rule.endpoint, **values)


def footprint():
    return (db.session.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar(),
            db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage)).scalar())


def _allowed(app, user, method: str, url: str) -> bool:
    """Whether the access check lets `user` through (the view itself is not run)."""
    from werkzeug.exceptions import HTTPException

    with app.test_request_context(url, method=method):
        if user is not None:
            login_user(user)
        try:
            result = check_request()
        except HTTPException:
            return False
        finally:
            if user is not None:
                logout_user()
        return result is None


ROLES = (*TEAM_ROLES, "outsider", "admin", "anonymous")


@pytest.mark.parametrize("who", ROLES)
def test_each_role_gets_exactly_what_the_table_says(app, client, who):
    scene = Scene()
    user = scene.users.get(who)
    if user is not None:
        login(client, user.email)
    wrong = []
    for rule in admin_rules(app):
        if rule.endpoint not in EXPECTED:
            continue
        get_group, post_group = EXPECTED[rule.endpoint]
        url = scene.url(rule)
        for method, group in (("GET", get_group), ("POST", post_group)):
            if method not in rule.methods:
                continue
            if who == "admin":
                should = group != "-"
            elif who == "outsider":
                should = group in ("SI", "PUB")
            elif who == "anonymous":
                should = group == "PUB"
            else:
                should = who in GROUPS[group] and group != "AD"
            if should:
                if not _allowed(app, user, method, url):
                    wrong.append(f"{method} {rule.endpoint} refused")
                continue
            before = footprint()
            response = client.open(url, method=method)
            if who == "anonymous":
                ok = response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/admin/login"
            elif who == "outsider" and "convening_id" in rule.arguments:
                ok = response.status_code == 404
            else:
                ok = response.status_code == 403
            if not ok:
                wrong.append(f"{method} {rule.endpoint} answered {response.status_code}")
            if footprint() != before:
                wrong.append(f"{method} {rule.endpoint} changed something")
    assert wrong == []


def test_the_list_of_convenings_shows_only_the_accounts_own(client):
    scene = Scene()
    login(client, scene.users[FINANCE].email)
    page = client.get("/admin/").get_data(as_text=True)
    assert scene.convening.name in page and scene.other.name not in page
    assert re.search(r"New convening", page) is None
