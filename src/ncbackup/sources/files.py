"""The FILESET source: include/exclude paths archived as one pax tar stream plus its file index.

Restore side: ``restore_files`` extracts a files stream safely into the restore target.
"""

from __future__ import annotations

import ntpath
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Annotated, BinaryIO, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ncbackup import platform
from ncbackup.archive.extract import extract_tar
from ncbackup.archive.index import IndexWriter
from ncbackup.archive.writer import ExcludeRules, TarWriter, member_name
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyBool, LegacyInt, PathList, WordList, parse_options
from ncbackup.errors import BackupError, SourceError
from ncbackup.incremental.schedule import FullEvery, to_full_every
from ncbackup.sources.base import CheckLine, RestoreRequest, SourceDescriptor, StreamReport, check_writable_folder

if TYPE_CHECKING:
    from ncbackup.incremental.run import StreamState

DEFAULT_INCLUDE = (Path("/etc"), Path("/opt/ncscripts"), Path("/var/spool/cron"))
# The index stays in memory up to this size, then spills to a private temporary file.
INDEX_SPOOL_MEMORY_BYTES = 8 << 20
COPY_BUFFER_BYTES = 1 << 20
KIND_FILES, KIND_INDEX = "files", "files-index"


def _is_root(path: PurePath) -> bool:
    text = str(path)
    return (bool(path.anchor) and path == Path(path.anchor)) or bool(re.fullmatch(r"[\\/]+|[A-Za-z]:[\\/]*", text))


class FilesetOptions(BaseModel):
    """FILESET PARAMETERS (COMPAT.md section 3)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    include: PathList | None = Field(
        default=None, alias="FILESET_INCLUDE",
        json_schema_extra={"shown_default": [str(path) for path in DEFAULT_INCLUDE]},
        description="absolute paths to back up. `/` alone is refused: list the folders",
    )
    exclude: WordList = Field(
        default_factory=list, alias="FILESET_EXCLUDE", description="paths inside the included ones to leave out",
    )
    one_file_system: LegacyBool = Field(
        default=False, alias="ONE_FILE_SYSTEM", description="do not cross into other mounted file systems",
    )
    tar_command: str | None = Field(
        default=None, alias="TAR_COMMAND",
        description="accepted and ignored: ncbackup archives in-process (no sudo tar)",
    )
    incremental: LegacyBool = Field(
        default=False, alias="INCREMENTAL",
        description="store only what changed since the last complete set (docs/incremental.md); off: every set is full",
    )
    full_every: Annotated[FullEvery | None, BeforeValidator(to_full_every)] = Field(
        default=None, alias="FULL_EVERY", json_schema_extra={"shown_default": "none (only MAX_CHAIN starts a new chain)"},
        description="with INCREMENTAL: make a full set when this long has passed since the chain's full (`7d`, "
                    "`36h`), or once a week from this weekday on (`sunday`)",
    )
    max_chain: LegacyInt = Field(
        default=13, ge=0, alias="MAX_CHAIN",
        description="with INCREMENTAL: at most this many incremental sets after a full; then the next set is full "
                    "(0: always full)",
    )

    @field_validator("include")
    @classmethod
    def _refuse_root(cls, paths: list[Path] | None) -> list[Path] | None:
        for path in paths or ():
            if _is_root(path):
                raise ValueError(
                    f"{path} (a whole file system) cannot be backed up as a file set; list the folders to include"
                )
            if not (path.is_absolute() or ntpath.isabs(str(path))):
                raise ValueError(f"{path} is not an absolute path; write it from the root, e.g. /{path}")
        return paths


def stream_name_for(section_name: str) -> str:
    """``files`` for the FILESET section, ``files-<section name>`` (lowercased, safe characters) otherwise."""
    if section_name.upper() == "FILESET":
        return "files"
    slug = re.sub(r"[^a-z0-9._-]+", "-", section_name.lower()).strip("-.")
    return f"files-{slug or 'set'}"


@dataclass
class SnapshotView:
    """A SNAPSHOT section as the FILESET sections after it see it; its step fills it once the snapshot is taken."""

    section_name: str
    label: str | None = None                                   # "btrfs:ncbackup-web1-…", once taken
    mapping: dict[Path, Path] = field(default_factory=dict)    # live mount point -> where the snapshot is readable


@dataclass(frozen=True)
class ReadPlan:
    """What the tar walks: (path read, live path its members are named after), the excludes, the snapshots used."""

    roots: list[tuple[Path, Path]]
    excludes: list[str]
    snapshot_labels: list[str]


def _real(path: Path) -> Path:
    """path with its parent folders' symlinks resolved (path itself may be a symlink, stored as one)."""
    return Path(os.path.realpath(path.parent)) / path.name


def plan_reads(paths: list[Path], excludes: list[str], views: list[SnapshotView]) -> ReadPlan:
    """Read every path at or below a snapshot's live mount point from the snapshot, under its live member name."""
    mappings = sorted(((live, readable, view.label) for view in views if view.label is not None
                       for live, readable in view.mapping.items()), key=lambda item: len(item[0].parts), reverse=True)
    roots: list[tuple[Path, Path]] = []
    extra: list[str] = []
    used: list[str] = []
    for path in paths:
        real = _real(path)
        found = next(((live, readable, label) for live, readable, label in mappings
                      if real == live or live in real.parents), None)
        if found is not None:
            live, readable, label = found
            roots.append((readable / real.relative_to(live), path))
            used.append(label)
            continue
        roots.append((path, path))
        for live, readable, label in mappings:
            if real in live.parents and not any(live == other or other in live.parents
                                                for other, _, _ in mappings if other != live and real in other.parents):
                # A snapshot's mount point inside this path: skip it in the live walk, read it from the snapshot.
                inner = path / live.relative_to(real)
                extra.append(str(inner))
                roots.append((readable, inner))
                used.append(label)
    for pattern in excludes:
        text = pattern.strip().rstrip("/") or pattern
        for live, readable, _label in mappings:
            below = platform.path_below(text, str(live))   # by the live path's rules (Windows: any case, / or \\)
            if below is not None:
                extra.append(str(readable / below) if below else str(readable))
    return ReadPlan(roots=roots, excludes=list(excludes) + extra, snapshot_labels=sorted(set(used)))


@dataclass
class _IndexSpool:
    """The index written while the tar streams, handed to the index stream afterwards."""

    file: tempfile.SpooledTemporaryFile | None = None
    entries: int = 0
    failure: str | None = None
    is_done: bool = False


class FilesStream:
    """The tar of the include paths."""

    kind = KIND_FILES
    suffix = ".tar"

    def __init__(self, source: FilesSource, spool: _IndexSpool) -> None:
        self.name = source.stream_name
        self._source = source
        self._spool = spool

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        source = self._source
        spool = self._spool
        spool.file = tempfile.SpooledTemporaryFile(max_size=INDEX_SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed after the index stream
        index = IndexWriter(cast(BinaryIO, spool.file))   # a SpooledTemporaryFile is a binary file
        incremental = source.incremental
        try:
            paths = source.paths_to_archive(report)
            reads = source.plan_reads(paths, report)
            # Read from a snapshot, a file's device number is the snapshot's, new every run: compare the rest.
            tracker = incremental.open_tracker(check_device=not reads.snapshot_labels) if incremental is not None else None
            writer = TarWriter(sink, report=report, excludes=ExcludeRules(reads.excludes),
                               one_file_system=source.options.one_file_system, index=index, tracker=tracker)
            for read_path, live_path in reads.roots:
                name = member_name(str(live_path))
                if tracker is not None:
                    tracker.begin_root(name)
                writer.add_tree(str(read_path), name=name)
            totals = writer.close()
        except BaseException as error:
            spool.failure = str(error) or type(error).__name__
            spool.file.close()
            if incremental is not None:
                incremental.discard()
            raise
        finally:
            spool.entries = index.count
        spool.is_done = True
        report.metadata.update({"format": "pax", "members": totals.members, "file_bytes": totals.file_bytes})
        if incremental is not None:
            incremental.is_walk_done = True
            decision = incremental.decision
            report.metadata["level"] = decision.level
            if decision.reason is not None:
                report.metadata["full_reason"] = decision.reason
        if reads.snapshot_labels:
            report.metadata["snapshot"] = " ".join(reads.snapshot_labels)


class FilesIndexStream:
    """One JSON line per member of the files stream written just before it (see archive/index.py)."""

    kind = KIND_INDEX
    suffix = ".jsonl"

    def __init__(self, source: FilesSource, spool: _IndexSpool) -> None:
        self.name = f"{source.stream_name}-index"
        self._files_name = source.stream_name
        self._spool = spool

    def write_to(self, sink: BinaryIO, report: StreamReport) -> None:
        spool = self._spool
        if spool.failure is not None:
            # The cause is already the files stream's own error: say only what this one depends on.
            raise SourceError(f"skipped: {self._files_name} failed")
        if not spool.is_done or spool.file is None:
            raise SourceError(
                f"the index of stream {self._files_name} can only be written after that stream; "
                "write the streams in the order the source yields them"
            )
        try:
            spool.file.seek(0)
            shutil.copyfileobj(spool.file, sink, COPY_BUFFER_BYTES)
        finally:
            spool.file.close()
            spool.file = None
        report.metadata.update({"entries": spool.entries, "of_stream": self._files_name})


class FilesSource:
    """A FILESET section: include paths (minus excludes) as a tar stream and an index stream."""

    def __init__(self, options: FilesetOptions, *, section_name: str = "FILESET", state_folder: Path | None = None) -> None:
        self.report = StreamReport()          # about the source as a whole (sources/base.Source)
        self.state_folder = state_folder      # GENERAL STATE_FOLDER as configured (None: the platform's default)
        self.options = options
        self.section_name = section_name
        self.stream_name = stream_name_for(section_name)
        self.snapshots: list[SnapshotView] = []   # the SNAPSHOT sections before this one (engine/plan.py links them)
        self.incremental: StreamState | None = None   # INCREMENTAL: set by the run before the set is written

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> FilesSource:
        return cls(parse_options(FilesetOptions, section), section_name=section.name, state_folder=general.state_folder)

    @property
    def is_default_include(self) -> bool:
        return self.options.include is None

    @property
    def includes(self) -> list[Path]:
        return list(DEFAULT_INCLUDE) if self.options.include is None else list(self.options.include)

    def streams(self) -> Iterator[FilesStream | FilesIndexStream]:
        spool = _IndexSpool()
        yield FilesStream(self, spool)
        yield FilesIndexStream(self, spool)

    def fingerprint(self) -> str:
        """What decides this source's walk (incremental/run.py): a changed fingerprint makes the next set full."""
        from ncbackup.incremental.run import fingerprint

        snapshots = [(view.label.split(":")[0], str(live)) for view in self.snapshots if view.label
                     for live in view.mapping]
        return fingerprint(includes=[str(path) for path in self.includes], excludes=list(self.options.exclude),
                           one_file_system=self.options.one_file_system, snapshots=snapshots)

    def describe(self) -> str:
        text = f"files {' '.join(str(path) for path in self.includes)}"
        if self.options.exclude:
            text += f" excluding {' '.join(self.options.exclude)}"
        if self.options.one_file_system:
            text += " (one file system)"
        if self.options.incremental:
            every = f", full every {self.options.full_every}" if self.options.full_every is not None else ""
            text += f" (incremental{every}, at most {self.options.max_chain} after a full)"
        return text

    def paths_to_archive(self, report: StreamReport) -> list[Path]:
        """The include paths that exist, nested ones dropped.

        A missing explicit path fails the run (report.fail_run) but not the stream: one typo or one
        unmounted disk must not cost the backup of every other path. When no explicit path exists
        at all there is nothing worth a stream: SourceError.
        """
        if self.options.tar_command:
            report.note("TAR_COMMAND is ignored: ncbackup writes the tar archive itself")
        found: list[Path] = []
        missing: list[Path] = []
        for path in self.includes:
            if os.path.lexists(path):
                found.append(path)
            elif self.is_default_include:
                report.note(f"default include path {path} does not exist; skipped")
            else:
                missing.append(path)
        if missing and not found:
            if len(missing) == 1:
                raise SourceError(
                    f"FILESET_INCLUDE path {missing[0]} does not exist in section {self.section_name}; "
                    "create it or remove it from FILESET_INCLUDE"
                )
            raise SourceError(
                f"no FILESET_INCLUDE path of section {self.section_name} exists "
                f"({', '.join(str(path) for path in missing)}); create them or fix FILESET_INCLUDE"
            )
        for path in missing:
            report.fail_run(
                f"FILESET_INCLUDE path {path} does not exist in section {self.section_name}, so it is not in this "
                "backup (the other paths are); create it or remove it from FILESET_INCLUDE"
            )
        kept: list[Path] = []
        for path in found:
            if path in kept:
                continue
            outer = next((other for other in found if other != path and _is_inside(path, other)), None)
            if outer is not None:
                report.note(f"FILESET_INCLUDE {path} is inside {outer}; archived once")
                continue
            if path.is_symlink():
                report.note(f"FILESET_INCLUDE {path} is a symlink; only the link is stored (include its target to back up the files)")
            kept.append(path)
        return kept

    def plan_reads(self, paths: list[Path], report: StreamReport) -> ReadPlan:
        """Where each path is read from: a snapshot taken by a SNAPSHOT section before this one, or the live files."""
        for view in self.snapshots:
            if view.label is None:
                report.fail_run(f"the snapshot of section {view.section_name} was not taken, so section "
                                f"{self.section_name} read the live files; see that section's error")
        return plan_reads(paths, list(self.options.exclude), self.snapshots)

    def check(self) -> list[CheckLine]:
        lines: list[CheckLine] = []
        for path in self.includes:
            if not os.path.lexists(path):
                if self.is_default_include:
                    lines.append(CheckLine(True, f"default include {path} does not exist (skipped)"))
                else:
                    lines.append(CheckLine(False, f"include {path} does not exist; create it or remove it from FILESET_INCLUDE"))
            elif not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
                lines.append(CheckLine(False, f"include {path} is not readable by this user; run as root or fix its permissions"))
            else:
                lines.append(CheckLine(True, f"include {path} is readable"))
        includes = self.includes
        for pattern in self.options.exclude:
            if ExcludeRules([pattern]).exact_paths:
                path = Path(pattern.rstrip("/\\") or pattern)
                if any(_is_inside(path, include) for include in includes):
                    lines.append(CheckLine(True, f"exclude {pattern} is inside an include path"))
                else:
                    lines.append(CheckLine(False, f"exclude {pattern} is not inside any include path, so it excludes "
                                                  "nothing; fix FILESET_EXCLUDE"))
            else:
                lines.append(CheckLine(True, f"exclude pattern {pattern} applies to every include path"))
        if self.options.tar_command:
            lines.append(CheckLine(True, "TAR_COMMAND is ignored: ncbackup writes the tar archive itself"))
        if self.options.incremental:
            from ncbackup import platform

            lines.append(check_writable_folder(self.state_folder or platform.default_state_folder(),
                                               "incremental state folder (GENERAL STATE_FOLDER)"))
        return lines


def _is_inside(path: Path, other: Path) -> bool:
    """True when path is other or below it."""
    return path == other or other in path.parents


def restore_files(reader: BinaryIO, request: RestoreRequest) -> list[str]:
    """Extract a files stream into request.target (only members matching request.paths when given)."""
    if request.target is None:
        raise BackupError(f"restoring stream {request.stream_name} needs a target folder; pass --target DIR")
    return extract_tar(reader, request.target, patterns=request.paths)


DESCRIPTOR = SourceDescriptor(
    key="filesbackup", factory=FilesSource, restorers={"files": restore_files}, execute_names=("filesbackup",),
)
