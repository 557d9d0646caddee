"""Pages that are the same for everyone (the public program), cached per program revision.

A page is rendered once per (convening, program revision, page, language, site root) and kept in a
small LRU in each process and, when PAGE_CACHE_REDIS_URL (or REDIS_URL) is set, in Redis for every
process. The revision is read with the convening on each request and bumped in the same transaction
as any change the page shows (convene.models.program_revision), so an old copy is never served once
the change is committed. Seats left change with every sign-up, so the cached body holds a mark in
their place and each response fills the current numbers in (one query). Responses carry a strong
ETag and `Cache-Control: no-cache`: browsers revalidate every time and get a 304 when nothing changed.

A request that would make the page differ for one visitor (a flashed message waiting in their
session, a query other than `?lang=`) is rendered for them alone and neither read from nor stored
in the cache.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass

from flask import Flask, Response, current_app, request, session

log = logging.getLogger(__name__)

REDIS_PREFIX = "convene:page:"
REDIS_TTL_SECONDS = 86400  # an entry of an old revision is never read again; this only frees the memory
EXTENSION = "convene_page_cache"
# The only query argument the pages may carry and still be the page everyone gets.
SHARED_ARGUMENTS = frozenset({"lang"})


@dataclass(frozen=True)
class Entry:
    body: str
    digest: str
    marker: str  # what stands for seats left in `body`; "" when the page shows none


class SeatMarks:
    """Given to templates as `seats_left(session)`: a mark the response replaces with the current number."""

    def __init__(self) -> None:
        # Random per rendering, so no text an organizer typed into the program can pass for a mark.
        self.marker = "seats" + secrets.token_hex(8)
        self.used = False

    def __call__(self, program_session) -> str:
        self.used = True
        return f"{self.marker}-{program_session.id}-{program_session.seat_limit}"


def fill_seats(entry: Entry, taken: dict[int, int]) -> str:
    """The cached body with each mark replaced by the seats left now (never below zero)."""
    if not entry.marker:
        return entry.body
    return re.sub(re.escape(entry.marker) + r"-(\d+)-(\d+)",
                  lambda m: str(max(int(m[2]) - taken.get(int(m[1]), 0), 0)), entry.body)


class PageCache:
    """A bounded LRU in this process, in front of Redis when configured; Redis errors only cost speed."""

    def __init__(self, size: int, redis_url: str = "") -> None:
        self.size = max(size, 0)
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry
        if self._redis is None:
            return None
        try:
            raw = self._redis.get(REDIS_PREFIX + key)
        except Exception as error:  # redis and socket errors alike: render instead
            log.warning("page cache: Redis read failed: %s", error)
            return None
        if raw is None:
            return None
        entry = Entry(**json.loads(raw))
        self._remember(key, entry)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        self._remember(key, entry)
        if self._redis is not None:
            try:
                self._redis.set(REDIS_PREFIX + key, json.dumps(asdict(entry)), ex=REDIS_TTL_SECONDS)
            except Exception as error:
                log.warning("page cache: Redis write failed: %s", error)

    def _remember(self, key: str, entry: Entry) -> None:
        if not self.size:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = PageCache(app.config.get("PAGE_CACHE_SIZE", 128),
                                          app.config.get("PAGE_CACHE_REDIS_URL", ""))


def shared_request() -> bool:
    """Whether this request gets the page everyone gets (so it may come from, and go to, the cache)."""
    if not set(request.args) <= SHARED_ARGUMENTS:
        return False  # the language links keep the page's other arguments
    return not session.get("_flashes")  # a message shown once, to this visitor only


def cache_key(convening, page: str, language: str, root: str) -> str:
    # created_at too: SQLite may give a new convening the id of a deleted one, with revision 0 again.
    created = convening.created_at.timestamp() if convening.created_at else 0
    parts = (convening.id, f"{created:.6f}", convening.program_revision, page, language, root)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def cached_page(convening, page: str, language: str, render: Callable[[SeatMarks], str], *,
                seats_taken: Callable[[], dict[int, int]], content_type: str = "text/html; charset=utf-8",
                root: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """The page from the cache, or rendered by `render(seat_marks)` and kept; with ETag and 304s.

    `render` may abort (a 404): nothing is kept then. `root` is what absolute URLs in the page start
    with (the request's script root by default, which is all relative links depend on).
    """
    cache: PageCache = current_app.extensions[EXTENSION]
    shared = shared_request()
    key = cache_key(convening, page, language, request.script_root if root is None else root)
    entry = cache.get(key) if shared else None
    if entry is None:
        marks = SeatMarks()
        body = render(marks)
        entry = Entry(body=body, digest=hashlib.sha256(body.encode()).hexdigest()[:32],
                      marker=marks.marker if marks.used else "")
        if shared:
            cache.put(key, entry)
    taken = seats_taken() if entry.marker else {}
    response = current_app.response_class(fill_seats(entry, taken), content_type=content_type, headers=headers)
    response.headers["Content-Language"] = language
    response.vary.update(("Accept-Language", "Cookie"))  # the language comes from either
    response.cache_control.no_cache = True  # revalidate every time: a change shows at once
    if not shared:
        response.cache_control.private = True
        return response
    if "lang" in request.args:
        response.cache_control.private = True  # it also sets this visitor's language cookie
    seats = ",".join(f"{sid}:{count}" for sid, count in sorted(taken.items()))
    response.set_etag(hashlib.sha256(f"{entry.digest}|{seats}".encode()).hexdigest()[:32])
    return response.make_conditional(request)
