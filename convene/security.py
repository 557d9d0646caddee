"""Response headers every page gets: the content security policy, framing, sniffing, referrer, caching."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the after-request hook that sets the security headers."""
