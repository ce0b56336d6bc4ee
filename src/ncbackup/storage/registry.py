"""Storage backends by STORAGE section DESTINATION. One line per backend.

Each backend class has ``from_section(section, general) -> Storage`` reading its own ARGS_DICT keys.
"""

from __future__ import annotations

from typing import Protocol

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError
from ncbackup.storage.base import Storage
from ncbackup.storage.command import CommandStorage
from ncbackup.storage.local import LocalStorage
from ncbackup.storage.rclone import RcloneStorage
from ncbackup.storage.rsync import RsyncStorage
from ncbackup.storage.s3 import S3Storage
from ncbackup.storage.sftp import SftpStorage


class StorageBackend(Protocol):
    """A storage class as the registry holds it: built from its STORAGE section."""

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> Storage: ...


STORAGES: dict[str, type[StorageBackend]] = {
    "local": LocalStorage,
    "s3": S3Storage,
    "oss": S3Storage,           # Aliyun OSS: S3 with OSS endpoint defaults
    "sftp": SftpStorage,
    "scp": SftpStorage,
    "ssh": SftpStorage,
    "rsync": RsyncStorage,
    "custom_command": CommandStorage,
    "rclone": RcloneStorage,
}


def build_storage(section: SectionSettings, general: GeneralSettings) -> Storage:
    """The storage a STORAGE section's DESTINATION names (default "local"), built from its own options."""
    destination = str((section.parameters or {}).get("DESTINATION") or "local").strip().lower()
    factory = STORAGES.get(destination)
    if factory is None:
        position = section.parameter_positions.get("DESTINATION") or section.position
        known = ", ".join(sorted(STORAGES))
        raise ConfigError(
            f"unknown storage destination {destination!r} in section {section.name}; use one of: {known}",
            file=position.file if position else None,
            line=position.line if position else None,
            key="DESTINATION",
        )
    return factory.from_section(section, general)
