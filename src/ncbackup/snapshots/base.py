"""What a snapshot method is: take -> (path mapping, ids) -> release, always released.

Local methods (lvm, btrfs, zfs) map a live mount point to where its snapshot is readable, so the
FILESET sections after the SNAPSHOT section read from the snapshot while archive members keep the
live paths. Cloud methods (ucloud-image, ucloud-udisk, aws-ebs, aliyun-ecs) map nothing: they record
the snapshot ids they made, and rotate (keep the N newest that ncbackup made, never others).

Every snapshot ncbackup makes carries a recognisable name (``ncbackup-<host>-<config tag>-<UTC time>``
or a tag with the same facts) so that ``cleanup_leftovers`` can find what a killed run left behind,
and only that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings
    from ncbackup.sources.base import CheckLine


@dataclass(frozen=True)
class Taken:
    """What take() made."""

    method: str                                   # "btrfs", "aws-ebs", ...
    ids: tuple[str, ...]                          # snapshot ids / names, for the run result, report and manifest
    mapping: dict[Path, Path] = field(default_factory=dict)   # live mount point -> snapshot's readable path
    notes: tuple[str, ...] = ()                   # e.g. "waited 42 s for snap-0abc to complete"


class Snapshot(Protocol):
    name: str                                     # the SNAPSHOT section's name

    def check(self) -> list[CheckLine]:
        """What ``ncbackup check`` can verify without creating anything (tools, free space, the volume exists)."""
        ...

    def take(self) -> Taken:
        """Create (and mount, or wait for) the snapshot; BackupError, one sentence, when it cannot. On failure
        halfway, whatever was created is released before raising."""
        ...

    def release(self) -> list[str]:
        """Unmount and remove what take() made (local), or rotate (cloud); idempotent, safe after a failed take;
        returns warnings (never raises for a snapshot that is already gone)."""
        ...

    def cleanup_leftovers(self) -> list[str]:
        """Find and remove snapshots of this section left by a run that was killed (SIGKILL), by their name;
        returns one line per snapshot removed. Never touches a snapshot ncbackup did not make."""
        ...


class SnapshotFactory(Protocol):
    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> Snapshot:
        """Build from the SNAPSHOT section's PARAMETERS; ConfigError naming the key when invalid."""
        ...
