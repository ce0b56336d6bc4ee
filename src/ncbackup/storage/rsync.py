"""rsync over ssh (DESTINATION rsync), through the rsync and ssh binaries with argument lists.

rsync cannot read a pipe, so each part is staged as a file in WORK_FOLDER, sent, and removed at once:
staging never holds more than one part. rsync writes into a temporary name on the server and renames
it when complete, so an interrupted transfer leaves no part. The host key is checked against
KNOWN_HOSTS (StrictHostKeyChecking=yes, or accept-new with TRUST_ON_FIRST_USE).
"""

from __future__ import annotations

import builtins
import io
import logging
import posixpath
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ncbackup import process
from ncbackup.config.settings import GeneralSettings, SectionSettings
from ncbackup.errors import CommandFailed, ConfigError, StorageError
from ncbackup.sources.base import CheckLine
from ncbackup.storage.base import ObjectInfo
from ncbackup.storage.sftp import SshOptions, ssh_options_from_section

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
IO_TIMEOUT_SECONDS = 600
_LIST_LINE = re.compile(r"^(?P<mode>[-dlpscb][-rwxsStT]{9})\s+(?P<size>[\d,.]+)\s+\S+\s+\S+\s+(?P<name>.+)$")


def _filter_literal(name: str) -> str:
    """Escape rsync filter wildcards so a name matches only itself."""
    return re.sub(r"([\\*?\[])", r"\\\1", name)


class RsyncStorage:
    """A remote folder written by rsync over ssh; keys live at ``<REMOTE_DIR>/<prefix>/<key>``."""

    def __init__(self, options: SshOptions, *, base_dir: str, work_folder: Path, section_name: str = "STORAGE") -> None:
        self.options = options
        self.base_dir = base_dir
        self.remote_dir = posixpath.normpath(options.remote_dir)
        self.prefix = posixpath.relpath(base_dir, self.remote_dir)
        self.work_folder = work_folder
        self.section_name = section_name
        self.where = f"{options.user}@{options.remote_host}:{options.port}"
        self.name = f"rsync://{options.user}@{options.remote_host}:{options.port}/{base_dir.lstrip('/')}"

    @classmethod
    def from_section(cls, section: SectionSettings, general: GeneralSettings) -> RsyncStorage:
        options, base_dir = ssh_options_from_section(section, general)
        return cls(options, base_dir=base_dir, work_folder=Path(general.work_folder), section_name=section.name)

    # -- command lines --------------------------------------------------------------------------

    def _ssh_command(self) -> str:
        """The -e value; rsync splits it on blanks honouring quotes (it is never given to a shell)."""
        options = self.options
        words = ["ssh", "-p", str(options.port), "-o", "BatchMode=yes",
                 "-o", f"StrictHostKeyChecking={'accept-new' if options.is_trust_on_first_use else 'yes'}",
                 "-o", f"UserKnownHostsFile={options.known_hosts_path}",
                 "-o", f"ConnectTimeout={int(options.connect_timeout_seconds)}"]
        if options.identity_file is not None:
            words += ["-i", str(options.identity_file.expanduser()), "-o", "IdentitiesOnly=yes"]
        return " ".join(shlex.quote(word) for word in words)

    def _remote(self, path: str) -> str:
        return f"{self.options.user}@{self.options.remote_host}:{path}"

    def _rsync(self, *arguments: str, ok_codes: Sequence[int] = (0,)) -> process.Completed:
        rsync = process.which("rsync")
        if rsync is None:
            raise StorageError("rsync is not installed; install it (apt-get install rsync) or use DESTINATION sftp",
                               is_permanent=True)
        argv = [str(rsync), "--secluded-args" if self._supports_secluded() else "--protect-args",
                f"--timeout={IO_TIMEOUT_SECONDS}", "-e", self._ssh_command(), *arguments]
        completed = process.run(argv, check=False)
        if completed.returncode not in ok_codes:
            raise CommandFailed(completed.argv, completed.returncode, completed.stderr.decode("utf-8", "replace"))
        return completed

    _secluded: bool | None = None

    def _supports_secluded(self) -> bool:
        # rsync 3.2.6 renamed --protect-args to --secluded-args; both keep remote names from a shell.
        if RsyncStorage._secluded is None:
            help_text = process.run(["rsync", "--help"], check=False).text
            RsyncStorage._secluded = "--secluded-args" in help_text
        return RsyncStorage._secluded

    def _error(self, error: CommandFailed, *, action: str, path: str) -> StorageError:
        text = error.stderr_tail
        options = self.options
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
            return StorageError(
                f"the host key of {options.remote_host}:{options.port} does not match the one in "
                f"{options.known_hosts_path} (a man-in-the-middle, or a reinstalled server); if expected, remove "
                f"the old entry with ssh-keygen -R '[{options.remote_host}]:{options.port}'", is_permanent=True,
            )
        if "Host key verification failed" in text:
            return StorageError(
                f"the host key of {options.remote_host}:{options.port} is not in {options.known_hosts_path}; add "
                f"it (ssh-keyscan -p {options.port} {options.remote_host}, after checking its fingerprint) or set "
                "TRUST_ON_FIRST_USE", is_permanent=True,
            )
        if "Permission denied (publickey" in text:
            return StorageError(
                f"{self.where} refused the SSH key {options.identity_file or '(default keys)'} for user "
                f"{options.user!r}; add its public key to that user's authorized_keys or fix IDENTITY_FILE",
                is_permanent=True,
            )
        if "Connection refused" in text or "Connection timed out" in text or "Could not resolve" in text \
                or "No route to host" in text:
            return StorageError(
                f"cannot reach {options.remote_host}:{options.port} over SSH; check REMOTE_HOST, PORT and the network"
            )
        if "Permission denied (13)" in text:
            return StorageError(
                f"permission denied for {action} of {path} on {self.where}; give user {options.user!r} write "
                "access to REMOTE_DIR or choose another REMOTE_DIR", is_permanent=True,
            )
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return StorageError(
                f"the remote disk of {self.where} is full during {action} of {path}; free space there or choose "
                "another REMOTE_DIR"
            )
        if error.code == 11 and not text.strip():
            # rsync's "error in file IO", whose message the remote side did not get to send.
            return StorageError(
                f"the remote side of {self.where} could not write {path} (rsync file I/O error, exit 11): the remote "
                "disk may be full or REMOTE_DIR not writable; check space and permissions there"
            )
        if "No such file or directory" in text:
            return StorageError(f"{path} does not exist on {self.where}; check REMOTE_DIR in section {self.section_name}",
                                is_permanent=True)
        last = text.strip().splitlines()[-1] if text.strip() else f"exit status {error.code}"
        return StorageError(f"rsync {action} of {path} on {self.where} failed: {last}")

    def _staging(self) -> Path:
        try:
            self.work_folder.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="ncbackup-rsync-", dir=self.work_folder))
        except OSError as error:
            raise StorageError(f"cannot create a staging folder in WORK_FOLDER {self.work_folder}: {error}; "
                               "fix WORK_FOLDER") from None

    def _clean_key(self, key: str) -> str:
        clean = posixpath.normpath(key.lstrip("/"))
        if clean.startswith("..") or clean == ".":
            raise StorageError(f"refusing key {key!r}: it leaves the storage folder", is_permanent=True)
        return clean

    # -- the four operations --------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO) -> None:
        """Stage the part in WORK_FOLDER, rsync it (atomic on the server), remove the staged copy."""
        key = self._clean_key(key)
        staging = self._staging()
        try:
            relative = posixpath.join(self.prefix, key) if self.prefix != "." else key
            local = staging.joinpath(*relative.split("/"))
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "wb") as handle:
                while chunk := stream.read(COPY_CHUNK_BYTES):
                    handle.write(chunk)
            try:
                # --relative with "/./" recreates <prefix>/<set-id>/ below REMOTE_DIR; the trailing "/." stops
                # rsync from creating a missing REMOTE_DIR (a typo must fail, not write elsewhere).
                self._rsync("--relative", "--chmod=F600", f"{staging}/./{relative}", self._remote(f"{self.remote_dir}/."))
            except CommandFailed as error:
                raise self._error(error, action="upload", path=posixpath.join(self.base_dir, key)) from None
        except OSError as error:
            raise StorageError(f"cannot stage {key} in WORK_FOLDER {self.work_folder}: {error}; free space there") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def get(self, key: str) -> BinaryIO:
        """Fetch the part into WORK_FOLDER and return it; the staged copy goes when the stream is closed."""
        key = self._clean_key(key)
        staging = self._staging()
        local = staging / posixpath.basename(key)
        try:
            self._rsync(self._remote(posixpath.join(self.base_dir, key)), str(local))
            return StagedFile(local, staging)
        except CommandFailed as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise self._error(error, action="download", path=posixpath.join(self.base_dir, key)) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the files under the base folder whose key starts with prefix."""
        try:
            # exit 23 = "some files could not be transferred": here, the base folder does not exist yet.
            completed = self._rsync("--list-only", "-r", "--no-human-readable",
                                    self._remote(f"{self.base_dir}/"), ok_codes=(0, 23))
        except CommandFailed as error:
            raise self._error(error, action="listing", path=self.base_dir) from None
        if completed.returncode == 23:
            if "No such file or directory" in completed.stderr.decode("utf-8", "replace"):
                return
            raise self._error(CommandFailed(completed.argv, 23, completed.stderr.decode("utf-8", "replace")),
                              action="listing", path=self.base_dir)
        found = []
        for line in completed.text.splitlines():
            match = _LIST_LINE.match(line)
            if not match or match["mode"][0] != "-":
                continue
            name = match["name"]
            if name.startswith("."):  # rsync's own temp files (.name.XXXXXX) of a transfer in progress
                continue
            if posixpath.basename(name).startswith("."):
                continue
            size = int(re.sub(r"[,.]", "", match["size"]))
            found.append(ObjectInfo(key=name, size_bytes=size))
        for info in sorted(found, key=lambda item: item.key):
            if info.key.startswith(prefix):
                yield info

    def delete(self, key: str) -> None:
        """Remove key: rsync --delete from an empty tree, filtered down to that one path below REMOTE_DIR."""
        key = self._clean_key(key)
        relative = posixpath.join(self.prefix, key) if self.prefix != "." else key
        *folders, name = relative.split("/")
        staging = self._staging()
        try:
            empty = staging / "empty"
            empty.joinpath(*folders).mkdir(parents=True)
            rules = [f"--include=/{'/'.join(_filter_literal(f) for f in folders[:depth])}/" for depth in range(1, len(folders) + 1)]
            rules.append(f"--include=/{'/'.join(_filter_literal(part) for part in [*folders, name])}")
            # --existing: folders missing on the server are not created just to delete nothing in them.
            self._rsync("-r", "--existing", "--delete", *rules, "--exclude=*",
                        f"{empty}/", self._remote(f"{self.remote_dir}/."), ok_codes=(0, 23))
        except CommandFailed as error:
            raise self._error(error, action="removal", path=posixpath.join(self.base_dir, key)) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def prune_support(self) -> str | None:
        """Prune works here: list is rsync's remote listing (--list-only), delete an rsync --delete of one path."""
        return None

    def check(self) -> builtins.list[CheckLine]:
        """Connect with rsync and list REMOTE_DIR; writes nothing."""
        try:
            self._rsync("--list-only", "--no-human-readable", self._remote(f"{self.remote_dir}/"))
        except CommandFailed as error:
            return [CheckLine(False, str(self._error(error, action="check", path=self.remote_dir)))]
        except (StorageError, ConfigError) as error:
            return [CheckLine(False, str(error))]
        return [CheckLine(True, f"{self.name} reachable, host key verified")]


class StagedFile(io.FileIO):
    """A staged download that removes its staging folder when closed."""

    def __init__(self, path: Path, staging: Path) -> None:
        super().__init__(path, "rb")
        self._staging = staging

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self._staging, ignore_errors=True)
