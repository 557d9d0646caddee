"""The `flask convene` commands through Click's runner."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import make_convening, make_host, make_registration, make_slot, make_ticket, make_visit, person


def test_create_organizer_makes_an_account_that_can_sign_in(runner, client):
    result = runner.invoke(args=["convene", "create-organizer", "lead@example.org", "--password", "long-enough-pw",
                                 "--admin"])
    assert result.exit_code == 0 and "Created account lead@example.org (platform administrator)" in result.output
    again = runner.invoke(args=["convene", "create-organizer", "lead@example.org", "--password", "long-enough-pw"])
    assert again.exit_code != 0 and "already exists" in again.output
    response = client.post("/admin/login", data={"email": "lead@example.org", "password": "long-enough-pw"})
    assert response.status_code == 302


def test_create_organizer_generates_a_password_for_a_desk_member_of_one_convening(runner, db):
    from convene.models import AuditEntry, Membership, User

    convening = make_convening(slug="syracuse")
    result = runner.invoke(args=["convene", "create-organizer", "desk@example.org", "--generate", "--role", "desk",
                                 "--convening", "syracuse"])
    assert result.exit_code == 0 and "(desk on syracuse)" in result.output and "Password: " in result.output
    user = db.session.execute(db.select(User).where(User.email == "desk@example.org")).scalar_one()
    assert not user.is_admin
    assert [(m.convening_id, m.role) for m in db.session.execute(
        db.select(Membership).where(Membership.user_id == user.id)).scalars()] == [(convening.id, "desk")]
    logged = db.session.execute(db.select(AuditEntry).where(AuditEntry.object_type == "member")).scalars().all()
    assert [(e.actor_kind, e.actor_label) for e in logged] == [("command", "flask convene create-organizer")]
    unknown = runner.invoke(args=["convene", "create-organizer", "x@example.org", "--generate", "--role", "desk",
                                  "--convening", "nowhere"])
    assert unknown.exit_code != 0 and "There is no convening nowhere" in unknown.output


def test_assign_dry_run_reports_and_saves_nothing_then_assign_saves(runner, db):
    from convene.services.visits import assignments_of

    convening = make_convening(slug="toronto", visits_per_person=1)
    ticket = make_ticket(convening)
    for n in range(3):
        make_registration(convening, ticket, n)
    make_visit(make_host(convening, "Magnet"), make_slot(convening, "Morning", 9), 5)
    dry = runner.invoke(args=["convene", "assign", "toronto", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 people" in dry.output and "dry run" in dry.output and "proven optimal" in dry.output
    assert [a for a in assignments_of(convening.id) if a.site_visit_id] == []
    real = runner.invoke(args=["convene", "assign", "toronto"])
    assert real.exit_code == 0 and "saved as the working plan" in real.output
    db.session.expire_all()
    assert len([a for a in assignments_of(convening.id) if a.site_visit_id]) == 3
    published = runner.invoke(args=["convene", "publish-visits", "toronto"])
    assert "emailed 3 attendee(s)" in published.output


def test_assign_unknown_slug_says_so(runner):
    result = runner.invoke(args=["convene", "assign", "nowhere"])
    assert result.exit_code != 0 and "No convening with slug 'nowhere'" in result.output


@pytest.fixture
def deployed_app_config(app_config):
    """As in production: no SERVER_NAME, the public address in CONVENE_BASE_URL."""
    app_config.update(SERVER_NAME=None, BASE_URL="https://register.example.org")
    return app_config


def test_commands_email_links_on_the_public_address_outside_any_request(deployed_app_config, runner, outbox):
    convening = make_convening(slug="toronto", visits_per_person=1)
    make_registration(convening, make_ticket(convening), 1)
    make_visit(make_host(convening, "Magnet"), make_slot(convening, "Morning", 9), 5)
    assert runner.invoke(args=["convene", "assign", "toronto"]).exit_code == 0
    result = runner.invoke(args=["convene", "publish-visits", "toronto"])
    assert result.exit_code == 0, result.output
    [mail] = outbox.messages()
    assert "https://register.example.org/c/toronto/manage/" in outbox.text(mail)


def test_expire_offers_also_releases_unpaid_checkout_holds(app, runner, fake_stripe):
    from convene.extensions import db
    from convene.models import Order, OrderStatus, utcnow
    from convene.services import registrations

    convening = make_convening(capacity=1)
    ticket = make_ticket(convening, price_cents=45000)
    held = registrations.register_attendee(convening.id, ticket.id, person(1))
    order = db.session.get(Order, held.order_id)
    order.hold_expires_at = utcnow() - timedelta(hours=1)  # abandoned an hour ago, and no webhook came
    db.session.commit()
    result = runner.invoke(args=["convene", "expire-offers"])
    assert result.exit_code == 0 and "1 offer(s) or unpaid hold(s) released." in result.output
    db.session.rollback()
    assert db.session.get(Order, order.id).status == OrderStatus.EXPIRED
    assert registrations.seat_usage(convening.id).total == 0


@pytest.fixture
def production_app(app, app_config, monkeypatch):
    """The production configuration, its start-up checks satisfied, on this test's database."""
    from convene import create_app
    from convene.extensions import db

    secret = "a-production-secret-of-forty-characters!"
    monkeypatch.setenv("SECRET_KEY", secret)
    monkeypatch.setenv("DATABASE_URL", app_config["SQLALCHEMY_DATABASE_URI"])
    monkeypatch.setenv("CONVENE_BASE_URL", "https://convene.example")
    production = create_app({**app_config, "ENV_NAME": "production", "SECRET_KEY": secret,
                             "BASE_URL": "https://convene.example"})
    assert production.config["ENV_NAME"] == "production"
    assert production.config["SQLALCHEMY_DATABASE_URI"] == app.config["SQLALCHEMY_DATABASE_URI"]
    yield production
    with production.app_context():
        db.engine.dispose()


def everything_counted() -> dict:
    import sqlalchemy as sa

    from convene.extensions import db
    from convene.models import Convening, Registration, User

    db.session.rollback()
    return {model.__name__: db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()
            for model in (Convening, Registration, User)}


@pytest.mark.parametrize("command", ["demo", "demo-if-empty"])
def test_the_demo_refuses_the_production_configuration_and_creates_nothing(production_app, command):
    with production_app.app_context():  # the test's own (testing) app context would serve the command otherwise
        result = production_app.test_cli_runner().invoke(args=["convene", command])
    assert result.exit_code == 1
    assert "never runs with the production configuration" in result.output
    assert "convene-demo" not in result.output  # the demo password is not advertised either
    assert everything_counted() == {"Convening": 0, "Registration": 0, "User": 0}


def test_loading_the_demo_is_refused_by_the_service_too_under_production(production_app):
    from convene.errors import ConveneError
    from convene.services.demo import load_demo

    with production_app.app_context(), pytest.raises(ConveneError) as refused:
        load_demo()
    assert refused.value.code == "demo_in_production"
    assert everything_counted() == {"Convening": 0, "Registration": 0, "User": 0}


def test_demo_if_empty_outside_production_leaves_a_used_database_alone_and_prints_the_login(runner):
    make_convening(slug="toronto")
    result = runner.invoke(args=["convene", "demo-if-empty"])
    assert result.exit_code == 0 and "organizer@convene.example" in result.output
    assert everything_counted() == {"Convening": 1, "Registration": 0, "User": 0}
