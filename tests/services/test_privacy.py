"""Privacy: the default notice, retention, and erasing a past convening's personal data while keeping its counts."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from convene.errors import ConveneError
from convene.extensions import db
from convene.models import Answer, AuditEntry, Convening, Job, Order, OutboxMessage, Registration, Status
from convene.models.payments import CreditNote
from convene.models.privacy import PersonalDataErasure
from convene.services import payment_reports, privacy, reports
from convene.services import registrations as registrations_service
from convene.services.mail import deliver_outbox
from tests.factories import make_convening, make_registration, make_ticket, person
from tests.privacy_scene import (
    ERASED_VALUES,
    OTHER_VALUES,
    SHARED_EMAIL,
    build_scene,
    files_with,
    past_convening,
    scan,
)


@pytest.fixture
def scene(app):
    return build_scene()


def fresh_convening(convening_id: int) -> Convening:
    db.session.rollback()
    return db.session.get(Convening, convening_id)


# -- the notice and retention -----------------------------------------------------------------------

def test_default_notice_names_the_convening_its_contact_what_is_collected_and_how_long(app):
    convening = make_convening(name="Dayton Summit", contact_email="privacy@dayton.example", retention_months=6,
                               ends_on=date(2027, 5, 14), starts_on=date(2027, 5, 12))
    text = privacy.default_notice(convening)
    assert "Dayton Summit" in text and "privacy@dayton.example" in text
    for collected in ("name", "email", "phone", "organization", "dietary and access needs", "answers"):
        assert collected in text
    assert "badge" in text and "site visits" in text and "organizing team" in text
    assert "until 6 months after the convening ends, that is until 14 November 2027" in text
    assert "to have it corrected or erased" in text
    convening.retention_months = None
    assert "until the organizers erase it" in privacy.default_notice(convening)
    convening.privacy_notice = "  Our own words.  "
    assert privacy.notice_text(convening) == "Our own words."


@pytest.mark.parametrize("months", [0, 121, -3])
def test_retention_outside_1_to_120_months_is_refused_and_nothing_changes(app, months):
    convening = make_convening(retention_months=12)
    with pytest.raises(ConveneError) as caught:
        privacy.update_privacy_settings(convening.id, "", months)
    assert (caught.value.code, caught.value.field) == ("retention_invalid", "retention_months")
    assert fresh_convening(convening.id).retention_months == 12


def test_a_notice_equal_to_the_default_is_stored_empty_so_it_keeps_following_the_settings(app):
    convening = make_convening(retention_months=3)
    privacy.update_privacy_settings(convening.id, privacy.default_notice(convening).replace("\n\n", "\r\n\r\n"), 3)
    assert fresh_convening(convening.id).privacy_notice == ""
    privacy.update_privacy_settings(convening.id, "Written by us.\n\nSecond paragraph.", None)
    saved = fresh_convening(convening.id)
    assert (saved.privacy_notice, saved.retention_months) == ("Written by us.\n\nSecond paragraph.", None)


def test_months_are_added_to_the_last_day_of_the_month_when_it_is_shorter():
    assert privacy.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert privacy.add_months(date(2027, 8, 31), 6) == date(2028, 2, 29)
    assert privacy.add_months(date(2027, 11, 15), 120) == date(2037, 11, 15)


# -- erasing ----------------------------------------------------------------------------------------

def test_erasing_is_refused_until_the_convening_is_over_and_changes_nothing(app):
    today = date.today()
    convening = make_convening(starts_on=today - timedelta(days=2), ends_on=today + timedelta(days=1))
    registration = make_registration(convening, make_ticket(convening), 1)
    with pytest.raises(ConveneError) as caught:
        privacy.erase_personal_data(convening.id, by="test")
    assert caught.value.code == "erase_not_ended"
    db.session.rollback()
    assert db.session.get(Registration, registration.id).given_name == "Amina1"
    assert fresh_convening(convening.id).personal_data_erased_at is None
    assert db.session.execute(sa.select(PersonalDataErasure)).first() is None


def test_the_scene_really_holds_personal_data_everywhere_the_scan_looks(scene):
    tables = {table for _, table, _ in scan(ERASED_VALUES)}
    assert {"registration", "answer", "orders", "credit_note", "refund", "outbox_message", "delegation",
            "presenter", "host_organization", "audit_entry", "checkin_scan"} <= tables
    assert {v for v, _, _ in scan(ERASED_VALUES)} == set(ERASED_VALUES)


def test_after_erasure_no_personal_value_is_left_in_any_table_and_the_other_convening_keeps_its_own(scene, app):
    privacy.erase_personal_data(scene.convening.id, by="organizer@example.org")

    assert scan(ERASED_VALUES) == []
    # The other convening is untouched, the person registered at both included.
    assert {v for v, _, _ in scan(OTHER_VALUES)} == set(OTHER_VALUES)
    other_ids = set(db.session.execute(
        sa.select(Registration.id).where(Registration.convening_id == scene.other.id)).scalars())
    for _, table, row in scan([SHARED_EMAIL]):
        assert row.get("convening_id") == scene.other.id or row.get("registration_id") in other_ids, (table, row)
    kept = db.session.execute(sa.select(Registration).where(Registration.email == SHARED_EMAIL)).scalar_one()
    assert (kept.convening_id, kept.given_name) == (scene.other.id, "Zainabqy")
    # Nor is anything left on disk: the badge PDF and the emails' .eml copies of the erased convening are gone.
    assert files_with(Path(app.config["PRINTS_DIR"]), ERASED_VALUES) == []
    assert files_with(Path(app.config["MAIL_OUTBOX_DIR"]), ERASED_VALUES) == []
    assert files_with(Path(app.config["MAIL_OUTBOX_DIR"]), ["Zainabqy"]) != []  # the other convening's stay


def test_erasure_keeps_every_count_the_dashboard_and_the_payment_reports_show(scene):
    convening = fresh_convening(scene.convening.id)
    dashboard, totals = reports.build_dashboard(convening), payment_reports.payment_totals(convening)
    counts = reports.counts_by_convening()
    assert dashboard.dietary["vegan"] == 1 and dashboard.accessibility["step_free"] == 1
    assert dashboard.dietary_notes == 1 and dashboard.accessibility_notes == 1

    privacy.erase_personal_data(convening.id, by="test")

    convening = fresh_convening(convening.id)
    assert reports.build_dashboard(convening) == dashboard
    assert payment_reports.payment_totals(convening) == totals
    assert reports.counts_by_convening() == counts
    order = db.session.get(Order, scene.order.id)
    assert (order.invoice_number, order.total_cents, order.paid_cents, order.refunded_cents, order.po_number) == (
        scene.order.invoice_number, scene.order.total_cents, 45000, 1000, "PO-77")
    [note] = db.session.execute(sa.select(CreditNote)).scalars().all()
    assert note.amount_cents == 45000 and [seat["name"] for seat in note.seats] == ["Erased"]


def test_rows_stay_as_erased_people_with_their_status_ticket_delegation_and_choice_answers(scene):
    before = {r.id: (r.status, r.ticket_type_id, r.delegation_id, r.reference, r.price_cents, r.created_at)
              for r in db.session.execute(sa.select(Registration).where(
                  Registration.convening_id == scene.convening.id)).scalars()}

    privacy.erase_personal_data(scene.convening.id, by="test")

    db.session.rollback()
    rows = db.session.execute(sa.select(Registration).where(
        Registration.convening_id == scene.convening.id)).scalars().all()
    assert {r.id: (r.status, r.ticket_type_id, r.delegation_id, r.reference, r.price_cents, r.created_at)
            for r in rows} == before
    for r in rows:
        assert (r.full_name, r.email, r.phone, r.dietary_needs, r.accessibility_needs) == (
            "Erased", f"erased-{r.id}@erased.invalid", "", [], [])
    answers = {a.question_id: a.value for a in db.session.execute(sa.select(Answer)).scalars()}
    assert answers == {scene.questions["region"].id: "North", scene.questions["childcare"].id: True}
    # The log keeps who did what and when, and says the erasure happened, without the values it replaced.
    erased = db.session.execute(sa.select(AuditEntry).where(AuditEntry.action == "registration.erased")).scalars().all()
    assert len(erased) == 3 and all(e.changes["email"] == ["(erased)", "(erased)"] for e in erased)
    created = db.session.execute(sa.select(AuditEntry).where(
        AuditEntry.action == "registration.created", AuditEntry.convening_id == scene.convening.id)).scalars().all()
    assert len(created) == 3 and all(e.changes["given_name"] == [None, "(erased)"] for e in created)


def test_the_preview_counts_exactly_what_is_erased_and_a_second_run_erases_nothing(scene):
    people = sa.select(Registration.id).where(Registration.convening_id == scene.convening.id)
    emails = db.session.execute(sa.select(sa.func.count()).select_from(OutboxMessage).where(sa.or_(
        OutboxMessage.registration_id.in_(people), OutboxMessage.to_address == "lena.qx@example.net"))).scalar()
    preview = privacy.erasure_preview(scene.convening.id)
    counts = preview.counts
    assert {k: v for k, v in counts.items() if k != "log_entries"} == {
        "registrations": 3, "answers": 1, "orders": 1, "credit_notes": 1, "refunds": 1, "messages": emails,
        "delegations": 1, "presenters": 2, "hosts": 1, "print_files": 1}
    assert emails >= 6 and counts["log_entries"] > 10

    result = privacy.erase_personal_data(scene.convening.id, expected=preview.token, by="organizer@example.org")

    assert result.counts == counts
    convening = fresh_convening(scene.convening.id)
    erased_at = convening.personal_data_erased_at
    [record] = privacy.erasures_of(convening.id)
    assert (record.erased, record.erased_by) == (counts, "organizer@example.org")
    assert record.kept_counts == {"dietary": {"vegan": 1, "halal": 1}, "dietary_notes": 1,
                                  "accessibility": {"step_free": 1}, "accessibility_notes": 1}
    assert privacy.erasure_preview(convening.id).empty

    again = privacy.erase_personal_data(convening.id, by="test")

    assert again.nothing and again.describe() == "nothing left to erase"
    assert fresh_convening(convening.id).personal_data_erased_at == erased_at
    assert len(privacy.erasures_of(convening.id)) == 1


def test_a_confirmation_of_an_older_preview_is_refused_when_there_is_more_to_erase_now(scene):
    token = privacy.erasure_preview(scene.convening.id).token
    newcomer = registrations_service.add_registration(scene.convening.id, scene.free.id, person(9), send_email=False)

    with pytest.raises(ConveneError) as caught:
        privacy.erase_personal_data(scene.convening.id, expected=token, by="test")

    assert caught.value.code == "erase_preview_changed"
    db.session.rollback()
    assert db.session.get(Registration, newcomer.id).given_name == "Amina9"
    assert scan(["Zainabqx"]) != [] and fresh_convening(scene.convening.id).personal_data_erased_at is None


def test_emails_waiting_to_go_out_are_never_sent_after_erasure(scene, outbox):
    before = len(outbox.messages())
    privacy.erase_personal_data(scene.convening.id, by="test")
    db.session.rollback()
    reminder = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.kind == "reminder")).scalar_one()
    assert (reminder.status, reminder.to_address, reminder.last_error) == ("failed", "", privacy.UNSENT)
    assert deliver_outbox() == 0
    assert len(outbox.messages()) < before  # the erased convening's .eml copies went, nothing new came


def test_emailed_links_stop_working_and_registration_closes(scene):
    from convene.services.tokens import manage_token

    old_token, old_version, old_checkin = (manage_token(scene.zainab), scene.zainab.token_version,
                                           scene.zainab.checkin_token)
    privacy.erase_personal_data(scene.convening.id, by="test")
    convening = fresh_convening(scene.convening.id)
    zainab = db.session.get(Registration, scene.zainab.id)
    assert manage_token(zainab) != old_token and zainab.token_version == old_version + 1
    assert zainab.checkin_token != old_checkin  # the printed badge's QR code finds nobody
    assert convening.registration_state() == "closed"
    with pytest.raises(ConveneError) as caught:
        registrations_service.register_attendee(convening.id, scene.free.id, person(5))
    assert caught.value.code == "registration_closed"


# -- retention ---------------------------------------------------------------------------------------

def test_erase_expired_erases_only_convenings_past_their_retention(app):
    today = date.today()
    due = past_convening(slug="due", ends_on=today - timedelta(days=70), starts_on=today - timedelta(days=72),
                         retention_months=1)
    not_yet = past_convening(slug="not-yet", ends_on=today - timedelta(days=70), starts_on=today - timedelta(days=72),
                             retention_months=6)
    never = past_convening(slug="never", ends_on=today - timedelta(days=3000),
                           starts_on=today - timedelta(days=3002))
    just_over = past_convening(slug="just-over", ends_on=today - timedelta(days=1), starts_on=today - timedelta(days=2),
                               retention_months=1)
    people = {c.slug: make_registration(c, make_ticket(c), n) for n, c in enumerate([due, not_yet, never, just_over])}

    results = privacy.erase_expired()

    assert [(r.slug, r.counts["registrations"]) for r in results] == [("due", 1)]
    db.session.rollback()
    assert {slug: db.session.get(Registration, r.id).given_name for slug, r in people.items()} == {
        "due": "Erased", "not-yet": "Amina1", "never": "Amina2", "just-over": "Amina3"}
    [record] = privacy.erasures_of(due.id)
    assert record.erased_by == "retention (1 month)"
    assert privacy.erase_expired() == []  # nothing left: the next day's run does nothing


def test_erase_expired_picks_up_what_came_in_after_an_erasure(app):
    today = date.today()
    convening = past_convening(ends_on=today - timedelta(days=70), starts_on=today - timedelta(days=72),
                               retention_months=1)
    ticket = make_ticket(convening)
    make_registration(convening, ticket, 1)
    privacy.erase_expired()
    late = registrations_service.add_registration(convening.id, ticket.id, person(2), send_email=False)

    [result] = privacy.erase_expired()

    assert result.counts["registrations"] == 1
    db.session.rollback()
    assert db.session.get(Registration, late.id).given_name == "Erased"
    assert db.session.get(Registration, late.id).status == Status.CONFIRMED


def test_the_schedulers_daily_sweep_erases_what_is_past_its_retention(app):
    from convene import jobs

    today = date.today()
    due = past_convening(slug="due", ends_on=today - timedelta(days=70), starts_on=today - timedelta(days=72),
                         retention_months=1)
    person_due = make_registration(due, make_ticket(due), 1)
    [sweep] = [job for job in jobs.schedule_sweeps() if job.kind == "erase_expired"]
    assert jobs.wait(sweep.id, timeout=60) == "done"
    db.session.rollback()
    assert db.session.get(Registration, person_due.id).given_name == "Erased"
    assert "due" in jobs.get_job(sweep.id).message
    assert [job.kind for job in jobs.schedule_sweeps()].count("erase_expired") == 1  # once a day: the same job
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "erase_expired")) == 1


# -- the command line --------------------------------------------------------------------------------

def test_erase_personal_data_command_shows_what_it_erases_and_asks_first(scene, runner):
    declined = runner.invoke(args=["convene", "erase-personal-data", "erase-me"], input="n\n")
    assert declined.exit_code != 0 and "Registrations: 3" in declined.output
    assert fresh_convening(scene.convening.id).personal_data_erased_at is None

    done = runner.invoke(args=["convene", "erase-personal-data", "erase-me", "--yes"])

    assert done.exit_code == 0, done.output
    assert "Erased personal data of erase-me: 3 registrations, 1 free-text answers" in done.output
    assert fresh_convening(scene.convening.id).personal_data_erased_at is not None
    assert privacy.erasures_of(scene.convening.id)[0].erased_by == "command line"
    assert scan(ERASED_VALUES) == []


def test_erase_personal_data_command_refuses_a_convening_not_over_yet(app, runner):
    make_convening(slug="upcoming")
    result = runner.invoke(args=["convene", "erase-personal-data", "upcoming", "--yes"])
    assert result.exit_code != 0 and "once the convening is over" in result.output
    assert runner.invoke(args=["convene", "erase-personal-data", "nowhere", "--yes"]).exit_code != 0


def test_erase_expired_command_says_what_it_erased(app, runner):
    today = date.today()
    convening = past_convening(slug="old-one", ends_on=today - timedelta(days=40),
                               starts_on=today - timedelta(days=42), retention_months=2)
    make_registration(convening, make_ticket(convening), 1)
    quiet = runner.invoke(args=["convene", "erase-expired"])
    assert quiet.exit_code == 0 and "No convening is past its retention" in quiet.output
    fresh_convening(convening.id).retention_months = 1
    db.session.commit()

    result = runner.invoke(args=["convene", "erase-expired"])

    assert result.exit_code == 0 and "Erased personal data of old-one: 1 registrations" in result.output


def test_on_sqlite_no_erased_value_is_left_in_the_database_file_its_log_or_the_search_index(scene, app, backend):
    """Free pages, the write-ahead log and the search index's merged-away segments keep old bytes unless told."""
    if backend != "sqlite":
        pytest.skip("a file-level check: PostgreSQL's storage is its own business (VACUUM)")
    from convene.text import search_key

    path = Path(db.engine.url.database)
    wanted = [v.encode() for v in ERASED_VALUES] + [search_key(v).encode() for v in ERASED_VALUES]

    def left() -> list[bytes]:
        data = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        return [v for v in wanted if v in data]

    db.session.commit()
    assert left(), "the scene's values are in the file before erasure (else this test proves nothing)"
    privacy.erase_personal_data(scene.convening.id, by="organizer@example.org")
    db.session.commit()
    assert left() == []
    found = db.session.execute(sa.text("SELECT rowid FROM registration_search WHERE registration_search MATCH :q"),
                               {"q": '"okonkwoqx"'}).all()
    assert found == []
