"""Files the background jobs make (badge, agenda, program and roster PDFs, CSV exports): one interface.

- `FILE_STORAGE=folder` (the default): files live in PRINTS_DIR (instance/prints/), fine for one machine.
- `FILE_STORAGE=database`: files live in the database (PostgreSQL `bytea`), cut into chunks of
  FILE_CHUNK_BYTES, so a file a worker made on one machine downloads from a web process on another;
  a download reads one chunk at a time, never the whole file into memory.

A job renders into a local scratch file (`scratch_path`), then `store` keeps it under its name;
views send it with `download`. Files older than FILE_RETENTION_DAYS go in the scheduler's hourly
sweep (`expire_files`). Names are plain file names (no folders), as print jobs and exports record them.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Response, current_app, send_file

from convene.extensions import db
from convene.models import StoredFile, StoredFileChunk, utcnow

BACKENDS = ("folder", "database")
CHUNK_BYTES = 1024 * 1024


def valid_name(name: str) -> bool:
    """A plain file name: no folder, nothing hidden (the names come from our own rows, but never trust a path)."""
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".") and "\0" not in name


def _check(name: str) -> str:
    if not valid_name(name):
        raise ValueError(f"not a stored file's name: {name!r}")
    return name


def backend() -> str:
    kind = (current_app.config.get("FILE_STORAGE") or "folder").lower()
    if kind not in BACKENDS:
        raise RuntimeError(f"FILE_STORAGE must be one of {', '.join(BACKENDS)}, not {kind!r}")
    return kind


def in_database() -> bool:
    return backend() == "database"


def folder() -> Path:
    """PRINTS_DIR (instance/prints/ unless set): the files themselves by default, a scratch space otherwise."""
    path = Path(current_app.config.get("PRINTS_DIR") or Path(current_app.instance_path) / "prints")
    path.mkdir(parents=True, exist_ok=True)
    return path


def scratch_path(name: str) -> Path:
    """Where a job writes a file before `store` keeps it (its final place, when files live in the folder)."""
    return folder() / _check(name)


def store(name: str, path: Path | str | None = None, *, data: bytes | None = None,
          content_type: str = "application/pdf") -> int:
    """Keep a file under `name`: the finished scratch file at `path`, or `data`; returns its size in bytes.

    A file stored again under the same name replaces the old one (a retried job rewrites its file).
    """
    _check(name)
    target = folder() / name
    if not in_database():
        if data is not None:
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            partial.replace(target)
        elif Path(path) != target:
            Path(path).replace(target)
        target.chmod(0o600)  # badges, rosters, exports and uploads name people: for the app's own user only
        return target.stat().st_size
    from convene.services.db import unit_of_work

    chunk = int(current_app.config.get("FILE_CHUNK_BYTES") or CHUNK_BYTES)
    size = 0
    with unit_of_work():
        db.session.execute(sa.delete(StoredFile).where(StoredFile.name == name))
        file_id = db.session.execute(
            sa.insert(StoredFile).values(name=name, content_type=content_type, size=0, created_at=utcnow())
            .returning(StoredFile.id)
        ).scalar_one()
        for seq, piece in enumerate(_pieces(path, data, chunk)):
            db.session.execute(sa.insert(StoredFileChunk).values(file_id=file_id, seq=seq, data=piece))
            size += len(piece)
        db.session.execute(sa.update(StoredFile).where(StoredFile.id == file_id).values(size=size))
    if path is not None:
        Path(path).unlink(missing_ok=True)  # the scratch copy: the database holds the file now
    return size


def _pieces(path, data: bytes | None, chunk: int) -> Iterator[bytes]:
    if data is not None:
        for start in range(0, len(data), chunk):
            yield data[start:start + chunk]
        if not data:
            yield b""
        return
    with open(path, "rb") as handle:
        first = True
        while piece := handle.read(chunk):
            first = False
            yield piece
        if first:
            yield b""


def exists(name: str) -> bool:
    if not valid_name(name):
        return False
    if not in_database():
        return (folder() / name).is_file()
    found = db.session.execute(sa.select(StoredFile.id).where(StoredFile.name == name)).scalar() is not None
    return found


def local_path(name: str) -> Path | None:
    """The file on this machine's disk, when files live in the folder and it is there."""
    if in_database() or not valid_name(name):
        return None
    path = folder() / name
    return path if path.is_file() else None


def read(name: str) -> bytes | None:
    """The whole file (small files and tests; downloads stream with `download`)."""
    pieces = stream(name)
    return None if pieces is None else b"".join(pieces)


def stream(name: str) -> Iterator[bytes] | None:
    """The file's bytes, chunk by chunk, or None when there is no such file."""
    if not valid_name(name):
        return None
    if not in_database():
        path = local_path(name)
        return None if path is None else _read_file(path)
    row = db.session.execute(sa.select(StoredFile.id, StoredFile.size).where(StoredFile.name == name)).first()
    if row is None:
        return None
    return _read_chunks(db.engine, row.id)


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while piece := handle.read(CHUNK_BYTES):
            yield piece


def _read_chunks(engine, file_id: int) -> Iterator[bytes]:
    """One short query per chunk, on a connection of its own: the response outlives the request's session."""
    seq = 0
    while True:
        with engine.connect() as connection:
            piece = connection.execute(
                sa.select(StoredFileChunk.data).where(StoredFileChunk.file_id == file_id, StoredFileChunk.seq == seq)
            ).scalar()
        if piece is None:
            return
        yield bytes(piece)
        seq += 1


def download(name: str, download_name: str, mimetype: str = "application/pdf") -> Response | None:
    """A response sending the file as an attachment (None when it is gone: expired or never made)."""
    if not in_database():
        path = local_path(name)
        if path is None:
            return None
        return send_file(path, mimetype=mimetype, as_attachment=True, download_name=download_name, max_age=0)
    row = db.session.execute(sa.select(StoredFile.id, StoredFile.size).where(StoredFile.name == name)).first() \
        if valid_name(name) else None
    if row is None:
        return None
    response = Response(_read_chunks(db.engine, row.id), mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Length"] = str(row.size)
    response.headers["Cache-Control"] = "no-cache"
    response.headers.set("Content-Disposition", "attachment", filename=download_name)
    return response


def delete(name: str) -> None:
    """Remove a file (and any half-written scratch copy) wherever it is."""
    if not valid_name(name):
        return
    for path in (folder() / name, folder() / f"{name}.part"):
        path.unlink(missing_ok=True)
    if in_database():
        from convene.services.db import unit_of_work

        with unit_of_work():
            db.session.execute(sa.delete(StoredFile).where(StoredFile.name == name))


def retention() -> timedelta:
    return timedelta(days=float(current_app.config.get("FILE_RETENTION_DAYS", 30)))


def expire_files(older_than: timedelta | None = None) -> int:
    """Delete the files made longer ago than `older_than` (FILE_RETENTION_DAYS); returns how many went.

    Scratch files left by a job that died go too (from the folder, whichever storage is used).
    """
    older_than = retention() if older_than is None else older_than
    removed = 0
    cutoff = time.time() - older_than.total_seconds()
    for path in folder().iterdir():
        try:
            if path.is_file() and valid_name(path.name) and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 0 if in_database() or path.name.endswith(".part") else 1
        except OSError:  # deleted meanwhile by another sweep
            continue
    if in_database():
        from convene.services.db import unit_of_work

        with unit_of_work():
            removed += db.session.execute(
                sa.delete(StoredFile).where(StoredFile.created_at < utcnow() - older_than)).rowcount
    return removed


def expire_files_task(run) -> dict:
    """The scheduler's hourly sweep of old files."""
    removed = expire_files()
    return {"done": removed, "total": removed, "message": f"{removed} old file(s) deleted."}


def describe(name: str) -> str:
    """Where a file is, for `flask convene job`."""
    if in_database():
        size = db.session.execute(sa.select(StoredFile.size).where(StoredFile.name == name)).scalar()
        return f"{name} (in the database, {size} bytes)" if size is not None else f"{name} (not stored, or expired)"
    path = folder() / name
    return f"{path}" + ("" if path.is_file() else " (not here)")


__all__ = ["backend", "delete", "describe", "download", "exists", "expire_files", "folder", "in_database",
           "local_path", "read", "scratch_path", "store", "stream", "valid_name"]
