"""Public pages and the registration flow over HTTP: gunicorn on PostgreSQL, measured from outside.

    python bench/http_load.py                          # the working tree
    python bench/http_load.py --baseline HEAD~20       # ... and that commit, side by side in one run
    python bench/http_load.py --seconds 20 --clients 16 --workers 4

For each code tree it makes its own PostgreSQL database (CONVENE_BENCH_PG, default
postgresql://postgres@127.0.0.1:5432, databases `convene_bench_http_<label>`), migrates it, loads the demo
convening and a "launch" convening with one free ticket of 100 seats, starts gunicorn with that tree's code
(`--workers` sync workers) and measures:
- GET of the convening page, the public program and one session page: `--clients` keep-alive clients for
  `--seconds` each; requests/s, p50/p99 in ms, CPU ms per request (gunicorn's processes' CPU over requests);
- the registration flow: 50 clients, 400 attempts (GET the form, POST it with its CSRF token) for 100 seats;
  registrations/s, POST p50/p99, 5xx count, and the number confirmed, which must not exceed 100.
A baseline tree is a detached `git worktree` of the commit under the system's temp folder, using this
checkout's virtualenv. The client runs in this process (threads), so on a small machine it takes CPU from
the server: compare the two columns of one run, not numbers across machines.
"""
from __future__ import annotations

import argparse
import html.parser
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PG = os.environ.get("CONVENE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
LAUNCH_SEATS = 100
ATTEMPTS = 400
REGISTER_CLIENTS = 50

SEED = """
import sys
from datetime import date, timedelta
sys.path.insert(0, {tree!r})
from convene import create_app
from convene.extensions import db
from convene.models import Convening, TicketType
app = create_app()
with app.app_context():
    start = date.today() + timedelta(days=120)
    c = Convening(slug="bench-launch", name="Launch", starts_on=start, ends_on=start + timedelta(days=2),
                  timezone="America/Toronto", currency="CAD", published=True, waitlist_enabled=False,
                  reference_prefix="LCH", contact_email="team@convene.example")
    db.session.add(c)
    db.session.flush()
    db.session.add(TicketType(convening_id=c.id, name="Delegate", price_cents=0, capacity={seats}))
    db.session.commit()
"""


@dataclass
class Timings:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


class _Inputs(html.parser.HTMLParser):
    """The form's inputs with their values, and the first ticket offered."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.ticket = ""
        self._select = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("hidden", "text", "email", "tel") and a["name"] not in self.values:
                self.values[a["name"]] = a.get("value") or ""
            if a["name"] == "ticket_type_id" and kind == "radio" and not self.ticket:
                self.ticket = a.get("value", "")
        elif tag == "select":
            self._select = a.get("name", "")
        elif tag == "option" and self._select == "ticket_type_id" and a.get("value") and not self.ticket:
            self.ticket = a["value"]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_tree(commit: str | None) -> Path:
    if not commit:
        return ROOT
    path = Path(tempfile.gettempdir()) / f"convene-bench-{commit.replace('/', '_').replace('~', '-')}"
    if path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), commit], check=True)
    return path


def prepare_database(tree: Path, label: str) -> tuple[str, dict]:
    name = f"convene_bench_http_{label}"
    admin = sa.create_engine(f"postgresql+psycopg://{PG.split('://', 1)[1]}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = f"{PG}/{name}"
    env = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "wsgi", "PYTHONPATH": str(tree),
           "SECRET_KEY": "bench-" + "x" * 40, "RATELIMIT_REGISTER": "1000000 per minute",
           "RATELIMIT_STORAGE_URI": "memory://", "MAIL_OUTBOX_DIR": str(Path(tempfile.gettempdir()) / f"convene-bench-mail-{label}"), "REDIS_URL": ""}
    env.pop("CONVENE_TEST_DATABASE_URL", None)
    flask = [PYTHON, "-m", "flask"]
    subprocess.run([*flask, "db", "upgrade"], cwd=tree, env=env, check=True, capture_output=True)
    subprocess.run([*flask, "convene", "demo"], cwd=tree, env=env, check=True, capture_output=True)
    subprocess.run([PYTHON, "-c", SEED.format(tree=str(tree), seats=LAUNCH_SEATS)], cwd=tree, env=env, check=True)
    return url, env


def start_server(tree: Path, env: dict, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "wsgi:app"], cwd=tree, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/", timeout=10)
            return server, base
        except requests.RequestException:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and workers."""
    total = 0.0
    try:
        parent = psutil.Process(server.pid)
        for proc in [parent, *parent.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
    except psutil.NoSuchProcess:
        pass
    return total


def hammer(url: str, clients: int, seconds: float) -> Timings:
    timings = Timings()
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            start = time.perf_counter()
            response = session.get(url)
            timings.add(time.perf_counter() - start, response.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings


def register_flow(base: str) -> tuple[Timings, float]:
    posts = Timings()
    counter = iter(range(ATTEMPTS))
    counter_lock = threading.Lock()
    form_url = base + "/c/bench-launch/register"

    def client() -> None:
        session = requests.Session()
        while True:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                return
            page = session.get(form_url)
            inputs = _Inputs()
            inputs.feed(page.text)
            data = dict(inputs.values)
            data.update(given_name=f"Amina{i}", family_name="Hassan", email=f"amina{i}@bench.example",
                        organization="City of Toronto", ticket_type_id=inputs.ticket)
            start = time.perf_counter()
            response = session.post(form_url, data=data, allow_redirects=False)
            posts.add(time.perf_counter() - start, response.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(REGISTER_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return posts, time.perf_counter() - started


def confirmed(url: str) -> int:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        n = conn.execute(sa.text(
            "SELECT count(*) FROM registration r JOIN convening c ON c.id = r.convening_id "
            "WHERE c.slug = 'bench-launch' AND r.status = 'confirmed'")).scalar_one()
    engine.dispose()
    return n


def session_path(url: str) -> str:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        session_id = conn.execute(sa.text(
            "SELECT s.id FROM program_session s JOIN convening c ON c.id = s.convening_id "
            "WHERE c.slug = 'toronto-cohort' ORDER BY s.starts_at, s.id LIMIT 1")).scalar_one()
    engine.dispose()
    return f"/c/toronto-cohort/program/{session_id}"


def measure(tree: Path, label: str, args) -> dict[str, dict]:
    url, env = prepare_database(tree, label)
    server, base = start_server(tree, env, args.workers)
    results: dict[str, dict] = {}
    try:
        pages = {"convening page": "/c/toronto-cohort", "program": "/c/toronto-cohort/program",
                 "session page": session_path(url)}
        for name, path in pages.items():
            requests.get(base + path)  # warm each worker's caches as a real server would be
            cpu = server_cpu(server)
            timings = hammer(base + path, args.clients, args.seconds)
            n = len(timings.latencies)
            results[name] = {"req/s": n / args.seconds, "p50 ms": timings.pct(50), "p99 ms": timings.pct(99),
                             "CPU ms/req": (server_cpu(server) - cpu) * 1000 / max(n, 1),
                             "non-200": sum(v for k, v in timings.statuses.items() if k != 200)}
        cpu = server_cpu(server)
        posts, elapsed = register_flow(base)
        seats = confirmed(url)
        results["registration"] = {
            "req/s": seats / elapsed, "p50 ms": posts.pct(50), "p99 ms": posts.pct(99),
            "CPU ms/req": (server_cpu(server) - cpu) * 1000 / max(len(posts.latencies), 1),
            "non-200": sum(v for k, v in posts.statuses.items() if k >= 500), "confirmed": seats}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit to measure beside the working tree")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    runs = {"current": measure(ROOT, "current", args)}
    if args.baseline:
        tree = prepare_tree(args.baseline)
        try:
            runs["baseline"] = measure(tree, "baseline", args)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    print(f"\ngunicorn {args.workers} sync workers, {args.clients} clients x {args.seconds:.0f} s per page; "
          f"registration: {REGISTER_CLIENTS} clients, {ATTEMPTS} attempts, {LAUNCH_SEATS} seats")
    for name in runs["current"]:
        print(f"\n{name}")
        for key in runs["current"][name]:
            row = f"  {key:<11}" + "".join(f"{label}: {r[name][key]:>9.1f}   " for label, r in runs.items())
            if "baseline" in runs and key in ("req/s", "p99 ms", "CPU ms/req") and runs["baseline"][name][key]:
                row += f"ratio: {runs['current'][name][key] / runs['baseline'][name][key]:.2f}x"
            print(row)
    over = [label for label, r in runs.items() if r["registration"]["confirmed"] > LAUNCH_SEATS]
    if over:
        raise SystemExit(f"OVERSOLD in {', '.join(over)}: more than {LAUNCH_SEATS} confirmed")
    print(f"\nconfirmed never exceeded {LAUNCH_SEATS}")


if __name__ == "__main__":
    main()
