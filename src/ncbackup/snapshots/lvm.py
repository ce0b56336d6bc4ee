"""METHOD lvm: ``lvcreate --snapshot``, mounted read-only, unmounted and ``lvremove``d at the end of the run.

Tested with stand-in executables only (the test machines have no device-mapper): docs/snapshots.md says so.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ncbackup import platform
from ncbackup.config.types import parse_options
from ncbackup.errors import BackupError, ConfigError
from ncbackup.snapshots.base import Taken
from ncbackup.snapshots.freeze import frozen
from ncbackup.snapshots.local import LocalSnapshotOptions, run_command, tools_check
from ncbackup.snapshots.naming import is_own_name, name_prefix, new_name
from ncbackup.sources.base import CheckLine

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings

log = logging.getLogger(__name__)

TOOLS = ["lvcreate", "lvremove", "lvs", "vgs", "mount", "umount"]
# Mount options by file system type: an XFS snapshot has its origin's UUID, which XFS refuses twice without nouuid.
DEFAULT_MOUNT_OPTIONS = {"xfs": "ro,nouuid"}
_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(?:i?b)?\s*")
_UNITS = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}


def default_mount_options(fs_type: str | None) -> str:
    return DEFAULT_MOUNT_OPTIONS.get(fs_type or "", "ro")


def size_bytes(size: str) -> int | None:
    """lvcreate --size as bytes (a bare number is MiB, units binary); None for forms like ``10%ORIGIN``."""
    match = _SIZE.fullmatch(size)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_volume(text: str) -> tuple[str, str] | None:
    """``vg0/data``, ``/dev/vg0/data`` or ``/dev/mapper/vg0-data`` -> (``vg0``, ``data``); None otherwise."""
    text = text.strip()
    if text.startswith("/dev/mapper/"):
        # device-mapper doubles a dash inside a name; a single dash separates the group from the volume.
        parts = re.split(r"(?<!-)-(?!-)", text.removeprefix("/dev/mapper/"))
        if len(parts) == 2 and all(parts):
            return parts[0].replace("--", "-"), parts[1].replace("--", "-")
        return None
    parts = text.removeprefix("/dev/").split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return None


def _device_names(group: str, volume: str) -> set[str]:
    return {f"/dev/{group}/{volume}", f"/dev/mapper/{group.replace('-', '--')}-{volume.replace('-', '--')}"}


class LvmSnapshot:
    """An LVM snapshot of one logical volume, mounted read-only under SNAPSHOT_DIR/<name> while the run reads it."""

    def __init__(self, name: str, *, group: str, volume: str, size: str, live: Path | None, fs_type: str | None,
                 mount_options: str | None, folder: Path, prefix: str, freeze: bool = False) -> None:
        self.name = name
        self.group, self.volume, self.size = group, volume, size
        self.live, self.fs_type = live, fs_type
        self.mount_options = mount_options or default_mount_options(fs_type)
        self.folder, self.prefix, self.freeze = folder, prefix, freeze
        self._created: str | None = None      # "vg/name", set before lvcreate runs
        self._is_created = False              # lvcreate succeeded
        self._mount_dir: Path | None = None   # set before mount runs
        self._is_mounted = False              # mount succeeded

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> LvmSnapshot:
        options = parse_options(LocalSnapshotOptions, section)

        def refuse(key: str, text: str) -> ConfigError:
            position = section.parameter_positions.get(key) or section.position
            return ConfigError(f"section {section.name}: {text}", file=config_path,
                               line=position.line if position else None, key=key)

        if not options.size:
            raise refuse("SIZE", "an lvm snapshot needs SIZE, its copy-on-write space (e.g. 5G); add it")
        if size_bytes(options.size) is None and "%" not in options.size:
            raise refuse("SIZE", f"SIZE {options.size!r} is not a size lvcreate takes; write e.g. 5G or 10%ORIGIN")
        mounts = platform.mounts()
        live = options.mount_point
        fs_type = None
        volume = parse_volume(options.source)
        if (options.source.startswith("/") and volume is None) or Path(options.source).is_dir():
            # SOURCE is the mount point: the volume is what is mounted there.
            live = live or Path(options.source)
            mount = next((m for m in mounts if m.mount_point == Path(options.source).resolve()), None)
            volume = parse_volume(mount.device) if mount is not None else None
            if volume is None:
                raise refuse("SOURCE", f"{options.source} is not the mount point of a logical volume; give the volume "
                                       "(vg0/data) as SOURCE")
            fs_type = mount.fs_type if mount is not None else None
        if volume is None:
            raise refuse("SOURCE", f"lvm SOURCE {options.source!r} is not a logical volume; write it as vg0/data or "
                                   "/dev/vg0/data")
        devices = _device_names(*volume)
        mount = next((m for m in mounts if m.device in devices), None)
        if mount is not None:
            live = live or mount.mount_point
            fs_type = fs_type or mount.fs_type
        return cls(section.name, group=volume[0], volume=volume[1], size=options.size, live=live, fs_type=fs_type,
                   mount_options=options.mount_options, folder=options.snapshot_dir or Path(general.work_folder) / "snapshots",
                   prefix=name_prefix(general.hostname, config_path, section.name), freeze=options.freeze)

    def check(self) -> list[CheckLine]:
        lines = tools_check(TOOLS + (["fsfreeze"] if self.freeze else []), "lvm")
        if not lines[0].ok:
            return lines
        origin = f"{self.group}/{self.volume}"
        try:
            run_command(["lvs", "--noheadings", "-o", "lv_name", origin])
        except BackupError as error:
            lines.append(CheckLine(False, f"lvm SOURCE {origin} was not found ({error}); fix SOURCE"))
            return lines
        lines.append(CheckLine(True, f"lvm SOURCE {origin} exists"))
        needed = size_bytes(self.size)
        try:
            free = int(float(run_command(["vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free",
                                          self.group]).text.strip() or "0"))
        except (BackupError, ValueError) as error:
            lines.append(CheckLine(False, f"lvm: the free space of volume group {self.group} is unknown ({error})"))
        else:
            if needed is None:
                lines.append(CheckLine(True, f"lvm: volume group {self.group} has {free} bytes free (SIZE {self.size})"))
            elif free < needed:
                lines.append(CheckLine(False, f"lvm: volume group {self.group} has {free} bytes free, less than SIZE "
                                              f"{self.size} ({needed} bytes); free space in it or lower SIZE"))
            else:
                lines.append(CheckLine(True, f"lvm: volume group {self.group} has {free} bytes free, enough for SIZE "
                                             f"{self.size}"))
        if self.live is None:
            lines.append(CheckLine(False, f"lvm: {origin} is not mounted, so no FILESET path can be read from its "
                                          "snapshot; mount it or set MOUNT_POINT"))
        else:
            lines.append(CheckLine(True, f"lvm: FILESET paths under {self.live} are read from the snapshot"))
        return lines

    def take(self) -> Taken:
        if self.live is None:
            raise BackupError(f"lvm volume {self.group}/{self.volume} is not mounted, so no FILESET path can be read "
                              "from its snapshot; mount it or set MOUNT_POINT")
        name = new_name(self.prefix)
        mount_dir = self.folder / name
        try:
            self._created = f"{self.group}/{name}"
            with frozen(self.live if self.freeze else None):
                run_command(["lvcreate", "--snapshot", "--size", self.size, "--name", name,
                             f"{self.group}/{self.volume}"])
            self._is_created = True
            mount_dir.mkdir(parents=True, exist_ok=True)
            self._mount_dir = mount_dir
            run_command(["mount", "-o", self.mount_options, f"/dev/{self.group}/{name}", str(mount_dir)])
            self._is_mounted = True
        except OSError as error:
            self.release()
            raise BackupError(f"cannot create the mount folder {mount_dir} ({error.strerror}); set SNAPSHOT_DIR to a "
                              "writable folder") from None
        except BaseException:
            self.release()
            raise
        return Taken(method="lvm", ids=(f"{self.group}/{name}",), mapping={self.live.resolve(): mount_dir})

    def release(self) -> list[str]:
        warnings: list[str] = []
        if self._mount_dir is not None:
            try:
                run_command(["umount", str(self._mount_dir)])
            except BackupError as error:
                if self._is_mounted:
                    # Still mounted: removing the volume would fail too. The next run unmounts and removes it.
                    return [f"could not unmount the lvm snapshot at {self._mount_dir} ({error}); the next run "
                            f"removes it, or run: umount {self._mount_dir}; lvremove -f {self._created}"]
            self._is_mounted = False
            try:
                self._mount_dir.rmdir()
            except OSError:
                pass
            self._mount_dir = None
        if self._created is not None:
            try:
                run_command(["lvremove", "-f", self._created])
            except BackupError as error:
                if self._is_created:
                    return [f"could not remove the lvm snapshot {self._created} ({error}); the next run removes it, "
                            f"or run: lvremove -f {self._created}"]
                log.debug("lvremove after a failed lvcreate: %s", error)
            self._created, self._is_created = None, False
        return warnings

    def cleanup_leftovers(self) -> list[str]:
        listing = run_command(["lvs", "--noheadings", "-o", "lv_name", self.group]).text
        removed = []
        for name in (line.strip() for line in listing.splitlines()):
            if not is_own_name(name, self.prefix):
                continue
            mount_dir = self.folder / name
            if mount_dir.is_dir():
                try:
                    run_command(["umount", str(mount_dir)])
                except BackupError:
                    pass   # not mounted any more
                try:
                    mount_dir.rmdir()
                except OSError:
                    pass
            run_command(["lvremove", "-f", f"{self.group}/{name}"])
            removed.append(f"removed the lvm snapshot {self.group}/{name} that an interrupted run left behind")
        return removed
