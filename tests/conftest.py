"""Fixtures: an app on a real database (SQLite always, PostgreSQL when CONVENE_TEST_DATABASE_URL is set)."""
from __future__ import annotations

import contextvars
import email
import os
import time
from email import policy
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa

from flask import has_app_context
from flask.testing import FlaskClient

from convene import create_app
from convene.extensions import db as _db

PG_URL = os.environ.get("CONVENE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# Where tests marked `one_database` run: PostgreSQL when there (the stricter one: integer bounds, NUL bytes),
# else SQLite. For the costliest walks over every route, which prove the views rather than the database.
ONE_DATABASE = BACKENDS[-1]
_schema_ready: set[str] = set()


def pytest_configure(config) -> None:
    """Compile the translation catalogues when a .po is newer than its .mo (`make test` does it first too)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (Path(__file__).resolve().parent.parent / "convene" / "translations").glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            partial = mo.with_suffix(f".{os.getpid()}.tmp")  # xdist workers may compile at once: rename is atomic
            with partial.open("wb") as target:
                write_mo(target, catalog)
            partial.replace(mo)


def pytest_report_header(config) -> list[str]:
    return [f"databases: {' and '.join(BACKENDS)} (tests marked one_database: {ONE_DATABASE} only)"]


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect the other database's copy of each test marked `one_database`."""
    kept, other = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_other = item.get_closest_marker("one_database") and params.get("backend", ONE_DATABASE) != ONE_DATABASE
        (other if on_other else kept).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = kept
    if _worker():
        # pytest-xdist hands tests out in this order, so one collected last runs alone at the end: start the
        # Hypothesis tests (the longest, up to half a minute each) first. A stable sort keeps the rest in order.
        items.sort(key=lambda item: not getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


def _worker() -> str:
    """This process's name under pytest-xdist (`gw0`, `gw1`, ...); empty in a plain run."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def _given_pg_url() -> str:
    """CONVENE_TEST_DATABASE_URL, for the psycopg driver."""
    if PG_URL.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + PG_URL.split("://", 1)[1]
    return PG_URL


def _pg_url() -> str:
    """The database given, or under xdist one per worker named after it (`convene_test_gw0` beside
    `convene_test`), so workers never empty each other's tables."""
    if not _worker():
        return _given_pg_url()
    given = sa.engine.make_url(_given_pg_url())
    return given.set(database=f"{given.database}_{_worker()}").render_as_string(hide_password=False)


def _create_worker_database() -> None:
    """Create this worker's PostgreSQL database when missing, connected to the database given."""
    name = sa.engine.make_url(_pg_url()).database
    engine = sa.create_engine(_given_pg_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).scalar():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()


def _url(backend: str, tmp_root: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_root / 'convene-test.db'}"  # tmp_root is the worker's own under xdist
    return _pg_url()


_RUN_LOCK_KEY = 0x436F6E76  # an advisory lock a test run holds on its PostgreSQL database while it runs
_run_locks: list = []  # the connections holding it, open until the process ends


def _claim_pg_database() -> None:
    """Refuse, saying why, a PostgreSQL database another test run is using.

    Two runs emptying the same tables under each other fail at random (deadlocks, rows gone, duplicate keys),
    so each holds an advisory lock on its database; a second run's PostgreSQL tests fail with this message.
    """
    engine = sa.create_engine(_pg_url(), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    connection = engine.connect()
    if not connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _RUN_LOCK_KEY}).scalar():
        connection.close()
        name = sa.engine.make_url(_pg_url()).database
        pytest.fail(f"another test run is using the PostgreSQL database {name}; give this run one of its own "
                    "with CONVENE_TEST_DATABASE_URL", pytrace=False)
    _run_locks.append(connection)


def _build_schema(app) -> None:
    """Drop everything and run the real migrations, once per backend per run (per worker under xdist)."""
    from flask_migrate import upgrade

    with app.app_context():
        if _db.engine.dialect.name == "postgresql":
            if _worker():
                _create_worker_database()
            _claim_pg_database()
        _db.drop_all()
        with _db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        upgrade()


# Rows go with DELETE, children first (the order the foreign keys allow), and the sequences that handed out
# ids start again at 1, as TRUNCATE ... RESTART IDENTITY would; but DELETE on tables of a few rows takes
# milliseconds where TRUNCATE of every table takes a tenth of a second or more, and this runs before each test.
_RESET_PG_SEQUENCES = (
    "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false) "
    "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
)


def _empty_tables(app) -> None:
    with app.app_context():
        _db.session.remove()
        tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
        with _db.engine.begin() as conn:
            if _db.engine.dialect.name == "postgresql":
                conn.exec_driver_sql("; ".join([*(f"DELETE FROM {table}" for table in tables), _RESET_PG_SEQUENCES]))
            else:
                for table in tables:
                    conn.execute(sa.text(f"DELETE FROM {table}"))


class _TemplateBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the whole run (per xdist worker).

    Each test builds a fresh app, whose Jinja environment would parse and compile every template it
    renders again: about a tenth of a second per test. Jinja checks each entry against the template's
    source, so an edited template is compiled afresh.
    """

    def __init__(self):
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_BYTECODE = _TemplateBytecode()


def _reuse_url_builders() -> None:
    """Compile each URL rule's builder once per run instead of once per test.

    Werkzeug turns every rule of a new app into two URL-building functions generated as Python source,
    most of the time `create_app` takes, and each test builds a fresh app. A builder is a pure function of
    the rule's parsed parts and defaults (it reads the rule's converters through `self` at call time), so
    one compiled for an identical rule of an earlier app is bound to this one. Werkzeug is pinned; if its
    internals change, this does nothing and rules compile as before.
    """
    from werkzeug.routing.rules import Rule

    original = getattr(Rule, "_compile_builder", None)
    if original is None or getattr(original, "_convene_cached", False):
        return
    builders: dict[tuple, object] = {}

    def _compile_builder(self, append_unknown: bool = True):
        try:
            defaults = tuple(sorted((name, repr(value), self._converters[name].to_url(value) if name in self._converters
                                     else None) for name, value in (self.defaults or {}).items()))
            key = (append_unknown, self.rule, tuple(self._trace), defaults)
        except Exception:  # anything unexpected: compile it as Werkzeug would
            return original(self, append_unknown)
        if key not in builders:
            builders[key] = original(self, append_unknown)
        return builders[key]

    _compile_builder._convene_cached = True
    Rule._compile_builder = _compile_builder


_reuse_url_builders()


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
    }


@pytest.fixture
def app(app_config, backend):
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    app.jinja_env.bytecode_cache = _TEMPLATE_BYTECODE
    if backend not in _schema_ready:
        _build_schema(app)
        _schema_ready.add(backend)
    _empty_tables(app)
    with app.app_context():
        yield app
        _drain_job_threads()
        _db.session.remove()
        _db.engine.dispose()


def _drain_job_threads(timeout: float = 30.0) -> None:
    """Wait until the in-process job threads have run what this test handed them: a job still writing
    while the next test empties the tables would hold SQLite's lock ("database is locked")."""
    from convene.jobs import _embedded

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _embedded.idle():
        time.sleep(0.01)


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
