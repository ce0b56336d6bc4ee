"""Single-instance lock: ``<WORK_FOLDER>/ncbackup.lock``, held by an OS file lock that dies with the process.

The lock file is ncbackup's own (mode 0600, owned by the running user; never the config, which others
may read) and records the holder's pid and start time, so a second run can say who holds it and
since when. Only the OS lock counts, not the file's presence: a crash or ``kill -9`` never leaves a
stale lock, the file simply stays and is reused. Runs sharing a WORK_FOLDER share its scratch
folders, so they run one at a time.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ncbackup import platform
from ncbackup.errors import ConfigError

LOCK_FILE_NAME = "ncbackup.lock"
HOLDER_MAX_BYTES = 4096


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as its lock file says; fields are None when it does not say (yet)."""

    pid: int | None = None
    start: datetime | None = None
    config: str | None = None

    def held_seconds(self, now: datetime) -> float | None:
        return (now - self.start).total_seconds() if self.start else None

    def describe(self) -> str:
        """E.g. "pid 4242, running since 2026-11-26T03:00:00+00:00"."""
        parts = [f"pid {self.pid}" if self.pid else "pid unknown"]
        if self.start:
            parts.append(f"running since {self.start.isoformat(timespec='seconds')}")
        if self.config:
            parts.append(f"config {self.config}")
        return ", ".join(parts)


class AlreadyRunning(Exception):
    """Another ncbackup run holds the lock."""

    def __init__(self, lock_path: Path, holder: LockHolder) -> None:
        super().__init__(f"{lock_path} is held ({holder.describe()})")
        self.lock_path = lock_path
        self.holder = holder


def lock_file_path(work_folder: Path) -> Path:
    """Where the run lock of a config with this WORK_FOLDER lives."""
    return Path(work_folder) / LOCK_FILE_NAME


def _read_holder(handle: IO[bytes]) -> LockHolder:
    try:
        handle.seek(0)
        record = json.loads(handle.read(HOLDER_MAX_BYTES).decode("utf-8"))
        pid, start = int(record["pid"]), datetime.fromisoformat(record["start"])
        config = str(record["config"]) if record.get("config") else None
    except (OSError, ValueError, KeyError, TypeError):
        # Empty (taken a moment ago, not yet written) or unreadable (Windows locks the bytes).
        return LockHolder()
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if not platform.is_process_alive(pid):
        # Left by a crashed run; the process that has just taken the lock has not written itself yet.
        return LockHolder()
    return LockHolder(pid=pid, start=start, config=config)


def _write_holder(handle: IO[bytes], holder: LockHolder) -> None:
    record = {"pid": holder.pid, "start": holder.start.isoformat() if holder.start else None, "config": holder.config}
    handle.seek(0)
    handle.truncate()
    handle.write((json.dumps(record) + "\n").encode("utf-8"))


def _open(lock_path: Path, config: Path | None) -> IO[bytes]:
    try:
        return platform.open_private_file(lock_path)
    except platform.NotOwnFile as foreign:
        raise ConfigError(
            f"the run lock file {lock_path} belongs to {foreign.owner}, not to {platform.current_user_name()} "
            "who runs ncbackup; remove it, or give each user its own WORK_FOLDER", file=config, key="WORK_FOLDER",
        ) from None
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
        raise ConfigError(
            f"cannot open the run lock file {lock_path} ({reason}); remove it or fix the permissions of WORK_FOLDER",
            file=config, key="WORK_FOLDER",
        ) from None


@contextmanager
def single_instance(lock_path: Path, *, config: Path | str | None = None) -> Iterator[LockHolder]:
    """Hold the run lock at lock_path for the block; raise AlreadyRunning (saying who holds it) if another process does."""
    handle = _open(Path(lock_path), Path(config) if config else None)
    try:
        try:
            platform.try_lock_file(handle)
        except platform.LockHeld:
            raise AlreadyRunning(Path(lock_path), _read_holder(handle)) from None
        me = LockHolder(pid=os.getpid(), start=datetime.now(timezone.utc), config=str(config) if config else None)
        try:
            _write_holder(handle, me)
        except OSError:
            pass  # who holds the lock is information; the lock itself is taken
        try:
            yield me
        finally:
            try:
                handle.seek(0)
                handle.truncate()
            except OSError:
                pass
            platform.unlock_file(handle)
    finally:
        handle.close()
