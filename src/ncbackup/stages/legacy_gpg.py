"""Decrypt the original tool's GnuPG symmetric backups (its Python 2.6 path) through the ``gpg`` binary.

The original ran ``cat KEY_FILE DATA | gpg -c --passphrase-fd 0``, so gpg took the key file's first
line as the passphrase. Here gpg reads that same first line with ``--passphrase-file KEY_FILE``:
the passphrase never reaches a command line and is never copied. gpg runs in a throw-away
GNUPGHOME (0700) so the user's keyrings and agent are untouched, and that home's agent is stopped
afterwards.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ncbackup import process
from ncbackup.errors import BackupError, CommandFailed, DecryptError

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1 << 20
# gpg >= 2.2.8 refuses data without an integrity check (MDC); gpg 2.0/CAST5 wrote such files.
NO_MDC_MARKER = "not integrity protected"
WRONG_KEY_MARKERS = ("bad session key", "bad passphrase", "bad key")


def looks_like_openpgp(head: bytes) -> bool:
    """True when head starts like an OpenPGP message (binary packet or ASCII armor)."""
    if head.startswith(b"-----BEGIN PGP MESSAGE-----"):
        return True
    # A binary OpenPGP packet header always has the top bit set; symmetric messages start with a
    # Symmetric-Key Encrypted Session Key packet (tag 3): 0x8c/0x8d (old format) or 0xc3 (new).
    return bool(head) and head[0] in (0x8C, 0x8D, 0x8E, 0xC3)


@contextmanager
def _throwaway_gnupg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="ncbackup-gnupg-"))  # mkdtemp makes it 0700
    try:
        yield home
    finally:
        gpgconf = process.which("gpgconf")
        if gpgconf is not None:
            # gpg may have started an agent for this home; stop it so no process outlives us.
            try:
                process.run([gpgconf, "--homedir", home, "--kill", "gpg-agent"], timeout_seconds=30, check=False)
            except BackupError:
                pass
        shutil.rmtree(home, ignore_errors=True)


def _gpg_argv(gpg: Path, *, home: Path, key_file: Path, ignore_missing_mdc: bool) -> list[str | Path]:
    argv: list[str | Path] = [
        gpg, "--homedir", home, "--batch", "--no-tty", "--quiet", "--yes",
        "--pinentry-mode", "loopback", "--no-symkey-cache", "--passphrase-file", key_file,
    ]
    if ignore_missing_mdc:
        argv.append("--ignore-mdc-error")
    argv += ["--decrypt"]
    return argv


def decrypt_to_file(
    open_input: Callable[[], BinaryIO],
    output: BinaryIO,
    *,
    key_file: Path,
    what: str = "the data",
    gpg_program: str = "gpg",
) -> list[str]:
    """Decrypt the OpenPGP symmetric message open_input() yields into output; return warnings.

    open_input is called again (and output truncated) when the data lacks an integrity check and
    has to be decrypted a second time with gpg's check relaxed; that is returned as a warning.
    Wrong key or damaged data raises DecryptError.
    """
    gpg = process.which(gpg_program)
    if gpg is None:
        raise DecryptError(
            f"{what} is GnuPG-encrypted but the gpg program was not found; install gnupg (apt-get install gnupg)"
        )
    key_file = Path(key_file)
    if not key_file.is_file():
        raise DecryptError(f"key file {key_file} does not exist; give the key file the backups were made with")
    warnings: list[str] = []
    with _throwaway_gnupg_home() as home:
        for ignore_missing_mdc in (False, True):
            output.seek(0)
            output.truncate()
            try:
                _run_gpg(_gpg_argv(gpg, home=home, key_file=key_file.resolve(), ignore_missing_mdc=ignore_missing_mdc), open_input, output)
                break
            except CommandFailed as error:
                tail = error.stderr_tail.lower()
                if NO_MDC_MARKER in tail and not ignore_missing_mdc:
                    log.warning("%s has no integrity check (old GnuPG); decrypting without it", what)
                    warnings.append(
                        f"{what} was written without an integrity check (old GnuPG): decrypted, but "
                        "corruption cannot be detected; test the result (e.g. tar -tzf)"
                    )
                    continue
                last = error.stderr_tail.strip().splitlines()[-1:] or ["no message"]
                if any(marker in tail for marker in WRONG_KEY_MARKERS):
                    raise DecryptError(
                        f"cannot decrypt {what}: wrong key or corrupted data (gpg: {last[0].removeprefix('gpg: ')}); "
                        "check the key file"
                    ) from None
                raise DecryptError(
                    f"cannot decrypt {what}: gpg failed ({last[0].removeprefix('gpg: ')}); "
                    "check the key file and that every part is present and undamaged"
                ) from None
    output.flush()
    return warnings


def _run_gpg(argv: list[str | Path], open_input: Callable[[], BinaryIO], output: BinaryIO) -> None:
    source = open_input()
    try:
        with process.stream_stdin(argv, stdout=output) as stdin:
            while True:
                chunk = source.read(COPY_CHUNK_BYTES)
                if not chunk:
                    break
                stdin.write(chunk)
    finally:
        source.close()
