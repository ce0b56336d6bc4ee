"""What the database sources share: blank legacy values, secret temp files, stream copying, names as data, the failed stream.

Private helper module (not a plugin, so not in the registry): mysql, postgres, mongo and sqlite use it.
"""

from __future__ import annotations

import os
import queue
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from ncbackup.engine.logs import add_secret
from ncbackup.errors import BackupError, CommandFailed
from ncbackup.process import which
from ncbackup.sources.base import RestoreRequest, StreamReport

COPY_CHUNK_BYTES = 1 << 20
PREFETCH_CHUNKS = 4



def shown_name(name: str) -> str:
    """The name for a log, note or check line: as is, or quoted with escapes when it holds a newline or other control."""
    # A name holding "\n[ok] ..." must not forge a line of its own in the output.
    return name if name.isprintable() else repr(name)


@dataclass
class FailedStream:
    """Stands for a server or instance that could not even be listed: writing it fails with the reason."""

    name: str
    kind: str
    suffix: str
    error: BackupError

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        raise self.error


def require_to_database(request: RestoreRequest) -> None:
    """A dump goes to a server only when --to-database asked for it; without it, restore writes it as a file."""
    if not request.to_database:
        raise BackupError(f"stream {request.stream_name} is restored to a server only with --to-database; "
                          "otherwise it is written as a file")


def restore_database_name(request: RestoreRequest) -> str:
    """The database a dump goes into: --database, else the name the manifest records (a name only, never syntax)."""
    from ncbackup.setformat import object_name

    database = request.database or object_name(request.metadata, "database")
    if not isinstance(database, str) or not database:
        raise BackupError(f"stream {request.stream_name} does not name its database; pass --database NAME")
    if "\0" in database:
        raise BackupError(f"database name {database!r} holds a NUL character, which no server accepts; pass --database NAME")
    return database


def drop_blank_values(values: Any) -> Any:
    """Drop PARAMETERS entries whose value is blank: legacy configs write "" for "not set"."""
    if isinstance(values, dict):
        return {key: value for key, value in values.items() if not (isinstance(value, str) and not value.strip())}
    return values


@contextmanager
def secret_file(content: str, *, folder: Path | None = None, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh 0600 file holding content (a password, an option file); it is removed on exit."""
    # mkstemp creates the file with mode 0600 atomically, before any secret is written to it.
    descriptor, name = tempfile.mkstemp(prefix=".ncbackup-", suffix=suffix, dir=folder)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _read_for_masking(path: Path | None) -> str:
    # Only to learn what to mask: a missing or unreadable file is reported by the source's own checks.
    if path is None:
        return ""
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def register_option_file_passwords(path: Path | None, *, where: str) -> None:
    """Mask the passwords of a MySQL option file (every group) in every log line, report and JSON output."""
    for line in _read_for_masking(path).splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip().lower() in ("password", "passwd", "pass"):
            value = value.strip()
            add_secret(value, where=where)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                add_secret(value[1:-1], where=where)


def register_pgpass_passwords(path: Path | None, *, where: str) -> None:
    """Mask the passwords of a .pgpass file (host:port:database:user:password lines) everywhere."""
    for line in _read_for_masking(path).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = re.split(r"(?<!\\):", line, maxsplit=4)
        if len(fields) == 5:
            add_secret(fields[4].replace("\\:", ":").replace("\\\\", "\\"), where=where)


def copy_stream(reader: IO[bytes], sink: IO[bytes], *, prefetch_chunks: int = PREFETCH_CHUNKS) -> int:
    """Copy reader into sink until EOF and return the bytes copied; a helper thread keeps reading while sink works."""
    # A dump program blocks as soon as the kernel pipe (64 KiB) is full. Reading in the caller's thread
    # would stop the dump for as long as each chunk takes to compress and encrypt; the helper thread
    # keeps the dump, and the stages, busy at once (like a shell pipeline), with a few chunks in memory.
    chunks: queue.Queue = queue.Queue(maxsize=prefetch_chunks)
    failures: list[BaseException] = []
    stop = threading.Event()

    def pump() -> None:
        try:
            while not stop.is_set():
                chunk = reader.read(COPY_CHUNK_BYTES)
                chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread below
            failures.append(error)
            chunks.put(b"")

    thread = threading.Thread(target=pump, name="ncbackup-db-read", daemon=True)
    thread.start()
    total_bytes = 0
    try:
        while True:
            chunk = chunks.get()
            if not chunk:
                break
            sink.write(chunk)
            total_bytes += len(chunk)
    except BaseException:
        # Free the helper if it waits on a full queue; if it waits on the reader, the caller kills the
        # producer and its EOF ends the thread.
        stop.set()
        while not chunks.empty():
            chunks.get_nowait()
        raise
    thread.join()
    if failures:
        raise failures[0]
    return total_bytes


def find_program(configured: str | Path | None, *candidates: str) -> str:
    """Return the configured program or the first candidate found on PATH (else the first candidate)."""
    if configured:
        return str(configured)
    for candidate in candidates:
        if which(candidate):
            return candidate
    return candidates[0]


_REASON_LINE = re.compile(r"error|fatal|denied|failed|unknown|can't|cannot|lost", re.IGNORECASE)


def failure_reason(error: BaseException) -> str:
    """One line saying why a client program failed: its first stderr line that names an error, not just the last line."""
    # psql and friends end with a hint ("password retrieved from file ...") after the real reason.
    if isinstance(error, CommandFailed) and error.stderr_tail:
        lines = [line.strip() for line in error.stderr_tail.splitlines() if line.strip()]
        chosen = next((line for line in lines if _REASON_LINE.search(line)), lines[-1] if lines else "")
        head = str(error).split(": ", 1)[0]
        return f"{head}: {chosen}" if chosen else head
    return str(error)
