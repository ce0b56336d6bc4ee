"""FREEZE: ``fsfreeze`` a file system for the moment a snapshot is taken, and always thaw it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ncbackup import process
from ncbackup.errors import BackupError, CommandFailed

log = logging.getLogger(__name__)

FREEZE_TIMEOUT_SECONDS = 60.0


@contextmanager
def frozen(mount_point: Path | None) -> Iterator[None]:
    """Freeze mount_point (None: nothing) while the block runs; thaw it however the block ends."""
    if mount_point is None:
        yield
        return
    is_frozen = False
    try:
        process.run(["fsfreeze", "--freeze", str(mount_point)], timeout_seconds=FREEZE_TIMEOUT_SECONDS)
        is_frozen = True
        yield
    finally:
        _thaw(mount_point, is_frozen=is_frozen)


def _thaw(mount_point: Path, *, is_frozen: bool) -> None:
    try:
        process.run(["fsfreeze", "--unfreeze", str(mount_point)], timeout_seconds=FREEZE_TIMEOUT_SECONDS)
    except CommandFailed as error:
        if not is_frozen:
            # The freeze itself failed or was interrupted: the file system was most likely never frozen.
            log.debug("thaw of %s after a failed freeze: %s", mount_point, error)
            return
        raise BackupError(f"could not thaw {mount_point} after the snapshot ({error}); writes to it hang until "
                          f"you run: fsfreeze --unfreeze {mount_point}") from None
