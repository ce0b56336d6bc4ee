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


# --- engine: file locks, disk space, users, process groups -------------------------------------

import shutil  # noqa: E402 - kept with the functions that use it
import signal  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import IO  # noqa: E402

IS_WINDOWS = sys.platform.startswith("win")

if IS_WINDOWS:  # pragma: no cover - exercised only on Windows
    import msvcrt
else:
    import fcntl
    import grp
    import pwd


class LockHeld(Exception):
    """Another process holds the lock."""


def try_lock_file(handle: IO) -> None:
    """Take an exclusive, non-blocking OS lock on an open file; raise LockHeld if another process has it.

    The OS releases the lock when the process dies, so a crash never leaves a stale lock.
    """
    if IS_WINDOWS:  # pragma: no cover
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            raise LockHeld() from None
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        raise LockHeld() from None


def unlock_file(handle: IO) -> None:
    """Release a lock taken with try_lock_file (closing the file does it too)."""
    if IS_WINDOWS:  # pragma: no cover
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class NotOwnFile(Exception):
    """A file that must belong to the running user belongs to someone else (or is not a regular file)."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


def open_private_file(path: Path) -> IO[bytes]:
    """Open a regular file of the running user for reading and writing, created 0600 when missing.

    A symbolic link is never followed (OSError) and a file of another user is refused (NotOwnFile):
    in a shared folder either could turn our writes against someone else's file. An existing file is
    brought back to 0600.
    """
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotOwnFile("not a regular file")
        if IS_POSIX:
            if info.st_uid != os.geteuid():
                raise NotOwnFile(user_name_for_uid(info.st_uid) or str(info.st_uid))
            if stat.S_IMODE(info.st_mode) != 0o600:
                os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "r+b", buffering=0)


def is_process_alive(pid: int) -> bool:
    """True when a process with this pid exists (assumed true where that cannot be asked cheaply)."""
    if IS_WINDOWS:  # pragma: no cover
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just someone else's
    return True


@dataclass(frozen=True)
class DiskUsage:
    total_bytes: int
    free_bytes: int  # available to an unprivileged user

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 100.0


def nearest_existing(path: Path) -> Path:
    """Return path itself if it exists, else its nearest existing parent (a folder that would hold it)."""
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def disk_usage(path: Path) -> DiskUsage:
    """Return size and free space of the filesystem holding path (or its nearest existing parent)."""
    probe = nearest_existing(path)
    if IS_WINDOWS:  # pragma: no cover
        usage = shutil.disk_usage(probe)
        return DiskUsage(total_bytes=usage.total, free_bytes=usage.free)
    info = os.statvfs(probe)
    return DiskUsage(total_bytes=info.f_blocks * info.f_frsize, free_bytes=info.f_bavail * info.f_frsize)


def is_root() -> bool:
    """True when running with administrator rights (uid 0; on Windows: never assumed)."""
    if IS_WINDOWS:  # pragma: no cover
        return False
    return os.geteuid() == 0


def current_user_name() -> str:
    """The name of the user running this process."""
    if IS_WINDOWS:  # pragma: no cover
        return os.environ.get("USERNAME", "?")
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def owner_names(path: Path) -> tuple[str, str]:
    """Return (user, group) names owning path; numeric ids when the name is unknown."""
    if IS_WINDOWS:  # pragma: no cover
        return ("?", "?")
    info = Path(path).stat()
    return (user_name_for_uid(info.st_uid) or str(info.st_uid), group_name_for_gid(info.st_gid) or str(info.st_gid))


def user_name_for_uid(uid: int) -> str | None:
    """The user name for a numeric uid, or None (always None on Windows)."""
    if IS_WINDOWS:  # pragma: no cover
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def group_name_for_gid(gid: int) -> str | None:
    """The group name for a numeric gid, or None (always None on Windows)."""
    if IS_WINDOWS:  # pragma: no cover
        return None
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def is_readable_by_others(path: Path) -> bool:
    """True when users other than the owner (group or world) may read path (POSIX modes only)."""
    if IS_WINDOWS:  # pragma: no cover
        return False
    return bool(Path(path).stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))


def mode_text(path: Path) -> str:
    """A file's permission bits as chmod writes them ("0644"); "?" where POSIX modes do not apply."""
    if IS_WINDOWS:  # pragma: no cover
        return "?"
    return f"{stat.S_IMODE(Path(path).stat().st_mode):04o}"


def is_writable_by_others(path: Path) -> bool:
    """True when group or world may write path (POSIX modes only)."""
    if IS_WINDOWS:  # pragma: no cover
        return False
    return bool(Path(path).stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def new_process_group_options() -> dict:
    """Popen keyword arguments that start a child in its own process group, so it can be killed whole."""
    if IS_WINDOWS:  # pragma: no cover
        import subprocess  # noqa: S404 - only the creation flag constant

        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_process_group(pid: int) -> None:
    """Kill a child started with new_process_group_options() and everything it started."""
    _signal_process_group(pid, signal.SIGKILL if IS_POSIX else signal.SIGTERM)


def terminate_process_group(pid: int) -> None:
    """Ask a child started with new_process_group_options() and everything it started to end (SIGTERM)."""
    _signal_process_group(pid, signal.SIGTERM)


def _signal_process_group(pid: int, signal_number: int) -> None:
    if IS_WINDOWS:  # pragma: no cover - TerminateProcess: the child only, until a job object is used
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        return
    try:
        os.killpg(pid, signal_number)
    except (ProcessLookupError, PermissionError):
        pass


# --- archive: owners by name on restore ---------------------------------------------------------


def uid_for_user_name(name: str) -> int | None:
    """The numeric uid of a user name on this machine, or None (always None on Windows)."""
    if IS_WINDOWS:  # pragma: no cover
        return None
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def gid_for_group_name(name: str) -> int | None:
    """The numeric gid of a group name on this machine, or None (always None on Windows)."""
    if IS_WINDOWS:  # pragma: no cover
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def set_owner(target: int | str | Path, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
    """Give a file (a path or an open descriptor) to uid:gid; POSIX only (restores as root), a no-op on Windows."""
    if IS_WINDOWS:  # pragma: no cover - owners are not restored there
        return
    if isinstance(target, int):
        os.chown(target, uid, gid)
    else:
        os.chown(target, uid, gid, follow_symlinks=follow_symlinks)
