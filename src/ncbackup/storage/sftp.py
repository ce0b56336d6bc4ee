"""SFTP storage (DESTINATION sftp, scp, ssh) via paramiko: key auth, known_hosts checked, atomic puts.

A part is streamed into a temporary name next to its final place and renamed once complete, so an
interrupted upload never looks like a stored part. REMOTE_DIR must exist; the ``<prefix>/<set-id>``
folders below it are created as needed.
"""

from __future__ import annotations

import builtins
import copy
import errno
import getpass
import io
import logging
import os
import posixpath
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.config.types import LegacyBool, LegacyFloat, LegacyInt, LegacyPath
from ncbackup.errors import ConfigError, StorageError
from ncbackup.extras import import_extra
from ncbackup.sources.base import CheckLine
from ncbackup.storage.base import ObjectInfo, storage_options

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from paramiko import PKey, SFTPClient, SFTPFile, SSHClient

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
TEMP_MARKER = ".ncbackup-tmp-"


class SshOptions(BaseModel):
    """ARGS_DICT keys shared by the SSH family (sftp/scp/ssh and rsync)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    remote_host: str = Field(alias="REMOTE_HOST", min_length=1, description="host name or address")
    port: LegacyInt = Field(default=22, alias="PORT", ge=1, le=65535, description="SSH port")
    remote_user: str | None = Field(
        default=None, alias="REMOTE_USER", json_schema_extra={"shown_default": "the local user"}, description="login",
    )
    remote_dir: str = Field(
        default=".", alias="REMOTE_DIR", json_schema_extra={"shown_default": "the login folder"},
        description="folder on the server; **must exist** (a typo must not write elsewhere)",
    )
    prefix: str | None = Field(
        default=None, alias="PREFIX", json_schema_extra={"shown_default": "`<HOSTNAME>`"},
        description="folder below REMOTE_DIR; `/` for none",
    )
    identity_file: LegacyPath | None = Field(
        default=None, alias="IDENTITY_FILE", json_schema_extra={"shown_default": "ssh-agent and `~/.ssh/id_*`"},
        description="private key file (without passphrase)",
    )
    known_hosts: LegacyPath = Field(
        default=Path("~/.ssh/known_hosts"), alias="KNOWN_HOSTS",
        description="known_hosts file checked for the server's host key",
    )
    is_trust_on_first_use: LegacyBool = Field(
        default=False, alias="TRUST_ON_FIRST_USE",
        description="accept an unknown host key once and record it in KNOWN_HOSTS (0600); a *changed* key is "
                    "always refused",
    )
    connect_timeout_seconds: LegacyFloat = Field(
        default=30, alias="CONNECT_TIMEOUT", gt=0, description="seconds to wait for the connection",
    )

    @field_validator("remote_host")
    @classmethod
    def _no_user_or_options(cls, value: str) -> str:
        if value.startswith("-") or any(c.isspace() for c in value):
            raise ValueError("REMOTE_HOST must be a host name or address (no spaces, not starting with '-')")
        return value

    @property
    def user(self) -> str:
        return self.remote_user or getpass.getuser()

    @property
    def known_hosts_path(self) -> Path:
        return self.known_hosts.expanduser()


def ssh_options_from_section(section: SectionSettings, general: GeneralSettings) -> tuple[SshOptions, str]:
    """Parse the SSH family's ARGS_DICT; return the options and the remote base folder."""
    options = storage_options(SshOptions, section)
    if options.identity_file is not None and not options.identity_file.expanduser().is_file():
        raise ConfigError(
            f"IDENTITY_FILE {options.identity_file} does not exist; create the key (ssh-keygen) or fix the path",
            key="ARGS_DICT.IDENTITY_FILE",
        )
    prefix = (options.prefix if options.prefix is not None else general.hostname).strip().strip("/")
    base = posixpath.join(options.remote_dir.rstrip("/") or "/", prefix) if prefix else options.remote_dir
    return options, posixpath.normpath(base)


def _append_private_line(path: Path, line: str) -> None:
    """Append line to path, creating it 0600 (and its folder 0700) when missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        handle.write(line)


class _RecordingPolicy:
    """Trust on first use: accept an unknown host key and append it to KNOWN_HOSTS (never a changed one)."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: SSHClient, hostname: str, key: PKey) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        _append_private_line(self.known_hosts, line)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("trusting the new host key of %s (%s) and recording it in %s", hostname, key.get_name(), self.known_hosts)


class SftpStorage:
    """A remote folder over SFTP; keys ``<set-id>/<file>`` live at ``<REMOTE_DIR>/<prefix>/<key>``."""

    def __init__(self, options: SshOptions, *, base_dir: str, section_name: str = "STORAGE") -> None:
        self.options = options
        self.base_dir = base_dir
        self.section_name = section_name
        self.where = f"{options.user}@{options.remote_host}:{options.port}"
        self.name = f"sftp://{options.user}@{options.remote_host}:{options.port}{'' if base_dir.startswith('/') else '/~/'}{base_dir}"
        self._client: SSHClient | None = None
        self._sftp: SFTPClient | None = None
        self._lock = threading.RLock()
        # Fail when the config is read (check, run), not at the first upload, when paramiko is missing.
        import_extra("paramiko", needed_by=f"section {section_name} uses SFTP storage")

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> SftpStorage:
        options, base_dir = ssh_options_from_section(section, general)
        return cls(options, base_dir=base_dir, section_name=section.name)

    # -- connection -----------------------------------------------------------------------------

    def _connect(self) -> SFTPClient:
        import paramiko

        if self._sftp is not None:
            transport = self._client.get_transport() if self._client is not None else None
            if transport is not None and transport.is_active():
                return self._sftp
            # The connection dropped since the last operation (server restart, idle timeout): reconnect.
            self.close()
        options = self.options
        client = paramiko.SSHClient()
        known_hosts = options.known_hosts_path
        try:
            if known_hosts.is_file():
                client.load_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as error:
            raise ConfigError(f"KNOWN_HOSTS {known_hosts} cannot be read ({error}); fix or remove it",
                              key="ARGS_DICT.KNOWN_HOSTS") from None
        if options.is_trust_on_first_use:
            # Duck-typed (paramiko is imported only when connecting); paramiko calls missing_host_key.
            client.set_missing_host_key_policy(_RecordingPolicy(known_hosts))  # type: ignore[arg-type]
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        # IDENTITY_FILE: that key alone; otherwise the agent and the default keys.
        key_filename = str(options.identity_file.expanduser()) if options.identity_file is not None else None
        try:
            client.connect(
                options.remote_host, port=options.port, username=options.user,
                timeout=options.connect_timeout_seconds, banner_timeout=options.connect_timeout_seconds,
                auth_timeout=options.connect_timeout_seconds, key_filename=key_filename,
                allow_agent=key_filename is None, look_for_keys=key_filename is None,
            )
            sftp = self._sftp = client.open_sftp()
        except paramiko.BadHostKeyException:
            client.close()
            raise StorageError(
                f"the host key of {options.remote_host}:{options.port} does not match the one in {known_hosts} "
                "(a man-in-the-middle, or a reinstalled server); if the change is expected, remove the old "
                f"entry with ssh-keygen -R '[{options.remote_host}]:{options.port}' -f {known_hosts}",
                is_permanent=True,
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            key = options.identity_file or "the default keys / ssh-agent"
            raise StorageError(
                f"{self.where} refused the SSH key {key} for user {options.user!r}; add its public key to that "
                "user's authorized_keys or fix REMOTE_USER / IDENTITY_FILE", is_permanent=True,
            ) from None
        except paramiko.SSHException as error:
            client.close()
            if "not found in known_hosts" in str(error):
                raise StorageError(
                    f"the host key of {options.remote_host}:{options.port} is not in {known_hosts}; add it "
                    f"(ssh-keyscan -p {options.port} {options.remote_host} >> {known_hosts}, after checking "
                    "its fingerprint) or set TRUST_ON_FIRST_USE", is_permanent=True,
                ) from None
            raise StorageError(f"SSH connection to {self.where} failed: {error}; check the server and PORT") from None
        except (OSError, EOFError) as error:
            client.close()
            raise StorageError(
                f"cannot reach {options.remote_host}:{options.port} over SSH ({error.__class__.__name__}: {error}); "
                "check REMOTE_HOST, PORT and the network"
            ) from None
        except ValueError as error:  # an unreadable or encrypted key file
            client.close()
            raise ConfigError(f"IDENTITY_FILE {options.identity_file} cannot be used: {error}",
                              key="ARGS_DICT.IDENTITY_FILE") from None
        self._client = client
        return sftp

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = self._sftp = None

    def _path(self, key: str) -> str:
        clean = posixpath.normpath(key.lstrip("/"))
        if clean.startswith("..") or clean == ".":
            raise StorageError(f"refusing key {key!r}: it leaves the storage folder", is_permanent=True)
        return posixpath.join(self.base_dir, clean)

    def _io_error(self, error: OSError, *, action: str, path: str) -> StorageError:
        code = getattr(error, "errno", None)
        if isinstance(error, PermissionError) or code == errno.EACCES:
            return StorageError(
                f"permission denied for {action} of {path} on {self.where}; give user {self.options.user!r} "
                "write access to REMOTE_DIR or choose another REMOTE_DIR", is_permanent=True,
            )
        if isinstance(error, FileNotFoundError) or code == errno.ENOENT:
            return StorageError(f"{path} does not exist on {self.where}; check REMOTE_DIR", is_permanent=True)
        return StorageError(
            f"{self.where} failed the {action} of {path} ({error}); the remote disk may be full or over quota: "
            "free space there or choose another REMOTE_DIR"
        )

    def _ensure_dirs(self, sftp: SFTPClient, folder: str) -> None:
        """Create folder's missing parts below REMOTE_DIR; REMOTE_DIR itself must exist."""
        remote_dir = posixpath.normpath(self.options.remote_dir)
        try:
            mode = sftp.stat(remote_dir).st_mode  # None when the server does not report it
            if mode is not None and not stat.S_ISDIR(mode):
                raise StorageError(f"REMOTE_DIR {remote_dir} on {self.where} is not a folder; fix REMOTE_DIR",
                                   is_permanent=True)
        except FileNotFoundError:
            raise StorageError(
                f"REMOTE_DIR {remote_dir} does not exist on {self.where}; create it or fix REMOTE_DIR "
                f"in section {self.section_name}", is_permanent=True,
            ) from None
        relative = posixpath.relpath(folder, remote_dir)
        current = remote_dir
        for part in [] if relative == "." else relative.split("/"):
            current = posixpath.join(current, part)
            try:
                sftp.stat(current)
            except FileNotFoundError:
                try:
                    sftp.mkdir(current)
                except OSError as error:
                    # A concurrent writer may have created it meanwhile.
                    try:
                        sftp.stat(current)
                    except OSError:
                        raise self._io_error(error, action="folder creation", path=current) from None

    # -- the four operations --------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        """Stream into a temporary name, then rename over key: the part appears only when complete."""
        path = self._path(key)
        folder, name = posixpath.split(path)
        temp = posixpath.join(folder, f"{TEMP_MARKER}{uuid.uuid4().hex[:12]}-{name}")
        with self._lock:
            sftp = self._connect()
            self._ensure_dirs(sftp, folder)
            try:
                written_bytes = 0
                with sftp.open(temp, "wb") as remote:
                    remote.set_pipelined(True)
                    while chunk := stream.read(COPY_CHUNK_BYTES):
                        remote.write(chunk)
                        written_bytes += len(chunk)
                # paramiko drops the status of pipelined writes (a full disk answers each write with
                # a failure nobody reads), so the stored size is what proves the part is whole.
                stored_bytes = sftp.stat(temp).st_size
                if stored_bytes != written_bytes:
                    raise StorageError(
                        f"{self.where} stored only {stored_bytes} of {written_bytes} bytes of {path}; the remote "
                        "disk may be full or over quota: free space there or choose another REMOTE_DIR"
                    )
                self._rename(sftp, temp, path)
            except BaseException as error:
                self._remove_quietly(sftp, temp)
                if isinstance(error, OSError):
                    raise self._io_error(error, action="upload", path=path) from None
                if isinstance(error, EOFError):
                    raise StorageError(f"the SSH connection to {self.where} broke during the upload of {path}; retry") from None
                raise

    def _rename(self, sftp: SFTPClient, temp: str, path: str) -> None:
        try:
            sftp.posix_rename(temp, path)  # atomic replace (OpenSSH extension)
        except OSError:
            # Servers without posix-rename: plain SFTP rename refuses to overwrite.
            self._remove_quietly(sftp, path)
            sftp.rename(temp, path)

    @staticmethod
    def _remove_quietly(sftp: SFTPClient, path: str) -> None:
        try:
            sftp.remove(path)
        except (OSError, EOFError):
            pass

    def get(self, key: str) -> BinaryIO:
        """Return a readable remote file; StorageError if missing."""
        path = self._path(key)
        with self._lock:
            sftp = self._connect()
            try:
                remote = sftp.open(path, "rb")
                remote.prefetch()
            except OSError as error:
                raise self._io_error(error, action="download", path=path) from None
        return io.BufferedReader(_RemoteReader(remote, self, path), buffer_size=COPY_CHUNK_BYTES)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes [start, start + length) of key (fewer where it ends), read after a seek on the remote file."""
        path = self._path(key)
        with self._lock:
            sftp = self._connect()
            try:
                with sftp.open(path, "rb") as remote:
                    remote.seek(start)
                    pieces: list[bytes] = []
                    remaining = length
                    while remaining > 0:
                        piece = remote.read(min(remaining, COPY_CHUNK_BYTES))
                        if not piece:
                            break
                        pieces.append(piece)
                        remaining -= len(piece)
                    return b"".join(pieces)
            except OSError as error:
                raise self._io_error(error, action="download", path=path) from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield stored files under the base folder whose key starts with prefix (temp files skipped)."""
        with self._lock:
            sftp = self._connect()
            found = sorted(self._walk(sftp, self.base_dir, ""))
        for key, size in found:
            if key.startswith(prefix):
                yield ObjectInfo(key=key, size_bytes=size)

    def _walk(self, sftp: SFTPClient, folder: str, relative: str) -> Iterator[tuple[str, int]]:
        try:
            entries = sftp.listdir_attr(folder)
        except FileNotFoundError:
            return
        except OSError as error:
            raise self._io_error(error, action="listing", path=folder) from None
        for entry in entries:
            key = f"{relative}{entry.filename}"
            if stat.S_ISDIR(entry.st_mode or 0):
                yield from self._walk(sftp, posixpath.join(folder, entry.filename), f"{key}/")
            elif not entry.filename.startswith(TEMP_MARKER):
                yield key, int(entry.st_size or 0)

    def host_storages(self) -> builtins.list[tuple[str, SftpStorage]] | None:
        """Every host folder beside the base folder (``<REMOTE_DIR>/*/``), as storages sharing this one's
        connection; None when the base is REMOTE_DIR itself (PREFIX empty: no host folders)."""
        parent = posixpath.dirname(self.base_dir.rstrip("/"))
        if posixpath.normpath(self.base_dir) == posixpath.normpath(self.options.remote_dir) or not parent:
            return None
        with self._lock:
            sftp = self._connect()
            try:
                entries = sftp.listdir_attr(parent)
            except OSError as error:
                raise self._io_error(error, action="listing", path=parent) from None
        names = sorted(entry.filename for entry in entries
                       if stat.S_ISDIR(entry.st_mode or 0) and not entry.filename.startswith(TEMP_MARKER))
        return [(name, self._sibling(posixpath.join(parent, name))) for name in names]

    def _sibling(self, base_dir: str) -> SftpStorage:
        sibling = copy.copy(self)   # same connection and lock
        sibling.base_dir = base_dir
        sibling.name = (f"sftp://{self.options.user}@{self.options.remote_host}:{self.options.port}"
                        f"{'' if base_dir.startswith('/') else '/~/'}{base_dir}")
        return sibling

    def delete(self, key: str) -> None:
        """Remove key (missing is fine) and its set folder once empty."""
        path = self._path(key)
        with self._lock:
            sftp = self._connect()
            try:
                sftp.remove(path)
            except FileNotFoundError:
                return
            except OSError as error:
                raise self._io_error(error, action="removal", path=path) from None
            folder = posixpath.dirname(path)
            if folder != self.base_dir:
                try:
                    sftp.rmdir(folder)  # fails while other parts remain: fine
                except OSError:
                    pass

    def prune_support(self) -> str | None:
        """Prune works here: list walks the remote folder over SFTP, delete removes files."""
        return None

    def check(self) -> builtins.list[CheckLine]:
        """Connect, authenticate, check the host key and that REMOTE_DIR exists; writes nothing."""
        try:
            with self._lock:
                sftp = self._connect()
                remote_dir = posixpath.normpath(self.options.remote_dir)
                try:
                    sftp.stat(remote_dir)
                except FileNotFoundError:
                    return [CheckLine(False, f"REMOTE_DIR {remote_dir} does not exist on {self.where}; create it")]
        except (StorageError, ConfigError) as error:
            return [CheckLine(False, str(error))]
        return [CheckLine(True, f"{self.name} reachable, host key verified")]


class _RemoteReader(io.RawIOBase):
    """A remote SFTP file as a raw stream whose connection errors are StorageErrors."""

    def __init__(self, remote: SFTPFile, storage: SftpStorage, path: str) -> None:
        self._remote = remote
        self._storage = storage
        self._path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        import paramiko

        target = memoryview(buffer)
        try:
            data = self._remote.read(len(target))
        except OSError as error:
            raise self._storage._io_error(error, action="download", path=self._path) from None
        except (EOFError, paramiko.SSHException):
            raise StorageError(
                f"the SSH connection to {self._storage.where} broke while reading {self._path}; retry"
            ) from None
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._remote.close()
        except (OSError, EOFError):
            pass
        finally:
            super().close()
