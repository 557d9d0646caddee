"""Configuration: every setting comes from the environment; classes only pick defaults."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CONVENE_INSTANCE_PATH", BASE_DIR / "instance"))

# A placeholder that development may use; production refuses it.
DEV_SECRET_KEY = "dev-not-secret-change-me"


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def database_url(default: str) -> str:
    """Return DATABASE_URL with the postgres:// spelling some hosts use made SQLAlchemy-ready."""
    url = os.environ.get("DATABASE_URL") or default
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url[len("postgres://"):]
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = database_url(f"sqlite:///{INSTANCE_DIR / 'convene.db'}")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # a long registration form must not expire mid-way
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    # Throttling (Flask-Limiter): shared in Redis when REDIS_URL is set, else per process in memory.
    REDIS_URL = os.environ.get("REDIS_URL", "")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "convene")
    RATELIMIT_HEADERS_ENABLED = True
    # A store that stops answering must not take the site down: limits fall back to memory meanwhile.
    RATELIMIT_SWALLOW_ERRORS = True
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # Sized for a registration desk behind one NAT (a hotel wifi with 300 delegates), not for one person.
    RATELIMIT_LOGIN = os.environ.get("RATELIMIT_LOGIN", "50 per 15 minutes")  # sign-in POSTs per client IP
    RATELIMIT_LOGIN_FAILURES = os.environ.get("RATELIMIT_LOGIN_FAILURES", "10 per 15 minutes")  # per IP and email,
    RATELIMIT_LOGIN_LOCKOUT_SECONDS = _int("RATELIMIT_LOGIN_LOCKOUT_SECONDS", 15 * 60)  # ... then locked this long
    RATELIMIT_REGISTER = os.environ.get("RATELIMIT_REGISTER", "30 per minute; 300 per hour")  # form POSTs per IP
    RATELIMIT_CODE_TRIES = os.environ.get("RATELIMIT_CODE_TRIES", "30 per 10 minutes; 100 per hour")  # invalid codes
    RATELIMIT_MANAGE_LINK = os.environ.get("RATELIMIT_MANAGE_LINK", "10 per minute; 60 per hour")  # form POSTs per IP
    MANAGE_LINK_EMAILS_PER_HOUR = _int("MANAGE_LINK_EMAILS_PER_HOUR", 3)  # to one address, counted in the database
    RATELIMIT_PASSWORD_RESET = os.environ.get("RATELIMIT_PASSWORD_RESET", "10 per minute; 60 per hour")  # posts per IP
    RATELIMIT_BOUNCE_WEBHOOK = os.environ.get("RATELIMIT_BOUNCE_WEBHOOK", "120 per minute")  # bounce webhook posts
    PASSWORD_RESET_EMAILS_PER_HOUR = _int("PASSWORD_RESET_EMAILS_PER_HOUR", 3)  # to one address, in the database
    # Behind N reverse proxies, the client's address is the Nth from the right of X-Forwarded-For
    # (and the scheme from X-Forwarded-Proto); 0 trusts no header, so nobody can forge an address.
    PROXY_COUNT = _int("CONVENE_PROXY_COUNT", 0)

    # Languages the back office (and staff-only emails and PDFs) is offered in: each needs its
    # convene/translations/<lang>/LC_MESSAGES/admin.po. English only until those exist.
    BACK_OFFICE_LANGUAGES = _list("CONVENE_BACK_OFFICE_LANGUAGES") or ["en"]

    # Public address used in emailed links (the request's host when unset; production requires it).
    BASE_URL = os.environ.get("CONVENE_BASE_URL", "")
    # Host names the app answers to; any other Host header gets 400. Empty: the base URL's host,
    # 127.0.0.1 and localhost (see `derived_settings`).
    TRUSTED_HOSTS = _list("CONVENE_TRUSTED_HOSTS")

    # Request bodies: larger ones get 413 before they are read. The CSV import alone may send more.
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 16 * 1024 * 1024)
    IMPORT_MAX_CONTENT_LENGTH = _int("IMPORT_MAX_CONTENT_LENGTH", 64 * 1024 * 1024)
    WEBHOOK_MAX_CONTENT_LENGTH = _int("WEBHOOK_MAX_CONTENT_LENGTH", 1024 * 1024)

    # A database that hangs or refuses must give a 503 page within seconds, not hold a worker.
    DATABASE_CONNECT_TIMEOUT = _int("DATABASE_CONNECT_TIMEOUT", 5)  # seconds
    DATABASE_STATEMENT_TIMEOUT = _int("DATABASE_STATEMENT_TIMEOUT", 15)  # seconds, also for row locks
    DATABASE_POOL_TIMEOUT = _int("DATABASE_POOL_TIMEOUT", 10)  # seconds waiting for a free connection

    # Mail: SMTP when MAIL_SERVER is set, otherwise .eml files under instance/outbox/.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = _int("MAIL_PORT", 587)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", True)
    MAIL_USE_SSL = _bool("MAIL_USE_SSL", False)
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "Convene <no-reply@convene.local>")
    MAIL_SMTPUTF8 = _bool("MAIL_SMTPUTF8", False)  # the server takes non-ASCII before the @
    MAIL_OUTBOX_DIR = os.environ.get("MAIL_OUTBOX_DIR", str(INSTANCE_DIR / "outbox"))
    # More emails than this from one action (an import, a publish) are sent in the background.
    MAIL_INLINE_LIMIT = _int("MAIL_INLINE_LIMIT", 25)
    # Registration emails (confirmed, waitlisted) are queued as data and rendered after the commit: by the
    # delivery job when on (the default when the queue runs on Redis), else like other email (inline when few).
    MAIL_RENDER_BY_JOB = _bool("MAIL_RENDER_BY_JOB") if os.environ.get("MAIL_RENDER_BY_JOB") else None
    # A sender holds the emails it claimed this long; a sender that died loses them to the next one then.
    MAIL_LEASE_SECONDS = _int("MAIL_LEASE_SECONDS", 300)
    # The mail provider's bounce and complaint events (README, "Bounces"): HMAC-SHA256 of the body with this.
    MAIL_BOUNCE_WEBHOOK_SECRET = os.environ.get("MAIL_BOUNCE_WEBHOOK_SECRET", "")
    MAILGUN_WEBHOOK_SIGNING_KEY = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY", "")  # Mailgun's bounces

    # Attendee self-service.
    MANAGE_LINK_MAX_AGE_DAYS = _int("MANAGE_LINK_MAX_AGE_DAYS", 120)
    WAITLIST_HOLD_HOURS = _int("WAITLIST_HOLD_HOURS", 48)

    # Teams and accounts: how long an emailed invitation and a password reset link work.
    INVITATION_MAX_AGE_DAYS = _int("INVITATION_MAX_AGE_DAYS", 14)
    PASSWORD_RESET_MAX_AGE_MINUTES = _int("PASSWORD_RESET_MAX_AGE_MINUTES", 120)

    # Payments: card payments need both Stripe settings; STRIPE_API_BASE points at a stand-in (stripe-mock).
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # empty: https://api.stripe.com
    STRIPE_MAX_NETWORK_RETRIES = _int("STRIPE_MAX_NETWORK_RETRIES", 2)
    # How long a seat is held while its buyer is at Stripe Checkout (Stripe allows 30 minutes to 24 hours).
    CHECKOUT_HOLD_MINUTES = _int("CHECKOUT_HOLD_MINUTES", 35)

    ADMIN_PAGE_SIZE = _int("ADMIN_PAGE_SIZE", 50)
    # Werkzeug's slow-by-design default; only the test suite, which signs in hundreds of times, lowers it.
    PASSWORD_HASH_METHOD = "scrypt"

    # Printing: where PDFs go, how big a batch renders inside the request, the process pool.
    PRINTS_DIR = os.environ.get("PRINTS_DIR", "")  # empty: instance/prints
    # Where files the jobs make are kept: "folder" (PRINTS_DIR, one machine) or "database" (shared by every
    # machine; downloads read it in FILE_CHUNK_BYTES pieces). Files older than FILE_RETENTION_DAYS are deleted.
    FILE_STORAGE = os.environ.get("FILE_STORAGE", "folder")
    FILE_CHUNK_BYTES = _int("FILE_CHUNK_BYTES", 1024 * 1024)
    FILE_RETENTION_DAYS = _int("FILE_RETENTION_DAYS", 30)
    PRINT_INLINE_MAX = _int("PRINT_INLINE_MAX", 50)
    PRINT_WORKERS = _int("PRINT_WORKERS", 0) or None  # None: one per core
    PRINT_CHUNK_SHEETS = _int("PRINT_CHUNK_SHEETS", 10)
    # Smaller batches render as one document without the pool (it wins only above these; bench/badges.py,
    # bench/agendas.py).
    PRINT_POOL_MIN_BADGES = _int("PRINT_POOL_MIN_BADGES", 300)
    PRINT_POOL_MIN_AGENDAS = _int("PRINT_POOL_MIN_AGENDAS", 60)
    # A batch with no sign of life from its process for this long is failed (its process died).
    PRINT_HEARTBEAT_TIMEOUT = _int("PRINT_HEARTBEAT_TIMEOUT", 600)

    # Background jobs (convene/jobs.py): on RQ when a Redis URL is set (run `flask convene worker`),
    # otherwise in a few threads of each web process.
    JOBS_REDIS_URL = os.environ.get("JOBS_REDIS_URL") or REDIS_URL
    JOBS_QUEUE = os.environ.get("JOBS_QUEUE", "convene")
    JOBS_THREADS = _int("JOBS_THREADS", 2)  # the in-process worker's threads, per web process
    JOB_MAX_ATTEMPTS = _int("JOB_MAX_ATTEMPTS", 3)  # a job that failed or whose worker died is run this often
    JOB_HEARTBEAT_SECONDS = _int("JOB_HEARTBEAT_SECONDS", 10)  # a running job says it is alive this often...
    JOB_STALE_SECONDS = _int("JOB_STALE_SECONDS", 120)  # ... and is run again after this long without a word
    JOB_TIMEOUT_SECONDS = _int("JOB_TIMEOUT_SECONDS", 3 * 3600)  # RQ stops a job running longer
    SCHEDULER_INTERVAL_SECONDS = _int("SCHEDULER_INTERVAL_SECONDS", 60)  # `flask convene scheduler` sweeps
    # Without Redis, each web process also sweeps every SCHEDULER_INTERVAL_SECONDS (mail, offers, dead jobs).
    JOBS_EMBEDDED_SCHEDULER = _bool("JOBS_EMBEDDED_SCHEDULER", True)
    # Publishing site visits to more people than this: the worker writes the emails, the page answers at once.
    PUBLISH_INLINE_MAX = _int("PUBLISH_INLINE_MAX", 25)
    # A registrations export of more rows than this is made by the worker.
    EXPORT_INLINE_MAX = _int("EXPORT_INLINE_MAX", 2000)
    IMPORT_INLINE_MAX = _int("IMPORT_INLINE_MAX", 500)  # rows; bigger files are imported by the worker
    # The site-visit assigner runs on the worker for convenings with more visitors than this.
    ASSIGN_INLINE_MAX = _int("ASSIGN_INLINE_MAX", 300)

    # The public program pages, cached per program revision (convene/page_cache.py): this many pages in
    # each process, and shared between processes in Redis when a URL is set.
    PAGE_CACHE_SIZE = _int("PAGE_CACHE_SIZE", 128)
    PAGE_CACHE_REDIS_URL = os.environ.get("PAGE_CACHE_REDIS_URL") or REDIS_URL


class DevelopmentConfig(Config):
    """Local use: SQLite under instance/, outbox files, debug pages."""

    ENV_NAME = "development"
    DEBUG = True


class TestingConfig(Config):
    """The test suite: a database named by CONVENE_TEST_DATABASE_URL or a temporary SQLite file."""

    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key"
    WTF_CSRF_ENABLED = False
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    MAIL_SERVER = ""
    MAIL_INLINE_LIMIT = 10_000  # tests read the outbox right after the action
    MAIL_RENDER_BY_JOB = False  # ... registration emails too (rendered and sent after the commit, in the request)
    JOBS_REDIS_URL = ""  # the in-process worker, unless a test sets its own Redis database
    JOBS_EMBEDDED_SCHEDULER = False  # no sweeps on a timer: tests queue the jobs they count
    PAGE_CACHE_REDIS_URL = ""  # each app its own cache, unless a test sets its own Redis database
    PUBLISH_INLINE_MAX = 10_000  # tests read the outbox right after publishing (the job's tests lower it)
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # test accounts only; a sign-in costs 1 ms, not 100
    # The suite signs in and registers hundreds of times from 127.0.0.1 (in Redis shared across tests
    # when REDIS_URL is set); tests of the throttles set the limits they prove.
    RATELIMIT_LOGIN = RATELIMIT_LOGIN_FAILURES = RATELIMIT_REGISTER = "100000 per minute"
    RATELIMIT_CODE_TRIES = RATELIMIT_MANAGE_LINK = RATELIMIT_PASSWORD_RESET = "100000 per minute"
    RATELIMIT_BOUNCE_WEBHOOK = "100000 per minute"
    SERVER_NAME = "localhost"


class ProductionConfig(Config):
    """Behind gunicorn with PostgreSQL; refuses to start without real secrets."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    PREFERRED_URL_SCHEME = "https"

    @staticmethod
    def check(settings: dict) -> None:
        """Raise SystemExit with a one-line reason when production is misconfigured."""
        key = settings.get("SECRET_KEY") or ""
        if "SECRET_KEY" not in os.environ or key == DEV_SECRET_KEY or len(key) < 32:
            raise SystemExit(
                "Convene refuses to start: set SECRET_KEY to a random string of at least 32 characters."
            )
        if not os.environ.get("DATABASE_URL"):
            raise SystemExit("Convene refuses to start: set DATABASE_URL (e.g. postgresql://user@host/convene).")
        base_url = settings.get("BASE_URL") or ""
        if not urlsplit(base_url).hostname or urlsplit(base_url).scheme not in ("http", "https"):
            raise SystemExit("Convene refuses to start: set CONVENE_BASE_URL to the public address emailed links "
                             "use (e.g. https://convene.example.org).")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def derived_settings(settings: dict) -> dict:
    """Settings that follow from others once overrides are applied: trusted hosts, PostgreSQL timeouts.

    SQLite waits for its file lock for busy_timeout (services/db.py) and then fails, which is a 503 too.
    """
    derived: dict = {}
    if not settings.get("TRUSTED_HOSTS"):
        base_host = urlsplit(settings.get("BASE_URL") or "").hostname
        derived["TRUSTED_HOSTS"] = [h for h in (base_host, "127.0.0.1", "localhost") if h]
    uri = settings.get("SQLALCHEMY_DATABASE_URI") or ""
    options = dict(settings.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    if uri.startswith("postgresql"):
        connect_args.setdefault("connect_timeout", settings["DATABASE_CONNECT_TIMEOUT"])
        statement_ms = settings["DATABASE_STATEMENT_TIMEOUT"] * 1000
        connect_args.setdefault("options", f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}")
        options.setdefault("pool_timeout", settings["DATABASE_POOL_TIMEOUT"])
        options["connect_args"] = connect_args
    derived["SQLALCHEMY_ENGINE_OPTIONS"] = options
    return derived


def config_for(name: str | None = None) -> type[Config]:
    """Pick the settings class named by CONVENE_ENV (development by default)."""
    name = (name or os.environ.get("CONVENE_ENV") or "development").lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise SystemExit(f"Convene refuses to start: CONVENE_ENV must be one of {', '.join(CONFIGS)}, not {name!r}.")
