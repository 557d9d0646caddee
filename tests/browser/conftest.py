"""A live server on a free port and Debian's Chromium driven by Playwright (no downloaded browsers)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def backend() -> str:
    """One real server is enough: the browser tests prove the pages, not the database."""
    return "sqlite"


@pytest.fixture
def app_config(app_config) -> dict:
    """The suite's settings with CSRF on, as a real browser meets it, and any host name accepted."""
    return {**app_config, "WTF_CSRF_ENABLED": True, "SERVER_NAME": None}


@pytest.fixture
def live_server(app):
    """Serve the test app on 127.0.0.1 in a thread; emailed links point at it. Yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # server_close() then waits for requests still being answered (a page's last poll, say), so none of them
    # writes to the database while the next test empties it.
    server.daemon_threads, server.block_on_close = False, True
    base_url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base_url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield base_url
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"browser tests need Chromium at {CHROMIUM} (`make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must prove the browser flows, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """Open pages in fresh browser contexts (own cookies, own viewport) that are closed after the test."""
    contexts = []

    def new_page(**context_options):
        context = browser.new_context(base_url=live_server, **context_options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()
