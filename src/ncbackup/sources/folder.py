"""A source whose streams are what an earlier step (often an external script) left in folders.

Used when a data group starts after a barrier with a stage or storage section: its OBJECTIVES
folders are read at run time. With ``pack`` (COMPRESSION's OBJECTIVES are folders to pack) each
folder becomes one tar stream; otherwise each file in a folder is its own stream, stored as it is,
and each subfolder is packed as a tar stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ncbackup.archive.writer import write_tar
from ncbackup.errors import SourceError
from ncbackup.sources.base import CheckLine, StreamReport

COPY_BUFFER_BYTES = 1 << 20
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


def stream_name_for(path: Path) -> str:
    """A stream name from a file or folder name: safe for a part file name, never empty."""
    return _UNSAFE_NAME.sub("_", path.name).strip("._") or "folder"


@dataclass
class TarOfFolder:
    """A folder packed as one pax tar stream (members stored relative to /, as FILESET does)."""

    folder: Path
    name: str
    kind: str = "files"
    suffix: str = ".tar"

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        if not self.folder.is_dir():
            raise SourceError(f"folder {self.folder} disappeared before it could be packed")
        report.metadata["source"] = "folder"
        write_tar(sink, [str(self.folder.resolve())], report=report)


@dataclass
class PlainFile:
    """One file stored as it is (it already is an archive or a dump)."""

    path: Path
    name: str
    kind: str = "file"
    suffix: str = ""

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        try:
            with open(self.path, "rb") as handle:
                buffer = bytearray(COPY_BUFFER_BYTES)
                view = memoryview(buffer)
                while True:
                    count = handle.readinto(buffer)
                    if not count:
                        break
                    sink.write(view[:count])
        except OSError as error:
            raise SourceError(f"cannot read {self.path} ({error.strerror}); check it exists and is readable") from None
        report.metadata["source"] = "file"


@dataclass
class FolderSource:
    """Streams found in folders at run time; ``folders`` may be computed late (default OBJECTIVES)."""

    section_name: str
    folders_of: Callable[[], list[Path]]
    pack: bool
    description: str = ""
    _names: set[str] = field(default_factory=set)
    last_folders: list[Path] = field(default_factory=list)   # what the last streams() call read
    report: StreamReport = field(default_factory=StreamReport)   # about the source as a whole (none so far)

    def _unique(self, name: str) -> str:
        candidate, number = name, 2
        while candidate in self._names:
            candidate, number = f"{name}-{number}", number + 1
        self._names.add(candidate)
        return candidate

    def streams(self) -> Iterator[TarOfFolder | PlainFile]:
        folders = self.folders_of()
        self.last_folders = list(folders)
        if not folders:
            raise SourceError(f"section {self.section_name}: no folder to read (OBJECTIVES is empty and WORK_FOLDER has none)")
        for folder in folders:
            if not folder.is_dir():
                raise SourceError(
                    f"section {self.section_name}: folder {folder} does not exist; "
                    "fix OBJECTIVES or the step that should have written it"
                )
        for folder in folders:
            if self.pack:
                yield TarOfFolder(folder, self._unique(stream_name_for(folder)))
                continue
            for entry in sorted(folder.iterdir()):
                if entry.is_symlink():
                    continue  # never follow links out of the folder we were told to read
                if entry.is_file():
                    yield PlainFile(entry, self._unique(stream_name_for(entry)))
                elif entry.is_dir():
                    yield TarOfFolder(entry, self._unique(stream_name_for(entry)))

    def describe(self) -> str:
        return self.description or f"what is found in {', '.join(str(f) for f in self.folders_of())}"

    def check(self) -> list[CheckLine]:
        lines = []
        for folder in self.folders_of():
            if folder.is_dir():
                lines.append(CheckLine(True, f"{folder} exists"))
            else:
                lines.append(CheckLine(True, f"{folder} does not exist yet (an earlier step must write it)"))
        return lines
