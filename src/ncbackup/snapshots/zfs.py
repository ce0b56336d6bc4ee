"""METHOD zfs: ``zfs snapshot DATASET@NAME``, read through ``<mount point>/.zfs/snapshot/NAME``, destroyed at the end.

Tested with a stand-in ``zfs`` executable only (the test machines have no ZFS module): docs/snapshots.md says so.
"""

from __future__ import annotations

import logging
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


class ZfsSnapshot:
    """A snapshot of one dataset; FILESET paths under its mount point are read from its .zfs/snapshot folder."""

    def __init__(self, name: str, *, dataset: str, live: Path | None, prefix: str, freeze: bool = False) -> None:
        self.name = name
        self.dataset, self.live, self.prefix, self.freeze = dataset, live, prefix, freeze
        self._made: str | None = None    # "dataset@name", set before zfs snapshot runs
        self._is_made = False

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> ZfsSnapshot:
        options = parse_options(LocalSnapshotOptions, section)
        dataset, live = options.source.strip(), options.mount_point
        if dataset.startswith("/"):
            # SOURCE is the mount point: the dataset is what is mounted there.
            mount = next((m for m in platform.mounts() if m.mount_point == Path(dataset).resolve() and m.fs_type == "zfs"),
                         None)
            if mount is None:
                position = section.parameter_positions.get("SOURCE") or section.position
                raise ConfigError(f"section {section.name}: {dataset} is not the mount point of a zfs dataset; give the "
                                  "dataset (tank/www) as SOURCE", file=config_path,
                                  line=position.line if position else None, key="SOURCE")
            live, dataset = live or Path(dataset), mount.device
        return cls(section.name, dataset=dataset, live=live,
                   prefix=name_prefix(general.hostname, config_path, section.name), freeze=options.freeze)

    def check(self) -> list[CheckLine]:
        lines = tools_check(["zfs"] + (["fsfreeze"] if self.freeze else []), "zfs")
        if not lines[0].ok:
            return lines
        try:
            run_command(["zfs", "list", "-H", "-o", "name", self.dataset])
        except BackupError as error:
            lines.append(CheckLine(False, f"zfs SOURCE {self.dataset} was not found ({error}); fix SOURCE"))
        else:
            lines.append(CheckLine(True, f"zfs SOURCE {self.dataset} exists"))
        return lines

    def _live_mount_point(self) -> Path:
        if self.live is not None:
            return self.live
        text = run_command(["zfs", "get", "-H", "-o", "value", "mountpoint", self.dataset]).text.strip()
        if not text.startswith("/"):
            raise BackupError(f"zfs dataset {self.dataset} is not mounted (mountpoint {text or 'none'}), so no FILESET "
                              "path can be read from its snapshot; mount it or set MOUNT_POINT")
        return Path(text)

    def take(self) -> Taken:
        live = self._live_mount_point()
        name = new_name(self.prefix)
        try:
            self._made = f"{self.dataset}@{name}"
            with frozen(live if self.freeze else None):
                run_command(["zfs", "snapshot", self._made])
            self._is_made = True
        except BaseException:
            self.release()
            raise
        return Taken(method="zfs", ids=(self._made,), mapping={live.resolve(): live / ".zfs" / "snapshot" / name})

    def release(self) -> list[str]:
        if self._made is None:
            return []
        try:
            run_command(["zfs", "destroy", self._made])
        except BackupError as error:
            if self._is_made:
                return [f"could not destroy the zfs snapshot {self._made} ({error}); the next run removes it, or run: "
                        f"zfs destroy {self._made}"]
            log.debug("zfs destroy after a failed zfs snapshot: %s", error)
        self._made, self._is_made = None, False
        return []

    def cleanup_leftovers(self) -> list[str]:
        listing = run_command(["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-d", "1", self.dataset]).text
        removed = []
        for full in (line.strip() for line in listing.splitlines()):
            dataset, _, name = full.partition("@")
            if dataset == self.dataset and is_own_name(name, self.prefix):
                run_command(["zfs", "destroy", full])
                removed.append(f"removed the zfs snapshot {full} that an interrupted run left behind")
        return removed
