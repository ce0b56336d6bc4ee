"""What the local methods (btrfs, lvm, zfs) share: their PARAMETERS and where a path is mounted."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ncbackup import platform, process
from ncbackup.config.types import LegacyBool, LegacyPath
from ncbackup.sources.base import CheckLine

# One snapshot command (create, mount, remove) that takes longer than this hangs: it is killed.
COMMAND_TIMEOUT_SECONDS = 600.0


class LocalSnapshotOptions(BaseModel):
    """SNAPSHOT PARAMETERS of the local methods (docs/snapshots.md)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    method: str = Field(alias="METHOD", min_length=1, json_schema_extra={"allowed": "`btrfs`, `lvm`, `zfs` (and the "
                        "cloud methods)"}, description="how the snapshot is made")
    source: str = Field(alias="SOURCE", min_length=1,
                        description="lvm: the logical volume (`vg0/data`, `/dev/vg0/data`) or its mount point; btrfs: "
                                    "the subvolume's path; zfs: the dataset (`tank/www`) or its mount point")
    size: str | None = Field(None, alias="SIZE", json_schema_extra={"shown_default": "required for lvm"},
                             description="lvm: the snapshot's copy-on-write space, as lvcreate --size takes it (`5G`)")
    mount_options: str | None = Field(None, alias="MOUNT_OPTIONS",
                                      json_schema_extra={"shown_default": "`ro` (`ro,nouuid` for xfs)"},
                                      description="lvm: the options the snapshot is mounted with")
    mount_point: LegacyPath | None = Field(None, alias="MOUNT_POINT",
                                           json_schema_extra={"shown_default": "where SOURCE is mounted"},
                                           description="the live mount point whose files the FILESET sections after "
                                                       "this section read from the snapshot")
    snapshot_dir: LegacyPath | None = Field(None, alias="SNAPSHOT_DIR",
                                            json_schema_extra={"shown_default": "btrfs: `.ncbackup-snapshots` beside "
                                                               "SOURCE (inside it for a mount point); lvm: "
                                                               "`WORK_FOLDER/snapshots`"},
                                            description="btrfs: the folder (same file system) the snapshot is made in; "
                                                        "lvm: the folder it is mounted under")
    freeze: LegacyBool = Field(False, alias="FREEZE",
                               description="fsfreeze the live file system for the moment the snapshot is taken (always "
                                           "thawed)")


def mount_of(path: Path) -> platform.Mount | None:
    """The mounted file system path lives on (its longest mount point), or None when unknown."""
    resolved = Path(path).resolve()
    best: platform.Mount | None = None
    for mount in platform.mounts():
        if (mount.mount_point == resolved or mount.mount_point in resolved.parents) and (
                best is None or len(mount.mount_point.parts) >= len(best.mount_point.parts)):
            best = mount
    return best


def is_mount_point(path: Path) -> bool:
    resolved = Path(path).resolve()
    return any(mount.mount_point == resolved for mount in platform.mounts())


def run_command(argv: list[str]) -> process.Completed:
    return process.run(argv, timeout_seconds=COMMAND_TIMEOUT_SECONDS)


def tools_check(tools: list[str], method: str) -> list[CheckLine]:
    missing = [tool for tool in tools if process.which(tool) is None]
    if missing:
        return [CheckLine(False, f"{method} snapshot: {', '.join(missing)} not found; install "
                                 f"{'it' if len(missing) == 1 else 'them'} or add {'its' if len(missing) == 1 else 'their'}"
                                 " folder to PATH")]
    return [CheckLine(True, f"{method} snapshot: {', '.join(tools)} found")]
