"""SQLite source (new, ``NAME: sqlite_backup``, PARAMETERS ``PATHS``): a consistent copy of each database file.

Why a temp file: a live database is the main file *plus* its WAL (or hot journal), so reading the
main file's bytes, even inside a read transaction, can miss committed pages still in the WAL. The
online backup API (``Connection.backup``) writes a self-contained, consistent copy; it needs a
seekable destination, so it goes to a private temp file in WORK_FOLDER, is streamed, then removed.
``serialize()`` would avoid the file but holds the whole database in memory, which we refuse.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ncbackup.config.types import PathList, parse_options
from ncbackup.errors import BackupError, SourceError
from ncbackup.sources._dbsupport import copy_stream, drop_blank_values
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport


class SqliteOptions(BaseModel):
    """The SQLITE section's PARAMETERS."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    paths: PathList = Field(
        alias="PATHS", description="the database files; each becomes its stream `sqlite-<file stem>`",
    )

    @model_validator(mode="before")
    @classmethod
    def _ignore_blank_values(cls, values: Any) -> Any:
        return drop_blank_values(values)


def _open_read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise SourceError(f"SQLite database {path} does not exist; fix PATHS in the SQLITE section")
    # mode=ro: the backup must never create or change the source database.
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def consistent_copy(source_path: Path, destination_path: Path) -> dict[str, Any]:
    """Copy a live database to destination_path with the online backup API; return facts for the manifest."""
    try:
        source = _open_read_only(source_path)
        try:
            destination = sqlite3.connect(destination_path)
            try:
                # One step (pages=-1): a single read transaction, so the copy is one consistent snapshot and
                # a busy writer cannot make the backup restart for ever.
                source.backup(destination, pages=-1)
                page_count = destination.execute("PRAGMA page_count").fetchone()[0]
                page_size = destination.execute("PRAGMA page_size").fetchone()[0]
            finally:
                destination.close()
        finally:
            source.close()
    except sqlite3.Error as error:
        raise SourceError(
            f"SQLite database {source_path} could not be copied ({error}); check that it is an SQLite file ncbackup may read"
        ) from None
    return {"sqlite_version": sqlite3.sqlite_version, "page_count": page_count, "page_size_bytes": page_size}


@dataclass
class SqliteStream:
    """One database file, copied consistently, then streamed."""

    name: str
    path: Path
    work_folder: Path
    kind: str = "sqlite"
    suffix: str = ".sqlite"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        folder = self.work_folder if self.work_folder.is_dir() else None
        descriptor, temp_name = tempfile.mkstemp(prefix=".ncbackup-sqlite-", suffix=".tmp", dir=folder)
        os.close(descriptor)
        temp_path = Path(temp_name)
        try:
            report.metadata.update(consistent_copy(self.path, temp_path))
            with open(temp_path, "rb") as copy:
                copy_stream(copy, sink)
        finally:
            temp_path.unlink(missing_ok=True)


def stream_names(paths: list[Path]) -> list[str]:
    """``sqlite-<file stem>`` per path; a repeated stem gets -2, -3... in PATHS order."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        base = f"sqlite-{path.stem}"
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return names


class SqliteSource:
    """The SQLITE section as a Source: one stream per listed database file."""

    def __init__(self, options: SqliteOptions, *, work_folder: Path) -> None:
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)
        self.options = options
        self.work_folder = work_folder

    @classmethod
    def from_section(cls, section, general) -> SqliteSource:
        return cls(parse_options(SqliteOptions, section), work_folder=general.work_folder)

    def describe(self) -> str:
        return f"SQLite databases {' '.join(str(path) for path in self.options.paths)}"

    def streams(self) -> Iterator[SqliteStream]:
        for name, path in zip(stream_names(self.options.paths), self.options.paths, strict=True):
            yield SqliteStream(name=name, path=path, work_folder=self.work_folder)

    def check(self) -> list[CheckLine]:
        lines = [CheckLine(True, f"sqlite3 module: SQLite {sqlite3.sqlite_version}")]
        for path in self.options.paths:
            try:
                connection = _open_read_only(path)
                try:
                    tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
                finally:
                    connection.close()
                lines.append(CheckLine(True, f"SQLite {path}: readable, {tables} tables"))
            except (BackupError, sqlite3.Error) as error:
                lines.append(CheckLine(False, f"SQLite {path}: {error}"))
        return lines


def _restore_destination(request: RestoreRequest) -> Path:
    # --target names the file (or a folder to put <stream>.sqlite in); else the PATHS entry this stream came from.
    if request.target is not None:
        return request.target / f"{request.stream_name}.sqlite" if request.target.is_dir() else request.target
    options = dict(request.options or {})
    paths = SqliteOptions.model_validate(options).paths if options.get("PATHS") else []
    for name, path in zip(stream_names(paths), paths, strict=True):
        if name == request.stream_name:
            return path
    raise BackupError(f"no PATHS entry of the config matches stream {request.stream_name}; pass --target FILE")


def restore_sqlite(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Write the database file atomically (temp name, integrity check, rename); never over a file without --force."""
    destination = _restore_destination(request)
    if destination.exists() and not request.force:
        raise BackupError(f"{destination} already exists; move it away or pass --force to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".restoring", dir=destination.parent)
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            copy_stream(reader, handle)
            handle.flush()
            os.fsync(handle.fileno())
        # immutable=1: a WAL-mode copy must not grow -wal/-shm files next to the temp name.
        connection = sqlite3.connect(temp_path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.Error as error:
            verdict = str(error)
        finally:
            connection.close()
        if verdict != "ok":
            raise BackupError(f"restored SQLite database for {request.stream_name} fails its integrity check ({verdict}); "
                              "the backup is damaged")
        os.replace(temp_path, destination)
    finally:
        temp_path.unlink(missing_ok=True)
    return []


DESCRIPTOR = SourceDescriptor(
    key="sqlite", factory=SqliteSource, restorers={"sqlite": restore_sqlite}, execute_names=("sqlite_backup",),
    dump_folder="sqlite",
)
