"""rclone storage (DESTINATION rclone, ``REMOTE: name:path``): every backend rclone supports.

Parts stream through ``rclone rcat`` into a temporary name that ``rclone moveto`` renames once the
upload is complete, so a broken stream never looks like a stored part. ``cat`` reads, ``lsjson``
lists, ``deletefile`` removes. Remote credentials stay in rclone's own config file (RCLONE_CONFIG).
"""

from __future__ import annotations

import builtins
import io
import json
import logging
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ncbackup import process
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyPath
from ncbackup.errors import BackupError, CommandFailed, StorageError
from ncbackup.sources.base import CheckLine
from ncbackup.storage.base import ObjectInfo, storage_options

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
RESTORE_PARALLEL_PARTS = 4  # parts a restore downloads at once, each by its own `rclone cat`
TEMP_MARKER = ".ncbackup-tmp-"
EXIT_DIRECTORY_NOT_FOUND, EXIT_FILE_NOT_FOUND = 3, 4


class RcloneOptions(BaseModel):
    """ARGS_DICT keys of DESTINATION rclone."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    remote: str = Field(
        alias="REMOTE", description="an rclone remote and path, `name:` or `name:folder/sub`",
    )
    prefix: str | None = Field(
        default=None, alias="PREFIX", json_schema_extra={"shown_default": "`<HOSTNAME>/`"},
        description="folder below REMOTE; `/` for none",
    )
    config_file: LegacyPath | None = Field(
        default=None, alias="RCLONE_CONFIG",
        json_schema_extra={"shown_default": "rclone's (`~/.config/rclone/rclone.conf`, or the `RCLONE_CONFIG` "
                                            "environment variable)"},
        description="rclone config file (holds the remote's credentials)",
    )
    binary: str = Field(default="rclone", alias="RCLONE_BINARY", description="the rclone program")

    @field_validator("remote")
    @classmethod
    def _is_a_remote(cls, value: str) -> str:
        value = value.strip()
        name, colon, _ = value.partition(":")
        if not colon or not name or name.startswith("-"):
            raise ValueError("REMOTE must be an rclone remote like 'mybackups:' or 'mybackups:folder/sub'")
        return value


class RcloneStorage:
    """Objects at ``<REMOTE>/<prefix><key>`` through the rclone binary."""

    def __init__(self, options: RcloneOptions, *, prefix: str, section_name: str = "STORAGE") -> None:
        self.options = options
        self.section_name = section_name
        remote = options.remote if options.remote.endswith(":") else options.remote.rstrip("/")
        if remote.endswith(":"):
            self.base = f"{remote}{prefix}"
        else:
            self.base = f"{remote}/{prefix}" if prefix else remote
        self.name = f"rclone:{self.base}"

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> RcloneStorage:
        options = storage_options(RcloneOptions, section)
        prefix = options.prefix if options.prefix is not None else general.hostname
        prefix = prefix.strip().strip("/")
        return cls(options, prefix=prefix, section_name=section.name)

    # -- helpers --------------------------------------------------------------------------------

    def _path(self, key: str = "") -> str:
        clean = posixpath.normpath(key.lstrip("/")) if key else ""
        if clean.startswith(".."):
            raise StorageError(f"refusing key {key!r}: it leaves the storage folder", is_permanent=True)
        if not clean or clean == ".":
            return self.base
        return f"{self.base}{'' if self.base.endswith(':') else '/'}{clean}"

    def _argv(self, *arguments: str) -> list[str]:
        argv = [self.options.binary]
        if self.options.config_file is not None:
            argv += ["--config", str(self.options.config_file.expanduser())]
        return [*argv, *arguments]

    def _error(self, error: BackupError, *, action: str, key: str) -> StorageError:
        text = getattr(error, "stderr_tail", "") or str(error)
        remote_name = self.options.remote.partition(":")[0]
        if "didn't find section in config file" in text or "config file not found" in text.lower():
            return StorageError(
                f"rclone has no remote named {remote_name!r}; create it with rclone config or point RCLONE_CONFIG "
                f"(ARGS_DICT of section {self.section_name}) at the config file that has it", is_permanent=True,
            )
        if isinstance(error, CommandFailed) and error.code is None and not error.timed_out:
            return StorageError(str(error))
        last = text.strip().splitlines()[-1] if text.strip() else str(error)
        return StorageError(f"rclone {action} of {self._path(key)} failed: {last}; check the remote with rclone by hand")

    # -- the four operations --------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        """rcat into a temporary name, then moveto the final name: the key appears only when complete."""
        final = self._path(key)
        folder, name = posixpath.split(key.lstrip("/"))
        temp = self._path(posixpath.join(folder, f"{TEMP_MARKER}{uuid.uuid4().hex[:12]}-{name}"))
        try:
            with process.stream_stdin(self._argv("rcat", temp)) as sink:
                while chunk := stream.read(COPY_CHUNK_BYTES):
                    sink.write(chunk)
            process.run(self._argv("moveto", temp, final))
        except BaseException as error:
            try:
                process.run(self._argv("deletefile", temp), check=False)
            except BackupError:
                pass
            if isinstance(error, BackupError):
                raise self._error(error, action="upload", key=key) from None
            raise

    def get(self, key: str) -> BinaryIO:
        """Stream the object through rclone cat; StorageError if it is missing."""
        path = self._path(key)
        try:
            listing = process.run(self._argv("lsjson", "--files-only", path), check=False)
        except BackupError as error:
            raise self._error(error, action="download", key=key) from None
        if listing.returncode in (EXIT_DIRECTORY_NOT_FOUND, EXIT_FILE_NOT_FOUND) or \
                (listing.returncode == 0 and json.loads(listing.text or "[]") == []):
            raise StorageError(f"{path} does not exist; list the sets to see what is stored", is_permanent=True)
        if listing.returncode != 0:
            raise self._error(CommandFailed(listing.argv, listing.returncode, listing.stderr.decode("utf-8", "replace")),
                              action="download", key=key)
        return io.BufferedReader(_ProcessReader(process.stream_stdout(self._argv("cat", path)), self, key),
                                 buffer_size=COPY_CHUNK_BYTES)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the files under the base whose key starts with prefix (temporary uploads skipped)."""
        try:
            completed = process.run(self._argv("lsjson", "-R", "--files-only", "--no-mimetype", self._path()),
                                    check=False)
        except BackupError as error:
            raise self._error(error, action="listing", key="") from None
        if completed.returncode == EXIT_DIRECTORY_NOT_FOUND:
            return
        if completed.returncode != 0:
            raise self._error(CommandFailed(completed.argv, completed.returncode,
                                            completed.stderr.decode("utf-8", "replace")), action="listing", key="")
        entries = json.loads(completed.text or "[]")
        found = [ObjectInfo(key=entry["Path"], size_bytes=int(entry.get("Size", 0))) for entry in entries
                 if not posixpath.basename(entry["Path"]).startswith(TEMP_MARKER)]
        for info in sorted(found, key=lambda item: item.key):
            if info.key.startswith(prefix):
                yield info

    def delete(self, key: str) -> None:
        """rclone deletefile; a missing object is not an error."""
        try:
            completed = process.run(self._argv("deletefile", self._path(key)), check=False)
        except BackupError as error:
            raise self._error(error, action="removal", key=key) from None
        if completed.returncode in (0, EXIT_DIRECTORY_NOT_FOUND, EXIT_FILE_NOT_FOUND):
            return
        stderr = completed.stderr.decode("utf-8", "replace")
        if "not found" in stderr.lower() or "doesn't exist" in stderr:
            # rclone's deletefile says "is a directory or doesn't exist" for a missing object.
            return
        raise self._error(CommandFailed(completed.argv, completed.returncode, stderr), action="removal", key=key)

    def parallel_part_reads(self) -> int:
        """A restore downloads this many parts at once, one `rclone cat` each."""
        return RESTORE_PARALLEL_PARTS

    def prune_support(self) -> str | None:
        """Prune works here: list is rclone lsjson, delete rclone deletefile."""
        return None

    def check(self) -> builtins.list[CheckLine]:
        """rclone is installed and the remote answers a listing; writes nothing."""
        if process.which(self.options.binary) is None:
            return [CheckLine(False, f"{self.options.binary} was not found; install rclone or set RCLONE_BINARY")]
        try:
            completed = process.run(self._argv("lsjson", "--max-depth", "1", self.options.remote), check=False)
        except BackupError as error:
            return [CheckLine(False, str(error))]
        if completed.returncode not in (0, EXIT_DIRECTORY_NOT_FOUND):
            failure = CommandFailed(completed.argv, completed.returncode, completed.stderr.decode("utf-8", "replace"))
            return [CheckLine(False, str(self._error(failure, action="check", key="")))]
        return [CheckLine(True, f"{self.name} reachable")]


class _ProcessReader(io.RawIOBase):
    """The stdout of a running ``rclone cat``; closing checks its exit status (or stops it early)."""

    def __init__(self, context: AbstractContextManager[IO[bytes]], storage: RcloneStorage, key: str) -> None:
        self._context = context
        self._pipe = context.__enter__()
        self._storage = storage
        self._key = key
        self._is_at_end = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        count = self._pipe.readinto(buffer)  # type: ignore[attr-defined]  # a BufferedReader; typing.IO has no readinto
        if not count:
            self._is_at_end = True
        return count or 0

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._is_at_end:
                try:
                    self._context.__exit__(None, None, None)
                except BackupError as error:
                    raise self._storage._error(error, action="download", key=self._key) from None
            else:
                stop = StorageError("download closed before its end")
                self._context.__exit__(StorageError, stop, None)  # kills rclone, swallows stop
        finally:
            super().close()
