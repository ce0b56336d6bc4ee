"""``ncbackup decrypt``: decrypt one encrypted file or its parts (age, legacy OpenSSL, GnuPG) into a file.

The input is one file (``X.000``, or a whole ``X``) or the common prefix of parts (``X`` matches
``X.000``, ``X.001``, ... joined in numeric order; the original's GnuPG path split into ``Xaa``,
``Xab``, ..., which is accepted too). As the original assumed a wild card at the end, any shorter
prefix of the part names is accepted too when it names the parts of one file only. The format is recognised
from the first bytes. The output is
written under a temporary name and renamed only when the data is complete and, for age and GnuPG,
authenticated; a wrong key or damaged data leaves no output file.
"""

from __future__ import annotations

import base64
import io
import logging
import re
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from ncbackup.commands.common import add_logging_argument, guarded, setup_console_logging
from ncbackup.engine.restore import TEMP_PREFIX, PartSource, PartsReader, write_atomically
from ncbackup.errors import BackupError, ConfigError, DecryptError
from ncbackup.exitcodes import EXIT_OK, EXIT_WARNINGS
from ncbackup.storage.base import as_binary

log = logging.getLogger(__name__)

FORMAT_AGE = "age"
FORMAT_OPENSSL = "openssl-legacy"
FORMAT_GPG = "gpg"

AGE_MAGIC = b"age-encryption.org/v1\n"
AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"
AGE_ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
OPENSSL_MAGIC = b"Salted__"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"

_DOTTED_NUMBER = re.compile(r"\.(\d{3,})")
_BARE_NUMBER = re.compile(r"(\d{2,})")
_LETTERS = re.compile(r"([a-z]{2,})")
# The first part of a split file, X.000, X00 or Xaa (tried in that order); the group that matched is X.
_FIRST_PART = re.compile(r"(.+)\.0{3,}|(.+?)0{2,}|(.+)aa")


def find_parts(given: Path) -> list[Path]:
    """The files that make up the encrypted data named by given (a file, or the prefix of its parts), in order."""
    given = Path(given)
    if given.is_file():
        match = re.fullmatch(r"(.+)\.(\d{3,})", given.name)
        if match and int(match.group(2)) == 0:
            # X.000 given: the original stopped there; its siblings X.001... belong to it too.
            siblings = _numbered(given.parent, match.group(1), _DOTTED_NUMBER)
            if len(siblings) > 1:
                return siblings
        return [given]
    folder = given.parent
    if not folder.is_dir():
        raise DecryptError(f"folder {folder} does not exist; check the --input path")
    parts = _parts_of(folder, given.name)
    if parts:
        return parts
    # The original's README: "the software assumes you mean wild card (*) at the end". Any prefix of
    # the part names will do, as long as it names the parts of one file only.
    files = _split_files_starting_with(folder, given.name)
    if len(files) > 1:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        raise ConfigError(
            f"{given} matches the parts of {len(files)} files ({shown}) in {folder}; "
            "give a longer prefix that names only one of them"
        )
    if files:
        return _parts_of(folder, files[0])
    raise DecryptError(
        f"no file {given} and no parts {given.name}.000, {given.name}.001... in {folder}; "
        "give one part or the common prefix of the parts"
    )


def _parts_of(folder: Path, prefix: str) -> list[Path]:
    """The parts named exactly prefix + a part suffix (.000, 00 or aa), in order; empty when there are none."""
    for pattern in (_DOTTED_NUMBER, _BARE_NUMBER):
        parts = _numbered(folder, prefix, pattern)
        if parts:
            return parts
    return sorted(
        (path for path in folder.iterdir()
         if path.name.startswith(prefix) and _LETTERS.fullmatch(path.name[len(prefix):]) and path.is_file()),
        key=lambda path: path.name,  # GNU split's aa..yz, zaaa..: plain name order is part order
    )


def _split_files_starting_with(folder: Path, prefix: str) -> list[str]:
    """The names (without part suffix) of the split files whose first part's name starts with prefix, sorted."""
    names = set()
    for path in folder.iterdir():
        if not path.name.startswith(prefix) or not path.is_file():
            continue
        match = _FIRST_PART.fullmatch(path.name)
        if match:
            names.add(next(group for group in match.groups() if group is not None))
    return sorted(names)


def _numbered(folder: Path, prefix: str, pattern: re.Pattern) -> list[Path]:
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        if not path.name.startswith(prefix) or not path.is_file():
            continue
        match = pattern.fullmatch(path.name[len(prefix):])
        if match:
            found[int(match.group(1))] = path
    if not found:
        return []
    numbers = sorted(found)
    expected = list(range(numbers[0], numbers[0] + len(numbers)))
    if numbers[0] != 0 or numbers != expected:
        missing = sorted(set(range(0, numbers[-1] + 1)) - set(numbers))
        raise DecryptError(
            f"parts of {folder / prefix} are not contiguous: part number {missing[0]} is missing; "
            "fetch every part before decrypting"
        )
    return [found[number] for number in numbers]


def detect_format(head: bytes, *, what: str) -> str:
    """age, openssl-legacy or gpg from the first bytes; DecryptError naming what it looks like otherwise."""
    from ncbackup.stages.legacy_gpg import looks_like_openpgp

    if head.startswith(AGE_MAGIC) or head.startswith(AGE_ARMOR):
        return FORMAT_AGE
    if head.startswith(OPENSSL_MAGIC):
        return FORMAT_OPENSSL
    if looks_like_openpgp(head):
        return FORMAT_GPG
    if head.startswith(ZSTD_MAGIC) or head.startswith(GZIP_MAGIC):
        raise DecryptError(f"{what} is not encrypted (it is zstd or gzip data); decompress it directly, no key needed")
    raise DecryptError(
        f"{what} is not in a format ncbackup decrypts (age, legacy OpenSSL 'Salted__', GnuPG); "
        "check that it is the first part of an encrypted backup"
    )


@dataclass(frozen=True)
class DecryptResult:
    output: Path
    format: str
    parts: int
    bytes_written: int
    warnings: tuple[str, ...] = ()


def _reader_over(parts: list[Path]) -> PartsReader:
    return PartsReader([PartSource(label=f"part {path}", open=partial(_open_binary, path)) for path in parts])


def _open_binary(path: Path) -> BinaryIO:
    return open(path, "rb")


def decrypt_files(parts: list[Path], output: Path, *, key_file: Path, force: bool = False) -> DecryptResult:
    """Decrypt the concatenation of parts into output (temporary name, renamed when complete and authenticated)."""
    output = Path(output)
    what = str(parts[0]) if len(parts) == 1 else f"{parts[0]} (+{len(parts) - 1} more parts)"
    if output.exists() and not force:
        raise BackupError(f"output {output} already exists; choose another --output or add --force to replace it")
    if output.is_dir():
        raise BackupError(f"output {output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise BackupError(f"folder {output.parent} does not exist; create it or choose another --output")
    key_file = Path(key_file)
    if not key_file.is_file():
        raise DecryptError(f"key file {key_file} does not exist; give the key file the backups were made with")
    with open(parts[0], "rb") as first:
        head = first.read(64)
    kind = detect_format(head, what=what)
    warnings: list[str] = []
    if kind == FORMAT_GPG:
        written, warnings = _decrypt_gpg(parts, output, key_file=key_file, what=what)
    else:
        with _reader_over(parts) as stored:
            plain = _decrypting_reader(kind, as_binary(stored), key_file=key_file, what=what)
            written = write_atomically(plain, output)
    return DecryptResult(output=output, format=kind, parts=len(parts), bytes_written=written, warnings=tuple(warnings))


def _decrypting_reader(kind: str, stored: BinaryIO, *, key_file: Path, what: str) -> BinaryIO:
    if kind == FORMAT_OPENSSL:
        from ncbackup.stages.legacy_openssl import decrypting_reader, passphrase_from_key_file

        passphrase = passphrase_from_key_file(key_file)
        if not passphrase:
            raise DecryptError(f"key file {key_file} is empty; give the key file the backups were made with")
        return decrypting_reader(stored, passphrase, what=what)
    from ncbackup.stages.registry import decryption_for

    buffered = io.BufferedReader(cast(io.RawIOBase, stored), buffer_size=1 << 20)   # a PartsReader: raw
    if buffered.peek(len(AGE_ARMOR)).startswith(AGE_ARMOR):
        return decryption_for(FORMAT_AGE, key_file).reader(_Dearmored(buffered, what=what))  # type: ignore[arg-type]
    return decryption_for(FORMAT_AGE, key_file).reader(buffered)


class _Dearmored(io.RawIOBase):
    """The binary age file inside ASCII armor (``age -a``): base64 lines between BEGIN and END markers."""

    def __init__(self, source: io.BufferedReader, *, what: str) -> None:
        super().__init__()
        self._source = source
        self._what = what
        self._pending = b""
        self._is_done = False
        if source.readline().strip() != AGE_ARMOR:
            raise DecryptError(f"{what} does not start with the age armor line; check the file")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._is_done and (size < 0 or len(self._pending) < size):
            line = self._source.readline()
            if not line or line.strip() == AGE_ARMOR_END:
                self._is_done = bool(line) or self._fail_truncated()
                break
            try:
                self._pending += base64.b64decode(line.strip(), validate=True)
            except ValueError:
                raise DecryptError(f"{self._what} has a damaged armor line; check the file") from None
        if size < 0:
            size = len(self._pending)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _fail_truncated(self) -> bool:
        raise DecryptError(f"{self._what} ends before the age armor's END line: it is truncated")


def _decrypt_gpg(parts: list[Path], output: Path, *, key_file: Path, what: str) -> tuple[int, list[str]]:
    import os
    import secrets

    from ncbackup import platform
    from ncbackup.stages.legacy_gpg import decrypt_to_file

    temp = output.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{output.name}")
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w+b") as out:
            warnings = decrypt_to_file(lambda: as_binary(_reader_over(parts)), out, key_file=key_file, what=what)
            out.flush()
            os.fsync(out.fileno())
            written = out.tell()
        os.replace(temp, output)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    platform.fsync_directory(output.parent)
    return written, warnings


def run_decrypt(*, input_path: Path, output: Path, key_file: Path, force: bool) -> int:
    """Shared by ``ncbackup decrypt`` and the original's ``encryption/encryption.py -d``; returns the exit status."""
    parts = find_parts(input_path)
    result = decrypt_files(parts, output, key_file=key_file, force=force)
    for warning in result.warnings:
        print(f"ncbackup: warning: {warning}", file=sys.stderr)
    print(
        f"decrypted {result.parts} part(s) ({result.format}) into {result.output}: {result.bytes_written} bytes"
    )
    return EXIT_WARNINGS if result.warnings else EXIT_OK


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "decrypt",
        help="decrypt an encrypted file or its parts (age, legacy OpenSSL, GnuPG) into one file",
        description="Decrypt one encrypted file or its parts (age, legacy OpenSSL, GnuPG) into one file. --input is "
                    "one file (X.000, or a whole X) or the common prefix of parts (X matches X.000, X.001, ... "
                    "joined in numeric order; the original's GnuPG parts Xaa, Xab, ... too). The format is "
                    "recognised from the first bytes. The output is renamed into place only when the data is "
                    "complete and, for age and GnuPG, authenticated: a wrong key or damaged data leaves no file.",
    )
    parser.add_argument("--key-file", "--KEY_FILE", dest="key_file", type=Path, required=True, metavar="FILE",
                        help="the age identity, or the original tool's key file")
    parser.add_argument("--input", "--OBJECTIVES", dest="input", type=Path, required=True, metavar="PATH",
                        help="one part (X.000) or a prefix of the part names (a wild card is assumed at the end)")
    parser.add_argument("--output", "--DESTINATION", dest="output", type=Path, required=True, metavar="FILE",
                        help="the file to write (renamed into place only when complete)")
    parser.add_argument("--force", action="store_true", help="replace --output if it exists")
    add_logging_argument(parser)
    parser.set_defaults(handler=main)


@guarded
def main(args) -> int:
    setup_console_logging(args.logging_level)
    return run_decrypt(input_path=args.input, output=args.output, key_file=args.key_file, force=args.force)
