"""Helpers for the job queue's tests: a Redis database of their own, real `flask convene worker` processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The queue tests' own Redis database (the throttling tests use 3); a run beside another may pick its own.
REDIS_URL = os.environ.get("CONVENE_TEST_REDIS_URL") or "redis://127.0.0.1:6379/5"
CONFIG_ENV = "CONVENE_JOBS_TEST_CONFIG"
# What a worker process needs of the test's settings to work on the same database, files and mail server.
SHARED_SETTINGS = (
    "ENV_NAME", "SQLALCHEMY_DATABASE_URI", "MAIL_OUTBOX_DIR", "PRINTS_DIR",
    "MAIL_SERVER", "MAIL_PORT", "MAIL_USE_TLS", "MAIL_USE_SSL", "MAIL_USERNAME", "MAIL_LEASE_SECONDS",
    "MAIL_INLINE_LIMIT", "JOBS_REDIS_URL", "JOBS_QUEUE", "JOB_MAX_ATTEMPTS", "JOB_HEARTBEAT_SECONDS",
    "JOB_STALE_SECONDS", "PRINT_WORKERS", "PRINT_CHUNK_SHEETS", "PRINT_INLINE_MAX", "SCHEDULER_INTERVAL_SECONDS",
    "FILE_STORAGE", "FILE_CHUNK_BYTES", "FILE_RETENTION_DAYS",
)


CALLS: dict[str, list] = {}  # what the test tasks below were called with, in this process


def calls(name: str) -> list:
    return CALLS.setdefault(name, [])


def counting_task(run) -> dict:
    """A job kind for tests: counts its runs and reports progress."""
    calls("counting").append(run.id)
    run.progress(1, 1)
    return {"message": "counted"}


def failing_task(run) -> dict:
    """A job kind for tests: fails every attempt."""
    calls("failing").append(run.attempt)
    raise RuntimeError(f"the printer is on fire (attempt {run.attempt})")


def worker_app():
    """The app a worker process runs (FLASK_APP=tests.jobs_helpers:worker_app()): the test's settings, from JSON."""
    from convene import create_app

    return create_app(json.loads(os.environ[CONFIG_ENV]))


def redis_answers(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def require_redis() -> str:
    """The queue tests' Redis URL; skip without Redis, except on CI, where they must run."""
    if not redis_answers():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the job queue tests against Redis, and {REDIS_URL} does not answer")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    return REDIS_URL


def forget_queue(name: str) -> None:
    """Delete what one test's queue left in Redis (its queue, registries and jobs), nobody else's."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL)
    for key in connection.scan_iter("rq:*"):
        text = key.decode()
        if name in text or (connection.type(key) == b"hash" and connection.hget(key, "origin") == name.encode()):
            connection.delete(key)


class Workers:
    """Real `flask convene worker` processes on the test's settings; all are killed at the end of the test."""

    def __init__(self, app):
        self.app = app
        self.processes: list[subprocess.Popen] = []

    def config(self) -> dict:
        return {key: self.app.config[key] for key in SHARED_SETTINGS if key in self.app.config}

    def command(self, *args: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FLASK_APP": "tests.jobs_helpers:worker_app()",
               CONFIG_ENV: json.dumps(self.config()), "LOG_LEVEL": "WARNING"}
        process = subprocess.Popen([sys.executable, "-m", "flask", "convene", *args], cwd=ROOT, env=env)
        self.processes.append(process)
        return process

    def start(self) -> subprocess.Popen:
        return self.command("worker")

    def kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(30)


@pytest.fixture
def redis_queue(app):
    """The app's jobs go to RQ on the test Redis database, in a queue of this test's own."""
    url = require_redis()
    name = f"convene-test-{uuid.uuid4().hex[:10]}"
    app.config.update(JOBS_REDIS_URL=url, JOBS_QUEUE=name, JOB_HEARTBEAT_SECONDS=1, JOB_STALE_SECONDS=600)
    yield name
    forget_queue(name)


@pytest.fixture
def workers(app):
    pool = Workers(app)
    yield pool
    pool.stop_all()


def wait_until(predicate, timeout: float = 60, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
