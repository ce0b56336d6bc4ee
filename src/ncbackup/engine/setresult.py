"""What writing a backup set (or a barrier folder) produced: per stream, per storage, for the set.

``engine/run.py`` turns a SetResult into the step's result; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ncbackup.setformat import Manifest, PartInfo
from ncbackup.sources.base import StreamReport


@dataclass
class StreamResult:
    name: str
    kind: str
    bytes_in: int = 0
    bytes_out: int = 0
    parts: list[PartInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    file_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)   # the source's StreamReport.metadata, for the manifest
    run_errors: list[str] = field(default_factory=list)      # StreamReport.errors: the stream is good, the run fails

    @property
    def is_ok(self) -> bool:
        return self.error is None


@dataclass
class StorageOutcome:
    section_name: str
    storage_name: str
    error: str | None = None             # None: every part (and the manifest) stored

    @property
    def is_ok(self) -> bool:
        return self.error is None


@dataclass
class SetResult:
    set_id: str | None                   # None for a barrier folder (no set)
    streams: list[StreamResult] = field(default_factory=list)
    storages: list[StorageOutcome] = field(default_factory=list)
    manifest: Manifest | None = None
    error: str | None = None             # the set as a whole stopped early (every storage failed)
    repairs: list[str] = field(default_factory=list)   # parts copied from a sibling after a failed upload
    source_reports: list[StreamReport] = field(default_factory=list)   # each source's own (Source.report)

    @property
    def is_complete(self) -> bool:
        """Every storage holds every part and the signed manifest (or, for a folder, every file was written)."""
        return self.error is None and all(outcome.is_ok for outcome in self.storages)

    @property
    def failed_streams(self) -> list[StreamResult]:
        return [stream for stream in self.streams if not stream.is_ok]

    @property
    def bytes_in(self) -> int:
        return sum(stream.bytes_in for stream in self.streams)

    @property
    def bytes_out(self) -> int:
        return sum(stream.bytes_out for stream in self.streams)

    @property
    def warnings(self) -> list[str]:
        return ([f"{stream.name}: {warning}" for stream in self.streams for warning in stream.warnings]
                + [warning for report in self.source_reports for warning in report.warnings] + self.repairs)
