"""WeasyPrint's URL fetcher for Convene: the project's own static files and nothing else.

Attendee text is escaped by the templates, but a document could still name a resource (a logo in a
template, a url() in a stylesheet, an <img> a future template lets through). WeasyPrint's default
fetcher would read any local file and any remote URL; this one refuses everything outside
static/ — no file:// paths elsewhere, no http(s), no other schemes — the way Indico does.
"""
from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

log = logging.getLogger(__name__)

STATIC_ROOT = Path(__file__).resolve().parent.parent.parent / "static"


class RefusedURL(ValueError):
    """A document asked for something outside the static folder."""


class StaticOnlyFetcher(URLFetcher):
    """Serves file:// URLs under `root` (the static folder); refuses every other URL."""

    def __init__(self, root: Path | str = STATIC_ROOT, **kwargs):
        super().__init__(allowed_protocols={"file"}, allow_redirects=False, **kwargs)
        self.root = Path(root).resolve()

    @property
    def base_url(self) -> str:
        """A base URL for documents, so relative references resolve inside static/."""
        return self.root.as_uri() + "/"

    def resolve(self, url: str) -> Path:
        """The static file `url` names; raises RefusedURL for anything else."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise RefusedURL(f"refused to fetch {url[:200]!r}: only the project's static files may be used")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise RefusedURL(f"refused to fetch {url[:200]!r}: not a file in the static folder")
        return path

    def fetch(self, url, headers=None):
        try:
            path = self.resolve(url)
        except RefusedURL as error:
            log.warning("%s", error)
            raise
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})
