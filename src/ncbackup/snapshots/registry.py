"""METHOD name -> snapshot class; adding a method is its module plus one line here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ncbackup.errors import ConfigError
from ncbackup.snapshots.aliyun_ecs import AliyunEcsSnapshot
from ncbackup.snapshots.aws_ebs import AwsEbsSnapshot
from ncbackup.snapshots.btrfs import BtrfsSnapshot
from ncbackup.snapshots.lvm import LvmSnapshot
from ncbackup.snapshots.ucloud import UCloudImageSnapshot, UCloudUDiskSnapshot
from ncbackup.snapshots.vss import VssSnapshot
from ncbackup.snapshots.zfs import ZfsSnapshot

if TYPE_CHECKING:
    from ncbackup.config.settings import GeneralSettings, SectionSettings
    from ncbackup.snapshots.base import Snapshot, SnapshotFactory

SNAPSHOT_EXECUTE_NAME = "snapshot"

SNAPSHOTS: dict[str, type[SnapshotFactory]] = {
    "btrfs": BtrfsSnapshot,
    "lvm": LvmSnapshot,
    "zfs": ZfsSnapshot,
    "vss": VssSnapshot,
    "aws-ebs": AwsEbsSnapshot,
    "ucloud-image": UCloudImageSnapshot,
    "ucloud-udisk": UCloudUDiskSnapshot,
    "aliyun-ecs": AliyunEcsSnapshot,
}


def build_snapshot(section: SectionSettings, general: GeneralSettings, *, config_path: Path) -> Snapshot:
    """The snapshot a SNAPSHOT section describes; ConfigError naming METHOD when it is missing or unknown."""
    method = str(section.parameters.get("METHOD") or "").strip().lower()
    factory = SNAPSHOTS.get(method)
    if factory is None:
        position = section.parameter_positions.get("METHOD") or section.position
        what = f"METHOD {method!r} is unknown" if method else "METHOD is missing"
        raise ConfigError(f"section {section.name}: {what}; use one of {', '.join(sorted(SNAPSHOTS))}",
                          file=config_path, line=position.line if position else None, key="METHOD")
    return factory.from_section(section, general, config_path=config_path)
