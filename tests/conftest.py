"""Fixtures: an app on a real database (SQLite always, PostgreSQL when CONVENE_TEST_DATABASE_URL is set)."""
from __future__ import annotations

import contextvars
import email
import os
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask import has_app_context
from flask.testing import FlaskClient

from convene import create_app
from convene.extensions import db as _db

PG_URL = os.environ.get("CONVENE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_schema_ready: set[str] = set()


def _url(backend: str, tmp_root: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_root / 'convene-test.db'}"
    if PG_URL.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + PG_URL.split("://", 1)[1]
    return PG_URL


def _build_schema(app) -> None:
    """Drop everything and run the real migrations, once per backend per run."""
    from flask_migrate import upgrade

    with app.app_context():
        _db.drop_all()
        with _db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()


def _empty_tables(app) -> None:
    with app.app_context():
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        with _db.engine.begin() as conn:
            if _db.engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(sa.text(f"DELETE FROM {table}"))


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production.

    Flask reuses an app context that is already pushed (the test's own), which would let `g`
    (Flask-Login's user) and the database session leak from one request to the next.
    """

    def open(self, *args, **kwargs):
        if not has_app_context():  # a redirect being followed, already isolated
            return super().open(*args, **kwargs)
        response = contextvars.Context().run(super().open, *args, **kwargs)
        _db.session.rollback()  # the test's own reads start afresh and see what the request wrote
        return response


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("convene")


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def app_config(backend, tmp_root, tmp_path) -> dict:
    """Settings for one test; tests may change them before asking for `app`."""
    return {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": _url(backend, tmp_root),
        "MAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PRINTS_DIR": str(tmp_path / "prints"),
        "IMPORT_UPLOADS_DIR": str(tmp_path / "imports"),  # files kept for the import's columns step
    }


@pytest.fixture
def app(app_config, backend):
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    if backend not in _schema_ready:
        _build_schema(app)
        _schema_ready.add(backend)
    _empty_tables(app)
    with app.app_context():
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class Outbox:
    """The .eml files the app wrote, parsed."""

    def __init__(self, path: Path):
        self.path = path

    def messages(self) -> list[email.message.EmailMessage]:
        if not self.path.exists():
            return []
        return [email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted(self.path.glob("*.eml"))]

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]

    @staticmethod
    def text(message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture
def outbox(app) -> Outbox:
    return Outbox(Path(app.config["MAIL_OUTBOX_DIR"]))


@pytest.fixture
def organizer(app):
    from tests.factories import make_user

    return make_user("organizer@example.org", role="organizer")


@pytest.fixture
def staff_user(app):
    from tests.factories import make_user

    return make_user("staff@example.org", role="staff")


def login(client, email: str, password: str = "correct-horse-battery"):
    return client.post("/admin/login", data={"email": email, "password": password})


@pytest.fixture
def organizer_client(client, organizer):
    login(client, organizer.email)
    return client


@pytest.fixture
def staff_client(client, staff_user):
    login(client, staff_user.email)
    return client


@pytest.fixture(scope="session")
def stripe_server():
    """One fake Stripe API on loopback for the whole run; the real stripe library talks to it over HTTP."""
    from tests.fake_stripe import FakeStripe

    server = FakeStripe(webhook_secret="whsec_test_convene").start()
    yield server
    server.stop()


@pytest.fixture
def fake_stripe(app, stripe_server):
    """The fake Stripe, emptied, with the app's Stripe settings pointing at it."""
    stripe_server.reset()
    app.config.update(STRIPE_SECRET_KEY="sk_test_convene", STRIPE_WEBHOOK_SECRET=stripe_server.webhook_secret,
                      STRIPE_API_BASE=stripe_server.url, STRIPE_MAX_NETWORK_RETRIES=2)
    return stripe_server
