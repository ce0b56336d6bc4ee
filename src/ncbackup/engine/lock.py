"""Single-instance lock per config file, held by an OS file lock that dies with the process.

The lock is taken on the config file itself (opened read-only): no lock file to create, to clean
up or to go stale, and two different configs never block each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ncbackup import platform
from ncbackup.errors import ConfigError


class AlreadyRunning(Exception):
    """Another ncbackup run holds the lock on this config."""


@contextmanager
def single_instance(config_path: Path) -> Iterator[None]:
    """Hold the run lock of config_path for the block; raise AlreadyRunning if another process holds it."""
    try:
        handle = open(config_path, "rb")  # noqa: SIM115 - held open for the whole block
    except OSError as error:
        raise ConfigError(f"cannot open the config to lock it ({error.strerror}); check it exists and is readable",
                          file=config_path) from None
    try:
        try:
            platform.try_lock_file(handle)
        except platform.LockHeld:
            raise AlreadyRunning() from None
        try:
            yield
        finally:
            platform.unlock_file(handle)
    finally:
        handle.close()
