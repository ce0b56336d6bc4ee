"""What a data source is: a section that yields one or more named streams of plain bytes.

Backup direction is push: a stream writes its bytes into a sink (the compressor's writer), so a
tar archiver or a dump program's stdout feeds the pipeline without a thread of its own. Restore
direction is pull (see ``Restorer``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import datetime

    from ncbackup.storage.base import Storage


@dataclass
class StreamReport:
    """What a stream tells the run besides its bytes: warnings (with paths), notes, errors, manifest metadata.

    ``metadata`` goes into the manifest (plaintext): never put secrets or file names there.
    ``errors`` fail the run although the stream itself is good: its bytes are complete and
    restorable, but something the config asked for is not in them (a missing FILESET_INCLUDE path).
    A stream that cannot produce good bytes raises SourceError instead.
    """

    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def fail_run(self, message: str) -> None:
        """Keep this stream (it is complete and restorable) but fail the run (exit 2) with message."""
        self.errors.append(message)


class Stream(Protocol):
    """One stream of a backup set, e.g. ``files`` or ``mysql-3306-shop``."""

    name: str     # unique within a set; becomes the part file prefix
    kind: str     # "files", "mysql", "mysql-binlogs", "postgres", "mongo", "sqlite", ...
    suffix: str   # plain-format file suffix: ".tar", ".sql", ".pgdump", ".archive", ".sqlite", ...

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        """Write the stream's plain bytes into sink (do not close it); raise SourceError on failure."""
        ...


@dataclass(frozen=True)
class CheckLine:
    """One line of ``ncbackup check`` output for a component."""

    ok: bool
    text: str


def check_writable_folder(path: Path, what: str) -> CheckLine:
    """Whether a folder exists and is writable, or where it would be created; creates nothing."""
    from ncbackup import platform

    probe = platform.nearest_existing(path)
    if not probe.is_dir():
        return CheckLine(False, f"{what} {path}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        return CheckLine(False, f"{what} {path}: {probe} is not writable")
    return CheckLine(True, f"{what} {path} " + ("is writable" if probe == Path(path) else f"will be created (in {probe})"))


class Source(Protocol):
    """A data section (FILESET, MYSQL, POSTGRES, ...) turned into streams at run time.

    ``report`` holds what concerns the source as a whole, not one of its streams (a MySQL instance whose
    FLUSH BINARY LOGS was refused): filled while ``streams()`` runs, read by the engine once they are all written.
    """

    report: StreamReport

    def streams(self) -> Iterator[Stream]:
        """Yield the streams to back up (may connect to a server to enumerate databases)."""
        ...

    def describe(self) -> str:
        """One line for the plan: what it reads."""
        ...

    def check(self) -> list[CheckLine]:
        """Check without writing anything: paths exist, binaries found, servers answer."""
        ...


@runtime_checkable
class ChainedSource(Protocol):
    """A source whose streams may be incremental (MYSQL ``INCREMENTAL``): it names the sets its incremental streams
    need before the set is written, and records where the set ended once it is complete on every storage."""

    def begin_set(self, storages: Mapping[str, Storage], *, now: datetime) -> tuple[str, ...]:
        """Decide full or incremental; return the set ids this set's incremental streams need (oldest first)."""
        ...

    def end_set(self, set_id: str, *, storages: Sequence[str], failed_streams: Sequence[str]) -> list[str]:
        """The set is complete on storages: keep where it ended, for the streams that did not fail; return warnings."""
        ...


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked ``ncbackup restore`` to do with one stream."""

    stream_name: str
    kind: str
    metadata: Mapping[str, Any]            # the stream's manifest metadata
    target: Path | None = None             # write plain files / extract here
    to_database: bool = False
    database: str | None = None            # restore under another name
    paths: tuple[str, ...] = ()            # globs, for file streams
    force: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # the source section's parameters, if any
    dc_folder: Path | None = None          # --to-dc: rebuild a domain controller here (AD streams)
    new_server_name: str | None = None     # --new-server-name: the rebuilt DC's host name


class Restorer(Protocol):
    """Consumes a stream's plain bytes on restore (extract a tar, pipe a dump into a server)."""

    def __call__(self, reader: BinaryIO, request: RestoreRequest) -> list[str]:
        """Restore from reader; return warnings; raise BackupError on failure."""
        ...


class SourceFactory(Protocol):
    """What builds a Source from its config section (the source class itself, by convention)."""

    def from_section(self, section: Any, general: Any) -> Source:
        ...


@dataclass(frozen=True)
class SourceDescriptor:
    """Everything the rest of ncbackup needs to know about one source module; the registry collects these.

    Adding a source is its module (with its DESCRIPTOR) plus one line in ``sources/registry.py``.
    """

    key: str                                            # the built-in key: "filesbackup", "mysql_backup", ...
    factory: SourceFactory                              # from_section(section, general) -> Source
    restorers: Mapping[str, Restorer]                   # stream kind -> restorer ("mysql", "mysql-binlogs", ...)
    execute_names: tuple[str, ...] = ()                 # ``"ACTION": "execute", "NAME": ...`` that mean this source
    load_classes: tuple[tuple[str, str], ...] = ()      # ``"ACTION": "load", "FROM": ..., "CLASS": ...``
    dump_folder: str | None = None                      # barrier case: WORK_FOLDER/<this> holds its plain dumps
    secret_file_keys: tuple[str, ...] = ()              # PARAMETERS naming secret files (QA checks their modes)

