"""Forged hosts, oversized bodies and a database in trouble: refused cleanly, never a 500 or a hang."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from convene import create_app
from tests.factories import make_convening, make_registration, make_ticket

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


# --- Finding 2: emailed links follow a forged Host header ------------------------------------------------

def test_a_forged_host_header_is_refused_and_nothing_is_emailed(client, outbox):
    convening = make_convening()
    registration = make_registration(convening, make_ticket(convening))
    response = client.post(f"/c/{convening.slug}/manage-link", data={"email": registration.email},
                           headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert outbox.messages() == []


def test_the_trusted_hosts_are_the_base_urls_host_and_the_loopback_names():
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "BASE_URL": "https://convene.example.org"})
    assert app.config["TRUSTED_HOSTS"] == ["convene.example.org", "127.0.0.1", "localhost"]
    client = app.test_client()
    assert client.get("/healthz", base_url="https://convene.example.org").status_code == 200
    assert client.get("/healthz", base_url="http://127.0.0.1:5000").status_code == 200
    assert client.get("/healthz", headers={"Host": "convene.example.org.evil.example"}).status_code == 400


def _start_production(env: dict) -> subprocess.CompletedProcess:
    script = "from convene import create_app; create_app('production')"
    clean_env = {"PATH": "/usr/bin:/bin", "CONVENE_ENV": "production", "SECRET_KEY": "x" * 40,
                 "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", **env}
    return subprocess.run([sys.executable, "-c", script], env=clean_env, capture_output=True, text=True,
                          cwd=str(ROOT), timeout=60)


@pytest.mark.parametrize("base_url", [None, "", "convene.example.org", "ftp://convene.example.org"])
def test_production_refuses_to_start_without_a_base_url(base_url):
    result = _start_production({} if base_url is None else {"CONVENE_BASE_URL": base_url})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("Convene refuses to start: set CONVENE_BASE_URL")


def test_production_starts_with_a_base_url_and_trusts_its_host():
    script = ("from convene import create_app; app = create_app('production'); "
              "print(app.config['TRUSTED_HOSTS'])")
    env = {"PATH": "/usr/bin:/bin", "CONVENE_ENV": "production", "SECRET_KEY": "x" * 40,
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "CONVENE_BASE_URL": "https://events.example.org"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            cwd=str(ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "['events.example.org', '127.0.0.1', 'localhost']" in result.stdout


# --- Finding 5: request bodies ---------------------------------------------------------------------------

def test_a_50_mb_anonymous_post_gets_413_before_it_is_read(client):
    convening = make_convening()
    make_ticket(convening)
    response = client.post(f"/c/{convening.slug}/register", data=b"x" * (50 * MB),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert "larger than this address accepts" in response.get_data(as_text=True)


def test_a_100_mb_webhook_body_gets_413_json(client, fake_stripe):
    response = client.post("/stripe/webhook", data=b"{" + b" " * (100 * MB) + b"}",
                           content_type="application/json", headers={"Stripe-Signature": "t=1,v1=x"})
    assert response.status_code == 413
    assert response.get_json()["error"] == "Too large"


def test_the_limit_is_checked_from_the_declared_length_without_reading_the_body(app):
    """A client that announces 50 MB and sends nothing is answered at once, not waited for."""
    convening = make_convening()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": f"/c/{convening.slug}/register", "SERVER_NAME": "localhost",
               "SERVER_PORT": "80", "HTTP_HOST": "localhost", "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(50 * MB)}

    class NeverSends:
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    from werkzeug.test import EnvironBuilder

    built = EnvironBuilder(path=environ["PATH_INFO"], method="POST", base_url="http://localhost").get_environ()
    built.update({k: v for k, v in environ.items() if k.isupper()})
    built["wsgi.input"] = NeverSends()
    status = []
    app.wsgi_app(built, lambda s, h, *a: status.append(s))
    assert status[0].startswith("413")


def test_the_csv_import_may_send_more_than_other_forms(organizer_client):
    convening = make_convening()
    make_ticket(convening)
    big = b"given_name,family_name,email\n" + b"a,b,c@example.org\n" * (20 * MB // 18)
    response = organizer_client.post(f"/admin/c/{convening.id}/import",
                                     data={"file": (__import__("io").BytesIO(big), "people.csv")},
                                     content_type="multipart/form-data")
    assert response.status_code != 413
    assert response.status_code < 500


# --- Finding 6: database trouble ------------------------------------------------------------------------

def _unresponsive_server() -> tuple[socket.socket, int]:
    """A TCP port that accepts connections and never says a word, like a hung database."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []

    def accept():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


@pytest.mark.parametrize("where", ["refused", "hung"])
def test_a_database_that_refuses_or_hangs_gives_a_503_page_within_seconds(where, tmp_path):
    server = None
    if where == "hung":
        server, port = _unresponsive_server()
    else:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://x@127.0.0.1:{port}/x",
                      "DATABASE_CONNECT_TIMEOUT": 2, "MAIL_OUTBOX_DIR": str(tmp_path)})
    try:
        started = time.monotonic()
        response = app.test_client().get("/")
        elapsed = time.monotonic() - started
    finally:
        if server is not None:
            server.close()
    assert response.status_code == 503
    assert "cannot reach its database" in response.get_data(as_text=True)
    assert response.headers["Retry-After"]
    assert elapsed < 10


def test_postgresql_connections_carry_a_statement_and_lock_timeout():
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@127.0.0.1/x",
                      "DATABASE_STATEMENT_TIMEOUT": 7})
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["options"] == "-c statement_timeout=7000 -c lock_timeout=7000"
    assert options["connect_args"]["connect_timeout"] == 5
    assert options["pool_timeout"] == 10


def test_a_request_stuck_behind_a_held_lock_gives_503_not_a_hang(app, client, backend):
    """Another process holds the convening's lock; a registration gives up after the timeout with a 503."""
    from convene.extensions import db
    from tests.factories import person

    convening = make_convening()
    ticket = make_ticket(convening)
    app.config["DATABASE_STATEMENT_TIMEOUT"] = 1
    # A second engine stands for another process holding the write lock.
    other = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    timed = create_app({**{k: app.config[k] for k in ("ENV_NAME", "SQLALCHEMY_DATABASE_URI", "MAIL_OUTBOX_DIR",
                                                       "PRINTS_DIR")},
                        "DATABASE_STATEMENT_TIMEOUT": 1})
    data = {k: v for k, v in person(1).items() if not isinstance(v, list)} | {"ticket_type_id": ticket.id}
    with other.connect() as holder:
        if backend == "sqlite":
            holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            holder.execute(sa.text("BEGIN"))
            holder.execute(sa.text("SELECT id FROM convening WHERE id = :id FOR UPDATE"), {"id": convening.id})
        started = time.monotonic()
        with timed.app_context():
            response = timed.test_client().post(f"/c/{convening.slug}/register", data=data)
            db.session.remove()
            db.engine.dispose()
        elapsed = time.monotonic() - started
        holder.rollback()
    other.dispose()
    assert response.status_code == 503, response.get_data(as_text=True)[:500]
    assert elapsed < 8
    assert db.session.execute(sa.select(sa.func.count()).select_from(sa.table("registration"))).scalar() == 0
