"""The one error tree. The CLI turns any BackupError into one sentence and an exit code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class BackupError(Exception):
    """A failure a user can cause or fix; its message is one sentence: what, where, how to fix."""


class ConfigError(BackupError):
    """The config (or the command line) is unusable; carries where the problem is."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        where = ""
        if file is not None:
            where = str(file)
            if line is not None:
                where += f", line {line}"
                if column is not None:
                    where += f", column {column}"
            where += ": "
        if key is not None:
            where += f"{key}: "
        super().__init__(where + message)
        self.reason = message


class CommandFailed(BackupError):
    """A subprocess exited non-zero (or timed out); argv is already masked of secrets."""

    def __init__(self, argv: Sequence[str], code: int | None, stderr_tail: str, *, timed_out: bool = False) -> None:
        self.argv = list(argv)
        self.code = code
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        program = Path(self.argv[0]).name if self.argv else "?"
        if timed_out:
            what = f"{program} did not finish in time and was stopped"
        elif code is None:
            what = f"{program} could not be started"
        else:
            what = f"{program} exited with status {code}"
        tail = stderr_tail.strip().splitlines()[-1:] if stderr_tail else []
        super().__init__(what + (f": {tail[0]}" if tail else ""))


class SourceError(BackupError):
    """A source could not be read (server down, path missing, dump died)."""


class StorageError(BackupError):
    """A storage could not be written, read, listed or cleaned; is_permanent: retrying cannot help."""

    def __init__(self, message: str, *, is_permanent: bool = False) -> None:
        super().__init__(message)
        # Missing bucket or key, refused credentials, host key mismatch, permission denied: the same
        # request fails the same way, so with_retries gives up at once instead of backing off.
        self.is_permanent = is_permanent


class IntegrityError(BackupError):
    """Stored data does not match its manifest (bad hash, size, missing or foreign part)."""


class DecryptError(BackupError):
    """Data could not be decrypted: wrong key, or corrupted ciphertext."""
