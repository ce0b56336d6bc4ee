"""Drive a Source's streams into plain files, as the pipeline does (used until the full pipeline is wired in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncbackup.errors import BackupError
from ncbackup.sources.base import StreamReport


@dataclass
class Outcome:
    stream: Any
    path: Path
    report: StreamReport
    error: BackupError | None

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def dump_streams(source, folder: Path) -> dict[str, Outcome]:
    """Write every stream of source into folder/<name><suffix>; a failing stream records its error, the rest go on."""
    folder.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, Outcome] = {}
    for stream in source.streams():
        report = StreamReport()
        path = folder / f"{stream.name}{stream.suffix}"
        error = None
        with open(path, "wb") as sink:
            try:
                stream.write_to(sink, report)
            except BackupError as caught:
                error = caught
        outcomes[stream.name] = Outcome(stream, path, report, error)
    return outcomes
