"""The one place for POSIX-only calls; each function degrades gracefully on Windows."""

from __future__ import annotations

import os
from pathlib import Path

IS_POSIX = os.name == "posix"


def fsync_directory(path: Path) -> None:
    """Flush a directory entry (after a rename) to disk; a no-op where directories cannot be opened."""
    if not IS_POSIX:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_world_readable(path: Path) -> bool:
    """True when others may read the file (mode o+r); always False where POSIX modes do not apply."""
    if not IS_POSIX:
        return False
    return bool(Path(path).stat().st_mode & 0o004)


def fsync_directory(path: Path) -> None:
    """Flush a directory entry (after a rename) to disk; a no-op where directories cannot be opened."""
    if not IS_POSIX:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_world_readable(path: Path) -> bool:
    """True when others may read the file (mode o+r); always False where POSIX modes do not apply."""
    if not IS_POSIX:
        return False
    return bool(Path(path).stat().st_mode & 0o004)
