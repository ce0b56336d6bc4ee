"""The one place for POSIX-only calls; each function degrades gracefully on Windows."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

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


def open_private_for_append(path: Path, *, encoding: str | None = None, errors: str | None = None) -> IO[str]:
    """Open path for appending text, creating it 0600; an existing file readable by others is made 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if IS_POSIX and os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
        return os.fdopen(descriptor, "a", encoding=encoding, errors=errors)
    except BaseException:
        os.close(descriptor)
        raise


def make_private(path: Path) -> None:
    """Make an existing file readable by its owner only (0600); a missing file or a non-POSIX system: nothing."""
    if not IS_POSIX:
        return
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


def create_private_folder(path: Path) -> None:
    """Create the folder path (its parent must exist) for its owner only (0700 on POSIX, whatever the umask)."""
    os.mkdir(path, 0o700)
    if IS_POSIX:
        os.chmod(path, 0o700)


def is_world_readable(path: Path) -> bool:
    """True when others may read the file (mode o+r); always False where POSIX modes do not apply."""
    if not IS_POSIX:
        return False
    return bool(Path(path).stat().st_mode & 0o004)


# --- engine: file locks, disk space, users, process groups -------------------------------------

import re  # noqa: E402 - kept with the functions that use it
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

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


def default_state_folder() -> Path:
    """Where local state (incremental backups) lives by default: /var/lib/ncbackup for root, else the user's state dir."""
    if IS_WINDOWS:  # pragma: no cover
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "ncbackup" / "state"
    if is_root():
        return Path("/var/lib/ncbackup")
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state") / "ncbackup"


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
        import subprocess  # noqa: TID251 - only the creation flag constant

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


# --- snapshots: mounts, and signals that stop a run ------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One mounted file system, as the kernel lists it."""

    mount_point: Path
    fs_type: str
    device: str          # e.g. /dev/mapper/vg0-data, a zfs dataset name, /dev/loop3


def _unescape_mount_field(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040).
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), text)


def mounts() -> list[Mount]:
    """The file systems mounted for this process (Linux /proc/self/mountinfo); [] where it cannot be read."""
    try:
        text = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    found: list[Mount] = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields:
            continue
        separator = fields.index("-")
        if len(fields) < separator + 3 or len(fields) < 5:
            continue
        found.append(Mount(mount_point=Path(_unescape_mount_field(fields[4])), fs_type=fields[separator + 1],
                           device=_unescape_mount_field(fields[separator + 2])))
    return found


def stop_signals() -> tuple[int, ...]:
    """The signals that ask a run to stop cleanly: SIGTERM (systemd, kill) and SIGINT (Ctrl-C)."""
    return (signal.SIGTERM, signal.SIGINT)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def install_signal_handler(number: int, handler: Callable[[int, object], None]) -> object:
    """Install handler for a signal (main thread only); return the previous handler for restore_signal_handler."""
    return signal.signal(number, handler)


def restore_signal_handler(number: int, previous: object) -> None:
    signal.signal(number, previous if previous is not None else signal.SIG_DFL)  # type: ignore[arg-type]


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


# --- archive: extraction that never follows a link ------------------------------------------------

_O_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_O_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
# Every call the descriptor walk makes relative to an open folder, or on an open file.
HAS_DESCRIPTOR_WALK = (
    IS_POSIX
    and hasattr(os, "O_NOFOLLOW")
    and hasattr(os, "O_DIRECTORY")
    and {os.open, os.mkdir, os.stat, os.symlink, os.link, os.rename, os.unlink, os.utime, os.chown} <= os.supports_dir_fd
    and {os.chmod, os.chown, os.utime, os.stat} <= os.supports_fd
    and {os.chown, os.utime, os.link} <= os.supports_follow_symlinks
)


class NotAFolder(Exception):
    """The name exists but is a symlink or a file, so it cannot be entered as a folder."""


class Folder:
    """A folder held open by descriptor: names are looked up in it alone and a symlink is never followed.

    A local user who swaps a folder for a symlink mid-restore changes nothing for a Folder already open,
    and a walk with ``child`` refuses the link instead of following it.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def child(self, name: bytes, *, create_mode: int | None = None) -> Folder:
        """Open the folder name inside this one (created with create_mode when missing and asked); NotAFolder for a link or file."""
        try:
            return Folder(os.open(name, _O_FOLDER, dir_fd=self.fd))
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotAFolder(name) from None
            if error.errno != errno.ENOENT or create_mode is None:
                raise
        try:
            os.mkdir(name, create_mode, dir_fd=self.fd)
        except FileExistsError:
            pass  # made by someone else in between: opened (and checked) below all the same
        return self.child(name)

    def identity(self) -> tuple[int, int]:
        """(device, inode) of this folder, to see later whether a name still leads to it."""
        info = os.stat(self.fd)
        return info.st_dev, info.st_ino

    def lstat(self, name: bytes) -> os.stat_result:
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def make_folder(self, name: bytes, mode: int) -> None:
        os.mkdir(name, mode, dir_fd=self.fd)

    def create_file(self, name: bytes, mode: int) -> int:
        """Create name exclusively (FileExistsError for anything there, a symlink too) and return it open for writing."""
        return os.open(name, _O_NEW_FILE, mode, dir_fd=self.fd)

    def finish_file(self, fd: int, name: bytes, *, owner: tuple[int, int] | None, mode: int, mtime_ns: int) -> None:
        """Give the file open as fd (called name here) its owner, mode and mtime, and close fd in every case."""
        try:
            if owner is not None:
                os.chown(fd, *owner)  # before chmod: a chown clears the setuid and setgid bits
            os.chmod(fd, mode)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)

    def replace(self, old: bytes, new: bytes) -> None:
        """Rename old to new inside this folder, replacing a file or symlink called new."""
        os.replace(old, new, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def remove(self, name: bytes) -> None:
        os.unlink(name, dir_fd=self.fd)

    def symlink(self, text: bytes, name: bytes) -> None:
        os.symlink(text, name, dir_fd=self.fd)

    def hard_link(self, source: Folder, source_name: bytes, name: bytes) -> None:
        """Make name a second name of source's entry source_name; a symlink there is linked itself, never followed."""
        os.link(source_name, name, src_dir_fd=source.fd, dst_dir_fd=self.fd, follow_symlinks=False)

    def set_link_metadata(self, name: bytes, *, owner: tuple[int, int] | None, mtime_ns: int) -> None:
        """Owner and mtime of the symlink name itself (its target is never touched)."""
        if owner is not None:
            os.chown(name, *owner, dir_fd=self.fd, follow_symlinks=False)
        os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=self.fd, follow_symlinks=False)

    def set_metadata(self, *, owner: tuple[int, int] | None, mode: int, mtime_ns: int) -> None:
        """Owner, mode and mtime of this folder itself, through its descriptor."""
        if owner is not None:
            os.chown(self.fd, *owner)
        os.chmod(self.fd, mode)
        os.utime(self.fd, ns=(mtime_ns, mtime_ns))

    def close(self) -> None:
        os.close(self.fd)


class _PathFolder(Folder):  # pragma: no cover - used only where the descriptor calls are missing (Windows)
    """The same calls by path, each name checked with lstat first: a race can beat these checks."""

    __slots__ = ("path",)

    def __init__(self, path: bytes) -> None:
        super().__init__(-1)
        self.path = path

    def _full(self, name: bytes) -> bytes:
        return os.path.join(self.path, name)

    def child(self, name: bytes, *, create_mode: int | None = None) -> Folder:
        full = self._full(name)
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            if create_mode is None:
                raise
            try:
                os.mkdir(full, create_mode)
            except FileExistsError:
                pass
            info = os.lstat(full)
        if not stat.S_ISDIR(info.st_mode):
            raise NotAFolder(name)
        return _PathFolder(full)

    def identity(self) -> tuple[int, int]:
        info = os.lstat(self.path)
        return info.st_dev, info.st_ino

    def lstat(self, name: bytes) -> os.stat_result:
        return os.lstat(self._full(name))

    def make_folder(self, name: bytes, mode: int) -> None:
        os.mkdir(self._full(name), mode)

    def create_file(self, name: bytes, mode: int) -> int:
        return os.open(self._full(name), _O_NEW_FILE, mode)

    def finish_file(self, fd: int, name: bytes, *, owner: tuple[int, int] | None, mode: int, mtime_ns: int) -> None:
        os.close(fd)  # first: closing a file there can change its mtime
        os.chmod(self._full(name), mode)
        os.utime(self._full(name), ns=(mtime_ns, mtime_ns))

    def replace(self, old: bytes, new: bytes) -> None:
        os.replace(self._full(old), self._full(new))

    def remove(self, name: bytes) -> None:
        os.unlink(self._full(name))

    def symlink(self, text: bytes, name: bytes) -> None:
        os.symlink(text, self._full(name))

    def hard_link(self, source: Folder, source_name: bytes, name: bytes) -> None:
        if not isinstance(source, _PathFolder):
            raise TypeError("a hard link needs its source folder opened the same way")
        os.link(source._full(source_name), self._full(name))

    def set_link_metadata(self, name: bytes, *, owner: tuple[int, int] | None, mtime_ns: int) -> None:
        if os.utime in os.supports_follow_symlinks:
            os.utime(self._full(name), ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    def set_metadata(self, *, owner: tuple[int, int] | None, mode: int, mtime_ns: int) -> None:
        os.chmod(self.path, mode)
        os.utime(self.path, ns=(mtime_ns, mtime_ns))

    def close(self) -> None:
        pass


def open_folder(path: bytes) -> Folder:
    """Open an existing folder to extract into; a symlink in path itself is followed (whoever chose the path chose it)."""
    if not HAS_DESCRIPTOR_WALK:  # pragma: no cover - Windows
        if not os.path.isdir(path):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        return _PathFolder(os.path.abspath(path))
    return Folder(os.open(path, os.O_RDONLY | os.O_DIRECTORY))
