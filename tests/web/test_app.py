"""Application-wide behaviour: health, CSRF, configuration, migrations, error pages."""
from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from convene import create_app
from convene.extensions import db
from convene.models.registrations import autogenerate_includes
from tests.factories import make_convening, make_ticket, person


def test_health_check_says_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_check_answers_503_when_the_database_is_unreachable(tmp_path):
    app = create_app({"ENV_NAME": "testing",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/convene.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_models_and_migrations_agree(app, tmp_path):
    """The migrated schema matches the models: autogenerate would write nothing."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                              "include_name": autogenerate_includes})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
    if db.engine.dialect.name == "sqlite":
        # What autogenerate cannot see: the search index's FTS5 table and triggers, as create_all makes them.
        made = sa.create_engine(f"sqlite:///{tmp_path / 'create_all.db'}")
        db.metadata.create_all(made)
        assert _sqlite_extras(db.engine) == _sqlite_extras(made) != set()
        made.dispose()


def _sqlite_extras(engine) -> set:
    with engine.connect() as connection:
        return set(connection.execute(sa.text(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' "
            "OR sql LIKE 'CREATE VIRTUAL TABLE%'")).all())


@pytest.fixture
def csrf_app_config(app_config):
    app_config["WTF_CSRF_ENABLED"] = True
    return app_config


@pytest.mark.usefixtures("csrf_app_config")
def test_post_without_csrf_token_is_refused(app, client):
    convening = make_convening()
    ticket = make_ticket(convening)
    data = {k: v for k, v in person(1).items() if not isinstance(v, list)} | {"ticket_type_id": ticket.id}
    response = client.post(f"/c/{convening.slug}/register", data=data)
    assert response.status_code == 400
    assert "Your session timed out, so nothing was saved yet" in response.get_data(as_text=True)  # form shown again
    assert client.post("/admin/login", data={"email": "a@b.org", "password": "x"}).status_code == 400


@pytest.mark.usefixtures("csrf_app_config")
def test_post_with_csrf_token_from_the_form_is_accepted(app, client):
    import re

    convening = make_convening()
    ticket = make_ticket(convening)
    page = client.get(f"/c/{convening.slug}/register").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    data = {k: v for k, v in person(1).items() if not isinstance(v, list)}
    data |= {"ticket_type_id": ticket.id, "csrf_token": token}
    assert client.post(f"/c/{convening.slug}/register", data=data).status_code == 302


@pytest.mark.parametrize("env, message", [
    ({}, "set SECRET_KEY"),
    ({"SECRET_KEY": "short"}, "set SECRET_KEY"),
    ({"SECRET_KEY": "x" * 40}, "set DATABASE_URL"),
])
def test_production_refuses_to_start_without_real_secrets(env, message):
    script = "from convene import create_app; create_app('production')"
    clean_env = {"PATH": "/usr/bin:/bin", "CONVENE_ENV": "production", **env}
    result = subprocess.run([sys.executable, "-c", script], env=clean_env, capture_output=True, text=True,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]), timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Convene refuses to start")


def test_unknown_page_renders_a_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)


def test_migrations_build_an_empty_database_from_scratch(tmp_path):
    """`flask db upgrade` on a new SQLite file creates every table."""
    from flask_migrate import upgrade

    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/fresh.db"})
    with app.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
    assert {"convening", "ticket_type", "registration", "answer", "question", "delegation"} <= tables


def test_only_the_test_suite_lowers_the_cost_of_password_hashing():
    from config import DevelopmentConfig, ProductionConfig, TestingConfig

    assert DevelopmentConfig.PASSWORD_HASH_METHOD == ProductionConfig.PASSWORD_HASH_METHOD == "scrypt"
    assert TestingConfig.PASSWORD_HASH_METHOD.startswith("pbkdf2:")



def _insert(connection, table: sa.Table, **values) -> int:
    """Insert a row filling every other required column with a plain value; returns its id."""
    from datetime import UTC, date, datetime

    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None or column.primary_key:
            continue
        kind = list if isinstance(column.type, sa.JSON) else column.type.python_type
        values[column.name] = {int: 1, bool: False, str: "x", list: [],
                               date: date(2026, 1, 1), datetime: datetime(2026, 1, 1, tzinfo=UTC)}[kind]
    return connection.execute(table.insert().values(**values)).inserted_primary_key[0]


@pytest.fixture
def empty_database(backend, app_config, tmp_path):
    """A database of its own (a fresh SQLite file, or a fresh PostgreSQL schema) for running migrations."""
    if backend == "sqlite":
        yield {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrations.db'}"}
        return
    url = app_config["SQLALCHEMY_DATABASE_URI"]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS migration_0009 CASCADE; CREATE SCHEMA migration_0009"))
    yield {"SQLALCHEMY_DATABASE_URI": url,
           "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c search_path=migration_0009"}}}
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA migration_0009 CASCADE"))
    engine.dispose()


def test_migration_0009_backfills_search_columns_of_existing_registrations(empty_database, tmp_path):
    """Rows written before 0009 get the same search_text and sort_key the app writes today."""
    from flask_migrate import upgrade

    from convene.text import name_sort_key, search_text

    app = create_app({"ENV_NAME": "testing", **empty_database, "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"), "PRINTS_DIR": str(tmp_path / "prints")})
    people = [("Luis", "Álvarez", "", "luis@example.org", "Café Ñandú"), ("مُحَمَّد", "عبد الله", "Mo", "mo@example.org", ""),
              ("Thu", "Đặng", "", "THU@example.org", "Šehić & Co")]
    with app.app_context():
        upgrade(revision="0008")
        assert sa.inspect(db.engine).get_table_names() and "sort_key" not in {
            c["name"] for c in sa.inspect(db.engine).get_columns("registration")}  # a schema of its own at 0008
        with db.engine.begin() as connection:
            tables = sa.MetaData()
            tables.reflect(connection, only=["convening", "ticket_type", "registration"])
            convening_id = _insert(connection, tables.tables["convening"], slug="old")
            ticket_id = _insert(connection, tables.tables["ticket_type"], convening_id=convening_id)
            for n, (given, family, badge, email, organization) in enumerate(people):
                _insert(connection, tables.tables["registration"], convening_id=convening_id,
                        ticket_type_id=ticket_id, reference=f"OLD-{n}", checkin_token=f"token-{n}",
                        given_name=given, family_name=family, badge_name=badge, email=email,
                        organization=organization)
        upgrade(revision="0009")
        with db.engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT search_text, sort_key FROM registration ORDER BY sort_key")).all()
        db.engine.dispose()
    assert [tuple(row) for row in rows] == [
        (search_text(g, f, b, e, o, f"OLD-{n}"), name_sort_key(f, g))
        for n, (g, f, b, e, o) in sorted(enumerate(people), key=lambda p: name_sort_key(p[1][1], p[1][0]))]
    assert rows[0].search_text == "luis alvarez luis@example.org cafe nandu old-0"
    assert [row.sort_key.split("\x1f")[0] for row in rows] == ["alvarez", "dang", "عبد الله"]


def test_migration_0021_indexes_existing_registrations_on_sqlite_and_goes_down_again(backend, tmp_path):
    """0021 fills the trigram index from the rows already there; its downgrade leaves the schema of 0018."""
    from flask_migrate import downgrade, upgrade

    if backend != "sqlite":
        # 0018's pg_trgm lives in the public schema, out of a schema of its own's reach; the test run's own
        # schema is built by every migration from empty.
        pytest.skip("the trigram index of 0021 is SQLite's")
    empty_database = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrations.db'}"}

    from convene.services.registration_lists import search_conditions

    app = create_app({"ENV_NAME": "testing", **empty_database, "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
                      "PRINTS_DIR": str(tmp_path / "prints")})

    def objects() -> set:
        with db.engine.connect() as connection:
            return set(connection.execute(sa.text(
                "SELECT type, name FROM sqlite_master WHERE name LIKE 'registration_search%'")).all())

    def found(q: str) -> list:
        with db.engine.connect() as connection:
            return connection.execute(sa.select(Registration.reference).where(*search_conditions([q]))).scalars().all()

    from convene.models import Registration

    with app.app_context():
        upgrade(revision="0018")
        before = objects()
        with db.engine.begin() as connection:
            tables = sa.MetaData()
            tables.reflect(connection, only=["convening", "ticket_type", "registration"])
            convening_id = _insert(connection, tables.tables["convening"], slug="old")
            ticket_id = _insert(connection, tables.tables["ticket_type"], convening_id=convening_id)
            for n, text in enumerate(["luis alvarez cafe", "محمد عبد الله"]):
                _insert(connection, tables.tables["registration"], convening_id=convening_id,
                        ticket_type_id=ticket_id, reference=f"OLD-{n}", checkin_token=f"token-{n}", email=f"p{n}@example.org",
                        search_text=text)
        upgrade(revision="0021")
        assert found("alvarez") == ["OLD-0"] and found("عبد") == ["OLD-1"]
        assert len(objects() - before) == 8  # the FTS5 table, its four shadow tables, three triggers
        downgrade(revision="0018")
        assert objects() == before
        upgrade()
        assert found("cafe") == ["OLD-0"]
        db.engine.dispose()
