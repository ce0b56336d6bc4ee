"""Storage backends by STORAGE section DESTINATION. One line per backend.

Each backend class has ``from_section(section, general) -> Storage`` reading its own ARGS_DICT keys.
A backend's module is imported only when its DESTINATION is looked up: a restore from local storage
must not pay for boto3's, paramiko's and every backend's option models' imports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError
from ncbackup.storage.base import Storage


class StorageBackend(Protocol):
    """A storage class as the registry holds it: built from its STORAGE section."""

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> Storage: ...


def _local() -> type[StorageBackend]:
    from ncbackup.storage.local import LocalStorage
    return LocalStorage


def _s3() -> type[StorageBackend]:
    from ncbackup.storage.s3 import S3Storage
    return S3Storage


def _sftp() -> type[StorageBackend]:
    from ncbackup.storage.sftp import SftpStorage
    return SftpStorage


def _rsync() -> type[StorageBackend]:
    from ncbackup.storage.rsync import RsyncStorage
    return RsyncStorage


def _command() -> type[StorageBackend]:
    from ncbackup.storage.command import CommandStorage
    return CommandStorage


def _rclone() -> type[StorageBackend]:
    from ncbackup.storage.rclone import RcloneStorage
    return RcloneStorage


class _Backends(Mapping[str, "type[StorageBackend]"]):
    """DESTINATION -> storage class; a backend's module is imported on the first lookup of one of its names."""

    def __init__(self, loaders: dict[str, Callable[[], type[StorageBackend]]]) -> None:
        self._loaders = loaders

    def __getitem__(self, name: str) -> type[StorageBackend]:
        return self._loaders[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)


STORAGES: Mapping[str, type[StorageBackend]] = _Backends({
    "local": _local,
    "s3": _s3,
    "oss": _s3,             # Aliyun OSS: S3 with OSS endpoint defaults
    "sftp": _sftp,
    "scp": _sftp,
    "ssh": _sftp,
    "rsync": _rsync,
    "custom_command": _command,
    "rclone": _rclone,
})


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
