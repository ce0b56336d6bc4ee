"""Local-disk storage under ``<LOCAL_BACKUP>/<HOSTNAME>/``: atomic puts (temp name, fsync, rename)."""

from __future__ import annotations

import builtins
import errno
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ncbackup import platform
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import ConfigError, StorageError
from ncbackup.sources.base import CheckLine, check_writable_folder
from ncbackup.storage.base import ObjectInfo

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 4 << 20
# In-progress files carry this prefix; list() hides them and a later put of the same key replaces them.
TEMP_PREFIX = ".ncbackup-tmp-"


def check_key(key: str) -> list[str]:
    """Split a storage key into its components; StorageError for keys that could escape the base."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or "\0" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise StorageError(f"refusing storage key {key!r}: keys are relative '/'-separated names without '..'; this is a bug in the caller",
                           is_permanent=True)
    return parts


READ_WORKERS = 8


class LocalStorage:
    """A folder on a mounted filesystem; keys map to files below ``base``."""

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self.name = f"local:{self.base}"

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> LocalStorage:
        """ARGS_DICT LOCAL_BACKUP, else GENERAL LOCAL_BACKUP, then ``<HOSTNAME>/`` below it."""
        args = (section.parameters or {}).get("ARGS_DICT") or {}
        root = args.get("LOCAL_BACKUP") or general.local_backup
        if not root or not str(root).strip():
            position = section.position
            raise ConfigError(
                f"section {section.name} stores locally but no LOCAL_BACKUP folder is set; "
                "add LOCAL_BACKUP to its ARGS_DICT or to GENERAL",
                file=position.file if position else None,
                line=position.line if position else None,
                key="LOCAL_BACKUP",
            )
        return cls(Path(str(root).strip()) / general.hostname)

    def _path(self, key: str) -> Path:
        return self.base.joinpath(*check_key(key))

    def put(self, key: str, stream: BinaryIO) -> None:
        """Copy stream to a temp file next to the target, fsync it, then rename it into place."""
        target = self._path(key)
        temp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb", buffering=0) as out:
                # read() rather than readinto(): pipeline readers hand over their chunks without a copy.
                while True:
                    chunk = stream.read(COPY_CHUNK_BYTES)
                    if not chunk:
                        break
                    _write_all(out, chunk)
                os.fsync(out.fileno())
            os.replace(temp, target)
            platform.fsync_directory(target.parent)
        except OSError as error:
            _remove_quietly(temp)
            if error.errno == errno.ENOSPC:
                raise StorageError(
                    f"no space left on {self.base} writing {key}; free space there or point LOCAL_BACKUP elsewhere"
                ) from None
            if error.errno == errno.EDQUOT:
                raise StorageError(f"disk quota exceeded on {self.base} writing {key}; raise the quota or free space") from None
            raise StorageError(f"cannot write {key} under {self.base}: {error.strerror}; check the folder and its permissions") from None
        except BaseException:
            # The stream itself failed (source died, upload aborted): leave no object behind.
            _remove_quietly(temp)
            raise

    def get(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise StorageError(f"{key} does not exist under {self.base}; check the set id and file name",
                               is_permanent=True) from None
        except OSError as error:
            raise StorageError(f"cannot read {key} under {self.base}: {error.strerror}; check its permissions",
                               is_permanent=isinstance(error, PermissionError)) from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes [start, start + length) of key (fewer where it ends), read after a seek."""
        with self.get(key) as reader:
            reader.seek(start)
            return reader.read(length)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects whose key starts with prefix, in key order; temp files are never listed."""
        if not self.base.is_dir():
            return
        # Walk only the folder the prefix points into, so listing one set does not read the others.
        folder, _, _ = prefix.rpartition("/")
        start = self.base.joinpath(*check_key(folder)) if folder else self.base
        if not start.is_dir():
            return
        found: list[ObjectInfo] = []
        try:
            for directory, subdirs, files in os.walk(start, onerror=_raise):
                subdirs.sort()
                relative = Path(directory).relative_to(self.base).as_posix()
                for file_name in files:
                    if file_name.startswith(TEMP_PREFIX):
                        continue
                    key = file_name if relative == "." else f"{relative}/{file_name}"
                    if not key.startswith(prefix):
                        continue
                    try:
                        size = (Path(directory) / file_name).stat().st_size
                    except FileNotFoundError:
                        continue  # removed while we walked
                    found.append(ObjectInfo(key=key, size_bytes=size))
        except OSError as error:
            raise StorageError(f"cannot list {self.base}: {error.strerror}; check the folder and its permissions") from None
        yield from sorted(found, key=lambda info: info.key)

    def delete(self, key: str) -> None:
        """Remove key, then any folders it leaves empty up to (not including) the base."""
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise StorageError(f"cannot remove {key} under {self.base}: {error.strerror}; check its permissions") from None
        parent = path.parent
        while parent != self.base and self.base in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def host_storages(self) -> builtins.list[tuple[str, LocalStorage]]:
        """Every host folder beside the base (``<LOCAL_BACKUP>/*/``), as a storage each, sorted by name."""
        parent = self.base.parent
        try:
            names = sorted(entry.name for entry in parent.iterdir()
                           if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(TEMP_PREFIX))
        except OSError as error:
            raise StorageError(f"cannot list the host folders in {parent}: {error.strerror}; check the folder and "
                               "its permissions") from None
        return [(name, LocalStorage(parent / name)) for name in names]

    def prune_support(self) -> str | None:
        """Prune works here: list walks the folder, delete removes files."""
        return None

    def read_workers(self) -> int:
        """Reading files is thread-safe; a few at once hides the latency of a network file system."""
        return READ_WORKERS

    def check(self) -> builtins.list[CheckLine]:
        """Say whether the base folder exists (or can be created) and is writable, and how much room it has; write nothing."""
        line = check_writable_folder(self.base, "folder")
        if not line.ok:
            return [CheckLine(False, f"{line.text}; point LOCAL_BACKUP at a writable folder")]
        free_gib = platform.disk_usage(self.base).free_bytes / (1 << 30)
        return [CheckLine(True, f"{line.text}, {free_gib:.1f} GiB free")]


def _write_all(out: BinaryIO, data: bytes) -> None:
    """Write every byte: an unbuffered write may be short (a filling disk), and only the next one reports ENOSPC."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written:]


def _raise(error: OSError) -> None:
    raise error


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
