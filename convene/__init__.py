"""Convene: registration, site visits, programs and printing for professional convenings."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, jsonify

from config import INSTANCE_DIR, ProductionConfig, config_for, derived_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def create_app(config: str | dict | None = None) -> Flask:
    """Build the application; `config` is a settings class name or a dict of overrides on top of it."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
    )
    overrides = config if isinstance(config, dict) else {}
    settings = config_for(config if isinstance(config, str) else overrides.get("ENV_NAME"))
    app.config.from_object(settings)
    app.config.update(overrides)
    app.config.update(derived_settings(app.config))
    if settings is ProductionConfig:
        ProductionConfig.check(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")

    register_proxy_headers(app)
    register_url_converters(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_request_guards(app)
    register_jobs(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def register_proxy_headers(app: Flask) -> None:
    """Behind CONVENE_PROXY_COUNT reverse proxies, take the client's address and scheme from their headers."""
    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)


def register_url_converters(app: Flask) -> None:
    """`<int:...>` only matches ids a database column can hold, so /admin/c/99999999999999999999/ is a 404."""
    from werkzeug.routing import IntegerConverter

    class IdConverter(IntegerConverter):
        def __init__(self, map, *args, **kwargs):
            kwargs.setdefault("max", 2**31 - 1)
            super().__init__(map, *args, **kwargs)

    app.url_map.converters["int"] = IdConverter


def register_extensions(app: Flask) -> None:
    from convene import i18n, page_cache, security
    from convene.extensions import csrf, db, limiter, login_manager, migrate
    from convene.services import audit  # noqa: F401  (its session hooks log every change)
    from convene.services.db import configure_sqlite

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    page_cache.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine, app.config["DATABASE_STATEMENT_TIMEOUT"])

    @login_manager.user_loader
    def load_user(user_id: str):
        """The account a session or remember cookie names, only while its session version is current."""
        from convene.models import User

        id_text, _, version = user_id.partition(":")
        if not (id_text.isascii() and id_text.isdigit() and version.isascii() and version.isdigit()):
            return None  # also the bare ids sessions carried before versions: they sign in again
        user = db.session.get(User, int(id_text)) if int(id_text) <= 2**31 - 1 else None
        return user if user is not None and user.session_version == int(version) else None


def register_blueprints(app: Flask) -> None:
    from convene.admin import bp as admin_bp
    from convene.payments import bp as payments_bp
    from convene.public import bp as public_bp
    from convene.webhooks import bp as webhooks_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")

    @app.get("/healthz")
    def healthz():
        """Say whether the database answers."""
        from convene.extensions import db

        try:
            db.session.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any driver error means "not reachable"
            db.session.rollback()
            app.logger.warning("health check failed: %s", exc)
            return jsonify(status="error", database="unreachable"), 503
        return jsonify(status="ok", database="ok")


def register_errorhandlers(app: Flask) -> None:
    from convene.errors import register_errorhandlers as register

    register(app)


def register_request_guards(app: Flask) -> None:
    """Refuse input no database can store, before any view sees it (PostgreSQL rejects NUL in text)."""
    from flask import abort, request

    @app.before_request
    def allow_larger_bodies_where_needed():
        # MAX_CONTENT_LENGTH is the ceiling for everything else; Stripe's events are small.
        limits = {"admin.import_registrations": "IMPORT_MAX_CONTENT_LENGTH",
                  "payments.stripe_webhook": "WEBHOOK_MAX_CONTENT_LENGTH",
                  "webhooks.mail_bounces": "WEBHOOK_MAX_CONTENT_LENGTH"}
        if request.endpoint in limits:
            request.max_content_length = app.config[limits[request.endpoint]]

    @app.before_request
    def refuse_nul_characters():
        values = [request.path] + [v for _, vs in request.values.lists() for v in vs]
        if any("\x00" in value for value in values):
            abort(400, description="The request contained a NUL character, which cannot be stored. "
                                   "Please retype the text and try again.")


def register_jobs(app: Flask) -> None:
    """Without Redis, each web process sweeps on a timer too (`make run` needs no `flask convene scheduler`)."""
    from flask import request

    if app.config.get("JOBS_REDIS_URL"):
        import rq  # noqa: F401  (loaded now, not in the first request that queues a job: it takes a moment)

    @app.before_request
    def start_the_in_process_scheduler():
        if app.config.get("JOBS_EMBEDDED_SCHEDULER") and request.endpoint != "healthz" \
                and not app.config.get("JOBS_REDIS_URL"):
            from convene import jobs

            jobs.start_embedded_scheduler(app)


def register_template_helpers(app: Flask) -> None:
    from convene import languages, templating

    templating.init_app(app)
    languages.init_app(app)


def register_commands(app: Flask) -> None:
    from convene.cli import convene_cli

    app.cli.add_command(convene_cli)
