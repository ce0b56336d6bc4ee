"""METHOD btrfs: a read-only snapshot of a subvolume (``btrfs subvolume snapshot -r``), deleted at the end of the run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ncbackup.config.types import parse_options
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.base import Taken
from ncbackup.snapshots.freeze import frozen
from ncbackup.snapshots.local import LocalSnapshotOptions, is_mount_point, mount_of, run_command, tools_check
from ncbackup.snapshots.naming import is_own_name, name_prefix, new_name
from ncbackup.sources.base import CheckLine, check_writable_folder

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

log = logging.getLogger(__name__)

DEFAULT_FOLDER_NAME = ".ncbackup-snapshots"


class BtrfsSnapshot:
    """A read-only snapshot of SOURCE made in SNAPSHOT_DIR; FILESET paths under SOURCE are read from it."""

    def __init__(self, name: str, *, source: Path, folder: Path, prefix: str, freeze: bool = False) -> None:
        self.name = name
        self.source = source
        self.folder = folder
        self.prefix = prefix
        self.freeze = freeze
        self._made: Path | None = None        # set before the snapshot command runs: a half-made one is removed too
        self._made_folder = False

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> BtrfsSnapshot:
        options = parse_options(LocalSnapshotOptions, section)
        source = Path(options.source)
        if not source.is_absolute():
            position = section.parameter_positions.get("SOURCE") or section.position
            raise ConfigError(f"section {section.name}: btrfs SOURCE {source} is not an absolute path; give the "
                              "subvolume's full path, e.g. /srv/www", file=config_path,
                              line=position.line if position else None, key="SOURCE")
        return cls(section.name, source=source, folder=options.snapshot_dir or default_folder(source),
                   prefix=name_prefix(general.hostname, config_path, section.name), freeze=options.freeze)

    def check(self) -> list[CheckLine]:
        lines = tools_check(["btrfs"] + (["fsfreeze"] if self.freeze else []), "btrfs")
        if not self.source.is_dir():
            lines.append(CheckLine(False, f"btrfs SOURCE {self.source} does not exist; create the subvolume or fix SOURCE"))
            return lines
        try:
            run_command(["btrfs", "subvolume", "show", str(self.source)])
        except BackupError as error:
            lines.append(CheckLine(False, f"btrfs SOURCE {self.source} is not a btrfs subvolume ({error}); fix SOURCE"))
        else:
            lines.append(CheckLine(True, f"btrfs SOURCE {self.source} is a subvolume"))
        lines.append(check_writable_folder(self.folder, "btrfs SNAPSHOT_DIR"))
        return lines

    def take(self) -> Taken:
        name = new_name(self.prefix)
        destination = self.folder / name
        try:
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True)
                self._made_folder = True
            self._made = destination
            mount = mount_of(self.source) if self.freeze else None
            with frozen(mount.mount_point if mount is not None else None):
                run_command(["btrfs", "subvolume", "snapshot", "-r", str(self.source), str(destination)])
        except OSError as error:
            self.release()
            raise BackupError(f"cannot create the btrfs snapshot folder {self.folder} ({error.strerror}); set "
                              "SNAPSHOT_DIR to a folder on the same file system as SOURCE") from None
        except BaseException:
            self.release()
            raise
        return Taken(method="btrfs", ids=(name,), mapping={self.source.resolve(): destination})

    def release(self) -> list[str]:
        made, self._made = self._made, None
        warnings = []
        if made is not None and os.path.lexists(made):
            warnings.extend(_delete(made))
        if self._made_folder and not (made is not None and os.path.lexists(made)):
            self._made_folder = False
            try:
                self.folder.rmdir()
            except OSError:
                pass   # not empty (another section's snapshot): it stays
        return warnings

    def cleanup_leftovers(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        removed = []
        for entry in sorted(self.folder.iterdir()):
            if is_own_name(entry.name, self.prefix):
                problems = _delete(entry)
                if problems:
                    raise BackupError(problems[0])
                removed.append(f"removed the btrfs snapshot {entry} that an interrupted run left behind")
        return removed


def _delete(path: Path) -> list[str]:
    try:
        run_command(["btrfs", "subvolume", "delete", str(path)])
    except BackupError as error:
        return [f"could not delete the btrfs snapshot {path} ({error}); the next run removes it, or run: "
                f"btrfs subvolume delete {path}"]
    log.info("deleted the btrfs snapshot %s", path)
    return []


def default_folder(source: Path) -> Path:
    """``.ncbackup-snapshots`` beside SOURCE, or inside it when SOURCE is a mount point (its parent is another file system)."""
    if is_mount_point(source):
        return source / DEFAULT_FOLDER_NAME
    return source.parent / DEFAULT_FOLDER_NAME
